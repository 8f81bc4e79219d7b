//! An int8 copy of a model folder (`instructor quantize`, and the browser's cache of a model
//! quantized at load time): the same sentence-transformers layout, loadable by this crate.
//!
//! Every 2-D weight the model reads (the projections, the feed-forward, the Dense head and the
//! token embedding table), except the tiny relative-position table, is stored as int8 (`I8`)
//! rows with one f32 scale per row in `<name>_scale`: exactly the values [`Dtype::Int8`] computes
//! with when it quantizes at load time, so both ways give the same embeddings bit for bit.
//! Norms, biases and the position table stay f32. `config.json` gains a `quantization_config`
//! ([`QUANT_METHOD`]) that tells a loader so.
//!
//! [`Dtype::Int8`]: crate::Dtype::Int8

use crate::config::{needed_files, parse_modules, ModelConfig, QUANT_METHOD};
use crate::error::{candle_message, Error, Result};
use crate::head::Head;
use crate::model::int8::quantize_rows;
use crate::model::{load_weights_from, T5Encoder};
use crate::source::ModelSource;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The files of the int8 folder, `(name relative to the root, bytes)`: every file the model needs,
/// with `model.safetensors` in place of each module's weights.
pub fn quantize_model(src: &dyn ModelSource) -> Result<Vec<(String, Vec<u8>)>> {
    let config = ModelConfig::from_source(src)?;
    if config.quantized {
        return Err(Error::config(
            src.root().join("config.json"),
            "the model is quantized already (quantization_config)",
        ));
    }
    let open = |file: &Path| -> Result<(VarBuilder<'static>, Arc<Recorded>)> {
        let data = src.open(&config.relative(file))?;
        let inner = load_weights_from(data, file, DType::F32, &Device::Cpu)?;
        let seen = Arc::new(Recorded::default());
        let recorder = Recorder {
            inner,
            seen: seen.clone(),
        };
        Ok((
            VarBuilder::from_backend(Box::new(recorder), DType::F32, Device::Cpu),
            seen,
        ))
    };
    let mut out = vec![];
    // What the encoder reads, read as the float model reads it.
    let (vb, seen) = open(&config.weights)?;
    T5Encoder::load(vb, &config.t5, false)
        .map_err(|e| Error::weights(&config.weights, candle_message(&e)))?;
    let weights_dir = config.relative(&config.weights);
    let weights_dir = weights_dir.rsplit_once('/').map(|(d, _)| d);
    out.push((
        in_dir(weights_dir, "model.safetensors"),
        safetensors(&seen)?,
    ));
    for head in &config.heads {
        if let crate::config::HeadConfig::Dense(cfg) = head {
            let (vb, seen) = open(&cfg.weights)?;
            Head::load_all(std::slice::from_ref(head), |_| Ok(vb.clone()), false)?;
            let dir = config.relative(&cfg.weights);
            let dir = dir.rsplit_once('/').map(|(d, _)| d);
            out.push((in_dir(dir, "model.safetensors"), safetensors(&seen)?));
        }
    }

    let modules = parse_modules(
        &String::from_utf8_lossy(&src.read("modules.json")?),
        &src.root().join("modules.json"),
    )?;
    for file in needed_files(&modules).0 {
        if !src.exists(&file) {
            continue;
        }
        let mut bytes = src.read(&file)?;
        if file == "config.json" {
            let path = src.root().join("config.json");
            let mut cfg: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| Error::config(&path, e))?;
            cfg["quantization_config"] = serde_json::json!({
                "quant_method": QUANT_METHOD,
                "bits": 8,
                "weights": "symmetric int8 per row (output channel) of every 2-D weight but \
                            relative_attention_bias; f32 scales in <name>_scale",
                "activations": "symmetric int8 per token, at run time",
            });
            bytes = serde_json::to_vec_pretty(&cfg).map_err(|e| Error::config(&path, e))?;
        }
        out.push((file, bytes));
    }
    Ok(out)
}

fn in_dir(dir: Option<&str>, file: &str) -> String {
    match dir {
        Some(d) => format!("{d}/{file}"),
        None => file.to_string(),
    }
}

/// A tensor as the int8 file stores it: `(name, dtype, shape, little-endian bytes)`.
type Stored = (String, safetensors::Dtype, Vec<usize>, Vec<u8>);

/// Tensors in the order the model asked for them, already in their stored form.
#[derive(Default)]
struct Recorded(Mutex<Vec<Stored>>);

/// A `VarBuilder` backend that reads each tensor the model asks for from `inner`, keeps it in its
/// stored form (so what the model reads is what the file holds, with no list of names to keep in
/// step) and hands the model zeros broadcast to the shape: the model built on it holds no weights,
/// so quantizing needs one f32 tensor in memory at a time (the browser's wasm memory is small).
struct Recorder {
    inner: VarBuilder<'static>,
    seen: Arc<Recorded>,
}

impl Recorder {
    fn keep(
        &self,
        name: &str,
        t: Tensor,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let shape = t.shape().clone();
        let mut seen = self.seen.0.lock().expect("not poisoned");
        if !seen.iter().any(|(n, ..)| n == name) {
            seen.extend(stored(name, &t)?);
        }
        Tensor::zeros(1, dtype, dev)?.broadcast_as(shape)
    }
}

impl SimpleBackend for Recorder {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self
            .inner
            .get_with_hints_dtype(s, name, Default::default(), DType::F32)?;
        self.keep(name, t, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let t = self.inner.get_unchecked_dtype(name, DType::F32)?;
        self.keep(name, t, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner.contains_tensor(name)
    }
}

/// A tensor's stored form: a 2-D weight (but the position table) as int8 rows and their scales,
/// anything else as f32.
fn stored(name: &str, t: &Tensor) -> candle_core::Result<Vec<Stored>> {
    use safetensors::Dtype as St;
    let f32_bytes = |v: Vec<f32>| {
        v.into_iter()
            .flat_map(f32::to_le_bytes)
            .collect::<Vec<u8>>()
    };
    let dims = t.dims().to_vec();
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    Ok(match (dims.as_slice(), name.strip_suffix("weight")) {
        (&[rows, cols], Some(stem)) if !name.contains("relative_attention_bias") => {
            let (q, scales) = quantize_rows(&values, rows, cols);
            vec![
                (
                    name.to_string(),
                    St::I8,
                    dims,
                    q.into_iter().map(|v| v as u8).collect(),
                ),
                (
                    format!("{stem}weight_scale"),
                    St::F32,
                    vec![rows],
                    f32_bytes(scales),
                ),
            ]
        }
        _ => vec![(name.to_string(), St::F32, dims, f32_bytes(values))],
    })
}

/// The recorded tensors as a safetensors file.
fn safetensors(seen: &Recorded) -> Result<Vec<u8>> {
    use safetensors::tensor::TensorView;
    let tensors = seen.0.lock().expect("not poisoned");
    let err =
        |e: safetensors::SafeTensorError| Error::Input(format!("cannot write int8 weights: {e}"));
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| Ok((n.as_str(), TensorView::new(*d, s.clone(), b)?)))
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(err)?;
    safetensors::serialize(views, None).map_err(err)
}
