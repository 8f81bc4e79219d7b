//! [`Instructor`]: the one encode path, from pairs to embeddings.

use crate::backend::{Backend, BackendKind};
use crate::config::{Head, ModelConfig};
use crate::error::{candle_message, Error, Result};
use crate::head::Layer;
use crate::model::{load_weights_from, Dropout, Dtype};
#[cfg(not(target_arch = "wasm32"))]
use crate::source::DirSource;
use crate::source::ModelSource;
use crate::tokenize::{InstructorTokenizer, Tokens};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::path::Path;

/// One input: an instruction (may be empty) and the text it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub struct Input {
    #[serde(default)]
    pub instruction: String,
    pub text: String,
}

impl Input {
    pub fn new(instruction: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            instruction: instruction.into(),
            text: text.into(),
        }
    }

    /// A text with no instruction (the reference's plain-string input; nothing is masked).
    pub fn plain(text: impl Into<String>) -> Self {
        Self::new("", text)
    }
}

/// How a model is loaded.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Precision of the encoder's matrix products.
    pub dtype: Dtype,
    /// Where the candle backend runs (`Device::Cpu`, or a CUDA device with the `cuda` feature).
    pub device: Device,
    /// candle, wgpu, or wgpu with a fallback to candle.
    pub backend: BackendKind,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            dtype: Dtype::F32,
            device: Device::Cpu,
            backend: BackendKind::Candle,
        }
    }
}

/// Per-call options of [`Instructor::encode`].
#[derive(Clone, Copy)]
pub struct EncodeOptions<'a> {
    pub batch_size: usize,
    /// L2-normalise the final embeddings once more (the reference's `normalize_embeddings`).
    pub normalize: bool,
    /// Truncation length in tokens, `</s>` included; the model's own (512) when `None`.
    pub max_seq_length: Option<usize>,
    /// Called with `(inputs done, inputs total)` after each batch.
    pub progress: Option<&'a (dyn Fn(usize, usize) + Sync)>,
}

impl Default for EncodeOptions<'_> {
    fn default() -> Self {
        Self {
            batch_size: 32,
            normalize: false,
            max_seq_length: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for EncodeOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodeOptions")
            .field("batch_size", &self.batch_size)
            .field("normalize", &self.normalize)
            .field("max_seq_length", &self.max_seq_length)
            .finish_non_exhaustive()
    }
}

/// Row-major `rows × dim` f32 embeddings, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub data: Vec<f32>,
    pub rows: usize,
    pub dim: usize,
}

impl Embeddings {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// The encoder's output states for one input (the reference's `output_value='token_embeddings'`):
/// one row per token, instruction tokens included, padding excluded.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEmbeddings {
    pub ids: Vec<u32>,
    /// Row-major `ids.len() × d_model`.
    pub data: Vec<f32>,
    pub dim: usize,
}

/// A loaded INSTRUCTOR model.
pub struct Instructor {
    config: ModelConfig,
    tokenizer: InstructorTokenizer,
    backend: Backend,
    /// Why [`BackendKind::Auto`] fell back to candle.
    fallback_reason: Option<String>,
    device: Device,
}

impl Instructor {
    /// Loads a model folder in the sentence-transformers layout.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<Self> {
        Self::from_source(&DirSource::new(dir), opts)
    }

    /// Loads a model from any [`ModelSource`]: a folder, or files held in memory (the browser).
    /// A memory source's weight buffers are read tensor by tensor and can be dropped once this
    /// returns.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_source(src: &dyn ModelSource, opts: &LoadOptions) -> Result<Self> {
        Self::from_source_with(src, opts, |_, vb| Ok(vb))
    }

    /// Like [`from_source`](Self::from_source), with each weights file's `VarBuilder` (the
    /// encoder's, then each Dense layer's) passed through `weights(file, vb)` before the model
    /// reads it. Training wraps it so that every tensor handed out becomes a trainable `Var`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_source_with(
        src: &dyn ModelSource,
        opts: &LoadOptions,
        weights: impl Fn(&Path, VarBuilder<'static>) -> Result<VarBuilder<'static>>,
    ) -> Result<Self> {
        pollster::block_on(Self::build(src, opts, &weights))
    }

    /// [`from_source`](Self::from_source) for callers that cannot block: the browser, where
    /// opening a WebGPU device is asynchronous.
    pub async fn from_source_async(src: &dyn ModelSource, opts: &LoadOptions) -> Result<Self> {
        Self::build(src, opts, &|_, vb| Ok(vb)).await
    }

    /// The one loader behind the entry points above.
    async fn build(
        src: &dyn ModelSource,
        opts: &LoadOptions,
        weights: &dyn Fn(&Path, VarBuilder<'static>) -> Result<VarBuilder<'static>>,
    ) -> Result<Self> {
        let config = ModelConfig::from_source(src)?;
        let tokenizer_json = src.read(&config.relative(&config.tokenizer))?;
        let tokenizer = InstructorTokenizer::from_bytes(&tokenizer_json, config.do_lower_case)
            .map_err(|e| Error::config(&config.tokenizer, e))?;
        drop(tokenizer_json);
        let open = |file: &Path, dtype: DType| {
            let data = src.open(&config.relative(file))?;
            weights(file, load_weights_from(data, file, dtype, &opts.device)?)
        };
        let heads = config
            .heads
            .iter()
            .map(|h| match h {
                Head::Normalize => Ok(Layer::Normalize),
                Head::Dense(cfg) => Layer::dense_from(open(&cfg.weights, DType::F32)?, cfg)
                    .map_err(|e| Error::weights(&cfg.weights, candle_message(&e))),
            })
            .collect::<Result<_>>()?;
        let (backend, fallback_reason) = Backend::load(
            &|dtype| open(&config.weights, dtype),
            &config.weights,
            &config.t5,
            heads,
            opts,
        )
        .await?;
        Ok(Self {
            config,
            tokenizer,
            backend,
            fallback_reason,
            device: opts.device.clone(),
        })
    }

    /// Size of the embeddings [`encode`](Self::encode) returns.
    pub fn dim(&self) -> usize {
        self.config.dim()
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Tokenizes inputs as `encode` does.
    pub fn tokenize(&self, inputs: &[Input], max_seq_length: Option<usize>) -> Result<Vec<Tokens>> {
        self.tokenizer
            .encode(inputs, max_seq_length.unwrap_or(self.config.max_seq_length))
    }

    /// Each input's token count, `</s>` included and not truncated to `max_seq_length`.
    pub fn token_counts(&self, inputs: &[Input]) -> Result<Vec<usize>> {
        let tokens = self.tokenize(inputs, Some(usize::MAX))?;
        Ok(tokens.iter().map(|t| t.ids.len()).collect())
    }

    /// Embeds inputs: encoder, instruction-masked mean pooling, then the head layers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn encode(&self, inputs: &[Input], opts: &EncodeOptions) -> Result<Embeddings> {
        pollster::block_on(self.encode_async(inputs, opts))
    }

    /// [`encode`](Self::encode) for callers that cannot block (the browser's WebGPU backend
    /// reads its results back asynchronously).
    pub async fn encode_async(
        &self,
        inputs: &[Input],
        opts: &EncodeOptions<'_>,
    ) -> Result<Embeddings> {
        let dim = self.dim();
        let mut data = vec![0f32; inputs.len() * dim];
        self.run_batches(inputs, opts, async |first, tokens| {
            let rows = self.embed_tokens(tokens, opts.normalize).await?;
            data[first * dim..first * dim + rows.len()].copy_from_slice(&rows);
            Ok(())
        })
        .await?;
        Ok(Embeddings {
            data,
            rows: inputs.len(),
            dim,
        })
    }

    /// One batch of tokenized inputs → their embeddings, row-major `[tokens.len(), dim]`: the
    /// step [`encode_async`](Self::encode_async) repeats, for callers that batch themselves
    /// from tokens they already have (the browser sorts by length to bound its memory).
    pub(crate) async fn embed_tokens(
        &self,
        tokens: &[Tokens],
        normalize: bool,
    ) -> Result<Vec<f32>> {
        self.backend.embed(tokens, normalize).await
    }

    /// Embeddings `[batch, dim]` of one packed batch as a tensor, with training-time dropout when
    /// given: the forward pass training differentiates through (inference goes through it too).
    /// Needs the candle backend.
    pub fn forward(&self, batch: &Batch, dropout: Option<&Dropout>) -> candle_core::Result<Tensor> {
        self.backend.candle()?.forward(batch, dropout)
    }

    /// The candle backend's device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The backend the model runs on: `cpu`, `cuda` or `wgpu: <adapter>`.
    pub fn backend(&self) -> String {
        self.backend.name()
    }

    /// The wgpu adapter's description when the model runs on wgpu; `None` on candle.
    pub fn adapter(&self) -> Option<String> {
        self.backend.adapter()
    }

    /// Why [`BackendKind::Auto`] chose candle rather than wgpu.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The wgpu model, when that is the backend.
    #[cfg(all(feature = "wgpu", not(target_arch = "wasm32")))]
    pub fn wgpu(&self) -> Option<&crate::backend::wgpu::WgpuEncoder> {
        self.backend.wgpu()
    }

    /// The encoder's token states for each input (see [`TokenEmbeddings`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn encode_tokens(
        &self,
        inputs: &[Input],
        opts: &EncodeOptions,
    ) -> Result<Vec<TokenEmbeddings>> {
        let mut out = Vec::with_capacity(inputs.len());
        let d = self.config.t5.d_model;
        pollster::block_on(self.run_batches(inputs, opts, async |_, tokens| {
            let hidden = self.backend.hidden(tokens).await?;
            let mut start = 0;
            for t in tokens {
                let end = start + t.ids.len() * d;
                out.push(TokenEmbeddings {
                    ids: t.ids.clone(),
                    dim: d,
                    data: hidden[start..end].to_vec(),
                });
                start = end;
            }
            Ok(())
        }))?;
        Ok(out)
    }

    /// Tokenizes the inputs and runs `f(first, batch)` on batches of `opts.batch_size`, in input
    /// order (batches are packed, so sorting by length as the reference does would save
    /// nothing), telling `opts.progress` after each.
    async fn run_batches(
        &self,
        inputs: &[Input],
        opts: &EncodeOptions<'_>,
        mut f: impl AsyncFnMut(usize, &[Tokens]) -> Result<()>,
    ) -> Result<()> {
        if opts.batch_size == 0 {
            return Err(Error::Input("batch_size must be at least 1".into()));
        }
        let tokens = self.tokenize(inputs, opts.max_seq_length)?;
        for (i, batch) in tokens.chunks(opts.batch_size).enumerate() {
            let first = i * opts.batch_size;
            f(first, batch).await?;
            if let Some(progress) = opts.progress {
                progress(first + batch.len(), inputs.len());
            }
        }
        Ok(())
    }
}

/// Tokenized inputs packed one after another into one batch (no padding; see
/// [`T5Encoder::forward`](crate::model::T5Encoder::forward)).
pub struct Batch {
    /// `[tokens]` u32: every input's ids, one input after another.
    pub ids: Tensor,
    pub lengths: Vec<usize>,
    pub instruction_lens: Vec<usize>,
}

impl Batch {
    pub fn new<'t>(
        tokens: impl IntoIterator<Item = &'t Tokens>,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let tokens: Vec<&Tokens> = tokens.into_iter().collect();
        let ids: Vec<u32> = tokens.iter().flat_map(|t| t.ids.iter().copied()).collect();
        let n = ids.len();
        Ok(Self {
            ids: Tensor::from_vec(ids, n, device)?,
            lengths: tokens.iter().map(|t| t.ids.len()).collect(),
            instruction_lens: tokens.iter().map(|t| t.instruction_len).collect(),
        })
    }
}
