//! The `instructor embed` contract, run as a user runs it.

#[path = "../../../tests/common/mod.rs"]
mod common;
mod run;

use common::*;
use run::{instructor, stderr};
use std::path::Path;
use std::process::Output;

fn embed(model: &str, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let model = model_dir(model);
    let mut args = vec!["embed", "--model", model.to_str().unwrap()];
    args.extend([
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    args.extend(extra);
    instructor(&args)
}

#[test]
fn npy_output_matches_reference_in_input_order() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.npy");
    let o = embed(
        "tiny-gelu-st",
        &fixtures().join("cases.jsonl"),
        &out,
        &["--batch-size", "5"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let exp = expected("tiny-gelu-st");
    assert_eq!(npy.shape(), &[exp.cases.len() as u64, exp.dim as u64]);
    let data: Vec<f32> = npy.into_vec().unwrap();
    for (i, c) in exp.cases.iter().enumerate() {
        let d = max_abs_diff(&data[i * exp.dim..(i + 1) * exp.dim], &c.embedding);
        assert!(d <= 1e-5, "case {i}: {d}");
    }
}

#[test]
fn jsonl_output_with_normalize() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.jsonl");
    let o = embed(
        "tiny-relu-bin",
        &fixtures().join("cases.jsonl"),
        &out,
        &["--normalize"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let exp = expected("tiny-relu-bin");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), exp.cases.len());
    for (line, c) in lines.iter().zip(&exp.cases) {
        let row: Vec<f32> = serde_json::from_value(line["embedding"].clone()).unwrap();
        assert!(max_abs_diff(&row, c.embedding_normalized.as_ref().unwrap()) <= 1e-5);
    }
}

/// Each malformed input fails naming its line, and leaves the output path untouched.
#[test]
fn malformed_input_names_the_line_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let good = r#"{"instruction": "Represent the title: ", "text": "ok"}"#;
    // (content after the good first line, line named, message)
    let cases: [(&[u8], usize, &str); 5] = [
        (
            b"{\"text\": \"a\"\n{\"text\": \"b\"}\n",
            2,
            "EOF while parsing",
        ),
        (
            b"{\"text\": \"a\"}\n\n{\"instruction\": \"x\"}\n",
            4,
            "missing field `text`",
        ),
        (b"{\"text\": 3}\n", 2, "invalid type: integer `3`"),
        (
            b"{\"text\": \"a\"}\n{\"text\": \"\xff\xfe\"}\n",
            3,
            "invalid UTF-8",
        ),
        (
            b"{\"text\": \"a\", \"instruction\": [\"x\"]}\n",
            2,
            "invalid type: sequence",
        ),
    ];
    for (i, (content, line, msg)) in cases.iter().enumerate() {
        let input = tmp.path().join(format!("in{i}.jsonl"));
        let mut bytes = format!("{good}\n").into_bytes();
        bytes.extend_from_slice(content);
        std::fs::write(&input, bytes).unwrap();
        let out = tmp.path().join(format!("out{i}.npy"));
        let o = embed("tiny-relu-bin", &input, &out, &[]);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(
            err.contains(&format!("in{i}.jsonl line {line}: ")) && err.contains(msg),
            "case {i}: {err}"
        );
        assert!(!out.exists(), "case {i}: output written");
    }
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("in"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn failure_keeps_an_existing_output_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    std::fs::write(&input, "{\"text\": \"a\"}\n").unwrap();
    let out = tmp.path().join("out.jsonl");
    std::fs::write(&out, "previous results\n").unwrap();
    let broken = tmp.path().join("no-model");
    let o = instructor(&[
        "embed",
        "--model",
        broken.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-model"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous results\n");
}

#[test]
fn unsupported_output_extension_is_refused_before_work() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.csv");
    let o = embed("tiny-relu-bin", &fixtures().join("cases.jsonl"), &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(".npy or .jsonl"), "{}", stderr(&o));
    let o = embed(
        "tiny-relu-bin",
        &tmp.path().join("missing.jsonl"),
        &tmp.path().join("o.npy"),
        &[],
    );
    assert!(stderr(&o).contains("missing.jsonl"), "{}", stderr(&o));
}

/// `--device cuda` in a build without the `cuda` feature says which build flag is missing,
/// before any work.
#[cfg(not(feature = "cuda"))]
#[test]
fn device_cuda_without_the_feature_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"text\": \"hello\"}\n").unwrap();
    let out = dir.path().join("out.npy");
    let o = embed("tiny-relu-bin", &input, &out, &["--device", "cuda"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("built without CUDA support") && stderr(&o).contains("--features cuda"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}
