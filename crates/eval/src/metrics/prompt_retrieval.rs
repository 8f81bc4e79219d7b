//! Demonstration selection for in-context learning as the INSTRUCTOR repository does it
//! (`evaluation/prompt_retrieval`: `utils.calculate_sentence_transformer_embedding` and
//! `two_steps.prompt_retrieval`, method `similar`). Only the selection: scoring the prompts
//! with a language model is out of scope.
//!
//! Each set (pool, test inputs) is centred on its own mean, as the repository embeds and centres
//! them in separate calls. For every test input the pool is ranked by cosine, and walked from
//! the most similar: the test input itself (cosine 1) is skipped, so is an example longer than
//! the per-example limit; the walk stops at the first example that would push the prompt past
//! the budget. The chosen examples come back in prompt order, least similar first, so that the
//! most similar one sits next to the test input.

use super::similarity::cosine;

/// Prompt lengths in the language model's tokens (GPT-2 tokens in the repository: 1000 and 250
/// for its classification tasks).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Test input plus all chosen demonstrations.
    pub max_prompt_len: usize,
    /// A longer demonstration (input plus output) is never chosen.
    pub max_example_len: Option<usize>,
}

/// The repository compares float32 cosines `== 1` to spot the test input inside the pool; a
/// tolerance gives the same answer without depending on float32 rounding.
const SELF_TOLERANCE: f64 = 1e-6;

/// For each test input, the pool indices to put in its prompt, least similar first.
/// `pool_lens[i]`: tokens of pool example `i` (input and output); `test_lens[t]`: tokens of test
/// input `t`. Equal cosines rank the later pool index as more similar (numpy's `argsort` read
/// backwards, for arrays it sorts stably).
pub fn select(
    pool: &[Vec<f32>],
    pool_lens: &[usize],
    tests: &[Vec<f32>],
    test_lens: &[usize],
    budget: Budget,
) -> Vec<Vec<usize>> {
    let (pool, tests) = (centred(pool), centred(tests));
    tests
        .iter()
        .zip(test_lens)
        .map(|(t, &len)| {
            let scores: Vec<f64> = pool.iter().map(|p| cosine(t, p)).collect();
            let mut order: Vec<usize> = (0..pool.len()).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(b.cmp(&a)));
            let (mut used, mut chosen) = (len, vec![]);
            for i in order {
                let too_long = budget.max_example_len.is_some_and(|m| pool_lens[i] > m);
                if (scores[i] - 1.0).abs() <= SELF_TOLERANCE || too_long {
                    continue;
                }
                used += pool_lens[i];
                if used > budget.max_prompt_len {
                    break;
                }
                chosen.push(i);
            }
            chosen.reverse();
            chosen
        })
        .collect()
}

/// Rows minus their column mean (f64 mean, rounded back to f32 as the repository's float32
/// tensors hold it).
fn centred(rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let dim = rows.first().map_or(0, Vec::len);
    let mut mean = vec![0f64; dim];
    for r in rows {
        for (m, &x) in mean.iter_mut().zip(r) {
            *m += x as f64;
        }
    }
    let n = rows.len().max(1) as f64;
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(&mean)
                .map(|(&x, m)| (x as f64 - m / n) as f32)
                .collect()
        })
        .collect()
}
