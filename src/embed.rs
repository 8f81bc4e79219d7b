//! [`Instructor`]: the one encode path, from pairs to embeddings.

use crate::config::{Head, ModelConfig};
use crate::error::{Error, Result};
use crate::head::Layer;
use crate::model::{load_weights, Dropout, Dtype, T5Encoder};
use crate::pooling::{mean_pool, pooling_mask};
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
        Self::load_with(dir, opts, |file, dtype| {
            load_weights(file, dtype, &opts.device)
        })
    }

    /// Like [`load`](Self::load), with the weights of each file (`file`: the encoder's, then each
    /// Dense layer's) read through `weights(file, dtype)`. Training passes a `VarBuilder` that
    /// turns every tensor it hands out into a trainable `Var`.
    pub fn load_with(
        dir: impl AsRef<Path>,
        opts: &LoadOptions,
        weights: impl Fn(&Path, DType) -> Result<VarBuilder<'static>>,
    ) -> Result<Self> {
        let config = ModelConfig::from_folder(dir)?;
        let tokenizer = InstructorTokenizer::from_file(&config.tokenizer, config.do_lower_case)?;
        let vb = weights(&config.weights, opts.dtype.to_candle())?;
        let encoder =
            T5Encoder::load(vb, &config.t5).map_err(|e| Error::weights(&config.weights, e))?;
        let heads = config
            .heads
            .iter()
            .map(|h| match h {
                Head::Normalize => Ok(Layer::Normalize),
                Head::Dense(cfg) => Layer::dense_from(weights(&cfg.weights, DType::F32)?, cfg)
                    .map_err(|e| Error::weights(&cfg.weights, e)),
            })
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
        self.run_batches(inputs, opts, |rows, _tokens, hidden, batch| {
            let mut x = self.pool(hidden, batch)?;
            if opts.normalize {
                x = crate::head::l2_normalize(&x)?;
            }
            for (&r, row) in rows.iter().zip(x.to_vec2::<f32>()?) {
                data[r * dim..(r + 1) * dim].copy_from_slice(&row);
            }
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
    pub fn forward(&self, batch: &Batch, dropout: Option<&Dropout>) -> candle_core::Result<Tensor> {
        let hidden = self.encoder.forward(&batch.ids, &batch.mask, dropout)?;
        self.pool(&hidden, batch)
    }

    /// Instruction-masked mean pooling, then the head layers.
    fn pool(&self, hidden: &Tensor, batch: &Batch) -> candle_core::Result<Tensor> {
        let (b, seq, _) = hidden.dims3()?;
        let mask = Tensor::from_vec(
            pooling_mask(&batch.lengths, &batch.instruction_lens, seq),
            (b, seq),
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
        let mut out = vec![None; inputs.len()];
        self.run_batches(inputs, opts, |rows, tokens, hidden, batch| {
            for (i, (&r, &len)) in rows.iter().zip(&batch.lengths).enumerate() {
                let states = hidden.get(i)?.narrow(0, 0, len)?;
                out[r] = Some(TokenEmbeddings {
                    ids: tokens[r].ids.clone(),
                    dim: states.dim(1)?,
                    data: states.flatten_all()?.to_vec1()?,
                });
            }
            Ok(())
        })?;
        Ok(out
            .into_iter()
            .map(|t| t.expect("every row is visited"))
            .collect())
    }

    /// Tokenizes, sorts by length (less padding; results do not depend on it), and runs the
    /// encoder batch by batch. `f` gets the original row indices of the batch, all tokens, the
    /// hidden states `[batch, seq, d]` and the batch.
    fn run_batches(
        &self,
        inputs: &[Input],
        opts: &EncodeOptions,
        mut f: impl FnMut(&[usize], &[Tokens], &Tensor, &Batch) -> candle_core::Result<()>,
    ) -> Result<()> {
        if opts.batch_size == 0 {
            return Err(Error::Input("batch_size must be at least 1".into()));
        }
        let tokens = self.tokenize(inputs, opts.max_seq_length)?;
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].ids.len()));
        let mut done = 0;
        for rows in order.chunks(opts.batch_size) {
            let batch = Batch::new(rows.iter().map(|&r| &tokens[r]), &self.device)?;
            let hidden = self.encoder.forward(&batch.ids, &batch.mask, None)?;
            f(rows, &tokens, &hidden, &batch)?;
            done += rows.len();
            if let Some(progress) = opts.progress {
                progress(done, inputs.len());
            }
        }
        Ok(())
    }
}

/// Tokenized inputs padded on the right into one batch.
pub struct Batch {
    /// `[batch, seq]` u32 token ids, 0 on padding.
    pub ids: Tensor,
    /// `[batch, seq]` u8, 1 on real tokens.
    pub mask: Tensor,
    pub lengths: Vec<usize>,
    pub instruction_lens: Vec<usize>,
}

impl Batch {
    pub fn new<'t>(
        tokens: impl IntoIterator<Item = &'t Tokens>,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let tokens: Vec<&Tokens> = tokens.into_iter().collect();
        let lengths: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
        let seq = lengths.iter().copied().max().unwrap_or(1).max(1);
        let mut ids = vec![0u32; tokens.len() * seq];
        let mut mask = vec![0u8; tokens.len() * seq];
        for (i, t) in tokens.iter().enumerate() {
            ids[i * seq..i * seq + t.ids.len()].copy_from_slice(&t.ids);
            mask[i * seq..i * seq + t.ids.len()].fill(1);
        }
        Ok(Self {
            ids: Tensor::from_vec(ids, (tokens.len(), seq), device)?,
            mask: Tensor::from_vec(mask, (tokens.len(), seq), device)?,
            instruction_lens: tokens.iter().map(|t| t.instruction_len).collect(),
            lengths,
        })
    }
}
