//! Ranking metrics with trec_eval's semantics (what pytrec_eval and so mteb 2.x compute), and the
//! exact top-k search that feeds them.
//!
//! trec_eval orders a query's results by score descending, ties by document id descending
//! (byte-wise), whatever order they were given in; relevance ≥ 1 counts as relevant; nDCG's gain
//! is the raw relevance level with discount log2(rank + 1).

use super::similarity::cosine;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// The cut-offs mteb 2.x reports (`AbsTaskRetrieval.k_values`).
pub const K_VALUES: [usize; 7] = [1, 3, 5, 10, 20, 100, 1000];

/// One retrieved document.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub doc_id: String,
    pub score: f64,
}

/// trec_eval's result order: score descending, then document id descending.
pub fn trec_order(a: &Hit, b: &Hit) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| b.doc_id.as_bytes().cmp(a.doc_id.as_bytes()))
}

/// Metrics of one query at each cut-off of `ks` (same order).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryMetrics {
    pub ndcg: Vec<f64>,
    /// trec_eval `map_cut`: AP truncated at k, normalised by all relevant documents.
    pub map: Vec<f64>,
    pub recall: Vec<f64>,
    pub precision: Vec<f64>,
    /// mteb's MRR@k (relevance > 0; same order as trec_eval since mteb 2.x).
    pub mrr: Vec<f64>,
    /// trec_eval `success`: 1 when a relevant document is in the top k (mteb's `hit_rate`).
    pub hit_rate: Vec<f64>,
}

/// Evaluates one query's results against its judgements (`qrels`: doc id → relevance).
pub fn evaluate_query(hits: &[Hit], qrels: &HashMap<String, i64>, ks: &[usize]) -> QueryMetrics {
    let mut ranked: Vec<&Hit> = hits.iter().collect();
    ranked.sort_by(|a, b| trec_order(a, b));
    let rels: Vec<i64> = ranked
        .iter()
        .map(|h| qrels.get(&h.doc_id).copied().unwrap_or(0))
        .collect();
    let num_rel = qrels.values().filter(|&&r| r >= 1).count();
    let mut ideal: Vec<i64> = qrels.values().copied().filter(|&r| r > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let dcg = |gains: &[i64], k: usize| -> f64 {
        gains
            .iter()
            .take(k)
            .enumerate()
            .filter(|(_, &g)| g > 0)
            .map(|(i, &g)| g as f64 / ((i + 2) as f64).log2())
            .sum()
    };
    let first_relevant = rels.iter().position(|&r| r >= 1);
    let mut m = QueryMetrics {
        ndcg: vec![],
        map: vec![],
        recall: vec![],
        precision: vec![],
        mrr: vec![],
        hit_rate: vec![],
    };
    for &k in ks {
        let idcg = dcg(&ideal, k);
        m.ndcg.push(if idcg > 0.0 {
            dcg(&rels, k) / idcg
        } else {
            0.0
        });
        let (mut found, mut ap_sum) = (0usize, 0.0);
        for (i, _) in rels.iter().take(k).enumerate().filter(|(_, &r)| r >= 1) {
            found += 1;
            ap_sum += found as f64 / (i + 1) as f64;
        }
        let per_rel = |x: f64| if num_rel > 0 { x / num_rel as f64 } else { 0.0 };
        m.map.push(per_rel(ap_sum));
        m.recall.push(per_rel(found as f64));
        m.precision.push(found as f64 / k as f64);
        let within = first_relevant.filter(|&p| p < k);
        m.mrr.push(within.map_or(0.0, |p| 1.0 / (p + 1) as f64));
        m.hit_rate.push(if within.is_some() { 1.0 } else { 0.0 });
    }
    m
}

/// Mean of [`QueryMetrics`] over queries (pytrec_eval's per-query values averaged as mteb does).
pub fn mean_metrics(per_query: &[QueryMetrics]) -> Option<QueryMetrics> {
    let first = per_query.first()?;
    let n = per_query.len() as f64;
    let avg = |f: fn(&QueryMetrics) -> &Vec<f64>| -> Vec<f64> {
        (0..f(first).len())
            .map(|i| per_query.iter().map(|q| f(q)[i]).sum::<f64>() / n)
            .collect()
    };
    Some(QueryMetrics {
        ndcg: avg(|q| &q.ndcg),
        map: avg(|q| &q.map),
        recall: avg(|q| &q.recall),
        precision: avg(|q| &q.precision),
        mrr: avg(|q| &q.mrr),
        hit_rate: avg(|q| &q.hit_rate),
    })
}

/// A heap entry ordered so that the heap's top is the *worst* kept hit (lowest in trec order).
#[derive(PartialEq)]
struct Kept {
    score: f64,
    /// Rank of the document id in byte order, so ties compare as the ids do.
    id_rank: u32,
    doc: u32,
}

impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    /// "Greater" = worse: lower score, then lower id.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(other.id_rank.cmp(&self.id_rank))
    }
}

/// Exact cosine top-k per query, fed the corpus chunk by chunk: memory is O(queries × k), never
/// O(queries × documents). Ties at the cut-off keep the higher document id, matching trec_eval's
/// order (and mteb's `heapq` of `(score, id)` tuples).
pub struct TopK<'a> {
    k: usize,
    doc_ids: &'a [String],
    id_rank: Vec<u32>,
    /// Per query: document index to leave out (mteb's `ignore_identical_ids`).
    skip: Vec<Option<usize>>,
    heaps: Vec<BinaryHeap<Kept>>,
}

impl<'a> TopK<'a> {
    /// `skip[q]`: a document never returned for query `q` (its own id, when identical ids are
    /// ignored).
    pub fn new(k: usize, doc_ids: &'a [String], skip: Vec<Option<usize>>) -> Self {
        let mut order: Vec<usize> = (0..doc_ids.len()).collect();
        order.sort_by(|&a, &b| doc_ids[a].as_bytes().cmp(doc_ids[b].as_bytes()));
        let mut id_rank = vec![0u32; doc_ids.len()];
        for (r, &d) in order.iter().enumerate() {
            id_rank[d] = r as u32;
        }
        let heaps = skip
            .iter()
            .map(|_| BinaryHeap::with_capacity(k + 1))
            .collect();
        Self {
            k,
            doc_ids,
            id_rank,
            skip,
            heaps,
        }
    }

    /// Scores `queries` (one row each, in the order given to [`new`](Self::new)) against corpus
    /// rows `first_doc..first_doc + docs.len()`.
    pub fn push_chunk<'q>(
        &mut self,
        queries: impl IntoIterator<Item = &'q [f32]>,
        first_doc: usize,
        docs: &[&[f32]],
    ) {
        for ((q, heap), skip) in queries.into_iter().zip(&mut self.heaps).zip(&self.skip) {
            for (j, d) in docs.iter().enumerate() {
                let doc = first_doc + j;
                if *skip == Some(doc) {
                    continue;
                }
                let kept = Kept {
                    score: cosine(q, d),
                    id_rank: self.id_rank[doc],
                    doc: doc as u32,
                };
                if heap.len() < self.k {
                    heap.push(kept);
                } else if heap.peek().is_some_and(|worst| kept < *worst) {
                    heap.pop();
                    heap.push(kept);
                }
            }
        }
    }

    /// Each query's hits, best first.
    pub fn finish(self) -> Vec<Vec<Hit>> {
        self.heaps
            .into_iter()
            .map(|h| {
                h.into_sorted_vec()
                    .into_iter()
                    .map(|k| Hit {
                        doc_id: self.doc_ids[k.doc as usize].clone(),
                        score: k.score,
                    })
                    .collect()
            })
            .collect()
    }
}

/// The paper's reranking metrics for one instance (mteb 1.0 `RerankingEvaluator`): sklearn AP
/// over the candidates, and MRR@`mrr_k` with candidates in descending score order (ties keep
/// input order: positives first).
/// One reranking instance as mteb 2.x evaluates it: retrieval over the query's own candidates
/// (`scores`: the `n_positive` positives first, then the negatives), with mteb's document ids
/// `apositive_…` / `negative_…`, which decide ties in trec order.
pub fn rerank_instance_as_retrieval(
    query: usize,
    scores: &[f64],
    n_positive: usize,
    ks: &[usize],
) -> QueryMetrics {
    let qid = format!("test_query{query}");
    let ids: Vec<String> = (0..scores.len())
        .map(|i| {
            if i < n_positive {
                format!("apositive_{qid}_{i:05}")
            } else {
                format!("negative_{qid}_{:05}", i - n_positive)
            }
        })
        .collect();
    let hits: Vec<Hit> = ids
        .iter()
        .zip(scores)
        .map(|(d, &score)| Hit {
            doc_id: d.clone(),
            score,
        })
        .collect();
    let qrels = ids
        .iter()
        .enumerate()
        .map(|(i, d)| (d.clone(), i64::from(i < n_positive)))
        .collect();
    evaluate_query(&hits, &qrels, ks)
}

pub fn rerank_instance(scores: &[f64], is_relevant: &[bool], mrr_k: usize) -> (f64, f64) {
    let ap = super::pair::average_precision(scores, is_relevant);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mrr = order
        .iter()
        .take(mrr_k)
        .position(|&i| is_relevant[i])
        .map_or(0.0, |r| 1.0 / (r + 1) as f64);
    (ap, mrr)
}
