//! Native training: INSTRUCTOR's multitask contrastive fine-tuning on MEDI-format data, as the
//! reference `train.py` runs it on Hugging Face's Trainer.
//!
//! The model is trained through [`Instructor::forward`], the pass inference uses (instruction
//! attended but not pooled, Dense, Normalize), with its weights loaded as `Var`s ([`Params`]).
//! One update: for each of `grad_accum` task-pure batches, embed queries, positives and negatives
//! with dropout, take [`contrastive_loss`], back-propagate `loss / grad_accum`; then clip the
//! summed gradients to norm `max_grad_norm` and step [`AdamW`] at the [`LinearSchedule`]'s rate.
//!
//! Everything random (batch order, dropout masks) is derived from the seed and the position in
//! the run ([`rng`]), so a run resumed from a checkpoint repeats the uninterrupted run exactly.

mod checkpoint;
pub mod data;
mod loss;
mod optim;
mod parallel;
mod params;
pub mod rng;
mod torch_pickle;

pub use checkpoint::{LOG_FILE, OPTIMIZER_FILE, STATE_FILE};
pub use data::{Dataset, Example, InvalidRecord};
pub use loss::contrastive_loss;
pub use optim::{clip_grad_norm, AdamW, AdamWConfig, LinearSchedule};
pub use parallel::{Alone, Collectives};
pub use params::Params;
pub use rng::SeededDropout;

use candle_core::{Tensor, Var};
use instructor::model::Dtype;
use instructor::{Error, Input, Instructor, LoadOptions, Result};
use rng::{SplitMix64, STREAM_DROPOUT};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything a run needs; [`Default`] has the Trainer's defaults where `train.py` uses them.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Model folder to start from.
    pub model: PathBuf,
    /// MEDI-format data (`.json` array or JSON lines).
    pub data: PathBuf,
    /// Where checkpoints and the log go.
    pub output: PathBuf,
    pub epochs: usize,
    /// Number of updates; overrides `epochs`.
    pub max_steps: Option<usize>,
    pub batch_size: usize,
    /// Batches whose gradients are summed into one update.
    pub grad_accum: usize,
    pub lr: f64,
    pub warmup_ratio: f64,
    pub adam: AdamWConfig,
    pub max_grad_norm: f64,
    pub temperature: f64,
    pub max_seq_length: usize,
    /// Save a checkpoint every this many updates (and always at the end).
    pub save_steps: Option<usize>,
    pub seed: u64,
    /// Dropout probability; `None` takes the model's `dropout_rate`.
    pub dropout: Option<f32>,
    /// Continue from the latest checkpoint in `output`.
    pub resume: bool,
    /// Train on the valid records when some are invalid, instead of stopping.
    pub skip_invalid: bool,
    /// `cpu` or `cuda:N`: training runs on candle.
    pub device: instructor::Device,
    /// Precision of the encoder's matrix products (weights, gradients and optimizer stay f32).
    pub dtype: Dtype,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::new(),
            data: PathBuf::new(),
            output: PathBuf::new(),
            epochs: 3,
            max_steps: None,
            batch_size: 32,
            grad_accum: 1,
            lr: 2e-5,
            warmup_ratio: 0.1,
            adam: AdamWConfig::default(),
            max_grad_norm: 1.0,
            temperature: 0.1,
            max_seq_length: 512,
            save_steps: None,
            seed: 42,
            dropout: None,
            resume: false,
            skip_invalid: false,
            device: instructor::Device::Cpu,
            dtype: Dtype::F32,
        }
    }
}

/// What fixes a run's trajectory: a checkpoint only resumes under the same values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunSpec {
    data_sha256: String,
    total_steps: usize,
    batch_size: usize,
    grad_accum: usize,
    lr: f64,
    warmup_ratio: f64,
    adam: AdamWConfig,
    max_grad_norm: f64,
    temperature: f64,
    max_seq_length: usize,
    seed: u64,
    dropout: f32,
    dtype: String,
}

/// `trainer_state.json`. Scheduler, data order and RNG all follow from `step` and the spec:
/// update `k` uses the learning rate `lr(k)`, the run's batches `k·grad_accum ..`, each visited in
/// the order of its epoch's seeded shuffle, and dropout streams derived from the batch's index.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainerState {
    /// Updates done.
    step: usize,
    spec: RunSpec,
    /// Batches consumed (`step × grad_accum`), and how many an epoch has.
    batches_done: usize,
    batches_per_epoch: usize,
    rng: String,
}

/// One update, as logged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepLog {
    /// Updates done (1 after the first).
    pub step: usize,
    pub epoch: f64,
    /// Mean loss of the update's batches.
    pub loss: f64,
    /// Learning rate the update used.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens embedded by all ranks (queries, positives and negatives, padding excluded).
    pub tokens: usize,
    pub tokens_per_s: f64,
    /// Seconds this rank spent in collectives (the embeddings' all-gathers, the gradients'
    /// all-reduce, waiting for the other ranks included); 0 in a run of one process.
    #[serde(default)]
    pub sync_s: f64,
}

/// What a run reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    Started {
        /// Updates already done (non-zero when resumed).
        first_step: usize,
        total_steps: usize,
        examples: usize,
        batches_per_epoch: usize,
        /// Examples left out of batches (ends of task runs shorter than a batch).
        dropped: usize,
        /// Invalid records skipped (`skip_invalid`).
        skipped_invalid: usize,
        resumed_from: Option<&'a Path>,
        /// Ranks sharing each batch (1 without MPI); a batch is `batch_size × ranks` examples.
        ranks: usize,
    },
    Step(&'a StepLog),
    Saved(&'a Path),
}

/// How a run ended.
pub struct TrainSummary {
    /// The trained model (its weights are the last checkpoint's).
    pub model: Instructor,
    pub steps: usize,
    /// The last checkpoint written (the trained model).
    pub checkpoint: PathBuf,
    pub last: Option<StepLog>,
}

/// The loss of one global batch, of which `batch` is this rank's slice, and the number of tokens
/// this rank embedded. Queries, positives and negatives are embedded as three batches (as
/// `train.py` does), with `dropout` if given, and gathered across `ranks` (the loss, the same on
/// every rank, has every rank's rows as in-batch negatives; its gradient reaches this rank's).
pub fn batch_loss(
    model: &Instructor,
    batch: &[Example],
    max_seq_length: usize,
    temperature: f64,
    dropout: Option<&SeededDropout>,
    ranks: &dyn Collectives,
) -> Result<(Tensor, usize)> {
    let apply;
    let dropout_fn: Option<&instructor::model::Dropout> = match dropout {
        Some(d) => {
            apply = move |x: &Tensor| d.apply(x);
            Some(&apply)
        }
        None => None,
    };
    let mut tokens = 0;
    let mut embed = |pick: fn(&Example) -> &Input| -> Result<Tensor> {
        let inputs: Vec<Input> = batch.iter().map(|e| pick(e).clone()).collect();
        let toks = model.tokenize(&inputs, Some(max_seq_length))?;
        tokens += toks.iter().map(|t| t.ids.len()).sum::<usize>();
        let local = model.forward(&model.batch(&toks)?, dropout_fn)?;
        Ok(parallel::gather_with_grad(ranks, &local)?)
    };
    let q = embed(|e| &e.query)?;
    let p = embed(|e| &e.pos)?;
    let n = embed(|e| &e.neg)?;
    Ok((contrastive_loss(&q, &p, &n, temperature)?, tokens))
}

/// Clips the summed gradients and takes one AdamW step at `lr`. Returns the norm before clipping.
pub fn update(
    optim: &mut AdamW,
    vars: &[&Var],
    grads: &mut [Tensor],
    lr: f64,
    max_grad_norm: f64,
) -> Result<f64> {
    let norm = clip_grad_norm(grads, max_grad_norm)?;
    optim.step(vars, grads, lr)?;
    Ok(norm)
}

/// Gradients of `loss` for `vars`, in order (zeros for a weight the loss does not reach).
pub fn gradients(loss: &Tensor, vars: &[&Var]) -> Result<Vec<Tensor>> {
    let store = loss.backward()?;
    vars.iter()
        .map(|v| match store.get(v.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => Ok(v.as_tensor().zeros_like()?),
        })
        .collect()
}

/// Runs training as configured, reporting through `on_event`, as one of `ranks` (every rank runs
/// it with the same `cfg`; [`Alone`] for one process). `cfg.batch_size` is each rank's share of
/// a batch. Rank 0 alone writes the log and the checkpoints, which the others read on resume:
/// `cfg.output` must be a folder every rank sees.
pub fn train(
    cfg: &TrainConfig,
    ranks: &dyn Collectives,
    on_event: &mut dyn FnMut(Event),
) -> Result<TrainSummary> {
    check_config(cfg)?;
    let plan = Plan::read(cfg, ranks.size())?;
    // Rank 0 prepares the output folder (removing the leftovers of an interrupted save) before
    // the others look in it for a checkpoint.
    let ranks = parallel::Timed::new(ranks);
    if ranks.rank() != 0 {
        ranks.barrier();
    }
    let mut run = Run::open(cfg, plan, &ranks)?;
    if ranks.rank() == 0 {
        ranks.barrier();
    }
    on_event(run.started());
    let (mut last, mut saved) = (None, None);
    for step in run.first_step..run.plan.total_steps {
        let entry = run.step(step)?;
        run.log(&entry)?;
        on_event(Event::Step(&entry));
        last = Some(entry);
        if run.checkpoint_due(step + 1) {
            let dir = run.save(step + 1)?;
            on_event(Event::Saved(&dir));
            saved = Some(dir);
        }
    }
    Ok(run.finish(saved, last))
}

/// Rejects settings no run can use, before anything is read or written.
fn check_config(cfg: &TrainConfig) -> Result<()> {
    let bad = |msg: &str| Err(Error::Input(msg.to_string()));
    if cfg.batch_size == 0 || cfg.grad_accum == 0 {
        return bad("batch size and gradient accumulation must be at least 1");
    }
    if cfg.temperature <= 0.0 || cfg.lr < 0.0 || !(0.0..=1.0).contains(&cfg.warmup_ratio) {
        return bad("temperature must be positive, lr non-negative, warmup ratio in [0, 1]");
    }
    if cfg.dtype == Dtype::F16 {
        // Gradients below f16's range would vanish without loss scaling; bf16 has f32's range.
        return bad("f16 training is not supported (no loss scaling): use bf16 or f32");
    }
    Ok(())
}

/// The data of a run and what follows from it alone: the batches and the number of updates.
/// Built before the output folder is touched, so that bad data stops a run with nothing written.
struct Plan {
    data: Dataset,
    /// Examples per batch, all ranks' shares together.
    batch_size: usize,
    /// SHA-256 of the data file: a checkpoint only resumes on the same data.
    data_sha256: String,
    batches: BatchOrder,
    /// Examples left out of batches.
    dropped: usize,
    total_steps: usize,
}

impl Plan {
    /// The plan of `cfg` for `ranks` ranks: batches of `cfg.batch_size × ranks` examples.
    fn read(cfg: &TrainConfig, ranks: usize) -> Result<Self> {
        let bytes = std::fs::read(&cfg.data).map_err(|e| Error::io(&cfg.data, e))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| Error::Input(format!("{}: not UTF-8: {e}", cfg.data.display())))?;
        let data = Dataset::parse(text)
            .map_err(|e| Error::Input(format!("{}: {e}", cfg.data.display())))?;
        if !data.invalid.is_empty() && !cfg.skip_invalid {
            return Err(Error::Input(format!(
                "{}: {}",
                cfg.data.display(),
                data.invalid_error()
            )));
        }
        let batch_size = cfg.batch_size * ranks;
        let (batches, dropped) = data::task_batches(&data.examples, batch_size);
        let nb = batches.len();
        let total_steps = cfg.max_steps.unwrap_or(cfg.epochs * nb / cfg.grad_accum);
        if total_steps == 0 {
            return Err(Error::Input(format!(
                "nothing to train: {} examples make {nb} batches of {batch_size} from one task \
                 each, for {} epoch(s) with {} batch(es) per update",
                data.examples.len(),
                cfg.epochs,
                cfg.grad_accum
            )));
        }
        Ok(Self {
            data,
            batch_size,
            data_sha256: hex_sha256(&bytes),
            batches: BatchOrder::new(batches, cfg.seed),
            dropped,
            total_steps,
        })
    }
}

/// The run's batches in the order it visits them: epoch `e` in a shuffle derived from the seed
/// and `e`, so that the run's `g`-th batch follows from `g` alone (what lets a resumed run
/// repeat an uninterrupted one).
struct BatchOrder {
    batches: Vec<Range<usize>>,
    seed: u64,
    /// The epoch whose shuffle `order` holds (`usize::MAX` before the first).
    epoch: usize,
    order: Vec<usize>,
}

impl BatchOrder {
    fn new(batches: Vec<Range<usize>>, seed: u64) -> Self {
        Self {
            batches,
            seed,
            epoch: usize::MAX,
            order: Vec::new(),
        }
    }

    fn per_epoch(&self) -> usize {
        self.batches.len()
    }

    /// The records of the run's `g`-th batch.
    fn get(&mut self, g: usize) -> Range<usize> {
        let nb = self.per_epoch();
        if self.epoch != g / nb {
            self.epoch = g / nb;
            self.order = data::epoch_order(nb, self.seed, self.epoch);
        }
        self.batches[self.order[g % nb]].clone()
    }
}

impl RunSpec {
    /// The spec of the run `cfg` describes on `plan`; the dropout rate is the model's unless
    /// `cfg` sets one.
    fn new(cfg: &TrainConfig, plan: &Plan, model: &Instructor) -> Self {
        let mut dtype = format!("{:?}", cfg.dtype);
        dtype.make_ascii_lowercase();
        Self {
            data_sha256: plan.data_sha256.clone(),
            total_steps: plan.total_steps,
            // The global batch: a run resumes under another number of ranks that keeps it.
            batch_size: plan.batch_size,
            grad_accum: cfg.grad_accum,
            lr: cfg.lr,
            warmup_ratio: cfg.warmup_ratio,
            adam: cfg.adam,
            max_grad_norm: cfg.max_grad_norm,
            temperature: cfg.temperature,
            max_seq_length: cfg.max_seq_length,
            seed: cfg.seed,
            dropout: cfg.dropout.unwrap_or(model.config().t5.dropout_rate as f32),
            dtype,
        }
    }
}

/// A run in progress: the model being trained and everything an update or a checkpoint needs.
struct Run<'a> {
    cfg: &'a TrainConfig,
    ranks: &'a parallel::Timed<'a>,
    plan: Plan,
    spec: RunSpec,
    device: candle_core::Device,
    /// The checkpoint resumed from, if any.
    resumed_from: Option<PathBuf>,
    /// The folder the model was loaded from; checkpoints copy its other files.
    source: PathBuf,
    model: Instructor,
    params: Params,
    /// The names of `params`' weights, in order: the keys of the optimizer's saved state.
    names: Vec<String>,
    optim: AdamW,
    schedule: LinearSchedule,
    /// Updates done before this run started (non-zero when resumed).
    first_step: usize,
    /// The log, which rank 0 alone writes.
    log: Option<std::fs::File>,
}

impl<'a> Run<'a> {
    /// Prepares the output folder, then starts from `cfg.model`, or resumes from the latest
    /// checkpoint (model, optimizer and step) when `cfg.resume` asks and its run is this one.
    fn open(cfg: &'a TrainConfig, plan: Plan, ranks: &'a parallel::Timed<'a>) -> Result<Self> {
        let root = ranks.rank() == 0;
        if root {
            std::fs::create_dir_all(&cfg.output).map_err(|e| Error::io(&cfg.output, e))?;
            checkpoint::remove_partial(&cfg.output)?;
        }
        let device = cfg.device.candle()?;
        let resumed_from = resume_point(cfg)?;
        let source = resumed_from.clone().unwrap_or_else(|| cfg.model.clone());
        let opts = LoadOptions {
            dtype: cfg.dtype,
            device: cfg.device,
        };
        let (model, params) = Params::load(&source, &opts)?;
        let spec = RunSpec::new(cfg, &plan, &model);
        let names: Vec<String> = params.vars().map(|(n, _)| n).collect();
        let (first_step, optim) = match &resumed_from {
            Some(dir) => {
                let state = read_state(dir, &spec)?;
                let optim = AdamW::load(&names, &dir.join(OPTIMIZER_FILE), cfg.adam, &device)?;
                (state.step, optim)
            }
            None => (0, AdamW::new(params.vars().map(|(_, v)| v), cfg.adam)?),
        };
        let log = root
            .then(|| open_log(&cfg.output.join(LOG_FILE), first_step))
            .transpose()?;
        Ok(Self {
            cfg,
            ranks,
            schedule: LinearSchedule::with_ratio(cfg.lr, cfg.warmup_ratio, plan.total_steps),
            plan,
            spec,
            device,
            resumed_from,
            source,
            model,
            params,
            names,
            optim,
            first_step,
            log,
        })
    }

    fn started(&self) -> Event<'_> {
        Event::Started {
            first_step: self.first_step,
            total_steps: self.plan.total_steps,
            examples: self.plan.data.examples.len(),
            batches_per_epoch: self.plan.batches.per_epoch(),
            dropped: self.plan.dropped,
            skipped_invalid: self.plan.data.invalid.len(),
            resumed_from: self.resumed_from.as_deref(),
            ranks: self.ranks.size(),
        }
    }

    /// Update `step`: the gradients of its `grad_accum` batches, summed, then one clipped AdamW
    /// step. Stops at a non-finite loss or gradient norm, before anything of the step is saved.
    fn step(&mut self, step: usize) -> Result<StepLog> {
        let started = Instant::now();
        let synced = self.ranks.seconds();
        let accum = self.cfg.grad_accum;
        let vars: Vec<&Var> = self.params.vars().map(|(_, v)| v).collect();
        let mut sum: Option<Vec<Tensor>> = None;
        let (mut loss_sum, mut tokens) = (0.0, 0);
        for micro in 0..accum {
            let g = step * accum + micro;
            let records = self.plan.batches.get(g);
            let (loss, n) = self.batch_loss(g, &records)?;
            let value = f64::from(loss.to_scalar::<f32>()?);
            if !value.is_finite() {
                return Err(diverged(step, &format!("loss is {value}"), &records));
            }
            let grads = gradients(&(loss / accum as f64)?, &vars)?;
            sum = Some(match sum {
                None => grads,
                Some(s) => s
                    .iter()
                    .zip(&grads)
                    .map(|(a, b)| a + b)
                    .collect::<candle_core::Result<_>>()?,
            });
            loss_sum += value;
            tokens += n;
        }
        let mut grads = sum.expect("grad_accum >= 1");
        parallel::all_reduce_grads(self.ranks, &mut grads)?;
        let mut all_tokens = [tokens as u64];
        self.ranks.all_reduce_count(&mut all_tokens);
        let tokens = all_tokens[0] as usize;
        let lr = self.schedule.lr(step);
        let grad_norm = update(
            &mut self.optim,
            &vars,
            &mut grads,
            lr,
            self.cfg.max_grad_norm,
        )?;
        if !grad_norm.is_finite() {
            return Err(diverged(
                step,
                &format!("gradient norm is {grad_norm}"),
                &(0..0),
            ));
        }
        Ok(StepLog {
            step: step + 1,
            epoch: ((step + 1) * accum) as f64 / self.plan.batches.per_epoch() as f64,
            loss: loss_sum / accum as f64,
            lr,
            grad_norm,
            tokens,
            tokens_per_s: tokens as f64 / started.elapsed().as_secs_f64(),
            sync_s: self.ranks.seconds() - synced,
        })
    }

    /// [`batch_loss`] of the run's `g`-th batch, `records` (this rank's share of them), with
    /// dropout masks derived from `g` and the rank.
    fn batch_loss(&self, g: usize, records: &Range<usize>) -> Result<(Tensor, usize)> {
        let (rank, size) = (self.ranks.rank(), self.ranks.size());
        let dropout = (self.spec.dropout > 0.0)
            .then(|| {
                let stream = (g * size + rank) as u64;
                let rng = SplitMix64::derive(self.cfg.seed, STREAM_DROPOUT, stream);
                SeededDropout::new(self.spec.dropout, rng, &self.device)
            })
            .transpose()?;
        let batch = &self.plan.data.examples[records.clone()];
        let mine: Vec<Example>;
        let batch = if size == 1 {
            batch
        } else {
            let chars = |i: &Input| i.instruction.len() + i.text.len();
            let sizes: Vec<usize> = batch
                .iter()
                .map(|e| chars(&e.query) + chars(&e.pos) + chars(&e.neg))
                .collect();
            let share = &parallel::share_batch(&sizes, size, self.cfg.batch_size)[rank];
            mine = share.iter().map(|&i| batch[i].clone()).collect();
            &mine
        };
        batch_loss(
            &self.model,
            batch,
            self.cfg.max_seq_length,
            self.cfg.temperature,
            dropout.as_ref(),
            self.ranks,
        )
    }

    /// Appends `entry` to the log (on rank 0), flushed, so that the log of a stopped run is
    /// complete.
    fn log(&mut self, entry: &StepLog) -> Result<()> {
        let Some(log) = &mut self.log else {
            return Ok(());
        };
        serde_json::to_writer(&mut *log, entry).expect("a plain struct");
        log.write_all(b"\n")
            .and_then(|_| log.flush())
            .map_err(|e| Error::io(self.cfg.output.join(LOG_FILE), e))
    }

    /// Whether a checkpoint follows update `done`: every `save_steps`, and always after the last.
    fn checkpoint_due(&self, done: usize) -> bool {
        let every = self.cfg.save_steps.filter(|&s| s > 0);
        done == self.plan.total_steps || every.is_some_and(|s| done.is_multiple_of(s))
    }

    /// Writes the checkpoint after update `done` (rank 0; the others only say where): the model,
    /// the optimizer and the trainer state.
    fn save(&self, done: usize) -> Result<PathBuf> {
        if self.ranks.rank() != 0 {
            return Ok(checkpoint::path(&self.cfg.output, done));
        }
        let state = TrainerState {
            step: done,
            spec: self.spec.clone(),
            batches_done: done * self.cfg.grad_accum,
            batches_per_epoch: self.plan.batches.per_epoch(),
            rng: "SplitMix64 streams derived from the seed: batch order per epoch, \
                  dropout per batch; nothing else to restore"
                .into(),
        };
        checkpoint::write(&self.cfg.output, done, |dir| {
            self.params
                .save_model(&self.source, dir, &[STATE_FILE, OPTIMIZER_FILE])?;
            self.optim.save(&self.names, &dir.join(OPTIMIZER_FILE))?;
            let path = dir.join(STATE_FILE);
            std::fs::write(&path, serde_json::to_vec_pretty(&state).expect("plain"))
                .map_err(|e| Error::io(&path, e))
        })
    }

    /// The summary, given the checkpoint this run `saved` last and its `last` update.
    fn finish(self, saved: Option<PathBuf>, last: Option<StepLog>) -> TrainSummary {
        let checkpoint = match saved {
            Some(dir) => dir,
            // Resumed from the final checkpoint: nothing left to do.
            None => self
                .resumed_from
                .expect("a run with no step left was resumed"),
        };
        TrainSummary {
            model: self.model,
            steps: self.plan.total_steps,
            checkpoint,
            last,
        }
    }
}

/// The checkpoint to continue from: the latest in the output folder under `resume`. Without
/// `resume` one there is an error, so that a new run never mixes with an old one.
fn resume_point(cfg: &TrainConfig) -> Result<Option<PathBuf>> {
    match (checkpoint::latest(&cfg.output)?, cfg.resume) {
        (Some((_, dir)), true) => Ok(Some(dir)),
        (Some((_, dir)), false) => Err(Error::Train(format!(
            "{} holds {}: pass --resume to continue that run, or choose another output folder",
            cfg.output.display(),
            dir.display()
        ))),
        (None, _) => Ok(None),
    }
}

/// The trainer state of checkpoint `dir`, which must have been written by a run of `spec`.
fn read_state(dir: &Path, spec: &RunSpec) -> Result<TrainerState> {
    let state: TrainerState = read_json(&dir.join(STATE_FILE))?;
    if state.spec != *spec {
        return Err(Error::Train(format!(
            "{} was written by a run with other settings or data; resume with the same \
             ones.\n  checkpoint: {:?}\n  now:        {:?}",
            dir.display(),
            state.spec,
            spec
        )));
    }
    Ok(state)
}

/// The error that stops a diverged run at `step`, naming the batch's `records` if not empty.
fn diverged(step: usize, what: &str, records: &Range<usize>) -> Error {
    let at = if records.is_empty() {
        String::new()
    } else {
        format!(" (batch of records {}..{})", records.start, records.end)
    };
    Error::Train(format!(
        "{what} at step {}{at}: training diverged, and no checkpoint was written for this step; \
         lower --lr or check the data",
        step + 1
    ))
}

/// Opens the JSON lines log for appending, keeping only the entries of the first `keep` updates
/// (those a resumed run does not redo).
fn open_log(path: &Path, keep: usize) -> Result<std::fs::File> {
    let kept: Vec<String> = match std::fs::read_to_string(path) {
        Ok(text) if keep > 0 => text
            .lines()
            .filter(|l| serde_json::from_str::<StepLog>(l).is_ok_and(|e| e.step <= keep))
            .map(|l| format!("{l}\n"))
            .collect(),
        _ => Vec::new(),
    };
    std::fs::write(path, kept.concat()).map_err(|e| Error::io(path, e))?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::config(path, e))
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
