// Weights stored as f32: one element per word. The matmul's tiles and products are f32.
alias WWord = f32;
alias Tile = f32;

fn w_at(row: u32, col: u32) -> f32 {
    return w[row * p.wstride + col];
}

fn to_tile(v: f32) -> Tile {
    return v;
}
