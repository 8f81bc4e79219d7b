//! Local datasets in MTEB's layouts: `DIR/<Task>/<split>.jsonl` (or `.jsonl.gz`, or parquet as
//! the hub's dataset repos hold it: `<split>.parquet`, `data/<split>-00000-of-0000N.parquet`) with
//! the columns mteb uses per task type; BEIR folders for retrieval (`corpus`, `queries`,
//! `qrels/<split>.tsv`, or mteb 2.x's parquet configs `corpus/`, `queries/`, `qrels/`); and
//! Billboard's files. A parquet row is read as the JSON object of its columns, so both formats go
//! through the same field rules. Errors name the file and line (jsonl) or row (parquet).

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
    #[error("{path}{at}: {msg}")]
    Malformed { path: PathBuf, at: Pos, msg: String },
    /// A parquet file the reader cannot decode (bad footer, a codec not built in, ...).
    #[error("{path}: {msg}")]
    Parquet { path: PathBuf, msg: String },
    #[error("{dir}: none of {}", names.join(", "))]
    Missing { dir: PathBuf, names: Vec<String> },
}

/// Where in a file a record is: a jsonl line or a parquet row, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pos {
    Line(usize),
    Row(usize),
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pos::Line(n) => write!(f, ":{n}"),
            Pos::Row(n) => write!(f, ": row {n}"),
        }
    }
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
/// alternative names of which one must be there (`test.jsonl`, `test.jsonl.gz`, ...): what a
/// caller fetches when the folder is not on disk. A sharded parquet split is named by a glob
/// (`data/test-*.parquet`), which the hub client expands to every shard.
pub fn files(kind: TaskType, name: &str, split: &str) -> Vec<Vec<String>> {
    let table = |t: Table| t.names();
    match kind {
        TaskType::Billboard => billboard_files(name)
            .into_iter()
            .map(|f| table(Table::plain(&f)))
            .collect(),
        TaskType::Retrieval => {
            let [corpus, queries] = beir_tables(split);
            let mut qrels = vec![qrels_tsv(split)];
            qrels.extend(table(qrels_table(split)));
            vec![table(corpus), table(queries), qrels]
        }
        TaskType::Classification if split != "train" => {
            vec![table(Table::split("train")), table(Table::split(split))]
        }
        _ => vec![table(Table::split(split))],
    }
}

/// The files of one split of a hub dataset's config as `datasets` uploads hold it
/// (`<split>.jsonl` at the top, or `<config>/<split>-NNNNN-of-MMMMM.parquet`; `data/` for the
/// default config), as alternative names for the hub client.
pub fn split_files(config: Option<&str>, split: &str) -> Vec<String> {
    config_split(config, split).names()
}

/// The rows of that split in a snapshot folder, as JSON objects in file order.
pub fn split_rows(dir: &Path, config: Option<&str>, split: &str) -> Result<Vec<Value>> {
    Ok(rows(dir, &config_split(config, split))?
        .into_iter()
        .map(|r| r.value)
        .collect())
}

fn config_split(config: Option<&str>, split: &str) -> Table {
    Table {
        stem: split.to_string(),
        shards: vec![format!("{}/{split}", config.unwrap_or("data"))],
    }
}

/// One table of a task, and the names it may have in the task's folder.
struct Table {
    /// `<stem>.jsonl`, `<stem>.jsonl.gz`, `<stem>.parquet`.
    stem: String,
    /// Sharded parquet as `datasets` writes it: `<prefix>-00000-of-00002.parquet`, ...
    shards: Vec<String>,
}

impl Table {
    fn plain(stem: &str) -> Self {
        Self {
            stem: stem.to_string(),
            shards: vec![],
        }
    }

    /// A split of a dataset's default config (`data/<split>-*.parquet` on the hub).
    fn split(split: &str) -> Self {
        Self {
            stem: split.to_string(),
            shards: vec![format!("data/{split}")],
        }
    }

    /// Its names in order of preference, shards as a glob (`data/test-*.parquet`).
    fn names(&self) -> Vec<String> {
        let s = &self.stem;
        let mut v = vec![
            format!("{s}.jsonl"),
            format!("{s}.jsonl.gz"),
            format!("{s}.parquet"),
        ];
        v.extend(self.shards.iter().map(|p| format!("{p}-*.parquet")));
        v
    }
}

/// BEIR's `corpus` and `queries`, and where mteb 2.x's parquet uploads put them: configs
/// `corpus` and `queries` with the evaluation split (`corpus/test-*.parquet`), or BEIR's hub
/// layout with the table as the split (`corpus/corpus-*.parquet`).
fn beir_tables(split: &str) -> [Table; 2] {
    ["corpus", "queries"].map(|t| Table {
        stem: t.to_string(),
        shards: vec![format!("{t}/{split}"), format!("{t}/{t}")],
    })
}

/// BEIR's `qrels/<split>.tsv`, else this table: mteb 2.x's qrels config in parquet (`qrels/` or
/// `default/`), rows `query-id`, `corpus-id`, `score`.
fn qrels_table(split: &str) -> Table {
    Table {
        stem: format!("qrels/{split}"),
        shards: ["qrels", "default"]
            .map(|c| format!("{c}/{split}"))
            .to_vec(),
    }
}

fn qrels_tsv(split: &str) -> String {
    format!("qrels/{split}.tsv")
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
            let [refs, hyps] = billboard_files(name).map(|f| rows(dir, &Table::plain(&f)));
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
            for row in rows(dir, &Table::split(split))? {
                pairs.push((row.str("sentence1")?, row.str("sentence2")?));
                scores.push(row.num("score")?);
            }
            TaskData::Sts { pairs, scores }
        }
        TaskType::PairClassification => {
            // mteb's pair-classification datasets hold the whole split in one row of lists;
            // plain one-pair rows are accepted too.
            let (mut pairs, mut labels) = (vec![], vec![]);
            for row in rows(dir, &Table::split(split))? {
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
                rows(dir, &Table::split(split))?
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
            for row in rows(dir, &Table::split(split))? {
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
            instances: rows(dir, &Table::split(split))?
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
            texts: rows(dir, &Table::split(split))?
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
/// 2.x joins them; qrels are `query-id corpus-id score` (a tsv with a header line, or parquet
/// columns). Ids are `_id` (BEIR) or `id` (mteb 2.x).
fn load_beir(dir: &Path, split: &str) -> Result<TaskData> {
    let [corpus, queries] = beir_tables(split);
    let corpus = rows(dir, &corpus)?
        .into_iter()
        .map(|r| {
            let text = r.str("text")?;
            let title = r.opt_str("title");
            let joined = match title {
                Some(t) if !t.is_empty() => format!("{t} {text}").trim().to_string(),
                _ => text.trim().to_string(),
            };
            Ok((r.id(&["_id", "id"])?, joined))
        })
        .collect::<Result<Vec<_>>>()?;
    let queries = rows(dir, &queries)?
        .into_iter()
        .map(|r| Ok((r.id(&["_id", "id"])?, r.str("text")?)))
        .collect::<Result<Vec<_>>>()?;
    let mut qrels: HashMap<String, HashMap<String, i64>> = HashMap::new();
    let mut add = |q: String, d: String, score: i64| {
        qrels.entry(q).or_default().insert(d, score);
    };
    let tsv = dir.join(qrels_tsv(split));
    if tsv.exists() {
        let text = std::fs::read_to_string(&tsv).map_err(|source| DataError::Io {
            path: tsv.clone(),
            source,
        })?;
        for (i, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            let bad = |msg: &str| DataError::Malformed {
                path: tsv.clone(),
                at: Pos::Line(i + 1),
                msg: msg.to_string(),
            };
            if f.len() < 3 {
                return Err(bad("expected `query-id<TAB>corpus-id<TAB>score`"));
            }
            let score: i64 = f[2]
                .trim()
                .parse()
                .map_err(|_| bad("score is not an integer"))?;
            add(f[0].to_string(), f[1].to_string(), score);
        }
    } else {
        let found = rows(dir, &qrels_table(split)).map_err(|e| match e {
            DataError::Missing { dir, mut names } => {
                names.insert(0, qrels_tsv(split));
                DataError::Missing { dir, names }
            }
            e => e,
        })?;
        for r in found {
            let score = r.num("score")?;
            if score.fract() != 0.0 {
                return Err(r.err("`score` is not an integer"));
            }
            add(
                r.id(&["query-id", "query_id"])?,
                r.id(&["corpus-id", "corpus_id"])?,
                score as i64,
            );
        }
    }
    Ok(TaskData::Retrieval {
        corpus,
        queries,
        qrels,
    })
}

/// A record (a JSON line, or a parquet row as the JSON object of its columns) and where it came
/// from.
struct Row {
    path: PathBuf,
    at: Pos,
    value: Value,
}

impl Row {
    fn err(&self, msg: impl Into<String>) -> DataError {
        DataError::Malformed {
            path: self.path.clone(),
            at: self.at,
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
    /// The first of `keys` present (a column's names across exports); the first one if none is.
    fn first_key<'k>(&self, keys: &[&'k str]) -> &'k str {
        keys.iter()
            .find(|k| self.value.get(**k).is_some())
            .unwrap_or(&keys[0])
    }
    /// The first of `keys` present, as an id. Ids may be numbers in some exports; trec_eval
    /// compares them as strings.
    fn id(&self, keys: &[&str]) -> Result<String> {
        let key = self.first_key(keys);
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
        let key = self.first_key(keys);
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

/// Where a table was found: a jsonl file (maybe gzipped), or parquet (one file, or a split's
/// shards in order).
enum Found {
    Jsonl(PathBuf),
    Parquet(Vec<PathBuf>),
}

/// The first of the table's names present in `dir`.
fn locate(dir: &Path, table: &Table) -> Result<Found> {
    let [jsonl, gz, parquet] =
        [".jsonl", ".jsonl.gz", ".parquet"].map(|ext| dir.join(format!("{}{ext}", table.stem)));
    if jsonl.exists() {
        return Ok(Found::Jsonl(jsonl));
    }
    if gz.exists() {
        return Ok(Found::Jsonl(gz));
    }
    if parquet.exists() {
        return Ok(Found::Parquet(vec![parquet]));
    }
    for prefix in &table.shards {
        if let Some(files) = shards(dir, prefix)? {
            return Ok(Found::Parquet(files));
        }
    }
    Err(DataError::Missing {
        dir: dir.to_path_buf(),
        names: table.names(),
    })
}

/// Every shard `<prefix>-NNNNN-of-MMMMM.parquet` of one split, in order; `None` when there is
/// none; an error naming the missing ones when the set is incomplete.
fn shards(dir: &Path, prefix: &str) -> Result<Option<Vec<PathBuf>>> {
    let (sub, base) = prefix.rsplit_once('/').unwrap_or(("", prefix));
    let folder = dir.join(sub);
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Ok(None);
    };
    let mut found: Vec<(usize, usize, PathBuf)> = vec![];
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let numbers = name
            .strip_prefix(&format!("{base}-"))
            .and_then(|r| r.strip_suffix(".parquet"))
            .and_then(|r| r.split_once("-of-"));
        if let Some((Ok(i), Ok(n))) = numbers.map(|(i, n)| (i.parse(), n.parse())) {
            found.push((i, n, entry.path()));
        }
    }
    let Some(&(_, total, _)) = found.first() else {
        return Ok(None);
    };
    found.sort();
    let complete = found.len() == total
        && found
            .iter()
            .enumerate()
            .all(|(k, (i, n, _))| *i == k && *n == total);
    if !complete {
        let have: Vec<usize> = found.iter().map(|f| f.0).collect();
        return Err(DataError::Missing {
            dir: folder,
            names: (0..total)
                .filter(|i| !have.contains(i))
                .map(|i| format!("{base}-{i:05}-of-{total:05}.parquet"))
                .collect(),
        });
    }
    Ok(Some(found.into_iter().map(|f| f.2).collect()))
}

/// The records of `table` in `dir`, from whichever of its files is there.
fn rows(dir: &Path, table: &Table) -> Result<Vec<Row>> {
    match locate(dir, table)? {
        Found::Jsonl(path) => read_jsonl(&path),
        Found::Parquet(files) => {
            let mut out = vec![];
            for f in files {
                out.extend(read_parquet(&f)?);
            }
            Ok(out)
        }
    }
}

/// The JSON lines of a `.jsonl` or `.jsonl.gz` file; blank lines are skipped.
fn read_jsonl(path: &Path) -> Result<Vec<Row>> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut out = vec![];
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let at = Pos::Line(i + 1);
        let value: Value = serde_json::from_str(&line).map_err(|e| DataError::Malformed {
            path: path.to_path_buf(),
            at,
            msg: e.to_string(),
        })?;
        out.push(Row {
            path: path.to_path_buf(),
            at,
            value,
        });
    }
    Ok(out)
}

/// The rows of a parquet file, each as the JSON object of its columns (lists become arrays,
/// integers and floats numbers). Codecs: snappy (pyarrow's and `datasets`' default), zstd
/// (polars' default), gzip; others (brotli, lz4) are an error naming the file.
#[cfg(not(target_arch = "wasm32"))]
fn read_parquet(path: &Path) -> Result<Vec<Row>> {
    use parquet::file::reader::SerializedFileReader;
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(file).map_err(|e| DataError::Parquet {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    reader
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let at = Pos::Row(i + 1);
            let row = row.map_err(|e| {
                let mut msg = e.to_string();
                if msg.contains("Disabled feature at compile time") {
                    msg += " (this build reads snappy, zstd and gzip parquet)";
                }
                DataError::Malformed {
                    path: path.to_path_buf(),
                    at,
                    msg,
                }
            })?;
            Ok(Row {
                path: path.to_path_buf(),
                at,
                value: row.to_json_value(),
            })
        })
        .collect()
}

/// The browser build reads no dataset folders; the `parquet` crate is native only.
#[cfg(target_arch = "wasm32")]
fn read_parquet(path: &Path) -> Result<Vec<Row>> {
    Err(DataError::Parquet {
        path: path.to_path_buf(),
        msg: "parquet is read by native builds only".into(),
    })
}
