//! The `instructor` command line: `embed` (and the leaves' commands as they land).

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
    Embed(cli::embed::EmbedArgs),
    /// Evaluate on MTEB tasks (local data or the hub's dataset repos) and Billboard (mteb 2.x
    /// metrics; `--protocol paper` for the paper's).
    Eval(cli::eval::EvalArgs),
    /// Fetch a model from the Hugging Face hub into the cache; prints its folder.
    Download(cli::hub::DownloadArgs),
    /// The Hugging Face cache: `ls`, `rm <repo>`.
    Cache(cli::hub::CacheArgs),
    /// Fine-tune on MEDI-format data (INSTRUCTOR's multitask contrastive training).
    Train(cli::train::TrainArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Embed(args) => cli::embed::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Download(args) => cli::hub::download(args),
        Command::Cache(args) => cli::hub::cache(args),
        Command::Train(args) => cli::train::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
