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

/// The collectives of a run's ranks (in the CLI: MPI, or NCCL between GPUs). Each call is made
/// by every rank, in the same order; a rank that fails aborts the world rather than return, so
/// none can wait forever. Tensors are f32 and contiguous, on the run's device.
pub trait Collectives {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Every rank's `local` (all of the same shape), concatenated along the first dimension in
    /// rank order.
    fn all_gather(&self, local: &Tensor) -> Result<Tensor>;
    /// The sum of each of `values` over the ranks, in one collective; every rank gets the same
    /// bits.
    fn all_reduce_sum(&self, values: &[Tensor]) -> Result<Vec<Tensor>>;
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
    fn all_gather(&self, local: &Tensor) -> Result<Tensor> {
        Ok(local.clone())
    }
    fn all_reduce_sum(&self, values: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(values.to_vec())
    }
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
    fn all_gather(&self, local: &Tensor) -> Result<Tensor> {
        self.timed(|| self.ranks.all_gather(local))
    }
    fn all_reduce_sum(&self, values: &[Tensor]) -> Result<Vec<Tensor>> {
        self.timed(|| self.ranks.all_reduce_sum(values))
    }
    fn all_reduce_count(&self, values: &mut [u64]) {
        self.timed(|| self.ranks.all_reduce_count(values))
    }
    fn barrier(&self) {
        self.ranks.barrier()
    }
}

/// Shares one global batch of `sizes.len() = ranks × per_rank` examples out to the ranks:
/// `per_rank` each (the all-gathers need equal shares), the examples' `sizes` (their texts'
/// lengths) balanced so that no rank waits long for another. Longest first, each to the rank with
/// the least so far that has room (ties: the lower rank); deterministic, so every rank computes
/// the same shares. The loss over the gathered batch is the same for any order of its examples.
pub fn share_batch(sizes: &[usize], ranks: usize, per_rank: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(sizes[i]), i));
    let mut shares = vec![Vec::with_capacity(per_rank); ranks];
    let mut load = vec![0usize; ranks];
    for i in order {
        let r = (0..ranks)
            .filter(|&r| shares[r].len() < per_rank)
            .min_by_key(|&r| (load[r], r))
            .expect("ranks × per_rank examples");
        load[r] += sizes[i];
        shares[r].push(i);
    }
    shares
}

/// The global batch's `[size · b, dim]` rows from this rank's `[b, dim]` `local` ones: rank r's
/// rows at `r·b..`, this rank's still in the autograd graph, the others' detached.
pub fn gather_with_grad(ranks: &dyn Collectives, local: &Tensor) -> Result<Tensor> {
    if ranks.size() == 1 {
        return Ok(local.clone());
    }
    let b = local.dim(0)?;
    let rows = local
        .detach()
        .to_dtype(candle_core::DType::F32)?
        .contiguous()?;
    let all = ranks.all_gather(&rows)?.to_dtype(local.dtype())?;
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

/// Sums each gradient over the ranks, in place.
pub fn all_reduce_grads(ranks: &dyn Collectives, grads: &mut [Tensor]) -> Result<()> {
    if ranks.size() > 1 {
        let sums = ranks.all_reduce_sum(grads)?;
        grads.clone_from_slice(&sums);
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
        fn all_gather(&self, local: &Tensor) -> Result<Tensor> {
            assert_eq!(local.flatten_all()?.to_vec1::<f32>()?, self.rows[self.me]);
            let n = local.dim(0)?;
            Tensor::from_vec(self.rows.concat(), (2 * n, local.dim(1)?), local.device())
        }
        fn all_reduce_sum(&self, _: &[Tensor]) -> Result<Vec<Tensor>> {
            unreachable!()
        }
        fn all_reduce_count(&self, _: &mut [u64]) {
            unreachable!()
        }
        fn barrier(&self) {}
    }

    #[test]
    fn shares_are_equal_in_count_and_balanced_in_length() {
        let sizes = [300, 10, 280, 20, 30, 25, 290, 15];
        let shares = share_batch(&sizes, 2, 4);
        assert_eq!(shares, vec![vec![0, 4, 5, 3], vec![6, 2, 7, 1]]);
        let load = |s: &Vec<usize>| s.iter().map(|&i| sizes[i]).sum::<usize>();
        // The best split of 4 and 4 (two of the three long ones share a rank); the batch's
        // halves would be 610 and 360.
        assert_eq!((load(&shares[0]), load(&shares[1])), (375, 595));
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
