//! [`Instructor`]: loading a model, and the one encode path from pairs to embeddings, with the one
//! batching policy (natively and in the browser).

use crate::backend::candle::Batch;
use crate::backend::{Backend, Device};
use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::head::Head;
use crate::input::{Input, Tokens};
use crate::model::{load_weights_from, Dropout, Dtype};
#[cfg(not(target_arch = "wasm32"))]
use crate::source::DirSource;
use crate::source::ModelSource;
use crate::tokenize::InstructorTokenizer;
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use std::path::Path;

/// How a model is loaded.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Precision of the encoder's matrix products.
    pub dtype: Dtype,
    /// Where the model runs.
    pub device: Device,
}

/// Per-call options of [`Instructor::encode`].
#[derive(Clone, Copy)]
pub struct EncodeOptions<'a> {
    pub batch_size: usize,
    /// L2-normalise the final embeddings once more (the reference's `normalize_embeddings`).
    pub normalize: bool,
    /// Truncation length in tokens, `</s>` included; the model's own (512) when `None`.
    pub max_seq_length: Option<usize>,
    /// Called with `(inputs done, inputs total)` after each batch. An `Err` stops the encode
    /// there and is returned: how a binding lets its user interrupt a long encode (Python's
    /// Ctrl-C is seen between batches, since the GIL is released while a batch runs).
    pub progress: Option<&'a (dyn Fn(usize, usize) -> Result<()> + Sync)>,
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
    /// Why [`Device::Auto`] fell back to the CPU.
    fallback_reason: Option<String>,
    /// What the matrix products compute in (a quantized folder is `Int8` on the CPU).
    dtype: Dtype,
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
        let host = opts.device.host()?;
        let open = |file: &Path, dtype: DType, device: &candle_core::Device| {
            let data = src.open(&config.relative(file))?;
            weights(file, load_weights_from(data, file, dtype, device)?)
        };
        // A quantized folder's weights are int8 already: on the CPU it computes in int8 unless a
        // float dtype other than the default is asked for (then, and on a GPU, it is dequantized).
        let dtype = match (config.quantized, opts.dtype, opts.device) {
            (true, Dtype::F32, Device::Cpu | Device::Auto) => Dtype::Int8,
            _ => opts.dtype,
        };
        let int8 = dtype == Dtype::Int8;
        let heads = Head::load_all(&config.heads, |file| open(file, DType::F32, &host), int8)?;
        let (backend, fallback_reason) = Backend::load(
            &|dtype, device| open(&config.weights, dtype, device),
            &config.weights,
            &config.t5,
            heads,
            (opts.device, &host),
            dtype,
        )
        .await?;
        Ok(Self {
            config,
            tokenizer,
            backend,
            fallback_reason,
            dtype,
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
        self.run_batches(inputs, opts, async |order, tokens| {
            let rows = self.backend.embed(tokens, opts.normalize).await?;
            for (row, &k) in rows.chunks_exact(dim).zip(order) {
                data[k * dim..(k + 1) * dim].copy_from_slice(row);
            }
            Ok(())
        })
        .await?;
        Ok(Embeddings {
            data,
            rows: inputs.len(),
            dim,
        })
    }

    /// The encoder's token states for each input (see [`TokenEmbeddings`]).
    pub async fn encode_tokens_async(
        &self,
        inputs: &[Input],
        opts: &EncodeOptions<'_>,
    ) -> Result<Vec<TokenEmbeddings>> {
        let mut out = vec![None; inputs.len()];
        let d = self.config.t5.d_model;
        self.run_batches(inputs, opts, async |order, tokens| {
            let hidden = self.backend.hidden(tokens).await?;
            let mut start = 0;
            for (t, &k) in tokens.iter().zip(order) {
                let end = start + t.ids.len() * d;
                out[k] = Some(TokenEmbeddings {
                    ids: t.ids.clone(),
                    dim: d,
                    data: hidden[start..end].to_vec(),
                });
                start = end;
            }
            Ok(())
        })
        .await?;
        Ok(out
            .into_iter()
            .map(|t| t.expect("every input is in a batch"))
            .collect())
    }

    /// [`encode_tokens_async`](Self::encode_tokens_async), waiting natively.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn encode_tokens(
        &self,
        inputs: &[Input],
        opts: &EncodeOptions,
    ) -> Result<Vec<TokenEmbeddings>> {
        pollster::block_on(self.encode_tokens_async(inputs, opts))
    }

    /// Embeddings `[batch, dim]` of one packed batch as a tensor, with training-time dropout when
    /// given: the forward pass training differentiates through (inference goes through it too).
    /// Needs the candle backend.
    pub fn forward(&self, batch: &Batch, dropout: Option<&Dropout>) -> Result<Tensor> {
        Ok(self.backend.candle()?.forward(batch, dropout)?)
    }

    /// A packed batch of `tokens` on the candle backend's device, for [`forward`](Self::forward).
    pub fn batch<'t>(&self, tokens: impl IntoIterator<Item = &'t Tokens>) -> Result<Batch> {
        Ok(Batch::new(tokens, &self.backend.candle()?.device)?)
    }

    /// The backend the model runs on: `cpu`, `cuda` or `wgpu: <adapter>`.
    pub fn backend(&self) -> String {
        self.backend.name()
    }

    /// What the encoder's matrix products compute in.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The int8 kernel the CPU or wasm build runs (`avx512-vnni`, `avx2`, `relaxed-simd`,
    /// `simd128`, `scalar`), when the model is int8.
    pub fn int8_kernel(&self) -> Option<&'static str> {
        self.backend.int8_kernel()
    }

    /// The wgpu adapter's description when the model runs on wgpu; `None` on candle.
    pub fn adapter(&self) -> Option<String> {
        self.backend.adapter()
    }

    /// Why [`Device::Auto`] chose the CPU rather than wgpu.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The wgpu model, when that is the backend (for tests that reach below the seam).
    #[cfg(all(feature = "wgpu", feature = "testing", not(target_arch = "wasm32")))]
    pub fn wgpu(&self) -> Option<&crate::backend::wgpu::WgpuEncoder> {
        self.backend.wgpu()
    }

    /// The one batching policy, as lists of indices into `inputs` in the order
    /// [`encode`](Self::encode) runs them: longest first, each batch at most `opts.batch_size`
    /// inputs and at most the tokens the backend allows (a limit only the browser sets). Sorting
    /// makes batches of similar length (less wasted work in attention tiles, and a memory peak
    /// that shows at the first batch). For callers that share work out by batch (ranks under
    /// MPI): where the backend sets no token limit (natively), encoding the inputs of whole
    /// batches, concatenated in plan order, runs exactly those batches again, so each embedding
    /// comes out with the same bits as in one encode of everything.
    pub fn plan(&self, inputs: &[Input], opts: &EncodeOptions) -> Result<Vec<Vec<usize>>> {
        check_batch_size(opts)?;
        let tokens = self.tokenize(inputs, opts.max_seq_length)?;
        Ok(self.plan_tokens(&tokens, opts.batch_size))
    }

    fn plan_tokens(&self, tokens: &[Tokens], batch_size: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].ids.len()));
        let budget = self.backend.max_batch_tokens().unwrap_or(usize::MAX);
        let mut batches = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            let mut held = tokens[order[start]].ids.len();
            while end < order.len() && end - start < batch_size {
                held += tokens[order[end]].ids.len();
                if held > budget {
                    break;
                }
                end += 1;
            }
            batches.push(order[start..end].to_vec());
            start = end;
        }
        batches
    }

    /// Runs `f(order, batch)` on each batch of [`plan`](Self::plan); `order` holds each batch
    /// input's index in `inputs`. Tells `opts.progress` after each batch. Batches are packed, so
    /// an embedding does not depend on what it is batched with (up to the last bit of the matrix
    /// products' summation order, which [`plan`](Self::plan) keeps fixed).
    async fn run_batches(
        &self,
        inputs: &[Input],
        opts: &EncodeOptions<'_>,
        mut f: impl AsyncFnMut(&[usize], &[Tokens]) -> Result<()>,
    ) -> Result<()> {
        check_batch_size(opts)?;
        let tokens = self.tokenize(inputs, opts.max_seq_length)?;
        let plan = self.plan_tokens(&tokens, opts.batch_size);
        let mut tokens: Vec<Option<Tokens>> = tokens.into_iter().map(Some).collect();
        let mut done = 0;
        for order in plan {
            let batch: Vec<Tokens> = order
                .iter()
                .map(|&i| tokens[i].take().expect("each input in one batch"))
                .collect();
            f(&order, &batch).await?;
            done += order.len();
            if let Some(progress) = opts.progress {
                progress(done, inputs.len())?;
            }
        }
        Ok(())
    }
}

fn check_batch_size(opts: &EncodeOptions) -> Result<()> {
    if opts.batch_size == 0 {
        return Err(Error::Input("batch_size must be at least 1".into()));
    }
    Ok(())
}
