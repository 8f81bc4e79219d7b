//! Training: parity of the loss, gradients and updates with PyTorch
//! (`tests/fixtures/train/make_train_refs.py`), learning on a synthetic MEDI-style set,
//! checkpoints, `--resume`, and data errors.

#[path = "../../../tests/common/mod.rs"]
mod common;

use candle_core::{Tensor, Var};
use common::*;
use instructor::{EncodeOptions, Input, Instructor, LoadOptions};
use instructor_train::{
    batch_loss, gradients, train, update, AdamW, AdamWConfig, Alone, Dataset, Event, Example,
    Params, StepLog, TrainConfig, LOG_FILE,
};
use serde_json::Value;
use std::path::Path;

fn refs() -> Value {
    let path = fixtures().join("train/refs.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ref_batch(refs: &Value) -> Vec<Example> {
    let lines: Vec<String> = refs["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    Dataset::parse(&lines.join("\n")).unwrap().examples
}

fn relative(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

#[test]
fn loss_and_gradients_match_pytorch() {
    let refs = refs();
    let batch = ref_batch(&refs);
    let t = refs["temperature"].as_f64().unwrap();
    for (name, r) in refs["models"].as_object().unwrap() {
        let (model, params) = Params::load(&model_dir(name), &LoadOptions::default()).unwrap();
        let vars: Vec<&Var> = params.vars().map(|(_, v)| v).collect();
        let (loss, _) = batch_loss(&model, &batch, 512, t, None, &Alone).unwrap();
        let value = f64::from(loss.to_scalar::<f32>().unwrap());
        let want = r["loss"].as_f64().unwrap();
        eprintln!(
            "{name}: loss {value} vs {want} (rel {:.2e})",
            relative(value, want)
        );
        assert!(
            relative(value, want) <= 1e-4,
            "{name}: loss {value} vs {want}"
        );

        let grads = gradients(&loss, &vars).unwrap();
        for (weight, g) in r["grads"].as_object().unwrap() {
            let i = params
                .vars()
                .position(|(n, _)| &n == weight)
                .unwrap_or_else(|| panic!("{name}: no weight {weight}"));
            let shape: Vec<usize> = serde_json::from_value(g["shape"].clone()).unwrap();
            assert_eq!(grads[i].dims(), shape.as_slice(), "{name} {weight}");
            let rows: Vec<usize> = serde_json::from_value(g["rows"].clone()).unwrap();
            let want: Vec<Vec<f32>> = serde_json::from_value(g["values"].clone()).unwrap();
            let got: Vec<Vec<f32>> = if rows.is_empty() {
                vec![grads[i].to_vec1().unwrap()]
            } else {
                let idx = Tensor::new(
                    rows.iter().map(|&r| r as u32).collect::<Vec<_>>(),
                    &candle_core::Device::Cpu,
                )
                .unwrap();
                grads[i].index_select(&idx, 0).unwrap().to_vec2().unwrap()
            };
            let (got, want) = (got.concat(), want.concat());
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = max_abs_diff(&got, &want) / scale;
            eprintln!("{name} {weight}: max diff / max |grad| {diff:.2e}");
            assert!(scale > 0.0 && diff <= 1e-4, "{name} {weight}: {diff}");
        }
    }
}

#[test]
fn adamw_updates_follow_pytorch() {
    let refs = refs();
    let batch = ref_batch(&refs);
    let t = refs["temperature"].as_f64().unwrap();
    let lr = refs["adamw"]["lr"].as_f64().unwrap();
    for (name, r) in refs["models"].as_object().unwrap() {
        let (model, params) = Params::load(&model_dir(name), &LoadOptions::default()).unwrap();
        let vars: Vec<&Var> = params.vars().map(|(_, v)| v).collect();
        let mut optim = AdamW::new(vars.iter().copied(), AdamWConfig::default()).unwrap();
        let want: Vec<f64> = serde_json::from_value(r["adamw_losses"].clone()).unwrap();
        for (k, &w) in want.iter().enumerate() {
            let (loss, _) = batch_loss(&model, &batch, 512, t, None, &Alone).unwrap();
            let got = f64::from(loss.to_scalar::<f32>().unwrap());
            eprintln!(
                "{name} after {k} updates: loss {got} vs {w} (rel {:.2e})",
                relative(got, w)
            );
            assert!(
                relative(got, w) <= 1e-4,
                "{name} after {k} updates: {got} vs {w}"
            );
            if k + 1 < want.len() {
                let mut grads = gradients(&loss, &vars).unwrap();
                update(&mut optim, &vars, &mut grads, lr, 1.0).unwrap();
            }
        }
    }
}

/// Accuracy@1 of retrieving each held-out query's document among all held-out documents.
fn retrieval_accuracy(model: &Instructor, heldout: &[(Input, Input)]) -> f64 {
    let opts = EncodeOptions::default();
    let q = model
        .encode(
            &heldout.iter().map(|p| p.0.clone()).collect::<Vec<_>>(),
            &opts,
        )
        .unwrap();
    let d = model
        .encode(
            &heldout.iter().map(|p| p.1.clone()).collect::<Vec<_>>(),
            &opts,
        )
        .unwrap();
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>() * b.iter().map(|x| x * x).sum::<f32>()).sqrt()
    };
    let hits = (0..heldout.len())
        .filter(|&i| {
            let best = (0..heldout.len())
                .max_by(|&a, &b| cos(q.row(i), d.row(a)).total_cmp(&cos(q.row(i), d.row(b))))
                .unwrap();
            best == i
        })
        .count();
    hits as f64 / heldout.len() as f64
}

fn config(data: &Path, output: &Path) -> TrainConfig {
    TrainConfig {
        model: model_dir("tiny-relu-bin"),
        data: data.to_path_buf(),
        output: output.to_path_buf(),
        batch_size: 8,
        lr: 1e-3,
        ..TrainConfig::default()
    }
}

fn read_log(output: &Path) -> Vec<StepLog> {
    std::fs::read_to_string(output.join(LOG_FILE))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn training_lowers_loss_and_improves_heldout_retrieval_and_checkpoint_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let (data, heldout) = synthetic(dir.path());
    let out = dir.path().join("out");
    let before = Instructor::load(model_dir("tiny-relu-bin"), &LoadOptions::default()).unwrap();
    let acc_before = retrieval_accuracy(&before, &heldout);

    let cfg = TrainConfig {
        max_steps: Some(300),
        ..config(&data, &out)
    };
    let started = std::time::Instant::now();
    let summary = train(&cfg, &Alone, &mut |_| {}).unwrap();
    eprintln!("300 updates in {:.1}s", started.elapsed().as_secs_f64());
    let log = read_log(&out);
    assert_eq!(log.len(), 300);
    let mean = |s: &[StepLog]| s.iter().map(|e| e.loss).sum::<f64>() / s.len() as f64;
    let (first, last) = (mean(&log[..20]), mean(&log[280..]));
    eprintln!(
        "loss {first:.3} -> {last:.3}; tokens/s {:.0}",
        mean_tps(&log)
    );
    assert!(last < 0.5 * first, "loss {first} -> {last}");

    let reloaded = Instructor::load(&summary.checkpoint, &LoadOptions::default()).unwrap();
    let acc_after = retrieval_accuracy(&reloaded, &heldout);
    eprintln!(
        "held-out accuracy@1 {acc_before:.2} -> {acc_after:.2} ({} pairs)",
        heldout.len()
    );
    assert!(
        acc_after >= 0.8 && acc_after > acc_before + 0.3,
        "{acc_before} -> {acc_after}"
    );

    // The saved folder gives the embeddings of the weights in memory at the end of training (the
    // in-memory model differentiates through the composite softmax, the reloaded one uses the
    // fused kernel: equal up to rounding).
    let inputs = cases();
    let a = reloaded.encode(&inputs, &EncodeOptions::default()).unwrap();
    let b = summary
        .model
        .encode(&inputs, &EncodeOptions::default())
        .unwrap();
    let d = max_abs_diff(&a.data, &b.data);
    eprintln!("reloaded vs in-memory: max abs diff {d:e}");
    assert!(d <= 1e-6, "{d}");
}

fn mean_tps(log: &[StepLog]) -> f64 {
    log.iter().map(|e| e.tokens_per_s).sum::<f64>() / log.len() as f64
}

#[test]
fn resume_after_a_stop_repeats_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = synthetic(dir.path());
    let full = dir.path().join("full");
    let cfg = TrainConfig {
        max_steps: Some(24),
        save_steps: Some(10),
        grad_accum: 2,
        ..config(&data, &full)
    };
    train(&cfg, &Alone, &mut |_| {}).unwrap();

    // A run that stopped after saving update 10: its output holds checkpoint-10 and the log of the
    // updates after it that were lost with the process.
    let stopped = dir.path().join("stopped");
    copy_dir(&full.join("checkpoint-10"), &stopped.join("checkpoint-10"));
    let log = std::fs::read_to_string(full.join(LOG_FILE)).unwrap();
    let partial: Vec<&str> = log.lines().take(13).collect();
    std::fs::write(stopped.join(LOG_FILE), partial.join("\n") + "\n").unwrap();
    std::fs::create_dir_all(stopped.join(".checkpoint-20.tmp")).unwrap();

    let again = TrainConfig {
        output: stopped.clone(),
        ..cfg.clone()
    };
    let err = train(&again, &Alone, &mut |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("--resume"), "{err}");
    let other_lr = TrainConfig {
        lr: 2e-3,
        resume: true,
        ..again.clone()
    };
    let err = train(&other_lr, &Alone, &mut |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("other settings"), "{err}");

    let mut resumed_at = None;
    train(
        &TrainConfig {
            resume: true,
            ..again
        },
        &Alone,
        &mut |e| {
            if let Event::Started { first_step, .. } = e {
                resumed_at = Some(first_step);
            }
        },
    )
    .unwrap();
    assert_eq!(resumed_at, Some(10));
    let (a, b) = (read_log(&full), read_log(&stopped));
    assert_eq!(b.len(), 24);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.step, x.loss, x.lr, x.grad_norm),
            (y.step, y.loss, y.lr, y.grad_norm)
        );
    }
    for file in [
        "model.safetensors",
        "2_Dense/pytorch_model.bin",
        "optimizer.safetensors",
    ] {
        let read = |d: &Path| std::fs::read(d.join("checkpoint-24").join(file)).unwrap();
        assert!(read(&full) == read(&stopped), "{file} differs");
    }
    assert!(!stopped.join(".checkpoint-20.tmp").exists());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn malformed_records_are_named_by_index_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = |task: &str| {
        format!(
            r#"{{"query": ["q: ", "a"], "pos": ["d: ", "b"], "neg": ["d: ", "c"], "task_name": "{task}"}}"#
        )
    };
    let lines = [
        good("t"),
        String::new(),
        r#"{"query": ["q: ", "a"], "neg": ["d: ", "c"], "task_name": "t"}"#.into(),
        "{not json".into(),
        r#"{"query": ["q: ", "a"], "pos": ["d: ", "b", "x"], "neg": ["d: ", "c"], "task_name": "t"}"#.into(),
        r#"{"query": ["q: ", "a"], "pos": ["d: ", "b"], "neg": ["d: ", "c"]}"#.into(),
        good("t"),
    ];
    let data = dir.path().join("bad.jsonl");
    std::fs::write(&data, lines.join("\n")).unwrap();
    let cfg = TrainConfig {
        batch_size: 2,
        max_steps: Some(1),
        ..config(&data, &dir.path().join("out"))
    };
    let err = train(&cfg, &Alone, &mut |_| {}).err().unwrap().to_string();
    for want in [
        "4 invalid record(s)",
        "record 1 (line 3): missing field `pos`",
        "record 2 (line 4): not JSON",
        "record 3 (line 5): field `pos`: expected [instruction, text]",
        "record 4 (line 6): missing field `task_name` (or `task_id`)",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!dir.path().join("out").exists(), "stopped before training");

    let mut skipped = None;
    train(
        &TrainConfig {
            skip_invalid: true,
            ..cfg
        },
        &Alone,
        &mut |e| {
            if let Event::Started {
                skipped_invalid, ..
            } = e
            {
                skipped = Some(skipped_invalid);
            }
        },
    )
    .unwrap();
    assert_eq!(skipped, Some(4));

    // In a JSON array the line is where the record starts.
    let array = format!(
        "[\n{},\n  {{\"query\":\n [\"q\"], \"pos\": 1}}\n]",
        good("t")
    );
    let parsed = Dataset::parse(&array).unwrap();
    assert_eq!(parsed.invalid.len(), 1);
    assert_eq!((parsed.invalid[0].index, parsed.invalid[0].line), (1, 3));
}

#[test]
fn nan_loss_stops_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = synthetic(dir.path());
    let out = dir.path().join("out");
    let cfg = TrainConfig {
        max_steps: Some(5),
        save_steps: Some(1),
        lr: 1e30,
        warmup_ratio: 0.0,
        ..config(&data, &out)
    };
    let err = train(&cfg, &Alone, &mut |_| {}).err().unwrap().to_string();
    assert!(err.contains("loss is NaN at step 2"), "{err}");
    assert!(out.join("checkpoint-1").is_dir() && !out.join("checkpoint-2").exists());
}

#[test]
fn bf16_mixed_precision_keeps_f32_weights_and_follows_f32() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = synthetic(dir.path());
    let run = |dtype, name: &str| {
        let out = dir.path().join(name);
        let cfg = TrainConfig {
            max_steps: Some(8),
            dtype,
            ..config(&data, &out)
        };
        let summary = train(&cfg, &Alone, &mut |_| {}).unwrap();
        (read_log(&out), summary.checkpoint)
    };
    let (f32_log, _) = run(instructor::Dtype::F32, "f32");
    let (bf16_log, checkpoint) = run(instructor::Dtype::Bf16, "bf16");
    for (a, b) in f32_log.iter().zip(&bf16_log) {
        assert!(
            (a.loss - b.loss).abs() <= 0.05 * a.loss,
            "step {}: {} vs {}",
            a.step,
            a.loss,
            b.loss
        );
    }
    let weights = std::fs::read(checkpoint.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&weights).unwrap();
    assert!(st
        .tensors()
        .iter()
        .all(|(_, t)| t.dtype() == safetensors::Dtype::F32));
}
