//! Billboard, the INSTRUCTOR paper's text-generation evaluation (THumB 1.0 human ratings of
//! MSCOCO captions, CNN/DM summaries and WMT20 zh-en translations): each hypothesis scores its
//! highest cosine to the references of its source, and the metric is the Pearson correlation of
//! those scores with the human scores over all hypotheses (the repository's
//! `evaluation/text_evaluation/main.py`, `compute_corr` without CLIP).

use super::correlation::pearson;
use super::similarity::{cosine, max_similarity};

/// `refs[s]`: the references of source `s`; `hyps`: the hypotheses in source order, the same
/// number per source (the repository reshapes them to `[sources, per_source]`); `human`: one
/// score per hypothesis.
pub fn evaluate(refs: &[Vec<Vec<f32>>], hyps: &[Vec<f32>], human: &[f64]) -> Result<f64, String> {
    if refs.is_empty() || !hyps.len().is_multiple_of(refs.len()) {
        return Err(format!(
            "{} hypotheses do not split evenly over {} sources",
            hyps.len(),
            refs.len()
        ));
    }
    if human.len() != hyps.len() {
        return Err(format!(
            "{} human scores for {} hypotheses",
            human.len(),
            hyps.len()
        ));
    }
    let per_source = hyps.len() / refs.len();
    let scores: Vec<f64> = hyps
        .iter()
        .enumerate()
        .map(|(i, h)| max_similarity(h, &refs[i / per_source], cosine))
        .collect();
    Ok(pearson(human, &scores))
}
