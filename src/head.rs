//! What follows pooling in `modules.json`: sentence-transformers' Dense and Normalize layers.

use crate::config::DenseActivation;
use candle_core::{Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

/// A loaded head layer.
#[derive(Debug, Clone)]
pub enum Layer {
    Dense {
        linear: Linear,
        activation: DenseActivation,
    },
    Normalize,
}

impl Layer {
    /// Builds a Dense layer from a VarBuilder whose root holds `linear.weight` (and `linear.bias`).
    pub fn dense_from(
        vb: VarBuilder,
        cfg: &crate::config::DenseConfig,
    ) -> candle_core::Result<Self> {
        let vb = vb.pp("linear");
        let weight = vb.get((cfg.out_features, cfg.in_features), "weight")?;
        let bias = if cfg.bias {
            Some(vb.get(cfg.out_features, "bias")?)
        } else {
            None
        };
        Ok(Layer::Dense {
            linear: Linear::new(weight, bias),
            activation: cfg.activation,
        })
    }

    /// Applies the layer to `[batch, dim]` f32 embeddings.
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Layer::Normalize => l2_normalize(xs),
            Layer::Dense { linear, activation } => {
                let ys = linear.forward(xs)?;
                match activation {
                    DenseActivation::Identity => Ok(ys),
                    DenseActivation::Tanh => ys.tanh(),
                    DenseActivation::Relu => ys.relu(),
                    DenseActivation::Gelu => ys.gelu_erf(),
                    DenseActivation::Sigmoid => candle_nn::ops::sigmoid(&ys),
                }
            }
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
