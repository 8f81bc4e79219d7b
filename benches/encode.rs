//! Encoder throughput at a real checkpoint's shape with random weights.
//!
//! `cargo bench --bench encode` — criterion on one 32-pair batch, then one timed pass over the
//! 256 pairs of `benches/pairs.jsonl` (the same pairs `benches/peers.py` gives PyTorch and ONNX
//! Runtime) printing tokens/s. With `PEERS_JSON=<peers.py --json output>` it also prints our
//! ratio against each peer; `benches/compare.sh` runs both in one go. Environment:
//! `SHAPE=base|large` (default base), `DTYPE=f32|f16|bf16`, `RAYON_NUM_THREADS` for threads.

#[path = "support/random_model.rs"]
mod random_model;

use criterion::{Criterion, Throughput};
use instructor::{EncodeOptions, Input, Instructor, LoadOptions};
use std::time::Instant;

/// What the CLI and the Python module run with (see `instructor_alloc`).
#[global_allocator]
static ALLOC: instructor_alloc::Allocator = instructor_alloc::Allocator;

fn main() {
    let shape = std::env::var("SHAPE").unwrap_or_else(|_| "base".into());
    let dtype = std::env::var("DTYPE").unwrap_or_else(|_| "f32".into());
    let dir = std::env::temp_dir().join(format!("instructor-bench-{shape}"));
    if !dir.join("2_Dense/model.safetensors").exists() {
        random_model::write_random_model(&dir, &shape);
    }
    let opts = LoadOptions {
        dtype: dtype.parse().unwrap(),
        ..Default::default()
    };
    let model = Instructor::load(&dir, &opts).unwrap();
    let pairs: Vec<Input> = include_str!("pairs.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tokens: usize = model
        .tokenize(&pairs, None)
        .unwrap()
        .iter()
        .map(|t| t.ids.len())
        .sum();

    // Criterion: one batch of 32 mid-length pairs.
    let batch = &pairs[112..144];
    let batch_tokens: usize = model
        .tokenize(batch, None)
        .unwrap()
        .iter()
        .map(|t| t.ids.len())
        .sum();
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    let mut group = c.benchmark_group(format!("encode-{shape}-{dtype}"));
    group.throughput(Throughput::Elements(batch_tokens as u64));
    group.bench_function("batch32", |b| {
        b.iter(|| model.encode(batch, &EncodeOptions::default()).unwrap())
    });
    group.finish();

    // The full set, as the peers measure it.
    let start = Instant::now();
    model.encode(&pairs, &EncodeOptions::default()).unwrap();
    let ours = tokens as f64 / start.elapsed().as_secs_f64();
    println!(
        "ours={shape}-{dtype} pairs={} tokens={tokens} tokens_per_s={ours:.1}",
        pairs.len()
    );
    if let Ok(path) = std::env::var("PEERS_JSON") {
        let peers: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (name, peer) in peers["peers"]
            .as_object()
            .expect("peers.py JSON has `peers`")
        {
            if let Some(theirs) = peer["tokens_per_s"].as_f64() {
                println!(
                    "ratio ours/{name} = {:.2} ({ours:.1} / {theirs:.1} tokens/s)",
                    ours / theirs
                );
            }
        }
    }
}
