//! `instructor quantize` and `--dtype int8`, run as a user runs them.

#[path = "../../../tests/common/mod.rs"]
mod common;
mod run;

use common::*;
use instructor::{Dtype, EncodeOptions, Instructor, LoadOptions};
use run::{instructor, stderr};
use std::path::Path;
use std::process::Output;

fn quantize(model: &Path, out: &Path) -> Output {
    instructor(&[
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ])
}

fn size(dir: &Path, ext: &str) -> u64 {
    walk(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// The quantized folder of each fixture model (f32 safetensors, torch .bin, f16) loads as int8 and
/// gives the bits that quantizing at load time gives; its weights are int8 on disk.
#[test]
fn quantized_folder_equals_load_time_int8_and_is_about_a_quarter() {
    let inputs = cases();
    for name in MODELS {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("int8");
        let o = quantize(&model_dir(name), &out);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains("int8 weights"), "{}", stderr(&o));

        let int8 = LoadOptions {
            dtype: Dtype::Int8,
            ..Default::default()
        };
        let at_load = Instructor::load(model_dir(name), &int8).unwrap();
        // A quantized folder is int8 without being asked.
        let folder = Instructor::load(&out, &LoadOptions::default()).unwrap();
        assert_eq!(folder.dtype(), Dtype::Int8);
        let opts = EncodeOptions::default();
        assert_eq!(
            folder.encode(&inputs, &opts).unwrap(),
            at_load.encode(&inputs, &opts).unwrap(),
            "{name}"
        );

        // Every 2-D weight but the position table is I8 with an f32 scale per row.
        let st = std::fs::read(out.join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&st).unwrap();
        for (n, t) in st.tensors() {
            let want = if t.shape().len() == 2 && !n.contains("relative_attention_bias") {
                safetensors::Dtype::I8
            } else {
                safetensors::Dtype::F32
            };
            assert_eq!(t.dtype(), want, "{name}: {n}");
            if want == safetensors::Dtype::I8 {
                let scale = st.tensor(&format!("{n}_scale")).unwrap();
                assert_eq!(scale.shape(), &t.shape()[..1], "{name}: {n}_scale");
            }
        }
        let cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(
            cfg["quantization_config"]["quant_method"],
            "instructor-int8"
        );
        // What the model does not read is copied too; other formats' weights are not.
        assert!(out.join("config_sentence_transformers.json").exists());
        assert!(!out.join("pytorch_model.bin").exists());

        // Asking for f16 dequantizes: close to int8, not equal.
        let f16 = Instructor::load(
            &out,
            &LoadOptions {
                dtype: Dtype::F16,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(f16.dtype(), Dtype::F16);
        assert_eq!(f16.int8_kernel(), None);

        // Bytes against the same parameters in f32 (the sources are f32, bf16 and f16).
        let params: usize = st
            .tensors()
            .iter()
            .filter(|(n, _)| !n.ends_with("_scale"))
            .map(|(_, t)| t.shape().iter().product::<usize>())
            .sum();
        let ratio = size(&out, "safetensors") as f64 / (4 * params) as f64;
        eprintln!("{name}: int8 folder is {ratio:.3} of f32");
        // int8, one f32 scale per row of 48–96 values, and f32 norms, of a tiny model.
        assert!(ratio < 0.4, "{name}: {ratio}");
    }
}

#[test]
fn quantize_refuses_an_existing_output_and_a_quantized_model_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("int8");
    std::fs::create_dir(&out).unwrap();
    let o = quantize(&model_dir("tiny-gelu-st"), &out);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));

    let out = tmp.path().join("q");
    assert!(quantize(&model_dir("tiny-gelu-st"), &out).status.success());
    let again = tmp.path().join("q2");
    let o = quantize(&out, &again);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("quantized already"), "{}", stderr(&o));
    assert!(!again.exists());
    // No temporary folder is left beside the outputs.
    let mut left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["int8", "q"]);
}

#[test]
fn embed_with_dtype_int8_and_its_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.jsonl");
    let model = model_dir("tiny-gelu-st");
    let input = fixtures().join("cases.jsonl");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "embed",
            "--model",
            model.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--normalize",
        ];
        args.extend(extra);
        instructor(&args)
    };
    let o = run(&["--dtype", "int8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let exp = expected("tiny-gelu-st");
    let rows: Vec<Vec<f32>> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| serde_json::from_value(v["embedding"].clone()).unwrap())
        .collect();
    for (r, c) in rows.iter().zip(&exp.cases) {
        let e = c.embedding_normalized.as_ref().unwrap();
        let dot: f32 = r.iter().zip(e).map(|(a, b)| a * b).sum();
        assert!(dot >= 0.999, "cosine {dot}");
    }
    let o = run(&["--dtype", "int9"]);
    assert!(
        stderr(&o).contains("expected f32, f16, bf16 or int8"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--dtype", "int8", "--device", "wgpu"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("int8 runs on the CPU"),
        "{}",
        stderr(&o)
    );
}
