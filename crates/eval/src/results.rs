//! The documents an evaluation produces: one result per task in mteb 2.x's layout (what mteb's
//! `TaskResult.from_disk` loads) and a markdown summary. Building them is pure data, kept apart
//! from the CLI's loading and file writing so that the schema is tested as a library.

use crate::{Protocol, TaskResult, TaskType};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// mteb version whose definitions and result layout these files follow.
pub const MTEB_VERSION: &str = "2.26.24";

/// Where one task's scores came from, as its result file records it.
#[derive(Debug, Clone, Copy)]
pub struct TaskRun<'a> {
    pub task: &'a str,
    /// The dataset commit evaluated (`local` for data from disk).
    pub revision: &'a str,
    pub split: &'a str,
    pub protocol: Protocol,
    /// Seconds the task took, data loading and embedding included.
    pub evaluation_time: f64,
}

/// The task's result document: its scores as the one subset (`default`, English) of its split.
pub fn task_file(run: &TaskRun, result: &TaskResult) -> Value {
    let mut scores = result.scores.clone();
    scores.insert("hf_subset".into(), "default".into());
    scores.insert("languages".into(), json!(["eng-Latn"]));
    json!({
        "dataset_revision": run.revision,
        "task_name": run.task,
        "mteb_version": MTEB_VERSION,
        "scores": { run.split: [scores] },
        "evaluation_time": run.evaluation_time,
        "kg_co2_emissions": null,
        "protocol": protocol_name(run.protocol),
    })
}

/// The protocol as `--protocol` spells it.
fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Mteb => "mteb",
        Protocol::Paper => "paper",
    }
}

/// Per-task main scores (task, type, main score) and per-type averages, as mteb's leaderboard
/// groups them, in percent.
pub fn summary_markdown(rows: &[(String, TaskType, f64)]) -> String {
    let mut s = String::from("| Task | Type | Main score |\n|---|---|---|\n");
    let mut by_type: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (name, kind, score) in rows {
        s += &format!("| {name} | {} | {:.2} |\n", kind.mteb_name(), score * 100.0);
        by_type.entry(kind.mteb_name()).or_default().push(*score);
    }
    s += "\n| Type | Tasks | Average |\n|---|---|---|\n";
    for (kind, v) in &by_type {
        s += &average_row(kind, v);
    }
    let all: Vec<f64> = rows.iter().map(|r| r.2).collect();
    if !all.is_empty() {
        s += &average_row("All", &all);
    }
    s
}

fn average_row(label: &str, v: &[f64]) -> String {
    let average = v.iter().sum::<f64>() / v.len() as f64 * 100.0;
    format!("| {label} | {} | {average:.2} |\n", v.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    #[test]
    fn task_file_has_mteb_layout() {
        let mut scores = Map::new();
        scores.insert("main_score".into(), json!(0.5));
        let result = TaskResult {
            main_score: 0.5,
            scores,
        };
        let run = TaskRun {
            task: "TinySTS",
            revision: "local",
            split: "test",
            protocol: Protocol::Paper,
            evaluation_time: 1.5,
        };
        let file = task_file(&run, &result);
        assert_eq!(
            file,
            json!({
                "dataset_revision": "local",
                "task_name": "TinySTS",
                "mteb_version": MTEB_VERSION,
                "scores": { "test": [{
                    "main_score": 0.5,
                    "hf_subset": "default",
                    "languages": ["eng-Latn"],
                }] },
                "evaluation_time": 1.5,
                "kg_co2_emissions": null,
                "protocol": "paper",
            })
        );
    }

    #[test]
    fn summary_averages_by_type_and_overall() {
        let rows = [
            ("A".to_string(), TaskType::Sts, 0.5),
            ("B".to_string(), TaskType::Sts, 0.25),
            ("C".to_string(), TaskType::Retrieval, 1.0),
        ];
        let expected = "| Task | Type | Main score |\n|---|---|---|\n\
            | A | STS | 50.00 |\n| B | STS | 25.00 |\n| C | Retrieval | 100.00 |\n\
            \n| Type | Tasks | Average |\n|---|---|---|\n\
            | Retrieval | 1 | 100.00 |\n| STS | 2 | 37.50 |\n| All | 3 | 58.33 |\n";
        assert_eq!(summary_markdown(&rows), expected);
    }

    #[test]
    fn summary_of_no_tasks_has_no_overall_row() {
        assert!(!summary_markdown(&[]).contains("| All |"));
    }
}
