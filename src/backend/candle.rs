//! The encoder on candle (CPU, or CUDA with the `cuda` feature): the forward pass training
//! differentiates through, and the one inference also runs on the CPU.

use crate::error::Result;
use crate::head::{l2_normalize, Head};
use crate::input::Tokens;
use crate::model::{Dropout, T5Encoder};
use crate::pooling::{mean_pool, pooling_mask};
use candle_core::Tensor;

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
        device: &candle_core::Device,
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

/// The candle encoder and heads on a candle device.
pub(crate) struct CandleBackend {
    pub(crate) encoder: T5Encoder,
    pub(crate) heads: Vec<Head>,
    pub(crate) device: candle_core::Device,
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

    pub fn embed(&self, batch: &[Tokens], normalize: bool) -> Result<Vec<f32>> {
        let mut x = self.forward(&Batch::new(batch, &self.device)?, None)?;
        if normalize {
            x = l2_normalize(&x)?;
        }
        Ok(x.flatten_all()?.to_vec1()?)
    }

    pub fn hidden(&self, batch: &[Tokens]) -> Result<Vec<f32>> {
        let b = Batch::new(batch, &self.device)?;
        let h = self.encoder.forward(&b.ids, &b.lengths, None)?;
        Ok(h.flatten_all()?.to_vec1()?)
    }

    /// Most tokens one batch may hold. In the browser wasm memory never shrinks and ends at
    /// 4 GiB, so a batch's activations (`[tokens, d_ff]`, `[tokens, 3·heads·d_kv]`, a few
    /// `[tokens, d_model]`, f32) are capped at [`WASM_ACTIVATION_BUDGET`]; natively batches are
    /// as large as asked.
    pub fn max_batch_tokens(&self) -> Option<usize> {
        if !cfg!(target_arch = "wasm32") {
            return None;
        }
        let c = self.encoder.config();
        let per_token = 4 * (c.d_ff + 3 * c.num_heads * c.d_kv + 3 * c.d_model);
        Some((WASM_ACTIVATION_BUDGET / per_token).max(1))
    }
}

/// Bytes of activations one batch may take in wasm memory (see
/// [`CandleBackend::max_batch_tokens`]): 2,184 tokens for instructor-base.
const WASM_ACTIVATION_BUDGET: usize = 64 << 20;
