//! Training: parity of the loss, gradients and updates with PyTorch
//! (`tests/fixtures/train/make_train_refs.py`), learning on a synthetic MEDI-style set,
//! checkpoints, `--resume`, and data errors.

mod common;

use candle_core::{Tensor, Var};
use common::*;
use instructor::train::{
    batch_loss, gradients, train, update, AdamW, AdamWConfig, Dataset, Event, Example, Params,
    StepLog, TrainConfig, LOG_FILE,
};
use instructor::{EncodeOptions, Input, Instructor, LoadOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};

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
        let (loss, _) = batch_loss(&model, &batch, 512, t, None).unwrap();
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
            let (loss, _) = batch_loss(&model, &batch, 512, t, None).unwrap();
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
