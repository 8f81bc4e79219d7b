//! INSTRUCTOR's mean pooling: the mean of the token states whose attention mask is 1, after
//! zeroing the mask over the instruction's tokens (they were attended to, but are not averaged).

use candle_core::{Result, Tensor};

/// The pooling weights `[batch, seq]`: 1 for a real token after the instruction, else 0.
pub fn pooling_mask(lengths: &[usize], instruction_lens: &[usize], seq: usize) -> Vec<f32> {
    lengths
        .iter()
        .zip(instruction_lens)
        .flat_map(|(&len, &n)| (0..seq).map(move |i| if i >= n && i < len { 1.0 } else { 0.0 }))
        .collect()
}

/// Mean of `hidden` `[batch, seq, d]` weighted by `mask` `[batch, seq]`, divided by
/// `max(count, 1e-9)` as sentence-transformers does. Returns `[batch, d]`.
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let summed = mask.unsqueeze(1)?.matmul(hidden)?.squeeze(1)?;
    let count = mask.sum_keepdim(1)?.clamp(1e-9, f64::INFINITY)?;
    summed.broadcast_div(&count)
}
