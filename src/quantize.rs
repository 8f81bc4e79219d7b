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
            Head::load_all(&[head.clone()], |_| Ok(vb.clone()), false)?;
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

/// Tensors in the order the model asked for them.
#[derive(Default)]
struct Recorded(Mutex<Vec<(String, Tensor)>>);

/// A `VarBuilder` backend that hands out `inner`'s tensors and keeps a copy of each: what the
/// model reads is what the quantized file holds, with no list of names to keep in step.
struct Recorder {
    inner: VarBuilder<'static>,
    seen: Arc<Recorded>,
}

impl Recorder {
    fn keep(&self, name: &str, t: Tensor) -> Tensor {
        let mut seen = self.seen.0.lock().expect("not poisoned");
        if !seen.iter().any(|(n, _)| n == name) {
            seen.push((name.to_string(), t.clone()));
        }
        t
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
        self.keep(name, t).to_dtype(dtype)?.to_device(dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let t = self.inner.get_unchecked_dtype(name, DType::F32)?;
        self.keep(name, t).to_dtype(dtype)?.to_device(dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner.contains_tensor(name)
    }
}

/// The recorded tensors as a safetensors file, 2-D weights in int8.
fn safetensors(seen: &Recorded) -> Result<Vec<u8>> {
    use safetensors::tensor::TensorView;
    use safetensors::Dtype as St;
    let seen = seen.0.lock().expect("not poisoned");
    let mut tensors: Vec<(String, St, Vec<usize>, Vec<u8>)> = vec![];
    let f32_bytes = |v: Vec<f32>| {
        v.into_iter()
            .flat_map(f32::to_le_bytes)
            .collect::<Vec<u8>>()
    };
    for (name, t) in seen.iter() {
        let dims = t.dims().to_vec();
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        match (dims.as_slice(), name.strip_suffix("weight")) {
            (&[rows, cols], Some(stem)) if !name.contains("relative_attention_bias") => {
                let (q, scales) = quantize_rows(&values, rows, cols);
                tensors.push((
                    name.clone(),
                    St::I8,
                    dims,
                    q.into_iter().map(|v| v as u8).collect(),
                ));
                tensors.push((
                    format!("{stem}weight_scale"),
                    St::F32,
                    vec![rows],
                    f32_bytes(scales),
                ));
            }
            _ => tensors.push((name.clone(), St::F32, dims, f32_bytes(values))),
        }
    }
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| Ok((n.as_str(), TensorView::new(*d, s.clone(), b)?)))
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| Error::Input(format!("cannot write int8 weights: {e}")))?;
    safetensors::serialize(views, None)
        .map_err(|e| Error::Input(format!("cannot write int8 weights: {e}")))
}
