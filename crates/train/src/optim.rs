//! The optimizer side of Hugging Face's Trainer defaults: AdamW, the linear warmup/decay schedule
//! and gradient-norm clipping.
//!
//! Why not `candle_nn::AdamW`: its moment estimates are private, so they could not be saved for
//! `--resume` (and its weight decay defaults to 0.01 where the Trainer's is 0).

use candle_core::{DType, Device, Tensor, Var};
use instructor::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// torch.optim.AdamW's hyper-parameters, the Trainer's defaults.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// AdamW as `torch.optim.AdamW` computes it (decoupled decay, bias-corrected moments).
pub struct AdamW {
    cfg: AdamWConfig,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Updates done.
    t: usize,
}

impl AdamW {
    /// Zero moments for `vars`, in the order later calls pass them.
    pub fn new<'a>(vars: impl IntoIterator<Item = &'a Var>, cfg: AdamWConfig) -> Result<Self> {
        let m = vars
            .into_iter()
            .map(|v| v.as_tensor().zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            cfg,
            v: m.clone(),
            m,
            t: 0,
        })
    }

    /// One update of `vars` with `grads` (same order as at creation) at learning rate `lr`.
    pub fn step(&mut self, vars: &[&Var], grads: &[Tensor], lr: f64) -> Result<()> {
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.cfg;
        self.t += 1;
        let bc1 = 1.0 - beta1.powi(self.t as i32);
        let bc2 = 1.0 - beta2.powi(self.t as i32);
        for (i, (var, g)) in vars.iter().zip(grads).enumerate() {
            let m = ((&self.m[i] * beta1)? + (g * (1.0 - beta1))?)?;
            let v = ((&self.v[i] * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let denom = ((v.sqrt()? / bc2.sqrt())? + eps)?;
            let p = (var.as_tensor() * (1.0 - lr * weight_decay))?;
            var.set(&(p - (m.div(&denom)? * (lr / bc1))?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// Saves the moments (`m.<name>`, `v.<name>`) and the update count to a safetensors file.
    pub fn save(&self, names: &[String], path: &Path) -> Result<()> {
        let mut tensors = Vec::with_capacity(2 * names.len());
        for (i, name) in names.iter().enumerate() {
            tensors.push((format!("m.{name}"), self.m[i].to_device(&Device::Cpu)?));
            tensors.push((format!("v.{name}"), self.v[i].to_device(&Device::Cpu)?));
        }
        let meta = HashMap::from([("t".to_string(), self.t.to_string())]);
        safetensors::serialize_to_file(tensors, Some(meta), path)
            .map_err(|e| Error::weights(path, e))
    }

    /// Restores what [`save`](Self::save) wrote, for the same `names`.
    pub fn load(names: &[String], path: &Path, cfg: AdamWConfig, device: &Device) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let t = safetensors::SafeTensors::read_metadata(&bytes)
            .ok()
            .and_then(|(_, meta)| meta.metadata().as_ref()?.get("t")?.parse().ok())
            .ok_or_else(|| Error::weights(path, "no update count `t` in the metadata"))?;
        let mut tensors = candle_core::safetensors::load_buffer(&bytes, device)?;
        let mut take = |key: String| {
            tensors
                .remove(&key)
                .filter(|t| t.dtype() == DType::F32)
                .ok_or_else(|| Error::weights(path, format!("missing f32 tensor `{key}`")))
        };
        let mut m = Vec::with_capacity(names.len());
        let mut v = Vec::with_capacity(names.len());
        for name in names {
            m.push(take(format!("m.{name}"))?);
            v.push(take(format!("v.{name}"))?);
        }
        Ok(Self { cfg, m, v, t })
    }
}

/// The Trainer's `get_linear_schedule_with_warmup`: from 0 up to `peak` over `warmup` updates,
/// then down to 0 at `total`. `lr(k)` is the rate of update `k` (0-based), so the first update of
/// a run with warmup uses 0, as in the Trainer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearSchedule {
    pub peak: f64,
    pub warmup: usize,
    pub total: usize,
}

impl LinearSchedule {
    /// `warmup = ceil(ratio × total)`, as `TrainingArguments.get_warmup_steps` computes it.
    pub fn with_ratio(peak: f64, ratio: f64, total: usize) -> Self {
        Self {
            peak,
            warmup: (ratio * total as f64).ceil() as usize,
            total,
        }
    }

    pub fn lr(&self, k: usize) -> f64 {
        if k < self.warmup {
            self.peak * k as f64 / self.warmup.max(1) as f64
        } else {
            let left = self.total.saturating_sub(k) as f64;
            self.peak * (left / self.total.saturating_sub(self.warmup).max(1) as f64).max(0.0)
        }
    }
}

/// `torch.nn.utils.clip_grad_norm_`: scales `grads` by `max_norm / (norm + 1e-6)` when that is
/// below 1. Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let mut sq = Tensor::zeros((), DType::F32, grads[0].device())?;
    for g in grads.iter() {
        sq = (sq + g.sqr()?.sum_all()?)?;
    }
    let norm = f64::from(sq.to_scalar::<f32>()?).sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            *g = (&*g * coef)?;
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_the_trainer() {
        // get_linear_schedule_with_warmup(opt, 3, 10) with lr 1.0: the lambda at steps 0..=10.
        let s = LinearSchedule::with_ratio(1.0, 0.25, 10);
        assert_eq!(s.warmup, 3);
        let got: Vec<f64> = (0..=10).map(|k| s.lr(k)).collect();
        let want = [
            0.0,
            1.0 / 3.0,
            2.0 / 3.0,
            1.0,
            6.0 / 7.0,
            5.0 / 7.0,
            4.0 / 7.0,
            3.0 / 7.0,
            2.0 / 7.0,
            1.0 / 7.0,
            0.0,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn clipping_scales_to_max_norm() {
        let dev = Device::Cpu;
        let mut g = vec![
            Tensor::new(&[3f32, 0.0], &dev).unwrap(),
            Tensor::new(&[4f32], &dev).unwrap(),
        ];
        let norm = clip_grad_norm(&mut g, 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-6);
        let a: Vec<f32> = g[0].to_vec1().unwrap();
        assert!((a[0] - 0.6).abs() < 1e-6, "{a:?}");
        let mut small = vec![Tensor::new(&[0.5f32], &dev).unwrap()];
        clip_grad_norm(&mut small, 1.0).unwrap();
        assert_eq!(small[0].to_vec1::<f32>().unwrap(), vec![0.5]);
    }

    #[test]
    fn adamw_first_step_moves_by_lr_times_sign() {
        // With zero moments, update 1 is p - lr * g / (|g| + eps): a step of lr against g.
        let var = Var::new(&[1f32, -2.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new([&var], AdamWConfig::default()).unwrap();
        let g = Tensor::new(&[0.3f32, -1e-3], &Device::Cpu).unwrap();
        opt.step(&[&var], &[g], 0.1).unwrap();
        let p: Vec<f32> = var.as_tensor().to_vec1().unwrap();
        assert!(
            (p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-5,
            "{p:?}"
        );
    }
}
