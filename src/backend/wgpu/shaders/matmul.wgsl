// y[m, col_off + n] (op)= act(x[m, :] · w[n, :] + bias[col_off + n]): x @ Wᵀ for every projection,
// the feed-forward and the Dense head. x is [m, k] f32; w is one row-chunk of a weight (see
// `w_at`); y has row stride `ldy` so that a weight split across bindings writes its own columns.
//
// Tiling: a 16×16 workgroup computes a 64×64 output tile, 4×4 per invocation, stepping through k
// 16 at a time with both operand tiles in workgroup memory (2 × 4 KiB in f32). The tiles and the
// products of one step are `Tile` (f32, or f16 with weights_f16_math.wgsl); each step's sums are
// added to f32 accumulators.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    wstride: u32,
    ldy: u32,
    col_off: u32,
    _pad0: u32,
    _pad1: u32,
}

// 0 identity, 1 relu, 2 gelu (tanh approximation), 3 tanh, 4 gelu (erf), 5 sigmoid, 6 silu.
override ACT: u32 = 0u;
// 0: y = v; 1: y += v (residual add); 2: y *= v (gate of the gated feed-forward).
override MODE: u32 = 0u;
override HAS_BIAS: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<WWord>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> xs: array<Tile, 1024>; // [BK][BM]
var<workgroup> ws: array<Tile, 1024>; // [BK][BN]

// Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): WGSL has no erf.
fn erf(v: f32) -> f32 {
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(v) * (1.0 - poly * exp(-a * a));
}

// tanh of a clamped argument: some backends compute tanh through exp and return NaN for large
// arguments; |v| ≥ 15 is ±1 in f32 anyway.
fn safe_tanh(v: f32) -> f32 {
    return tanh(clamp(v, -15.0, 15.0));
}

fn act(v: f32) -> f32 {
    switch ACT {
        case 1u: { return max(v, 0.0); }
        case 2u: { return 0.5 * v * (1.0 + safe_tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))); }
        case 3u: { return safe_tanh(v); }
        case 4u: { return 0.5 * v * (1.0 + erf(v * 0.7071067811865476)); }
        case 5u: { return 1.0 / (1.0 + exp(-v)); }
        case 6u: { return v / (1.0 + exp(-v)); }
        default: { return v; }
    }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    var acc: array<f32, 16>;
    // One step's sums of products, in `Tile` precision.
    var part: array<Tile, 16>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        for (var i = 0u; i < 4u; i++) {
            let e = li + 256u * i;
            let r = e / BK;
            let kk = e % BK;
            let gk = k0 + kk;
            var xv = Tile(0.0);
            if (row0 + r < p.m && gk < p.k) {
                xv = to_tile(x[(row0 + r) * p.k + gk]);
            }
            xs[kk * BM + r] = xv;
            var wv = Tile(0.0);
            if (col0 + r < p.n && gk < p.k) {
                wv = Tile(w_at(col0 + r, gk));
            }
            ws[kk * BN + r] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var a: array<Tile, 4>;
            var b: array<Tile, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = xs[kk * BM + lid.y * 4u + i];
                b[i] = ws[kk * BN + lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    part[i * 4u + j] += a[i] * b[j];
                }
            }
        }
        // Reset explicitly: not every shader compiler re-zeroes a `var` declared in a loop.
        for (var e = 0u; e < 16u; e++) {
            acc[e] += f32(part[e]);
            part[e] = Tile(0.0);
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + lid.x * 4u + j;
            if (r < p.m && c < p.n) {
                var v = acc[i * 4u + j];
                if (HAS_BIAS) {
                    v += bias[p.col_off + c];
                }
                v = act(v);
                let idx = r * p.ldy + p.col_off + c;
                if (MODE == 1u) {
                    v += y[idx];
                } else if (MODE == 2u) {
                    v *= y[idx];
                }
                y[idx] = v;
            }
        }
    }
}
