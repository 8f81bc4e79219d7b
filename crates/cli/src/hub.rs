//! `instructor download`, `instructor cache ls|rm`, and `--model owner/name` for every command
//! that loads a model. Settings come from the environment, as huggingface_hub reads it
//! ([`HubOptions::from_env`]): HF_ENDPOINT, HF_HUB_CACHE / HF_HOME, HF_TOKEN, HF_HUB_OFFLINE.

use anyhow::Result;
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use instructor_hub::{self as hub, HubOptions, Progress};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct DownloadArgs {
    /// Hub repo id, e.g. hkunlp/instructor-base.
    pub repo: String,
    /// Branch, tag or commit sha.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum CacheCommand {
    /// List the cached models: size on disk, revisions and the commits they point to.
    Ls,
    /// Delete a model from the cache.
    Rm {
        /// Hub repo id, e.g. hkunlp/instructor-base.
        repo: String,
    },
}

/// Fetches the files the model needs and prints the snapshot folder (usable as `--model`).
pub fn download(args: DownloadArgs) -> Result<()> {
    if !hub::is_repo_id(&args.repo) {
        anyhow::bail!("`{}` is not a hub repo id (owner/name)", args.repo);
    }
    let dir = resolve(&args.repo, &args.revision, args.quiet)?;
    println!("{}", dir.display());
    Ok(())
}

pub fn cache(args: CacheArgs) -> Result<()> {
    let cache_dir = HubOptions::from_env().cache_dir;
    match args.command {
        CacheCommand::Ls => {
            let repos = hub::list_cache(&cache_dir)?;
            if repos.is_empty() {
                eprintln!("no models in {}", cache_dir.display());
            }
            for r in repos {
                let refs: Vec<String> = r
                    .refs
                    .iter()
                    .map(|(rev, commit)| format!("{rev}={}", &commit[..commit.len().min(12)]))
                    .collect();
                println!(
                    "{:<40} {:>12}  {}  ({} snapshot{})  {}",
                    r.repo,
                    HumanBytes(r.size).to_string(),
                    if refs.is_empty() {
                        "-".to_string()
                    } else {
                        refs.join(" ")
                    },
                    r.snapshots.len(),
                    if r.snapshots.len() == 1 { "" } else { "s" },
                    r.dir.display()
                );
            }
        }
        CacheCommand::Rm { repo } => {
            let removed = hub::remove_from_cache(&cache_dir, &repo)?;
            println!(
                "removed {} ({} freed): {}",
                removed.repo,
                HumanBytes(removed.size),
                removed.dir.display()
            );
        }
    }
    Ok(())
}

/// `--model`: a folder as it is, or a hub repo fetched into the cache.
pub fn resolve(model: &str, revision: &str, quiet: bool) -> Result<PathBuf> {
    let mut bars = Bars { quiet, bar: None };
    Ok(hub::resolve_model(
        model,
        revision,
        &HubOptions::from_env(),
        &|dir| Ok(instructor::config::model_files(dir)?),
        &mut bars,
    )?)
}

/// `--lm`: a folder as it is, or a causal LM's hub repo (`config.json`, `tokenizer.json`, the
/// weights) fetched into the cache.
pub fn resolve_lm(model: &str, revision: &str, quiet: bool) -> Result<PathBuf> {
    if std::path::Path::new(model).is_dir() {
        return Ok(PathBuf::from(model));
    }
    if !hub::is_repo_id(model) {
        anyhow::bail!("--lm: `{model}` is neither a folder nor a hub repo id");
    }
    let mut bars = Bars { quiet, bar: None };
    let files = |_: &std::path::Path| Ok(instructor_eval::lm::files());
    Ok(hub::Hub::new(HubOptions::from_env()).download_repo(
        model,
        revision,
        "config.json",
        &files,
        &mut bars,
    )?)
}

/// A task's dataset files (groups of alternative names, see `instructor_eval::data::files`)
/// from hub dataset `repo` at `revision`, into the same cache as models; returns the snapshot
/// folder, named by the commit.
pub fn dataset(repo: &str, revision: &str, files: &[Vec<String>], quiet: bool) -> Result<PathBuf> {
    let mut bars = Bars { quiet, bar: None };
    Ok(hub::Hub::new(HubOptions::from_env()).download_dataset(repo, revision, files, &mut bars)?)
}

/// A bar per file on stderr (bytes, rate, ETA); hidden with `--quiet` and when stderr is not a
/// terminal.
struct Bars {
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl Progress for Bars {
    fn start(&mut self, file: &str, done: u64, total: Option<u64>) {
        let target = if self.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(total, target);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:30!} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("static template"),
        );
        bar.set_message(file.to_string());
        bar.set_position(done);
        // The rate and ETA are about this run's bytes, not a resumed file's earlier ones.
        bar.reset_eta();
        if let Some(old) = self.bar.replace(bar) {
            old.abandon();
        }
    }

    fn advance(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}
