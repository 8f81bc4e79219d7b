//! A T5 encoder over packed (unpadded) batches.
//!
//! Why not `candle_transformers::models::t5::T5EncoderModel`: its `forward` takes no attention
//! mask, so in a right-padded batch the real tokens attend to the padding and their states change
//! (by up to 3.0 in a test); INSTRUCTOR needs batch-size-independent results. Rather than adding a
//! mask, this encoder packs the batch (see [`T5Encoder::forward`]), which also skips the padding's
//! arithmetic. The layer structure and the weight names follow Hugging Face's `modeling_t5.py`;
//! the config is candle-transformers' own.
//!
//! T5 specifics worth knowing: no 1/sqrt(d) scaling of attention scores, the relative position
//! bias is computed once (layer 0 owns it) and shared by every layer, and its RMSNorm has no
//! mean subtraction and no bias.

use crate::config::{Activation, T5Config};
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Embedding, VarBuilder};

/// A bias-free linear layer, `x @ Wᵀ` on `[tokens, in]`.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    pub(crate) weight: Tensor,
    /// The VarBuilder's dtype. For inference the weight is stored in it; training keeps f32 master
    /// weights and casts them here on every forward (mixed precision), so that the cast follows
    /// each optimizer update and the gradient flows back to the f32 weight.
    compute: DType,
}

impl Linear {
    fn load(vb: VarBuilder, d_in: usize, d_out: usize) -> Result<Self> {
        Ok(Self {
            weight: vb.get((d_out, d_in), "weight")?,
            compute: vb.dtype(),
        })
    }

    /// Computes in `compute` and returns f32.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        matmul_rows(
            &xs.to_dtype(self.compute)?,
            &self.weight.to_dtype(self.compute)?.t()?,
        )?
        .to_dtype(DType::F32)
    }
}

/// Fewest token rows a thread gets in [`matmul_rows`]: each block packs the weight matrix again,
/// so tiny blocks would spend their time packing (16 is a guess, not tuned).
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
const MIN_ROWS_PER_THREAD: usize = 16;

/// `xs @ rhs` for `xs` = `[tokens, in]`, where nearly all of the encoder's time goes.
///
/// In the threaded browser build (`pkg/wasm-threads/`) the token rows are split into one block
/// per thread of the rayon pool (Web Workers, started by `initThreadPool`), each block an ordinary
/// candle matmul, and the blocks concatenated. This is hand-written because candle does not
/// thread there by itself: its CPU matmul asks `get_num_threads()`, which is 1 on wasm32 (no
/// `num_cpus`), so `gemm` runs with `Parallelism::None`. Splitting rows keeps each row's
/// arithmetic (gemm's reduction blocking depends on the inner and output dimensions, not on the
/// row count), so the result is the single-threaded one bit for bit (tests/browser/threads.test.mjs
/// compares them). Everywhere else this is the plain matmul: natively candle already runs gemm on
/// all cores.
fn matmul_rows(xs: &Tensor, rhs: &Tensor) -> Result<Tensor> {
    #[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
    {
        use rayon::prelude::*;
        let rows = xs.dim(0)?;
        let blocks = rayon::current_num_threads().min(rows / MIN_ROWS_PER_THREAD);
        if blocks > 1 {
            let per = rows.div_ceil(blocks);
            let parts = (0..rows)
                .step_by(per)
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|start| xs.narrow(0, start, per.min(rows - start))?.matmul(rhs))
                .collect::<Result<Vec<_>>>()?;
            return Tensor::cat(&parts, 0);
        }
    }
    xs.matmul(rhs)
}

/// RMSNorm without mean subtraction, in f32.
#[derive(Debug, Clone)]
pub(crate) struct LayerNorm {
    pub(crate) weight: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn load(vb: VarBuilder, d: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(d, "weight")?.to_dtype(DType::F32)?,
            eps,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let variance = xs.sqr()?.mean_keepdim(D::Minus1)?;
        xs.broadcast_div(&(variance + self.eps)?.sqrt()?)?
            .broadcast_mul(&self.weight)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum FeedForward {
    Plain {
        wi: Linear,
        wo: Linear,
    },
    Gated {
        wi_0: Linear,
        wi_1: Linear,
        wo: Linear,
    },
}

/// One encoder block, as the checkpoint names it (`encoder.block.{i}.*`).
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub(crate) attn_norm: LayerNorm,
    pub(crate) q: Linear,
    pub(crate) k: Linear,
    pub(crate) v: Linear,
    pub(crate) o: Linear,
    pub(crate) ff_norm: LayerNorm,
    pub(crate) ff: FeedForward,
}

/// Training-time dropout: takes an activation, returns it with elements zeroed and the rest scaled.
pub type Dropout<'a> = dyn Fn(&Tensor) -> Result<Tensor> + 'a;

/// The encoder stack (`encoder.*` and `shared.weight` of a `T5EncoderModel` checkpoint).
#[derive(Debug, Clone)]
pub struct T5Encoder {
    stem: Stem,
    blocks: Vec<Block>,
    activation: Activation,
    cfg: T5Config,
}

impl Block {
    /// Block `i`: `encoder.block.{i}.*`.
    pub(crate) fn load(vb: &VarBuilder, cfg: &T5Config, i: usize) -> Result<Self> {
        let (d, inner, eps) = (
            cfg.d_model,
            cfg.num_heads * cfg.d_kv,
            cfg.layer_norm_epsilon,
        );
        let b = vb.pp("encoder").pp(format!("block.{i}"));
        let att = b.pp("layer.0");
        let sa = att.pp("SelfAttention");
        let ffl = b.pp("layer.1");
        let ffw = ffl.pp("DenseReluDense");
        let ff = if cfg.feed_forward_proj.gated {
            FeedForward::Gated {
                wi_0: Linear::load(ffw.pp("wi_0"), d, cfg.d_ff)?,
                wi_1: Linear::load(ffw.pp("wi_1"), d, cfg.d_ff)?,
                wo: Linear::load(ffw.pp("wo"), cfg.d_ff, d)?,
            }
        } else {
            FeedForward::Plain {
                wi: Linear::load(ffw.pp("wi"), d, cfg.d_ff)?,
                wo: Linear::load(ffw.pp("wo"), cfg.d_ff, d)?,
            }
        };
        Ok(Block {
            attn_norm: LayerNorm::load(att.pp("layer_norm"), d, eps)?,
            q: Linear::load(sa.pp("q"), d, inner)?,
            k: Linear::load(sa.pp("k"), d, inner)?,
            v: Linear::load(sa.pp("v"), d, inner)?,
            o: Linear::load(sa.pp("o"), inner, d)?,
            ff_norm: LayerNorm::load(ffl.pp("layer_norm"), d, eps)?,
            ff,
        })
    }
}

/// The encoder's weights outside its blocks.
#[derive(Debug, Clone)]
pub(crate) struct Stem {
    pub(crate) embed: Embedding,
    /// Block 0 owns it; every layer uses it.
    pub(crate) relative_bias: Embedding,
    pub(crate) final_norm: LayerNorm,
}

impl Stem {
    pub(crate) fn load(vb: &VarBuilder, cfg: &T5Config) -> Result<Self> {
        let (d, heads) = (cfg.d_model, cfg.num_heads);
        let f32_table = |vb: VarBuilder, rows, cols| {
            Ok::<_, candle_core::Error>(Embedding::new(
                vb.get((rows, cols), "weight")?.to_dtype(DType::F32)?,
                cols,
            ))
        };
        let enc = vb.pp("encoder");
        Ok(Self {
            embed: f32_table(vb.pp("shared"), cfg.vocab_size, d)?,
            relative_bias: f32_table(
                enc.pp("block.0.layer.0.SelfAttention.relative_attention_bias"),
                cfg.relative_attention_num_buckets,
                heads,
            )?,
            final_norm: LayerNorm::load(enc.pp("final_layer_norm"), d, cfg.layer_norm_epsilon)?,
        })
    }
}

impl T5Encoder {
    pub fn load(vb: VarBuilder, cfg: &T5Config) -> Result<Self> {
        let stem = Stem::load(&vb, cfg)?;
        let blocks = (0..cfg.num_layers)
            .map(|i| Block::load(&vb, cfg, i))
            .collect::<Result<_>>()?;
        let activation =
            Activation::from_t5(cfg.feed_forward_proj.activation).ok_or_else(|| {
                candle_core::Error::Msg(format!(
                    "feed_forward_proj: unsupported activation {:?}",
                    cfg.feed_forward_proj.activation
                ))
            })?;
        Ok(Self {
            stem,
            blocks,
            activation,
            cfg: cfg.clone(),
        })
    }

    /// Hidden states `[tokens, d_model]` (f32) of a packed batch: `input_ids` `[tokens]` (u32)
    /// holds the sequences one after another, `lengths` their lengths.
    ///
    /// Packing instead of padding: the projections and the feed-forward (nearly all the work)
    /// run on real tokens only, and attention runs per sequence, so no mask is needed and a row's
    /// result cannot depend on what it is batched with.
    ///
    /// `dropout` (None for inference) is applied where Hugging Face's T5 applies dropout. It is a
    /// function rather than a probability so that training can draw the masks from its own seeded
    /// generator: candle's CPU random numbers cannot be seeded, and `--resume` must replay them.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        lengths: &[usize],
        dropout: Option<&Dropout>,
    ) -> Result<Tensor> {
        let n = input_ids.dims1()?;
        if lengths.iter().sum::<usize>() != n {
            candle_core::bail!("sequence lengths {lengths:?} do not add up to {n} tokens");
        }
        let (heads, d_kv) = (self.cfg.num_heads, self.cfg.d_kv);
        let drop = |x: Tensor| match dropout {
            Some(f) => f(&x),
            None => Ok(x),
        };
        let max_len = lengths.iter().copied().max().unwrap_or(0);
        let bias = self.position_bias(max_len, input_ids.device())?;
        let biases: Vec<Tensor> = lengths
            .iter()
            .map(|&l| bias.narrow(1, 0, l)?.narrow(2, 0, l)?.contiguous())
            .collect::<Result<_>>()?;

        let mut x = drop(self.stem.embed.forward(input_ids)?)?;
        for blk in &self.blocks {
            let h = blk.attn_norm.forward(&x)?;
            let (q, k, v) = (blk.q.forward(&h)?, blk.k.forward(&h)?, blk.v.forward(&h)?);
            let mut contexts = Vec::with_capacity(lengths.len());
            let mut start = 0;
            for (&l, bias) in lengths.iter().zip(&biases) {
                // [l, heads·d_kv] → [heads, l, d_kv]
                let split = |t: &Tensor| {
                    t.narrow(0, start, l)?
                        .reshape((l, heads, d_kv))?
                        .transpose(0, 1)?
                        .contiguous()
                };
                let (qs, ks, vs) = (split(&q)?, split(&k)?, split(&v)?);
                let scores = qs.matmul(&ks.t()?)?.add(bias)?;
                // The fused kernel has no backward pass: differentiate through the composite
                // softmax when the scores depend on trainable weights.
                let probs = if scores.track_op() {
                    candle_nn::ops::softmax(&scores, D::Minus1)?
                } else {
                    candle_nn::ops::softmax_last_dim(&scores)?
                };
                let probs = drop(probs)?;
                contexts.push(
                    probs
                        .matmul(&vs)?
                        .transpose(0, 1)?
                        .reshape((l, heads * d_kv))?,
                );
                start += l;
            }
            let ctx = Tensor::cat(&contexts, 0)?;
            x = (x + drop(blk.o.forward(&ctx)?)?)?;

            let h = blk.ff_norm.forward(&x)?;
            let h = match &blk.ff {
                FeedForward::Plain { wi, wo } => {
                    wo.forward(&drop(self.activation.forward(&wi.forward(&h)?)?)?)?
                }
                FeedForward::Gated { wi_0, wi_1, wo } => {
                    let g = self.activation.forward(&wi_0.forward(&h)?)?;
                    wo.forward(&drop((g * wi_1.forward(&h)?)?)?)?
                }
            };
            x = (x + drop(h)?)?;
        }
        drop(self.stem.final_norm.forward(&x)?)
    }

    /// `[heads, l, l]` bias from the bidirectional relative-position buckets.
    fn position_bias(&self, l: usize, device: &Device) -> Result<Tensor> {
        let buckets: Vec<u32> = (0..l)
            .flat_map(|q| (0..l).map(move |k| (q, k)))
            .map(|(q, k)| {
                relative_bucket(
                    k as i64 - q as i64,
                    self.cfg.relative_attention_num_buckets,
                    self.cfg.relative_attention_max_distance,
                )
            })
            .collect();
        let buckets = Tensor::from_vec(buckets, (l * l,), device)?;
        self.stem
            .relative_bias
            .forward(&buckets)?
            .reshape((l, l, self.cfg.num_heads))?
            .permute((2, 0, 1))
    }
}

/// Hugging Face's `_relative_position_bucket` for the bidirectional case, computed in f32 as torch
/// computes it so that the bucket boundaries agree exactly.
pub fn relative_bucket(relative_position: i64, num_buckets: usize, max_distance: usize) -> u32 {
    let half = (num_buckets / 2) as i64;
    let offset = if relative_position > 0 { half } else { 0 };
    let n = relative_position.abs();
    let max_exact = half / 2;
    let bucket = if n < max_exact {
        n
    } else {
        let ratio =
            (n as f32 / max_exact as f32).ln() / (max_distance as f32 / max_exact as f32).ln();
        let large = max_exact + (ratio * (half - max_exact) as f32) as i64;
        large.min(half - 1)
    };
    (offset + bucket) as u32
}

impl T5Encoder {
    pub fn config(&self) -> &T5Config {
        &self.cfg
    }
}
