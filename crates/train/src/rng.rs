//! The training run's only source of randomness: SplitMix64 streams derived from `--seed` and a
//! position (epoch, batch). Deriving instead of carrying one generator along means `--resume`
//! needs no RNG state beyond the step it restarts at, and candle's CPU generator, which cannot be
//! seeded, is never used.

use candle_core::{DType, Result, Tensor};
use std::cell::Cell;

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and the same on every platform and version,
/// which `rand`'s `StdRng` does not promise.
#[derive(Debug, Clone, Copy)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator for one position of a run, independent of the others.
    pub fn derive(seed: u64, stream: u64, index: u64) -> Self {
        let mut g = Self(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let a = g.next_u64();
        Self(a ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2⁻³² for any `n` used here).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            xs.swap(i, self.below(i + 1));
        }
    }
}

/// Streams of [`SplitMix64::derive`], one per use.
pub(crate) const STREAM_ORDER: u64 = 1;
pub(crate) const STREAM_DROPOUT: u64 = 2;

/// Inverted dropout as torch applies it (`x * (u ≥ p) / (1 - p)`), with masks drawn from a
/// [`SplitMix64`] on the CPU. On a GPU the masks come from the device's generator, seeded once
/// from the same stream (copying masks from the host would cost more than the step).
pub struct SeededDropout {
    p: f32,
    rng: Cell<SplitMix64>,
}

impl SeededDropout {
    pub fn new(p: f32, rng: SplitMix64, device: &candle_core::Device) -> Result<Self> {
        if !device.is_cpu() {
            let mut seed = rng;
            device.set_seed(seed.next_u64())?;
        }
        Ok(Self {
            p,
            rng: Cell::new(rng),
        })
    }

    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        if self.p <= 0.0 {
            return Ok(x.clone());
        }
        let scale = 1.0 / (1.0 - self.p);
        let mask = if x.device().is_cpu() {
            let mut rng = self.rng.get();
            let keep: Vec<f32> = (0..x.elem_count())
                .map(|_| if rng.next_f32() >= self.p { scale } else { 0.0 })
                .collect();
            self.rng.set(rng);
            Tensor::from_vec(keep, x.shape(), x.device())?
        } else {
            (Tensor::rand(0f32, 1f32, x.shape(), x.device())?
                .ge(f64::from(self.p))?
                .to_dtype(DType::F32)?
                * f64::from(scale))?
        };
        x.mul(&mask.to_dtype(x.dtype())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| SplitMix64::derive(42, 1, 7).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            SplitMix64::derive(42, 1, 7).next_u64(),
            SplitMix64::derive(42, 1, 8).next_u64()
        );
        assert_ne!(
            SplitMix64::derive(42, 1, 7).next_u64(),
            SplitMix64::derive(42, 2, 7).next_u64()
        );
    }

    #[test]
    fn dropout_keeps_about_1_minus_p_and_rescales() {
        let x = Tensor::ones(10_000, DType::F32, &candle_core::Device::Cpu).unwrap();
        let d = SeededDropout::new(0.1, SplitMix64::new(3), &candle_core::Device::Cpu).unwrap();
        let y: Vec<f32> = d.apply(&x).unwrap().to_vec1().unwrap();
        let kept = y.iter().filter(|&&v| v > 0.0).count();
        assert!((8_800..9_200).contains(&kept), "kept {kept}");
        assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
    }
}
