// Instruction presets. The wording follows the INSTRUCTOR paper and its README's examples
// ("Represent the <domain> <text type> for <objective>: "); the trailing space matters: the
// instruction and the text are joined as written.

export const DOCUMENT_PRESETS = [
  'Represent the Wikipedia document for retrieval: ',
  'Represent the Science title: ',
  'Represent the Medicine sentence for clustering: ',
  'Represent the Financial statement: ',
  'Represent the document for retrieval: ',
  '',
];

export const QUERY_PRESETS = [
  'Represent the Wikipedia question for retrieving supporting documents: ',
  'Represent the question for retrieving supporting documents: ',
  'Represent the Science title: ',
  'Represent the Medicine sentence for clustering: ',
  'Represent the Financial statement: ',
  '',
];

export const CLUSTER_PRESETS = [
  'Represent the Science title: ',
  'Represent the Medicine sentence for clustering: ',
  'Represent the sentence for clustering: ',
  '',
];
