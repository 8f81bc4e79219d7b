//! `instructor eval --task-type prompt-retrieval` end to end: the tiny INSTRUCTOR and the tiny
//! GPT-J served by the mock hub, two tiny tasks in the repository's cached-examples layout; the
//! prompts, predictions and score equal what the repository's main.py computes for them
//! (restated in tests/fixtures/prompt_retrieval/make_fixtures.py); a rerun scores nothing again.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

struct Setup {
    _hub: instructor_mock_hub::MockHub,
    url: String,
    tmp: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let hub = instructor_mock_hub::MockHub::start(0).unwrap();
        hub.add_folders("fixtures", &fixtures().join("models"))
            .unwrap();
        Self {
            url: hub.url(),
            _hub: hub,
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, data: &Path, out: &Path, tasks: &str) -> std::process::Output {
        self.run_with(data, out, tasks, &[])
    }

    fn run_with(
        &self,
        data: &Path,
        out: &Path,
        tasks: &str,
        more: &[&str],
    ) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_instructor"))
            .args(["eval", "--task-type", "prompt-retrieval", "--quiet"])
            .args(more)
            .args([
                "--model",
                "fixtures/tiny-relu-bin",
                "--lm",
                "fixtures/tiny-gptj",
            ])
            .args(["--tasks", tasks, "--data", data.to_str().unwrap()])
            .args(["--output", out.to_str().unwrap()])
            .env("HF_ENDPOINT", &self.url)
            .env("HF_HUB_CACHE", self.tmp.path().join("hf"))
            .env_remove("HF_TOKEN")
            .env_remove("HF_HUB_OFFLINE")
            .output()
            .unwrap()
    }

    fn ok(&self, data: &Path, out: &Path, tasks: &str) -> String {
        self.ok_with(data, out, tasks, &[])
    }

    fn ok_with(&self, data: &Path, out: &Path, tasks: &str, more: &[&str]) -> String {
        let o = self.run_with(data, out, tasks, more);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        err
    }
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `*.json` of `dir`, by file name.
fn files(dir: &Path) -> Vec<(String, Value)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                json(&p),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn prompts_predictions_and_score_equal_the_repository_and_a_rerun_scores_nothing() {
    let setup = Setup::new();
    let data = fixtures().join("prompt_retrieval/data");
    let out = setup.tmp.path().join("out");
    setup.ok(&data, &out, "sst5,rte");
    for task in ["sst5", "rte"] {
        let want = fixtures().join("prompt_retrieval/expected").join(task);
        for stage in ["prompts", "results"] {
            let (got, exp) = (files(&out.join(task).join(stage)), files(&want.join(stage)));
            assert_eq!(got.len(), 6, "{task} {stage}");
            assert_eq!(got, exp, "{task} {stage}");
        }
        let result = json(&out.join(format!("{task}.json")));
        let scores = &result["scores"]["test"][0];
        assert_eq!(
            scores["rougeL"],
            json(&want.join("result_summary.json")),
            "{task}"
        );
        assert_eq!(result["task_type"], "PromptRetrieval");
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("| sst5 |") && summary.contains("| rte |"),
        "{summary}"
    );

    // A rerun scores nothing; a lost or damaged result is scored again, and only it.
    let quiet_run = |lm: &str, expect: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_instructor"))
            .args(["eval", "--lm", lm, "--model", "fixtures/tiny-relu-bin"])
            .args(["--tasks", "sst5", "--data", data.to_str().unwrap()])
            .args(["--output", out.to_str().unwrap()])
            .env("HF_ENDPOINT", &setup.url)
            .env("HF_HUB_CACHE", setup.tmp.path().join("hf"))
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        assert!(err.contains(expect), "{expect:?} not in:\n{err}");
    };
    quiet_run("fixtures/tiny-gptj", "0 of 6 examples scored now");
    std::fs::remove_file(out.join("sst5/results/2.json")).unwrap();
    std::fs::write(out.join("sst5/results/4.json"), "[\"very neg").unwrap();
    quiet_run("fixtures/tiny-gptj", "2 of 6 examples scored now");
    let want = fixtures().join("prompt_retrieval/expected/sst5/results");
    assert_eq!(files(&out.join("sst5/results")), files(&want));
    // Another language model (the same weights as a .bin, but another folder) scores anew.
    let bin = fixtures().join("models/tiny-gptj-bin");
    quiet_run(bin.to_str().unwrap(), "6 of 6 examples scored now");
    assert_eq!(files(&out.join("sst5/results")), files(&want));
}

/// No `--data` folder: the task's hub dataset (here a tiny stand-in served as SetFit/sst5) is
/// sampled as get_task.py samples it, and the examples kept under the output; `--debug` then
/// uses the first 5 test inputs, as the repository's does.
#[test]
fn examples_not_on_disk_are_sampled_from_the_hub_dataset_as_get_task_does() {
    let setup = Setup::new();
    setup
        ._hub
        .add_folders(
            "datasets/SetFit",
            &fixtures().join("prompt_retrieval/hub/SetFit"),
        )
        .unwrap();
    let out = setup.tmp.path().join("out");
    setup.ok_with(
        &setup.tmp.path().join("no-data"),
        &out,
        "sst5",
        &["--debug"],
    );
    let want = fixtures().join("prompt_retrieval/expected/hub-sst5");
    for f in ["train_examples_seed_0.json", "eval_examples_seed_0.json"] {
        assert_eq!(json(&out.join("sst5").join(f)), json(&want.join(f)), "{f}");
    }
    let result = json(&out.join("sst5.json"));
    let commit = setup._hub.commit("datasets/SetFit/sst5");
    assert_eq!(result["dataset_revision"], commit.as_str());
    assert_eq!(result["scores"]["test"][0]["n_examples"], 5);
    assert_eq!(
        std::fs::read_dir(out.join("sst5/results")).unwrap().count(),
        5
    );
}

#[test]
fn bad_examples_and_unknown_tasks_are_named() {
    let setup = Setup::new();
    let data = setup.tmp.path().join("data");
    std::fs::create_dir_all(data.join("sst5")).unwrap();
    let src = fixtures().join("prompt_retrieval/data/sst5");
    std::fs::copy(
        src.join("train_examples_seed_0.json"),
        data.join("sst5/train_examples_seed_0.json"),
    )
    .unwrap();
    let mut evals = json(&src.join("eval_examples_seed_0.json"));
    evals[3].as_object_mut().unwrap().remove("text");
    std::fs::write(
        data.join("sst5/eval_examples_seed_0.json"),
        evals.to_string(),
    )
    .unwrap();
    let out = setup.tmp.path().join("out");
    let o = setup.run(&data, &out, "sst5");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("eval_examples_seed_0.json: example 3: field `text`"),
        "{err}"
    );
    assert!(
        !out.join("sst5.json").exists(),
        "no result for a task that failed"
    );

    let o = setup.run(&data, &out, "mnli");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("`mnli` is not a prompt-retrieval task"),
        "{err}"
    );
}
