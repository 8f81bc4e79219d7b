//! Where the encoder runs: candle (CPU, or CUDA) or, with the `wgpu` feature, a GPU through wgpu.
//!
//! [`Instructor`](crate::Instructor) keeps one encode path and asks its [`Backend`] for each
//! batch's embeddings (or token states); the backends differ only below that seam. Both are
//! built from the same loaded [`T5Encoder`] and head layers, so weights are read by one loader;
//! the wgpu backend uploads them and drops the host copy.

#[cfg(feature = "wgpu")]
pub mod wgpu;

use crate::embed::{Batch, LoadOptions};
use crate::error::Result;
use crate::head::Layer;
use crate::model::{Dropout, T5Encoder};
use crate::pooling::{mean_pool, pooling_mask};
use crate::tokenize::Tokens;
use candle_core::{Device, Tensor};

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
    #[cfg(all(feature = "wgpu", not(target_arch = "wasm32")))]
    Wgpu(wgpu::WgpuEncoder),
}

impl Backend {
    /// The backend `opts` asks for, from a loaded encoder; for [`BackendKind::Auto`] also why it
    /// fell back to candle, if it did.
    pub fn new(
        encoder: T5Encoder,
        heads: Vec<Layer>,
        opts: &LoadOptions,
    ) -> Result<(Self, Option<String>)> {
        let candle = |encoder, heads, reason| {
            let b = CandleBackend {
                encoder,
                heads,
                device: opts.device.clone(),
            };
            Ok((Backend::Candle(b), reason))
        };
        match opts.backend {
            BackendKind::Candle => candle(encoder, heads, None),
            #[cfg(all(feature = "wgpu", not(target_arch = "wasm32")))]
            kind => match gpu_backend(&encoder, &heads, opts, kind == BackendKind::Auto) {
                Ok(b) => Ok((b, None)),
                Err(e) if kind == BackendKind::Auto => candle(encoder, heads, Some(e.to_string())),
                Err(e) => Err(e),
            },
            #[cfg(not(all(feature = "wgpu", not(target_arch = "wasm32"))))]
            BackendKind::Wgpu => Err(crate::Error::Gpu(
                "this build has no wgpu backend (build with `--features wgpu`)".into(),
            )),
            #[cfg(not(all(feature = "wgpu", not(target_arch = "wasm32"))))]
            BackendKind::Auto => candle(
                encoder,
                heads,
                Some("built without the `wgpu` feature".into()),
            ),
        }
    }

    /// The candle backend, for what only it can do (training's differentiable forward).
    pub fn candle(&self) -> candle_core::Result<&CandleBackend> {
        match self {
            Backend::Candle(c) => Ok(c),
            #[cfg(all(feature = "wgpu", not(target_arch = "wasm32")))]
            Backend::Wgpu(_) => candle_core::bail!("this needs the candle backend, not wgpu"),
        }
    }

    /// Embeddings `[batch.len(), dim]`, row-major, L2-normalised once more when `normalize`.
    pub fn embed(&self, batch: &[Tokens], normalize: bool) -> Result<Vec<f32>> {
        match self {
            Backend::Candle(c) => {
                let mut x = c.forward(&Batch::new(batch, &c.device)?, None)?;
                if normalize {
                    x = crate::head::l2_normalize(&x)?;
                }
                Ok(x.flatten_all()?.to_vec1()?)
            }
            #[cfg(all(feature = "wgpu", not(target_arch = "wasm32")))]
            Backend::Wgpu(g) => g.embed_blocking(batch, normalize),
        }
    }

    /// The encoder's states `[tokens, d_model]`, row-major, the inputs one after another.
    pub fn hidden(&self, batch: &[Tokens]) -> Result<Vec<f32>> {
        match self {
            Backend::Candle(c) => {
                let b = Batch::new(batch, &c.device)?;
                let h = c.encoder.forward(&b.ids, &b.lengths, None)?;
                Ok(h.flatten_all()?.to_vec1()?)
            }
            #[cfg(all(feature = "wgpu", not(target_arch = "wasm32")))]
            Backend::Wgpu(g) => g.hidden_blocking(batch),
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
            #[cfg(all(feature = "wgpu", not(target_arch = "wasm32")))]
            Backend::Wgpu(g) => format!("wgpu: {}", g.gpu().name()),
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

/// Opens a GPU and uploads the model. `auto` refuses CPU adapters (lavapipe, SwiftShader): the
/// candle CPU path is faster than a software GPU.
#[cfg(all(feature = "wgpu", not(target_arch = "wasm32")))]
fn gpu_backend(
    encoder: &T5Encoder,
    heads: &[Layer],
    opts: &LoadOptions,
    auto: bool,
) -> Result<Backend> {
    use crate::Dtype;
    let storage = match opts.dtype {
        Dtype::F32 => wgpu::Storage::F32,
        Dtype::F16 => wgpu::Storage::F16,
        Dtype::Bf16 => {
            return Err(crate::Error::Gpu(
                "the wgpu backend stores weights as f32 or f16, not bf16".into(),
            ))
        }
    };
    let gpu = wgpu::Gpu::new_blocking()?;
    if auto && gpu.is_software() {
        return Err(crate::Error::Gpu(format!(
            "only a software adapter ({}) was found",
            gpu.name()
        )));
    }
    let opts = wgpu::WgpuOptions {
        storage,
        max_binding_bytes: None,
    };
    Ok(Backend::Wgpu(wgpu::WgpuEncoder::new_blocking(
        gpu, encoder, heads, opts,
    )?))
}
