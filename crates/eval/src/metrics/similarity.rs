//! Pairwise similarities between embedding rows. Inputs are f32 (what the model returns); every
//! sum runs in f64 so that scores are stable to ~1e-15 and ties between identical rows stay ties.

/// Cosine similarity; 0 when either row is all zeros (sklearn's `normalize` leaves zero rows at
/// zero, so its `1 - paired_cosine_distances` gives 0 there too).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    ab / (aa.sqrt() * bb.sqrt())
}

/// The highest `sim` of `x` to any of `refs` (−∞ when there are none): how Summarization and
/// Billboard score a candidate against its references.
pub fn max_similarity<R: AsRef<[f32]>>(
    x: &[f32],
    refs: &[R],
    sim: fn(&[f32], &[f32]) -> f64,
) -> f64 {
    refs.iter()
        .map(|r| sim(x, r.as_ref()))
        .fold(f64::NEG_INFINITY, f64::max)
}

pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Euclidean distance (not negated: callers say which direction is "more similar").
pub fn euclidean(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Manhattan distance (not negated).
pub fn manhattan(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .sum()
}

/// The scores mteb computes for each pair of rows (STS and PairClassification share them).
#[derive(Debug, Clone, Default)]
pub struct PairScores {
    pub cosine: Vec<f64>,
    pub dot: Vec<f64>,
    pub euclidean: Vec<f64>,
    pub manhattan: Vec<f64>,
}

impl PairScores {
    /// Scores of `rows1[i]` against `rows2[i]`; both must have the same number of rows.
    pub fn compute<'a>(
        rows1: impl IntoIterator<Item = &'a [f32]>,
        rows2: impl IntoIterator<Item = &'a [f32]>,
    ) -> Self {
        let mut out = Self::default();
        for (a, b) in rows1.into_iter().zip(rows2) {
            out.cosine.push(cosine(a, b));
            out.dot.push(dot(a, b));
            out.euclidean.push(euclidean(a, b));
            out.manhattan.push(manhattan(a, b));
        }
        out
    }
}
