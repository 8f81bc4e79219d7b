//! One error type for the whole crate. Every variant names what the user has to fix: the file, the
//! line, the field or the tensor.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A model-folder file is missing, malformed or inconsistent (config.json, modules.json, ...).
    #[error("{}: {msg}", file.display())]
    Config { file: PathBuf, msg: String },
    /// A weights file is truncated, lacks a tensor or holds one of the wrong shape.
    #[error("{}: {msg}", file.display())]
    Weights { file: PathBuf, msg: String },
    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Bad user input (an encode argument, a line of an input file).
    #[error("{0}")]
    Input(String),
    /// The GPU backend failed: no adapter, a lost device, a kernel or memory error.
    #[error("gpu: {0}")]
    Gpu(String),
    /// Training cannot go on (a NaN loss, a checkpoint that does not fit the run).
    #[error("{0}")]
    Train(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(file: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        Error::Config {
            file: file.into(),
            msg: msg.to_string(),
        }
    }

    pub(crate) fn weights(file: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        Error::Weights {
            file: file.into(),
            msg: msg.to_string(),
        }
    }
}

/// A candle error's message without the backtrace candle attaches when `RUST_BACKTRACE` is set:
/// users need the tensor's name, not candle's stack.
pub(crate) fn candle_message(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        candle_core::Error::Context { inner, context } => {
            format!("{context}: {}", candle_message(inner))
        }
        candle_core::Error::WithPath { inner, .. } => candle_message(inner),
        other => other.to_string(),
    }
}
