//! `instructor embed --device wgpu` (built with `--features wgpu`; scripts/test-wgpu.sh runs it on
//! lavapipe when there is no GPU).
#![cfg(feature = "wgpu")]

#[path = "../../../tests/common/mod.rs"]
mod common;

use common::*;

#[test]
fn cli_device_wgpu_matches_reference() {
    if let Err(e) = instructor::backend::wgpu::testing::gpu() {
        assert!(
            std::env::var("INSTRUCTOR_REQUIRE_GPU").as_deref() != Ok("1"),
            "INSTRUCTOR_REQUIRE_GPU=1 but {e}"
        );
        eprintln!("SKIPPED: {e}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let short: Vec<_> = cases()
        .into_iter()
        .zip(&expected("tiny-relu-f16").cases)
        .filter(|(_, e)| e.input_ids.len() < 300)
        .map(|(c, _)| c)
        .collect();
    let lines: Vec<String> = short
        .iter()
        .map(|c| serde_json::to_string(c).unwrap())
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = tmp.path().join("out.npy");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_instructor"))
        .args(["embed", "--device", "wgpu", "--quiet", "--model"])
        .arg(model_dir("tiny-relu-f16"))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let data: Vec<f32> = npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap();
    let exp = expected("tiny-relu-f16");
    let want: Vec<f32> = exp
        .cases
        .iter()
        .filter(|e| e.input_ids.len() < 300)
        .flat_map(|e| e.embedding.clone())
        .collect();
    let d = max_abs_diff(&data, &want);
    assert!(d < 1e-4, "{d}");
}
