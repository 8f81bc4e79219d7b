//! Known tasks and what each task type computes, producing mteb 2.x's score keys.

use super::data::{RerankInstance, SummaryText, TaskData};
use super::metrics::summarization;
use super::metrics::{billboard, classification, clustering, correlation, pair, ranking};
use super::metrics::{similarity::cosine, similarity::PairScores};
use super::{Embedder, EvalError, Protocol, TaskType};
use instructor::{Embeddings, Input};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The shipped task table (`crates/eval/src/instructions.json`).
pub const BUILTIN_TABLE: &str = include_str!("instructions.json");

/// One task's entry in a table; absent fields fall back to the type's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskEntry {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub query: Option<String>,
    pub corpus: Option<String>,
    #[serde(default)]
    pub ignore_identical_ids: bool,
    #[serde(default)]
    pub summeval_v1: bool,
    pub dataset: Option<DatasetRef>,
}

/// Where a task's data lives on the hub: a dataset repo and the revision mteb pins.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DatasetRef {
    pub repo: String,
    /// A commit sha (what mteb pins), or a branch or tag.
    pub revision: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskTable {
    #[serde(default)]
    pub defaults: HashMap<String, TaskEntry>,
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskEntry>,
    /// Per-model tables (`hkunlp/instructor-large` -> task -> query/corpus): the INSTRUCTOR
    /// repository's own instructions, applied with [`use_model`](Self::use_model).
    #[serde(default)]
    pub models: BTreeMap<String, BTreeMap<String, TaskEntry>>,
}

/// The shipped per-model tables' names, by their short names.
pub const MODEL_TABLES: [(&str, &str); 3] = [
    ("base", "hkunlp/instructor-base"),
    ("large", "hkunlp/instructor-large"),
    ("xl", "hkunlp/instructor-xl"),
];

/// The model table `--model` implies: `hkunlp/instructor-{base,large,xl}` for that hub id, a
/// folder named `instructor-{base,large,xl}`, or that repo's hub-cache snapshot
/// (`models--hkunlp--instructor-large/snapshots/<sha>`); `None` for anything else (a fine-tune
/// in a folder of another name keeps the per-type defaults).
pub fn infer_model_table(model: &str) -> Option<&'static str> {
    let parts: Vec<String> = model
        .split(['/', '\\'])
        .filter(|p| !p.is_empty())
        .map(|p| p.to_ascii_lowercase())
        .collect();
    MODEL_TABLES.iter().find_map(|(short, full)| {
        let name = format!("instructor-{short}");
        let cached = format!("models--hkunlp--instructor-{short}");
        let hit = parts.last() == Some(&name) || parts.contains(&cached);
        hit.then_some(*full)
    })
}

impl TaskTable {
    pub fn builtin() -> Self {
        serde_json::from_str(BUILTIN_TABLE).expect("crates/eval/src/instructions.json is valid")
    }

    /// Entries of `other` replace this table's, field by field.
    pub fn merge(&mut self, other: TaskTable) {
        for (k, v) in other.defaults {
            merge_entry(self.defaults.entry(k).or_default(), v);
        }
        for (k, v) in other.tasks {
            merge_entry(self.tasks.entry(k).or_default(), v);
        }
        self.merge_models(other.models);
    }

    /// Entries of `models` replace this table's per-model entries, field by field.
    pub fn merge_models(&mut self, models: BTreeMap<String, BTreeMap<String, TaskEntry>>) {
        for (m, tasks) in models {
            let into = self.models.entry(m).or_default();
            for (k, v) in tasks {
                merge_entry(into.entry(k).or_default(), v);
            }
        }
    }

    /// The model table `selector` names: a key of `models`, or a short name (`base`, `large`,
    /// `xl`) for `hkunlp/instructor-<short>`.
    pub fn model_name(&self, selector: &str) -> Result<String, String> {
        if self.models.contains_key(selector) {
            return Ok(selector.to_string());
        }
        let full = MODEL_TABLES
            .iter()
            .find(|(short, _)| short.eq_ignore_ascii_case(selector))
            .map(|(_, full)| full.to_string());
        match full {
            Some(f) if self.models.contains_key(&f) => Ok(f),
            _ => Err(format!(
                "no instruction table for `{selector}` (known: {})",
                self.models.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// Makes the instructions of model table `model` (a key of `models`) the tasks' own: its
    /// query/corpus replace the task entries'; tasks it lacks keep theirs (or the defaults).
    /// A task only in the model table gets an entry without a type (give it with --task-type).
    pub fn use_model(&mut self, model: &str) -> Result<(), String> {
        let table = self
            .models
            .get(model)
            .cloned()
            .ok_or_else(|| format!("no instruction table for `{model}`"))?;
        for (k, v) in table {
            let into = self.tasks.entry(k).or_default();
            into.query = v.query.or(into.query.take());
            into.corpus = v.corpus.or(into.corpus.take());
        }
        Ok(())
    }

    /// Task names selected by `selector`: a task name, or a type (`sts`, `Retrieval`, ...) for
    /// every known task of that type.
    pub fn select(&self, selector: &str) -> Vec<String> {
        if self.tasks.contains_key(selector) {
            return vec![selector.to_string()];
        }
        match TaskType::parse(selector) {
            Some(t) => self
                .tasks
                .iter()
                .filter(|(_, e)| e.kind.as_deref().and_then(TaskType::parse) == Some(t))
                .map(|(n, _)| n.clone())
                .collect(),
            None => vec![],
        }
    }

    /// The spec of `name`; `kind` overrides (or supplies, for an unknown task) its type.
    pub fn spec(&self, name: &str, kind: Option<TaskType>) -> Result<TaskSpec, String> {
        let entry = self.tasks.get(name).cloned().unwrap_or_default();
        let kind = match (kind, entry.kind.as_deref()) {
            (Some(k), _) => k,
            (None, Some(s)) => {
                TaskType::parse(s).ok_or_else(|| format!("task {name}: unknown type `{s}`"))?
            }
            (None, None) => {
                return Err(format!(
                    "unknown task `{name}`: give its type with --task-type"
                ))
            }
        };
        let key = serde_json::to_value(kind).expect("serialisable");
        let default = self
            .defaults
            .get(key.as_str().expect("string"))
            .cloned()
            .unwrap_or_default();
        let query = entry.query.or(default.query).unwrap_or_default();
        let corpus = entry
            .corpus
            .or(default.corpus)
            .unwrap_or_else(|| query.clone());
        Ok(TaskSpec {
            name: name.to_string(),
            kind,
            query_instruction: query,
            corpus_instruction: corpus,
            ignore_identical_ids: entry.ignore_identical_ids,
            summeval_v1: entry.summeval_v1,
            dataset: entry.dataset,
        })
    }
}

fn merge_entry(into: &mut TaskEntry, from: TaskEntry) {
    into.kind = from.kind.or(into.kind.take());
    into.query = from.query.or(into.query.take());
    into.corpus = from.corpus.or(into.corpus.take());
    into.ignore_identical_ids |= from.ignore_identical_ids;
    into.summeval_v1 |= from.summeval_v1;
    into.dataset = from.dataset.or(into.dataset.take());
}

/// Everything needed to run one task.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub name: String,
    pub kind: TaskType,
    /// Instruction for queries, and for every text of symmetric task types.
    pub query_instruction: String,
    /// Instruction for documents (retrieval and reranking).
    pub corpus_instruction: String,
    /// mteb's `ignore_identical_ids`: a document with the query's id is never retrieved.
    pub ignore_identical_ids: bool,
    /// mteb 2.x's task `SummEval` still uses the v1 (buggy) averaging.
    pub summeval_v1: bool,
    /// The hub dataset to fetch when the data is not on disk.
    pub dataset: Option<DatasetRef>,
}

/// One split's scores in mteb 2.x's keys, `main_score` included.
#[derive(Debug, Clone)]
pub struct TaskResult {
    pub main_score: f64,
    pub scores: Map<String, Value>,
}

/// mteb's seed (`AbsTask.seed`), for undersampling and k-means.
const SEED: u32 = 42;

/// Runs one task on its loaded data. Each task type fills mteb 2.x's score keys and names the
/// one that is its main score (for some types the protocol decides which).
pub fn run_task(
    spec: &TaskSpec,
    data: &TaskData,
    embedder: &mut dyn Embedder,
    protocol: Protocol,
) -> Result<TaskResult, EvalError> {
    let mut m = Map::new();
    let main = match data {
        TaskData::Sts { pairs, scores } => run_sts(spec, pairs, scores, embedder, &mut m),
        TaskData::PairClassification { pairs, labels } => {
            run_pair_classification(spec, pairs, labels, embedder, protocol, &mut m)
        }
        TaskData::Classification { train, test } => {
            run_classification(spec, train, test, embedder, &mut m)
        }
        TaskData::Clustering { sets } => run_clustering(spec, sets, embedder, protocol, &mut m),
        TaskData::Reranking { instances } => {
            run_reranking(spec, instances, embedder, protocol, &mut m)
        }
        TaskData::Summarization { texts } => run_summarization(spec, texts, embedder, &mut m),
        TaskData::Retrieval {
            corpus,
            queries,
            qrels,
        } => run_retrieval(spec, corpus, queries, qrels, embedder, &mut m),
        TaskData::Billboard { refs, hyps, human } => {
            run_billboard(spec, refs, hyps, human, embedder, &mut m)
        }
    }?;
    with_main_score(spec, m, main)
}

/// Copies the main score to `main_score`, the key mteb's readers and the summary use.
fn with_main_score(
    spec: &TaskSpec,
    mut m: Map<String, Value>,
    main: &str,
) -> Result<TaskResult, EvalError> {
    let main_score = m
        .get(main)
        .and_then(Value::as_f64)
        .ok_or_else(|| EvalError::Task {
            task: spec.name.clone(),
            msg: format!("no {main} computed"),
        })?;
    m.insert("main_score".into(), num(main_score));
    Ok(TaskResult {
        main_score,
        scores: m,
    })
}

/// Correlations of each similarity with the gold scores; distances are negated so that higher
/// means more similar, as mteb does.
fn run_sts(
    spec: &TaskSpec,
    pairs: &[(String, String)],
    gold: &[f64],
    embedder: &mut dyn Embedder,
    m: &mut Map<String, Value>,
) -> Result<&'static str, EvalError> {
    let s = pair_scores(spec, pairs, embedder)?;
    let neg = |v: &[f64]| v.iter().map(|x| -x).collect::<Vec<_>>();
    for (name, v) in [
        ("cosine", s.cosine.clone()),
        ("manhattan", neg(&s.manhattan)),
        ("euclidean", neg(&s.euclidean)),
    ] {
        m.insert(
            format!("{name}_pearson"),
            num(correlation::pearson(gold, &v)),
        );
        m.insert(
            format!("{name}_spearman"),
            num(correlation::spearman(gold, &v)),
        );
    }
    // INSTRUCTOR's similarity function is cosine.
    m.insert("pearson".into(), m["cosine_pearson"].clone());
    m.insert("spearman".into(), m["cosine_spearman"].clone());
    Ok("cosine_spearman")
}

/// Best-threshold scores and AP per similarity, and their maxima (`max_*`) over similarities.
fn run_pair_classification(
    spec: &TaskSpec,
    pairs: &[(String, String)],
    labels: &[bool],
    embedder: &mut dyn Embedder,
    protocol: Protocol,
    m: &mut Map<String, Value>,
) -> Result<&'static str, EvalError> {
    let s = pair_scores(spec, pairs, embedder)?;
    let split_ties = protocol == Protocol::Paper;
    let mut best: BTreeMap<&str, f64> = BTreeMap::new();
    for (name, v, high) in [
        ("similarity", &s.cosine, true),
        ("cosine", &s.cosine, true),
        ("manhattan", &s.manhattan, false),
        ("euclidean", &s.euclidean, false),
        ("dot", &s.dot, true),
    ] {
        let t = pair::best_thresholds(v, labels, high, split_ties);
        let signed: Vec<f64> = v.iter().map(|x| if high { *x } else { -x }).collect();
        let ap = pair::average_precision(&signed, labels);
        for (metric, value) in [
            ("accuracy", t.accuracy),
            ("f1", t.f1),
            ("precision", t.precision),
            ("recall", t.recall),
            ("ap", ap),
        ] {
            m.insert(format!("{name}_{metric}"), num(value));
            let b = best.entry(metric).or_insert(f64::NEG_INFINITY);
            *b = b.max(value);
        }
        m.insert(
            format!("{name}_accuracy_threshold"),
            num(t.accuracy_threshold),
        );
        m.insert(format!("{name}_f1_threshold"), num(t.f1_threshold));
    }
    for (metric, value) in best {
        m.insert(format!("max_{metric}"), num(value));
    }
    Ok(match protocol {
        Protocol::Mteb => "max_ap",
        Protocol::Paper => "cosine_ap",
    })
}

/// Logistic regression on undersampled training sets (mteb's 10 experiments of 8 per label),
/// scores averaged over the experiments and kept per experiment.
fn run_classification(
    spec: &TaskSpec,
    train: &[(String, String)],
    test: &[(String, String)],
    embedder: &mut dyn Embedder,
    m: &mut Map<String, Value>,
) -> Result<&'static str, EvalError> {
    let all = indices(train.iter().chain(test).map(|(_, l)| l));
    let (train_y, test_y) = all.split_at(train.len());
    let selections = classification::undersample(train_y, 8, 10, SEED);
    // Embed only the training examples some experiment uses, as mteb does.
    let mut union: Vec<usize> = selections
        .iter()
        .flatten()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    union.sort_unstable();
    let query = &spec.query_instruction;
    let train_e = embedder.embed(&inputs(query, union.iter().map(|&i| &train[i].0)), "train")?;
    let test_e = embedder.embed(&inputs(query, test.iter().map(|(t, _)| t)), "test")?;
    let row_of: HashMap<usize, usize> = union.iter().enumerate().map(|(r, &i)| (i, r)).collect();
    let test_rows: Vec<&[f32]> = rows(&test_e).collect();
    let per_exp: Vec<_> = selections
        .iter()
        .map(|sel| {
            let x: Vec<Vec<f32>> = sel
                .iter()
                .map(|&i| train_e.row(row_of[&i]).to_vec())
                .collect();
            let y: Vec<usize> = sel.iter().map(|&i| train_y[i]).collect();
            classification::classification_scores(test_y, &fit_predict(&x, &y, &test_rows))
        })
        .collect();
    insert_classification(m, &per_exp);
    Ok("accuracy")
}

/// One experiment's test predictions (labels `y` as in the task). Classes are those present in
/// the sample (scikit-learn's `classes_`); with one class there is nothing to fit.
fn fit_predict(x: &[Vec<f32>], y: &[usize], test: &[&[f32]]) -> Vec<usize> {
    let mut classes: Vec<usize> = y
        .iter()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    classes.sort_unstable();
    if classes.len() < 2 {
        return vec![classes[0]; test.len()];
    }
    let local: HashMap<usize, usize> = classes.iter().enumerate().map(|(k, &c)| (c, k)).collect();
    let y: Vec<usize> = y.iter().map(|c| local[c]).collect();
    let model = classification::LogisticRegression::fit(x, &y, classes.len(), 1.0);
    test.iter().map(|r| classes[model.predict(r)]).collect()
}

/// mteb 2.x's classification keys: the mean over experiments, and `scores_per_experiment`.
fn insert_classification(
    m: &mut Map<String, Value>,
    per_exp: &[classification::ClassificationScores],
) {
    let n = per_exp.len() as f64;
    type Field = (
        &'static str,
        fn(&classification::ClassificationScores) -> f64,
    );
    let fields: [Field; 7] = [
        ("accuracy", |s| s.accuracy),
        ("f1", |s| s.f1),
        ("f1_weighted", |s| s.f1_weighted),
        ("precision", |s| s.precision),
        ("precision_weighted", |s| s.precision_weighted),
        ("recall", |s| s.recall),
        ("recall_weighted", |s| s.recall_weighted),
    ];
    let mut experiments: Vec<Map<String, Value>> = vec![Map::new(); per_exp.len()];
    for (name, f) in fields {
        m.insert(name.into(), num(per_exp.iter().map(f).sum::<f64>() / n));
        for (e, s) in experiments.iter_mut().zip(per_exp) {
            e.insert(name.into(), num(f(s)));
        }
    }
    if per_exp.iter().all(|s| s.ap.is_some()) {
        let ap = per_exp.iter().filter_map(|s| s.ap).sum::<f64>() / n;
        m.insert("ap".into(), num(ap));
        m.insert("ap_weighted".into(), num(ap));
    }
    m.insert("scores_per_experiment".into(), json!(experiments));
}

/// V-measure of k-means (k: the set's label count) per set, with mean and standard deviation.
fn run_clustering(
    spec: &TaskSpec,
    sets: &[Vec<(String, String)>],
    embedder: &mut dyn Embedder,
    protocol: Protocol,
    m: &mut Map<String, Value>,
) -> Result<&'static str, EvalError> {
    let mut vs = vec![];
    for (i, set) in sets.iter().enumerate() {
        let stage = format!("set {}/{}", i + 1, sets.len());
        vs.push(cluster_set(spec, set, &stage, embedder, protocol)?);
    }
    let mean_v = mean(&vs);
    let squares: Vec<f64> = vs.iter().map(|v| (v - mean_v).powi(2)).collect();
    m.insert("v_measure".into(), num(mean_v));
    m.insert("v_measure_std".into(), num(mean(&squares).sqrt()));
    m.insert("v_measures".into(), json!(vs));
    Ok("v_measure")
}

/// One clustering set's V-measure.
fn cluster_set(
    spec: &TaskSpec,
    set: &[(String, String)],
    stage: &str,
    embedder: &mut dyn Embedder,
    protocol: Protocol,
) -> Result<f64, EvalError> {
    let truth = indices(set.iter().map(|(_, l)| l));
    let k = truth.iter().collect::<HashSet<_>>().len();
    if k <= 1 {
        return Ok(1.0); // mteb: one label, nothing to cluster, V-measure 1
    }
    let mut inputs = inputs(&spec.query_instruction, set.iter().map(|(t, _)| t));
    if protocol == Protocol::Paper {
        drop_long_instructions(&mut inputs, embedder)?;
    }
    let e = embedder.embed(&inputs, stage)?;
    let n_init = if protocol == Protocol::Paper { 3 } else { 1 };
    let assign = clustering::mini_batch_kmeans(&rows(&e).collect::<Vec<_>>(), k, 500, n_init, SEED);
    Ok(clustering::v_measure(&truth, &assign))
}

/// mteb 2.x ranks each query's candidates as retrieval (its keys), the paper's fork by sklearn
/// AP and MRR@10 per query (`map`, `mrr`); both are reported, the protocol picks the main one.
fn run_reranking(
    spec: &TaskSpec,
    instances: &[RerankInstance],
    embedder: &mut dyn Embedder,
    protocol: Protocol,
    m: &mut Map<String, Value>,
) -> Result<&'static str, EvalError> {
    // mteb 2.x drops instances without a positive or a negative, then ranks each query's
    // candidates with ids `apositive_…` / `negative_…` (which decide ties in trec order).
    let kept: Vec<_> = instances
        .iter()
        .filter(|x| !x.positive.is_empty() && !x.negative.is_empty())
        .collect();
    let queries = inputs(&spec.query_instruction, kept.iter().map(|x| &x.query));
    let queries = embedder.embed(&queries, "queries")?;
    let docs = kept
        .iter()
        .flat_map(|x| x.positive.iter().chain(&x.negative));
    let docs = embedder.embed(&inputs(&spec.corpus_instruction, docs), "candidates")?;
    let (mut per_query, mut aps, mut mrrs, mut offset) = (vec![], vec![], vec![], 0);
    for (qi, x) in kept.iter().enumerate() {
        let n = x.positive.len() + x.negative.len();
        let scores: Vec<f64> = (offset..offset + n)
            .map(|d| cosine(queries.row(qi), docs.row(d)))
            .collect();
        offset += n;
        let relevant: Vec<bool> = (0..n).map(|i| i < x.positive.len()).collect();
        per_query.push(ranking::rerank_instance_as_retrieval(
            qi,
            &scores,
            x.positive.len(),
            &ranking::K_VALUES,
        ));
        let (ap, mrr) = ranking::rerank_instance(&scores, &relevant, 10);
        aps.push(ap);
        mrrs.push(mrr);
    }
    insert_ranking(m, ranking::mean_metrics(&per_query));
    m.insert("map".into(), num(mean(&aps)));
    m.insert("mrr".into(), num(mean(&mrrs)));
    Ok(match protocol {
        Protocol::Mteb => "map_at_1000",
        Protocol::Paper => "map",
    })
}

/// Correlations of machine summaries' similarity to the human ones with the human relevance.
/// mteb 2.x's `SummEval` keeps the v1 averaging (a bug, kept for comparability) as its main
/// keys, with the fixed one under `fixed_`; other tasks report the fixed one.
fn run_summarization(
    spec: &TaskSpec,
    texts: &[SummaryText],
    embedder: &mut dyn Embedder,
    m: &mut Map<String, Value>,
) -> Result<&'static str, EvalError> {
    let query = &spec.query_instruction;
    let human = inputs(query, texts.iter().flat_map(|t| &t.human));
    let machine = inputs(query, texts.iter().flat_map(|t| &t.machine));
    let human = embedder.embed(&human, "human summaries")?;
    let machine = embedder.embed(&machine, "machine summaries")?;
    let human = groups(&human, texts.iter().map(|t| t.human.len()));
    let machine = groups(&machine, texts.iter().map(|t| t.machine.len()));
    let texts: Vec<summarization::Text> = texts
        .iter()
        .zip(human.into_iter().zip(machine))
        .map(|(t, (human, machine))| summarization::Text {
            human,
            machine,
            gold: t.relevance.clone(),
        })
        .collect();
    let s = summarization::evaluate(&texts);
    if spec.summeval_v1 {
        insert_correlations(m, "", &s.summeval_v1);
        insert_correlations(m, "fixed_", &s.fixed);
    } else {
        insert_correlations(m, "", &s.fixed);
    }
    insert_correlations(m, "summeval_v1_", &s.summeval_v1);
    Ok("cosine_spearman")
}

/// One averaging's summarization keys under `prefix`; the unqualified ones are cosine's.
fn insert_correlations(m: &mut Map<String, Value>, prefix: &str, c: &summarization::Correlations) {
    for (k, v) in [
        ("cosine_spearman", c.cosine_spearman),
        ("cosine_pearson", c.cosine_pearson),
        ("dot_spearman", c.dot_spearman),
        ("dot_pearson", c.dot_pearson),
        ("spearman", c.cosine_spearman),
        ("pearson", c.cosine_pearson),
    ] {
        m.insert(format!("{prefix}{k}"), num(v));
    }
}

/// Exact nearest-neighbour retrieval by cosine over the corpus, scored with mteb 2.x's keys.
fn run_retrieval(
    spec: &TaskSpec,
    corpus: &[(String, String)],
    queries: &[(String, String)],
    qrels: &HashMap<String, HashMap<String, i64>>,
    embedder: &mut dyn Embedder,
    m: &mut Map<String, Value>,
) -> Result<&'static str, EvalError> {
    // mteb 2.x evaluates only queries with judgements.
    let queries: Vec<&(String, String)> = queries
        .iter()
        .filter(|(id, _)| qrels.get(id).is_some_and(|r| !r.is_empty()))
        .collect();
    let q_inputs = inputs(&spec.query_instruction, queries.iter().map(|(_, t)| t));
    let q_e = embedder.embed(&q_inputs, "queries")?;
    let doc_ids: Vec<String> = corpus.iter().map(|(id, _)| id.clone()).collect();
    let skip = queries
        .iter()
        .map(|(qid, _)| {
            if spec.ignore_identical_ids {
                doc_ids.iter().position(|d| d == qid)
            } else {
                None
            }
        })
        .collect();
    let mut top = ranking::TopK::new(
        *ranking::K_VALUES.last().expect("non-empty"),
        &doc_ids,
        skip,
    );
    // Embed and score the corpus chunk by chunk so that only one chunk's embeddings and the
    // per-query heaps are held at once.
    const CHUNK: usize = 50_000;
    for (c, chunk) in corpus.chunks(CHUNK).enumerate() {
        let docs = inputs(&spec.corpus_instruction, chunk.iter().map(|(_, t)| t));
        let stage = format!("corpus {}/{}", c + 1, corpus.len().div_ceil(CHUNK));
        let d_e = embedder.embed(&docs, &stage)?;
        top.push_chunk(rows(&q_e), c * CHUNK, &rows(&d_e).collect::<Vec<_>>());
    }
    let per_query: Vec<_> = queries
        .iter()
        .zip(top.finish())
        .map(|((qid, _), hits)| ranking::evaluate_query(&hits, &qrels[qid], &ranking::K_VALUES))
        .collect();
    insert_ranking(m, ranking::mean_metrics(&per_query));
    Ok("ndcg_at_10")
}

/// mteb 2.x's retrieval keys. Like mteb, nDCG/MAP/recall/precision/hit rate are rounded to 5
/// decimals (pytrec_eval averages, `round(…, 5)`); MRR is not.
fn insert_ranking(m: &mut Map<String, Value>, mean: Option<ranking::QueryMetrics>) {
    let Some(q) = mean else { return };
    let r5 = |v: f64| (v * 1e5).round() / 1e5;
    for (i, k) in ranking::K_VALUES.iter().enumerate() {
        m.insert(format!("ndcg_at_{k}"), num(r5(q.ndcg[i])));
        m.insert(format!("map_at_{k}"), num(r5(q.map[i])));
        m.insert(format!("recall_at_{k}"), num(r5(q.recall[i])));
        m.insert(format!("precision_at_{k}"), num(r5(q.precision[i])));
        m.insert(format!("mrr_at_{k}"), num(q.mrr[i]));
        m.insert(format!("hit_rate_at_{k}"), num(r5(q.hit_rate[i])));
    }
    m.insert("accuracy".into(), m["recall_at_1"].clone());
}

/// The paper's Billboard: Pearson of the hypotheses' similarity to their source's references
/// with the human scores.
fn run_billboard(
    spec: &TaskSpec,
    refs: &[Vec<String>],
    hyps: &[String],
    human: &[f64],
    embedder: &mut dyn Embedder,
    m: &mut Map<String, Value>,
) -> Result<&'static str, EvalError> {
    let query = &spec.query_instruction;
    let r = embedder.embed(&inputs(query, refs.iter().flatten()), "references")?;
    let h = embedder.embed(&inputs(query, hyps), "hypotheses")?;
    let sources = groups(&r, refs.iter().map(Vec::len));
    let hyps: Vec<Vec<f32>> = rows(&h).map(<[f32]>::to_vec).collect();
    let pearson = billboard::evaluate(&sources, &hyps, human).map_err(|e| EvalError::Task {
        task: spec.name.clone(),
        msg: e.to_string(),
    })?;
    m.insert("pearson".into(), num(pearson));
    Ok("pearson")
}

/// The paper's mteb fork (its `ClusteringEvaluator`) tokenizes `instruction + sentence` with the
/// model's tokenizer and embeds the sentence with no instruction when that is over this many
/// tokens; mteb 2.x has no such rule.
pub const PAPER_CLUSTERING_MAX_TOKENS: usize = 256;

/// Empties the instruction of every input longer than [`PAPER_CLUSTERING_MAX_TOKENS`]. (The fork
/// counts the raw concatenation; the count here is of the stripped one the model encodes, which
/// differs only when the text has leading or trailing whitespace.)
fn drop_long_instructions(
    inputs: &mut [Input],
    embedder: &mut dyn Embedder,
) -> Result<(), EvalError> {
    let counts = embedder.token_counts(inputs)?;
    for (input, n) in inputs.iter_mut().zip(counts) {
        if n > PAPER_CLUSTERING_MAX_TOKENS {
            input.instruction.clear();
        }
    }
    Ok(())
}

fn num(v: f64) -> Value {
    // JSON has no NaN: mteb's files hold `NaN` there, serde_json writes null.
    json!(v)
}

/// The mean; 0 rather than NaN when there is nothing to average.
fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Each text as an input under `instruction`.
fn inputs<'a>(instruction: &str, texts: impl IntoIterator<Item = &'a String>) -> Vec<Input> {
    texts
        .into_iter()
        .map(|t| Input::new(instruction, t.clone()))
        .collect()
}

fn rows(e: &Embeddings) -> impl Iterator<Item = &[f32]> {
    (0..e.rows).map(move |i| e.row(i))
}

/// Consecutive rows of `e` in groups of `sizes`: texts embedded as one flat batch, back per owner.
fn groups(e: &Embeddings, sizes: impl IntoIterator<Item = usize>) -> Vec<Vec<Vec<f32>>> {
    let mut at = 0;
    sizes
        .into_iter()
        .map(|n| {
            at += n;
            (at - n..at).map(|i| e.row(i).to_vec()).collect()
        })
        .collect()
}

/// Similarities of each pair's embeddings. Both sides are embedded as one batch each (mteb
/// embeds unique texts once; duplicates here are served from the cache at no model cost).
fn pair_scores(
    spec: &TaskSpec,
    pairs: &[(String, String)],
    embedder: &mut dyn Embedder,
) -> Result<PairScores, EvalError> {
    let query = &spec.query_instruction;
    let a = embedder.embed(&inputs(query, pairs.iter().map(|p| &p.0)), "sentence1")?;
    let b = embedder.embed(&inputs(query, pairs.iter().map(|p| &p.1)), "sentence2")?;
    Ok(PairScores::compute(rows(&a), rows(&b)))
}

/// Label strings to indices in scikit-learn's class order (numeric when every label is a
/// number, else lexicographic).
fn indices<'a>(labels: impl Iterator<Item = &'a String> + Clone) -> Vec<usize> {
    let mut uniq: Vec<&String> = labels.clone().collect::<HashSet<_>>().into_iter().collect();
    let numeric: Option<Vec<f64>> = uniq.iter().map(|l| l.parse().ok()).collect();
    match numeric {
        Some(_) => uniq.sort_by(|a, b| {
            a.parse::<f64>()
                .unwrap()
                .total_cmp(&b.parse::<f64>().unwrap())
        }),
        None => uniq.sort(),
    }
    let pos: HashMap<&String, usize> = uniq.iter().enumerate().map(|(i, l)| (*l, i)).collect();
    labels.map(|l| pos[l]).collect()
}
