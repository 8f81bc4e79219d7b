// Built-in inputs, so that search and clustering work in one click.

/** Short scientific titles from four fields (eight each): k = 4 should find the fields. */
export const SCIENCE_TITLES = [
  // physics
  'Dynamical scalar degree of freedom in Horava-Lifshitz gravity',
  'Quantum entanglement in arrays of superconducting qubits',
  'Gravitational wave signatures of binary neutron star mergers',
  'Topological phases of matter in twisted bilayer graphene',
  'Dark matter constraints from dwarf galaxy rotation curves',
  'Laser cooling of trapped ions below the Doppler limit',
  'Neutrino oscillations in long-baseline accelerator experiments',
  'Thermal transport in strongly anharmonic crystals',
  // biology and medicine
  'CRISPR-Cas9 editing of hematopoietic stem cells for sickle cell disease',
  'Gut microbiome composition and the risk of type 2 diabetes',
  'Antibiotic resistance genes in hospital wastewater',
  'Protein folding pathways seen by single-molecule force spectroscopy',
  'Immune checkpoint inhibitors in metastatic melanoma',
  'Circadian regulation of liver metabolism in mice',
  'Neural stem cell differentiation in the adult hippocampus',
  'Statin therapy for the primary prevention of heart disease',
  // computer science
  'Efficient transformers for long document summarization',
  'Graph neural networks for molecular property prediction',
  'Differential privacy in federated learning',
  'A faster algorithm for all-pairs shortest paths',
  'Formal verification of a concurrent garbage collector',
  'Contrastive pretraining of sentence embeddings',
  'Reinforcement learning for robotic grasping from pixels',
  'Byzantine fault tolerance in permissionless blockchains',
  // economics
  'Monetary policy transmission under negative interest rates',
  'Minimum wage effects on teenage employment',
  'House prices and shocks to the supply of credit',
  'Trade liberalization and productivity in manufacturing',
  'Inflation expectations of households and firms',
  'Sovereign debt crises and bank balance sheets',
  'Labor market effects of industrial robots',
  'Carbon taxes and household energy consumption',
];

export const SEARCH_EXAMPLE = {
  documents: [
    'Capitalism has been dominant in the Western world since the end of feudalism, but most feel that the term "mixed economies" more precisely describes most contemporary economies.',
    'The disparate impact theory is especially controversial under the Fair Housing Act because the Act regulates many activities relating to housing, insurance, and mortgage loans.',
    'Disparate impact in United States labor law refers to practices in employment, housing, and other areas that adversely affect one group of people of a protected characteristic more than another.',
    'Yams are perennial herbaceous vines cultivated for their starchy tubers, which store the food the plant makes.',
    'The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, completed in 1889.',
    'Photosynthesis converts light energy into chemical energy that is stored in glucose.',
    'The Roman Empire was the post-Republican state of ancient Rome, ruled by emperors from 27 BC.',
    'A central bank cutting interest rates usually makes borrowing cheaper and can lift stock prices.',
  ].join('\n'),
  query: 'where is the food stored in a yam plant',
};
