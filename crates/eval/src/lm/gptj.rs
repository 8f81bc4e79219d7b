//! GPT-J (EleutherAI/gpt-j-6b, the language model of the INSTRUCTOR paper's prompt retrieval), as
//! transformers' `GPTJForCausalLM` computes it. candle-transformers has no GPT-J, hence this file.
//!
//! A block runs attention and the MLP in parallel on the same LayerNorm output and adds both to
//! the residual. Rotary embeddings turn only the first `rotary_dim` dimensions of each head, and
//! in GPT-J's interleaved way (pairs `(x[2i], x[2i+1])`, not the two halves as in GPT-NeoX and
//! Llama). The weight paths are the checkpoint's (`transformer.h.N.attn.q_proj`, `lm_head`, ...).

use candle_core::{DType, Device, IndexOp, Module, Result, Tensor, D};
use candle_nn::{embedding, layer_norm, linear, linear_no_bias, Embedding, LayerNorm, Linear};
use candle_nn::{LayerNormConfig, VarBuilder};

/// The fields of the checkpoint's `config.json` (`GPTJConfig`) the forward pass uses.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// `None`: every dimension of a head is rotated.
    pub rotary_dim: Option<usize>,
    /// `None`: 4 × `n_embd`.
    pub n_inner: Option<usize>,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_act")]
    pub activation_function: String,
}

fn default_eps() -> f64 {
    1e-5
}

fn default_act() -> String {
    "gelu_new".into()
}

/// The keys and values of positions already run, per layer `(batch, heads, positions, head_dim)`:
/// a prompt shared by several continuations is run once.
#[derive(Clone)]
pub struct Past {
    kv: Vec<(Tensor, Tensor)>,
}

impl Past {
    pub fn len(&self) -> usize {
        self.kv.first().map_or(0, |(k, _)| k.dim(2).unwrap_or(0))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same past for each of `n` rows (the past must hold one row).
    pub fn repeat(&self, n: usize) -> Result<Past> {
        let rep = |t: &Tensor| {
            let (_, h, s, d) = t.dims4()?;
            t.broadcast_as((n, h, s, d))?.contiguous()
        };
        let kv = self
            .kv
            .iter()
            .map(|(k, v)| Ok((rep(k)?, rep(v)?)))
            .collect::<Result<_>>()?;
        Ok(Past { kv })
    }
}

struct Block {
    ln_1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    fc_in: Linear,
    fc_out: Linear,
}

pub struct GptJ {
    wte: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    lm_head: Linear,
    /// `sin` and `cos` of every position's angles, `(n_positions, rotary_dim / 2)`, f32.
    sin: Tensor,
    cos: Tensor,
    n_head: usize,
    head_dim: usize,
    rotary_dim: usize,
    dtype: DType,
}

impl GptJ {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        if cfg.activation_function != "gelu_new" {
            candle_core::bail!(
                "activation_function `{}` (GPT-J uses gelu_new)",
                cfg.activation_function
            );
        }
        if cfg.n_head == 0 || !cfg.n_embd.is_multiple_of(cfg.n_head) {
            candle_core::bail!(
                "n_embd {} is not a multiple of n_head {}",
                cfg.n_embd,
                cfg.n_head
            );
        }
        let head_dim = cfg.n_embd / cfg.n_head;
        let rotary_dim = cfg.rotary_dim.unwrap_or(head_dim);
        if rotary_dim > head_dim || !rotary_dim.is_multiple_of(2) {
            candle_core::bail!("rotary_dim {rotary_dim} (must be even and at most {head_dim})");
        }
        let inner = cfg.n_inner.unwrap_or(4 * cfg.n_embd);
        let ln = |vb: VarBuilder| {
            let c = LayerNormConfig {
                eps: cfg.layer_norm_epsilon,
                ..Default::default()
            };
            layer_norm(cfg.n_embd, c, vb)
        };
        let t = vb.pp("transformer");
        let blocks = (0..cfg.n_layer)
            .map(|i| {
                let b = t.pp(format!("h.{i}"));
                let a = b.pp("attn");
                let m = b.pp("mlp");
                Ok(Block {
                    ln_1: ln(b.pp("ln_1"))?,
                    q: linear_no_bias(cfg.n_embd, cfg.n_embd, a.pp("q_proj"))?,
                    k: linear_no_bias(cfg.n_embd, cfg.n_embd, a.pp("k_proj"))?,
                    v: linear_no_bias(cfg.n_embd, cfg.n_embd, a.pp("v_proj"))?,
                    out: linear_no_bias(cfg.n_embd, cfg.n_embd, a.pp("out_proj"))?,
                    fc_in: linear(cfg.n_embd, inner, m.pp("fc_in"))?,
                    fc_out: linear(inner, cfg.n_embd, m.pp("fc_out"))?,
                })
            })
            .collect::<Result<_>>()?;
        // transformers' create_sinusoidal_positions: inv_freq = 1 / 10000^(2i / rotary_dim).
        let half = rotary_dim / 2;
        let mut sin = Vec::with_capacity(cfg.n_positions * half);
        let mut cos = Vec::with_capacity(cfg.n_positions * half);
        for p in 0..cfg.n_positions {
            for i in 0..half {
                let inv = 1.0 / 10000f32.powf((2 * i) as f32 / rotary_dim as f32);
                let angle = p as f32 * inv;
                sin.push(angle.sin());
                cos.push(angle.cos());
            }
        }
        let dev = vb.device();
        Ok(Self {
            wte: embedding(cfg.vocab_size, cfg.n_embd, t.pp("wte"))?,
            blocks,
            ln_f: ln(t.pp("ln_f"))?,
            lm_head: linear(cfg.n_embd, cfg.vocab_size, vb.pp("lm_head"))?,
            sin: Tensor::from_vec(sin, (cfg.n_positions, half), dev)?,
            cos: Tensor::from_vec(cos, (cfg.n_positions, half), dev)?,
            n_head: cfg.n_head,
            head_dim,
            rotary_dim,
            dtype: vb.dtype(),
        })
    }

    pub fn device(&self) -> &Device {
        self.sin.device()
    }

    /// The final hidden states `(batch, positions, n_embd)` of `ids` `(batch, positions)`, which
    /// follow the positions of `past` (if any); and the past extended by them. Rows are causal:
    /// a row padded on the right gives the same states at its real positions as unpadded.
    pub fn forward(&self, ids: &Tensor, past: Option<&Past>) -> Result<(Tensor, Past)> {
        let (b, s) = ids.dims2()?;
        let offset = past.map_or(0, Past::len);
        if offset + s > self.sin.dim(0)? {
            candle_core::bail!(
                "{} positions (the model has {})",
                offset + s,
                self.sin.dim(0)?
            );
        }
        let sin = self.sin.narrow(0, offset, s)?;
        let cos = self.cos.narrow(0, offset, s)?;
        let mask = causal_mask(s, offset, self.device())?;
        let mut x = self.wte.forward(ids)?;
        let mut kv = Vec::with_capacity(self.blocks.len());
        for (i, block) in self.blocks.iter().enumerate() {
            let h = block.ln_1.forward(&x)?;
            let split = |t: Tensor| t.reshape((b, s, self.n_head, self.head_dim));
            let q = self.rotate(&split(block.q.forward(&h)?)?, &sin, &cos)?;
            let k = self.rotate(&split(block.k.forward(&h)?)?, &sin, &cos)?;
            let v = split(block.v.forward(&h)?)?.transpose(1, 2)?.contiguous()?;
            let q = q.transpose(1, 2)?.contiguous()?;
            let mut k = k.transpose(1, 2)?.contiguous()?;
            let mut v = v;
            if let Some(p) = past {
                let (pk, pv) = &p.kv[i];
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            // Scores and softmax in f32, as transformers does for GPT-J in any dtype; the
            // 1/√d scale on q (positions × d) rather than on the scores (positions²).
            let scale = (self.head_dim as f64).sqrt();
            let w = q
                .to_dtype(DType::F32)?
                .affine(1.0 / scale, 0.0)?
                .matmul(&k.to_dtype(DType::F32)?.t()?)?
                .broadcast_add(&mask)?;
            let w = candle_nn::ops::softmax_last_dim(&w)?.to_dtype(self.dtype)?;
            let a = w
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((b, s, self.n_head * self.head_dim))?;
            let attn = block.out.forward(&a)?;
            let mlp = block.fc_out.forward(&block.fc_in.forward(&h)?.gelu()?)?;
            x = ((attn + mlp)? + x)?;
            kv.push((k, v));
        }
        Ok((self.ln_f.forward(&x)?, Past { kv }))
    }

    /// Logits (f32) of hidden states.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(hidden)?.to_dtype(DType::F32)
    }

    /// GPT-J's rotary embedding on `x` `(batch, positions, heads, head_dim)`: the pairs
    /// `(x[2i], x[2i+1])` of the first `rotary_dim` dimensions turned by position × inv_freq[i]
    /// (transformers' `rotate_every_two` with `sin`/`cos` repeated twice, interleaved).
    fn rotate(&self, x: &Tensor, sin: &Tensor, cos: &Tensor) -> Result<Tensor> {
        let (b, s, h, d) = x.dims4()?;
        let half = self.rotary_dim / 2;
        let rot = x.narrow(3, 0, self.rotary_dim)?.to_dtype(DType::F32)?;
        let pairs = rot.reshape((b, s, h, half, 2))?;
        let (x1, x2) = (pairs.i((.., .., .., .., 0))?, pairs.i((.., .., .., .., 1))?);
        let sin = sin.reshape((1, s, 1, half))?;
        let cos = cos.reshape((1, s, 1, half))?;
        // (x1, x2) → (x1 cos − x2 sin, x2 cos + x1 sin)
        let y1 = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
        let y2 = (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?;
        let turned = Tensor::stack(&[y1, y2], D::Minus1)?
            .reshape((b, s, h, self.rotary_dim))?
            .to_dtype(x.dtype())?;
        if self.rotary_dim == d {
            Ok(turned)
        } else {
            Tensor::cat(
                &[&turned, &x.narrow(3, self.rotary_dim, d - self.rotary_dim)?],
                3,
            )
        }
    }
}

/// `(s, offset + s)`: 0 where query `i` (at position offset + i) may see key `j`, −∞ after it.
fn causal_mask(s: usize, offset: usize, dev: &Device) -> Result<Tensor> {
    let t = offset + s;
    let m: Vec<f32> = (0..s)
        .flat_map(|i| {
            (0..t).map(move |j| {
                if j <= offset + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Tensor::from_vec(m, (s, t), dev)
}
