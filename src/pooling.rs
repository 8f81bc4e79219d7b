//! INSTRUCTOR's mean pooling: the mean of each input's token states after its first
//! `instruction_len` positions (the instruction was attended to, but is not averaged).

use candle_core::{Result, Tensor};

/// The pooling weights `[inputs, tokens]` of a packed batch: row `i` is 1 over input `i`'s tokens
/// after its instruction, 0 elsewhere.
pub fn pooling_mask(lengths: &[usize], instruction_lens: &[usize]) -> Vec<f32> {
    let total: usize = lengths.iter().sum();
    let mut mask = vec![0f32; lengths.len() * total];
    let mut start = 0;
    for (i, (&len, &n)) in lengths.iter().zip(instruction_lens).enumerate() {
        if n < len {
            mask[i * total + start + n..i * total + start + len].fill(1.0);
        }
        start += len;
    }
    mask
}

/// `mask @ hidden` divided by each row's count, clamped below at 1e-9 as sentence-transformers
/// does (an input whose every token is instruction pools to zeros). `hidden` is `[tokens, d]`,
/// `mask` `[inputs, tokens]`; returns `[inputs, d]`.
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let summed = mask.matmul(hidden)?;
    let count = mask.sum_keepdim(1)?.clamp(1e-9, f64::INFINITY)?;
    summed.broadcast_div(&count)
}
