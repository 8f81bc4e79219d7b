//! What follows pooling in `modules.json`: sentence-transformers' Dense and Normalize layers.

use crate::config::{Activation, DenseConfig, HeadConfig};
use crate::error::{candle_message, Error, Result};
use crate::model::t5::Linear;
use candle_core::{Tensor, D};
use candle_nn::VarBuilder;
use std::path::Path;

/// A loaded head layer (its description is [`HeadConfig`]).
#[derive(Debug, Clone)]
pub enum Head {
    Dense {
        linear: Linear,
        activation: Activation,
    },
    Normalize,
}

impl Head {
    /// The layers `heads` describes, each Dense layer's weights file opened by `open` (in f32),
    /// its weight in int8 when `int8`.
    pub(crate) fn load_all(
        heads: &[HeadConfig],
        open: impl Fn(&Path) -> Result<VarBuilder<'static>>,
        int8: bool,
    ) -> Result<Vec<Self>> {
        heads
            .iter()
            .map(|h| match h {
                HeadConfig::Normalize => Ok(Head::Normalize),
                HeadConfig::Dense(cfg) => Head::dense_from(open(&cfg.weights)?, cfg, int8)
                    .map_err(|e| Error::weights(&cfg.weights, candle_message(&e))),
            })
            .collect()
    }

    /// Builds a Dense layer from a VarBuilder whose root holds `linear.weight` (and `linear.bias`),
    /// its weight in int8 when `int8`.
    pub fn dense_from(vb: VarBuilder, cfg: &DenseConfig, int8: bool) -> candle_core::Result<Self> {
        let linear = Linear::load(
            vb.pp("linear"),
            cfg.in_features,
            cfg.out_features,
            cfg.bias,
            int8,
        )?;
        Ok(Head::Dense {
            linear,
            activation: cfg.activation,
        })
    }

    /// Applies the layer to `[batch, dim]` f32 embeddings.
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Head::Normalize => l2_normalize(xs),
            Head::Dense { linear, activation } => activation.forward(&linear.forward(xs)?),
        }
    }
}

/// `torch.nn.functional.normalize(x, p=2, dim=1)`: `x / max(‖x‖, 1e-12)`.
pub fn l2_normalize(xs: &Tensor) -> candle_core::Result<Tensor> {
    let norm = xs
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::INFINITY)?;
    xs.broadcast_div(&norm)
}
