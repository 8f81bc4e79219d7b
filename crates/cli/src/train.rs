//! `instructor train`: INSTRUCTOR's contrastive fine-tuning on MEDI-format data.

use crate::args::ModelArgs;
use crate::dist::World;
use anyhow::Result;
use instructor_train::{train, Event, TrainConfig, LOG_FILE};
use std::path::PathBuf;

const DEFAULTS: fn() -> TrainConfig = TrainConfig::default;

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Model folder to start from; `--dtype` is the precision of the encoder's matrix products
    /// (bf16: mixed precision, weights and optimizer stay f32).
    #[command(flatten)]
    pub model: ModelArgs,
    /// MEDI-format records (`{"query": [instr, text], "pos": [...], "neg": [...], "task_name":
    /// ...}`), as a JSON array or JSON lines.
    #[arg(long)]
    pub data: PathBuf,
    /// Folder for `checkpoint-<step>/` model folders and `train_log.jsonl`.
    #[arg(long)]
    pub output: PathBuf,
    #[arg(long, default_value_t = DEFAULTS().epochs)]
    pub epochs: usize,
    /// Number of updates (overrides --epochs).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Examples per batch on each rank; every batch comes from one task. Under mpirun a batch
    /// is this many examples on each rank, all of them in-batch negatives to one another.
    #[arg(long, default_value_t = DEFAULTS().batch_size)]
    pub batch_size: usize,
    /// Batches per update (their gradients are summed).
    #[arg(long, default_value_t = DEFAULTS().grad_accum)]
    pub grad_accum: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = DEFAULTS().lr)]
    pub lr: f64,
    /// Fraction of the updates spent warming the learning rate up from 0.
    #[arg(long, default_value_t = DEFAULTS().warmup_ratio)]
    pub warmup_ratio: f64,
    /// AdamW's decoupled weight decay.
    #[arg(long, default_value_t = DEFAULTS().adam.weight_decay)]
    pub weight_decay: f64,
    /// Divides the cosine similarities in the loss.
    #[arg(long, default_value_t = DEFAULTS().temperature)]
    pub temperature: f64,
    /// Truncate inputs to this many tokens (`</s>` included).
    #[arg(long, default_value_t = DEFAULTS().max_seq_length)]
    pub max_seq_length: usize,
    /// Save a checkpoint every N updates (one is always saved at the end).
    #[arg(long)]
    pub save_steps: Option<usize>,
    #[arg(long, default_value_t = DEFAULTS().seed)]
    pub seed: u64,
    /// Dropout probability [default: the model's dropout_rate].
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Continue from the latest checkpoint in --output, exactly where it stopped.
    #[arg(long)]
    pub resume: bool,
    /// Train on the valid records when some are malformed, instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
}

pub fn run(mut args: TrainArgs) -> Result<()> {
    let world = World::init()?;
    args.model = world.model_args(&args.model);
    world.finish(train_rank(&args, &world))
}

/// This rank's part of the run: under mpirun data parallel, rank 0 reporting and writing.
fn train_rank(args: &TrainArgs, world: &World) -> Result<()> {
    let defaults = DEFAULTS();
    let cfg = TrainConfig {
        model: world.root_first(|| args.model.resolve())?,
        data: args.data.clone(),
        output: args.output.clone(),
        epochs: args.epochs,
        max_steps: args.max_steps,
        batch_size: args.batch_size,
        grad_accum: args.grad_accum,
        lr: args.lr,
        warmup_ratio: args.warmup_ratio,
        adam: instructor_train::AdamWConfig {
            weight_decay: args.weight_decay,
            ..defaults.adam
        },
        temperature: args.temperature,
        max_seq_length: args.max_seq_length,
        save_steps: args.save_steps,
        seed: args.seed,
        dropout: args.dropout,
        resume: args.resume,
        skip_invalid: args.skip_invalid,
        device: args.model.device,
        dtype: args.model.dtype,
        ..defaults
    };
    let mut bar = None;
    let mut on_event = |event: Event| match event {
        Event::Started {
            first_step,
            total_steps,
            examples,
            batches_per_epoch,
            dropped,
            skipped_invalid,
            resumed_from,
            ranks,
        } => {
            if !args.model.quiet {
                match resumed_from {
                    Some(dir) => eprintln!("resuming from {} (update {first_step})", dir.display()),
                    None if args.resume => eprintln!("no checkpoint to resume: starting afresh"),
                    None => {}
                }
                let on = match ranks {
                    1 => String::new(),
                    n => format!(
                        " of {} ({n} ranks × {})",
                        n * args.batch_size,
                        args.batch_size
                    ),
                };
                eprintln!(
                    "{examples} examples, {batches_per_epoch} task-pure batches{on} per epoch, \
                     {total_steps} updates; left out: {dropped} (ends of task runs), \
                     {skipped_invalid} invalid"
                );
            }
            let b = args.model.progress(total_steps, "training");
            b.set_position(first_step as u64);
            bar = Some(b);
        }
        Event::Step(s) => {
            if let Some(b) = &bar {
                b.set_message(format!(
                    "loss {:.4} lr {:.2e} {:.0} tok/s",
                    s.loss, s.lr, s.tokens_per_s
                ));
                b.set_position(s.step as u64);
            }
        }
        Event::Saved(dir) => {
            if let Some(b) = &bar {
                b.println(format!("saved {}", dir.display()));
            }
        }
    };
    let summary =
        world.with_collectives(cfg.device, |ranks| Ok(train(&cfg, ranks, &mut on_event)?))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if !world.is_root() {
        return Ok(());
    }
    if let Some(last) = &summary.last {
        eprintln!(
            "{} updates, last loss {:.4}; log: {}",
            summary.steps,
            last.loss,
            cfg.output.join(LOG_FILE).display()
        );
    }
    println!("{}", summary.checkpoint.display());
    Ok(())
}
