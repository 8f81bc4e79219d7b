//! Native evaluation on MTEB task types with the metrics of mteb 2.x (and, where the INSTRUCTOR
//! paper's mteb 1.0 fork differs, its variant: [`Protocol::Paper`]).
//!
//! A leaf over the core: it embeds through an [`Embedder`] (the CLI wraps
//! [`instructor::Instructor`] with a disk cache) and nothing else. [`metrics`] holds the pure metric
//! functions, [`data`] the dataset readers, [`tasks`] the table of known tasks and what each
//! task type computes, [`cache`] the per-text embedding cache, [`results`] the documents a run
//! writes (mteb's per-task result JSON, the summary), built here rather than in the CLI so that
//! their schema is a library's and tested as one. [`icl`] and [`lm`] are the prompt-retrieval
//! benchmark: demonstrations, MetaICL's prompts, and the causal language model that scores them.

pub mod cache;
pub mod data;
pub mod icl;
pub mod lm;
pub mod metrics;
pub mod results;
pub mod tasks;

pub use tasks::{
    infer_model_table, run_task, DatasetRef, TaskResult, TaskSpec, TaskTable, MODEL_TABLES,
};

use instructor::{Embeddings, Input};

/// mteb's task types (the `type` in the task table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    Sts,
    PairClassification,
    Classification,
    Clustering,
    Reranking,
    Summarization,
    Retrieval,
    /// Not an mteb type: the INSTRUCTOR paper's text-generation evaluation
    /// ([`metrics::billboard`]).
    Billboard,
}

impl TaskType {
    pub const ALL: [TaskType; 8] = [
        Self::Sts,
        Self::PairClassification,
        Self::Classification,
        Self::Clustering,
        Self::Reranking,
        Self::Summarization,
        Self::Retrieval,
        Self::Billboard,
    ];

    /// mteb's spelling (`TaskMetadata.type`; `Billboard` for the one that is not mteb's), used
    /// for categories in the summary.
    pub fn mteb_name(self) -> &'static str {
        match self {
            Self::Sts => "STS",
            Self::PairClassification => "PairClassification",
            Self::Classification => "Classification",
            Self::Clustering => "Clustering",
            Self::Reranking => "Reranking",
            Self::Summarization => "Summarization",
            Self::Retrieval => "Retrieval",
            Self::Billboard => "Billboard",
        }
    }

    /// Parses `sts`, `pair_classification`, ... or mteb's spelling, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        let norm = |x: &str| x.to_ascii_lowercase().replace(['_', '-'], "");
        Self::ALL
            .into_iter()
            .find(|t| norm(t.mteb_name()) == norm(s))
    }
}

/// Which metric definitions to follow where mteb 2.x and the paper's mteb 1.0 fork differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// mteb 2.x: pair classification `max_ap`, thresholds never split ties; reranking trec
    /// `map_at_1000`; k-means `n_init` 1.
    #[default]
    Mteb,
    /// The INSTRUCTOR paper's fork: pair classification `cos_sim` AP (ties split by input order),
    /// reranking sklearn AP per query averaged (`map`), k-means `n_init` 3, and clustering embeds
    /// a sentence without its instruction when the two together exceed 256 tokens.
    Paper,
}

/// Embeds inputs for a task; `stage` names what is embedded (for progress and caching).
pub trait Embedder {
    fn embed(&mut self, inputs: &[Input], stage: &str) -> Result<Embeddings, EvalError>;
    /// Each input's token count as the model tokenizes it (`</s>` included, not truncated): the
    /// paper's clustering drops the instruction of inputs over a length ([`Protocol::Paper`]).
    fn token_counts(&mut self, inputs: &[Input]) -> Result<Vec<usize>, EvalError>;
}

/// Any error of an evaluation. Each names what to look at: the data file and line or row, the
/// cache file, the task; embedding errors are the core's.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A dataset file is missing, unreadable or malformed.
    #[error(transparent)]
    Data(#[from] data::DataError),
    /// Embedding failed (the model, the device, an input).
    #[error(transparent)]
    Embed(#[from] instructor::Error),
    /// A file of the evaluation's own (the embedding cache, a result) could not be read or
    /// written.
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An embedding-cache segment is not what this run wrote (another model's, or damaged).
    #[error("{}: {msg}", path.display())]
    Cache {
        path: std::path::PathBuf,
        msg: String,
    },
    /// A task's metric could not be computed.
    #[error("{task}: {msg}")]
    Task { task: String, msg: String },
}

impl EvalError {
    pub fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
