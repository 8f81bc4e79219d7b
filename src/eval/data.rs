//! Local datasets in MTEB's layouts: `DIR/<Task>/<split>.jsonl` (or `.jsonl.gz`) with the columns
//! mteb uses per task type, and BEIR folders for retrieval (`corpus.jsonl`, `queries.jsonl`,
//! `qrels/<split>.tsv`), and Billboard's files. Parquet is not read (the `parquet` crate costs
//! too much build time for it); `datasets` can export any HF dataset to jsonl.
//! Errors name the file and line.

use super::TaskType;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {msg}")]
    Malformed {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{dir}: no {name}.jsonl or {name}.jsonl.gz")]
    Missing { dir: PathBuf, name: String },
}

type Result<T> = std::result::Result<T, DataError>;

/// A classification or clustering label: mteb datasets use ints or strings.
pub type Label = String;

/// One split of a task, as its task type needs it.
#[derive(Debug, Clone)]
pub enum TaskData {
    Sts {
        pairs: Vec<(String, String)>,
        scores: Vec<f64>,
    },
    PairClassification {
        pairs: Vec<(String, String)>,
        labels: Vec<bool>,
    },
    Classification {
        train: Vec<(String, Label)>,
        test: Vec<(String, Label)>,
    },
    Clustering {
        sets: Vec<Vec<(String, Label)>>,
    },
    Reranking {
        instances: Vec<RerankInstance>,
    },
    Summarization {
        texts: Vec<SummaryText>,
    },
    Retrieval {
        corpus: Vec<(String, String)>,
        queries: Vec<(String, String)>,
        qrels: HashMap<String, HashMap<String, i64>>,
    },
    /// The references of each source, and the hypotheses (in source order, the same number per
    /// source) with their human scores.
    Billboard {
        refs: Vec<Vec<String>>,
        hyps: Vec<String>,
        human: Vec<f64>,
    },
}

#[derive(Debug, Clone)]
pub struct RerankInstance {
    pub query: String,
    pub positive: Vec<String>,
    pub negative: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SummaryText {
    pub human: Vec<String>,
    pub machine: Vec<String>,
    pub relevance: Vec<f64>,
}

/// The files [`load`] reads for `kind` and `split`, relative to the task's folder, as groups of
/// alternative names of which one must be there (`test.jsonl` or `test.jsonl.gz`): what a
/// caller fetches when the folder is not on disk.
pub fn files(kind: TaskType, name: &str, split: &str) -> Vec<Vec<String>> {
    match kind {
        TaskType::Billboard => billboard_files(name)
            .iter()
            .map(|f| jsonl_names(f).to_vec())
            .collect(),
        TaskType::Retrieval => vec![
            jsonl_names("corpus").to_vec(),
            jsonl_names("queries").to_vec(),
            vec![format!("qrels/{split}.tsv")],
        ],
        TaskType::Classification if split != "train" => {
            vec![jsonl_names("train").to_vec(), jsonl_names(split).to_vec()]
        }
        _ => vec![jsonl_names(split).to_vec()],
    }
}

/// `name.jsonl`, then `name.jsonl.gz`: the names a table is read from, in order of preference.
fn jsonl_names(name: &str) -> [String; 2] {
    [format!("{name}.jsonl"), format!("{name}.jsonl.gz")]
}

/// The INSTRUCTOR repository's Billboard files in `data/<name>/`: `<name>_references.jsonl`
/// (`{"refs": [...]}` per source) and `<name>_THumB-1.0.jsonl` (`{"hyp", "human_score"}` per
/// hypothesis).
fn billboard_files(name: &str) -> [String; 2] {
    [format!("{name}_references"), format!("{name}_THumB-1.0")]
}

/// Reads `split` of task `name` in `dir` (the task's own folder).
pub fn load(dir: &Path, name: &str, kind: TaskType, split: &str) -> Result<TaskData> {
    Ok(match kind {
        TaskType::Billboard => {
            let [refs, hyps] = billboard_files(name).map(|f| rows(dir, &f));
            let refs = refs?
                .into_iter()
                .map(|r| r.strs_or_str("refs"))
                .collect::<Result<_>>()?;
            let (mut texts, mut human) = (vec![], vec![]);
            for r in hyps? {
                texts.push(r.str("hyp")?);
                human.push(r.num("human_score")?);
            }
            TaskData::Billboard {
                refs,
                hyps: texts,
                human,
            }
        }
        TaskType::Sts => {
            let (mut pairs, mut scores) = (vec![], vec![]);
            for row in rows(dir, split)? {
                pairs.push((row.str("sentence1")?, row.str("sentence2")?));
                scores.push(row.num("score")?);
            }
            TaskData::Sts { pairs, scores }
        }
        TaskType::PairClassification => {
            // mteb's pair-classification datasets hold the whole split in one row of lists;
            // plain one-pair rows are accepted too.
            let (mut pairs, mut labels) = (vec![], vec![]);
            for row in rows(dir, split)? {
                let (s1, s2, l) = (
                    row.strs_or_str("sentence1")?,
                    row.strs_or_str("sentence2")?,
                    row.nums_or_num(&["labels", "label"])?,
                );
                if s1.len() != s2.len() || s1.len() != l.len() {
                    return Err(row.err("sentence1, sentence2 and labels differ in length"));
                }
                pairs.extend(s1.into_iter().zip(s2));
                labels.extend(l.into_iter().map(|v| v == 1.0));
            }
            TaskData::PairClassification { pairs, labels }
        }
        TaskType::Classification => {
            let read = |split: &str| -> Result<Vec<(String, Label)>> {
                rows(dir, split)?
                    .into_iter()
                    .map(|r| Ok((r.str("text")?, r.label("label")?)))
                    .collect()
            };
            TaskData::Classification {
                train: read("train")?,
                test: read(split)?,
            }
        }
        TaskType::Clustering => {
            let mut sets = vec![];
            for row in rows(dir, split)? {
                let s = row.strs_or_str("sentences")?;
                let l = row.labels("labels")?;
                if s.len() != l.len() {
                    return Err(row.err("sentences and labels differ in length"));
                }
                sets.push(s.into_iter().zip(l).collect());
            }
            TaskData::Clustering { sets }
        }
        TaskType::Reranking => TaskData::Reranking {
            instances: rows(dir, split)?
                .into_iter()
                .map(|r| {
                    Ok(RerankInstance {
                        query: r.str("query")?,
                        positive: r.strs_or_str("positive")?,
                        negative: r.strs_or_str("negative")?,
                    })
                })
                .collect::<Result<_>>()?,
        },
        TaskType::Summarization => TaskData::Summarization {
            texts: rows(dir, split)?
                .into_iter()
                .map(|r| {
                    let t = SummaryText {
                        human: r.strs_or_str("human_summaries")?,
                        machine: r.strs_or_str("machine_summaries")?,
                        relevance: r.nums_or_num(&["relevance"])?,
                    };
                    if t.machine.len() != t.relevance.len() {
                        return Err(r.err("machine_summaries and relevance differ in length"));
                    }
                    Ok(t)
                })
                .collect::<Result<_>>()?,
        },
        TaskType::Retrieval => load_beir(dir, split)?,
    })
}

/// BEIR: corpus text is `title + " " + text` (stripped; just `text` without a title), as mteb
/// 2.x joins them; qrels are `query-id corpus-id score` with a header line.
fn load_beir(dir: &Path, split: &str) -> Result<TaskData> {
    let corpus = rows(dir, "corpus")?
        .into_iter()
        .map(|r| {
            let text = r.str("text")?;
            let title = r.opt_str("title");
            let joined = match title {
                Some(t) if !t.is_empty() => format!("{t} {text}").trim().to_string(),
                _ => text.trim().to_string(),
            };
            Ok((r.id("_id")?, joined))
        })
        .collect::<Result<Vec<_>>>()?;
    let queries = rows(dir, "queries")?
        .into_iter()
        .map(|r| Ok((r.id("_id")?, r.str("text")?)))
        .collect::<Result<Vec<_>>>()?;
    let path = dir.join("qrels").join(format!("{split}.tsv"));
    let text = std::fs::read_to_string(&path).map_err(|source| DataError::Io {
        path: path.clone(),
        source,
    })?;
    let mut qrels: HashMap<String, HashMap<String, i64>> = HashMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let bad = |msg: &str| DataError::Malformed {
            path: path.clone(),
            line: i + 1,
            msg: msg.to_string(),
        };
        if f.len() < 3 {
            return Err(bad("expected `query-id<TAB>corpus-id<TAB>score`"));
        }
        let score: i64 = f[2]
            .trim()
            .parse()
            .map_err(|_| bad("score is not an integer"))?;
        qrels
            .entry(f[0].to_string())
            .or_default()
            .insert(f[1].to_string(), score);
    }
    Ok(TaskData::Retrieval {
        corpus,
        queries,
        qrels,
    })
}

/// A parsed JSON line and where it came from.
struct Row {
    path: PathBuf,
    line: usize,
    value: Value,
}

impl Row {
    fn err(&self, msg: impl Into<String>) -> DataError {
        DataError::Malformed {
            path: self.path.clone(),
            line: self.line,
            msg: msg.into(),
        }
    }
    fn field(&self, key: &str) -> Result<&Value> {
        self.value
            .get(key)
            .ok_or_else(|| self.err(format!("missing field `{key}`")))
    }
    fn str(&self, key: &str) -> Result<String> {
        self.field(key)?
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.err(format!("`{key}` is not a string")))
    }
    fn opt_str(&self, key: &str) -> Option<String> {
        self.value.get(key)?.as_str().map(str::to_string)
    }
    /// Ids may be numbers in some exports; trec_eval compares them as strings.
    fn id(&self, key: &str) -> Result<String> {
        match self.field(key)? {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(self.err(format!("`{key}` is not a string or number"))),
        }
    }
    fn num(&self, key: &str) -> Result<f64> {
        self.field(key)?
            .as_f64()
            .ok_or_else(|| self.err(format!("`{key}` is not a number")))
    }
    fn label(&self, key: &str) -> Result<Label> {
        label_of(self.field(key)?).ok_or_else(|| self.err(format!("`{key}` is not a label")))
    }
    fn labels(&self, key: &str) -> Result<Vec<Label>> {
        let v = self.field(key)?;
        let items = v.as_array().map(|a| a.iter().collect()).unwrap_or(vec![v]);
        items
            .into_iter()
            .map(|x| label_of(x).ok_or_else(|| self.err(format!("`{key}` holds a non-label"))))
            .collect()
    }
    fn strs_or_str(&self, key: &str) -> Result<Vec<String>> {
        let v = self.field(key)?;
        match v {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| self.err(format!("`{key}` holds a non-string")))
                })
                .collect(),
            _ => Err(self.err(format!("`{key}` is not a string or list of strings"))),
        }
    }
    /// The first of `keys` present, as a number or list of numbers.
    fn nums_or_num(&self, keys: &[&str]) -> Result<Vec<f64>> {
        let key = keys
            .iter()
            .find(|k| self.value.get(**k).is_some())
            .ok_or_else(|| self.err(format!("missing field `{}`", keys[0])))?;
        let v = self.field(key)?;
        let items = v.as_array().map(|a| a.iter().collect()).unwrap_or(vec![v]);
        items
            .into_iter()
            .map(|x| {
                x.as_f64()
                    .ok_or_else(|| self.err(format!("`{key}` holds a non-number")))
            })
            .collect()
    }
}

fn label_of(v: &Value) -> Option<Label> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The JSON lines of `dir/name.jsonl` or `dir/name.jsonl.gz`.
fn rows(dir: &Path, name: &str) -> Result<Vec<Row>> {
    let [plain, gz] = jsonl_names(name).map(|n| dir.join(n));
    let open = |path: &PathBuf| {
        std::fs::File::open(path).map_err(|source| DataError::Io {
            path: path.clone(),
            source,
        })
    };
    let (path, reader): (PathBuf, Box<dyn Read>) = if plain.exists() {
        let f = open(&plain)?;
        (plain, Box::new(f))
    } else if gz.exists() {
        let f = open(&gz)?;
        (gz, Box::new(flate2::read::MultiGzDecoder::new(f)))
    } else {
        return Err(DataError::Missing {
            dir: dir.to_path_buf(),
            name: name.to_string(),
        });
    };
    let mut out = vec![];
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|source| DataError::Io {
            path: path.clone(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line).map_err(|e| DataError::Malformed {
            path: path.clone(),
            line: i + 1,
            msg: e.to_string(),
        })?;
        out.push(Row {
            path: path.clone(),
            line: i + 1,
            value,
        });
    }
    Ok(out)
}

/// A task-level failure that is not about a file (e.g. a metric that could not be computed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TaskError(pub String);
