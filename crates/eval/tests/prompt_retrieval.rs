//! Prompt retrieval against Python: the tiny GPT-J's logits against transformers', MetaICL's
//! prompts, option losses and predictions against a restatement of its code with the same model,
//! and main.py's score against `datasets`' rouge metric (tests/fixtures/prompt_retrieval/
//! make_fixtures.py wrote them all).

use candle_core::{DType, Device};
use instructor_eval::icl::{self, Demo, IclTask};
use instructor_eval::lm::{CausalLm, Scored};
use serde_json::Value;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn read(name: &str) -> Value {
    let path = fixtures().join("prompt_retrieval").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn lm() -> CausalLm {
    CausalLm::load(
        &fixtures().join("models/tiny-gptj"),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn max_diff(got: &candle_core::Tensor, want: &Value) -> f32 {
    let got: Vec<Vec<f32>> = got.to_vec2().unwrap();
    let want = want.as_array().unwrap();
    assert_eq!(got.len(), want.len(), "positions");
    let mut m = 0f32;
    for (g, w) in got.iter().zip(want) {
        let w = w.as_array().unwrap();
        assert_eq!(g.len(), w.len(), "vocabulary");
        for (a, b) in g.iter().zip(w) {
            m = m.max((a - b.as_f64().unwrap() as f32).abs());
        }
    }
    m
}

#[test]
fn gptj_logits_equal_transformers_alone_and_batched() {
    let lm = lm();
    let cases = read("logits.json")["cases"].as_array().unwrap().clone();
    let rows: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["ids"])).collect();
    for (c, r) in cases.iter().zip(&rows) {
        assert_eq!(lm.tokenize(c["text"].as_str().unwrap()).unwrap(), *r);
    }
    let lens: Vec<usize> = rows.iter().map(Vec::len).collect();
    assert!(
        lens.contains(&1) && lens.iter().any(|&l| l > 10),
        "{lens:?}"
    );
    let batched = lm.logits_batch(&rows, 0).unwrap();
    let mut worst = (0f32, 0f32);
    for ((c, r), b) in cases.iter().zip(&rows).zip(&batched) {
        let one = max_diff(&lm.logits(r).unwrap(), &c["logits"]);
        let many = max_diff(b, &c["logits"]);
        assert!(
            one <= 1e-4 && many <= 1e-4,
            "{} tokens: {one} alone, {many} batched",
            r.len()
        );
        worst = (worst.0.max(one), worst.1.max(many));
    }
    eprintln!(
        "max |logit - transformers|: {:e} alone, {:e} batched",
        worst.0, worst.1
    );
}

#[test]
fn metaicl_prompts_losses_and_predictions_equal_python() {
    let lm = lm();
    let tok = |s: &str| lm.tokenize(s).map_err(|e| e.to_string());
    for case in read("metaicl.json")["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let demos: Vec<Demo> = serde_json::from_value(case["demonstrations"].clone()).unwrap();
        let options: Vec<&str> = case["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        let seqs = icl::tensorize(&tok, &demos, case["input"].as_str().unwrap(), &options).unwrap();
        let want: Vec<Scored> = case["scored"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Scored {
                ids: ids(&s["ids"]),
                start: s["start"].as_u64().unwrap() as usize,
            })
            .collect();
        assert_eq!(seqs, want, "{name}: the prompts");
        // All options at once (a shared prefix when there is one) and one by one.
        let together = lm.mean_losses(&seqs).unwrap();
        for (i, s) in seqs.iter().enumerate() {
            let alone = lm.mean_losses(std::slice::from_ref(s)).unwrap()[0];
            let want = case["losses"][i].as_f64().unwrap() as f32;
            assert!(
                (together[i] - want).abs() <= 1e-4,
                "{name}: option {i}: {} vs {want}",
                together[i]
            );
            assert!(
                (alone - want).abs() <= 1e-4,
                "{name}: option {i} alone: {alone} vs {want}"
            );
        }
        let pred = icl::predict(&together);
        assert_eq!(
            options[pred],
            case["prediction"].as_str().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn demonstrations_over_256_tokens_are_refused_as_metaicl_asserts() {
    let lm = lm();
    let tok = |s: &str| lm.tokenize(s).map_err(|e| e.to_string());
    let long = Demo {
        input: "lovely calm odd ".repeat(60),
        output: "positive".into(),
    };
    let err = icl::tensorize(&tok, &[long], "x", IclTask::Sst5.labels()).unwrap_err();
    assert!(err.contains("demonstration 0 has"), "{err}");
}

#[test]
fn repo_score_is_datasets_rouge_bootstrap_median() {
    let cases = read("rouge.json")["cases"].as_array().unwrap().clone();
    let mut differing = 0;
    for c in &cases {
        let p: Vec<usize> = ids(&c["preds"]).into_iter().map(|x| x as usize).collect();
        let g: Vec<usize> = ids(&c["golds"]).into_iter().map(|x| x as usize).collect();
        let seed = c["seed"].as_u64().unwrap() as u32;
        let want = c["rougeL"].as_f64().unwrap();
        assert_eq!(
            icl::repo_rouge_l(&p, &g, seed),
            want,
            "{} predictions",
            p.len()
        );
        assert_eq!(icl::accuracy(&p, &g), c["accuracy"].as_f64().unwrap());
        differing += usize::from((want - 100.0 * icl::accuracy(&p, &g)).abs() > 1e-3);
    }
    // The resampling matters in these cases: accuracy alone would not pass.
    assert!(differing >= 3, "{differing}");
}

#[test]
fn an_unsupported_model_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("models/tiny-gptj");
    for f in ["tokenizer.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "t5"}"#).unwrap();
    let err = CausalLm::load(dir.path(), &Device::Cpu, DType::F32)
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("config.json") && msg.contains("model_type `t5`"),
        "{msg}"
    );
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let msg = CausalLm::load(dir.path(), &Device::Cpu, DType::F32)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("no model.safetensors"), "{msg}");
}

/// Mean of −log softmax(row)[target] over rows computed from Python's logits.
fn mean_ce_of(logits: &[Value], targets: &[u32]) -> f32 {
    let mut total = 0f64;
    for (row, &t) in logits.iter().zip(targets) {
        let row: Vec<f64> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let max = row.iter().cloned().fold(f64::MIN, f64::max);
        let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
        total += lse - row[t as usize];
    }
    (total / targets.len() as f64) as f32
}

#[test]
fn llama_from_candle_transformers_equals_transformers() {
    let lm = CausalLm::load(
        &fixtures().join("models/tiny-llama"),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let cases = read("logits.json")["llama"].as_array().unwrap().clone();
    let mut worst = 0f32;
    for c in &cases {
        let r = ids(&c["ids"]);
        let d = max_diff(&lm.logits(&r).unwrap(), &c["logits"]);
        assert!(d <= 1e-4, "{} tokens: {d}", r.len());
        worst = worst.max(d);
    }
    eprintln!("llama: max |logit - transformers| {worst:e}");
    // Its option loss, against the cross-entropy of transformers' logits.
    let c = cases
        .iter()
        .max_by_key(|c| c["ids"].as_array().unwrap().len())
        .unwrap();
    let r = ids(&c["ids"]);
    let start = 5;
    let got = lm
        .mean_losses(&[Scored {
            ids: r.clone(),
            start,
        }])
        .unwrap()[0];
    let rows = &c["logits"].as_array().unwrap()[start - 1..r.len() - 1];
    let want = mean_ce_of(rows, &r[start..]);
    assert!((got - want).abs() <= 1e-4, "{got} vs {want}");
}

/// bf16 (the CUDA precision for GPT-J-6B), checked on the CPU: every option loss of the MetaICL
/// cases within 2% of f32's, and the same predictions.
#[test]
fn gptj_in_bf16_stays_within_two_percent_and_predicts_the_same() {
    let (f32_lm, bf16_lm) = (
        lm(),
        CausalLm::load(
            &fixtures().join("models/tiny-gptj"),
            &Device::Cpu,
            DType::BF16,
        )
        .unwrap(),
    );
    let tok = |s: &str| f32_lm.tokenize(s).map_err(|e| e.to_string());
    let mut worst = 0f32;
    for case in read("metaicl.json")["cases"].as_array().unwrap() {
        let demos: Vec<Demo> = serde_json::from_value(case["demonstrations"].clone()).unwrap();
        let labels = IclTask::Sst5.labels();
        let seqs = icl::tensorize(&tok, &demos, case["input"].as_str().unwrap(), labels).unwrap();
        let (a, b) = (
            f32_lm.mean_losses(&seqs).unwrap(),
            bf16_lm.mean_losses(&seqs).unwrap(),
        );
        for (x, y) in a.iter().zip(&b) {
            worst = worst.max((x - y).abs() / x.abs());
        }
        assert_eq!(icl::predict(&a), icl::predict(&b), "{}", case["name"]);
    }
    eprintln!("bf16: largest relative loss difference {worst:e}");
    assert!(worst <= 0.02, "{worst}");
}

#[test]
fn random_sample_is_cpythons() {
    for case in read("pysample.json")["cases"].as_array().unwrap() {
        let mut rng = icl::PyRandom::new(case["seed"].as_u64().unwrap() as u32);
        for call in case["calls"].as_array().unwrap() {
            let (n, k) = (
                call["n"].as_u64().unwrap() as usize,
                call["k"].as_u64().unwrap() as usize,
            );
            let want: Vec<usize> = ids(&call["indices"])
                .into_iter()
                .map(|i| i as usize)
                .collect();
            assert_eq!(rng.sample(n, k).unwrap(), want, "sample(range({n}), {k})");
        }
    }
    assert!(icl::PyRandom::new(0).sample(3, 4).is_none());
}
