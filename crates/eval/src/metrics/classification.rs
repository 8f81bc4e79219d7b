//! mteb's Classification protocol: undersample `samples_per_label` training examples per label
//! (numpy RNG reproduced exactly, see [`super::rng`]), fit scikit-learn's default
//! `LogisticRegression` (L2, C = 1, lbfgs; multinomial for > 2 classes, binomial for 2), score
//! the test split; repeated `n_experiments` times and averaged.

use super::pair::average_precision;
use super::rng::Mt19937;
use std::collections::HashMap;

/// mteb's `_undersample_data` over all experiments: one `RandomState(seed)` per experiment
/// shuffling the *previous* experiment's order again, then the first `samples_per_label` of each
/// label in that order. Returns the selected training indices per experiment.
pub fn undersample(
    labels: &[usize],
    samples_per_label: usize,
    n_experiments: usize,
    seed: u32,
) -> Vec<Vec<usize>> {
    let mut idxs: Vec<usize> = (0..labels.len()).collect();
    (0..n_experiments)
        .map(|_| {
            Mt19937::new(seed).shuffle(&mut idxs);
            let mut counts: HashMap<usize, usize> = HashMap::new();
            idxs.iter()
                .copied()
                .filter(|&i| {
                    let c = counts.entry(labels[i]).or_default();
                    *c += 1;
                    *c <= samples_per_label
                })
                .collect()
        })
        .collect()
}

/// A fitted L2-regularised logistic regression over classes `0..n_classes`.
#[derive(Debug, Clone)]
pub struct LogisticRegression {
    /// Row-major `rows × dim`: one row per class (multinomial) or one row for class 1 (binary,
    /// scikit-learn's `coef_` shape).
    pub coef: Vec<f64>,
    pub intercept: Vec<f64>,
    pub dim: usize,
    pub n_classes: usize,
}

impl LogisticRegression {
    /// Minimises C·Σ_i CE(x_i, y_i) + ½‖W‖² (intercepts unpenalised), scikit-learn's objective,
    /// with L-BFGS run to a tight tolerance. scikit-learn stops at `max_iter = 100` with scipy's
    /// line search; both approach the same unique optimum (for multinomial the intercepts are
    /// unique too because every step keeps their sum at zero, as scikit-learn's do), so
    /// predictions agree except for points within ~1e-4 of a decision boundary. Written here
    /// rather than taken from linfa/argmin: it is ~100 lines, dependency-free, and mirrors
    /// scikit-learn's parameterisation exactly (binary = one coefficient row).
    pub fn fit(x: &[Vec<f32>], y: &[usize], n_classes: usize, c: f64) -> Self {
        assert!(
            n_classes >= 2,
            "logistic regression needs at least 2 classes"
        );
        let dim = x.first().map_or(0, Vec::len);
        let rows = if n_classes == 2 { 1 } else { n_classes };
        let x: Vec<Vec<f64>> = x
            .iter()
            .map(|r| r.iter().map(|&v| v as f64).collect())
            .collect();
        let n_params = rows * (dim + 1);
        let objective = |w: &[f64], grad: &mut [f64]| -> f64 {
            let model = Self::from_params(w, rows, dim, n_classes);
            grad.fill(0.0);
            let mut loss = 0.0;
            for (xi, &yi) in x.iter().zip(y) {
                let p = model.probabilities(xi);
                loss -= p[yi].max(f64::MIN_POSITIVE).ln();
                for r in 0..rows {
                    // Binary: the free row is class 1 (class 0's logit is fixed at 0).
                    let class = if rows == 1 { 1 } else { r };
                    let err = c * (p[class] - if class == yi { 1.0 } else { 0.0 });
                    let g = &mut grad[r * (dim + 1)..(r + 1) * (dim + 1)];
                    for (gj, xj) in g[..dim].iter_mut().zip(xi) {
                        *gj += err * xj;
                    }
                    g[dim] += err;
                }
            }
            loss *= c;
            for r in 0..rows {
                let o = r * (dim + 1);
                for j in 0..dim {
                    loss += 0.5 * w[o + j] * w[o + j];
                    grad[o + j] += w[o + j];
                }
            }
            loss
        };
        let w = lbfgs(objective, vec![0.0; n_params], 1e-10, 2000);
        Self::from_params(&w, rows, dim, n_classes)
    }

    fn from_params(w: &[f64], rows: usize, dim: usize, n_classes: usize) -> Self {
        let mut coef = Vec::with_capacity(rows * dim);
        let mut intercept = Vec::with_capacity(rows);
        for r in 0..rows {
            coef.extend_from_slice(&w[r * (dim + 1)..r * (dim + 1) + dim]);
            intercept.push(w[r * (dim + 1) + dim]);
        }
        Self {
            coef,
            intercept,
            dim,
            n_classes,
        }
    }

    fn logits(&self, x: &[f64]) -> Vec<f64> {
        let z: Vec<f64> = self
            .coef
            .chunks(self.dim.max(1))
            .zip(&self.intercept)
            .map(|(w, b)| w.iter().zip(x).map(|(a, b)| a * b).sum::<f64>() + b)
            .collect();
        if self.n_classes == 2 {
            vec![0.0, z[0]]
        } else {
            z
        }
    }

    /// Class probabilities (softmax of the logits; sigmoid for binary).
    pub fn probabilities(&self, x: &[f64]) -> Vec<f64> {
        let z = self.logits(x);
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|v| v / s).collect()
    }

    /// Most probable class; ties go to the lower class index (numpy's `argmax`).
    pub fn predict(&self, x: &[f32]) -> usize {
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let z = self.logits(&x);
        let mut best = 0;
        for (i, &v) in z.iter().enumerate() {
            if v > z[best] {
                best = i;
            }
        }
        best
    }
}

/// Limited-memory BFGS (10 corrections) with a backtracking Armijo line search; stops when the
/// gradient's max-norm falls below `gtol` or after `max_iter` iterations.
fn lbfgs(
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    mut x: Vec<f64>,
    gtol: f64,
    max_iter: usize,
) -> Vec<f64> {
    const M: usize = 10;
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut hist: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for _ in 0..max_iter {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) < gtol {
            break;
        }
        // Two-loop recursion: d = -H g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(hist.len());
        for (s, y, rho) in hist.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        let gamma = hist.back().map_or(
            1.0 / g.iter().map(|v| v * v).sum::<f64>().sqrt(),
            |(s, y, _)| dot(s, y) / dot(y, y),
        );
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y, rho), a) in hist.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
        }
        let d: Vec<f64> = q.into_iter().map(|v| -v).collect();
        let slope = dot(&g, &d);
        if slope >= 0.0 {
            hist.clear();
            continue;
        }
        let mut step = 1.0;
        let mut g_new = vec![0.0; n];
        let (x_new, f_new) = loop {
            let xn: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + step * b).collect();
            let fnew = f(&xn, &mut g_new);
            if fnew <= fx + 1e-4 * step * slope || step < 1e-20 {
                break (xn, fnew);
            }
            step *= 0.5;
        };
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-300 {
            if hist.len() == M {
                hist.pop_front();
            }
            hist.push_back((s, y, 1.0 / sy));
        }
        let converged = (fx - f_new).abs() <= 1e-15 * fx.abs().max(1.0);
        x = x_new;
        g = g_new;
        fx = f_new;
        if converged {
            break;
        }
    }
    x
}

/// The scores mteb 2.x reports per experiment (`AbsTaskClassification._calculate_scores`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassificationScores {
    pub accuracy: f64,
    pub f1: f64,
    pub f1_weighted: f64,
    pub precision: f64,
    pub precision_weighted: f64,
    pub recall: f64,
    pub recall_weighted: f64,
    /// Binary tasks only: `average_precision_score(y_test, y_pred)` on the predicted labels.
    pub ap: Option<f64>,
}

/// scikit-learn's accuracy and macro/weighted precision, recall and F1 over the labels present
/// in either `truth` or `pred` (a label never predicted has precision 0, `zero_division` 0).
pub fn classification_scores(truth: &[usize], pred: &[usize]) -> ClassificationScores {
    let mut labels: Vec<usize> = truth.iter().chain(pred).copied().collect();
    labels.sort_unstable();
    labels.dedup();
    let n = truth.len() as f64;
    let mut s = ClassificationScores {
        accuracy: truth.iter().zip(pred).filter(|(a, b)| a == b).count() as f64 / n,
        ..Default::default()
    };
    for &l in &labels {
        let tp = truth
            .iter()
            .zip(pred)
            .filter(|&(&t, &p)| t == l && p == l)
            .count() as f64;
        let n_pred = pred.iter().filter(|&&p| p == l).count() as f64;
        let support = truth.iter().filter(|&&t| t == l).count() as f64;
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let (p, r) = (ratio(tp, n_pred), ratio(tp, support));
        let f1 = ratio(2.0 * tp, n_pred + support);
        let k = labels.len() as f64;
        s.precision += p / k;
        s.recall += r / k;
        s.f1 += f1 / k;
        s.precision_weighted += p * support / n;
        s.recall_weighted += r * support / n;
        s.f1_weighted += f1 * support / n;
    }
    if truth_classes(truth) == 2 {
        let t: Vec<bool> = truth.iter().map(|&t| t == 1).collect();
        let p: Vec<f64> = pred.iter().map(|&p| p as f64).collect();
        s.ap = Some(average_precision(&p, &t));
    }
    s
}

fn truth_classes(truth: &[usize]) -> usize {
    let mut t = truth.to_vec();
    t.sort_unstable();
    t.dedup();
    t.len()
}
