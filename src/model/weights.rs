//! Reading a weights file (`model.safetensors` or torch's `pytorch_model.bin`) into a
//! `VarBuilder`, converting to the compute dtype as tensors are requested.
//!
//! A file on disk is memory-mapped (safetensors) or read with candle's `.bin` reader. A file in
//! memory ([`FileData::Bytes`], the browser's case) is indexed once (the safetensors header, or
//! the zip directory and pickle of a `.bin`) and then read tensor by tensor as the model asks for
//! them: only the tensors the model uses are built, each straight into the compute dtype, and
//! the source's bytes are never copied whole.

use crate::error::{candle_message, Error, Result};
use crate::source::{FileData, ReadAtCursor, SharedBytes};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use std::collections::HashMap;
use std::path::Path;

/// Opens a weights file from any [`ModelSource`](crate::source::ModelSource); `name` (the file's
/// path relative to the source's root, joined to it) picks the format by its extension and names
/// the file in errors. Truncated or malformed files fail here; a missing tensor or one of the
/// wrong shape fails when the model asks for it (the caller names the file then).
pub(crate) fn load_weights_from(
    data: FileData,
    name: &Path,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    let format = match name.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Format::Safetensors,
        Some("bin") | Some("pt") | Some("pth") => Format::Pth,
        _ => {
            return Err(Error::weights(
                name,
                "unknown weights format (expected .safetensors or .bin)",
            ))
        }
    };
    // candle's file reader has no int8: a quantized file is read whole and indexed like a buffer
    // (it is a quarter of the f32 one).
    #[cfg(not(target_arch = "wasm32"))]
    let data = match data {
        FileData::Path(path) if matches!(format, Format::Safetensors) && has_int8(&path)? => {
            let bytes = std::fs::read(&path)
                .map_err(|e| Error::weights(name, format!("cannot read: {e}")))?;
            FileData::Bytes(std::sync::Arc::new(bytes))
        }
        data => data,
    };
    let vb = match (data, format) {
        // SAFETY: the file is memory-mapped read-only; like every mmap it must not be truncated
        // by another process while mapped, which the hub cache never does (blobs are immutable).
        (FileData::Path(path), Format::Safetensors) => unsafe {
            VarBuilder::from_mmaped_safetensors(&[path], dtype, device)
        },
        (FileData::Path(path), Format::Pth) => VarBuilder::from_pth(path, dtype, device),
        (FileData::Bytes(bytes), format) => {
            let backend = match format {
                Format::Safetensors => ReaderBackend::safetensors(bytes),
                Format::Pth => ReaderBackend::pth(bytes),
            };
            backend.map(|b| VarBuilder::from_backend(Box::new(b), dtype, device.clone()))
        }
    };
    vb.map_err(|e| Error::weights(name, format!("cannot read weights: {}", candle_message(&e))))
}

/// Whether a safetensors file's header names an int8 tensor.
#[cfg(not(target_arch = "wasm32"))]
fn has_int8(path: &Path) -> Result<bool> {
    use std::io::Read;
    let err = |e: std::io::Error| Error::weights(path, format!("cannot read: {e}"));
    let mut f = std::fs::File::open(path).map_err(err)?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(err)?;
    let mut header = vec![0u8; u64::from_le_bytes(len).min(100_000_000) as usize];
    f.read_exact(&mut header).map_err(err)?;
    let needle = b"\"dtype\":\"I8\"";
    Ok(header.windows(needle.len()).any(|w| w == needle))
}

#[derive(Clone, Copy)]
enum Format {
    Safetensors,
    Pth,
}

/// Where one tensor's bytes lie in the file.
struct Entry {
    /// `None`: int8, which candle has no dtype for; read into f32 (exactly).
    dtype: Option<DType>,
    /// The dims as stored (already reversed for a Fortran-ordered torch tensor).
    dims: Vec<usize>,
    offset: u64,
    /// Torch tensors saved transposed (Fortran order) are permuted back after reading.
    fortran: bool,
}

/// A `VarBuilder` backend over bytes in memory.
struct ReaderBackend {
    bytes: SharedBytes,
    index: HashMap<String, Entry>,
}

fn msg(m: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(m.to_string())
}

fn st_dtype(s: &str) -> candle_core::Result<Option<DType>> {
    Ok(Some(match s {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "U8" => DType::U8,
        "U32" => DType::U32,
        "I64" => DType::I64,
        "I8" => return Ok(None),
        other => return Err(msg(format!("unsupported safetensors dtype {other}"))),
    }))
}

/// Bytes per element of an entry's dtype.
fn entry_size(dtype: Option<DType>) -> u64 {
    dtype.map_or(1, |d| d.size_in_bytes() as u64)
}

impl ReaderBackend {
    /// Indexes a safetensors file: an 8-byte little-endian header length, the JSON header, data.
    fn safetensors(bytes: SharedBytes) -> candle_core::Result<Self> {
        let io = |e: std::io::Error| msg(e);
        let mut len = [0u8; 8];
        bytes.read_at(0, &mut len).map_err(io)?;
        let header_len = u64::from_le_bytes(len);
        if header_len > 100_000_000 || 8 + header_len > bytes.len() {
            return Err(msg(format!(
                "not a safetensors file (header length {header_len}, file length {})",
                bytes.len()
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        bytes.read_at(8, &mut header).map_err(io)?;
        #[derive(serde::Deserialize)]
        struct Info {
            dtype: String,
            shape: Vec<usize>,
            data_offsets: (u64, u64),
        }
        let header: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&header).map_err(|e| msg(format!("safetensors header: {e}")))?;
        let data_start = 8 + header_len;
        let mut index = HashMap::new();
        for (name, value) in header {
            if name == "__metadata__" {
                continue;
            }
            let info: Info = serde_json::from_value(value)
                .map_err(|e| msg(format!("safetensors header, tensor {name}: {e}")))?;
            let dtype = st_dtype(&info.dtype)?;
            let (start, end) = info.data_offsets;
            let want = info.shape.iter().product::<usize>() as u64 * entry_size(dtype);
            if end < start || end - start != want || data_start + end > bytes.len() {
                return Err(msg(format!(
                    "tensor {name}: data {start}..{end} does not fit its shape {:?} or the \
                     {}-byte file (truncated?)",
                    info.shape,
                    bytes.len()
                )));
            }
            index.insert(
                name,
                Entry {
                    dtype,
                    dims: info.shape,
                    offset: data_start + start,
                    fortran: false,
                },
            );
        }
        Ok(Self { bytes, index })
    }

    /// Indexes torch's zip format: the pickled state dict in `*/data.pkl` names each tensor's
    /// storage (`*/data/N`, stored uncompressed), dtype, shape, strides and offset.
    fn pth(bytes: SharedBytes) -> candle_core::Result<Self> {
        use candle_core::pickle::{Object, Stack};
        use std::io::Read;
        let mut zip = zip::ZipArchive::new(ReadAtCursor::new(bytes.clone()))?;
        let names = zip
            .file_names()
            .map(|f| f.map(|f| f.into_owned()))
            .collect::<Result<Vec<String>, _>>()?;
        let mut infos = vec![];
        for file_name in names.iter().filter(|n| n.ends_with("data.pkl")) {
            let dir_name = std::path::PathBuf::from(file_name.strip_suffix(".pkl").unwrap());
            let mut pkl = vec![];
            zip.by_name(file_name)?.read_to_end(&mut pkl)?;
            let mut stack = Stack::empty();
            stack.read_loop(&mut pkl.as_slice())?;
            // As candle's `read_pth_tensor_info`: a TorchScript module's state, or a plain dict.
            let obj = match stack.finalize()? {
                Object::Build { callable, args } => match *callable {
                    Object::Reduce { callable, args: _ } => match *callable {
                        Object::Class {
                            module_name,
                            class_name,
                        } if module_name == "__torch__" && class_name == "Module" => *args,
                        _ => continue,
                    },
                    _ => continue,
                },
                obj => obj,
            };
            if let Object::Dict(items) = obj {
                for (name, value) in items {
                    if let Some(info) = value.into_tensor_info(name, &dir_name)? {
                        infos.push(info);
                    }
                }
            }
        }
        let mut storages: HashMap<String, (u64, u64)> = HashMap::new();
        let mut index = HashMap::new();
        for info in infos {
            if !storages.contains_key(&info.path) {
                let f = zip.by_name(&info.path)?;
                if f.compression() != zip::CompressionMethod::Stored {
                    return Err(msg(format!(
                        "{}: compressed storage (torch.save never compresses)",
                        info.path
                    )));
                }
                let start = f
                    .data_start()
                    .ok_or_else(|| msg(format!("{}: no data offset", info.path)))?;
                storages.insert(info.path.clone(), (start, f.size()));
            }
            let (start, size) = storages[&info.path];
            let layout = &info.layout;
            let fortran = !layout.is_contiguous() && layout.is_fortran_contiguous();
            if !layout.is_contiguous() && !fortran {
                return Err(msg(format!(
                    "tensor {}: non-contiguous layout {layout:?}",
                    info.name
                )));
            }
            let mut dims = layout.dims().to_vec();
            if fortran {
                dims.reverse();
            }
            // The layout's start offset is in bytes here (candle's pickle reader scales it).
            let offset = layout.start_offset() as u64;
            let nbytes = layout.shape().elem_count() as u64 * info.dtype.size_in_bytes() as u64;
            if offset + nbytes > size {
                return Err(msg(format!(
                    "tensor {}: {nbytes} bytes at {offset} overrun its {size}-byte storage",
                    info.name
                )));
            }
            index.insert(
                info.name,
                Entry {
                    dtype: Some(info.dtype),
                    dims,
                    offset: start + offset,
                    fortran,
                },
            );
        }
        Ok(Self { bytes, index })
    }

    fn load(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let e = self
            .index
            .get(name)
            .ok_or_else(|| candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            })?;
        let mut t = match e.dtype {
            None => {
                let u = self.read::<u8>(e)?.flatten_all()?.to_vec1::<u8>()?;
                let v: Vec<f32> = u.into_iter().map(|b| b as i8 as f32).collect();
                Tensor::from_vec(v, e.dims.as_slice(), &Device::Cpu)?
            }
            Some(DType::F32) => self.read::<f32>(e)?,
            Some(DType::F16) => self.read::<half::f16>(e)?,
            Some(DType::BF16) => self.read::<half::bf16>(e)?,
            Some(DType::F64) => self.read::<f64>(e)?,
            Some(DType::U8) => self.read::<u8>(e)?,
            Some(DType::U32) => self.read::<u32>(e)?,
            Some(DType::I64) => self.read::<i64>(e)?,
            Some(other) => return Err(msg(format!("tensor {name}: unsupported dtype {other:?}"))),
        };
        if e.fortran && e.dims.len() > 1 {
            let rev: Vec<usize> = (0..e.dims.len()).rev().collect();
            t = t.permute(rev)?.contiguous()?;
        }
        t.to_dtype(dtype)?.to_device(dev)
    }
}

impl ReaderBackend {
    /// Reads one tensor's bytes straight into its typed buffer: a tensor passes through memory
    /// once, not as raw bytes and again as values (the embedding table of instructor-xl alone is
    /// 131 MB in f32, and wasm memory ends at 4 GiB).
    fn read<T: candle_core::WithDType>(&self, e: &Entry) -> candle_core::Result<Tensor> {
        let n: usize = e.dims.iter().product();
        let mut values = vec![T::from_f64(0.0); n];
        // SAFETY: `T` is one of candle's numeric dtypes: plain data without padding, for which
        // every bit pattern is a value. Files store them little-endian, like every target this
        // crate builds for (x86_64, aarch64, wasm32).
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                values.as_mut_ptr().cast::<u8>(),
                std::mem::size_of_val(&values[..]),
            )
        };
        self.bytes.read_at(e.offset, bytes).map_err(msg)?;
        Tensor::from_vec(values, e.dims.as_slice(), &Device::Cpu)
    }
}

impl SimpleBackend for ReaderBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self.load(name, dtype, dev)?;
        if t.shape() != &s {
            Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: s,
                got: t.shape().clone(),
            }
            .bt())?
        }
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.load(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}
