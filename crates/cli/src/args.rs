//! What the subcommands share: the model options, progress bars, atomic writes.

use crate::hub;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use instructor::{Device, Dtype, Instructor, LoadOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Options every command that loads a model takes.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model folder (sentence-transformers layout), or a hub repo id such as
    /// hkunlp/instructor-base (downloaded into the Hugging Face cache).
    #[arg(long)]
    pub model: String,
    /// Branch, tag or commit sha, when --model is a hub repo.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// Precision of the encoder's matrix products.
    #[arg(long, default_value = "f32")]
    pub dtype: Dtype,
    /// Where to run: cpu, cuda or cuda:N (build with `--features cuda`), wgpu (build with
    /// `--features wgpu`), or auto (wgpu when a hardware GPU fits the model, else cpu).
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

impl ModelArgs {
    /// The model's folder: `--model` itself, or its snapshot in the hub cache.
    pub fn resolve(&self) -> Result<PathBuf> {
        hub::resolve(&self.model, &self.revision, self.quiet)
    }

    /// Loads the model in `dir` (from [`resolve`](Self::resolve)) as `--dtype` and `--device` say.
    pub fn load_from(&self, dir: &Path) -> Result<Instructor> {
        let opts = LoadOptions {
            dtype: self.dtype,
            device: self.device,
        };
        let model = Instructor::load(dir, &opts)?;
        if let (Some(why), false) = (model.fallback_reason(), self.quiet) {
            eprintln!("--device auto: running on {} ({why})", model.backend());
        }
        Ok(model)
    }

    /// A bar on stderr; hidden with `--quiet` and when stderr is not a terminal.
    pub fn progress(&self, len: usize, what: &str) -> ProgressBar {
        let target = if self.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(len as u64), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} {bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}]",
            )
            .expect("static template"),
        );
        bar.set_message(what.to_string());
        bar
    }
}

/// Writes a file atomically: into a temporary file beside it, renamed over `path` only once
/// `write` succeeded, so a failure never leaves a partial file at `path`.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("{}: cannot create", path.display()))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut w)?;
        w.flush()
            .with_context(|| format!("{}: write failed", path.display()))?;
    }
    tmp.as_file().sync_all().ok();
    tmp.persist(path)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}
