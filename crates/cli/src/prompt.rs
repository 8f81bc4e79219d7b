//! `instructor eval --task-type prompt-retrieval --lm M`: the INSTRUCTOR paper's third benchmark
//! as its repository's `evaluation/prompt_retrieval/main.py` runs it, stage by stage, each
//! written to disk under `<output>/<task>/` so that a rerun redoes nothing:
//! 1. the task's pool and test inputs (`--data/<task>/{train,eval}_examples_seed_<seed>.json`, the
//!    files the repository's `get_task.py` caches; else its hub dataset, sampled as `get_task.py`
//!    samples it, and those two files written under `<output>/<task>/`) embedded with the task's
//!    instruction, through the embedding cache;
//! 2. the demonstrations for each test input (`select`), written as `prompts/<id>.json` in the
//!    repository's layout `[[test_id, [[pool index], …], label], [{input, output}, …], example]`;
//! 3. each option scored by the language model in MetaICL's direct format, the prediction
//!    written as `results/<id>.json` (`[label string, gold label]`, the repository's layout):
//!    an example whose result exists for the same prompt and the same model (`lm.json`: its
//!    folder and precision) is not scored again;
//! 4. the score as `main.py` computes it, and accuracy, in `<output>/<task>.json`.

use crate::args::write_atomic;
use crate::dist::World;
use crate::eval::{CachedEmbedder, EvalArgs};
use anyhow::{anyhow, bail, Context, Result};
use instructor::Input;
use instructor_eval::icl::{self, Demo, IclTask};
use instructor_eval::lm::CausalLm;
use instructor_eval::metrics::prompt_retrieval::select;
use instructor_eval::Embedder;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Runs every task of --tasks.
pub fn run(args: &EvalArgs) -> Result<()> {
    let tasks = args
        .tasks
        .iter()
        .map(|t| {
            IclTask::parse(t).ok_or_else(|| {
                let known: Vec<_> = IclTask::ALL.iter().map(|t| t.name()).collect();
                anyhow!(
                    "--tasks: `{t}` is not a prompt-retrieval task (known: {})",
                    known.join(", ")
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let lm_name = args.lm.as_deref().ok_or_else(|| {
        anyhow!("--task-type prompt-retrieval needs --lm (e.g. EleutherAI/gpt-j-6b)")
    })?;
    let world = World::init()?;
    if world.size() > 1 {
        bail!("prompt retrieval runs in one process, not under mpirun");
    }
    let model_dir = args.model.resolve()?;
    let model = args.model.load_from(&model_dir)?;
    let lm_dir = crate::hub::resolve_lm(lm_name, &args.lm_revision, args.model.quiet)?;
    let device = args
        .model
        .device
        .candle()
        .map_err(|e| anyhow!("--device for the language model: {e}"))?;
    let started = Instant::now();
    let lm = CausalLm::load(&lm_dir, &device, args.lm_dtype.to_candle())?;
    if !args.model.quiet {
        eprintln!(
            "language model {} loaded in {:.1} s",
            lm_dir.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let mut embedder = CachedEmbedder::new(&model, &model_dir, args, args.model.clone(), &world)?;
    std::fs::create_dir_all(&args.output).with_context(|| format!("{}", args.output.display()))?;
    let mut rows = vec![];
    for task in tasks {
        let (score, acc) = run_task(task, args, &mut embedder, &lm, &lm_dir)?;
        rows.push(format!(
            "| {} | {score:.4} | {:.2} |\n",
            task.name(),
            acc * 100.0
        ));
    }
    let summary =
        String::from("| Task | ROUGE-L (main.py) | Accuracy |\n|---|---|---|\n") + &rows.concat();
    write_atomic(&args.output.join("summary.md"), |w| {
        Ok(w.write_all(summary.as_bytes())?)
    })
}

/// Reads a JSON array of examples.
fn examples(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "{}: the task's examples (the files the repository's get_task.py writes)",
            path.display()
        )
    })?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    match v {
        Value::Array(rows) => Ok(rows),
        _ => bail!("{}: not a JSON array of examples", path.display()),
    }
}

/// Reads a JSON file, `None` when it is absent or unreadable (a result not yet written).
fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, v)?;
        Ok(())
    })
}

/// One task: returns (main.py's score, accuracy).
fn run_task(
    task: IclTask,
    args: &EvalArgs,
    embedder: &mut CachedEmbedder,
    lm: &CausalLm,
    lm_dir: &Path,
) -> Result<(f64, f64)> {
    let start = Instant::now();
    let name = task.name();
    let dir = args.output.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let files = |d: &Path| {
        ["train", "eval"].map(|f| d.join(format!("{f}_examples_seed_{}.json", args.seed)))
    };
    let [mut train_path, mut eval_path] = files(&args.data.join(name));
    let mut revision = "local".to_string();
    if !train_path.exists() && !eval_path.exists() {
        // As get_task.py: sample the hub dataset, and keep the examples next to the results.
        [train_path, eval_path] = files(&dir);
        revision = fetch_examples(task, args, &train_path, &eval_path)?;
    }
    let (mut pool, mut tests) = (examples(&train_path)?, examples(&eval_path)?);
    if args.debug {
        pool.truncate(50);
        tests.truncate(5);
    }
    fn at(path: &Path, i: usize) -> impl Fn(String) -> anyhow::Error + '_ {
        move |e| anyhow!("{}: example {i}: {e}", path.display())
    }
    let check = |path: &Path, rows: &[Value]| -> Result<Vec<(String, String)>> {
        rows.iter()
            .enumerate()
            .map(|(i, ex)| task.format(ex).map_err(at(path, i)))
            .collect()
    };
    let (pool_fmt, test_fmt) = (check(&train_path, &pool)?, check(&eval_path, &tests)?);
    let golds: Vec<usize> = tests
        .iter()
        .map(|ex| task.label_of(ex).expect("checked by format"))
        .collect();
    let ids = tests
        .iter()
        .enumerate()
        .map(|(i, ex)| match &ex["id"] {
            Value::Number(n) => Ok(n.to_string()),
            Value::String(s) if !s.contains(['/', '\\']) && !s.is_empty() => Ok(s.clone()),
            _ => Err(anyhow!(
                "{}: example {i}: field `id`: missing, or not a number or a plain name",
                eval_path.display()
            )),
        })
        .collect::<Result<Vec<_>>>()?;

    // 1. Embeddings, with the task's instruction (`--add_prompt`).
    let inputs = |path: &Path, rows: &[Value]| -> Result<Vec<Input>> {
        rows.iter()
            .enumerate()
            .map(|(i, ex)| {
                let text = task.text_to_encode(ex).map_err(at(path, i))?;
                Ok(match task.instruction() {
                    Some(ins) => Input::new(ins, text),
                    None => Input::plain(text),
                })
            })
            .collect()
    };
    embedder.task = name.to_string();
    let pool_emb = embedder.embed(&inputs(&train_path, &pool)?, "pool")?;
    let test_emb = embedder.embed(&inputs(&eval_path, &tests)?, "test inputs")?;

    // 2. Demonstrations, lengths in the language model's tokens.
    let len = |s: &str| lm.tokenize(s).map(|t| t.len());
    let pool_lens = pool_fmt
        .iter()
        .map(|(i, o)| Ok(len(i)? + len(o)?))
        .collect::<Result<Vec<_>, instructor_eval::lm::LmError>>()?;
    let test_lens = test_fmt
        .iter()
        .map(|(i, _)| len(i))
        .collect::<Result<Vec<_>, _>>()?;
    let rows =
        |e: &instructor::Embeddings| (0..e.rows).map(|i| e.row(i).to_vec()).collect::<Vec<_>>();
    let chosen = select(
        &rows(&pool_emb),
        &pool_lens,
        &rows(&test_emb),
        &test_lens,
        icl::BUDGET,
    );
    let (prompt_dir, result_dir) = (dir.join("prompts"), dir.join("results"));
    for d in [&prompt_dir, &result_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("{}", d.display()))?;
    }
    // Results of another language model (or precision) are not this one's.
    let lm_id = json!({ "lm": lm_dir, "dtype": format!("{:?}", args.lm_dtype) });
    let lm_file = dir.join("lm.json");
    if read_json(&lm_file).as_ref() != Some(&lm_id) {
        std::fs::remove_dir_all(&result_dir)
            .with_context(|| format!("{}", result_dir.display()))?;
        std::fs::create_dir_all(&result_dir)
            .with_context(|| format!("{}", result_dir.display()))?;
        write_json(&lm_file, &lm_id)?;
    }
    let mut prompts = Vec::with_capacity(tests.len());
    for (t, picks) in chosen.iter().enumerate() {
        let demos: Vec<Demo> = picks
            .iter()
            .map(|&i| Demo {
                input: pool_fmt[i].0.clone(),
                output: pool_fmt[i].1.clone(),
            })
            .collect();
        let file = json!([
            [t, picks.iter().map(|&i| [i]).collect::<Vec<_>>(), golds[t]],
            demos,
            tests[t]
        ]);
        let path = prompt_dir.join(format!("{}.json", ids[t]));
        // A changed prompt (another embedder, other data) makes its old result stale.
        if read_json(&path).as_ref() != Some(&file) {
            let _ = std::fs::remove_file(result_dir.join(format!("{}.json", ids[t])));
            write_json(&path, &file)?;
        }
        prompts.push(demos);
    }

    // 3. The language model's predictions, skipping those already on disk.
    let labels = task.labels();
    let tok = |s: &str| lm.tokenize(s).map_err(|e| e.to_string());
    let result_file = |t: usize| result_dir.join(format!("{}.json", ids[t]));
    let mut preds: Vec<Option<usize>> = (0..tests.len())
        .map(|t| prediction(&result_file(t), labels))
        .collect();
    let todo: Vec<usize> = (0..tests.len()).filter(|&t| preds[t].is_none()).collect();
    let bar = args
        .model
        .progress(todo.len(), &format!("{name} language model"));
    for &t in &todo {
        let seqs = icl::tensorize(&tok, &prompts[t], &test_fmt[t].0, labels)
            .map_err(|e| anyhow!("{}: example {t}: {e}", eval_path.display()))?;
        let pred = icl::predict(&lm.mean_losses(&seqs)?);
        write_json(&result_file(t), &json!([labels[pred], golds[t]]))?;
        preds[t] = Some(pred);
        bar.inc(1);
    }
    bar.finish_and_clear();

    // 4. The score.
    let preds: Vec<usize> = preds
        .into_iter()
        .map(|p| p.expect("scored above"))
        .collect();
    let score = icl::repo_rouge_l(&preds, &golds, args.seed);
    let acc = icl::accuracy(&preds, &golds);
    let demos: Vec<usize> = prompts.iter().map(Vec::len).collect();
    let result = json!({
        "task_name": name,
        "task_type": "PromptRetrieval",
        "dataset_revision": revision,
        "scores": { "test": [{
            "main_score": score / 100.0,
            "rougeL": score,
            "accuracy": acc,
            "n_examples": tests.len(),
            "mean_demonstrations": demos.iter().sum::<usize>() as f64 / demos.len().max(1) as f64,
            "hf_subset": "default",
            "languages": ["eng-Latn"],
        }]},
        "language_model": lm_label(args),
        "seed": args.seed,
        "evaluation_time": start.elapsed().as_secs_f64(),
    });
    write_json(&args.output.join(format!("{name}.json")), &result)?;
    if !args.model.quiet {
        eprintln!(
            "{name}: ROUGE-L {score:.4} (main.py's score), accuracy {:.4}; {} of {} examples scored now",
            acc,
            todo.len(),
            tests.len()
        );
    }
    Ok((score, acc))
}

/// The task's hub dataset at its revision, sampled as `get_task.py` samples it with --seed,
/// written to the two example files; returns the dataset commit read.
fn fetch_examples(task: IclTask, args: &EvalArgs, train: &Path, eval: &Path) -> Result<String> {
    let d = task.dataset();
    let groups = vec![
        instructor_eval::data::split_files(d.config, d.pool.0),
        instructor_eval::data::split_files(d.config, d.test.0),
    ];
    let snapshot = crate::hub::dataset(d.repo, d.revision, &groups, args.model.quiet)
        .with_context(|| format!("{}: dataset {}", task.name(), d.repo))?;
    let rows = |split| instructor_eval::data::split_rows(&snapshot, d.config, split);
    let (pool, tests) = icl::sample_examples(task, &rows(d.pool.0)?, &rows(d.test.0)?, args.seed)
        .map_err(|e| anyhow!("{}: dataset {}: {e}", task.name(), d.repo))?;
    write_json(train, &Value::Array(pool))?;
    write_json(eval, &Value::Array(tests))?;
    Ok(snapshot
        .file_name()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|| d.revision.to_string()))
}

fn lm_label(args: &EvalArgs) -> String {
    match &args.lm {
        Some(lm) if !PathBuf::from(lm).is_dir() => format!("{lm}@{}", args.lm_revision),
        Some(lm) => lm.clone(),
        None => String::new(),
    }
}

/// The label index of a results file (`[label string, gold]`), if it holds one of `labels`.
fn prediction(path: &Path, labels: &[&str]) -> Option<usize> {
    let v = read_json(path)?;
    let s = v.get(0)?.as_str()?;
    labels.iter().position(|l| *l == s)
}
