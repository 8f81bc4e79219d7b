//! Data-parallel training: what a run needs from the other ranks, and the two places it uses them.
//!
//! Every rank embeds its own slice of the same global batch. [`gather_with_grad`] puts the
//! slices together in rank order, this rank's rows live and the others' as constants, so the
//! loss over the global batch (all its in-batch negatives) is the same value on every rank while
//! its gradient reaches only this rank's forward pass. Those per-rank gradients add up to the
//! gradient of the one-process loss, so [`all_reduce_grads`] sums them (OpenCLIP's
//! gather-with-grad and sentence-transformers' gather-across-devices, without a backward through
//! the collective), and every rank takes the same AdamW step.

use candle_core::{Result, Tensor};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// The collectives of a run's ranks (MPI in the CLI). Each call is made by every rank, in the
/// same order; a rank that fails aborts the world rather than return, so none can wait forever.
pub trait Collectives {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Every rank's `local` (all of the same length), concatenated in rank order.
    fn all_gather(&self, local: &[f32]) -> Vec<f32>;
    /// Sums `values` over the ranks, in place; every rank gets the same bits.
    fn all_reduce_sum(&self, values: &mut [f32]);
    /// Sums counts over the ranks, in place.
    fn all_reduce_count(&self, values: &mut [u64]);
    /// Returns once every rank has called it.
    fn barrier(&self);
}

/// A run of one process: every collective is the identity.
pub struct Alone;

impl Collectives for Alone {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_gather(&self, local: &[f32]) -> Vec<f32> {
        local.to_vec()
    }
    fn all_reduce_sum(&self, _: &mut [f32]) {}
    fn all_reduce_count(&self, _: &mut [u64]) {}
    fn barrier(&self) {}
}

/// `ranks`, counting the time its collectives take (what [`crate::StepLog::sync_s`] reports).
pub(crate) struct Timed<'a> {
    ranks: &'a dyn Collectives,
    spent: Cell<Duration>,
}

impl<'a> Timed<'a> {
    pub fn new(ranks: &'a dyn Collectives) -> Self {
        Self {
            ranks,
            spent: Cell::default(),
        }
    }

    /// Seconds spent in collectives so far.
    pub fn seconds(&self) -> f64 {
        self.spent.get().as_secs_f64()
    }

    fn timed<T>(&self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.spent.set(self.spent.get() + start.elapsed());
        out
    }
}

impl Collectives for Timed<'_> {
    fn rank(&self) -> usize {
        self.ranks.rank()
    }
    fn size(&self) -> usize {
        self.ranks.size()
    }
    fn all_gather(&self, local: &[f32]) -> Vec<f32> {
        self.timed(|| self.ranks.all_gather(local))
    }
    fn all_reduce_sum(&self, values: &mut [f32]) {
        self.timed(|| self.ranks.all_reduce_sum(values))
    }
    fn all_reduce_count(&self, values: &mut [u64]) {
        self.timed(|| self.ranks.all_reduce_count(values))
    }
    fn barrier(&self) {
        self.ranks.barrier()
    }
}

/// The global batch's `[size · b, dim]` rows from this rank's `[b, dim]` `local` ones: rank r's
/// rows at `r·b..`, this rank's still in the autograd graph, the others' detached.
pub fn gather_with_grad(ranks: &dyn Collectives, local: &Tensor) -> Result<Tensor> {
    if ranks.size() == 1 {
        return Ok(local.clone());
    }
    let (b, dim) = local.dims2()?;
    let rows = local.to_dtype(candle_core::DType::F32)?.flatten_all()?;
    let all = ranks.all_gather(&rows.to_vec1::<f32>()?);
    let all =
        Tensor::from_vec(all, (ranks.size() * b, dim), local.device())?.to_dtype(local.dtype())?;
    let me = ranks.rank() * b;
    let mut parts = Vec::with_capacity(3);
    if me > 0 {
        parts.push(all.narrow(0, 0, me)?);
    }
    parts.push(local.clone());
    if me + b < all.dim(0)? {
        parts.push(all.narrow(0, me + b, all.dim(0)? - me - b)?);
    }
    Tensor::cat(&parts, 0)
}

/// Sums each gradient over the ranks (one buffer, one collective), in place.
pub fn all_reduce_grads(ranks: &dyn Collectives, grads: &mut [Tensor]) -> Result<()> {
    if ranks.size() == 1 {
        return Ok(());
    }
    let mut flat = Vec::with_capacity(grads.iter().map(Tensor::elem_count).sum());
    for g in grads.iter() {
        flat.extend(g.flatten_all()?.to_vec1::<f32>()?);
    }
    ranks.all_reduce_sum(&mut flat);
    let mut at = 0;
    for g in grads.iter_mut() {
        let n = g.elem_count();
        *g = Tensor::from_slice(&flat[at..at + n], g.shape(), g.device())?;
        at += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Two ranks simulated in one process: rank `me`'s view of the other's rows.
    struct Pair<'a> {
        me: usize,
        rows: [&'a [f32]; 2],
    }

    impl Collectives for Pair<'_> {
        fn rank(&self) -> usize {
            self.me
        }
        fn size(&self) -> usize {
            2
        }
        fn all_gather(&self, local: &[f32]) -> Vec<f32> {
            assert_eq!(local, self.rows[self.me]);
            self.rows.concat()
        }
        fn all_reduce_sum(&self, _: &mut [f32]) {
            unreachable!()
        }
        fn all_reduce_count(&self, _: &mut [u64]) {
            unreachable!()
        }
        fn barrier(&self) {}
    }

    /// The per-rank gradients of a loss over the gathered rows add up to the one-process one.
    #[test]
    fn gathered_gradients_sum_to_the_full_batch_gradient() {
        let dev = Device::Cpu;
        let w = Var::from_vec(vec![0.3f32, -1.2, 0.8, 0.5], (2, 2), &dev).unwrap();
        let x = [vec![1f32, 2., -1., 0.5], vec![0.2f32, -0.7, 3., 1.]];
        let loss = |rows: &Tensor| rows.sqr().unwrap().sum_all().unwrap().sqrt();
        let embed = |x: &[f32]| {
            Tensor::from_slice(x, (2, 2), &dev)
                .unwrap()
                .matmul(w.as_tensor())
                .unwrap()
        };
        let full = loss(&Tensor::cat(&[embed(&x[0]), embed(&x[1])], 0).unwrap()).unwrap();
        let grad = |l: &Tensor| -> Vec<f32> {
            let g = l
                .backward()
                .unwrap()
                .get(&w)
                .unwrap()
                .flatten_all()
                .unwrap();
            g.to_vec1().unwrap()
        };
        let want = grad(&full);
        let values: Vec<Vec<f32>> = (0..2)
            .map(|r| embed(&x[r]).flatten_all().unwrap().to_vec1().unwrap())
            .collect();
        let mut sum = vec![0f32; 4];
        for (me, xs) in x.iter().enumerate() {
            let ranks = Pair {
                me,
                rows: [&values[0], &values[1]],
            };
            let all = gather_with_grad(&ranks, &embed(xs)).unwrap();
            let l = loss(&all).unwrap();
            assert!(
                (l.to_scalar::<f32>().unwrap() - full.to_scalar::<f32>().unwrap()).abs() < 1e-6
            );
            let g = grad(&l);
            sum.iter_mut().zip(g).for_each(|(s, g)| *s += g);
        }
        for (s, w) in sum.iter().zip(&want) {
            assert!((s - w).abs() < 1e-6, "{sum:?} vs {want:?}");
        }
    }
}
