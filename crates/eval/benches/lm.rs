//! The prompt-retrieval language model's CPU speed on the folder benches/lm.py writes (random
//! GPT-J weights at a small shape, and the inputs it timed transformers on): run by benches/lm.sh,
//! which prints the ratios. `LM_BENCH_DIR` names the folder.
//!
//! forward: one 512-token sequence, logits of every position (tokens/s). score: one test input
//! with 5 options as `instructor eval` scores it (the 500-token prompt once, the options as one
//! batch over its keys and values; no padding to 1024).

use candle_core::{DType, Device};
use instructor_eval::lm::{CausalLm, Scored};
use std::time::Instant;

fn best(repeat: usize, mut f: impl FnMut()) -> f64 {
    (0..repeat)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let Ok(dir) = std::env::var("LM_BENCH_DIR") else {
        eprintln!("lm bench: set LM_BENCH_DIR (benches/lm.sh does)");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let lm = CausalLm::load(&dir, &Device::Cpu, DType::F32).expect("the bench folder");
    let inputs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("inputs.json")).unwrap()).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    let forward = ids(&inputs["forward"]);
    let prompt = ids(&inputs["prompt"]);
    let seqs: Vec<Scored> = inputs["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| Scored {
            ids: [prompt.clone(), ids(o)].concat(),
            start: prompt.len(),
        })
        .collect();
    let repeat = 3;
    lm.logits(&forward[..16]).unwrap();
    let fwd = best(repeat, || {
        lm.logits(&forward).unwrap();
    });
    let score = best(repeat, || {
        lm.mean_losses(&seqs).unwrap();
    });
    println!(
        "peer=ours forward_tokens_per_s={:.1}",
        forward.len() as f64 / fwd
    );
    println!("peer=ours score_s={score:.3}");
}
