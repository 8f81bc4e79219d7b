//! Encoder throughput of the wgpu backend against the candle CPU backend, in one run, at a real
//! checkpoint's shape with random weights.
//!
//! `cargo bench --features wgpu --bench wgpu` prints, per backend, tokens/s and the GFLOP/s the
//! encoder achieved (matrix products and attention, counted from the batch's real lengths), and
//! the largest difference between the two backends' embeddings. Environment: `SHAPE=base|large`
//! (default base), `PAIRS=n` pairs of `benches/pairs.jsonl` from the middle of its length range
//! (default 32; a software adapter such as lavapipe manages a few tokens per second at base
//! shape), `DTYPE=f32|f16` (weight storage of the wgpu backend; candle runs f32).

#[path = "support/random_model.rs"]
mod random_model;

use instructor::{Device, Dtype, EncodeOptions, Input, Instructor, LoadOptions};
use std::time::Instant;

/// Floating-point operations of the encoder and head on sequences of `lengths` (2 per
/// multiply-add): the projections, the feed-forward, attention's two products and the Dense.
fn flops(model: &Instructor, lengths: &[usize]) -> f64 {
    let c = &model.config().t5;
    let (d, inner, ff) = (c.d_model, c.num_heads * c.d_kv, c.d_ff);
    let ff_mats = if c.feed_forward_proj.gated { 3 } else { 2 };
    let per_token = 2 * (4 * d * inner + ff_mats * d * ff);
    let tokens: usize = lengths.iter().sum();
    let attention: usize = lengths.iter().map(|l| 4 * l * l * inner).sum();
    let dense = 2 * d * model.dim() * lengths.len();
    (c.num_layers * (tokens * per_token + attention) + dense) as f64
}

fn main() {
    let shape = std::env::var("SHAPE").unwrap_or_else(|_| "base".into());
    let dtype: Dtype = std::env::var("DTYPE")
        .unwrap_or_else(|_| "f32".into())
        .parse()
        .unwrap();
    let n: usize = std::env::var("PAIRS").map_or(32, |v| v.parse().unwrap());
    let dir = std::env::temp_dir().join(format!("instructor-wgpu-bench-{shape}"));
    if !dir.join("tokenizer.json").exists() {
        random_model::write_random_model(&dir, &shape);
    }
    let pairs: Vec<Input> = include_str!("pairs.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mid = pairs.len() / 2;
    let batch = &pairs[mid - n / 2..mid - n / 2 + n];

    let mut results = Vec::new();
    for (name, device, dtype) in [
        ("candle-cpu", Device::Cpu, Dtype::F32),
        ("wgpu", Device::Wgpu, dtype),
    ] {
        let opts = LoadOptions { device, dtype };
        let model = Instructor::load(&dir, &opts).unwrap();
        let lengths: Vec<usize> = model
            .tokenize(batch, None)
            .unwrap()
            .iter()
            .map(|t| t.ids.len())
            .collect();
        let tokens: usize = lengths.iter().sum();
        // Warm-up on one pair: kernel compilation and buffer allocation are not throughput.
        model
            .encode(&batch[..1], &EncodeOptions::default())
            .unwrap();
        let start = Instant::now();
        let out = model.encode(batch, &EncodeOptions::default()).unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name} ({}) shape={shape} dtype={dtype:?} pairs={n} tokens={tokens} \
             seconds={secs:.2} tokens_per_s={:.1} gflop_per_s={:.2}",
            model.backend(),
            tokens as f64 / secs,
            flops(&model, &lengths) / secs / 1e9,
        );
        results.push(out);
    }
    println!(
        "max |wgpu - candle| = {:.2e}",
        results[0]
            .data
            .iter()
            .zip(&results[1].data)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max)
    );
}
