//! Where the encoder runs: candle (CPU, or CUDA) or, with the `wgpu` feature, a GPU through wgpu.
//!
//! [`Instructor`](crate::Instructor) keeps one encode path and asks its [`Backend`] for each
//! batch's embeddings (or token states); the backends differ only below that seam. Both are
//! built from the same loaded [`T5Encoder`] and head layers, so weights are read by one loader;
//! the wgpu backend uploads them and drops the host copy.

#[cfg(feature = "wgpu")]
pub mod wgpu;

use crate::config::T5Config;
use crate::embed::{Batch, LoadOptions};
use crate::error::{candle_message, Error, Result};
use crate::head::Layer;
use crate::model::{Dropout, T5Encoder};
use crate::pooling::{mean_pool, pooling_mask};
use crate::tokenize::Tokens;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::path::Path;

/// Which backend [`Instructor::load`](crate::Instructor::load) uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// candle on [`LoadOptions::device`].
    #[default]
    Candle,
    /// The wgpu GPU backend (built with the `wgpu` feature); loading fails without an adapter.
    Wgpu,
    /// wgpu when a hardware adapter exists and the model fits it, else candle; the model's
    /// [`fallback_reason`](crate::Instructor::fallback_reason) says why.
    Auto,
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" | "candle" => Ok(Self::Candle),
            "wgpu" | "webgpu" | "gpu" => Ok(Self::Wgpu),
            "auto" => Ok(Self::Auto),
            _ => Err(format!(
                "unknown backend `{s}` (expected cpu, wgpu or auto)"
            )),
        }
    }
}

/// The candle encoder and heads on a candle device.
pub(crate) struct CandleBackend {
    encoder: T5Encoder,
    heads: Vec<Layer>,
    device: Device,
}

impl CandleBackend {
    /// Embeddings `[batch, dim]` as a tensor, with training-time dropout when given.
    pub fn forward(&self, batch: &Batch, dropout: Option<&Dropout>) -> candle_core::Result<Tensor> {
        let hidden = self.encoder.forward(&batch.ids, &batch.lengths, dropout)?;
        let mask = Tensor::from_vec(
            pooling_mask(&batch.lengths, &batch.instruction_lens),
            (batch.lengths.len(), hidden.dim(0)?),
            hidden.device(),
        )?;
        let mut x = mean_pool(&hidden, &mask)?;
        for head in &self.heads {
            x = head.forward(&x)?;
        }
        Ok(x)
    }
}

/// A model's encoder on one backend.
// One per loaded model: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Backend {
    Candle(CandleBackend),
    #[cfg(feature = "wgpu")]
    Wgpu(wgpu::WgpuEncoder),
}

/// Opens the encoder's weights file as a `VarBuilder` of the given dtype (each call reads it
/// anew: a failed GPU upload falls back by reading again).
pub(crate) type OpenWeights<'a> = dyn Fn(DType) -> Result<VarBuilder<'static>> + 'a;

impl Backend {
    /// Loads the encoder from `open` (the weights file `file`) onto the backend `opts` asks for;
    /// for [`BackendKind::Auto`] also says why it fell back to candle, if it did. The GPU backend
    /// streams the weights block by block to the device, never holding the model on the host.
    pub async fn load(
        open: &OpenWeights<'_>,
        file: &Path,
        cfg: &T5Config,
        heads: Vec<Layer>,
        opts: &LoadOptions,
    ) -> Result<(Self, Option<String>)> {
        let candle = |heads, reason| {
            let encoder = T5Encoder::load(open(opts.dtype.to_candle())?, cfg)
                .map_err(|e| Error::weights(file, candle_message(&e)))?;
            let b = CandleBackend {
                encoder,
                heads,
                device: opts.device.clone(),
            };
            Ok((Backend::Candle(b), reason))
        };
        match opts.backend {
            BackendKind::Candle => candle(heads, None),
            #[cfg(feature = "wgpu")]
            kind => {
                let auto = kind == BackendKind::Auto;
                match gpu_backend(open, file, cfg, &heads, opts, auto).await {
                    Ok(b) => Ok((b, None)),
                    Err(e) if auto => candle(heads, Some(e.to_string())),
                    Err(e) => Err(e),
                }
            }
            #[cfg(not(feature = "wgpu"))]
            BackendKind::Wgpu => Err(Error::Gpu(
                "this build has no wgpu backend (build with `--features wgpu`)".into(),
            )),
            #[cfg(not(feature = "wgpu"))]
            BackendKind::Auto => candle(heads, Some("built without the `wgpu` feature".into())),
        }
    }

    /// The candle backend, for what only it can do (training's differentiable forward).
    pub fn candle(&self) -> candle_core::Result<&CandleBackend> {
        match self {
            Backend::Candle(c) => Ok(c),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu(_) => candle_core::bail!("this needs the candle backend, not wgpu"),
        }
    }

    /// Embeddings `[batch.len(), dim]`, row-major, L2-normalised once more when `normalize`.
    pub async fn embed(&self, batch: &[Tokens], normalize: bool) -> Result<Vec<f32>> {
        match self {
            Backend::Candle(c) => {
                let mut x = c.forward(&Batch::new(batch, &c.device)?, None)?;
                if normalize {
                    x = crate::head::l2_normalize(&x)?;
                }
                Ok(x.flatten_all()?.to_vec1()?)
            }
            #[cfg(feature = "wgpu")]
            Backend::Wgpu(g) => g.embed(batch, normalize).await,
        }
    }

    /// The encoder's states `[tokens, d_model]`, row-major, the inputs one after another.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn hidden(&self, batch: &[Tokens]) -> Result<Vec<f32>> {
        match self {
            Backend::Candle(c) => {
                let b = Batch::new(batch, &c.device)?;
                let h = c.encoder.forward(&b.ids, &b.lengths, None)?;
                Ok(h.flatten_all()?.to_vec1()?)
            }
            #[cfg(feature = "wgpu")]
            Backend::Wgpu(g) => g.hidden(batch).await,
        }
    }

    /// `cpu`, `cuda`, or `wgpu: <adapter>`.
    pub fn name(&self) -> String {
        match self {
            Backend::Candle(c) => match c.device {
                Device::Cpu => "cpu".into(),
                Device::Cuda(_) => "cuda".into(),
                Device::Metal(_) => "metal".into(),
            },
            #[cfg(feature = "wgpu")]
            Backend::Wgpu(g) => format!("wgpu: {}", g.gpu().name()),
        }
    }

    /// The wgpu adapter's description when the model is on wgpu; `None` on candle.
    pub fn adapter(&self) -> Option<String> {
        match self {
            Backend::Candle(_) => None,
            #[cfg(feature = "wgpu")]
            Backend::Wgpu(g) => Some(g.gpu().name()),
        }
    }

    #[cfg(all(feature = "wgpu", not(target_arch = "wasm32")))]
    pub fn wgpu(&self) -> Option<&wgpu::WgpuEncoder> {
        match self {
            Backend::Wgpu(g) => Some(g),
            Backend::Candle(_) => None,
        }
    }
}

/// Opens a GPU and streams the model to it. `auto` refuses CPU adapters (lavapipe, SwiftShader):
/// the candle CPU path is faster than a software GPU.
#[cfg(feature = "wgpu")]
async fn gpu_backend(
    open: &OpenWeights<'_>,
    file: &Path,
    cfg: &T5Config,
    heads: &[Layer],
    opts: &LoadOptions,
    auto: bool,
) -> Result<Backend> {
    use crate::Dtype;
    if opts.dtype == Dtype::Bf16 {
        return Err(Error::Gpu(
            "the wgpu backend stores weights as f32 or f16, not bf16".into(),
        ));
    }
    let gpu = wgpu::Gpu::new().await?;
    let storage = match opts.dtype {
        Dtype::F16 if gpu.has_shader_f16() => wgpu::Storage::F16Arithmetic,
        Dtype::F16 => wgpu::Storage::F16,
        _ => wgpu::Storage::F32,
    };
    if auto && gpu.is_software() {
        return Err(Error::Gpu(format!(
            "only a software adapter ({}) was found, and the CPU path is faster",
            gpu.name()
        )));
    }
    let opts = wgpu::WgpuOptions {
        storage,
        max_binding_bytes: None,
    };
    // Read in f32: one tensor at a time is on the host, and the upload converts to `storage`.
    let vb = open(DType::F32)?;
    Ok(Backend::Wgpu(
        wgpu::WgpuEncoder::stream(gpu, &vb, cfg, file, heads, opts).await?,
    ))
}
