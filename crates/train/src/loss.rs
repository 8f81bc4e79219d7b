//! INSTRUCTOR's contrastive loss (`compute_loss` of the reference `train.py`).

use candle_core::{Result, Tensor, D};
use candle_nn::ops::log_softmax;
use instructor::head::l2_normalize;

/// `L1 + L2`, each a mean cross-entropy, with `s(a, b) = cos(a, b) / temperature`:
/// - L1, row i: `[s(q_i, p_i), s(q_i, n_j) for every j]`, target the positive;
/// - L2, row i: `[s(p_i, q_i), s(p_i, q_j) for j ≠ i]`, target the query.
///
/// `q`, `p`, `n` are `[batch, dim]` embeddings. L2's row holds every query exactly once, so it is
/// the i-th row of `P Qᵀ` with target i (cross-entropy does not care where the target sits).
pub fn contrastive_loss(q: &Tensor, p: &Tensor, n: &Tensor, temperature: f64) -> Result<Tensor> {
    let (q, p, n) = (l2_normalize(q)?, l2_normalize(p)?, l2_normalize(n)?);
    let b = q.dim(0)?;
    let pos = (&q * &p)?.sum_keepdim(1)?;
    let l1 = (Tensor::cat(&[&pos, &q.matmul(&n.t()?)?], 1)? / temperature)?;
    let l1 = log_softmax(&l1, D::Minus1)?
        .narrow(1, 0, 1)?
        .mean_all()?
        .neg()?;
    let l2 = (p.matmul(&q.t()?)? / temperature)?;
    let eye = Tensor::eye(b, l2.dtype(), l2.device())?;
    let l2 = (log_softmax(&l2, D::Minus1)? * eye)?
        .sum(1)?
        .mean_all()?
        .neg()?;
    l1 + l2
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The loss written out element by element, as `train.py` loops over the batch.
    fn by_hand(q: &[Vec<f32>], p: &[Vec<f32>], n: &[Vec<f32>], t: f32) -> f32 {
        let cos = |a: &[f32], b: &[f32]| {
            let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
            let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
            dot / (na * nb) / t
        };
        let ce = |row: &[f32]| {
            let m = row.iter().cloned().fold(f32::MIN, f32::max);
            let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f32>().ln();
            lse - row[0]
        };
        let b = q.len();
        let mut l1 = 0.0;
        let mut l2 = 0.0;
        for i in 0..b {
            let mut row = vec![cos(&q[i], &p[i])];
            row.extend((0..b).map(|j| cos(&q[i], &n[j])));
            l1 += ce(&row);
            let mut row = vec![cos(&p[i], &q[i])];
            row.extend((0..b).filter(|&j| j != i).map(|j| cos(&p[i], &q[j])));
            l2 += ce(&row);
        }
        (l1 + l2) / b as f32
    }

    #[test]
    fn matches_the_reference_loops() {
        let dev = Device::Cpu;
        let rows = |seed: f32| -> Vec<Vec<f32>> {
            (0..3)
                .map(|i| (0..5).map(|j| ((i * 5 + j) as f32 * seed).sin()).collect())
                .collect()
        };
        let (q, p, n) = (rows(0.7), rows(1.3), rows(2.9));
        let t = |r: &Vec<Vec<f32>>| Tensor::new(r.clone(), &dev).unwrap();
        let got = contrastive_loss(&t(&q), &t(&p), &t(&n), 0.1)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let want = by_hand(&q, &p, &n, 0.1);
        assert!((got - want).abs() <= 1e-5 * want.abs(), "{got} vs {want}");
    }
}
