//! `instructor eval`: MTEB tasks from local data or the hub, embeddings cached on disk, one
//! mteb-2.x result JSON per task and a markdown summary.
//!
//! `eval` and `hub` never use each other; this is where they meet: a task whose folder is not
//! under `--data` is fetched by the hub client (the files `eval::data::files` names, at the
//! revision the task table pins) and its snapshot folder handed to `eval::data::load`.

use crate::args::{write_atomic, ModelArgs};
use crate::dist::{Gather, World};
use anyhow::{anyhow, bail, Context, Result};
use instructor::{Embeddings, EncodeOptions, Input, Instructor};
use instructor_eval::cache::DiskCache;
use instructor_eval::results::{self, TaskRun};
use instructor_eval::{
    data, infer_model_table, Embedder, EvalError, Protocol, TaskSpec, TaskTable, TaskType,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Task names or types (sts, retrieval, ...), comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub tasks: Vec<String>,
    /// Folder holding one sub-folder per task (`DIR/<Task>/test.jsonl`, `.jsonl.gz` or the hub's
    /// parquet files; BEIR or mteb 2.x parquet configs for retrieval).
    /// A task not there is fetched from its hub dataset (the task table's `dataset`) into the
    /// Hugging Face cache (HF_ENDPOINT, HF_HUB_CACHE, HF_HUB_OFFLINE apply).
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Type of tasks not in the task table (a dataset of your own, named by --tasks).
    #[arg(long)]
    pub task_type: Option<String>,
    #[arg(long, default_value = "test")]
    pub split: String,
    #[arg(long, default_value = "results")]
    pub output: PathBuf,
    /// Embedding cache folder; `<output>/cache` by default.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// A task table (layout of src/eval/instructions.json) whose entries replace the shipped ones
    /// (after the model table of --instructions-for is applied).
    #[arg(long)]
    pub instructions: Option<PathBuf>,
    /// Whose per-task instructions to use: base, large, xl (hkunlp/instructor-<size>, the
    /// INSTRUCTOR repository's tables), another key of the table's `models`, or `none` for the
    /// per-type defaults. Inferred from --model when that is hkunlp/instructor-<size> or a folder
    /// named instructor-<size>; otherwise (fine-tunes) the defaults apply.
    #[arg(long, value_name = "base|large|xl|MODEL|none")]
    pub instructions_for: Option<String>,
    /// Print each task's instructions (JSON lines: task, type, query, corpus, table) and exit
    /// without loading the model or data.
    #[arg(long)]
    pub print_instructions: bool,
    /// `mteb` (2.x definitions) or `paper` (the INSTRUCTOR paper's mteb 1.0 fork).
    #[arg(long, default_value = "mteb")]
    pub protocol: String,
    /// Prompt retrieval's causal language model (a folder or a hub repo: `model_type` gptj or
    /// llama), e.g. EleutherAI/gpt-j-6b; implies --task-type prompt-retrieval.
    #[arg(long)]
    pub lm: Option<String>,
    /// Branch, tag or commit sha of --lm.
    #[arg(long, default_value = "main")]
    pub lm_revision: String,
    /// Precision of --lm (f32, f16, bf16; the half types on CUDA).
    #[arg(long, default_value = "f32")]
    pub lm_dtype: instructor::Dtype,
    /// Prompt retrieval's seed: which `{train,eval}_examples_seed_<seed>.json` are read, and
    /// the seed of main.py's bootstrap score.
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Prompt retrieval as the repository's `--debug`: the example files are still the whole
    /// samples, but only the first 50 pool examples and the first 5 test inputs are used.
    #[arg(long)]
    pub debug: bool,
}

/// `--task-type prompt-retrieval` (any spelling of it) or `--lm`.
fn is_prompt_retrieval(args: &EvalArgs) -> bool {
    let norm = |x: &str| x.to_ascii_lowercase().replace(['_', '-'], "");
    args.lm.is_some()
        || args
            .task_type
            .as_deref()
            .is_some_and(|t| norm(t) == "promptretrieval")
}

/// Runs the selected tasks, writing `<output>/<task>.json` for each and `<output>/summary.md`
/// (or, with --print-instructions, only prints what each task would use).
pub fn run(args: EvalArgs) -> Result<()> {
    if is_prompt_retrieval(&args) {
        return crate::prompt::run(&args);
    }
    let protocol = match args.protocol.as_str() {
        "mteb" => Protocol::Mteb,
        "paper" => Protocol::Paper,
        p => bail!("--protocol: `{p}` (expected mteb or paper)"),
    };
    let (table, model_table) = task_table(&args)?;
    let specs = task_specs(&table, &args)?;
    if args.print_instructions {
        print_instructions(&specs, &table, model_table.as_deref());
        return Ok(());
    }
    if !args.model.quiet {
        eprintln!(
            "instructions: {}",
            model_table.as_deref().unwrap_or("defaults")
        );
    }

    let world = World::init()?;
    world.finish(run_tasks(&specs, &args, protocol, &world))
}

/// Every rank runs every task on the same data: the texts are embedded across the ranks
/// ([`World::encode`]), each rank gets all rows and computes the same scores, and rank 0 writes
/// the result files and the cache.
fn run_tasks(specs: &[TaskSpec], args: &EvalArgs, protocol: Protocol, world: &World) -> Result<()> {
    let margs = world.model_args(&args.model);
    let model_dir = world.root_first(|| margs.resolve())?;
    let model = margs.load_from(&model_dir)?;
    let mut embedder = CachedEmbedder::new(&model, &model_dir, args, margs, world)?;
    if world.is_root() {
        std::fs::create_dir_all(&args.output)
            .with_context(|| format!("{}", args.output.display()))?;
    }
    let mut summary: Vec<(String, TaskType, f64)> = vec![];
    for spec in specs {
        let main_score = eval_task(spec, args, protocol, &mut embedder)?;
        summary.push((spec.name.clone(), spec.kind, main_score));
    }
    if !world.is_root() {
        return Ok(());
    }
    write_atomic(&args.output.join("summary.md"), |w| {
        Ok(w.write_all(results::summary_markdown(&summary).as_bytes())?)
    })
}

/// The task table with --instructions and the model table applied, and that model table's name
/// (`None`: the per-type defaults). The user's model tables join first so that
/// --instructions-for can name one; the user's task entries apply last, over the model table's.
fn task_table(args: &EvalArgs) -> Result<(TaskTable, Option<String>)> {
    let mut table = TaskTable::builtin();
    let user: Option<TaskTable> = match &args.instructions {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{}: not a task table", path.display()))?,
            )
        }
        None => None,
    };
    if let Some(u) = &user {
        table.merge_models(u.models.clone());
    }
    // The model table: --instructions-for wins over what --model implies.
    let model_table = match args.instructions_for.as_deref() {
        Some("none") => None,
        Some(sel) => Some(
            table
                .model_name(sel)
                .map_err(|e| anyhow!("--instructions-for: {e}"))?,
        ),
        None => infer_model_table(&args.model.model).map(str::to_string),
    };
    if let Some(m) = &model_table {
        table.use_model(m).map_err(|e| anyhow!(e))?;
    }
    if let Some(u) = user {
        table.merge(u);
    }
    Ok((table, model_table))
}

/// The specs of the tasks --tasks selects; a selector that is neither a known task nor a type
/// is taken as a task name (its type from --task-type).
fn task_specs(table: &TaskTable, args: &EvalArgs) -> Result<Vec<TaskSpec>> {
    let kind = match &args.task_type {
        Some(t) => {
            Some(TaskType::parse(t).ok_or_else(|| anyhow!("--task-type: unknown type `{t}`"))?)
        }
        None => None,
    };
    let mut names = vec![];
    for sel in &args.tasks {
        let found = table.select(sel);
        names.extend(if found.is_empty() {
            vec![sel.clone()]
        } else {
            found
        });
    }
    names
        .iter()
        .map(|n| table.spec(n, kind).map_err(|e| anyhow!(e)))
        .collect()
}

/// --print-instructions: one JSON line per task, naming the model table its instructions came
/// from if that table has the task.
fn print_instructions(specs: &[TaskSpec], table: &TaskTable, model_table: Option<&str>) {
    for spec in specs {
        let from = model_table.filter(|m| {
            table
                .models
                .get(*m)
                .is_some_and(|t| t.contains_key(&spec.name))
        });
        let line = serde_json::json!({
            "task": spec.name,
            "type": spec.kind,
            "query": spec.query_instruction,
            "corpus": spec.corpus_instruction,
            "table": from,
        });
        println!("{line}");
    }
}

/// Loads (or fetches) one task's data, runs it and writes its result file; returns its main
/// score for the summary.
fn eval_task(
    spec: &TaskSpec,
    args: &EvalArgs,
    protocol: Protocol,
    embedder: &mut CachedEmbedder,
) -> Result<f64> {
    let start = Instant::now();
    // Rank 0 fetches a hub dataset first; the others then find it in the cache.
    let (dir, revision) = embedder.world.root_first(|| task_folder(spec, args))?;
    let loaded = data::load(&dir, &spec.name, spec.kind, &args.split)?;
    embedder.task = spec.name.clone();
    let before = embedder.cache.stats;
    let result = instructor_eval::run_task(spec, &loaded, embedder, protocol)
        .map_err(|e| anyhow!("{}: {e}", spec.name))?;
    let after = embedder.cache.stats;
    if !embedder.world.is_root() {
        return Ok(result.main_score);
    }
    eprintln!(
        "{}: main score {:.4}; {} texts embedded, {} from the cache",
        spec.name,
        result.main_score,
        after.embedded - before.embedded,
        after.cached - before.cached
    );
    let run = TaskRun {
        task: &spec.name,
        revision: &revision,
        split: &args.split,
        protocol,
        evaluation_time: start.elapsed().as_secs_f64(),
    };
    let file = results::task_file(&run, &result);
    write_atomic(&args.output.join(format!("{}.json", spec.name)), |w| {
        serde_json::to_writer_pretty(&mut *w, &file)?;
        Ok(w.write_all(b"\n")?)
    })?;
    Ok(result.main_score)
}

/// The task's folder under `--data`, with revision `local`; else its hub dataset's snapshot,
/// with the commit it holds.
fn task_folder(spec: &TaskSpec, args: &EvalArgs) -> Result<(PathBuf, String)> {
    let local = args.data.join(&spec.name);
    if local.is_dir() {
        return Ok((local, "local".into()));
    }
    let Some(ds) = &spec.dataset else {
        bail!(
            "{}: no such folder, and the task table names no hub dataset for {} (give --data, or \
             a `dataset` entry in --instructions)",
            local.display(),
            spec.name
        );
    };
    let files = data::files(spec.kind, &spec.name, &args.split);
    let dir = crate::hub::dataset(&ds.repo, &ds.revision, &files, args.model.quiet)
        .with_context(|| format!("{}: dataset {}", spec.name, ds.repo))?;
    let commit = dir
        .file_name()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|| ds.revision.clone());
    Ok((dir, commit))
}

/// Identifies the model's outputs: its folder's config and weight files (path, size, mtime) and
/// the dtype, so a changed checkpoint never reuses old embeddings.
fn model_key(root: &Path, args: &ModelArgs) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!("{:?}\0", args.dtype));
    let mut entries: Vec<PathBuf> = walk(root)?;
    entries.sort();
    for p in entries {
        let meta = std::fs::metadata(&p)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos());
        h.update(format!(
            "{}\0{}\0{:?}\0",
            p.strip_prefix(root).unwrap_or(&p).display(),
            meta.len(),
            mtime
        ));
    }
    Ok(hex(&h.finalize()[..8]))
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Embeds through the model, each (instruction, text) cached on disk under the model's key
/// ([`DiskCache`]), so that a rerun embeds nothing and a changed dataset only its new texts.
pub(crate) struct CachedEmbedder<'a> {
    model: &'a Instructor,
    cache: DiskCache,
    batch_size: usize,
    args: ModelArgs,
    /// Names the stage on progress bars.
    pub(crate) task: String,
    world: &'a World,
}

impl<'a> CachedEmbedder<'a> {
    /// The cache lives under --cache (`<output>/cache` by default), in a folder of the model's
    /// key.
    pub(crate) fn new(
        model: &'a Instructor,
        model_dir: &Path,
        args: &EvalArgs,
        model_args: ModelArgs,
        world: &'a World,
    ) -> Result<Self> {
        let cache_dir = args
            .cache
            .clone()
            .unwrap_or_else(|| args.output.join("cache"));
        let cache = DiskCache::new(
            cache_dir.join(model_key(model_dir, &args.model)?),
            model.dim(),
        );
        Ok(Self {
            model,
            cache: if world.is_root() {
                cache
            } else {
                cache.read_only()
            },
            batch_size: args.batch_size,
            args: model_args,
            task: String::new(),
            world,
        })
    }
}

impl Embedder for CachedEmbedder<'_> {
    fn embed(&mut self, inputs: &[Input], stage: &str) -> Result<Embeddings, EvalError> {
        let (model, args, world) = (self.model, &self.args, self.world);
        let what = format!("{} {stage}", self.task);
        let opts = EncodeOptions {
            batch_size: self.batch_size,
            ..Default::default()
        };
        let out = self.cache.get_or_embed(inputs, &mut |todo| {
            let bar = |n| args.progress(n, &what);
            let rows = world.encode(model, todo, &opts, bar, Gather::All)?;
            Ok(rows.expect("every rank gets the rows"))
        });
        // Rank 0 has stored this call's embeddings before any rank reads the cache again, so
        // that every rank sees the same cache and asks for the same texts.
        world.barrier();
        out
    }

    fn token_counts(&mut self, inputs: &[Input]) -> Result<Vec<usize>, EvalError> {
        Ok(self.model.token_counts(inputs)?)
    }
}
