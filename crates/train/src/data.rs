//! MEDI-format training data and INSTRUCTOR's task-pure batches.
//!
//! A record is `{"query": [instruction, text], "pos": [instruction, text], "neg": [instruction,
//! text], "task_name": ...}` (`task_id` is accepted in place of `task_name`), in a JSON array
//! (MEDI's `medi-data.json`) or one per line (JSON lines). In-batch negatives only make sense
//! within one task, so batches are cut from runs of consecutive same-task records, as the
//! reference `train.py` does, and only whole batches are shuffled.

use super::rng::{SplitMix64, STREAM_ORDER};
use instructor::Input;
use instructor::{Error, Result};
use serde_json::value::RawValue;
use serde_json::Value;
use std::ops::Range;

/// One training triple.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub query: Input,
    pub pos: Input,
    pub neg: Input,
    /// `task_name` (or `task_id`) as a string: what batches must not mix.
    pub task: String,
}

/// A record that is not a valid triple, located for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidRecord {
    /// 0-based position among the records (the index in the JSON array).
    pub index: usize,
    /// 1-based line where the record starts.
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for InvalidRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "record {} (line {}): {}",
            self.index, self.line, self.reason
        )
    }
}

/// A parsed data file: the valid examples in file order, and what was wrong with the others.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub examples: Vec<Example>,
    pub invalid: Vec<InvalidRecord>,
}

impl Dataset {
    /// Parses a `.json` array or JSON lines (the first non-blank byte tells which). Fails only
    /// when the text as a whole cannot be read as records (a broken JSON array); bad records are
    /// collected in `invalid`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut out = Dataset::default();
        let mut add =
            |index: usize, line: usize, record: std::result::Result<Value, String>| match record
                .and_then(|v| example(&v))
            {
                Ok(e) => out.examples.push(e),
                Err(reason) => out.invalid.push(InvalidRecord {
                    index,
                    line,
                    reason,
                }),
            };
        if text.trim_start().starts_with('[') {
            let records: Vec<&RawValue> = serde_json::from_str(text)
                .map_err(|e| Error::Input(format!("not a valid JSON array: {e}")))?;
            // Records come in file order: count newlines incrementally (MEDI has 1.4M records).
            let (mut offset, mut line) = (0, 1);
            for (index, raw) in records.iter().enumerate() {
                let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
                line += text.as_bytes()[offset..start]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                offset = start;
                let value = serde_json::from_str(raw.get()).map_err(|e| e.to_string());
                add(index, line, value);
            }
        } else {
            let lines = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty());
            for (index, (i, line)) in lines.enumerate() {
                let value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"));
                add(index, i + 1, value);
            }
        }
        Ok(out)
    }

    /// The error that stops training when records are invalid and `--skip-invalid` is not given:
    /// the first few, and how many there are.
    pub fn invalid_error(&self) -> Error {
        const SHOWN: usize = 10;
        let mut msg = format!(
            "{} invalid record(s) (pass --skip-invalid to train on the rest):",
            self.invalid.len()
        );
        for r in self.invalid.iter().take(SHOWN) {
            msg.push_str(&format!("\n  {r}"));
        }
        if self.invalid.len() > SHOWN {
            msg.push_str(&format!("\n  ... and {} more", self.invalid.len() - SHOWN));
        }
        Error::Input(msg)
    }
}

fn example(v: &Value) -> std::result::Result<Example, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| "expected an object with query, pos, neg and task_name".to_string())?;
    let pair = |field: &str| -> std::result::Result<Input, String> {
        match obj.get(field).and_then(Value::as_array).map(Vec::as_slice) {
            Some([Value::String(instruction), Value::String(text)]) => {
                Ok(Input::new(instruction.clone(), text.clone()))
            }
            None if !obj.contains_key(field) => Err(format!("missing field `{field}`")),
            _ => Err(format!(
                "field `{field}`: expected [instruction, text] (two strings)"
            )),
        }
    };
    let task = match (obj.get("task_name"), obj.get("task_id")) {
        (Some(Value::String(s)), _) => s.clone(),
        (None, Some(Value::String(s))) => s.clone(),
        (None, Some(Value::Number(n))) => n.to_string(),
        (None, None) => return Err("missing field `task_name` (or `task_id`)".into()),
        _ => return Err("field `task_name`/`task_id`: expected a string or an integer".into()),
    };
    Ok(Example {
        query: pair("query")?,
        pos: pair("pos")?,
        neg: pair("neg")?,
        task,
    })
}

/// Batches of `batch_size` consecutive examples of one task: each run of same-task examples is
/// cut into whole batches and its remainder dropped (`train.py` keeps only full batches too).
/// Returns the batches and the number of examples dropped.
pub fn task_batches(examples: &[Example], batch_size: usize) -> (Vec<Range<usize>>, usize) {
    let mut batches = Vec::new();
    let mut start = 0;
    while start < examples.len() {
        let task = &examples[start].task;
        let end = start
            + examples[start..]
                .iter()
                .take_while(|e| &e.task == task)
                .count();
        let mut b = start;
        while b + batch_size <= end {
            batches.push(b..b + batch_size);
            b += batch_size;
        }
        start = end;
    }
    let dropped = examples.len() - batches.len() * batch_size;
    (batches, dropped)
}

/// The order in which epoch `epoch` visits `n` batches: a shuffle derived from the seed and the
/// epoch, so that any position of the run can be found again from the step alone.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    SplitMix64::derive(seed, STREAM_ORDER, epoch as u64).shuffle(&mut order);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(task: &str) -> String {
        format!(
            r#"{{"query": ["q: ", "a"], "pos": ["p: ", "b"], "neg": ["p: ", "c"], "task_name": "{task}"}}"#
        )
    }

    #[test]
    fn batches_never_mix_tasks_and_drop_remainders() {
        let tasks = ["a", "a", "a", "a", "a", "b", "b", "a", "a", "a"];
        let text: Vec<String> = tasks.iter().map(|t| record(t)).collect();
        let data = Dataset::parse(&text.join("\n")).unwrap();
        let (batches, dropped) = task_batches(&data.examples, 2);
        assert_eq!(batches, vec![0..2, 2..4, 5..7, 7..9]);
        assert_eq!(dropped, 2);
        for b in &batches {
            assert!(data.examples[b.clone()]
                .iter()
                .all(|e| e.task == data.examples[b.start].task));
        }
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(50, 42, 0);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(50, 42, 0));
        assert_ne!(a, epoch_order(50, 42, 1));
        assert_ne!(a, epoch_order(50, 43, 0));
    }

    #[test]
    fn array_and_lines_give_the_same_examples() {
        let recs = [record("x"), record("y")];
        let lines = Dataset::parse(&recs.join("\n")).unwrap();
        let array = Dataset::parse(&format!("[\n{},\n{}\n]", recs[0], recs[1])).unwrap();
        assert_eq!(lines.examples, array.examples);
        assert_eq!(lines.examples[1].task, "y");
        assert_eq!(lines.examples[0].neg, Input::new("p: ", "c"));
    }

    #[test]
    fn task_id_numbers_are_tasks() {
        let d = Dataset::parse(
            r#"{"query": ["", "a"], "pos": ["", "b"], "neg": ["", "c"], "task_id": 7}"#,
        )
        .unwrap();
        assert_eq!(d.examples[0].task, "7");
    }
}
