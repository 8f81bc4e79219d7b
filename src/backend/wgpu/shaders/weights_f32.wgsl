// Weights stored as f32: one element per word.
alias WWord = f32;

fn w_at(row: u32, col: u32) -> f32 {
    return w[row * p.wstride + col];
}
