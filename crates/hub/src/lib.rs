//! Models from the Hugging Face hub, natively: `--model hkunlp/instructor-base` downloads exactly
//! the files the model loader reads (modules.json first, then what the caller's [`FilesAfter`]
//! reads from it: the CLI passes `instructor::config::model_files`) into the huggingface_hub
//! cache, and returns the snapshot folder. This crate knows the hub and its cache, not the model. Datasets (`instructor eval`) go through the same
//! code into `datasets--owner--name` ([`Hub::download_dataset`]).
//!
//! It behaves as huggingface_hub does, so that the two share one cache:
//! - `{endpoint}/{repo}/resolve/{revision}/{path}`; the first answer's headers tell the commit
//!   (`X-Repo-Commit`), the blob name (`X-Linked-Etag` for LFS files, else `ETag`) and the size;
//!   LFS files redirect to a CDN, which gets no `Authorization` header.
//! - Downloads go to `blobs/{etag}.incomplete` under a lock, resume with `Range`, are verified
//!   (sha256 for LFS files, git blob sha1 for the others) and renamed into place.
//! - Online with a complete snapshot, one HEAD checks that the revision has not moved. Offline
//!   (`HF_HUB_OFFLINE`) or with the hub unreachable, the cache alone answers.
//!
//! Not built on the `hf-hub` crate: its sync API (read in the 0.x source, the line candle uses;
//! the 1.0 rewrite was not evaluated) writes downloads without checking the sha256 the hub
//! announces in `X-Linked-Etag`, and has no offline mode whose error names the missing
//! repo/revision/file.

mod cache;
mod download;
mod error;

pub use cache::{list as list_cache, remove as remove_from_cache, CachedRepo, FilesAfter, Groups};
pub use error::{HubError, Mismatch, NotCached};

use cache::{first_missing, Glob, RepoCache, Wanted};
use download::{FileMeta, Http};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where and how to reach the hub. Tests build one by hand (they run in parallel threads, so
/// they must not share process environment); the CLI uses [`HubOptions::from_env`].
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// `https://huggingface.co`, or a mirror; no trailing `/`.
    pub endpoint: String,
    /// The huggingface_hub cache folder (the one holding `models--*`).
    pub cache_dir: PathBuf,
    /// Sent as `Authorization: Bearer` to the endpoint only.
    pub token: Option<String>,
    /// Use the cache only.
    pub offline: bool,
    /// Connect timeout, and the longest wait for any read; no limit on a whole download.
    pub timeout: Duration,
}

impl HubOptions {
    /// The settings huggingface_hub reads: `HF_ENDPOINT`, `HF_HUB_CACHE` (else `HF_HOME/hub`,
    /// else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`), `HF_TOKEN` (else
    /// the token file `huggingface-cli login` writes: `HF_TOKEN_PATH`, else `HF_HOME/token`),
    /// `HF_HUB_OFFLINE`, `HF_HUB_DOWNLOAD_TIMEOUT` (seconds, default 10).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = var("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
                PathBuf::from(
                    var("HOME")
                        .or_else(|| var("USERPROFILE"))
                        .unwrap_or_default(),
                )
                .join(".cache")
            });
            cache.join("huggingface")
        });
        let token_file = var("HF_TOKEN_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("token"));
        let token = var("HF_TOKEN").or_else(|| {
            std::fs::read_to_string(token_file)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        });
        Self {
            endpoint: var("HF_ENDPOINT")
                .unwrap_or_else(|| "https://huggingface.co".into())
                .trim_end_matches('/')
                .to_string(),
            cache_dir: var("HF_HUB_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| hf_home.join("hub")),
            token: token.map(|t| t.trim().to_string()),
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "on" | "yes" | "true"
                )
            }),
            timeout: Duration::from_secs_f64(
                var("HF_HUB_DOWNLOAD_TIMEOUT")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(10.0),
            ),
        }
    }
}

/// Told about each file download, so that the CLI can draw a bar without the library depending
/// on a terminal crate. Every method has a no-op default; `()` reports nothing.
pub trait Progress {
    /// A download of `file` (re)starts with `done` bytes already on disk, of `total` if known.
    fn start(&mut self, _file: &str, _done: u64, _total: Option<u64>) {}
    /// `done` bytes of the current file are on disk.
    fn advance(&mut self, _done: u64) {}
    /// The current file is complete and verified.
    fn finish(&mut self) {}
    /// Asked after each chunk received: `true` ends the download with
    /// [`HubError::Interrupted`], keeping what arrived as `.incomplete` for the next try to
    /// resume (how Python's Ctrl-C reaches a long download).
    fn stop(&mut self) -> bool {
        false
    }
}

impl Progress for () {}

/// Whether `s` has the shape of a hub repo id: `owner/name`, letters, digits, `-`, `_`, `.`.
pub fn is_repo_id(s: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 96
            && !part.starts_with(['.', '-'])
            && !part.contains("..")
            && !part.contains("--")
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    matches!(s.split_once('/'), Some((owner, name)) if ok(owner) && ok(name))
}

/// `--model`: an existing folder is used as it is; `owner/name` is fetched from the hub (at
/// `revision`) into the cache, and its snapshot folder returned.
pub fn resolve_model(
    model: &str,
    revision: &str,
    opts: &HubOptions,
    files: &FilesAfter,
    progress: &mut dyn Progress,
) -> Result<PathBuf, HubError> {
    if Path::new(model).is_dir() {
        return Ok(PathBuf::from(model));
    }
    if !is_repo_id(model) {
        return Err(HubError::NotAModel(model.to_string()));
    }
    Hub::new(opts.clone()).download_model(model, revision, files, progress)
}

/// A model repo or a dataset repo: they differ in URL (`datasets/` before the id) and cache
/// folder (`models--…` / `datasets--…`), nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    Model,
    Dataset,
}

/// A client of one hub and one cache.
pub struct Hub {
    opts: HubOptions,
    http: Http,
}

impl Hub {
    pub fn new(opts: HubOptions) -> Self {
        let http = Http::new(&opts);
        Self { opts, http }
    }

    /// Makes the cache hold `modules.json` of `repo` at `revision` (a branch, tag or commit
    /// sha) and the files `files` reads from it, and returns the snapshot folder.
    pub fn download_model(
        &self,
        repo: &str,
        revision: &str,
        files: &FilesAfter,
        progress: &mut dyn Progress,
    ) -> Result<PathBuf, HubError> {
        self.download_repo(repo, revision, "modules.json", files, progress)
    }

    /// Makes the cache hold `first` of model repo `repo` at `revision` and the files `files`
    /// reads from the snapshot then: any model layout, e.g. a causal LM's `config.json` and
    /// what it implies (`instructor eval --lm`).
    pub fn download_repo(
        &self,
        repo: &str,
        revision: &str,
        first: &str,
        files: &FilesAfter,
        progress: &mut dyn Progress,
    ) -> Result<PathBuf, HubError> {
        let wanted = Wanted {
            first: vec![first.into()],
            rest: files,
        };
        self.download(RepoKind::Model, repo, revision, &wanted, progress)
    }

    /// Makes the cache hold one file of each of `files` (groups of alternative names, e.g.
    /// `test.jsonl` or `test.jsonl.gz` or `data/test-*.parquet`, a glob standing for every
    /// file of its folder that matches) of dataset `repo` at `revision`, and returns the
    /// snapshot folder. The first group is asked for at `revision`; the others at the commit it
    /// resolved to. Globs are expanded by the hub's tree API; a group whose only cached files
    /// are a glob's is asked for again online (`cache::first_missing`). Panics when `files` is
    /// empty (there is nothing to resolve the revision by).
    pub fn download_dataset(
        &self,
        repo: &str,
        revision: &str,
        files: &[Vec<String>],
        progress: &mut dyn Progress,
    ) -> Result<PathBuf, HubError> {
        let (first, rest) = files
            .split_first()
            .expect("a dataset needs at least one file");
        let rest = |_: &Path| Ok(rest.to_vec());
        let wanted = Wanted {
            first: first.clone(),
            rest: &rest,
        };
        self.download(RepoKind::Dataset, repo, revision, &wanted, progress)
    }

    fn download(
        &self,
        kind: RepoKind,
        repo: &str,
        revision: &str,
        wanted: &Wanted,
        progress: &mut dyn Progress,
    ) -> Result<PathBuf, HubError> {
        let cache = RepoCache::new(&self.opts.cache_dir, kind, repo);
        // The hub's URLs name a dataset `datasets/owner/name`; so do the errors.
        let url_repo = match kind {
            RepoKind::Model => repo.to_string(),
            RepoKind::Dataset => format!("datasets/{repo}"),
        };
        let cached = |why: String| self.cached_snapshot(&cache, &url_repo, revision, wanted, why);
        if self.opts.offline {
            return cached("HF_HUB_OFFLINE is set".into());
        }
        // A commit's files never change: a complete snapshot of it needs no question.
        if is_commit(revision) && first_missing(&cache.snapshot(revision), wanted, true)?.is_none()
        {
            return Ok(cache.snapshot(revision));
        }
        let target = Target {
            repo: &url_repo,
            revision,
            asked: revision,
            file: "",
        };
        let first = match self.metadata_one_of(&target, &wanted.first) {
            Ok(found) => found,
            Err(e) if e.is_unreachable() => {
                return cached(format!("the hub did not answer ({e})"));
            }
            Err(e) => return Err(e),
        };
        let commit = first[0].1.commit.clone();
        let snapshot = cache.snapshot(&commit);
        if first_missing(&snapshot, wanted, true)?.is_none() {
            self.set_ref(&cache, revision, &commit)?;
            return Ok(snapshot);
        }

        // Every file at the commit the first came from, so that a push in between cannot mix
        // two versions of the repo.
        let at_commit = Target {
            revision: &commit,
            ..target
        };
        let fetch = |found: Vec<(String, FileMeta)>, progress: &mut dyn Progress| {
            found.iter().try_for_each(|(file, meta)| {
                let t = Target { file, ..at_commit };
                self.fetch(&cache, &t, meta, progress)
            })
        };
        fetch(first, progress)?;
        for group in (wanted.rest)(&snapshot).map_err(HubError::Layout)? {
            if !group.is_empty() {
                fetch(self.metadata_one_of(&at_commit, &group)?, progress)?;
            }
        }
        self.set_ref(&cache, revision, &commit)?;
        Ok(snapshot)
    }

    /// What the hub says of the first of `candidates` the repo has: that file, or every file a
    /// glob candidate (`data/test-*.parquet`) matches, in name order; `FileNotFound` naming
    /// them all when it has none. The files of a glob are asked for at `base.revision` one by
    /// one: the first answer's commit then stands for all (as it does for a model's files).
    fn metadata_one_of(
        &self,
        base: &Target,
        candidates: &[String],
    ) -> Result<Vec<(String, FileMeta)>, HubError> {
        for candidate in candidates {
            let mut found = vec![];
            for file in self.expand(base, candidate)? {
                let t = Target {
                    file: &file,
                    ..*base
                };
                match self.http.metadata(&self.opts, &t) {
                    Ok(meta) => found.push((file, meta)),
                    Err(HubError::FileNotFound { .. }) if found.is_empty() => break,
                    Err(e) => return Err(e),
                }
            }
            if !found.is_empty() {
                return Ok(found);
            }
        }
        Err(HubError::FileNotFound {
            repo: base.repo.to_string(),
            revision: base.revision_label(),
            file: candidates.join(" or "),
        })
    }

    /// The files `candidate` names at `base.revision`: itself, or a glob's matches in its folder
    /// as the tree API lists them (none when the repo lacks the folder).
    fn expand(&self, base: &Target, candidate: &str) -> Result<Vec<String>, HubError> {
        check_relative(&Target {
            file: candidate,
            ..*base
        })?;
        let Some(glob) = Glob::new(candidate) else {
            return Ok(vec![candidate.to_string()]);
        };
        let folder = Target {
            file: glob.folder(),
            ..*base
        };
        match self.http.list(&self.opts, &folder) {
            Ok(listed) => Ok(glob.select(listed)),
            Err(HubError::FileNotFound { .. }) => Ok(vec![]),
            Err(e) => Err(e),
        }
    }

    /// Downloads the blob unless the cache has it, and links it into the snapshot.
    fn fetch(
        &self,
        cache: &RepoCache,
        target: &Target,
        meta: &FileMeta,
        progress: &mut dyn Progress,
    ) -> Result<(), HubError> {
        let blob = cache.blob(&meta.etag);
        if !blob.is_file() {
            // Another thread or process may hold it; once we have it, the blob may be there.
            let _lock = cache.lock(&meta.etag)?;
            if !blob.is_file() {
                self.http
                    .download(&self.opts, target, meta, &blob, progress)?;
            }
        }
        cache.link(&meta.commit, target.file, &meta.etag)?;
        Ok(())
    }

    fn set_ref(&self, cache: &RepoCache, revision: &str, commit: &str) -> Result<(), HubError> {
        if revision == commit {
            return Ok(());
        }
        cache.write_ref(revision, commit)
    }

    /// The snapshot `revision` pointed to when last online, if it is complete.
    fn cached_snapshot(
        &self,
        cache: &RepoCache,
        repo: &str,
        revision: &str,
        wanted: &Wanted,
        why: String,
    ) -> Result<PathBuf, HubError> {
        let not_cached = |file: String| {
            HubError::NotCached(Box::new(NotCached {
                repo: repo.to_string(),
                revision: revision.to_string(),
                file,
                cache: cache.dir.clone(),
                why: why.clone(),
            }))
        };
        let commit = if is_commit(revision) {
            revision.to_string()
        } else {
            // Never resolved: nothing of it can be there; the first wanted file is what comes first.
            cache
                .read_ref(revision)
                .ok_or_else(|| not_cached(wanted.first.join(" or ")))?
        };
        let snapshot = cache.snapshot(&commit);
        match first_missing(&snapshot, wanted, false)? {
            None => Ok(snapshot),
            Some(file) => Err(not_cached(file)),
        }
    }
}

/// What is being fetched, for URLs and error messages.
pub(crate) struct Target<'a> {
    pub repo: &'a str,
    /// The revision in the URL: what the user asked for, then the commit it resolved to.
    pub revision: &'a str,
    /// The revision the user asked for.
    pub asked: &'a str,
    pub file: &'a str,
}

impl Target<'_> {
    /// `main`, or `main at commit 1a2b…` once resolved.
    pub fn revision_label(&self) -> String {
        if self.asked == self.revision {
            self.revision.to_string()
        } else {
            format!("{} at commit {}", self.asked, self.revision)
        }
    }
}

fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// File names come from a downloaded modules.json or a task table: keep them inside the snapshot.
fn check_relative(t: &Target) -> Result<(), HubError> {
    let inside = Path::new(t.file)
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if inside {
        return Ok(());
    }
    Err(HubError::Protocol {
        url: format!("{} (revision {})", t.repo, t.revision_label()),
        message: format!("file `{}` points outside the repository", t.file),
    })
}
