//! The CLI's hub commands (`download`, `cache ls`, `cache rm`, `embed --model owner/name`)
//! against the mock hub, with the environment huggingface_hub reads set on the child processes.

use instructor_mock_hub::{Faults, MockHub};
use std::path::{Path, PathBuf};
use std::process::Command;

const REPO: &str = "fixtures/tiny-relu-bin";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn start_hub() -> MockHub {
    let hub = MockHub::start(0).expect("start the mock hub");
    hub.add_folders("fixtures", &fixtures().join("models"))
        .expect("serve the fixture models");
    hub
}

fn repo_dir(cache: &Path) -> PathBuf {
    cache.join("models--fixtures--tiny-relu-bin")
}

fn instructor(hub: &MockHub, cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_instructor"));
    cmd.env("HF_ENDPOINT", hub.url())
        .env("HF_HUB_CACHE", cache)
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE");
    cmd
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cli_download_cache_ls_embed_and_cache_rm() {
    let hub = start_hub();
    let cache = tempfile::tempdir().unwrap();

    let out = run_ok(instructor(&hub, cache.path()).args(["download", REPO, "--quiet"]));
    let snapshot = repo_dir(cache.path())
        .join("snapshots")
        .join(hub.commit(REPO));
    assert_eq!(out.trim(), snapshot.display().to_string());

    let ls = run_ok(instructor(&hub, cache.path()).args(["cache", "ls"]));
    let line = ls.lines().find(|l| l.starts_with(REPO)).expect(&ls);
    assert!(
        line.contains(&format!("main={}", &hub.commit(REPO)[..12])),
        "{ls}"
    );
    assert!(line.contains("KiB"), "the size: {ls}");

    // embed through the hub, offline: the download above is all it needs.
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    hub.reset();
    run_ok(
        instructor(&hub, cache.path())
            .env("HF_HUB_OFFLINE", "1")
            .args(["embed", "--quiet", "--model", REPO, "--input"])
            .arg(fixtures().join("cases.jsonl"))
            .arg("--output")
            .arg(&output),
    );
    assert_eq!(hub.stats().requests(), 0);
    let rows = std::fs::read_to_string(&output).unwrap();
    let first: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    assert_eq!(first["embedding"].as_array().unwrap().len(), 24);

    let out = run_ok(instructor(&hub, cache.path()).args(["cache", "rm", REPO]));
    assert!(out.contains(REPO), "{out}");
    assert!(!repo_dir(cache.path()).exists());
    let err = instructor(&hub, cache.path())
        .args(["cache", "rm", REPO])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("not in the cache"));

    // A gated repo: the error says what to do, exit status 1.
    hub.set_faults(Faults {
        gated: [(REPO.to_string(), "t".to_string())].into(),
        ..Faults::default()
    });
    let out = instructor(&hub, cache.path())
        .args(["download", REPO, "--quiet"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HF_TOKEN"));
}
