//! Shared by the integration tests: the fixture folders and the Python reference outputs
//! (`tests/fixtures/make_fixtures.py`, computed with transformers' T5EncoderModel).
#![allow(dead_code)]

use instructor::Input;
use serde::Deserialize;
use std::path::PathBuf;

pub const MODELS: [&str; 3] = ["tiny-relu-bin", "tiny-gelu-st", "tiny-relu-f16"];

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
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
