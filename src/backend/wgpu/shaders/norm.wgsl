// Row norms, always in f32 (T5's activations outgrow f16 in places, and the sum of squares over
// a row would overflow it first):
// MODE 0, T5's RMSNorm: y = x / sqrt(mean(x²) + eps) · weight (no mean subtraction, no bias);
// MODE 1, L2 normalise: y = x / max(‖x‖, 1e-12) (`weight` is bound but unused).

struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    _pad0: u32,
}

override MODE: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = wg.y * nwg.x + wg.x;
    // `row` is uniform across the workgroup, so every invocation takes the same branch.
    if (row >= p.rows) {
        return;
    }
    let base = row * p.d;
    var s = 0.0;
    for (var c = li; c < p.d; c += 64u) {
        let v = x[base + c];
        s += v * v;
    }
    partial[li] = s;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride /= 2u) {
        if (li < stride) {
            partial[li] += partial[li + stride];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    for (var c = li; c < p.d; c += 64u) {
        if (MODE == 0u) {
            y[base + c] = x[base + c] / sqrt(total / f32(p.d) + p.eps) * weight[c];
        } else {
            y[base + c] = x[base + c] / max(sqrt(total), 1e-12);
        }
    }
}
