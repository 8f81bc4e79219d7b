//! The kernels' host side: shader assembly, pipelines, weight upload (split across bindings),
//! and one recording function per kernel. A [`Pass`] collects dispatches and their parameters;
//! [`Gpu::run`](super::Gpu) encodes and submits them in one compute pass.

use super::{Gpu, Storage};
use crate::config::Activation;
use crate::error::{Error, Result};

const WEIGHTS_F32: &str = include_str!("shaders/weights_f32.wgsl");
const WEIGHTS_F16: &str = include_str!("shaders/weights_f16.wgsl");
const WEIGHTS_F16_MATH: &str = include_str!("shaders/weights_f16_math.wgsl");
const MATMUL: &str = include_str!("shaders/matmul.wgsl");
const GATHER: &str = include_str!("shaders/gather.wgsl");
const NORM: &str = include_str!("shaders/norm.wgsl");
const POOL: &str = include_str!("shaders/pool.wgsl");
const ATTENTION: &str = include_str!("shaders/attention.wgsl");

/// Bytes per dispatch in the parameter buffer: WebGPU's `minUniformBufferOffsetAlignment` may be
/// as large as 256.
const PARAM_SLOT: u64 = 256;

/// Most workgroups in one grid dimension (WebGPU's default limit).
const MAX_GROUPS: u32 = 65535;

/// What a matmul does with what `y` already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Store = 0,
    /// The residual add.
    Add = 1,
    /// The gated feed-forward's product.
    Mul = 2,
}

/// A `[rows, cols]` weight matrix on the GPU, split by rows into chunks that each fit one
/// storage binding (`maxStorageBufferBindingSize`, 128 MiB by default in WebGPU).
pub(crate) struct Weight {
    chunks: Vec<Chunk>,
    pub cols: u32,
    /// Words per row: `cols` for f32, `ceil(cols / 2)` for packed f16.
    stride: u32,
    storage: Storage,
}

struct Chunk {
    buffer: wgpu::Buffer,
    first_row: u32,
    rows: u32,
}

struct Step {
    pipeline: wgpu::ComputePipeline,
    buffers: Vec<wgpu::Buffer>,
    param: u64,
    groups: [u32; 3],
}

/// Dispatches recorded for one submission, with their parameters packed one slot each.
#[derive(Default)]
pub(crate) struct Pass {
    steps: Vec<Step>,
    params: Vec<u8>,
}

impl Pass {
    fn push(
        &mut self,
        pipeline: wgpu::ComputePipeline,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) {
        let param = self.params.len() as u64;
        self.params
            .extend(params.iter().flat_map(|p| p.to_le_bytes()));
        self.params.resize((param + PARAM_SLOT) as usize, 0);
        self.steps.push(Step {
            pipeline,
            buffers: buffers.iter().map(|b| (*b).clone()).collect(),
            param,
            groups,
        });
    }

    /// Writes the parameters into `params` (grown when too small) and encodes every step.
    pub(super) fn encode(
        self,
        gpu: &Gpu,
        params: &mut Option<wgpu::Buffer>,
        encoder: &mut wgpu::CommandEncoder,
    ) {
        if self.steps.is_empty() {
            return;
        }
        let bytes = self.params.len() as u64;
        if params.as_ref().is_none_or(|p| p.size() < bytes) {
            *params = Some(gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel parameters"),
                size: bytes.next_power_of_two(),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let params = params.as_ref().expect("allocated above");
        gpu.queue.write_buffer(params, 0, &self.params);
        let groups: Vec<wgpu::BindGroup> =
            self.steps
                .iter()
                .map(|s| {
                    let mut entries = vec![wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: params,
                            offset: s.param,
                            size: wgpu::BufferSize::new(PARAM_SLOT),
                        }),
                    }];
                    entries.extend(s.buffers.iter().enumerate().map(|(i, b)| {
                        wgpu::BindGroupEntry {
                            binding: i as u32 + 1,
                            resource: b.as_entire_binding(),
                        }
                    }));
                    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: None,
                        layout: &s.pipeline.get_bind_group_layout(0),
                        entries: &entries,
                    })
                })
                .collect();
        let mut cpass = encoder.begin_compute_pass(&Default::default());
        for (s, g) in self.steps.iter().zip(&groups) {
            cpass.set_pipeline(&s.pipeline);
            cpass.set_bind_group(0, g, &[]);
            cpass.dispatch_workgroups(s.groups[0], s.groups[1], s.groups[2]);
        }
    }
}

/// A grid of at least `n` workgroups within the per-dimension limit; kernels recover the index
/// as `wg.y * num_workgroups.x + wg.x` and skip the excess.
fn grid(n: u32) -> [u32; 3] {
    if n <= MAX_GROUPS {
        [n.max(1), 1, 1]
    } else {
        [MAX_GROUPS, n.div_ceil(MAX_GROUPS), 1]
    }
}

impl Gpu {
    /// The pipeline of `source` with `constants` (overrides), compiled once per key.
    fn pipeline(
        &self,
        key: &str,
        source: impl FnOnce() -> String,
        constants: &[(&str, f64)],
    ) -> wgpu::ComputePipeline {
        let key = format!("{key}{constants:?}");
        let mut cache = self.pipelines.lock().unwrap();
        cache
            .entry(key.clone())
            .or_insert_with(|| {
                let module = self
                    .device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(&key),
                        source: wgpu::ShaderSource::Wgsl(source().into()),
                    });
                self.device
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(&key),
                        layout: None,
                        module: &module,
                        entry_point: Some("main"),
                        compilation_options: wgpu::PipelineCompilationOptions {
                            constants,
                            // Every kernel writes its workgroup memory before reading it.
                            zero_initialize_workgroup_memory: false,
                        },
                        cache: None,
                    })
            })
            .clone()
    }

    /// A kernel that reads weights, with the weight accessor for `storage` prepended.
    fn weight_pipeline(
        &self,
        name: &str,
        body: &str,
        storage: Storage,
        constants: &[(&str, f64)],
    ) -> wgpu::ComputePipeline {
        let access = match storage {
            Storage::F32 => WEIGHTS_F32,
            Storage::F16 => WEIGHTS_F16,
            Storage::F16Arithmetic => WEIGHTS_F16_MATH,
        };
        self.pipeline(
            &format!("{name}-{storage:?}"),
            || format!("{access}\n{body}"),
            constants,
        )
    }

    /// Uploads a row-major `[rows, cols]` f32 matrix as `storage`, split by rows so that no chunk
    /// exceeds `max_binding` bytes (the device's binding limit when `None`).
    pub(crate) fn upload_weight(
        &self,
        name: &str,
        data: &[f32],
        rows: usize,
        cols: usize,
        storage: Storage,
        max_binding: Option<u64>,
    ) -> Result<Weight> {
        assert_eq!(data.len(), rows * cols, "{name}: shape");
        let stride = match storage {
            Storage::F32 => cols,
            Storage::F16 | Storage::F16Arithmetic => cols.div_ceil(2),
        };
        let row_bytes = stride as u64 * 4;
        let limit = max_binding
            .unwrap_or(u64::MAX)
            .min(self.max_binding_bytes());
        if row_bytes > limit {
            return Err(Error::device(
                self.name(),
                format!(
                    "{name}: one row ({row_bytes} bytes) exceeds the GPU's storage binding limit \
                     ({limit} bytes)"
                ),
            ));
        }
        let rows_per_chunk = ((limit / row_bytes) as usize).max(1);
        let chunks = (0..rows)
            .step_by(rows_per_chunk)
            .map(|first| {
                let n = rows_per_chunk.min(rows - first);
                let part = &data[first * cols..(first + n) * cols];
                let buffer = match storage {
                    Storage::F32 => self.buffer_with(name, bytemuck::cast_slice(part)),
                    Storage::F16 | Storage::F16Arithmetic => {
                        let packed: Vec<u32> = part
                            .chunks(cols)
                            .flat_map(|row| {
                                row.chunks(2).map(|pair| {
                                    let lo = half::f16::from_f32(pair[0]).to_bits() as u32;
                                    let hi = pair
                                        .get(1)
                                        .map_or(0, |&v| half::f16::from_f32(v).to_bits() as u32);
                                    lo | (hi << 16)
                                })
                            })
                            .collect();
                        self.buffer_with(name, bytemuck::cast_slice(&packed))
                    }
                };
                Chunk {
                    buffer,
                    first_row: first as u32,
                    rows: n as u32,
                }
            })
            .collect();
        Ok(Weight {
            chunks,
            cols: cols as u32,
            stride: stride as u32,
            storage,
        })
    }

    /// `y[:m, col..] (mode)= act(x[:m] @ wᵀ + bias)`: x `[m, w.cols]`, y with row stride `ldy`;
    /// one dispatch per chunk of `w`, each writing its own columns.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn matmul(
        &self,
        pass: &mut Pass,
        x: &wgpu::Buffer,
        w: &Weight,
        bias: Option<&wgpu::Buffer>,
        y: &wgpu::Buffer,
        m: u32,
        ldy: u32,
        act: Activation,
        mode: Mode,
    ) {
        let pipeline = self.weight_pipeline(
            "matmul",
            MATMUL,
            w.storage,
            &[
                ("ACT", act as u32 as f64),
                ("MODE", mode as u32 as f64),
                ("HAS_BIAS", bias.is_some() as u32 as f64),
            ],
        );
        let bias = bias.unwrap_or(&self.dummy);
        for c in &w.chunks {
            pass.push(
                pipeline.clone(),
                &[m, c.rows, w.cols, w.stride, ldy, c.first_row],
                &[x, &c.buffer, bias, y],
                [c.rows.div_ceil(64), m.div_ceil(64), 1],
            );
        }
    }

    /// `out[t] = table[ids[t]]` for `tokens` ids.
    pub(crate) fn gather(
        &self,
        pass: &mut Pass,
        ids: &wgpu::Buffer,
        table: &Weight,
        out: &wgpu::Buffer,
        tokens: u32,
    ) {
        // A lookup computes nothing: it reads f16 weights as f32 whatever the matmuls do.
        let stored = match table.storage {
            Storage::F16Arithmetic => Storage::F16,
            other => other,
        };
        let pipeline = self.weight_pipeline("gather", GATHER, stored, &[]);
        for c in &table.chunks {
            pass.push(
                pipeline.clone(),
                &[tokens, table.cols, table.stride, c.first_row, c.rows],
                &[ids, &c.buffer, out],
                grid(tokens),
            );
        }
    }

    /// Per row of `x` `[rows, d]`: RMSNorm with `weight` when given, else L2 normalisation.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn norm(
        &self,
        pass: &mut Pass,
        x: &wgpu::Buffer,
        weight: Option<&wgpu::Buffer>,
        y: &wgpu::Buffer,
        rows: u32,
        d: u32,
        eps: f32,
    ) {
        let mode = if weight.is_some() { 0.0 } else { 1.0 };
        let pipeline = self.pipeline("norm", || NORM.to_string(), &[("MODE", mode)]);
        pass.push(
            pipeline,
            &[rows, d, eps.to_bits()],
            &[x, weight.unwrap_or(&self.dummy), y],
            grid(rows),
        );
    }

    /// Mean pooling of `h` `[tokens, d]` over each input's `seqs` entry (first token, length,
    /// instruction length, 0) into `out` `[inputs, d]`.
    pub(crate) fn pool(
        &self,
        pass: &mut Pass,
        h: &wgpu::Buffer,
        seqs: &wgpu::Buffer,
        out: &wgpu::Buffer,
        inputs: u32,
        d: u32,
    ) {
        let pipeline = self.pipeline("pool", || POOL.to_string(), &[]);
        pass.push(
            pipeline,
            &[inputs, d],
            &[h, seqs, out],
            [d.div_ceil(64), inputs, 1],
        );
    }

    /// Attention of the fused `qkv` `[tokens, 3·heads·d_kv]` into `ctx` `[tokens, heads·d_kv]`
    /// over `tiles` (first token, length, first query, 0); `buckets[rel_off + j - i]` is the
    /// bucket of key `j` seen from query `i`, `rel_bias` `[buckets, heads]`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attention(
        &self,
        pass: &mut Pass,
        qkv: &wgpu::Buffer,
        tiles: (&wgpu::Buffer, u32),
        buckets: (&wgpu::Buffer, u32),
        rel_bias: &wgpu::Buffer,
        ctx: &wgpu::Buffer,
        heads: u32,
        d_kv: u32,
    ) {
        // Keys per staged tile: K and V tiles together stay within 16 KiB of workgroup memory
        // (WebGPU's default limit), and at most 64 scores are kept per invocation.
        let tk = (2048 / d_kv).clamp(1, 64);
        let pipeline = self.pipeline(
            &format!("attention-{d_kv}"),
            || {
                ATTENTION
                    .replace("{{DKV}}", &d_kv.to_string())
                    .replace("{{TK}}", &tk.to_string())
            },
            &[],
        );
        let [x, y, _] = grid(tiles.1);
        pass.push(
            pipeline,
            &[heads * d_kv, heads, buckets.1, tiles.1],
            &[qkv, tiles.0, buckets.0, rel_bias, ctx],
            [x, y, heads],
        );
    }
}
