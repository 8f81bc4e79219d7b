// INSTRUCTOR's mean pooling over a packed batch: out[i, :] = mean of input i's token states after
// its first `instruction_len` tokens, divided by max(count, 1e-9) as sentence-transformers does
// (an input that is all instruction pools to zeros).

struct Params {
    inputs: u32,
    d: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> h: array<f32>;
// Per input: (first token, length, instruction length, unused).
@group(0) @binding(2) var<storage, read> seqs: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let i = gid.y;
    if (c >= p.d || i >= p.inputs) {
        return;
    }
    let s = seqs[i];
    let first = s.x + min(s.z, s.y);
    let last = s.x + s.y;
    var sum = 0.0;
    for (var t = first; t < last; t++) {
        sum += h[t * p.d + c];
    }
    out[i * p.d + c] = sum / max(f32(last - first), 1e-9);
}
