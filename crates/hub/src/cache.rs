//! The huggingface_hub cache layout, so that Python and this crate share downloads:
//!
//! ```text
//! {cache}/models--{owner}--{name}/     (datasets: datasets--{owner}--{name}/, same inside)
//!     blobs/{etag}                       the bytes (etag: sha256 for LFS files, git sha1 otherwise)
//!     blobs/{etag}.incomplete            a download in progress, resumed from its length
//!     snapshots/{commit}/{path}          relative symlinks to ../../blobs/{etag}
//!     refs/{revision}                    the commit the revision pointed to, last time we asked
//! {cache}/.locks/{models|datasets}--{owner}--{name}/{etag}.lock
//! ```
//!
//! The lock files live where huggingface_hub (≥ 0.15) puts them, so that a download by Python and
//! one by us exclude each other too (both take `flock` locks).

use super::error::HubError;
use super::RepoKind;
use fs2::FileExt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// One repo's folder in the cache.
pub(crate) struct RepoCache {
    pub(crate) dir: PathBuf,
    locks: PathBuf,
}

impl RepoCache {
    pub(crate) fn new(cache_dir: &Path, kind: RepoKind, repo: &str) -> Self {
        let name = folder_name(kind, repo);
        Self {
            dir: cache_dir.join(&name),
            locks: cache_dir.join(".locks").join(name),
        }
    }

    pub(crate) fn blob(&self, etag: &str) -> PathBuf {
        self.dir.join("blobs").join(etag)
    }

    pub(crate) fn snapshot(&self, commit: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit)
    }

    /// The commit `revision` pointed to when it was last resolved, if ever.
    pub(crate) fn read_ref(&self, revision: &str) -> Option<String> {
        let text = fs::read_to_string(self.dir.join("refs").join(revision)).ok()?;
        Some(text.trim().to_string()).filter(|c| !c.is_empty())
    }

    pub(crate) fn write_ref(&self, revision: &str, commit: &str) -> Result<(), HubError> {
        if self.read_ref(revision).as_deref() == Some(commit) {
            return Ok(());
        }
        let path = self.dir.join("refs").join(revision);
        create_parent(&path)?;
        let tmp = temp_beside(&path);
        fs::write(&tmp, commit)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = fs::remove_file(&tmp);
                HubError::io(&path, e)
            })
    }

    /// Takes the exclusive lock on one blob; released when the returned file is dropped.
    pub(crate) fn lock(&self, etag: &str) -> Result<File, HubError> {
        let path = self.locks.join(format!("{etag}.lock"));
        create_parent(&path)?;
        let file = File::create(&path).map_err(|e| HubError::io(&path, e))?;
        file.lock_exclusive().map_err(|e| HubError::io(&path, e))?;
        Ok(file)
    }

    /// Points `snapshots/{commit}/{file}` at the blob, replacing whatever was there in one rename
    /// so that a concurrent reader sees the old link or the new one, never none.
    pub(crate) fn link(&self, commit: &str, file: &str, etag: &str) -> Result<PathBuf, HubError> {
        let link = self.snapshot(commit).join(file);
        // From snapshots/{commit}/a/b up to the repo folder: one `..` per component of `file`,
        // plus two for `snapshots/{commit}` (what huggingface_hub's `os.path.relpath` gives).
        let depth = Path::new(file).components().count() + 1;
        let mut target: PathBuf = std::iter::repeat_n("..", depth).collect();
        target.push("blobs");
        target.push(etag);
        if fs::read_link(&link).ok().as_deref() == Some(target.as_path()) {
            return Ok(link);
        }
        create_parent(&link)?;
        let tmp = temp_beside(&link);
        symlink(&target, &self.blob(etag), &tmp)
            .and_then(|()| fs::rename(&tmp, &link))
            .map_err(|e| {
                let _ = fs::remove_file(&tmp);
                HubError::io(&link, e)
            })?;
        Ok(link)
    }
}

#[cfg(unix)]
fn symlink(target: &Path, _blob: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// Windows without developer mode cannot make symlinks; huggingface_hub then keeps a copy in the
/// snapshot, and so do we.
#[cfg(not(unix))]
fn symlink(target: &Path, blob: &Path, link: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(target, link).or_else(|_| fs::copy(blob, link).map(drop))
}

/// `models--owner--name` / `datasets--owner--name`, as huggingface_hub names a repo's folder.
pub(crate) fn folder_name(kind: RepoKind, repo: &str) -> String {
    let prefix = match kind {
        RepoKind::Model => "models",
        RepoKind::Dataset => "datasets",
    };
    format!("{prefix}--{}", repo.replace('/', "--"))
}

/// What a caller needs of a repo. `first` (one of its names) is asked for at the revision the
/// user gave, and its answer tells the commit; `rest` names, from a snapshot holding `first`, the
/// further files as groups of which one file each must be there (a model's weights: safetensors
/// or .bin). A model's `rest` reads its modules.json; a dataset's is a fixed list.
pub(crate) struct Wanted<'a> {
    pub first: Vec<String>,
    pub rest: &'a FilesAfter<'a>,
}

/// Files as groups of alternative names, one of each group wanted. A name may be a glob
/// (`data/test-*.parquet`: every file of that folder that matches).
pub type Groups = Vec<Vec<String>>;

/// The files to fetch after the first, read from the snapshot folder that holds the first (for
/// a model: what its `modules.json` names). The caller's own rule: the hub knows no model layout.
pub type FilesAfter<'a> =
    dyn Fn(&Path) -> Result<Groups, Box<dyn std::error::Error + Send + Sync>> + 'a;

/// A name with `*` in its last part (`data/test-*.parquet`): every file of that folder that
/// matches, as the shards of a split the `datasets` library writes
/// (`test-00000-of-00003.parquet`, ...), whose number nobody can know before listing them.
pub(crate) struct Glob<'a> {
    folder: &'a str,
    pattern: glob::Pattern,
}

impl<'a> Glob<'a> {
    pub fn new(name: &'a str) -> Option<Self> {
        let (folder, last) = name.rsplit_once('/').unwrap_or(("", name));
        if !last.contains('*') || folder.contains('*') {
            return None;
        }
        let pattern = glob::Pattern::new(&glob::Pattern::escape(last).replace("[*]", "*")).ok()?;
        Some(Self { folder, pattern })
    }

    /// The folder to list, relative to the repo root (`""` for the root).
    pub fn folder(&self) -> &'a str {
        self.folder
    }

    /// The paths (from the repo root) of `listed` that are in the folder and match, sorted.
    pub fn select(&self, listed: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut v: Vec<String> = listed
            .into_iter()
            .filter(|p| {
                let (folder, last) = p.rsplit_once('/').unwrap_or(("", p));
                folder == self.folder && self.pattern.matches(last)
            })
            .collect();
        v.sort();
        v
    }

    /// Whether the local folder `root` holds a match.
    fn present_in(&self, root: &Path) -> bool {
        let entries = fs::read_dir(root.join(self.folder)).into_iter().flatten();
        entries
            .flatten()
            .any(|e| e.path().is_file() && self.pattern.matches(&e.file_name().to_string_lossy()))
    }
}

/// The first of `wanted`'s groups with no file in `dir` (its names joined with ` or `), or
/// `None` when the folder holds all of them. A [`Glob`]'s files are known complete only from
/// the hub's listing (one shard of three may be all that an interrupted run left), so `online`
/// a glob never counts as there; offline one match does (the reader checks a set of shards).
pub(crate) fn first_missing(
    dir: &Path,
    wanted: &Wanted,
    online: bool,
) -> Result<Option<String>, HubError> {
    let present = |f: &String| match Glob::new(f) {
        Some(glob) => !online && glob.present_in(dir),
        None => dir.join(f).is_file(),
    };
    let missing = |group: &[String]| !group.is_empty() && !group.iter().any(present);
    if missing(&wanted.first) {
        return Ok(Some(wanted.first.join(" or ")));
    }
    Ok((wanted.rest)(dir)
        .map_err(HubError::Layout)?
        .into_iter()
        .find(|g| missing(g))
        .map(|g| g.join(" or ")))
}

fn create_parent(path: &Path) -> Result<(), HubError> {
    let parent = path.parent().expect("cache paths have a parent");
    fs::create_dir_all(parent).map_err(|e| HubError::io(parent, e))
}

/// A name beside `path` that no other thread or process uses, for write-then-rename.
pub(crate) fn temp_beside(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

/// A repo in the cache, as `instructor cache ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRepo {
    /// `owner/name`.
    pub repo: String,
    pub dir: PathBuf,
    /// Bytes under `blobs/` (downloads in progress included).
    pub size: u64,
    /// `(revision, commit)` pairs from `refs/`.
    pub refs: Vec<(String, String)>,
    /// Commits under `snapshots/`.
    pub snapshots: Vec<String>,
}

/// The model repos in the cache, sorted by name. A missing cache folder is an empty cache.
pub fn list(cache_dir: &Path) -> Result<Vec<CachedRepo>, HubError> {
    let entries = match fs::read_dir(cache_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(HubError::io(cache_dir, e)),
    };
    let mut repos = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| HubError::io(cache_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only models: the dataset folders `instructor eval` fills, and spaces, are not listed.
        let Some(id) = name.strip_prefix("models--") else {
            continue;
        };
        let dir = entry.path();
        let repo = id.replacen("--", "/", 1);
        let size = files_under(&dir.join("blobs"))?
            .iter()
            .map(|(_, len)| len)
            .sum();
        let refs = files_under(&dir.join("refs"))?
            .into_iter()
            .filter_map(|(rev, _)| {
                let commit = RepoCache::new(cache_dir, RepoKind::Model, &repo).read_ref(&rev)?;
                Some((rev, commit))
            })
            .collect();
        let mut snapshots = names_in(&dir.join("snapshots"))?;
        snapshots.sort();
        repos.push(CachedRepo {
            repo,
            dir,
            size,
            refs,
            snapshots,
        });
    }
    repos.sort_by(|a, b| a.repo.cmp(&b.repo));
    Ok(repos)
}

/// Deletes a model repo (and its lock folder) from the cache; returns what it held.
pub fn remove(cache_dir: &Path, repo: &str) -> Result<CachedRepo, HubError> {
    let name = folder_name(RepoKind::Model, repo);
    let Some(found) = list(cache_dir)?
        .into_iter()
        .find(|r| r.dir.file_name() == Some(name.as_ref()))
    else {
        return Err(HubError::NotInCache {
            repo: repo.to_string(),
            cache: cache_dir.to_path_buf(),
        });
    };
    fs::remove_dir_all(&found.dir).map_err(|e| HubError::io(&found.dir, e))?;
    let locks = cache_dir.join(".locks").join(&name);
    if locks.exists() {
        fs::remove_dir_all(&locks).map_err(|e| HubError::io(&locks, e))?;
    }
    Ok(found)
}

/// Files under `dir`, recursively, as (path relative to `dir` with `/`, length). Symlinks are not
/// followed. A missing folder is empty.
fn files_under(dir: &Path) -> Result<Vec<(String, u64)>, HubError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(HubError::io(&d, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| HubError::io(&d, e))?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let meta = entry
                .metadata()
                .map_err(|e| HubError::io(entry.path(), e))?;
            if meta.is_dir() {
                stack.push((entry.path(), format!("{name}/")));
            } else {
                out.push((name, meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn names_in(dir: &Path) -> Result<Vec<String>, HubError> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                e.map(|e| e.file_name().to_string_lossy().into_owned())
                    .map_err(|err| HubError::io(dir, err))
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(HubError::io(dir, e)),
    }
}
