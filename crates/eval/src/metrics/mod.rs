//! Metric implementations shared by every task type, each matching the Python package mteb 2.x
//! relies on (scipy, scikit-learn, pytrec_eval/trec_eval, mteb's own evaluators). Pure functions
//! of embeddings, scores and labels: nothing here embeds or reads files.

pub mod billboard;
pub mod classification;
pub mod clustering;
pub mod correlation;
pub mod pair;
pub mod prompt_retrieval;
pub mod ranking;
pub mod rng;
pub mod similarity;
pub mod summarization;
