// Weights stored as f16 (packed as in weights_f16.wgsl) and the matmul in f16 arithmetic: its
// operand tiles are f16 (half the workgroup memory) and it multiplies and sums in f16 within
// one 16-wide step of k. Needs `shader-f16`. What stays f32 (matmul.wgsl): the sum across
// steps, the bias, the activation and the residual add; everything outside the matmul too (the
// residual stream, RMSNorm, attention, pooling). T5's activations outgrow f16 in its residual
// stream, and a long f16 sum loses the small terms: neither ever happens in f16 here.
enable f16;

alias WWord = u32;
alias Tile = f16;

// Exact: the unpacked f32 values are f16 values. (naga has no `bitcast<vec2<f16>>(u32)`.)
fn w_at(row: u32, col: u32) -> f16 {
    let pair = vec2<f16>(unpack2x16float(w[row * p.wstride + col / 2u]));
    return select(pair.x, pair.y, (col & 1u) == 1u);
}

// Activations past f16's range saturate, as Hugging Face clamps T5's fp16 states, instead of
// becoming infinities.
fn to_tile(v: f32) -> Tile {
    return f16(clamp(v, -65504.0, 65504.0));
}
