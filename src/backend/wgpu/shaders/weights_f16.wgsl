// Weights stored as f16, two halves packed per u32 (element `col` of a row is half `col % 2` of
// word `col / 2`). `unpack2x16float` is core WGSL, so this works on adapters without
// `shader-f16` (SwiftShader); the arithmetic stays f32.
alias WWord = u32;
alias Tile = f32;

fn w_at(row: u32, col: u32) -> f32 {
    let pair = unpack2x16float(w[row * p.wstride + col / 2u]);
    return select(pair.x, pair.y, (col & 1u) == 1u);
}

fn to_tile(v: f32) -> Tile {
    return v;
}
