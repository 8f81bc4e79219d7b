//! Binary decisions from scores: scikit-learn's average precision, and mteb's best accuracy /
//! best F1 over thresholds (`AbsTaskPairClassification._find_best_*_and_threshold`).

/// `sklearn.metrics.average_precision_score(labels, scores)`: Σ (R_n − R_{n−1}) P_n over the
/// distinct score thresholds in decreasing order, so tied scores form one threshold (their
/// order cannot matter). 0 when there is no positive, as scikit-learn returns.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    assert_eq!(
        scores.len(),
        labels.len(),
        "average_precision: lengths differ"
    );
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut prev_recall, mut ap) = (0usize, 0usize, 0.0, 0.0);
    for (i, &o) in order.iter().enumerate() {
        if labels[o] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_threshold = order.get(i + 1).is_none_or(|&n| scores[n] != scores[o]);
        if last_of_threshold {
            let recall = tp as f64 / positives as f64;
            ap += (recall - prev_recall) * (tp as f64 / (tp + fp) as f64);
            prev_recall = recall;
        }
    }
    ap
}

/// Best accuracy and F1 over thresholds, as mteb computes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholded {
    pub accuracy: f64,
    pub accuracy_threshold: f64,
    pub f1: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1_threshold: f64,
}

/// mteb's threshold search: rows sorted by score (stable; descending when `higher_is_similar`),
/// a candidate threshold between each pair of neighbours. mteb 2.x skips thresholds between
/// equal scores (`split_ties = false`: a threshold cannot separate them); the paper's mteb 1.0
/// fork did not (`split_ties = true`), so there the input order of tied rows leaks in.
pub fn best_thresholds(
    scores: &[f64],
    labels: &[bool],
    higher_is_similar: bool,
    split_ties: bool,
) -> Thresholded {
    assert_eq!(
        scores.len(),
        labels.len(),
        "best_thresholds: lengths differ"
    );
    let mut rows: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    // Python's `sorted(reverse=True)` keeps equal keys in input order, so reverse the
    // comparator instead of the sorted list.
    if higher_is_similar {
        rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    } else {
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let n = rows.len();
    let positives = labels.iter().filter(|&&l| l).count();
    let mut out = Thresholded {
        accuracy: 0.0,
        accuracy_threshold: -1.0,
        f1: 0.0,
        precision: 0.0,
        recall: 0.0,
        f1_threshold: 0.0,
    };
    let (mut positive_so_far, mut remaining_negatives) = (0usize, n - positives);
    for i in 0..n.saturating_sub(1) {
        let (score, label) = rows[i];
        if label {
            positive_so_far += 1;
        } else {
            remaining_negatives -= 1;
        }
        if !split_ties && score == rows[i + 1].0 {
            continue;
        }
        let threshold = (score + rows[i + 1].0) / 2.0;
        let acc = (positive_so_far + remaining_negatives) as f64 / n as f64;
        if acc > out.accuracy {
            out.accuracy = acc;
            out.accuracy_threshold = threshold;
        }
        if positive_so_far > 0 {
            let precision = positive_so_far as f64 / (i + 1) as f64;
            let recall = positive_so_far as f64 / positives as f64;
            let f1 = 2.0 * precision * recall / (precision + recall);
            if f1 > out.f1 {
                out.f1 = f1;
                out.precision = precision;
                out.recall = recall;
                out.f1_threshold = threshold;
            }
        }
    }
    out
}
