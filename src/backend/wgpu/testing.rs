//! Single kernels on host data, and a model built with chosen [`WgpuOptions`], for the tests in
//! `tests/wgpu.rs` (the `testing` feature; not an API): each kernel records exactly what the
//! forward pass records, on buffers made from the arguments.

use super::kernels::{Mode, Pass};
use super::model::{bucket_table, layout};
use super::{Gpu, Storage, WgpuEncoder, WgpuOptions};
use crate::config::{Activation, ModelConfig};
use crate::error::Result;
use crate::head::Head;
use crate::input::Tokens;
use crate::model::load_weights_from;
use crate::source::FileData;
use std::path::Path;

/// [`Gpu::new`], waiting.
pub fn gpu() -> Result<Gpu> {
    pollster::block_on(Gpu::new())
}

/// The model folder `dir` streamed to a new device with `opts` (the storage and binding split
/// that [`Instructor::load`](crate::Instructor::load) would choose by itself).
pub fn load(dir: &Path, opts: WgpuOptions) -> Result<WgpuEncoder> {
    let config = ModelConfig::from_folder(dir)?;
    let cpu = candle_core::Device::Cpu;
    let f32 = |file: &Path| {
        load_weights_from(
            FileData::Path(file.into()),
            file,
            candle_core::DType::F32,
            &cpu,
        )
    };
    let heads = Head::load_all(&config.heads, f32, false)?;
    let vb = f32(&config.weights)?;
    pollster::block_on(WgpuEncoder::stream(
        gpu()?,
        &vb,
        &config.t5,
        &config.weights,
        &heads,
        opts,
    ))
}

/// [`WgpuEncoder::embed`], waiting.
pub fn embed(model: &WgpuEncoder, tokens: &[Tokens], normalize: bool) -> Result<Vec<f32>> {
    pollster::block_on(model.embed(tokens, normalize))
}

impl Gpu {
    fn input(&self, data: &[f32]) -> wgpu::Buffer {
        self.buffer_with("test input", bytemuck::cast_slice(data))
    }

    fn read(&self, pass: Pass, out: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.run(pass, &mut None, &mut None, (out, len)))
    }
}

/// `y (mode)= act(x @ wᵀ + bias)` with x `[m, k]`, w `[n, k]`, y `[m, n]` starting as `y`;
/// `max_binding` splits w.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    gpu: &Gpu,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &[f32],
    (m, n, k): (usize, usize, usize),
    storage: Storage,
    act: Activation,
    mode: Mode,
    max_binding: Option<u64>,
) -> Result<Vec<f32>> {
    let weight = gpu.upload_weight("w", w, n, k, storage, max_binding)?;
    let (xb, yb) = (gpu.input(x), gpu.input(y));
    let bias = bias.map(|b| gpu.input(b));
    let mut pass = Pass::default();
    gpu.matmul(
        &mut pass,
        &xb,
        &weight,
        bias.as_ref(),
        &yb,
        m as u32,
        n as u32,
        act,
        mode,
    );
    gpu.read(pass, &yb, m * n)
}

/// RMSNorm of each row of x `[rows, d]` with `weight`, or L2 normalisation when `None`.
pub fn norm(gpu: &Gpu, x: &[f32], weight: Option<&[f32]>, d: usize, eps: f32) -> Result<Vec<f32>> {
    let (xb, yb) = (gpu.input(x), gpu.input(&vec![0.0; x.len()]));
    let wb = weight.map(|w| gpu.input(w));
    let mut pass = Pass::default();
    let rows = (x.len() / d) as u32;
    gpu.norm(&mut pass, &xb, wb.as_ref(), &yb, rows, d as u32, eps);
    gpu.read(pass, &yb, x.len())
}

/// Embedding rows `table[ids]` of a `[vocab, d]` table; `max_binding` splits the table.
pub fn gather(
    gpu: &Gpu,
    table: &[f32],
    d: usize,
    ids: &[u32],
    storage: Storage,
    max_binding: Option<u64>,
) -> Result<Vec<f32>> {
    let weight = gpu.upload_weight("table", table, table.len() / d, d, storage, max_binding)?;
    let idb = gpu.buffer_with("ids", bytemuck::cast_slice(ids));
    let out = gpu.input(&vec![0.0; ids.len() * d]);
    let mut pass = Pass::default();
    gpu.gather(&mut pass, &idb, &weight, &out, ids.len() as u32);
    gpu.read(pass, &out, ids.len() * d)
}

/// Attention of packed sequences of `lengths` over `qkv` `[tokens, 3·heads·d_kv]`, with
/// `rel_bias` `[buckets, heads]`; returns ctx `[tokens, heads·d_kv]`.
pub fn attention(
    gpu: &Gpu,
    qkv: &[f32],
    lengths: &[usize],
    (heads, d_kv): (usize, usize),
    rel_bias: &[f32],
    max_distance: usize,
) -> Result<Vec<f32>> {
    let tokens: usize = lengths.iter().sum();
    let max_len = lengths.iter().copied().max().unwrap_or(1) as u32;
    let (_, tiles) = layout(lengths.iter().map(|&l| (l, 0)));
    let buckets = bucket_table(max_len, rel_bias.len() / heads, max_distance);
    let qkvb = gpu.input(qkv);
    let tb = gpu.buffer_with("tiles", bytemuck::cast_slice(&tiles));
    let bb = gpu.buffer_with("buckets", bytemuck::cast_slice(&buckets));
    let rb = gpu.input(rel_bias);
    let out = gpu.input(&vec![0.0; tokens * heads * d_kv]);
    let mut pass = Pass::default();
    gpu.attention(
        &mut pass,
        &qkvb,
        (&tb, tiles.len() as u32 / 4),
        (&bb, max_len - 1),
        &rb,
        &out,
        heads as u32,
        d_kv as u32,
    );
    gpu.read(pass, &out, tokens * heads * d_kv)
}

/// Instruction-masked mean pooling of h `[tokens, d]` over packed inputs.
pub fn mean_pool(
    gpu: &Gpu,
    h: &[f32],
    d: usize,
    lengths: &[usize],
    instruction_lens: &[usize],
) -> Result<Vec<f32>> {
    let (seqs, _) = layout(
        lengths
            .iter()
            .copied()
            .zip(instruction_lens.iter().copied()),
    );
    let (hb, sb) = (
        gpu.input(h),
        gpu.buffer_with("seqs", bytemuck::cast_slice(&seqs)),
    );
    let out = gpu.input(&vec![0.0; lengths.len() * d]);
    let mut pass = Pass::default();
    gpu.pool(&mut pass, &hb, &sb, &out, lengths.len() as u32, d as u32);
    gpu.read(pass, &out, lengths.len() * d)
}
