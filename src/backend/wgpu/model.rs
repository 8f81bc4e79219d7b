//! A model on the GPU: its weights (uploaded once) and the forward pass from token ids to
//! embeddings, recorded as one submission per batch.

use super::kernels::{Mode, Pass, Weight};
use super::{Gpu, Storage};
use crate::config::{Activation, T5Config};
use crate::error::{candle_message, Error, Result};
use crate::head::Head;
use crate::input::Tokens;
use crate::model::t5::{relative_bucket, Block, FeedForward, Qkv, Stem};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How a [`WgpuEncoder`] is built.
#[derive(Debug, Clone, Copy, Default)]
pub struct WgpuOptions {
    pub storage: Storage,
    /// Split weights into bindings of at most this many bytes (the device's limit when `None`,
    /// and never above it). Tests lower it to exercise the split on small models.
    pub max_binding_bytes: Option<u64>,
}

/// An encoder block on the GPU.
struct GpuBlock {
    attn_norm: wgpu::Buffer,
    /// Q, K and V stacked: `[3·inner, d]`, one matmul for all three.
    qkv: Weight,
    o: Weight,
    ff_norm: wgpu::Buffer,
    /// `[wi]`, or `[wi_0, wi_1]` (activated, linear) when gated.
    wi: Vec<Weight>,
    wo: Weight,
}

/// A head layer on the GPU.
enum GpuHead {
    Dense {
        weight: Weight,
        bias: Option<wgpu::Buffer>,
        act: Activation,
        out: u32,
    },
    Normalize,
}

/// Activation buffers, sized by the largest batch seen and reused.
struct Buffers {
    tokens: u32,
    inputs: u32,
    /// Longest sequence the bucket table covers.
    max_len: u32,
    ids: wgpu::Buffer,
    /// The residual stream `[tokens, d]`.
    x: wgpu::Buffer,
    /// Normalised states `[tokens, d]`; after the final norm, the encoder's output.
    h: wgpu::Buffer,
    qkv: wgpu::Buffer,
    ctx: wgpu::Buffer,
    ff: wgpu::Buffer,
    seqs: wgpu::Buffer,
    tiles: wgpu::Buffer,
    buckets: wgpu::Buffer,
    /// Ping-pong `[inputs, widest head]` for pooling and the head layers.
    pooled: [wgpu::Buffer; 2],
    params: Option<wgpu::Buffer>,
    staging: Option<wgpu::Buffer>,
}

/// What a batch reads back.
enum Output {
    Embeddings { normalize: bool },
    Hidden,
}

/// An INSTRUCTOR model on a [`Gpu`]: weights resident, activations pooled.
pub struct WgpuEncoder {
    gpu: Arc<Gpu>,
    d: u32,
    heads: u32,
    d_kv: u32,
    d_ff: u32,
    eps: f32,
    vocab: u32,
    buckets: usize,
    max_distance: usize,
    embed: Weight,
    rel_bias: wgpu::Buffer,
    blocks: Vec<GpuBlock>,
    final_norm: wgpu::Buffer,
    ff_act: Activation,
    head_layers: Vec<GpuHead>,
    /// Widest vector after pooling (d or a Dense layer's output).
    widest: u32,
    dim: u32,
    buffers: Mutex<Option<Buffers>>,
}

/// Runs `f` on a host tensor's values as f32, in place when they are f32 already: the upload
/// reads each weight where it lies instead of copying it first.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.to_dtype(DType::F32)?.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    if let candle_core::Storage::Cpu(cpu) = &*storage {
        let start = layout.start_offset();
        return f(&cpu.as_slice::<f32>()?[start..start + t.elem_count()]);
    }
    drop(storage);
    f(&t.flatten_all()?.to_vec1::<f32>()?)
}

/// Reads an encoder's weights: hands each block's to the visitor, then returns the others.
type WeightSource<'s> =
    dyn FnOnce(&mut dyn FnMut(usize, BlockWeights<'_>) -> Result<()>) -> Result<StemWeights> + 's;

impl WgpuEncoder {
    /// Reads the encoder from `vb` (the weights file `file`) block by block straight into GPU
    /// buffers, with the head layers: the host holds one block at a time, never the model (the
    /// browser's wasm memory ends at 4 GiB; instructor-xl's weights alone take 2.5 GB in f16).
    /// Fails (rather than panicking) when the GPU runs out of memory or a weight does not fit a
    /// binding.
    pub(crate) async fn stream(
        gpu: Gpu,
        vb: &VarBuilder<'_>,
        cfg: &T5Config,
        file: &Path,
        heads: &[Head],
        opts: WgpuOptions,
    ) -> Result<Self> {
        let load_err = |e: candle_core::Error| Error::weights(file, candle_message(&e));
        let weights = |visit: &mut dyn FnMut(usize, BlockWeights<'_>) -> Result<()>| {
            for i in 0..cfg.num_layers {
                let block = Block::load(vb, cfg, i, false).map_err(load_err)?;
                visit(i, BlockWeights::of(&block).map_err(load_err)?)?;
            }
            let stem = Stem::load(vb, cfg, false).map_err(load_err)?;
            Ok(StemWeights {
                embed: stem.embed.embeddings().clone(),
                relative_bias: stem.relative_bias.embeddings().clone(),
                final_norm: stem.final_norm.weight,
            })
        };
        Self::build(gpu, cfg, heads, opts, Box::new(weights)).await
    }

    async fn build(
        gpu: Gpu,
        cfg: &T5Config,
        heads: &[Head],
        opts: WgpuOptions,
        weights: Box<WeightSource<'_>>,
    ) -> Result<Self> {
        // Natively the Gpu is Send + Sync (the encoder may be shared across threads); in the
        // browser wgpu's handles are not, and the wasm build is single-threaded.
        #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
        let gpu = Arc::new(gpu);
        gpu.scoped(|| Self::upload(gpu.clone(), cfg, heads, opts, weights))
            .await?
    }

    fn upload(
        gpu: Arc<Gpu>,
        cfg: &T5Config,
        heads: &[Head],
        opts: WgpuOptions,
        weights: Box<WeightSource<'_>>,
    ) -> Result<Self> {
        let (d, inner) = (cfg.d_model, cfg.num_heads * cfg.d_kv);
        let upload = |name: &str, t: &Tensor, rows: usize, cols: usize| {
            with_f32(t, |data| {
                gpu.upload_weight(name, data, rows, cols, opts.storage, opts.max_binding_bytes)
            })
        };
        // Norm weights and the position bias are tiny and enter f32 arithmetic directly: f32.
        let vector = |name: &str, t: &Tensor| {
            with_f32(t, |data| {
                Ok(gpu.buffer_with(name, bytemuck::cast_slice(data)))
            })
        };
        let mut blocks = Vec::with_capacity(cfg.num_layers);
        let stem = weights(&mut |i, b| {
            let qkv = Tensor::cat(&[b.q, b.k, b.v], 0)?;
            blocks.push(GpuBlock {
                attn_norm: vector("attn_norm", b.attn_norm)?,
                qkv: upload(&format!("block.{i}.qkv"), &qkv, 3 * inner, d)?,
                o: upload(&format!("block.{i}.o"), b.o, d, inner)?,
                ff_norm: vector("ff_norm", b.ff_norm)?,
                wi: b
                    .wi
                    .iter()
                    .map(|t| upload(&format!("block.{i}.wi"), t, cfg.d_ff, d))
                    .collect::<Result<_>>()?,
                wo: upload(&format!("block.{i}.wo"), b.wo, d, cfg.d_ff)?,
            });
            // Natively wgpu stages written data until the next submission: flushing block by
            // block keeps the staging memory at one block's size too.
            gpu.queue.submit([]);
            Ok(())
        })?;
        let embed = upload("shared.weight", &stem.embed, cfg.vocab_size, d)?;
        let mut width = d;
        let mut widest = d;
        let head_layers = heads
            .iter()
            .map(|h| {
                Ok(match h {
                    Head::Normalize => GpuHead::Normalize,
                    Head::Dense { linear, activation } => {
                        let weight = linear.float_weight()?;
                        let (out, inp) = weight.dims2()?;
                        width = out;
                        widest = widest.max(out);
                        GpuHead::Dense {
                            weight: upload("dense", weight, out, inp)?,
                            bias: linear.bias().map(|b| vector("dense.bias", b)).transpose()?,
                            act: *activation,
                            out: out as u32,
                        }
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            d: d as u32,
            heads: cfg.num_heads as u32,
            d_kv: cfg.d_kv as u32,
            d_ff: cfg.d_ff as u32,
            eps: cfg.layer_norm_epsilon as f32,
            vocab: cfg.vocab_size as u32,
            buckets: cfg.relative_attention_num_buckets,
            max_distance: cfg.relative_attention_max_distance,
            embed,
            rel_bias: vector("relative_attention_bias", &stem.relative_bias)?,
            blocks,
            final_norm: vector("final_layer_norm", &stem.final_norm)?,
            ff_act: Activation::from_t5(cfg.feed_forward_proj.activation)
                .ok_or_else(|| Error::device(gpu.name(), "unsupported feed-forward activation"))?,
            head_layers,
            widest: widest as u32,
            dim: width as u32,
            buffers: Mutex::new(None),
            gpu,
        })
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Embeddings `[batch.len(), dim]` of one batch: encoder, pooling, head layers, and one more
    /// L2 normalisation when `normalize`.
    pub async fn embed(&self, batch: &[Tokens], normalize: bool) -> Result<Vec<f32>> {
        self.run(batch, Output::Embeddings { normalize }).await
    }

    /// The encoder's output states `[tokens, d_model]`, the batch's inputs one after another.
    pub async fn hidden(&self, batch: &[Tokens]) -> Result<Vec<f32>> {
        self.run(batch, Output::Hidden).await
    }

    /// Activation buffers for at least `tokens`, `inputs` and sequences of `max_len`, reusing
    /// `slot`'s when they are large enough (growing to the largest batch seen otherwise).
    fn buffers(&self, slot: &mut Option<Buffers>, tokens: u32, inputs: u32, max_len: u32) {
        if let Some(b) = slot {
            if b.tokens >= tokens && b.inputs >= inputs && b.max_len >= max_len {
                return;
            }
        }
        let old = slot.take();
        let grow = |cur: Option<u32>, want: u32| cur.map_or(want, |c| c.max(want));
        let tokens = grow(old.as_ref().map(|b| b.tokens), tokens);
        let inputs = grow(old.as_ref().map(|b| b.inputs), inputs);
        let max_len = grow(old.as_ref().map(|b| b.max_len), max_len);
        let g = &self.gpu;
        let f = |label: &str, n: u32| g.storage_buffer(label, n as u64 * 4);
        let (t, inner) = (tokens, self.heads * self.d_kv);
        let buckets = bucket_table(max_len, self.buckets, self.max_distance);
        *slot = Some(Buffers {
            tokens,
            inputs,
            max_len,
            ids: f("ids", t),
            x: f("x", t * self.d),
            h: f("h", t * self.d),
            qkv: f("qkv", t * 3 * inner),
            ctx: f("ctx", t * inner),
            // One [tokens, d_ff] buffer serves both feed-forwards: the gated one multiplies in place.
            ff: f("ff", t * self.d_ff),
            seqs: f("seqs", inputs * 4),
            // A sequence of length l has ceil(l / 64) tiles: at most inputs + tokens / 64.
            tiles: f("tiles", (inputs + tokens / 64 + 1) * 4),
            buckets: g.buffer_with("buckets", bytemuck::cast_slice(&buckets)),
            pooled: [
                f("pooled", inputs * self.widest),
                f("pooled", inputs * self.widest),
            ],
            params: old.as_ref().and_then(|b| b.params.clone()),
            staging: old.and_then(|b| b.staging),
        });
    }

    async fn run(&self, batch: &[Tokens], output: Output) -> Result<Vec<f32>> {
        let ids: Vec<u32> = batch.iter().flat_map(|t| t.ids.iter().copied()).collect();
        if let Some(bad) = ids.iter().find(|&&id| id >= self.vocab) {
            return Err(Error::Input(format!(
                "token id {bad} is outside the vocabulary ({})",
                self.vocab
            )));
        }
        let t = ids.len() as u32;
        let n = batch.len() as u32;
        if t == 0 {
            let width = match output {
                Output::Hidden => 0,
                Output::Embeddings { .. } => self.dim as usize,
            };
            return Ok(vec![0.0; batch.len() * width]);
        }
        let (seqs, tiles) = layout(batch.iter().map(|t| (t.ids.len(), t.instruction_len)));
        let max_len = batch.iter().map(|t| t.ids.len()).max().unwrap_or(0) as u32;

        // The pool is taken out for the batch (no lock is held across the await): a concurrent
        // batch finds it empty and allocates its own, and the larger of the two is kept.
        let mut slot = self.buffers.lock().unwrap().take();
        self.buffers(&mut slot, t, n, max_len);
        let b = slot.as_mut().expect("allocated above");
        let g = &self.gpu;
        g.queue.write_buffer(&b.ids, 0, bytemuck::cast_slice(&ids));
        g.queue
            .write_buffer(&b.seqs, 0, bytemuck::cast_slice(&seqs));
        g.queue
            .write_buffer(&b.tiles, 0, bytemuck::cast_slice(&tiles));

        let mut pass = Pass::default();
        self.record_encoder(&mut pass, b, t, tiles.len() as u32 / 4);
        let read = match output {
            Output::Hidden => (b.h.clone(), (t * self.d) as usize),
            Output::Embeddings { normalize } => {
                let (out, width) = self.record_pooling(&mut pass, b, n, normalize);
                (out, (n * width) as usize)
            }
        };
        let out = g
            .run(pass, &mut b.params, &mut b.staging, (&read.0, read.1))
            .await;
        let mut pool = self.buffers.lock().unwrap();
        if pool.as_ref().is_none_or(|p| p.tokens < b.tokens) {
            *pool = slot;
        }
        out
    }

    /// Token ids → final-norm states in `b.h`.
    fn record_encoder(&self, pass: &mut Pass, b: &Buffers, t: u32, tiles: u32) {
        let g = &self.gpu;
        let (d, inner) = (self.d, self.heads * self.d_kv);
        g.gather(pass, &b.ids, &self.embed, &b.x, t);
        for blk in &self.blocks {
            g.norm(pass, &b.x, Some(&blk.attn_norm), &b.h, t, d, self.eps);
            g.matmul(
                pass,
                &b.h,
                &blk.qkv,
                None,
                &b.qkv,
                t,
                3 * inner,
                Activation::Identity,
                Mode::Store,
            );
            g.attention(
                pass,
                &b.qkv,
                (&b.tiles, tiles),
                (&b.buckets, b.max_len - 1),
                &self.rel_bias,
                &b.ctx,
                self.heads,
                self.d_kv,
            );
            g.matmul(
                pass,
                &b.ctx,
                &blk.o,
                None,
                &b.x,
                t,
                d,
                Activation::Identity,
                Mode::Add,
            );
            g.norm(pass, &b.x, Some(&blk.ff_norm), &b.h, t, d, self.eps);
            let ff = self.d_ff;
            match blk.wi.as_slice() {
                [wi] => g.matmul(pass, &b.h, wi, None, &b.ff, t, ff, self.ff_act, Mode::Store),
                [wi_0, wi_1] => {
                    g.matmul(
                        pass,
                        &b.h,
                        wi_1,
                        None,
                        &b.ff,
                        t,
                        ff,
                        Activation::Identity,
                        Mode::Store,
                    );
                    g.matmul(pass, &b.h, wi_0, None, &b.ff, t, ff, self.ff_act, Mode::Mul);
                }
                _ => unreachable!("BlockWeights::of gives one or two input matrices"),
            }
            g.matmul(
                pass,
                &b.ff,
                &blk.wo,
                None,
                &b.x,
                t,
                d,
                Activation::Identity,
                Mode::Add,
            );
        }
        g.norm(pass, &b.x, Some(&self.final_norm), &b.h, t, d, self.eps);
    }

    /// `b.h` → pooled, headed (and normalised) embeddings; returns their buffer and width.
    fn record_pooling(
        &self,
        pass: &mut Pass,
        b: &Buffers,
        n: u32,
        normalize: bool,
    ) -> (wgpu::Buffer, u32) {
        let g = &self.gpu;
        g.pool(pass, &b.h, &b.seqs, &b.pooled[0], n, self.d);
        let (mut cur, mut width) = (0, self.d);
        let extra = normalize.then_some(&GpuHead::Normalize);
        for head in self.head_layers.iter().chain(extra) {
            let (src, dst) = (&b.pooled[cur], &b.pooled[1 - cur]);
            match head {
                GpuHead::Normalize => g.norm(pass, src, None, dst, n, width, 0.0),
                GpuHead::Dense {
                    weight,
                    bias,
                    act,
                    out,
                } => {
                    g.matmul(
                        pass,
                        src,
                        weight,
                        bias.as_ref(),
                        dst,
                        n,
                        *out,
                        *act,
                        Mode::Store,
                    );
                    width = *out;
                }
            }
            cur = 1 - cur;
        }
        (b.pooled[cur].clone(), width)
    }
}

/// The bucket of every relative position `-(max_len-1)..=(max_len-1)` (index `max_len - 1` is
/// position 0), from the CPU path's own function: an f32 log on the GPU could land on the other
/// side of a bucket boundary.
pub(super) fn bucket_table(max_len: u32, buckets: usize, max_distance: usize) -> Vec<u32> {
    (1 - max_len as i64..max_len as i64)
        .map(|r| relative_bucket(r, buckets, max_distance))
        .collect()
}

/// A packed batch's tables from its `(length, instruction length)` per input: `seqs` for pooling
/// (first token, length, instruction length, 0) and attention `tiles` (first token, length, first
/// query, 0), one per 64 queries.
pub(super) fn layout(inputs: impl Iterator<Item = (usize, usize)>) -> (Vec<u32>, Vec<u32>) {
    let (mut seqs, mut tiles) = (Vec::new(), Vec::new());
    let mut start = 0u32;
    for (len, instruction_len) in inputs {
        let len = len as u32;
        seqs.extend([start, len, instruction_len as u32, 0]);
        for q0 in (0..len).step_by(64) {
            tiles.extend([start, len, q0, 0]);
        }
        start += len;
    }
    (seqs, tiles)
}

/// The encoder's weights outside its blocks, as the GPU uploads them.
struct StemWeights {
    /// `[vocab, d_model]`
    embed: Tensor,
    /// `[buckets, heads]`, shared by every layer.
    relative_bias: Tensor,
    final_norm: Tensor,
}

/// One block's weights; matrices are `[out, in]` as in the checkpoint.
struct BlockWeights<'a> {
    attn_norm: &'a Tensor,
    q: &'a Tensor,
    k: &'a Tensor,
    v: &'a Tensor,
    o: &'a Tensor,
    ff_norm: &'a Tensor,
    /// `[wi]` for a plain feed-forward, `[wi_0, wi_1]` (activated, linear) for a gated one.
    wi: Vec<&'a Tensor>,
    wo: &'a Tensor,
}

impl<'a> BlockWeights<'a> {
    fn of(b: &'a Block) -> candle_core::Result<Self> {
        let Qkv::Separate { q, k, v } = &b.qkv else {
            candle_core::bail!("int8 weights run on the CPU backend only")
        };
        Ok(Self {
            attn_norm: &b.attn_norm.weight,
            q: q.float_weight()?,
            k: k.float_weight()?,
            v: v.float_weight()?,
            o: b.o.float_weight()?,
            ff_norm: &b.ff_norm.weight,
            wi: match &b.ff {
                FeedForward::Plain { wi, .. } => vec![wi.float_weight()?],
                FeedForward::Gated { wi_0, wi_1, .. } => {
                    vec![wi_0.float_weight()?, wi_1.float_weight()?]
                }
            },
            wo: match &b.ff {
                FeedForward::Plain { wo, .. } | FeedForward::Gated { wo, .. } => {
                    wo.float_weight()?
                }
            },
        })
    }
}
