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
mod params;
pub mod rng;
mod torch_pickle;

pub use checkpoint::{LOG_FILE, OPTIMIZER_FILE, STATE_FILE};
pub use data::{Dataset, Example, InvalidRecord};
pub use loss::contrastive_loss;
pub use optim::{clip_grad_norm, AdamW, AdamWConfig, LinearSchedule};
pub use params::Params;
pub use rng::SeededDropout;

use candle_core::{Tensor, Var};
use instructor::model::Dtype;
use instructor::{Error, Input, Instructor, LoadOptions, Result};
use rng::{SplitMix64, STREAM_DROPOUT};
use serde::{Deserialize, Serialize};
use std::io::Write;
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
    /// Tokens embedded (queries, positives and negatives, padding excluded).
    pub tokens: usize,
    pub tokens_per_s: f64,
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

/// The loss of one batch of examples, and the number of tokens embedded. Queries, positives and
/// negatives are embedded as three batches (as `train.py` does), with `dropout` if given.
pub fn batch_loss(
    model: &Instructor,
    batch: &[Example],
    max_seq_length: usize,
    temperature: f64,
    dropout: Option<&SeededDropout>,
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
        model.forward(&model.batch(&toks)?, dropout_fn)
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

/// Runs training as configured, reporting through `on_event`.
pub fn train(cfg: &TrainConfig, on_event: &mut dyn FnMut(Event)) -> Result<TrainSummary> {
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
    let bytes = std::fs::read(&cfg.data).map_err(|e| Error::io(&cfg.data, e))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| Error::Input(format!("{}: not UTF-8: {e}", cfg.data.display())))?;
    let data =
        Dataset::parse(text).map_err(|e| Error::Input(format!("{}: {e}", cfg.data.display())))?;
    if !data.invalid.is_empty() && !cfg.skip_invalid {
        return Err(Error::Input(format!(
            "{}: {}",
            cfg.data.display(),
            data.invalid_error()
        )));
    }
    let (batches, dropped) = data::task_batches(&data.examples, cfg.batch_size);
    let nb = batches.len();
    let total = cfg.max_steps.unwrap_or(cfg.epochs * nb / cfg.grad_accum);
    if total == 0 {
        return Err(Error::Input(format!(
            "nothing to train: {} examples make {nb} batches of {} from one task each, \
             for {} epoch(s) with {} batch(es) per update",
            data.examples.len(),
            cfg.batch_size,
            cfg.epochs,
            cfg.grad_accum
        )));
    }

    std::fs::create_dir_all(&cfg.output).map_err(|e| Error::io(&cfg.output, e))?;
    checkpoint::remove_partial(&cfg.output)?;
    let mut dtype_name = format!("{:?}", cfg.dtype);
    dtype_name.make_ascii_lowercase();
    let device = cfg.device.candle()?;
    let opts = LoadOptions {
        dtype: cfg.dtype,
        device: cfg.device,
    };
    let resume_from = match (checkpoint::latest(&cfg.output)?, cfg.resume) {
        (Some((_, dir)), true) => Some(dir),
        (Some((_, dir)), false) => {
            return Err(Error::Train(format!(
                "{} holds {}: pass --resume to continue that run, or choose another output folder",
                cfg.output.display(),
                dir.display()
            )))
        }
        (None, _) => None,
    };
    let source = resume_from.clone().unwrap_or_else(|| cfg.model.clone());
    let (model, params) = Params::load(&source, &opts)?;
    let spec = RunSpec {
        data_sha256: hex_sha256(&bytes),
        total_steps: total,
        batch_size: cfg.batch_size,
        grad_accum: cfg.grad_accum,
        lr: cfg.lr,
        warmup_ratio: cfg.warmup_ratio,
        adam: cfg.adam,
        max_grad_norm: cfg.max_grad_norm,
        temperature: cfg.temperature,
        max_seq_length: cfg.max_seq_length,
        seed: cfg.seed,
        dropout: cfg.dropout.unwrap_or(model.config().t5.dropout_rate as f32),
        dtype: dtype_name,
    };
    let names: Vec<String> = params.vars().map(|(n, _)| n).collect();
    let vars: Vec<&Var> = params.vars().map(|(_, v)| v).collect();
    let (start, mut optim) = match &resume_from {
        Some(dir) => {
            let state: TrainerState = read_json(&dir.join(STATE_FILE))?;
            if state.spec != spec {
                return Err(Error::Train(format!(
                    "{} was written by a run with other settings or data; resume with the same \
                     ones.\n  checkpoint: {:?}\n  now:        {:?}",
                    dir.display(),
                    state.spec,
                    spec
                )));
            }
            let optim = AdamW::load(&names, &dir.join(OPTIMIZER_FILE), cfg.adam, &device)?;
            (state.step, optim)
        }
        None => (0, AdamW::new(vars.iter().copied(), cfg.adam)?),
    };
    let mut log = open_log(&cfg.output.join(LOG_FILE), start)?;
    on_event(Event::Started {
        first_step: start,
        total_steps: total,
        examples: data.examples.len(),
        batches_per_epoch: nb,
        dropped,
        skipped_invalid: data.invalid.len(),
        resumed_from: resume_from.as_deref(),
    });

    let schedule = LinearSchedule::with_ratio(cfg.lr, cfg.warmup_ratio, total);
    let mut order = (usize::MAX, Vec::new());
    let mut last = None;
    let mut saved = None;
    for step in start..total {
        let started = Instant::now();
        let mut sum: Option<Vec<Tensor>> = None;
        let (mut loss_sum, mut tokens) = (0.0, 0);
        for micro in 0..cfg.grad_accum {
            let g = step * cfg.grad_accum + micro;
            if order.0 != g / nb {
                order = (g / nb, data::epoch_order(nb, cfg.seed, g / nb));
            }
            let range = batches[order.1[g % nb]].clone();
            let dropout = (spec.dropout > 0.0)
                .then(|| {
                    let rng = SplitMix64::derive(cfg.seed, STREAM_DROPOUT, g as u64);
                    SeededDropout::new(spec.dropout, rng, &device)
                })
                .transpose()?;
            let (loss, n) = batch_loss(
                &model,
                &data.examples[range.clone()],
                cfg.max_seq_length,
                cfg.temperature,
                dropout.as_ref(),
            )?;
            let value = f64::from(loss.to_scalar::<f32>()?);
            if !value.is_finite() {
                return Err(diverged(step, &format!("loss is {value}"), &range));
            }
            let grads = gradients(&(loss / cfg.grad_accum as f64)?, &vars)?;
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
        let lr = schedule.lr(step);
        let grad_norm = update(&mut optim, &vars, &mut grads, lr, cfg.max_grad_norm)?;
        if !grad_norm.is_finite() {
            return Err(diverged(
                step,
                &format!("gradient norm is {grad_norm}"),
                &(0..0),
            ));
        }
        let entry = StepLog {
            step: step + 1,
            epoch: ((step + 1) * cfg.grad_accum) as f64 / nb as f64,
            loss: loss_sum / cfg.grad_accum as f64,
            lr,
            grad_norm,
            tokens,
            tokens_per_s: tokens as f64 / started.elapsed().as_secs_f64(),
        };
        serde_json::to_writer(&mut log, &entry).expect("a plain struct");
        log.write_all(b"\n")
            .and_then(|_| log.flush())
            .map_err(|e| Error::io(cfg.output.join(LOG_FILE), e))?;
        on_event(Event::Step(&entry));
        last = Some(entry);

        let done = step + 1;
        if done == total || cfg.save_steps.is_some_and(|s| s > 0 && done % s == 0) {
            let state = TrainerState {
                step: done,
                spec: spec.clone(),
                batches_done: done * cfg.grad_accum,
                batches_per_epoch: nb,
                rng: "SplitMix64 streams derived from the seed: batch order per epoch, \
                      dropout per batch; nothing else to restore"
                    .into(),
            };
            let dir = checkpoint::write(&cfg.output, done, |dir| {
                params.save_model(&source, dir, &[STATE_FILE, OPTIMIZER_FILE])?;
                optim.save(&names, &dir.join(OPTIMIZER_FILE))?;
                let path = dir.join(STATE_FILE);
                std::fs::write(&path, serde_json::to_vec_pretty(&state).expect("plain"))
                    .map_err(|e| Error::io(&path, e))
            })?;
            on_event(Event::Saved(&dir));
            saved = Some(dir);
        }
    }
    let checkpoint = match saved {
        Some(dir) => dir,
        // Resumed from the final checkpoint: nothing left to do.
        None => resume_from.expect("a run with no step left was resumed"),
    };
    Ok(TrainSummary {
        model,
        steps: total,
        checkpoint,
        last,
    })
}

fn diverged(step: usize, what: &str, records: &std::ops::Range<usize>) -> Error {
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
