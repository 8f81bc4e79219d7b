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
    /// Fine-tune on MEDI-format data (INSTRUCTOR's multitask contrastive training).
    Train(cli::train::TrainArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Embed(args) => cli::embed::run(args),
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
