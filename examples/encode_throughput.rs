//! Native CPU throughput of `Instructor::encode` on a pairs file, as JSON on stdout; the browser
//! benchmark (tests/browser/bench.mjs) runs it beside the wasm path on the same pairs.
//!
//! `cargo run --release --example encode_throughput -- MODEL_DIR PAIRS.jsonl [BATCH] [REPEATS]`
//! Threads: candle's CPU kernels use `RAYON_NUM_THREADS` (default: all cores).

use instructor::{EncodeOptions, Input, Instructor, LoadOptions};
use std::time::Instant;

/// What the CLI and the Python module run with (see `instructor_alloc`).
#[global_allocator]
static ALLOC: instructor_alloc::Allocator = instructor_alloc::Allocator;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: encode_throughput MODEL_DIR PAIRS.jsonl [BATCH] [REPEATS]");
        std::process::exit(2);
    }
    let batch_size = args.get(2).map_or(32, |b| b.parse().expect("BATCH"));
    let repeats: usize = args.get(3).map_or(1, |r| r.parse().expect("REPEATS"));
    let inputs: Vec<Input> = std::fs::read_to_string(&args[1])
        .expect("pairs file")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON pair per line"))
        .collect();
    let t0 = Instant::now();
    let dtype = std::env::var("DTYPE")
        .map_or(Ok(instructor::Dtype::F32), |d| d.parse())
        .expect("DTYPE");
    let model = Instructor::load(
        &args[0],
        &LoadOptions {
            dtype,
            ..Default::default()
        },
    )
    .expect("model");
    let load_s = t0.elapsed().as_secs_f64();
    let tokens: usize = model
        .tokenize(&inputs, None)
        .expect("tokenize")
        .iter()
        .map(|t| t.ids.len())
        .sum();
    let opts = EncodeOptions {
        batch_size,
        ..EncodeOptions::default()
    };
    // Warm-up on a few pairs (allocator, caches).
    model
        .encode(&inputs[..inputs.len().min(8)], &opts)
        .expect("encode");
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        let t = Instant::now();
        model.encode(&inputs, &opts).expect("encode");
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{}",
        serde_json::json!({
            "pairs": inputs.len(), "tokens": tokens, "batch_size": batch_size,
            "seconds": best, "tokens_per_s": tokens as f64 / best, "load_s": load_s,
            "threads": std::env::var("RAYON_NUM_THREADS").ok(),
        })
    );
}
