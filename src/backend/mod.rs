//! Where the encoder runs: the one [`Device`] type, and the backends behind it: candle (CPU, or
//! CUDA) or, with the `wgpu` feature, a GPU through wgpu.
//!
//! [`Instructor`](crate::Instructor) keeps one encode path and asks its backend for each batch's
//! embeddings (or token states), and how many tokens a batch may hold; the backends differ only
//! below that seam. Both are built from the same weights loader; the wgpu backend streams the
//! weights to the GPU and drops the host copy.

pub mod candle;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use self::candle::CandleBackend;
use crate::config::T5Config;
use crate::error::{candle_message, Error, Result};
use crate::head::Head;
use crate::input::Tokens;
use crate::model::{Dtype, T5Encoder};
use ::candle_core::DType;
use ::candle_nn::VarBuilder;
use std::path::Path;

/// Where a model runs. Spelled `cpu`, `cuda` (device 0), `cuda:N`, `wgpu` (`webgpu` is the same
/// device under the browser's name) or `auto`, by the CLI's `--device`, the browser package's
/// `device` and the Python package's `device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// candle on the CPU.
    #[default]
    Cpu,
    /// candle on CUDA device N (built with the `cuda` feature).
    Cuda(usize),
    /// The wgpu backend (built with the `wgpu` feature); loading fails without an adapter.
    Wgpu,
    /// wgpu when a hardware adapter exists and the model fits it, else the CPU; the model's
    /// [`fallback_reason`](crate::Instructor::fallback_reason) says why.
    Auto,
}

impl std::str::FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "cpu" => Self::Cpu,
            "cuda" => Self::Cuda(0),
            "wgpu" | "webgpu" => Self::Wgpu,
            "auto" => Self::Auto,
            _ => match s.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(n)) => Self::Cuda(n),
                _ => {
                    return Err(Error::Input(format!(
                        "unknown device `{s}` (expected cpu, cuda, cuda:N, wgpu or auto)"
                    )))
                }
            },
        })
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Wgpu => f.write_str("wgpu"),
            Self::Auto => f.write_str("auto"),
        }
    }
}

impl Device {
    /// The candle device the model's host side runs on: the CUDA device for `cuda:N`, else the
    /// CPU (wgpu streams its weights through the host; `auto` falls back to the CPU).
    pub fn host(self) -> Result<::candle_core::Device> {
        match self {
            Self::Cuda(_) => self.candle(),
            _ => Ok(::candle_core::Device::Cpu),
        }
    }

    /// The candle device this names: training needs one.
    pub fn candle(self) -> Result<::candle_core::Device> {
        match self {
            Self::Cpu => Ok(::candle_core::Device::Cpu),
            // candle's own message names candle, not the build flag that is missing.
            Self::Cuda(_) if !cfg!(feature = "cuda") => Err(Error::device(
                self,
                "this binary was built without CUDA support (build it with `--features cuda`; see \
                 the README's CUDA section)",
            )),
            Self::Cuda(n) => ::candle_core::Device::new_cuda(n).map_err(|e| {
                Error::device(
                    self,
                    format!(
                        "cannot use CUDA device {n} (no NVIDIA GPU, or no driver): {}",
                        candle_message(&e)
                    ),
                )
            }),
            Self::Wgpu | Self::Auto => Err(Error::device(
                self,
                "this needs candle's devices (cpu or cuda), not wgpu",
            )),
        }
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

/// Opens the encoder's weights file as a `VarBuilder` on a candle device, of the given dtype
/// (each call reads it anew: a failed GPU upload falls back by reading again).
pub(crate) type OpenWeights<'a> =
    dyn Fn(DType, &::candle_core::Device) -> Result<VarBuilder<'static>> + 'a;

impl Backend {
    /// Loads the encoder from `open` (the weights file `file`) onto `device`; for
    /// [`Device::Auto`] also says why it fell back to the CPU, if it did. `host` is the candle
    /// device the `heads` were loaded on ([`Device::host`]), where the candle backend runs. The
    /// GPU backend streams the weights block by block to the device, never holding the model on
    /// the host.
    pub async fn load(
        open: &OpenWeights<'_>,
        file: &Path,
        cfg: &T5Config,
        heads: Vec<Head>,
        (device, host): (Device, &::candle_core::Device),
        dtype: Dtype,
    ) -> Result<(Self, Option<String>)> {
        let int8 = dtype == Dtype::Int8;
        let candle = |heads, reason| {
            let device = host.clone();
            let encoder = T5Encoder::load(open(dtype.to_candle(), &device)?, cfg, int8)
                .map_err(|e| Error::weights(file, candle_message(&e)))?;
            let b = CandleBackend {
                encoder,
                heads,
                device,
            };
            Ok((Backend::Candle(b), reason))
        };
        match device {
            Device::Cuda(_) | Device::Wgpu if int8 => Err(Error::device(
                device,
                "int8 runs on the CPU (its integer kernels are x86 and wasm SIMD); use --device cpu, \
                 or f16 on a GPU",
            )),
            Device::Auto if int8 => candle(heads, Some("int8 runs on the CPU".into())),
            Device::Cpu | Device::Cuda(_) => candle(heads, None),
            #[cfg(feature = "wgpu")]
            Device::Wgpu | Device::Auto => {
                let auto = device == Device::Auto;
                match gpu_backend(open, file, cfg, &heads, dtype, auto).await {
                    Ok(b) => Ok((b, None)),
                    Err(e) if auto => candle(heads, Some(e.to_string())),
                    Err(e) => Err(e),
                }
            }
            #[cfg(not(feature = "wgpu"))]
            Device::Wgpu => Err(Error::device(
                device,
                "this build has no wgpu backend (build with `--features wgpu`)",
            )),
            #[cfg(not(feature = "wgpu"))]
            Device::Auto => candle(heads, Some("built without the `wgpu` feature".into())),
        }
    }

    /// The candle backend, for what only it can do (training's differentiable forward).
    pub fn candle(&self) -> Result<&CandleBackend> {
        match self {
            Backend::Candle(c) => Ok(c),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu(g) => Err(Error::device(
                g.gpu().name(),
                "this needs the candle backend (cpu or cuda), not wgpu",
            )),
        }
    }

    /// Embeddings `[batch.len(), dim]`, row-major, L2-normalised once more when `normalize`.
    pub async fn embed(&self, batch: &[Tokens], normalize: bool) -> Result<Vec<f32>> {
        match self {
            Backend::Candle(c) => c.embed(batch, normalize),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu(g) => g.embed(batch, normalize).await,
        }
    }

    /// The encoder's states `[tokens, d_model]`, row-major, the inputs one after another.
    pub async fn hidden(&self, batch: &[Tokens]) -> Result<Vec<f32>> {
        match self {
            Backend::Candle(c) => c.hidden(batch),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu(g) => g.hidden(batch).await,
        }
    }

    /// Most tokens one batch may hold, as the backend declares it (`None`: no limit). The GPU's
    /// attention keeps no score matrix and its buffers grow to the largest batch: no limit.
    pub fn max_batch_tokens(&self) -> Option<usize> {
        match self {
            Backend::Candle(c) => c.max_batch_tokens(),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu(_) => None,
        }
    }

    /// The int8 kernel's name (`avx512-vnni`, `avx2`, `relaxed-simd`, `simd128`, `scalar`) when
    /// the encoder's projections are int8.
    pub fn int8_kernel(&self) -> Option<&'static str> {
        match self {
            Backend::Candle(c) => c.encoder.int8_kernel().map(|k| k.name()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu(_) => None,
        }
    }

    /// `cpu`, `cuda`, or `wgpu: <adapter>`.
    pub fn name(&self) -> String {
        match self {
            Backend::Candle(c) => match c.device {
                ::candle_core::Device::Cpu => "cpu".into(),
                ::candle_core::Device::Cuda(_) => "cuda".into(),
                ::candle_core::Device::Metal(_) => "metal".into(),
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

    #[cfg(all(feature = "wgpu", feature = "testing", not(target_arch = "wasm32")))]
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
    heads: &[Head],
    dtype: Dtype,
    auto: bool,
) -> Result<Backend> {
    if dtype == Dtype::Bf16 {
        return Err(Error::device(
            Device::Wgpu,
            "the wgpu backend stores weights as f32 or f16, not bf16",
        ));
    }
    let gpu = wgpu::Gpu::new().await?;
    let storage = match dtype {
        Dtype::F16 if gpu.has_shader_f16() => wgpu::Storage::F16Arithmetic,
        Dtype::F16 => wgpu::Storage::F16,
        _ => wgpu::Storage::F32,
    };
    if auto && gpu.is_software() {
        return Err(Error::device(
            Device::Wgpu,
            format!(
                "only a software adapter ({}) was found, and the CPU path is faster",
                gpu.name()
            ),
        ));
    }
    let opts = wgpu::WgpuOptions {
        storage,
        max_binding_bytes: None,
    };
    // Read in f32 on the host: one tensor at a time is there, and the upload converts to `storage`.
    let vb = open(DType::F32, &::candle_core::Device::Cpu)?;
    Ok(Backend::Wgpu(
        wgpu::WgpuEncoder::stream(gpu, &vb, cfg, file, heads, opts).await?,
    ))
}
