//! The shipped per-model instruction tables (the INSTRUCTOR repository's own, for
//! hkunlp/instructor-base, -large and -xl) and how `instructor eval` picks one.

#[path = "../../../tests/common/mod.rs"]
mod common;

use instructor_eval::{infer_model_table, TaskTable, TaskType, MODEL_TABLES};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/models/tiny-relu-bin"
);
const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/eval/data"
);

#[test]
fn shipped_tables_cover_every_listed_task_for_all_three_models() {
    let table = TaskTable::builtin();
    for (_, model) in MODEL_TABLES {
        let t = table
            .models
            .get(model)
            .unwrap_or_else(|| panic!("no table for {model}"));
        for (name, entry) in &table.tasks {
            let e = t
                .get(name)
                .unwrap_or_else(|| panic!("{model} lacks {name}"));
            assert!(
                e.query.as_deref().is_some_and(|q| !q.is_empty()),
                "{model} {name}"
            );
            let kind = entry.kind.as_deref().and_then(TaskType::parse).unwrap();
            if matches!(kind, TaskType::Retrieval | TaskType::Reranking) {
                assert!(e.corpus.is_some(), "{model} {name}: no corpus instruction");
            }
        }
    }
    // Verbatim, odd spacing and punctuation included.
    let q = |m: &str, t: &str| table.models[m][t].query.clone().unwrap();
    let c = |m: &str, t: &str| table.models[m][t].corpus.clone().unwrap();
    assert_eq!(q("hkunlp/instructor-xl", "STS12"), "represent texts, ");
    assert_eq!(q("hkunlp/instructor-xl", "STS15"), "Represent a posts,,, ");
    assert_eq!(
        q("hkunlp/instructor-base", "STS12"),
        "Represent the statement, "
    );
    assert_eq!(
        q("hkunlp/instructor-large", "STS12"),
        "Represent the statement: "
    );
    assert_eq!(
        c("hkunlp/instructor-base", "SciFact"),
        "represent the Scientific passage for retrieval; "
    );
    assert_eq!(
        c("hkunlp/instructor-xl", "AskUbuntuDupQuestions"),
        "Represent the Ubuntu question: "
    );
    assert_eq!(
        q(
            "hkunlp/instructor-xl",
            "TweetSentimentExtractionClassification"
        ),
        "Represent Daily-life spoken sentences for categorization; Input: "
    );
}

#[test]
fn model_table_is_inferred_from_hub_ids_and_folder_names_only() {
    let large = Some("hkunlp/instructor-large");
    assert_eq!(infer_model_table("hkunlp/instructor-large"), large);
    assert_eq!(infer_model_table("/models/Instructor-Large/"), large);
    assert_eq!(
        infer_model_table("/c/hub/models--hkunlp--instructor-large/snapshots/abc123"),
        large
    );
    assert_eq!(
        infer_model_table("instructor-xl"),
        Some("hkunlp/instructor-xl")
    );
    assert_eq!(
        infer_model_table("hkunlp/instructor-base"),
        Some("hkunlp/instructor-base")
    );
    assert_eq!(infer_model_table("me/instructor-large-finetuned"), None);
    assert_eq!(infer_model_table(MODEL), None);
}

fn instructor(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_instructor"))
        .args(["eval", "--model", MODEL, "--quiet"])
        .args(args)
        .env_remove("HF_TOKEN")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

fn printed(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--print-instructions"];
    all.extend_from_slice(args);
    let out = instructor(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn eval_ok(args: &[&str]) -> String {
    let out = instructor(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn instructions_for_large_picks_large_table_and_instructions_file_still_wins() {
    let lines = printed(&["--tasks", "STS12,ArguAna", "--instructions-for", "large"]);
    assert_eq!(lines[0]["query"], "Represent the statement: ");
    assert_eq!(lines[0]["table"], "hkunlp/instructor-large");
    assert_eq!(
        lines[1]["query"],
        "Represent a Debate argument for retrieving a counter-argument: "
    );
    assert_eq!(lines[1]["corpus"], "Represent a Counter-argument: ");
    // The fixture's folder name implies no table: the per-type defaults.
    let lines = printed(&["--tasks", "STS12"]);
    assert_eq!(lines[0]["table"], Value::Null);
    let default = TaskTable::builtin().defaults["sts"].query.clone().unwrap();
    assert_eq!(lines[0]["query"], default.as_str());
    // --instructions overrides the model table.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("mine.json");
    std::fs::write(&file, r#"{"tasks": {"STS12": {"query": "Mine: "}}}"#).unwrap();
    let lines = printed(&[
        "--tasks",
        "STS12",
        "--instructions-for",
        "hkunlp/instructor-large",
        "--instructions",
        file.to_str().unwrap(),
    ]);
    assert_eq!(lines[0]["query"], "Mine: ");
    // An unknown table is an error naming the known ones.
    let out = instructor(&["--tasks", "STS12", "--instructions-for", "huge"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hkunlp/instructor-large"));
}

/// A real run embeds with the large table's instruction: the embedding cache (keyed by
/// instruction and text) built with `--instructions-for large` serves a rerun that names that
/// instruction explicitly, and not one with the per-type default.
#[test]
fn eval_with_instructions_for_large_embeds_with_the_large_instruction() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("STS12")).unwrap();
    std::fs::copy(
        Path::new(DATA).join("TinySTS/test.jsonl"),
        data.join("STS12/test.jsonl"),
    )
    .unwrap();
    let (out, cache) = (tmp.path().join("out"), tmp.path().join("cache"));
    let base = [
        "--data",
        data.to_str().unwrap(),
        "--tasks",
        "STS12",
        "--output",
        out.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
    ];
    let first = common::embedded(
        &eval_ok(&[&base[..], &["--instructions-for", "large"]].concat()),
        "STS12",
    );
    assert!(first > 0);
    let file = tmp.path().join("large.json");
    std::fs::write(
        &file,
        r#"{"tasks": {"STS12": {"query": "Represent the statement: "}}}"#,
    )
    .unwrap();
    let explicit = [&base[..], &["--instructions", file.to_str().unwrap()]].concat();
    assert_eq!(common::embedded(&eval_ok(&explicit), "STS12"), 0);
    // The per-type default is another instruction: nothing of it is cached yet.
    assert_eq!(common::embedded(&eval_ok(&base), "STS12"), first);
}
