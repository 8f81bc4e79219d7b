//! One error type for the core and the crates that build on it (eval, train, the bindings). Every
//! variant names what the user has to fix: the file, the line, the tensor or the device; the
//! bindings map variants to their own error classes ([`Error::kind`]) instead of parsing text.

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
    /// A line (or record) of a user's data file is malformed: an input file, an evaluation
    /// dataset, a training set. `line` is 1-based; `what` says what was wrong with it.
    #[error("{} line {line}: {what}", file.display())]
    Line {
        file: PathBuf,
        line: usize,
        what: String,
    },
    /// The tokenizer failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A bad argument (an encode option, a device name, inputs that do not fit the model).
    #[error("{0}")]
    Input(String),
    /// The device cannot run the model: no adapter or CUDA device, a build without its backend,
    /// a lost device, a kernel or memory error. `device` is its name as [`Device`] spells it
    /// (`wgpu`, `cuda:0`), or the adapter's.
    ///
    /// [`Device`]: crate::Device
    #[error("{device}: {msg}")]
    Device { device: String, msg: String },
    /// Training cannot go on (a NaN loss, a checkpoint that does not fit the run).
    #[error("{0}")]
    Train(String),
    /// The caller stopped the work (an encode's progress callback said so), e.g. on Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// What an [`Error`] is about, for bindings that raise their own classes (the browser package's
/// `ModelError`, `GPUError`, ...; Python's `FileNotFoundError`, `ValueError`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A file could not be read or written ([`Error::Io`]).
    Io,
    /// The model's files do not make a model ([`Error::Config`], [`Error::Weights`]).
    Model,
    /// The caller's input or data ([`Error::Line`], [`Error::Input`], [`Error::Tokenizer`]).
    Input,
    /// The device ([`Error::Device`]).
    Device,
    /// Training ([`Error::Train`]) or the arithmetic itself ([`Error::Candle`]).
    Compute,
    /// The caller stopped the work ([`Error::Interrupted`]).
    Interrupted,
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn config(file: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        Error::Config {
            file: file.into(),
            msg: msg.to_string(),
        }
    }

    pub fn weights(file: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        Error::Weights {
            file: file.into(),
            msg: msg.to_string(),
        }
    }

    pub fn line(file: impl Into<PathBuf>, line: usize, what: impl std::fmt::Display) -> Self {
        Error::Line {
            file: file.into(),
            line,
            what: what.to_string(),
        }
    }

    pub fn device(device: impl std::fmt::Display, msg: impl std::fmt::Display) -> Self {
        Error::Device {
            device: device.to_string(),
            msg: msg.to_string(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Io,
            Error::Config { .. } | Error::Weights { .. } => ErrorKind::Model,
            Error::Line { .. } | Error::Input(_) | Error::Tokenizer(_) => ErrorKind::Input,
            Error::Device { .. } => ErrorKind::Device,
            Error::Train(_) | Error::Candle(_) => ErrorKind::Compute,
            Error::Interrupted => ErrorKind::Interrupted,
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
