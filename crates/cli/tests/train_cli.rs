//! `instructor train` run as a user runs it; the training itself is tested in crates/train.

#[path = "../../../tests/common/mod.rs"]
mod common;

use common::*;
use instructor::{Instructor, LoadOptions};
use serde_json::Value;
use std::path::PathBuf;

#[test]
fn cli_trains_and_writes_a_loadable_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = synthetic(dir.path());
    let out = dir.path().join("out");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_instructor"))
        .args([
            "train",
            "--quiet",
            "--max-steps",
            "3",
            "--batch-size",
            "4",
            "--lr",
            "1e-3",
        ])
        .arg("--model")
        .arg(model_dir("tiny-gelu-st"))
        .arg("--data")
        .arg(&data)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let printed = String::from_utf8(run.stdout).unwrap();
    assert_eq!(PathBuf::from(printed.trim()), out.join("checkpoint-3"));
    let log = std::fs::read_to_string(out.join(instructor_train::LOG_FILE)).unwrap();
    assert_eq!(log.lines().count(), 3);
    let model = Instructor::load(out.join("checkpoint-3"), &LoadOptions::default()).unwrap();
    assert_eq!(model.dim(), 40);
    let config: Value =
        serde_json::from_slice(&std::fs::read(out.join("checkpoint-3/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["torch_dtype"], "float32");
}
