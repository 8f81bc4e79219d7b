// T5 self-attention over a packed batch, one pass (online softmax, as in FlashAttention), so no
// [heads, l, l] score matrix is ever stored: ctx[t, h·DKV..] = softmax_j(q_t · k_j + bias_h(j - t)) · v_j
// with j running over t's own sequence only. No 1/sqrt(d) scaling (T5 folds it into the weights).
//
// A workgroup takes 64 consecutive queries of one sequence (a "tile", listed by the host) for one
// head; it walks that sequence's keys TK at a time, K and V tiles staged in workgroup memory.
// The relative-position bias is `rel_bias[bucket(j - t), h]`, the buckets precomputed on the host
// with the CPU path's own `relative_bucket` so the boundaries agree exactly.

const DKV: u32 = {{DKV}}u;
const TK: u32 = {{TK}}u;

struct Params {
    inner: u32,
    heads: u32,
    // Index of relative position 0 in `buckets`.
    rel_off: u32,
    tiles: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// [tokens, 3·inner]: q, k, v side by side (one fused projection).
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
// Per tile: (first token of the sequence, sequence length, first query of the tile, unused).
@group(0) @binding(2) var<storage, read> tiles: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> buckets: array<u32>;
// [buckets, heads]
@group(0) @binding(4) var<storage, read> rel_bias: array<f32>;
// [tokens, inner]
@group(0) @binding(5) var<storage, read_write> ctx: array<f32>;

var<workgroup> ks: array<f32, TK * DKV>;
var<workgroup> vs: array<f32, TK * DKV>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // Tiles over x and y (a dimension holds at most 65535 workgroups), heads over z.
    let t = wg.y * nwg.x + wg.x;
    if (t >= p.tiles) {
        return;
    }
    let tile = tiles[t];
    let start = tile.x;
    let len = tile.y;
    let h = wg.z;
    let qi = tile.z + li;
    let in_seq = qi < len;
    let row = 3u * p.inner;
    let hoff = h * DKV;

    var q: array<f32, DKV>;
    var acc: array<f32, DKV>;
    if (in_seq) {
        for (var d = 0u; d < DKV; d++) {
            q[d] = qkv[(start + qi) * row + hoff + d];
        }
    }
    var m = -3.0e38;
    var l = 0.0;
    for (var k0 = 0u; k0 < len; k0 += TK) {
        workgroupBarrier();
        for (var e = li; e < TK * DKV; e += 64u) {
            let j = k0 + e / DKV;
            if (j < len) {
                let at = (start + j) * row + hoff + e % DKV;
                ks[e] = qkv[at + p.inner];
                vs[e] = qkv[at + 2u * p.inner];
            }
        }
        workgroupBarrier();
        if (in_seq) {
            let nk = min(TK, len - k0);
            var s: array<f32, TK>;
            var tmax = m;
            for (var j = 0u; j < nk; j++) {
                var dot = 0.0;
                for (var d = 0u; d < DKV; d++) {
                    dot += q[d] * ks[j * DKV + d];
                }
                let b = buckets[k0 + j + p.rel_off - qi];
                s[j] = dot + rel_bias[b * p.heads + h];
                tmax = max(tmax, s[j]);
            }
            let scale = exp(m - tmax);
            l *= scale;
            for (var d = 0u; d < DKV; d++) {
                acc[d] *= scale;
            }
            for (var j = 0u; j < nk; j++) {
                let e = exp(s[j] - tmax);
                l += e;
                for (var d = 0u; d < DKV; d++) {
                    acc[d] += e * vs[j * DKV + d];
                }
            }
            m = tmax;
        }
    }
    if (in_seq) {
        for (var d = 0u; d < DKV; d++) {
            ctx[(start + qi) * p.inner + hoff + d] = acc[d] / l;
        }
    }
}
