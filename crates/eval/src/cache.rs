//! The embedding cache of `instructor eval`: one entry per (instruction, text) under a folder
//! that stands for one model, so that a rerun, a second metric or a dataset that changed by a few
//! rows embeds only the texts it has not seen.
//!
//! Layout: `{dir}/{shard}/{segment}.seg`, the shard being the first byte of the entry's key in
//! hex (256 folders), so that a lookup reads only the key tables of the shards it needs and never
//! the whole cache. A segment holds the entries one call added to one shard:
//!
//! ```text
//! b"IEC1" | dim: u32 LE | n: u32 LE | n keys (32 bytes: sha256) | n × dim f32 LE
//! ```
//!
//! Segments are never modified: each is written to a temporary file and renamed into place, so
//! an interrupted run (`Ctrl-C`) leaves at most a stray temporary file, which readers skip, and
//! never a segment that reads wrong. Two runs adding the same text store it twice, harmlessly.

use super::EvalError;
use instructor::{Embeddings, Input};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const MAGIC: &[u8; 4] = b"IEC1";
const HEADER: u64 = 12;

type Key = [u8; 32];

/// How many inputs came from the cache and how many were embedded, since the cache was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Inputs served from disk (or as a duplicate of another input of the same call).
    pub cached: usize,
    /// Inputs handed to the model.
    pub embedded: usize,
}

/// Per-text embeddings on disk for one model (the caller picks a folder per model).
pub struct DiskCache {
    dir: PathBuf,
    dim: usize,
    /// Whether new embeddings are stored (under MPI only rank 0 stores what all ranks computed).
    writes: bool,
    pub stats: CacheStats,
}

impl DiskCache {
    pub fn new(dir: impl Into<PathBuf>, dim: usize) -> Self {
        Self {
            dir: dir.into(),
            dim,
            writes: true,
            stats: CacheStats::default(),
        }
    }

    /// The same cache, read but never written: for the ranks of a run whose rank 0 stores the
    /// embeddings they computed together.
    pub fn read_only(self) -> Self {
        Self {
            writes: false,
            ..self
        }
    }

    /// The embeddings of `inputs`, in order: those on disk read from it, each distinct other one
    /// computed once by `embed` and stored before this returns.
    pub fn get_or_embed(
        &mut self,
        inputs: &[Input],
        embed: &mut dyn FnMut(&[Input]) -> Result<Embeddings, EvalError>,
    ) -> Result<Embeddings, EvalError> {
        let keys: Vec<Key> = inputs.iter().map(key).collect();
        let mut found = self.read(&keys)?;
        let mut missing: Vec<usize> = vec![];
        for (i, k) in keys.iter().enumerate() {
            if !found.contains_key(k) {
                found.insert(*k, vec![]);
                missing.push(i);
            }
        }
        if !missing.is_empty() {
            let todo: Vec<Input> = missing.iter().map(|&i| inputs[i].clone()).collect();
            let out = embed(&todo)?;
            if out.rows != todo.len() || out.dim != self.dim {
                return Err(EvalError::Cache {
                    path: self.dir.clone(),
                    msg: format!(
                        "the model returned {}×{} embeddings for {} inputs of dimension {}",
                        out.rows,
                        out.dim,
                        todo.len(),
                        self.dim
                    ),
                });
            }
            let new: Vec<(Key, &[f32])> = missing
                .iter()
                .enumerate()
                .map(|(r, &i)| (keys[i], out.row(r)))
                .collect();
            if self.writes {
                self.write(&new)?;
            }
            for (k, v) in new {
                found.insert(k, v.to_vec());
            }
        }
        self.stats.embedded += missing.len();
        self.stats.cached += inputs.len() - missing.len();
        let mut data = Vec::with_capacity(inputs.len() * self.dim);
        for k in &keys {
            data.extend_from_slice(&found[k]);
        }
        Ok(Embeddings {
            data,
            rows: inputs.len(),
            dim: self.dim,
        })
    }

    /// The stored vectors of those of `keys` on disk, reading only their shards.
    fn read(&self, keys: &[Key]) -> Result<HashMap<Key, Vec<f32>>, EvalError> {
        let mut by_shard: HashMap<u8, Vec<&Key>> = HashMap::new();
        for k in keys {
            by_shard.entry(k[0]).or_default().push(k);
        }
        let mut found = HashMap::new();
        for (shard, wanted) in by_shard {
            let dir = self.dir.join(format!("{shard:02x}"));
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(EvalError::io(&dir, e)),
            };
            let wanted: std::collections::HashSet<&Key> = wanted.into_iter().collect();
            for entry in entries {
                let path = entry.map_err(|e| EvalError::io(&dir, e))?.path();
                if path.extension().is_some_and(|x| x == "seg") {
                    self.read_segment(&path, &wanted, &mut found)
                        .map_err(|msg| EvalError::Cache { path, msg })?;
                }
            }
        }
        Ok(found)
    }

    /// Adds the vectors of `wanted` keys that `path` holds to `found`; the error says what is
    /// wrong with the segment (the caller names it).
    fn read_segment(
        &self,
        path: &Path,
        wanted: &std::collections::HashSet<&Key>,
        found: &mut HashMap<Key, Vec<f32>>,
    ) -> Result<(), String> {
        self.read_segment_io(path, wanted, found)
            .map_err(|e| e.to_string())?
    }

    fn read_segment_io(
        &self,
        path: &Path,
        wanted: &std::collections::HashSet<&Key>,
        found: &mut HashMap<Key, Vec<f32>>,
    ) -> std::io::Result<Result<(), String>> {
        let mut f = File::open(path)?;
        let mut header = [0u8; HEADER as usize];
        f.read_exact(&mut header)?;
        let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
        let (dim, n) = (word(4) as u64, word(8) as u64);
        let len = f.metadata()?.len();
        if &header[..4] != MAGIC || dim != self.dim as u64 || len != HEADER + n * (32 + dim * 4) {
            return Ok(Err(format!(
                "not a cache segment of {}-d embeddings (delete it)",
                self.dim
            )));
        }
        let mut table = vec![0u8; n as usize * 32];
        f.read_exact(&mut table)?;
        let vectors = HEADER + n * 32;
        let mut buf = vec![0u8; self.dim * 4];
        for (row, k) in table.chunks_exact(32).enumerate() {
            let k: Key = k.try_into().expect("32 bytes");
            if !wanted.contains(&k) || found.contains_key(&k) {
                continue;
            }
            f.seek(SeekFrom::Start(vectors + row as u64 * dim * 4))?;
            f.read_exact(&mut buf)?;
            let v = buf
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect();
            found.insert(k, v);
        }
        Ok(Ok(()))
    }

    /// One new segment per shard the entries fall in, each written whole, then renamed.
    fn write(&self, entries: &[(Key, &[f32])]) -> Result<(), EvalError> {
        let mut by_shard: HashMap<u8, Vec<&(Key, &[f32])>> = HashMap::new();
        for e in entries {
            by_shard.entry(e.0[0]).or_default().push(e);
        }
        for (shard, entries) in by_shard {
            let dir = self.dir.join(format!("{shard:02x}"));
            fs::create_dir_all(&dir).map_err(|e| EvalError::io(&dir, e))?;
            let path = dir.join(segment_name());
            let tmp = dir.join(format!(
                ".{}.tmp",
                path.file_name().expect("named").to_string_lossy()
            ));
            let written = (|| -> std::io::Result<()> {
                let mut w = BufWriter::new(File::create(&tmp)?);
                w.write_all(MAGIC)?;
                w.write_all(&(self.dim as u32).to_le_bytes())?;
                w.write_all(&(entries.len() as u32).to_le_bytes())?;
                for (k, _) in &entries {
                    w.write_all(k)?;
                }
                for (_, v) in &entries {
                    for x in v.iter() {
                        w.write_all(&x.to_le_bytes())?;
                    }
                }
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                fs::rename(&tmp, &path)
            })();
            if let Err(e) = written {
                let _ = fs::remove_file(&tmp);
                return Err(EvalError::io(&path, e));
            }
        }
        Ok(())
    }
}

/// sha256 of the length-prefixed instruction and text: equal inputs, equal keys; no two
/// different (instruction, text) pairs share an encoding.
fn key(input: &Input) -> Key {
    let mut h = Sha256::new();
    for part in [&input.instruction, &input.text] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// Unique among this process's segments and other processes' (pid, time, counter).
fn segment_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}-{}-{n}.seg", std::process::id())
}
