//! `instructor quantize`: an int8 copy of a model folder that this crate (the CLI, the Python
//! package, the browser) loads as int8, for hosting on the hub or keeping on disk.

use crate::args::ModelArgs;
use anyhow::{bail, Context, Result};
use instructor::source::DirSource;
use instructor::{Dtype, Instructor, LoadOptions};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct QuantizeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The folder to write (sentence-transformers layout); it must not exist yet.
    #[arg(long)]
    pub output: PathBuf,
}

pub fn run(args: QuantizeArgs) -> Result<()> {
    if args.model.dtype != Dtype::F32 {
        bail!("--dtype: quantize reads the weights in f32 and writes int8; leave --dtype out");
    }
    if args.output.exists() {
        bail!(
            "{}: already exists (quantize writes a new folder; remove it or choose another --output)",
            args.output.display()
        );
    }
    let dir = args.model.resolve()?;
    let bar = args.model.progress(3, "quantizing");
    let files = instructor::quantize::quantize_model(&DirSource::new(&dir))?;
    bar.inc(1);
    // Written into a temporary folder beside the output, checked by loading it, then renamed:
    // a failure leaves no partial folder at --output.
    let parent = match args.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent)
        .with_context(|| format!("{}: cannot create", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".quantize-")
        .tempdir_in(parent)
        .with_context(|| format!("{}: cannot create a folder there", parent.display()))?;
    for (name, bytes) in &files {
        let path = tmp.path().join(name);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&path, bytes)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    copy_others(&dir, &dir, tmp.path())?;
    bar.inc(1);
    let model = Instructor::load(tmp.path(), &LoadOptions::default())
        .context("the quantized folder does not load")?;
    bar.inc(1);
    bar.finish_and_clear();
    let tmp = tmp.keep();
    std::fs::rename(&tmp, &args.output)
        .with_context(|| format!("{}: cannot move the folder there", args.output.display()))?;
    let size = |root: &Path, names: &mut dyn Iterator<Item = PathBuf>| -> u64 {
        names
            .filter_map(|n| std::fs::metadata(root.join(n)).ok())
            .map(|m| m.len())
            .sum()
    };
    let config = instructor::config::ModelConfig::from_folder(&dir)?;
    let src_bytes = size(
        &dir,
        &mut std::iter::once(config.weights.clone()).chain(config.heads.iter().filter_map(|h| {
            match h {
                instructor::config::HeadConfig::Dense(d) => Some(d.weights.clone()),
                instructor::config::HeadConfig::Normalize => None,
            }
        })),
    );
    let out_bytes = size(
        &args.output,
        &mut files
            .iter()
            .filter(|(n, _)| n.ends_with(".safetensors"))
            .map(|(n, _)| n.into()),
    );
    if !args.model.quiet {
        eprintln!(
            "{}: int8 weights {:.1} MB ({:.0}% of the {:.1} MB source; runs with the {} kernel here)",
            args.output.display(),
            out_bytes as f64 / 1e6,
            100.0 * out_bytes as f64 / src_bytes.max(1) as f64,
            src_bytes as f64 / 1e6,
            model.int8_kernel().unwrap_or("?"),
        );
    }
    Ok(())
}

/// Copies what the model does not read but its users may (`config_sentence_transformers.json`
/// with its prompts, `README.md`, `tokenizer_config.json`): every file under `dir` that is not
/// written already and not another format's weights.
fn copy_others(root: &Path, dir: &Path, out: &Path) -> Result<()> {
    const WEIGHTS: [&str; 6] = ["safetensors", "bin", "pt", "pth", "onnx", "h5"];
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?
    {
        let path = entry?.path();
        let rel = path.strip_prefix(root).expect("under the root");
        if rel.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            copy_others(root, &path, out)?;
            continue;
        }
        let weights = path
            .extension()
            .is_some_and(|e| WEIGHTS.contains(&e.to_string_lossy().as_ref()));
        let dest = out.join(rel);
        if weights || dest.exists() {
            continue;
        }
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::copy(&path, &dest).with_context(|| format!("{}: cannot copy", path.display()))?;
    }
    Ok(())
}
