//! Shared by the integration tests: the fixture folders and the Python reference outputs
//! (`tests/fixtures/make_fixtures.py`, computed with transformers' T5EncoderModel).
#![allow(dead_code)]

use instructor::Input;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const MODELS: [&str; 3] = ["tiny-relu-bin", "tiny-gelu-st", "tiny-relu-f16"];

/// The workspace's `tests/fixtures`, from the root package's tests or a crate's under `crates/`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("tests/fixtures"))
        .find(|d| d.is_dir())
        .expect("tests/fixtures above the package")
}

pub fn model_dir(name: &str) -> PathBuf {
    fixtures().join("models").join(name)
}

pub fn cases() -> Vec<Input> {
    std::fs::read_to_string(fixtures().join("cases.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[derive(Deserialize)]
pub struct Case {
    pub input_ids: Vec<u32>,
    pub instruction_len: usize,
    pub embedding: Vec<f32>,
    pub embedding_normalized: Option<Vec<f32>>,
    pub token_embeddings: Option<Vec<Vec<f32>>>,
    pub case: Option<usize>,
}

#[derive(Deserialize)]
pub struct Expected {
    pub dim: usize,
    pub d_model: usize,
    pub max_seq_length: usize,
    pub cases: Vec<Case>,
    pub max_seq_length_16: Vec<Case>,
}

pub fn expected(name: &str) -> Expected {
    let path = fixtures().join("expected").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Every file under `p`, recursively.
pub fn walk(p: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(p)
        .unwrap()
        .flat_map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p)
            } else {
                vec![p]
            }
        })
        .collect()
}

/// The `N texts embedded` count `instructor eval` reports on stderr for `task`.
pub fn embedded(stderr: &str, task: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&format!("{task}: ")))
        .unwrap_or_else(|| panic!("no line for {task} in:\n{stderr}"));
    let (_, rest) = line.split_once("; ").unwrap();
    rest.split(' ').next().unwrap().parse().unwrap()
}

pub const QUERY: &str = "Represent the question for retrieval: ";
pub const DOC: &str = "Represent the document for retrieval: ";
/// Query words and the document words they stand for: learnable only by training (no shared
/// letters to lean on), and it generalises to pairs never seen together.
pub const FROM: [&str; 12] = [
    "capital", "museum", "river", "frog", "stock", "football", "coffee", "battery", "budget",
    "weather", "glucose", "empire",
];
pub const TO: [&str; 12] = [
    "bank",
    "language",
    "title",
    "sentence",
    "document",
    "rates",
    "year",
    "text",
    "learn",
    "convert",
    "said",
    "represent",
];

/// A MEDI-style set: query "a b" → positive "f(a) f(b)", negative another pair's document; two
/// tasks in runs of 16. Returns the data file and held-out (query, positive) pairs.
pub fn synthetic(dir: &Path) -> (PathBuf, Vec<(Input, Input)>) {
    let pairs: Vec<(usize, usize)> = (0..12)
        .flat_map(|i| (0..12).filter(move |&j| j != i).map(move |j| (i, j)))
        .collect();
    let doc = |(i, j): (usize, usize)| Input::new(DOC, format!("{} {}", TO[i], TO[j]));
    let query = |(i, j): (usize, usize)| Input::new(QUERY, format!("{} {}", FROM[i], FROM[j]));
    let (heldout, train): (Vec<_>, Vec<_>) =
        pairs.iter().enumerate().partition(|(k, _)| k % 5 == 0);
    let mut lines = String::new();
    for (n, (k, &p)) in train.iter().enumerate() {
        let neg = pairs[(k * 7 + 3) % pairs.len()];
        let neg = if neg == p {
            pairs[(k + 1) % pairs.len()]
        } else {
            neg
        };
        let record = serde_json::json!({
            "query": [QUERY, query(p).text], "pos": [DOC, doc(p).text], "neg": [DOC, doc(neg).text],
            "task_name": if (n / 16) % 2 == 0 { "words" } else { "words-again" },
        });
        lines.push_str(&format!("{record}\n"));
    }
    let path = dir.join("medi.jsonl");
    std::fs::write(&path, lines).unwrap();
    (
        path,
        heldout.iter().map(|(_, &p)| (query(p), doc(p))).collect(),
    )
}
