//! `instructor embed`: JSON lines in, a `.npy` or `.jsonl` file of embeddings out.

use crate::args::{write_atomic, ModelArgs};
use anyhow::{bail, Context, Result};
use instructor::{EncodeOptions, Input};
use npyz::WriterBuilder;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// One JSON object per line: `{"instruction": "...", "text": "..."}` (instruction optional).
    #[arg(long)]
    pub input: PathBuf,
    /// Output file: `.npy` (float32, [N, dim]) or `.jsonl` (`{"embedding": [...]}` per line).
    #[arg(long)]
    pub output: PathBuf,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// L2-normalise the embeddings once more.
    #[arg(long)]
    pub normalize: bool,
    /// Truncate inputs to this many tokens (`</s>` included); the model's own by default.
    #[arg(long)]
    pub max_seq_length: Option<usize>,
}

#[derive(Clone, Copy)]
enum Format {
    Npy,
    Jsonl,
}

pub fn run(args: EmbedArgs) -> Result<()> {
    let format = match args.output.extension().and_then(|e| e.to_str()) {
        Some("npy") => Format::Npy,
        Some("jsonl") => Format::Jsonl,
        _ => bail!(
            "--output {}: expected a .npy or .jsonl file",
            args.output.display()
        ),
    };
    let inputs = read_inputs(&args.input)?;
    let model = args.model.load()?;
    let bar = args.model.progress(inputs.len(), "embedding");
    let progress = |done: usize, _total: usize| {
        bar.set_position(done as u64);
        Ok(())
    };
    let opts = EncodeOptions {
        batch_size: args.batch_size,
        normalize: args.normalize,
        max_seq_length: args.max_seq_length,
        progress: Some(&progress),
    };
    let out = model.encode(&inputs, &opts)?;
    bar.finish_and_clear();
    write_atomic(&args.output, |w| {
        match format {
            Format::Npy => {
                let mut npy = npyz::WriteOptions::new()
                    .default_dtype()
                    .shape(&[out.rows as u64, out.dim as u64])
                    .writer(w)
                    .begin_nd()?;
                npy.extend(out.data.iter().copied())?;
                npy.finish()?;
            }
            Format::Jsonl => {
                for i in 0..out.rows {
                    serde_json::to_writer(
                        &mut *w,
                        &serde_json::json!({ "embedding": out.row(i) }),
                    )?;
                    w.write_all(b"\n")?;
                }
            }
        }
        Ok(())
    })
}

/// Reads the input file, naming the line of any malformed record. Blank lines are skipped.
pub fn read_inputs(path: &Path) -> Result<Vec<Input>> {
    #[derive(serde::Deserialize)]
    struct Record {
        instruction: Option<String>,
        text: String,
    }
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut inputs = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let bad = |what: String| instructor::Error::line(path, i + 1, what);
        let line = std::str::from_utf8(line)
            .map_err(|e| bad(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        inputs.push(Input::new(r.instruction.unwrap_or_default(), r.text));
    }
    Ok(inputs)
}
