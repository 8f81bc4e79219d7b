//! The `instructor` command line: the one place where the core, the hub, eval and train meet.

mod args;
mod dist;
mod embed;
mod eval;
mod hub;
mod prompt;
mod quantize;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Keeps freed memory for the next batch (why: `instructor_alloc`); prompt retrieval's attention
/// over 1024-token prompts, tens of MB a layer, needs it most.
#[global_allocator]
static ALLOC: instructor_alloc::Allocator = instructor_alloc::Allocator;

#[derive(Parser)]
#[command(
    name = "instructor",
    version,
    about = "INSTRUCTOR text embeddings (hkunlp/instructor-*)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embed `{"instruction", "text"}` JSON lines into a .npy or .jsonl file.
    Embed(embed::EmbedArgs),
    /// Evaluate on MTEB tasks (local data or the hub's dataset repos) and Billboard (mteb 2.x
    /// metrics; `--protocol paper` for the paper's), or on the paper's prompt retrieval
    /// (`--task-type prompt-retrieval --lm M`: demonstrations chosen by the embedder, answers by
    /// a causal language model).
    Eval(eval::EvalArgs),
    /// Fetch a model from the Hugging Face hub into the cache; prints its folder.
    Download(hub::DownloadArgs),
    /// The Hugging Face cache: `ls`, `rm <repo>`.
    Cache(hub::CacheArgs),
    /// Fine-tune on MEDI-format data (INSTRUCTOR's multitask contrastive training).
    Train(train::TrainArgs),
    /// Write an int8 copy of a model (weights per output channel, a quarter of the f32 size)
    /// that loads as `--dtype int8` everywhere this crate runs.
    Quantize(quantize::QuantizeArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Embed(args) => embed::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Download(args) => hub::download(args),
        Command::Cache(args) => hub::cache(args),
        Command::Train(args) => train::run(args),
        Command::Quantize(args) => quantize::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
