//! mteb's (legacy) Clustering protocol: mini-batch k-means with k = number of gold labels, scored
//! by V-measure. V-measure is exact (scikit-learn's `v_measure_score`); k-means cannot match
//! scikit-learn's `MiniBatchKMeans` draw for draw, so only its result quality is comparable.

use super::rng::Mt19937;
use std::collections::HashMap;

/// `sklearn.metrics.v_measure_score(labels_true, labels_pred)` (β = 1, natural logs).
pub fn v_measure(truth: &[usize], pred: &[usize]) -> f64 {
    assert_eq!(truth.len(), pred.len(), "v_measure: lengths differ");
    let n = truth.len() as f64;
    if truth.is_empty() {
        return 1.0;
    }
    let mut joint: HashMap<(usize, usize), f64> = HashMap::new();
    let mut ct: HashMap<usize, f64> = HashMap::new();
    let mut cp: HashMap<usize, f64> = HashMap::new();
    for (&t, &p) in truth.iter().zip(pred) {
        *joint.entry((t, p)).or_default() += 1.0;
        *ct.entry(t).or_default() += 1.0;
        *cp.entry(p).or_default() += 1.0;
    }
    let entropy = |m: &HashMap<usize, f64>| -> f64 {
        -m.values().map(|&c| (c / n) * (c / n).ln()).sum::<f64>()
    };
    let (h_c, h_k) = (entropy(&ct), entropy(&cp));
    // Mutual information from the contingency table.
    let mi: f64 = joint
        .iter()
        .map(|(&(t, p), &c)| (c / n) * (c * n / (ct[&t] * cp[&p])).ln())
        .sum();
    let homogeneity = if h_c == 0.0 { 1.0 } else { mi / h_c };
    let completeness = if h_k == 0.0 { 1.0 } else { mi / h_k };
    if homogeneity + completeness == 0.0 {
        0.0
    } else {
        2.0 * homogeneity * completeness / (homogeneity + completeness)
    }
}

/// Mini-batch k-means as scikit-learn runs it (`MiniBatchKMeans(batch_size, n_init)`, k-means++
/// init on up to 3·batch_size points, best of `n_init` inits by inertia, 100 epochs of batches
/// drawn with replacement, early stop after 10 batches without improvement of the smoothed
/// inertia), minus the random reassignment of near-empty centres. Returns each point's centre.
pub fn mini_batch_kmeans(
    points: &[&[f32]],
    k: usize,
    batch_size: usize,
    n_init: usize,
    seed: u32,
) -> Vec<usize> {
    let n = points.len();
    if n == 0 || k == 0 {
        return vec![0; n];
    }
    let dim = points[0].len();
    let x: Vec<Vec<f64>> = points
        .iter()
        .map(|p| p.iter().map(|&v| v as f64).collect())
        .collect();
    let mut rng = Mt19937::new(seed);
    let batch_size = batch_size.min(n);
    let init_size = (3 * batch_size).max(k).min(n);

    let mut centers = Vec::new();
    let mut best_inertia = f64::INFINITY;
    for _ in 0..n_init.max(1) {
        let sample: Vec<usize> = if init_size < n {
            (0..init_size)
                .map(|_| rng.interval(n as u32 - 1) as usize)
                .collect()
        } else {
            (0..n).collect()
        };
        let subset: Vec<&[f64]> = sample.iter().map(|&i| x[i].as_slice()).collect();
        let c = kmeans_plus_plus(&subset, k, &mut rng);
        let inertia: f64 = subset.iter().map(|p| nearest(p, &c).1).sum();
        if inertia < best_inertia {
            best_inertia = inertia;
            centers = c;
        }
    }

    let mut counts = vec![0f64; k];
    let steps = 100 * n / batch_size;
    let alpha = (2.0 * batch_size as f64 / (n as f64 + 1.0)).min(1.0);
    let (mut ewa, mut best_ewa, mut no_improvement) = (None::<f64>, f64::INFINITY, 0);
    for _ in 0..steps {
        let batch: Vec<usize> = (0..batch_size)
            .map(|_| rng.interval(n as u32 - 1) as usize)
            .collect();
        let assigned: Vec<(usize, f64)> = batch.iter().map(|&i| nearest(&x[i], &centers)).collect();
        let inertia = assigned.iter().map(|a| a.1).sum::<f64>() / batch_size as f64;
        let mut sums = vec![vec![0f64; dim]; k];
        let mut batch_counts = vec![0f64; k];
        for (&i, &(c, _)) in batch.iter().zip(&assigned) {
            batch_counts[c] += 1.0;
            sums[c].iter_mut().zip(&x[i]).for_each(|(s, v)| *s += v);
        }
        for c in 0..k {
            if batch_counts[c] > 0.0 {
                let total = counts[c] + batch_counts[c];
                for (cj, sj) in centers[c].iter_mut().zip(&sums[c]) {
                    *cj = (*cj * counts[c] + sj) / total;
                }
                counts[c] = total;
            }
        }
        let smoothed = ewa.map_or(inertia, |e| e * (1.0 - alpha) + inertia * alpha);
        ewa = Some(smoothed);
        if smoothed < best_ewa {
            best_ewa = smoothed;
            no_improvement = 0;
        } else {
            no_improvement += 1;
            if no_improvement >= 10 {
                break;
            }
        }
    }
    x.iter().map(|p| nearest(p, &centers).0).collect()
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Index of the closest centre and the squared distance to it (first on ties).
fn nearest(p: &[f64], centers: &[Vec<f64>]) -> (usize, f64) {
    centers
        .iter()
        .enumerate()
        .map(|(i, c)| (i, sq_dist(p, c)))
        .fold(
            (0, f64::INFINITY),
            |best, cur| if cur.1 < best.1 { cur } else { best },
        )
}

/// Greedy k-means++ (scikit-learn's `_kmeans_plusplus`: 2 + ⌊ln k⌋ candidates per centre, the
/// one lowering the potential most wins).
fn kmeans_plus_plus(x: &[&[f64]], k: usize, rng: &mut Mt19937) -> Vec<Vec<f64>> {
    let n = x.len();
    let trials = 2 + (k as f64).ln() as usize;
    let mut centers = vec![x[rng.interval(n as u32 - 1) as usize].to_vec()];
    let mut closest: Vec<f64> = x.iter().map(|p| sq_dist(p, &centers[0])).collect();
    while centers.len() < k {
        let potential: f64 = closest.iter().sum();
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            let target = rng.next_f64() * potential;
            let mut acc = 0.0;
            let cand = closest
                .iter()
                .position(|&d| {
                    acc += d;
                    acc > target
                })
                .unwrap_or(n - 1);
            let dists: Vec<f64> = x
                .iter()
                .zip(&closest)
                .map(|(p, &c)| c.min(sq_dist(p, x[cand])))
                .collect();
            let pot: f64 = dists.iter().sum();
            if best.as_ref().is_none_or(|b| pot < b.0) {
                best = Some((pot, cand, dists));
            }
        }
        let (_, cand, dists) = best.expect("at least one trial");
        centers.push(x[cand].to_vec());
        closest = dists;
    }
    centers
}
