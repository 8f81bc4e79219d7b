//! What follows pooling in `modules.json`: sentence-transformers' Dense and Normalize layers.

use crate::config::{DenseActivation, Head};
use crate::error::{candle_message, Error, Result};
use candle_core::{DType, Device, Tensor, D};
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
    pub fn load(head: &Head, device: &Device) -> Result<Self> {
        match head {
            Head::Normalize => Ok(Layer::Normalize),
            Head::Dense(cfg) => {
                let vb = crate::model::load_weights(&cfg.weights, DType::F32, device)?;
                Self::dense_from(vb, cfg)
                    .map_err(|e| Error::weights(&cfg.weights, candle_message(&e)))
            }
        }
    }

    /// [`Layer::load`] with the weights read from `src` (paths in `head` are `config`'s).
    pub fn load_from(
        head: &Head,
        src: &dyn crate::source::ModelSource,
        config: &crate::config::ModelConfig,
        device: &Device,
    ) -> Result<Self> {
        match head {
            Head::Normalize => Ok(Layer::Normalize),
            Head::Dense(cfg) => {
                let data = src.open(&config.relative(&cfg.weights))?;
                let vb =
                    crate::model::load_weights_from(data, &cfg.weights, DType::F32, device)?;
                Self::dense_from(vb, cfg)
                    .map_err(|e| Error::weights(&cfg.weights, candle_message(&e)))
            }
        }
    }

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
