//! The model's weights as trainable `Var`s, and writing them back as a model folder.
//!
//! [`Instructor::from_source_with`] builds the model through one `VarBuilder` per weights file; here
//! each is backed by [`VarsFromFile`], which reads a tensor from the checkpoint in f32 and hands
//! out a `Var` in its place. Only tensors the model asks for become parameters (so the tied
//! `encoder.embed_tokens.weight` of `.bin` checkpoints does not), under the names it asked for,
//! which are also the names they are saved under.

use super::torch_pickle;
use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use instructor::config::WEIGHT_FILES;
use instructor::source::DirSource;
use instructor::{Error, Result};
use instructor::{Instructor, LoadOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

type Registry = Arc<Mutex<Vec<(String, Var)>>>;

/// A `VarBuilder` backend: each tensor read from `source` (in f32, the master weights) becomes a
/// `Var` registered in `vars`. The tensor is returned in f32 whatever dtype was asked for; the
/// encoder casts it to its compute dtype on each forward (see `model::t5`).
struct VarsFromFile {
    source: VarBuilder<'static>,
    vars: Registry,
}

impl SimpleBackend for VarsFromFile {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: candle_nn::Init,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let var = Var::from_tensor(&self.source.get_with_hints_dtype(s, name, h, DType::F32)?)?;
        self.vars
            .lock()
            .expect("not poisoned")
            .push((name.to_string(), var.clone()));
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("{name}: trainable weights are read with their shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.source.contains_tensor(name)
    }
}

/// What a weights file holds, which decides how it is written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// The encoder: `model.safetensors`, read by transformers.
    Transformer,
    /// A Dense layer: `pytorch_model.bin`, the only name sentence-transformers 2.2.2 reads.
    Dense,
}

/// The trainable weights of one file.
struct ParamFile {
    /// Folder of the module, relative to the model root ("" for the encoder).
    module: String,
    kind: FileKind,
    vars: Vec<(String, Var)>,
}

/// Every trainable weight of a model, in a fixed order (files in load order, names sorted) so
/// that sums over them, and therefore runs, are reproducible.
pub struct Params {
    files: Vec<ParamFile>,
}

impl Params {
    /// Loads a model folder with every weight as a `Var` (f32 master weights; `opts.dtype` is
    /// the precision of the encoder's matrix products).
    pub fn load(dir: &Path, opts: &LoadOptions) -> Result<(Instructor, Params)> {
        let loaded: Mutex<Vec<(PathBuf, Registry)>> = Mutex::default();
        let model = Instructor::from_source_with(&DirSource::new(dir), opts, |file, source| {
            let vars = Registry::default();
            loaded
                .lock()
                .expect("not poisoned")
                .push((file.to_path_buf(), vars.clone()));
            let (dtype, device) = (source.dtype(), source.device().clone());
            Ok(VarBuilder::from_backend(
                Box::new(VarsFromFile { source, vars }),
                dtype,
                device,
            ))
        })?;
        let root = &model.config().root;
        let files = loaded
            .into_inner()
            .expect("not poisoned")
            .into_iter()
            .map(|(file, vars)| {
                let module = file
                    .parent()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let kind = if file == model.config().weights {
                    FileKind::Transformer
                } else {
                    FileKind::Dense
                };
                let mut vars = std::mem::take(&mut *vars.lock().expect("not poisoned"));
                vars.sort_by(|a, b| a.0.cmp(&b.0));
                ParamFile { module, kind, vars }
            })
            .collect();
        Ok((model, Params { files }))
    }

    /// `(name, var)` for every weight; a Dense layer's names carry its folder
    /// (`2_Dense/linear.weight`), the encoder's are as in its checkpoint (`shared.weight`).
    pub fn vars(&self) -> impl Iterator<Item = (String, &Var)> {
        self.files.iter().flat_map(|f| {
            f.vars.iter().map(move |(name, var)| {
                let full = if f.module.is_empty() {
                    name.clone()
                } else {
                    format!("{}/{name}", f.module)
                };
                (full, var)
            })
        })
    }

    /// The weight called `name` (as [`vars`](Self::vars) names it).
    pub fn get(&self, name: &str) -> Option<&Var> {
        self.vars().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Writes the model folder `dest` (which must exist): the weights in f32, and every other
    /// file of `source` (the folder the model was loaded from) copied, except old weights and
    /// `skip` names, with `config.json`'s `torch_dtype` set to float32.
    pub fn save_model(&self, source: &Path, dest: &Path, skip: &[&str]) -> Result<()> {
        copy_model_files(source, dest, Path::new(""), skip)?;
        let config = dest.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config).map_err(|e| Error::io(&config, e))?)
                .map_err(|e| Error::config(&config, e))?;
        cfg["torch_dtype"] = "float32".into();
        write_file(
            &config,
            &serde_json::to_vec_pretty(&cfg).expect("a JSON value"),
        )?;

        for f in &self.files {
            let dir = dest.join(&f.module);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let host = |var: &Var| var.as_tensor().to_device(&Device::Cpu);
            match f.kind {
                FileKind::Transformer => {
                    let path = dir.join("model.safetensors");
                    let tensors = f
                        .vars
                        .iter()
                        .map(|(n, v)| Ok((n.clone(), host(v)?)))
                        .collect::<candle_core::Result<Vec<_>>>()?;
                    // transformers refuses safetensors files without `format` metadata.
                    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
                    safetensors::serialize_to_file(tensors, Some(meta), &path)
                        .map_err(|e| Error::weights(&path, e))?;
                    sync(&path)?;
                }
                FileKind::Dense => {
                    let path = dir.join("pytorch_model.bin");
                    let tensors = f
                        .vars
                        .iter()
                        .map(|(n, v)| {
                            let t = host(v)?;
                            Ok((n.clone(), t.dims().to_vec(), t.flatten_all()?.to_vec1()?))
                        })
                        .collect::<candle_core::Result<Vec<_>>>()?;
                    let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
                    torch_pickle::write_state_dict(std::io::BufWriter::new(file), &tensors)
                        .map_err(|e| Error::weights(&path, e))?;
                    sync(&path)?;
                }
            }
        }
        Ok(())
    }
}

/// Copies `source/rel` into `dest/rel` recursively, leaving out weight files (the trained ones
/// replace them) and names in `skip`.
fn copy_model_files(source: &Path, dest: &Path, rel: &Path, skip: &[&str]) -> Result<()> {
    let from = source.join(rel);
    let to = dest.join(rel);
    std::fs::create_dir_all(&to).map_err(|e| Error::io(&to, e))?;
    for entry in std::fs::read_dir(&from).map_err(|e| Error::io(&from, e))? {
        let entry = entry.map_err(|e| Error::io(&from, e))?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if WEIGHT_FILES.contains(&name_str.as_ref()) || skip.contains(&name_str.as_ref()) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_model_files(source, dest, &rel.join(&name), skip)?;
        } else {
            let target = to.join(&name);
            std::fs::copy(&path, &target).map_err(|e| Error::io(&path, e))?;
            sync(&target)?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))?;
    sync(path)
}

/// Flushes a written file to disk, so that the rename that publishes a checkpoint never
/// publishes files whose contents are still only in the page cache.
fn sync(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}
