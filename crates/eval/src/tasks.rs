//! Known tasks and what each task type computes, producing mteb 2.x's score keys.

use super::data::TaskData;
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

/// Runs one task on its loaded data.
pub fn run_task(
    spec: &TaskSpec,
    data: &TaskData,
    embedder: &mut dyn Embedder,
    protocol: Protocol,
) -> Result<TaskResult, EvalError> {
    let q = |texts: &[&String]| -> Vec<Input> {
        texts
            .iter()
            .map(|t| Input::new(spec.query_instruction.clone(), (*t).clone()))
            .collect()
    };
    let mut m = Map::new();
    let main = match data {
        TaskData::Sts { pairs, scores } => {
            let (e1, e2) = embed_pairs(embedder, pairs, &q)?;
            let s = PairScores::compute(rows(&e1), rows(&e2));
            let neg = |v: &[f64]| v.iter().map(|x| -x).collect::<Vec<_>>();
            for (name, v) in [
                ("cosine", s.cosine.clone()),
                ("manhattan", neg(&s.manhattan)),
                ("euclidean", neg(&s.euclidean)),
            ] {
                m.insert(
                    format!("{name}_pearson"),
                    num(correlation::pearson(scores, &v)),
                );
                m.insert(
                    format!("{name}_spearman"),
                    num(correlation::spearman(scores, &v)),
                );
            }
            // INSTRUCTOR's similarity function is cosine.
            m.insert("pearson".into(), m["cosine_pearson"].clone());
            m.insert("spearman".into(), m["cosine_spearman"].clone());
            "cosine_spearman".to_string()
        }
        TaskData::PairClassification { pairs, labels } => {
            let (e1, e2) = embed_pairs(embedder, pairs, &q)?;
            let s = PairScores::compute(rows(&e1), rows(&e2));
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
            match protocol {
                Protocol::Mteb => "max_ap",
                Protocol::Paper => "cosine_ap",
            }
            .to_string()
        }
        TaskData::Classification { train, test } => {
            classify(spec, train, test, embedder, &mut m)?;
            "accuracy".to_string()
        }
        TaskData::Clustering { sets } => {
            let mut vs = vec![];
            for (i, set) in sets.iter().enumerate() {
                let truth = indices(set.iter().map(|(_, l)| l));
                let k = truth.iter().collect::<HashSet<_>>().len();
                if k <= 1 {
                    vs.push(1.0); // mteb: one label, nothing to cluster, V-measure 1
                    continue;
                }
                let texts: Vec<&String> = set.iter().map(|(t, _)| t).collect();
                let mut inputs = q(&texts);
                if protocol == Protocol::Paper {
                    drop_long_instructions(&mut inputs, embedder)?;
                }
                let e = embedder.embed(&inputs, &format!("set {}/{}", i + 1, sets.len()))?;
                let n_init = if protocol == Protocol::Paper { 3 } else { 1 };
                let assign = clustering::mini_batch_kmeans(
                    &rows(&e).collect::<Vec<_>>(),
                    k,
                    500,
                    n_init,
                    SEED,
                );
                vs.push(clustering::v_measure(&truth, &assign));
            }
            let mean = vs.iter().sum::<f64>() / vs.len().max(1) as f64;
            let std = (vs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vs.len().max(1) as f64)
                .sqrt();
            m.insert("v_measure".into(), num(mean));
            m.insert("v_measure_std".into(), num(std));
            m.insert("v_measures".into(), json!(vs));
            "v_measure".to_string()
        }
        TaskData::Reranking { instances } => {
            // mteb 2.x drops instances without a positive or a negative, then ranks each
            // query's candidates as retrieval with ids `apositive_…` / `negative_…` (which
            // decide ties in trec order).
            let kept: Vec<_> = instances
                .iter()
                .filter(|x| !x.positive.is_empty() && !x.negative.is_empty())
                .collect();
            let queries = embedder.embed(
                &q(&kept.iter().map(|x| &x.query).collect::<Vec<_>>()),
                "queries",
            )?;
            let docs: Vec<Input> = kept
                .iter()
                .flat_map(|x| x.positive.iter().chain(&x.negative))
                .map(|t| Input::new(spec.corpus_instruction.clone(), t.clone()))
                .collect();
            let docs = embedder.embed(&docs, "candidates")?;
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
            insert_ranking(&mut m, ranking::mean_metrics(&per_query));
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
            m.insert("map".into(), num(mean(&aps)));
            m.insert("mrr".into(), num(mean(&mrrs)));
            match protocol {
                Protocol::Mteb => "map_at_1000",
                Protocol::Paper => "map",
            }
            .to_string()
        }
        TaskData::Summarization { texts } => {
            let human: Vec<&String> = texts.iter().flat_map(|t| &t.human).collect();
            let machine: Vec<&String> = texts.iter().flat_map(|t| &t.machine).collect();
            let (h, mach) = (
                embedder.embed(&q(&human), "human summaries")?,
                embedder.embed(&q(&machine), "machine summaries")?,
            );
            let (mut hi, mut mi) = (0, 0);
            let texts: Vec<summarization::Text> = texts
                .iter()
                .map(|t| {
                    let take = |e: &Embeddings, at: &mut usize, n: usize| -> Vec<Vec<f32>> {
                        let r = (*at..*at + n).map(|i| e.row(i).to_vec()).collect();
                        *at += n;
                        r
                    };
                    summarization::Text {
                        human: take(&h, &mut hi, t.human.len()),
                        machine: take(&mach, &mut mi, t.machine.len()),
                        gold: t.relevance.clone(),
                    }
                })
                .collect();
            let s = summarization::evaluate(&texts);
            let put =
                |m: &mut Map<String, Value>, prefix: &str, c: &summarization::Correlations| {
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
                };
            if spec.summeval_v1 {
                // What mteb 2.x reports for `SummEval` (the bug is kept for comparability).
                put(&mut m, "", &s.summeval_v1);
                put(&mut m, "fixed_", &s.fixed);
            } else {
                put(&mut m, "", &s.fixed);
            }
            put(&mut m, "summeval_v1_", &s.summeval_v1);
            "cosine_spearman".to_string()
        }
        TaskData::Billboard { refs, hyps, human } => {
            let flat: Vec<&String> = refs.iter().flatten().collect();
            let (r, h) = (
                embedder.embed(&q(&flat), "references")?,
                embedder.embed(&q(&hyps.iter().collect::<Vec<_>>()), "hypotheses")?,
            );
            let mut at = 0;
            let sources: Vec<Vec<Vec<f32>>> = refs
                .iter()
                .map(|s| {
                    at += s.len();
                    (at - s.len()..at).map(|i| r.row(i).to_vec()).collect()
                })
                .collect();
            let hyps: Vec<Vec<f32>> = rows(&h).map(<[f32]>::to_vec).collect();
            let pearson =
                billboard::evaluate(&sources, &hyps, human).map_err(|e| EvalError::Task {
                    task: spec.name.clone(),
                    msg: e.to_string(),
                })?;
            m.insert("pearson".into(), num(pearson));
            "pearson".to_string()
        }
        TaskData::Retrieval {
            corpus,
            queries,
            qrels,
        } => {
            retrieve(spec, corpus, queries, qrels, embedder, &mut m)?;
            "ndcg_at_10".to_string()
        }
    };
    let main_score = m
        .get(&main)
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

fn rows(e: &Embeddings) -> impl Iterator<Item = &[f32]> {
    (0..e.rows).map(move |i| e.row(i))
}

/// Embeds both sides of pairs as one batch (mteb embeds unique texts once; duplicates here are
/// served from the cache at no model cost).
fn embed_pairs(
    embedder: &mut dyn Embedder,
    pairs: &[(String, String)],
    q: &dyn Fn(&[&String]) -> Vec<Input>,
) -> Result<(Embeddings, Embeddings), EvalError> {
    let a: Vec<&String> = pairs.iter().map(|p| &p.0).collect();
    let b: Vec<&String> = pairs.iter().map(|p| &p.1).collect();
    Ok((
        embedder.embed(&q(&a), "sentence1")?,
        embedder.embed(&q(&b), "sentence2")?,
    ))
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

fn classify(
    spec: &TaskSpec,
    train: &[(String, String)],
    test: &[(String, String)],
    embedder: &mut dyn Embedder,
    m: &mut Map<String, Value>,
) -> Result<(), EvalError> {
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
    let inputs = |idx: &mut dyn Iterator<Item = &String>| -> Vec<Input> {
        idx.map(|t| Input::new(spec.query_instruction.clone(), t.clone()))
            .collect()
    };
    let train_e = embedder.embed(&inputs(&mut union.iter().map(|&i| &train[i].0)), "train")?;
    let test_e = embedder.embed(&inputs(&mut test.iter().map(|(t, _)| t)), "test")?;
    let row_of: HashMap<usize, usize> = union.iter().enumerate().map(|(r, &i)| (i, r)).collect();
    let test_rows: Vec<&[f32]> = rows(&test_e).collect();
    let mut per_exp = vec![];
    for sel in &selections {
        // Classes are those present in this experiment's sample (scikit-learn's `classes_`).
        let mut classes: Vec<usize> = sel
            .iter()
            .map(|&i| train_y[i])
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        classes.sort_unstable();
        let local: HashMap<usize, usize> =
            classes.iter().enumerate().map(|(k, &c)| (c, k)).collect();
        let x: Vec<Vec<f32>> = sel
            .iter()
            .map(|&i| train_e.row(row_of[&i]).to_vec())
            .collect();
        let y: Vec<usize> = sel.iter().map(|&i| local[&train_y[i]]).collect();
        let pred: Vec<usize> = if classes.len() < 2 {
            vec![classes[0]; test_rows.len()]
        } else {
            let model = classification::LogisticRegression::fit(&x, &y, classes.len(), 1.0);
            test_rows
                .iter()
                .map(|r| classes[model.predict(r)])
                .collect()
        };
        per_exp.push(classification::classification_scores(test_y, &pred));
    }
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
        for (e, s) in experiments.iter_mut().zip(&per_exp) {
            e.insert(name.into(), num(f(s)));
        }
    }
    if per_exp.iter().all(|s| s.ap.is_some()) {
        let ap = per_exp.iter().filter_map(|s| s.ap).sum::<f64>() / n;
        m.insert("ap".into(), num(ap));
        m.insert("ap_weighted".into(), num(ap));
    }
    m.insert("scores_per_experiment".into(), json!(experiments));
    Ok(())
}

fn retrieve(
    spec: &TaskSpec,
    corpus: &[(String, String)],
    queries: &[(String, String)],
    qrels: &HashMap<String, HashMap<String, i64>>,
    embedder: &mut dyn Embedder,
    m: &mut Map<String, Value>,
) -> Result<(), EvalError> {
    // mteb 2.x evaluates only queries with judgements.
    let queries: Vec<&(String, String)> = queries
        .iter()
        .filter(|(id, _)| qrels.get(id).is_some_and(|r| !r.is_empty()))
        .collect();
    let q_inputs: Vec<Input> = queries
        .iter()
        .map(|(_, t)| Input::new(spec.query_instruction.clone(), t.clone()))
        .collect();
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
        let inputs: Vec<Input> = chunk
            .iter()
            .map(|(_, t)| Input::new(spec.corpus_instruction.clone(), t.clone()))
            .collect();
        let stage = format!("corpus {}/{}", c + 1, corpus.len().div_ceil(CHUNK));
        let d_e = embedder.embed(&inputs, &stage)?;
        top.push_chunk(rows(&q_e), c * CHUNK, &rows(&d_e).collect::<Vec<_>>());
    }
    let per_query: Vec<_> = queries
        .iter()
        .zip(top.finish())
        .map(|((qid, _), hits)| ranking::evaluate_query(&hits, &qrels[qid], &ranking::K_VALUES))
        .collect();
    insert_ranking(m, ranking::mean_metrics(&per_query));
    Ok(())
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
