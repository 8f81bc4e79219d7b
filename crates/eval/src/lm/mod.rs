//! Causal language models that score continuations: GPT-J ([`gptj`], the paper's), and Llama-
//! family checkpoints through candle-transformers (a small one runs on a CPU). Which one a folder
//! holds is read from its `config.json` (`model_type`).
//!
//! The one thing asked of a model is MetaICL's `run_model` loss: the mean cross-entropy of a
//! sequence's scored tokens, each predicted from all tokens before it ([`CausalLm::mean_losses`]).

pub mod gptj;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::llama;
use std::path::{Path, PathBuf};

/// A language-model error, naming the folder or file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {msg}", path.display())]
pub struct LmError {
    pub path: PathBuf,
    pub msg: String,
}

fn err(path: &Path, msg: impl std::fmt::Display) -> LmError {
    LmError {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

/// A sequence to score: `ids[start..]` is the continuation (an option), `ids[..start]` the prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub ids: Vec<u32>,
    pub start: usize,
}

enum Arch {
    GptJ(gptj::GptJ),
    Llama(Box<llama::Llama>, llama::Config),
}

/// A causal LM loaded from a hub-layout folder, with its tokenizer.
pub struct CausalLm {
    arch: Arch,
    tokenizer: tokenizers::Tokenizer,
    device: Device,
    dtype: DType,
    dir: PathBuf,
}

/// The files a model folder needs, as groups of alternatives (for the hub client).
pub fn files() -> Vec<Vec<String>> {
    vec![
        vec!["tokenizer.json".into()],
        vec!["model.safetensors".into(), "pytorch_model.bin".into()],
    ]
}

/// The `model_type`s [`CausalLm::load`] reads.
pub const MODEL_TYPES: [&str; 2] = ["gptj", "llama"];

impl CausalLm {
    /// Loads `dir` (`config.json`, `tokenizer.json`, `model.safetensors` or `pytorch_model.bin`)
    /// in `dtype` on `device`.
    pub fn load(dir: &Path, device: &Device, dtype: DType) -> Result<Self, LmError> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| err(&config_path, e))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| err(&config_path, e))?;
        let model_type = value["model_type"].as_str().unwrap_or_default().to_string();
        let weights = ["model.safetensors", "pytorch_model.bin"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .ok_or_else(|| err(dir, "no model.safetensors or pytorch_model.bin"))?;
        let vb = if weights.extension().is_some_and(|e| e == "bin") {
            VarBuilder::from_pth(&weights, dtype, device)
        } else {
            // SAFETY: read-only map of a file the hub cache never rewrites (blobs are immutable).
            unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], dtype, device) }
        }
        .map_err(|e| err(&weights, e))?;
        let arch = match model_type.as_str() {
            "gptj" => {
                let cfg: gptj::Config =
                    serde_json::from_value(value).map_err(|e| err(&config_path, e))?;
                Arch::GptJ(gptj::GptJ::load(vb, &cfg).map_err(|e| err(&weights, e))?)
            }
            "llama" => {
                let cfg: llama::LlamaConfig =
                    serde_json::from_value(value).map_err(|e| err(&config_path, e))?;
                let cfg = cfg.into_config(false);
                // candle-transformers' Llama::load panics on a missing tensor: check first.
                let missing = llama_tensors(&cfg)
                    .into_iter()
                    .find(|name| !vb.contains_tensor(name));
                if let Some(name) = missing {
                    return Err(err(&weights, format!("missing tensor `{name}`")));
                }
                let model = llama::Llama::load(vb, &cfg).map_err(|e| err(&weights, e))?;
                Arch::Llama(Box::new(model), cfg)
            }
            other => {
                return Err(err(
                    &config_path,
                    format!(
                        "model_type `{other}` is not a supported causal LM (supported: {})",
                        MODEL_TYPES.join(", ")
                    ),
                ))
            }
        };
        let tok_path = dir.join("tokenizer.json");
        let tokenizer =
            tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| err(&tok_path, e))?;
        Ok(Self {
            arch,
            tokenizer,
            device: device.clone(),
            dtype,
            dir: dir.to_path_buf(),
        })
    }

    /// Token ids of `text` as transformers' `tokenizer(text)["input_ids"]` gives them (the
    /// tokenizer's post-processor applied: none for GPT-2/GPT-J, a BOS for Llama).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, LmError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| err(&self.dir.join("tokenizer.json"), e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Logits `(positions, vocab)` of every position of `ids` (tests, and a CLI user's check).
    pub fn logits(&self, ids: &[u32]) -> Result<Tensor, LmError> {
        let run = || -> candle_core::Result<Tensor> {
            match &self.arch {
                Arch::GptJ(m) => {
                    let (h, _) = m.forward(&self.row(ids)?, None)?;
                    m.logits(&h.i(0)?)
                }
                Arch::Llama(m, cfg) => {
                    let mut cache = llama::Cache::new(true, self.dtype, cfg, &self.device)?;
                    let first = m.forward(&self.row(&ids[..1])?, 0, &mut cache)?;
                    self.llama_steps(m, cache, first, ids, 1)
                }
            }
        };
        run().map_err(|e| err(&self.dir, e))
    }

    /// The batched form of [`CausalLm::logits`] for GPT-J: rows padded on the right with `pad`,
    /// run as one batch; row `i`'s first `ids[i].len()` positions are returned.
    pub fn logits_batch(&self, ids: &[Vec<u32>], pad: u32) -> Result<Vec<Tensor>, LmError> {
        let Arch::GptJ(m) = &self.arch else {
            return ids.iter().map(|r| self.logits(r)).collect();
        };
        let run = || -> candle_core::Result<Vec<Tensor>> {
            let len = ids.iter().map(Vec::len).max().unwrap_or(0);
            let flat: Vec<u32> = ids
                .iter()
                .flat_map(|r| r.iter().copied().chain(std::iter::repeat(pad)).take(len))
                .collect();
            let x = Tensor::from_vec(flat, (ids.len(), len), &self.device)?;
            let (h, _) = m.forward(&x, None)?;
            ids.iter()
                .enumerate()
                .map(|(i, r)| m.logits(&h.i(i)?.narrow(0, 0, r.len())?))
                .collect()
        };
        run().map_err(|e| err(&self.dir, e))
    }

    /// For each sequence, the mean over `ids[start..]` of −log p(token | tokens before it)
    /// (MetaICL's `run_model`: cross-entropy of the option tokens, averaged). Sequences that
    /// share a prompt (the options of one test input) run it once: GPT-J runs the longest common
    /// prefix, then every continuation as one batch over that prefix's keys and values.
    pub fn mean_losses(&self, seqs: &[Scored]) -> Result<Vec<f32>, LmError> {
        for s in seqs {
            if s.start == 0 || s.start >= s.ids.len() {
                return Err(err(
                    &self.dir,
                    format!(
                        "a scored sequence needs a prompt and a continuation (start {} of {})",
                        s.start,
                        s.ids.len()
                    ),
                ));
            }
        }
        let run = || -> candle_core::Result<Vec<f32>> {
            match &self.arch {
                Arch::GptJ(m) => gptj_losses(m, seqs, &self.device),
                Arch::Llama(m, cfg) => self.llama_losses(m, cfg, seqs),
            }
        };
        run().map_err(|e| err(&self.dir, e))
    }
}

impl CausalLm {
    fn row(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        Tensor::new(ids, &self.device)?.unsqueeze(0)
    }

    /// candle-transformers' Llama gives the last position's logits only: the prompt runs once
    /// (and once for consecutive sequences with the same prompt, its cache cloned), then each
    /// continuation token by token.
    fn llama_losses(
        &self,
        m: &llama::Llama,
        cfg: &llama::Config,
        seqs: &[Scored],
    ) -> candle_core::Result<Vec<f32>> {
        let mut shared: Option<(&[u32], llama::Cache, Tensor)> = None;
        let mut out = Vec::with_capacity(seqs.len());
        for s in seqs {
            let prompt = &s.ids[..s.start];
            let (cache, last) = match &shared {
                Some((p, cache, last)) if *p == prompt => (cache.clone(), last.clone()),
                _ => {
                    let mut cache = llama::Cache::new(true, self.dtype, cfg, &self.device)?;
                    let last = m.forward(&self.row(prompt)?, 0, &mut cache)?;
                    shared = Some((prompt, cache.clone(), last.clone()));
                    (cache, last)
                }
            };
            let n = s.ids.len();
            let logits = self.llama_steps(m, cache, last, &s.ids[..n - 1], s.start)?;
            out.push(mean_ce(&logits, &s.ids[s.start..])?);
        }
        Ok(out)
    }

    /// `first` (the logits after `ids[..from]`, whose keys and values `cache` holds), then the
    /// logits after each further token of `ids`: positions `from − 1 ..= ids.len() − 1`.
    fn llama_steps(
        &self,
        m: &llama::Llama,
        mut cache: llama::Cache,
        first: Tensor,
        ids: &[u32],
        from: usize,
    ) -> candle_core::Result<Tensor> {
        let mut rows = vec![first];
        for j in from..ids.len() {
            rows.push(m.forward(&self.row(&ids[j..j + 1])?, j, &mut cache)?);
        }
        Tensor::cat(&rows, 0)
    }
}

fn gptj_losses(m: &gptj::GptJ, seqs: &[Scored], dev: &Device) -> candle_core::Result<Vec<f32>> {
    let Some(first) = seqs.first() else {
        return Ok(vec![]);
    };
    // The longest common prefix, within every sequence's prompt.
    let mut p = seqs.iter().map(|s| s.start).min().unwrap_or(0);
    for s in seqs {
        p = p.min(
            first
                .ids
                .iter()
                .zip(&s.ids)
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    let (last, past) = if p > 0 {
        let x = Tensor::new(&first.ids[..p], dev)?.unsqueeze(0)?;
        let (h, past) = m.forward(&x, None)?;
        (
            Some(h.i((0, p - 1))?.unsqueeze(0)?),
            Some(past.repeat(seqs.len())?),
        )
    } else {
        (None, None)
    };
    let tails: Vec<&[u32]> = seqs.iter().map(|s| &s.ids[p..]).collect();
    let len = tails.iter().map(|t| t.len()).max().unwrap_or(0);
    let flat: Vec<u32> = tails
        .iter()
        .flat_map(|t| t.iter().copied().chain(std::iter::repeat(0)).take(len))
        .collect();
    let x = Tensor::from_vec(flat, (seqs.len(), len), dev)?;
    let (h, _) = m.forward(&x, past.as_ref())?;
    seqs.iter()
        .enumerate()
        .map(|(i, s)| {
            // Hidden states of positions start−1 .. len−1 (each predicts the next token).
            let n = s.ids.len() - s.start;
            let tail_from = s.start - 1;
            let states = if tail_from + 1 == p {
                let rest = h.i(i)?.narrow(0, 0, n - 1)?;
                Tensor::cat(&[last.as_ref().expect("p > 0"), &rest], 0)?
            } else {
                h.i(i)?.narrow(0, tail_from - p, n)?
            };
            mean_ce(&m.logits(&states)?, &s.ids[s.start..])
        })
        .collect()
}

/// Mean over rows of −log softmax(logits)[row, target], in f32.
fn mean_ce(logits: &Tensor, targets: &[u32]) -> candle_core::Result<f32> {
    let lp = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, candle_core::D::Minus1)?;
    let t = Tensor::new(targets, logits.device())?.unsqueeze(1)?;
    let picked = lp.gather(&t, 1)?.squeeze(1)?;
    let sum = picked.sum_all()?.to_scalar::<f32>()?;
    Ok(-sum / targets.len() as f32)
}

/// The tensor names candle-transformers' Llama reads (it panics on a missing one).
fn llama_tensors(cfg: &llama::Config) -> Vec<String> {
    let mut names = vec![
        "model.embed_tokens.weight".to_string(),
        "model.norm.weight".into(),
    ];
    if !cfg.tie_word_embeddings {
        names.push("lm_head.weight".into());
    }
    for i in 0..cfg.num_hidden_layers {
        for t in [
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
            "input_layernorm",
            "post_attention_layernorm",
        ] {
            names.push(format!("model.layers.{i}.{t}.weight"));
        }
    }
    names
}
