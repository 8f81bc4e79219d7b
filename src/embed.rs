//! [`Instructor`]: the one encode path, from pairs to embeddings.

use crate::config::ModelConfig;
use crate::error::{candle_message, Error, Result};
use crate::head::Layer;
use crate::model::{load_weights_from, Dtype, T5Encoder};
use crate::source::{DirSource, ModelSource};
use crate::pooling::{mean_pool, pooling_mask};
use crate::tokenize::{InstructorTokenizer, Tokens};
use candle_core::{Device, Tensor};
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
    /// Where the model runs (`Device::Cpu`, or a CUDA device with the `cuda` feature).
    pub device: Device,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            dtype: Dtype::F32,
            device: Device::Cpu,
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
    encoder: T5Encoder,
    heads: Vec<Layer>,
    device: Device,
}

impl Instructor {
    /// Loads a model folder in the sentence-transformers layout.
    pub fn load(dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<Self> {
        Self::from_source(&DirSource::new(dir), opts)
    }

    /// Loads a model from any [`ModelSource`]: a folder, or files held in memory (the browser).
    /// A memory source's weight buffers are read tensor by tensor and can be dropped once this
    /// returns.
    pub fn from_source(src: &dyn ModelSource, opts: &LoadOptions) -> Result<Self> {
        let config = ModelConfig::from_source(src)?;
        let tokenizer_json = src.read(&config.relative(&config.tokenizer))?;
        let tokenizer = InstructorTokenizer::from_bytes(&tokenizer_json, config.do_lower_case)
            .map_err(|e| Error::config(&config.tokenizer, e))?;
        drop(tokenizer_json);
        let encoder = {
            let data = src.open(&config.relative(&config.weights))?;
            let vb = load_weights_from(data, &config.weights, opts.dtype.to_candle(), &opts.device)?;
            T5Encoder::load(vb, &config.t5)
                .map_err(|e| Error::weights(&config.weights, candle_message(&e)))?
        };
        let heads = config
            .heads
            .iter()
            .map(|h| Layer::load_from(h, src, &config, &opts.device))
            .collect::<Result<_>>()?;
        Ok(Self {
            config,
            tokenizer,
            encoder,
            heads,
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

    /// Embeds inputs: encoder, instruction-masked mean pooling, then the head layers.
    pub fn encode(&self, inputs: &[Input], opts: &EncodeOptions) -> Result<Embeddings> {
        let dim = self.dim();
        let mut data = vec![0f32; inputs.len() * dim];
        self.run_batches(inputs, opts, |first, _tokens, hidden, batch| {
            let mut x = self.pool(hidden, batch)?;
            if opts.normalize {
                x = crate::head::l2_normalize(&x)?;
            }
            let rows = x.flatten_all()?.to_vec1::<f32>()?;
            data[first * dim..first * dim + rows.len()].copy_from_slice(&rows);
            Ok(())
        })?;
        Ok(Embeddings {
            data,
            rows: inputs.len(),
            dim,
        })
    }

    /// Embeddings `[batch, dim]` of one padded batch as a tensor, with training-time dropout when
    /// given: the forward pass training differentiates through (inference goes through it too).
    pub fn forward(&self, batch: &Batch, dropout: Option<f32>) -> candle_core::Result<Tensor> {
        let hidden = self.encoder.forward(&batch.ids, &batch.lengths, dropout)?;
        self.pool(&hidden, batch)
    }

    /// Instruction-masked mean pooling, then the head layers.
    fn pool(&self, hidden: &Tensor, batch: &Batch) -> candle_core::Result<Tensor> {
        let mask = Tensor::from_vec(
            pooling_mask(&batch.lengths, &batch.instruction_lens),
            (batch.lengths.len(), hidden.dim(0)?),
            hidden.device(),
        )?;
        let mut x = mean_pool(hidden, &mask)?;
        for head in &self.heads {
            x = head.forward(&x)?;
        }
        Ok(x)
    }

    /// The model's device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The encoder's token states for each input (see [`TokenEmbeddings`]).
    pub fn encode_tokens(
        &self,
        inputs: &[Input],
        opts: &EncodeOptions,
    ) -> Result<Vec<TokenEmbeddings>> {
        let mut out = Vec::with_capacity(inputs.len());
        self.run_batches(inputs, opts, |_first, tokens, hidden, _batch| {
            let mut start = 0;
            for t in tokens {
                let states = hidden.narrow(0, start, t.ids.len())?;
                start += t.ids.len();
                out.push(TokenEmbeddings {
                    ids: t.ids.clone(),
                    dim: states.dim(1)?,
                    data: states.flatten_all()?.to_vec1()?,
                });
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Tokenizes and runs the encoder batch by batch, in input order (batches are packed, so
    /// sorting by length as the reference does would save nothing). `f` gets the index of the
    /// batch's first input, the batch's tokens, its packed hidden states `[tokens, d]` and the
    /// batch.
    fn run_batches(
        &self,
        inputs: &[Input],
        opts: &EncodeOptions,
        mut f: impl FnMut(usize, &[Tokens], &Tensor, &Batch) -> candle_core::Result<()>,
    ) -> Result<()> {
        if opts.batch_size == 0 {
            return Err(Error::Input("batch_size must be at least 1".into()));
        }
        let tokens = self.tokenize(inputs, opts.max_seq_length)?;
        for (i, chunk) in tokens.chunks(opts.batch_size).enumerate() {
            let batch = Batch::new(chunk, &self.device)?;
            let hidden = self.encoder.forward(&batch.ids, &batch.lengths, None)?;
            let first = i * opts.batch_size;
            f(first, chunk, &hidden, &batch)?;
            if let Some(progress) = opts.progress {
                progress(first + chunk.len(), inputs.len());
            }
        }
        Ok(())
    }
}

/// Tokenized inputs packed one after another into one batch (no padding; see
/// [`T5Encoder::forward`]).
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
