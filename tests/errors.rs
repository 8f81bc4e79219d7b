//! A corrupt or mismatched model folder fails with an error naming the file and what is wrong.

mod common;

use common::*;
use instructor::{EncodeOptions, Input, Instructor, LoadOptions};
use std::path::{Path, PathBuf};

/// A copy of a fixture folder in a temp dir, to break.
fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    copy_dir(&model_dir(name), &dst);
    (tmp, dst)
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

fn load_err(dir: &Path) -> String {
    match Instructor::load(dir, &LoadOptions::default()) {
        Ok(_) => panic!("{} loaded although it is broken", dir.display()),
        Err(e) => {
            eprintln!("{e}");
            e.to_string()
        }
    }
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn truncate(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len / 2).unwrap();
}

/// Rewrites a safetensors file through `edit` (which may drop or replace tensors).
fn rewrite_safetensors(
    path: &Path,
    edit: impl FnOnce(&mut std::collections::HashMap<String, candle_core::Tensor>),
) {
    let mut tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu).unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, path).unwrap();
}

#[test]
fn truncated_safetensors_names_the_file() {
    let (_t, dir) = copy_fixture("tiny-gelu-st");
    truncate(&dir.join("model.safetensors"));
    let e = load_err(&dir);
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn truncated_pytorch_bin_names_the_file() {
    let (_t, dir) = copy_fixture("tiny-relu-bin");
    truncate(&dir.join("pytorch_model.bin"));
    let e = load_err(&dir);
    assert!(e.contains("pytorch_model.bin"), "{e}");
}

#[test]
fn missing_tensor_names_file_and_tensor() {
    let (_t, dir) = copy_fixture("tiny-gelu-st");
    let name = "encoder.block.1.layer.1.DenseReluDense.wo.weight";
    rewrite_safetensors(&dir.join("model.safetensors"), |t| {
        t.remove(name).expect("fixture has the tensor");
    });
    let e = load_err(&dir);
    assert!(e.contains("model.safetensors") && e.contains(name), "{e}");
}

#[test]
fn wrong_shape_names_file_and_tensor() {
    let (_t, dir) = copy_fixture("tiny-relu-f16");
    let name = "encoder.block.0.layer.0.SelfAttention.q.weight";
    rewrite_safetensors(&dir.join("model.safetensors"), |t| {
        let w = t[name].clone();
        t.insert(name.into(), w.narrow(0, 0, w.dim(0).unwrap() - 1).unwrap());
    });
    let e = load_err(&dir);
    assert!(
        e.contains("model.safetensors") && e.contains(name) && e.contains("shape"),
        "{e}"
    );
}

#[test]
fn dense_weights_with_the_wrong_shape_are_refused() {
    let (_t, dir) = copy_fixture("tiny-relu-bin");
    edit_json(&dir.join("2_Dense/config.json"), |v| {
        v["out_features"] = 7.into()
    });
    let e = load_err(&dir);
    assert!(e.contains("2_Dense") && e.contains("linear.weight"), "{e}");
}

#[test]
fn unknown_feed_forward_proj_names_config_and_field() {
    let (_t, dir) = copy_fixture("tiny-relu-bin");
    edit_json(&dir.join("config.json"), |v| {
        v["feed_forward_proj"] = "gated-swishy".into()
    });
    let e = load_err(&dir);
    assert!(
        e.contains("config.json") && e.contains("gated-swishy"),
        "{e}"
    );
}

#[test]
fn missing_and_malformed_files_are_named() {
    let (_t, dir) = copy_fixture("tiny-relu-bin");
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("tokenizer.json") && e.contains("missing"), "{e}");

    let (_t, dir) = copy_fixture("tiny-relu-bin");
    std::fs::write(dir.join("modules.json"), "[{\"path\": \"\"").unwrap();
    let e = load_err(&dir);
    assert!(e.contains("modules.json") && e.contains("line 1"), "{e}");

    let (_t, dir) = copy_fixture("tiny-relu-bin");
    std::fs::remove_file(dir.join("pytorch_model.bin")).unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("no weights") && e.contains("pytorch_model.bin"),
        "{e}"
    );

    let (_t, dir) = copy_fixture("tiny-relu-bin");
    edit_json(&dir.join("1_Pooling/config.json"), |v| {
        v["pooling_mode_cls_token"] = true.into()
    });
    let e = load_err(&dir);
    assert!(e.contains("1_Pooling") && e.contains("mean pooling"), "{e}");

    let e = load_err(Path::new("/nonexistent/model"));
    assert!(e.contains("/nonexistent/model"), "{e}");
}

#[test]
fn bad_encode_options_are_refused() {
    let model = Instructor::load(model_dir("tiny-relu-bin"), &LoadOptions::default()).unwrap();
    let input = [Input::plain("hello")];
    let e = model
        .encode(
            &input,
            &EncodeOptions {
                batch_size: 0,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("batch_size"), "{e}");
    let e = model
        .encode(
            &input,
            &EncodeOptions {
                max_seq_length: Some(1),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("max_seq_length"), "{e}");
    assert_eq!(
        model.encode(&[], &EncodeOptions::default()).unwrap().rows,
        0
    );
}
