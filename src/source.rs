//! Where a model's files come from: a folder on disk, or buffers handed over in memory (the
//! browser has no filesystem: the JS side fetches the files, keeps them in IndexedDB and gives
//! the bytes to the wasm module).
//!
//! [`ModelConfig::from_source`](crate::config::ModelConfig::from_source) and
//! [`Instructor::from_source`](crate::Instructor::from_source) are the one loader; a folder is
//! just the [`DirSource`]. File names are relative to the model root, with `/` separators
//! (`2_Dense/config.json`), as in `modules.json` and on the hub.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Random-access bytes: the weights are read tensor by tensor from these, so a source never has
/// to be copied whole into the model's memory (in the browser the buffers live in JS, outside
/// wasm memory, and only one tensor's bytes at a time cross into it).
pub trait ReadAt {
    /// Total length in bytes.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` with the bytes at `offset..offset + buf.len()`; an error if they run past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

fn past_end(offset: u64, want: usize, len: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!(
            "file truncated: wanted bytes {offset}..{} of a {len}-byte file",
            offset + want as u64
        ),
    )
}

impl ReadAt for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(past_end(offset, buf.len(), ReadAt::len(self))),
        }
    }
}

impl ReadAt for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.as_slice().read_at(offset, buf)
    }
}

/// Shared random-access bytes, as a source hands them to the weights loader.
pub type SharedBytes = Arc<dyn ReadAt + Send + Sync>;

/// A weights file as a source hands it over.
pub enum FileData {
    /// A file on disk: memory-mapped (safetensors) or read by candle's `.bin` reader.
    Path(PathBuf),
    /// Bytes in memory, read tensor by tensor.
    Bytes(SharedBytes),
}

/// Where a model's files come from.
pub trait ModelSource {
    /// The model's name in messages: the folder, or `repo@revision` for a fetched model. Errors
    /// name a file as `root().join(file)`.
    fn root(&self) -> &Path;
    /// Fails when the source itself is unusable (e.g. the folder does not exist).
    fn check(&self) -> Result<()> {
        Ok(())
    }
    fn exists(&self, file: &str) -> bool;
    /// A whole (small) file: configs, the tokenizer.
    fn read(&self, file: &str) -> Result<Vec<u8>>;
    /// A weights file.
    fn open(&self, file: &str) -> Result<FileData>;
}

/// A model folder on disk.
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self {
            root: root.as_ref().to_path_buf(),
        }
    }
}

impl ModelSource for DirSource {
    fn root(&self) -> &Path {
        &self.root
    }
    fn check(&self) -> Result<()> {
        if self.root.is_dir() {
            Ok(())
        } else {
            Err(Error::config(
                &self.root,
                "not a model folder (no such directory)",
            ))
        }
    }
    fn exists(&self, file: &str) -> bool {
        self.root.join(file).is_file()
    }
    fn read(&self, file: &str) -> Result<Vec<u8>> {
        let path = self.root.join(file);
        std::fs::read(&path).map_err(|e| Error::io(path, e))
    }
    fn open(&self, file: &str) -> Result<FileData> {
        let path = self.root.join(file);
        if path.is_file() {
            Ok(FileData::Path(path))
        } else {
            Err(Error::config(path, "missing file"))
        }
    }
}

/// Files held in memory, by name relative to the model root.
#[derive(Clone)]
pub struct MemorySource {
    root: PathBuf,
    files: HashMap<String, SharedBytes>,
}

impl MemorySource {
    /// `name` is what messages call the model (e.g. `hkunlp/instructor-base@<commit>`).
    pub fn new(name: impl Into<PathBuf>) -> Self {
        Self {
            root: name.into(),
            files: HashMap::new(),
        }
    }

    pub fn insert(&mut self, file: impl Into<String>, bytes: SharedBytes) -> &mut Self {
        self.files.insert(file.into(), bytes);
        self
    }

    pub fn insert_vec(&mut self, file: impl Into<String>, bytes: Vec<u8>) -> &mut Self {
        self.insert(file, Arc::new(bytes))
    }

    /// Reads every file of a folder (recursively) into memory; for tests of the in-memory path.
    #[cfg(feature = "testing")]
    pub fn from_folder_contents(dir: impl AsRef<Path>) -> Result<Self> {
        fn walk(base: &Path, dir: &Path, src: &mut MemorySource) -> Result<()> {
            for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
                let entry = entry.map_err(|e| Error::io(dir, e))?;
                let path = entry.path();
                if path.is_dir() {
                    walk(base, &path, src)?;
                } else {
                    let rel = path.strip_prefix(base).expect("under base");
                    let name = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/");
                    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                    src.insert_vec(name, bytes);
                }
            }
            Ok(())
        }
        let dir = dir.as_ref();
        let mut src = MemorySource::new(dir);
        walk(dir, dir, &mut src)?;
        Ok(src)
    }

    fn get(&self, file: &str) -> Result<&SharedBytes> {
        self.files
            .get(file)
            .ok_or_else(|| Error::config(self.root.join(file), "missing file"))
    }
}

impl ModelSource for MemorySource {
    fn root(&self) -> &Path {
        &self.root
    }
    fn exists(&self, file: &str) -> bool {
        self.files.contains_key(file)
    }
    fn read(&self, file: &str) -> Result<Vec<u8>> {
        let bytes = self.get(file)?;
        let mut out = vec![0u8; bytes.len() as usize];
        bytes
            .read_at(0, &mut out)
            .map_err(|e| Error::io(self.root.join(file), e))?;
        Ok(out)
    }
    fn open(&self, file: &str) -> Result<FileData> {
        Ok(FileData::Bytes(self.get(file)?.clone()))
    }
}

/// `Read + Seek` over [`ReadAt`], for the zip reader of torch's `.bin` files.
pub(crate) struct ReadAtCursor {
    src: SharedBytes,
    pos: u64,
}

impl ReadAtCursor {
    pub(crate) fn new(src: SharedBytes) -> Self {
        Self { src, pos: 0 }
    }
}

impl std::io::Read for ReadAtCursor {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.src.len().saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        self.src.read_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for ReadAtCursor {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let len = self.src.len() as i128;
        let pos = match to {
            std::io::SeekFrom::Start(p) => p as i128,
            std::io::SeekFrom::End(d) => len + d as i128,
            std::io::SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if pos < 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.pos = pos as u64;
        Ok(self.pos)
    }
}
