//! `instructor embed`: JSON lines in, a `.npy` or `.jsonl` file of embeddings out.

use crate::args::{write_atomic, ModelArgs};
use crate::dist::{Gather, World};
use anyhow::{bail, Context, Result};
use instructor::{Embeddings, EncodeOptions, Input};
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
    let world = World::init()?;
    let Some(out) = world.finish(embed_share(&args, &world))? else {
        return Ok(()); // not rank 0: its rows went to rank 0, which writes the file
    };
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

/// Embeds the inputs across the ranks ([`World::encode`]): rank 0 gets every row in input order,
/// the others `None`; the file is the same bytes whatever the number of ranks.
fn embed_share(args: &EmbedArgs, world: &World) -> Result<Option<Embeddings>> {
    let inputs = read_inputs(&args.input)?;
    let margs = world.model_args(&args.model);
    let dir = world.root_first(|| margs.resolve())?;
    let model = margs.load_from(&dir)?;
    let opts = EncodeOptions {
        batch_size: args.batch_size,
        normalize: args.normalize,
        max_seq_length: args.max_seq_length,
        progress: None,
    };
    let bar = |n| margs.progress(n, "embedding");
    Ok(world.encode(&model, &inputs, &opts, bar, Gather::Root)?)
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
