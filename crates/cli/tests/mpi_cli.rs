//! `instructor embed` under `mpirun -np 2` (feature `mpi`), the ranks on loopback only: the output
//! is the same bytes as one process writes. Every run is bounded in time.

#[path = "../../../tests/common/mod.rs"]
mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(180);

/// Waits for `cmd`, killing it after [`LIMIT`].
fn bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun runs (OpenMPI's openmpi-bin)");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > LIMIT {
            child.kill().unwrap();
            panic!("{cmd:?} still running after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// `mpirun -np N instructor ARGS` with OpenMPI's flags for a container: as root, more ranks than
/// cores, no binding, TCP over loopback only.
fn mpirun(np: usize, args: &[&str]) -> Output {
    let mut cmd = Command::new("mpirun");
    cmd.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "--bind-to",
        "none",
    ])
    .args([
        "--mca",
        "btl",
        "self,tcp",
        "--mca",
        "btl_tcp_if_include",
        "lo",
    ])
    .args(["--mca", "oob_tcp_if_include", "lo", "-np", &np.to_string()])
    .arg(env!("CARGO_BIN_EXE_instructor"))
    .args(args)
    .env("RAYON_NUM_THREADS", "1");
    bounded(cmd)
}

fn alone(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_instructor"));
    cmd.args(args).env("RAYON_NUM_THREADS", "1");
    bounded(cmd)
}

fn embed_args<'a>(model: &'a str, input: &'a str, output: &'a Path) -> Vec<&'a str> {
    vec![
        "embed",
        "--model",
        model,
        "--input",
        input,
        "--output",
        output.to_str().unwrap(),
        "--batch-size",
        "5",
        "--quiet",
    ]
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn embed_on_two_ranks_writes_the_bytes_of_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let input = fixtures().join("cases.jsonl");
    let input = input.to_str().unwrap();
    for name in ["tiny-gelu-st", "tiny-relu-bin"] {
        let model = model_dir(name);
        let model = model.to_str().unwrap();
        for ext in ["npy", "jsonl"] {
            let one = tmp.path().join(format!("{name}-one.{ext}"));
            let two = tmp.path().join(format!("{name}-two.{ext}"));
            ok(&alone(&embed_args(model, input, &one)));
            ok(&mpirun(2, &embed_args(model, input, &two)));
            let (a, b) = (std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());
            assert!(
                !a.is_empty() && a == b,
                "{name} .{ext}: 2 ranks differ from 1 process"
            );
        }
        // And the file is the reference's embeddings in input order.
        let bytes = std::fs::read(tmp.path().join(format!("{name}-two.npy"))).unwrap();
        let data: Vec<f32> = npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap();
        let exp = expected(name);
        for (i, c) in exp.cases.iter().enumerate() {
            let d = max_abs_diff(&data[i * exp.dim..(i + 1) * exp.dim], &c.embedding);
            assert!(d <= 1e-5, "{name} case {i}: {d}");
        }
    }
}

#[test]
fn a_failing_rank_is_named_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.npy");
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"text\": \"fine\"}\n{\"text\": 3}\n").unwrap();
    let model = model_dir("tiny-relu-bin");
    let o = mpirun(
        2,
        &embed_args(model.to_str().unwrap(), bad.to_str().unwrap(), &out),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("rank 0 of 2") || err.contains("rank 1 of 2"),
        "{err}"
    );
    assert!(err.contains("bad.jsonl line 2"), "{err}");
    assert!(!out.exists());
}

fn eval_args<'a>(task: &'a str, kind: &'a str, out: &'a str, cache: &'a str) -> Vec<&'a str> {
    const DATA: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/eval/data"
    );
    const MODEL: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/models/tiny-relu-bin"
    );
    vec![
        "eval",
        "--model",
        MODEL,
        "--quiet",
        "--data",
        DATA,
        "--tasks",
        task,
        "--task-type",
        kind,
        "--output",
        out,
        "--cache",
        cache,
    ]
}

/// A result file without its timing.
fn scores(out: &Path, task: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join(format!("{task}.json"))).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("evaluation_time");
    v
}

#[test]
fn eval_on_two_ranks_scores_as_one_process_and_shares_its_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let (one, two, again) = (p("one"), p("two"), p("again"));
    let (cache1, cache2) = (p("cache1"), p("cache2"));
    for (task, kind) in [
        ("TinySTS", "sts"),
        ("TinyRetrieval", "retrieval"),
        ("TinyPairs", "pair_classification"),
    ] {
        ok(&alone(&eval_args(task, kind, &one, &cache1)));
        let o = mpirun(2, &eval_args(task, kind, &two, &cache2));
        ok(&o);
        assert_eq!(
            scores(Path::new(&one), task),
            scores(Path::new(&two), task),
            "{task}"
        );
        // Only rank 0 reports (and writes).
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.matches("main score").count(), 1, "{err}");
        // Two ranks on the one process's cache embed nothing.
        let o = mpirun(2, &eval_args(task, kind, &again, &cache1));
        ok(&o);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(" 0 texts embedded"), "{task}: {err}");
        assert_eq!(
            scores(Path::new(&one), task),
            scores(Path::new(&again), task)
        );
    }
}
