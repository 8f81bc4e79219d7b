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

/// `mpirun -np N instructor ARGS`, run to the end within [`LIMIT`].
fn mpirun(np: usize, args: &[&str]) -> Output {
    bounded(mpirun_command(np, args))
}

/// `mpirun -np N instructor ARGS` with OpenMPI's flags for a container: as root, more ranks than
/// cores, no binding, TCP over loopback only.
fn mpirun_command(np: usize, args: &[&str]) -> Command {
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
    cmd
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

/// `instructor train` on the synthetic MEDI data, without dropout (whose masks depend on how a
/// batch is split), `batch` examples per rank and a checkpoint every 2 updates.
fn train_args(data: &Path, out: &Path, batch: usize, steps: usize) -> Vec<String> {
    let model = model_dir("tiny-gelu-st");
    [
        "train",
        "--quiet",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--batch-size",
        &batch.to_string(),
        "--max-steps",
        &steps.to_string(),
        "--save-steps",
        "2",
        "--dropout",
        "0",
        "--lr",
        "1e-3",
    ]
    .map(String::from)
    .to_vec()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Every weight of every `.safetensors` file under `dir` (the model's and the optimizer's), by
/// file and name.
fn weights(dir: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    let mut out = std::collections::BTreeMap::new();
    for file in files_under(dir) {
        if file.extension().is_some_and(|x| x == "safetensors") {
            let cpu = candle_core::Device::Cpu;
            for (name, t) in candle_core::safetensors::load(dir.join(&file), &cpu).unwrap() {
                let t = t.to_dtype(candle_core::DType::F32).unwrap();
                out.insert(
                    format!("{}:{name}", file.display()),
                    t.flatten_all().unwrap().to_vec1().unwrap(),
                );
            }
        }
    }
    out
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    files
}

/// The largest difference between two checkpoints' weights, which must have the same names.
fn weights_diff(a: &Path, b: &Path) -> f32 {
    let (a, b) = (weights(a), weights(b));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert!(a.len() > 10, "{:?}", a.keys());
    a.iter()
        .map(|(k, x)| max_abs_diff(x, &b[k]))
        .fold(0.0, f32::max)
}

fn losses(out: &Path) -> Vec<f64> {
    let log = std::fs::read_to_string(out.join("train_log.jsonl")).unwrap();
    log.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

#[test]
fn train_on_two_ranks_follows_one_process_with_the_global_batch_and_resumes_on_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _) = synthetic(tmp.path());
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    ok(&alone(&strs(&train_args(&data, &one, 4, 4))));
    let o = mpirun(2, &strs(&train_args(&data, &two, 2, 4)));
    ok(&o);
    // Rank 0 alone prints the checkpoint.
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        two.join("checkpoint-4").to_str().unwrap()
    );

    let d = weights_diff(&one.join("checkpoint-4"), &two.join("checkpoint-4"));
    assert!(
        d <= 1e-6,
        "2 ranks × 2 vs 1 process × 4: weights differ by {d}"
    );
    // And training moved them: the comparison is not between two copies of the start.
    let start = weights(&model_dir("tiny-gelu-st"));
    let end = weights(&two.join("checkpoint-4"));
    let moved = start
        .iter()
        .filter_map(|(k, x)| end.get(k).map(|y| max_abs_diff(x, y)))
        .fold(0.0, f32::max);
    assert!(moved > 1e-3, "weights moved by {moved}");

    let (l1, l2) = (losses(&one), losses(&two));
    assert_eq!(l1.len(), 4);
    assert_eq!(l2.len(), 4);
    for (a, b) in l1.iter().zip(&l2) {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "loss curves {l1:?} vs {l2:?}"
        );
    }

    // The 2-rank run's checkpoint-2 goes on in one process with the same global batch.
    let three = tmp.path().join("three");
    std::fs::create_dir(&three).unwrap();
    let (src, dst) = (two.join("checkpoint-2"), three.join("checkpoint-2"));
    for file in files_under(&src) {
        std::fs::create_dir_all(dst.join(&file).parent().unwrap()).unwrap();
        std::fs::copy(src.join(&file), dst.join(&file)).unwrap();
    }
    let mut resume = train_args(&data, &three, 4, 4);
    resume.push("--resume".into());
    ok(&alone(&strs(&resume)));
    let d = weights_diff(&one.join("checkpoint-4"), &three.join("checkpoint-4"));
    assert!(d <= 1e-6, "resumed on 1 rank: weights differ by {d}");
    // A global batch that differs is refused rather than silently mixed.
    let mut other = train_args(&data, &three, 2, 4);
    other.push("--resume".into());
    let o = alone(&strs(&other));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("other settings"));
}

/// The pid of rank `rank` of the mpirun whose command line names `out`.
fn rank_pid(out: &Path, rank: usize) -> Option<u32> {
    let want = format!("OMPI_COMM_WORLD_RANK={rank}");
    let out = out.to_str().unwrap().as_bytes();
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        (cmd.windows(out.len()).any(|w| w == out)
            && env.split(|&b| b == 0).any(|v| v == want.as_bytes()))
        .then_some(pid)
    })
}

#[test]
fn a_killed_rank_stops_the_run_naming_it_and_the_last_checkpoint_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _) = synthetic(tmp.path());
    let out = tmp.path().join("out");
    let args = train_args(&data, &out, 2, 400);
    let mut child = mpirun_command(2, &strs(&args))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !out.join("checkpoint-2").is_dir() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        assert!(start.elapsed() < LIMIT, "no checkpoint-2 after {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = rank_pid(&out, 1).expect("rank 1 is running");
    let killed = Instant::now();
    assert!(Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    while child.try_wait().unwrap().is_none() {
        if killed.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("the run still goes on 30 s after rank 1 was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("rank 1"), "{err}");
    eprintln!(
        "stopped {:?} after rank 1 was killed: {}",
        killed.elapsed(),
        err.lines().find(|l| l.contains("rank 1")).unwrap().trim()
    );
    assert!(
        !out.join("checkpoint-400").exists(),
        "the run finished before the kill: {err}"
    );

    // Every checkpoint in the folder is whole: it loads, and the latest resumes to the end in
    // one process (which first removes a save the kill cut short, if any).
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("checkpoint-")
        {
            instructor::Instructor::load(&p, &Default::default()).unwrap();
        }
    }
    let mut resume = train_args(&data, &out, 4, 400);
    resume.push("--resume".into());
    let o = alone(&strs(&resume));
    ok(&o);
    assert!(out.join("checkpoint-400").is_dir());
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}
