//! mteb's Summarization protocol: each machine summary scores the max similarity to its text's
//! human summaries; per text, Spearman/Pearson of those against the human ratings; averaged over
//! texts. Texts whose ratings or predictions are all equal are skipped, as mteb does.

use super::correlation::{correlation_p_value, pearson, spearman};
use super::similarity::{cosine, dot, max_similarity};

/// One source text's summaries (embedded) and the human ratings of its machine summaries.
#[derive(Debug, Clone)]
pub struct Text {
    pub human: Vec<Vec<f32>>,
    pub machine: Vec<Vec<f32>>,
    pub gold: Vec<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Correlations {
    pub cosine_spearman: f64,
    pub cosine_pearson: f64,
    pub dot_spearman: f64,
    pub dot_pearson: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SummarizationScores {
    /// The correct means (mteb's `SummarizationEvaluator`, task `SummEvalSummarization.v2`).
    pub fixed: Correlations,
    /// mteb 1.x's bug, kept by mteb 2.x for the task `SummEval` and in the INSTRUCTOR paper:
    /// `np.mean` over (statistic, p-value) tuples, i.e. each mean also averages in the p-values.
    pub summeval_v1: Correlations,
    /// Texts left after skipping constant ones.
    pub texts_used: usize,
}

pub fn evaluate(texts: &[Text]) -> SummarizationScores {
    let mut fixed: Vec<[f64; 4]> = vec![];
    let mut bugged: Vec<[f64; 4]> = vec![];
    for t in texts {
        let best = |f: fn(&[f32], &[f32]) -> f64| -> Vec<f64> {
            t.machine
                .iter()
                .map(|m| max_similarity(m, &t.human, f))
                .collect()
        };
        let (cos, dots) = (best(cosine), best(dot));
        if [&t.gold, &cos, &dots].iter().any(|v| all_equal(v)) {
            continue;
        }
        let r = [
            spearman(&t.gold, &cos),
            pearson(&t.gold, &cos),
            spearman(&t.gold, &dots),
            pearson(&t.gold, &dots),
        ];
        let n = t.gold.len();
        fixed.push(r);
        bugged.push(r.map(|r| (r + correlation_p_value(r, n)) / 2.0));
    }
    let mean = |v: &[[f64; 4]]| -> Correlations {
        let m = |i: usize| v.iter().map(|r| r[i]).sum::<f64>() / v.len() as f64;
        Correlations {
            cosine_spearman: m(0),
            cosine_pearson: m(1),
            dot_spearman: m(2),
            dot_pearson: m(3),
        }
    };
    SummarizationScores {
        fixed: mean(&fixed),
        summeval_v1: mean(&bugged),
        texts_used: fixed.len(),
    }
}

fn all_equal(v: &[f64]) -> bool {
    v.windows(2).all(|w| w[0] == w[1])
}
