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

use super::int8::{self, Int8Matrix, Kernel};
use crate::config::{Activation, T5Config};
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Embedding, VarBuilder};
use std::sync::Arc;

/// A linear layer `x @ Wᵀ (+ b)` on `[rows, in]`: the encoder's projections (bias-free) and the
/// Dense head, in a float dtype or int8.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

#[derive(Debug, Clone)]
enum Weight {
    /// `compute` is the VarBuilder's dtype. For inference the weight is stored in it; training
    /// keeps f32 master weights and casts them here on every forward (mixed precision), so that
    /// the cast follows each optimizer update and the gradient flows back to the f32 weight.
    Float { weight: Tensor, compute: DType },
    /// Per-output-channel int8 (see [`int8`]), activations quantized per token.
    Int8(Arc<Int8Matrix>, Kernel),
}

impl Linear {
    /// `{vb}.weight` `[d_out, d_in]` (and `{vb}.bias` when `bias`). A checkpoint written by
    /// `instructor quantize` holds the weight as int8 with `weight_scale`: it is used as it is
    /// when `int8`, and dequantized to the VarBuilder's dtype otherwise (the GPU backends).
    pub(crate) fn load(
        vb: VarBuilder,
        d_in: usize,
        d_out: usize,
        bias: bool,
        int8: bool,
    ) -> Result<Self> {
        let mut linear = if int8 {
            let (q, scales) = int8_rows(&vb, d_out, d_in)?;
            Self::from_int8(&q, scales, d_out, d_in)?
        } else {
            Self {
                weight: Weight::Float {
                    weight: float_or_dequantized(&vb, d_out, d_in, vb.dtype())?,
                    compute: vb.dtype(),
                },
                bias: None,
            }
        };
        if bias {
            linear.bias = Some(vb.get(d_out, "bias")?.to_dtype(DType::F32)?);
        }
        Ok(linear)
    }

    /// A bias-free int8 layer from row-major `[n, k]` values and one scale per row.
    fn from_int8(q: &[i8], scales: Vec<f32>, n: usize, k: usize) -> Result<Self> {
        let kernel = Kernel::chosen().map_err(candle_core::Error::Msg)?;
        Ok(Self {
            weight: Weight::Int8(
                Arc::new(Int8Matrix::from_quantized(q, scales, n, k)),
                kernel,
            ),
            bias: None,
        })
    }
    /// Computes in the weight's dtype and returns f32.
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let y = match &self.weight {
            Weight::Float { weight, compute } => {
                matmul_rows(&xs.to_dtype(*compute)?, &weight.to_dtype(*compute)?.t()?)?
                    .to_dtype(DType::F32)?
            }
            Weight::Int8(w, kernel) => {
                let (m, _) = xs.dims2()?;
                let x = xs.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                Tensor::from_vec(
                    int8::matmul(&x, m, w, *kernel),
                    (m, w.dims().0),
                    xs.device(),
                )?
            }
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// The float weight `[d_out, d_in]`, for the GPU backend (which never loads int8).
    #[cfg(feature = "wgpu")]
    pub(crate) fn float_weight(&self) -> Result<&Tensor> {
        match &self.weight {
            Weight::Float { weight, .. } => Ok(weight),
            Weight::Int8(..) => candle_core::bail!("int8 weights run on the CPU backend only"),
        }
    }

    #[cfg(feature = "wgpu")]
    pub(crate) fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The int8 weights and the kernel that multiplies them, if quantized.
    pub(crate) fn int8(&self) -> Option<(&Int8Matrix, Kernel)> {
        match &self.weight {
            Weight::Int8(w, k) => Some((w, *k)),
            Weight::Float { .. } => None,
        }
    }
}

/// The name of an int8 weight's per-channel scales beside it (`….weight_scale`).
pub(crate) const SCALE: &str = "weight_scale";

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

/// The attention's input projections.
#[derive(Debug, Clone)]
pub(crate) enum Qkv {
    Separate {
        q: Linear,
        k: Linear,
        v: Linear,
    },
    /// Int8: q, k and v stacked into one `[3·inner, d]` matrix, so that each token is quantized
    /// once and the three products run as one (its output columns are q's, then k's, then v's).
    Fused(Linear),
}

/// One encoder block, as the checkpoint names it (`encoder.block.{i}.*`).
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub(crate) attn_norm: LayerNorm,
    pub(crate) qkv: Qkv,
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
    /// Block `i`: `encoder.block.{i}.*`, its projections in int8 when `int8`.
    pub(crate) fn load(vb: &VarBuilder, cfg: &T5Config, i: usize, int8: bool) -> Result<Self> {
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
                wi_0: Linear::load(ffw.pp("wi_0"), d, cfg.d_ff, false, int8)?,
                wi_1: Linear::load(ffw.pp("wi_1"), d, cfg.d_ff, false, int8)?,
                wo: Linear::load(ffw.pp("wo"), cfg.d_ff, d, false, int8)?,
            }
        } else {
            FeedForward::Plain {
                wi: Linear::load(ffw.pp("wi"), d, cfg.d_ff, false, int8)?,
                wo: Linear::load(ffw.pp("wo"), cfg.d_ff, d, false, int8)?,
            }
        };
        let qkv = if int8 {
            // Stacked row-major before the one packing: one product gives q, k and v.
            let (mut q, mut scales) = (Vec::new(), Vec::new());
            for name in ["q", "k", "v"] {
                let (rows, s) = int8_rows(&sa.pp(name), inner, d)?;
                q.extend(rows);
                scales.extend(s);
            }
            Qkv::Fused(Linear::from_int8(&q, scales, 3 * inner, d)?)
        } else {
            Qkv::Separate {
                q: Linear::load(sa.pp("q"), d, inner, false, false)?,
                k: Linear::load(sa.pp("k"), d, inner, false, false)?,
                v: Linear::load(sa.pp("v"), d, inner, false, false)?,
            }
        };
        Ok(Block {
            attn_norm: LayerNorm::load(att.pp("layer_norm"), d, eps)?,
            qkv,
            o: Linear::load(sa.pp("o"), inner, d, false, int8)?,
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
    /// The embedding table goes through int8 as well when `int8` (see [`embedding_table`]).
    pub(crate) fn load(vb: &VarBuilder, cfg: &T5Config, int8: bool) -> Result<Self> {
        let (d, heads) = (cfg.d_model, cfg.num_heads);
        let f32_table = |vb: VarBuilder, rows, cols| {
            Ok::<_, candle_core::Error>(Embedding::new(
                vb.get((rows, cols), "weight")?.to_dtype(DType::F32)?,
                cols,
            ))
        };
        let enc = vb.pp("encoder");
        Ok(Self {
            embed: Embedding::new(
                embedding_table(vb.pp("shared"), cfg.vocab_size, d, int8)?,
                d,
            ),
            relative_bias: f32_table(
                enc.pp("block.0.layer.0.SelfAttention.relative_attention_bias"),
                cfg.relative_attention_num_buckets,
                heads,
            )?,
            final_norm: LayerNorm::load(enc.pp("final_layer_norm"), d, cfg.layer_norm_epsilon)?,
        })
    }
}

/// The token embedding table `[vocab, d]` in f32. With `int8` it is quantized per row and
/// dequantized again: the values `instructor quantize` stores (an int8 table is a quarter of the
/// f32 one, 25 of instructor-base's 99 MB), so that quantizing at load time and loading a quantized
/// folder give the same model. A quantized checkpoint's table (`weight_scale` beside it) is always
/// dequantized: lookups need no integer arithmetic.
fn embedding_table(vb: VarBuilder, rows: usize, cols: usize, int8: bool) -> Result<Tensor> {
    if !int8 {
        return float_or_dequantized(&vb, rows, cols, DType::F32)?.to_dtype(DType::F32);
    }
    let (q, scales) = int8_rows(&vb, rows, cols)?;
    dequantized(&q, &scales, rows, cols, vb.device())
}

/// `{vb}.weight` `[rows, cols]` for float arithmetic: as the VarBuilder gives it (training's f32
/// master weight stays itself, so no cast here), or dequantized to `dtype` when `instructor
/// quantize` stored it as int8.
fn float_or_dequantized(vb: &VarBuilder, rows: usize, cols: usize, dtype: DType) -> Result<Tensor> {
    if !vb.contains_tensor(SCALE) {
        return vb.get((rows, cols), "weight");
    }
    let (q, scales) = int8_rows(vb, rows, cols)?;
    dequantized(&q, &scales, rows, cols, vb.device())?.to_dtype(dtype)
}

/// `{vb}.weight` `[rows, cols]` as row-major int8 and one scale per row: as `instructor quantize`
/// stored it (`weight_scale` beside it), or quantized now from a float weight.
fn int8_rows(vb: &VarBuilder, rows: usize, cols: usize) -> Result<(Vec<i8>, Vec<f32>)> {
    if vb.contains_tensor(SCALE) {
        let q = vb.get_with_hints_dtype((rows, cols), "weight", Default::default(), DType::F32)?;
        let scale = vb.get_with_hints_dtype(rows, SCALE, Default::default(), DType::F32)?;
        let q = q.flatten_all()?.to_vec1::<f32>()?;
        Ok((q.iter().map(|&v| v as i8).collect(), scale.to_vec1()?))
    } else {
        let w = vb.get((rows, cols), "weight")?.to_dtype(DType::F32)?;
        Ok(int8::quantize_rows(
            &w.flatten_all()?.to_vec1()?,
            rows,
            cols,
        ))
    }
}

/// `q · scale` per row, in f32.
fn dequantized(q: &[i8], scales: &[f32], rows: usize, cols: usize, dev: &Device) -> Result<Tensor> {
    let values = q
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f32 * scales[i / cols])
        .collect();
    Tensor::from_vec(values, (rows, cols), dev)
}

impl T5Encoder {
    /// The encoder from a `T5EncoderModel` checkpoint; its projections in int8 when `int8` (the
    /// VarBuilder is then f32), else in the VarBuilder's dtype.
    pub fn load(vb: VarBuilder, cfg: &T5Config, int8: bool) -> Result<Self> {
        let stem = Stem::load(&vb, cfg, int8)?;
        let blocks = (0..cfg.num_layers)
            .map(|i| Block::load(&vb, cfg, i, int8))
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
        let drop = |x: Tensor| apply(dropout, x);
        let max_len = lengths.iter().copied().max().unwrap_or(0);
        let bias = self.position_bias(max_len, input_ids.device())?;
        // Per sequence: its first row, its length and its `[heads, l, l]` bias.
        let seqs: Vec<(usize, usize, Tensor)> = lengths
            .iter()
            .scan(0, |start, &l| {
                *start += l;
                Some((*start - l, l))
            })
            .map(|(start, l)| {
                Ok((
                    start,
                    l,
                    bias.narrow(1, 0, l)?.narrow(2, 0, l)?.contiguous()?,
                ))
            })
            .collect::<Result<_>>()?;

        let mut x = drop(self.stem.embed.forward(input_ids)?)?;
        for blk in &self.blocks {
            let h = blk.attn_norm.forward(&x)?;
            let (q, k, v) = match &blk.qkv {
                Qkv::Separate { q, k, v } => (q.forward(&h)?, k.forward(&h)?, v.forward(&h)?),
                Qkv::Fused(qkv) => {
                    let y = qkv.forward(&h)?;
                    let inner = heads * d_kv;
                    (
                        y.narrow(1, 0, inner)?,
                        y.narrow(1, inner, inner)?,
                        y.narrow(1, 2 * inner, inner)?,
                    )
                }
            };
            let attend = |(start, l, bias): &(usize, usize, Tensor), dropout| {
                attention([&q, &k, &v], *start, *l, bias, (heads, d_kv), dropout)
            };
            let contexts = match dropout {
                // Inference on the CPU: one sequence per task. Each sequence's products are
                // small (12 heads of ~50×64), too small for candle to spread over the cores.
                #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
                None if x.device().is_cpu() => {
                    use rayon::prelude::*;
                    seqs.par_iter()
                        .map(|s| attend(s, None))
                        .collect::<Result<Vec<_>>>()?
                }
                _ => seqs
                    .iter()
                    .map(|s| attend(s, dropout))
                    .collect::<Result<Vec<_>>>()?,
            };
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

/// `x` through `dropout`, when training.
fn apply(dropout: Option<&Dropout>, x: Tensor) -> Result<Tensor> {
    match dropout {
        Some(f) => f(&x),
        None => Ok(x),
    }
}

/// Self-attention of the sequence at rows `start..start + l` of the projections `[q, k, v]`
/// (`[tokens, heads·d_kv]`): its context `[l, heads·d_kv]`.
fn attention(
    [q, k, v]: [&Tensor; 3],
    start: usize,
    l: usize,
    bias: &Tensor,
    (heads, d_kv): (usize, usize),
    dropout: Option<&Dropout>,
) -> Result<Tensor> {
    // [l, heads·d_kv] → [heads, l, d_kv]
    let split = |t: &Tensor| {
        t.narrow(0, start, l)?
            .reshape((l, heads, d_kv))?
            .transpose(0, 1)?
            .contiguous()
    };
    let (qs, ks, vs) = (split(q)?, split(k)?, split(v)?);
    let scores = qs.matmul(&ks.t()?)?.add(bias)?;
    // The fused kernel has no backward pass: differentiate through the composite softmax when
    // the scores depend on trainable weights.
    let probs = if scores.track_op() {
        candle_nn::ops::softmax(&scores, D::Minus1)?
    } else {
        candle_nn::ops::softmax_last_dim(&scores)?
    };
    apply(dropout, probs)?
        .matmul(&vs)?
        .transpose(0, 1)?
        .reshape((l, heads * d_kv))
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

    /// The int8 kernel when the projections are int8.
    pub fn int8_kernel(&self) -> Option<Kernel> {
        self.blocks.first()?.o.int8().map(|(_, k)| k)
    }
}
