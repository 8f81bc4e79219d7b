// Embedding lookup: out[t, :] = table[ids[t], :] for the ids inside this row-chunk of the table
// ([v0, v0 + vn); a table split across bindings runs once per chunk).

struct Params {
    tokens: u32,
    d: u32,
    wstride: u32,
    v0: u32,
    vn: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<WWord>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// One workgroup per (64 columns, token); the token index is spread over x and y because a
// dimension holds at most 65535 workgroups.
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let t = wg.y * nwg.x + wg.x;
    if (t >= p.tokens) {
        return;
    }
    let id = ids[t];
    if (id < p.v0 || id >= p.v0 + p.vn) {
        return;
    }
    for (var c = li; c < p.d; c += 64u) {
        out[t * p.d + c] = w_at(id - p.v0, c);
    }
}
