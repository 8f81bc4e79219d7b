//! Errors of the hub downloader. Every one names what the user has to fix or look at: the repo,
//! the revision, the file, the cache folder, the URL; never the token.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// `--model` is neither an existing folder nor `owner/name`.
    #[error("`{0}` is neither a model folder nor a hub repo id (owner/name)")]
    NotAModel(String),
    /// 401/403 on a repo that exists: gated or private.
    #[error(
        "{repo} (revision {revision}): the repository is gated or private and {why}; accept its \
         terms on the hub if it is gated, then set HF_TOKEN to a token that can read it"
    )]
    Unauthorized {
        repo: String,
        revision: String,
        why: String,
    },
    #[error(
        "{repo}: no such repository at {endpoint} (if it is private, set HF_TOKEN to a token \
         that can read it)"
    )]
    RepoNotFound { repo: String, endpoint: String },
    #[error("{repo}: no revision `{revision}` (a branch, tag or commit sha)")]
    RevisionNotFound { repo: String, revision: String },
    #[error("{repo} (revision {revision}): no file `{file}` in the repository")]
    FileNotFound {
        repo: String,
        revision: String,
        file: String,
    },
    /// Offline, or the hub unreachable, and the cache lacks a file.
    #[error("{0}")]
    NotCached(Box<NotCached>),
    /// `cache rm` of a repo that is not there.
    #[error("{repo} is not in the cache {}", cache.display())]
    NotInCache { repo: String, cache: PathBuf },
    /// The downloaded bytes do not hash to what the hub announced; the download was deleted.
    #[error("{0}")]
    Integrity(Box<Mismatch>),
    /// An HTTP status this downloader has no better word for (5xx, ...).
    #[error("{url}: HTTP {status}{message}")]
    Http {
        url: String,
        status: u16,
        message: String,
    },
    /// No answer: connection refused, timeout, DNS, TLS.
    #[error("{url}: {message}")]
    Network { url: String, message: String },
    /// An answer that is not what a hub sends (missing `X-Repo-Commit`, bad `Content-Range`).
    #[error("{url}: {message}")]
    Protocol { url: String, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The caller's [`Progress::stop`](crate::Progress::stop) ended a download; the bytes that
    /// arrived are kept for the next try.
    #[error("download interrupted")]
    Interrupted,
    /// The first file fetched (a model's `modules.json`) does not say which files come next:
    /// the caller's [`FilesAfter`](crate::FilesAfter) refused it.
    #[error(transparent)]
    Layout(Box<dyn std::error::Error + Send + Sync>),
}

impl HubError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HubError::Io {
            path: path.into(),
            source,
        }
    }

    /// The hub could not be asked (no answer, or a server error): the cache may stand in, as
    /// huggingface_hub lets it.
    pub(crate) fn is_unreachable(&self) -> bool {
        match self {
            HubError::Network { .. } => true,
            HubError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Offline, or the hub unreachable, and the cache lacks a file (boxed: a large error).
#[derive(Debug, thiserror::Error)]
#[error(
    "{repo} (revision {revision}): `{file}` is not in the cache {} and {why}",
    cache.display()
)]
pub struct NotCached {
    pub repo: String,
    pub revision: String,
    pub file: String,
    pub cache: PathBuf,
    /// `HF_HUB_OFFLINE is set`, or why the hub did not answer.
    pub why: String,
}

/// A download whose hash is not the one the hub announced (boxed: a large error).
#[derive(Debug, thiserror::Error)]
#[error(
    "{repo} (revision {revision}): `{file}`: {algorithm} mismatch: the hub announced {expected}, \
     the download hashes to {actual}; it was deleted, try again"
)]
pub struct Mismatch {
    pub repo: String,
    pub revision: String,
    pub file: String,
    pub algorithm: &'static str,
    pub expected: String,
    pub actual: String,
}
