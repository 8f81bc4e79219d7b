//! The T5 encoder INSTRUCTOR is built on, and how its weights are read.

pub mod int8;
pub mod t5;
mod weights;

pub use t5::{Dropout, T5Encoder};
pub(crate) use weights::load_weights_from;

use candle_core::DType;

/// Precision the encoder computes in. Norms, softmax and the residual stream always stay in f32
/// (T5 overflows in f16 otherwise); the matrix products use this type.
///
/// `Int8` quantizes the linear layers (the projections, the feed-forward and the Dense head) per
/// output channel and each token's activations as it comes, and multiplies in integers on the
/// CPU ([`int8`]); the embedding table is rounded through int8 too. A folder written by
/// `instructor quantize` is int8 already and loads as `Int8` on the CPU whatever is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dtype {
    #[default]
    F32,
    F16,
    Bf16,
    Int8,
}

impl Dtype {
    /// The dtype weights are read in: f32 for `Int8`, which quantizes them from f32.
    pub fn to_candle(self) -> DType {
        match self {
            Dtype::Int8 => DType::F32,
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::Bf16 => DType::BF16,
        }
    }
}

impl std::fmt::Display for Dtype {
    /// The spelling [`FromStr`](std::str::FromStr) takes: `f32`, `f16`, `bf16`, `int8`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
            Dtype::Int8 => "int8",
        })
    }
}

impl std::str::FromStr for Dtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Dtype::F32),
            "f16" => Ok(Dtype::F16),
            "bf16" => Ok(Dtype::Bf16),
            "int8" => Ok(Dtype::Int8),
            _ => Err(format!(
                "unknown dtype `{s}` (expected f32, f16, bf16 or int8)"
            )),
        }
    }
}
