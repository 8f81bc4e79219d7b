//! The model folder: the sentence-transformers layout the hub uses.
//!
//! ```text
//! modules.json                 Transformer → Pooling → Dense → Normalize, in order
//! config.json                  the T5 encoder (read with candle-transformers' `t5::Config`)
//! sentence_bert_config.json    max_seq_length, do_lower_case
//! tokenizer.json
//! model.safetensors | pytorch_model.bin
//! 1_Pooling/config.json        mean pooling (the only mode INSTRUCTOR uses)
//! 2_Dense/config.json          in/out features, bias, activation
//! 2_Dense/model.safetensors | 2_Dense/pytorch_model.bin
//! ```
//!
//! Parsing is split from reading so that the hub downloader can ask which files a model needs
//! ([`Module::files`]) before any of them is on disk.

use crate::error::{Error, Result};
use crate::source::{DirSource, ModelSource};
use candle_transformers::models::t5;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub use t5::Config as T5Config;

/// Weight file names, in the order they are preferred.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// One entry of `modules.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    pub kind: ModuleKind,
    /// Folder relative to the model root ("" for the Transformer).
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    Transformer,
    Pooling,
    Dense,
    Normalize,
}

impl Module {
    fn join(&self, file: &str) -> String {
        if self.path.is_empty() {
            file.to_string()
        } else {
            format!("{}/{file}", self.path.trim_end_matches('/'))
        }
    }

    /// Files this module reads besides its weights, relative to the model root.
    pub fn files(&self) -> Vec<String> {
        match self.kind {
            ModuleKind::Transformer => {
                ["config.json", "sentence_bert_config.json", "tokenizer.json"]
                    .iter()
                    .map(|f| self.join(f))
                    .collect()
            }
            ModuleKind::Pooling | ModuleKind::Dense => vec![self.join("config.json")],
            ModuleKind::Normalize => vec![],
        }
    }

    /// Candidate weight files (any one of them suffices), relative to the model root.
    pub fn weight_files(&self) -> Vec<String> {
        match self.kind {
            ModuleKind::Transformer | ModuleKind::Dense => {
                WEIGHT_FILES.iter().map(|f| self.join(f)).collect()
            }
            ModuleKind::Pooling | ModuleKind::Normalize => vec![],
        }
    }
}

/// Parses `modules.json`. `file` is only used in error messages.
pub fn parse_modules(text: &str, file: &Path) -> Result<Vec<Module>> {
    #[derive(Deserialize)]
    struct Entry {
        path: String,
        #[serde(rename = "type")]
        kind: String,
    }
    let entries: Vec<Entry> = serde_json::from_str(text).map_err(|e| Error::config(file, e))?;
    let modules = entries
        .into_iter()
        .map(|e| {
            // The class name is what matters: both `sentence_transformers.models.Dense` and
            // InstructorEmbedding's own subclasses name the same layers.
            let class = e.kind.rsplit('.').next().unwrap_or_default();
            let kind = match class {
                "Transformer" | "INSTRUCTOR_Transformer" => ModuleKind::Transformer,
                "Pooling" | "INSTRUCTOR_Pooling" => ModuleKind::Pooling,
                "Dense" => ModuleKind::Dense,
                "Normalize" => ModuleKind::Normalize,
                _ => {
                    return Err(Error::config(
                        file,
                        format!("unsupported module type `{}`", e.kind),
                    ))
                }
            };
            Ok(Module { kind, path: e.path })
        })
        .collect::<Result<Vec<_>>>()?;
    let kinds: Vec<_> = modules.iter().map(|m| m.kind).collect();
    let valid_prefix = kinds.first() == Some(&ModuleKind::Transformer)
        && kinds.get(1) == Some(&ModuleKind::Pooling)
        && kinds[2..]
            .iter()
            .all(|k| matches!(k, ModuleKind::Dense | ModuleKind::Normalize));
    if !valid_prefix {
        return Err(Error::config(
            file,
            format!("expected Transformer, Pooling, then Dense/Normalize modules; found {kinds:?}"),
        ));
    }
    Ok(modules)
}

/// Every activation the model may use: the T5 feed-forward's (`feed_forward_proj`) and a Dense
/// layer's (`activation_function`). The one list: the config accepts exactly these, the candle
/// backend applies them ([`forward`](Self::forward)) and the wgpu kernels number them as
/// `matmul.wgsl`'s `act` (the discriminants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Identity = 0,
    Relu = 1,
    /// GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh = 2,
    Tanh = 3,
    /// Exact GELU (`gelu`, torch's `nn.GELU`).
    GeluErf = 4,
    Sigmoid = 5,
    Silu = 6,
}

impl Activation {
    /// A T5 `feed_forward_proj` activation as candle-transformers parses it; `None` when
    /// unsupported.
    pub fn from_t5(a: candle_nn::Activation) -> Option<Self> {
        use candle_nn::Activation as A;
        Some(match a {
            A::Relu => Self::Relu,
            A::Gelu => Self::GeluErf,
            A::NewGelu | A::GeluPytorchTanh => Self::GeluTanh,
            A::Silu => Self::Silu,
            _ => return None,
        })
    }

    /// A Dense layer's `activation_function`, by its torch class (`torch.nn.modules.activation.Tanh`).
    pub fn from_torch_class(name: &str) -> Option<Self> {
        Some(match name.rsplit('.').next().unwrap_or_default() {
            "Identity" => Self::Identity,
            "Tanh" => Self::Tanh,
            "ReLU" => Self::Relu,
            "GELU" => Self::GeluErf,
            "Sigmoid" => Self::Sigmoid,
            _ => return None,
        })
    }

    pub fn forward(self, xs: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        match self {
            Self::Identity => Ok(xs.clone()),
            Self::Relu => xs.relu(),
            Self::GeluTanh => xs.gelu(),
            Self::Tanh => xs.tanh(),
            Self::GeluErf => xs.gelu_erf(),
            Self::Sigmoid => candle_nn::ops::sigmoid(xs),
            Self::Silu => xs.silu(),
        }
    }
}

/// `2_Dense/config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseConfig {
    pub in_features: usize,
    pub out_features: usize,
    pub bias: bool,
    pub activation: Activation,
    /// Weight file of this layer.
    pub weights: PathBuf,
}

/// One step after pooling, in `modules.json` order.
#[derive(Debug, Clone, PartialEq)]
pub enum HeadConfig {
    Dense(DenseConfig),
    Normalize,
}

/// Everything needed to build a model, read from a model folder.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub root: PathBuf,
    pub t5: T5Config,
    pub max_seq_length: usize,
    pub do_lower_case: bool,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
    pub heads: Vec<HeadConfig>,
    /// `config.json` says the weights are int8 (`quantization_config`, written by
    /// `instructor quantize`).
    pub quantized: bool,
}

/// `quantization_config.quant_method` of a folder `instructor quantize` wrote.
pub const QUANT_METHOD: &str = "instructor-int8";

impl ModelConfig {
    /// Reads and checks a model folder.
    pub fn from_folder(root: impl AsRef<Path>) -> Result<Self> {
        Self::from_source(&DirSource::new(root))
    }

    /// Reads and checks a model from any source (a folder, or files fetched into memory). Paths
    /// in the result are `source.root()` joined with the file's name.
    pub fn from_source(src: &dyn ModelSource) -> Result<Self> {
        src.check()?;
        let root = src.root();
        let modules_file = root.join("modules.json");
        let modules = parse_modules(&read(src, "modules.json")?, &modules_file)?;

        let t5: T5Config = parse_json(src, "config.json")?;
        check_t5(&t5, &root.join("config.json"))?;
        #[derive(Deserialize)]
        struct Quantization {
            quant_method: String,
        }
        #[derive(Deserialize)]
        struct Quantized {
            quantization_config: Option<Quantization>,
        }
        let quantized = match parse_json::<Quantized>(src, "config.json")?.quantization_config {
            None => false,
            Some(q) if q.quant_method == QUANT_METHOD => true,
            Some(q) => {
                return Err(Error::config(
                    root.join("config.json"),
                    format!(
                        "quantization_config.quant_method `{}` is not supported (only `{QUANT_METHOD}`, \
                         from `instructor quantize`)",
                        q.quant_method
                    ),
                ))
            }
        };

        #[derive(Deserialize)]
        struct SbertConfig {
            max_seq_length: Option<usize>,
            #[serde(default)]
            do_lower_case: bool,
        }
        let sbert: SbertConfig = if src.exists("sentence_bert_config.json") {
            parse_json(src, "sentence_bert_config.json")?
        } else {
            SbertConfig {
                max_seq_length: None,
                do_lower_case: false,
            }
        };

        let mut heads = Vec::new();
        let mut dim = t5.d_model;
        for module in &modules {
            match module.kind {
                ModuleKind::Transformer => {}
                ModuleKind::Pooling => check_pooling(src, &module.join("config.json"), dim)?,
                ModuleKind::Dense => {
                    let file = module.join("config.json");
                    let dense = parse_dense(src, &file, module)?;
                    if dense.in_features != dim {
                        return Err(Error::config(
                            root.join(&file),
                            format!(
                                "in_features is {} but the previous layer gives {dim}",
                                dense.in_features
                            ),
                        ));
                    }
                    dim = dense.out_features;
                    heads.push(HeadConfig::Dense(dense));
                }
                ModuleKind::Normalize => heads.push(HeadConfig::Normalize),
            }
        }

        Ok(ModelConfig {
            root: root.to_path_buf(),
            max_seq_length: sbert.max_seq_length.unwrap_or(512),
            do_lower_case: sbert.do_lower_case,
            tokenizer: existing(src, "tokenizer.json")?,
            weights: find_weights(src, &modules[0])?,
            t5,
            heads,
            quantized,
        })
    }

    /// Size of the final embedding.
    pub fn dim(&self) -> usize {
        self.heads
            .iter()
            .rev()
            .find_map(|h| match h {
                HeadConfig::Dense(d) => Some(d.out_features),
                HeadConfig::Normalize => None,
            })
            .unwrap_or(self.t5.d_model)
    }

    /// The name of `path` (one of this config's paths) relative to the root, as a source knows it.
    pub(crate) fn relative(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Every file a model needs besides its weights, and for each weighted module its candidate
/// weight files (the first present one is used), from `modules.json`. What the downloaders (the
/// native hub client and the browser's) fetch.
pub fn needed_files(modules: &[Module]) -> (Vec<String>, Vec<Vec<String>>) {
    let files = std::iter::once("modules.json".to_string())
        .chain(modules.iter().flat_map(|m| m.files()))
        .collect();
    let weights = modules
        .iter()
        .map(|m| m.weight_files())
        .filter(|w| !w.is_empty())
        .collect();
    (files, weights)
}

/// The files a model folder needs after its `modules.json` (which must be in `dir`), as groups of
/// alternatives (one weights file of each weighted module): what the hub downloader fetches once
/// it has `modules.json`.
pub fn model_files(dir: &Path) -> Result<Vec<Vec<String>>> {
    let file = dir.join("modules.json");
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    let mut groups = vec![];
    for module in parse_modules(&text, &file)? {
        groups.extend(module.files().into_iter().map(|f| vec![f]));
        groups.push(module.weight_files());
    }
    groups.retain(|g| !g.is_empty());
    Ok(groups)
}

fn read(src: &dyn ModelSource, file: &str) -> Result<String> {
    let bytes = src.read(file)?;
    String::from_utf8(bytes).map_err(|e| Error::config(src.root().join(file), e))
}

fn parse_json<T: serde::de::DeserializeOwned>(src: &dyn ModelSource, file: &str) -> Result<T> {
    serde_json::from_str(&read(src, file)?).map_err(|e| Error::config(src.root().join(file), e))
}

fn existing(src: &dyn ModelSource, file: &str) -> Result<PathBuf> {
    let path = src.root().join(file);
    if src.exists(file) {
        Ok(path)
    } else {
        Err(Error::config(path, "missing file"))
    }
}

fn find_weights(src: &dyn ModelSource, module: &Module) -> Result<PathBuf> {
    let root = src.root();
    let candidates = module.weight_files();
    candidates
        .iter()
        .find(|f| src.exists(f))
        .map(|f| root.join(f))
        .ok_or_else(|| {
            Error::config(
                root.join(if module.path.is_empty() {
                    "."
                } else {
                    &module.path
                }),
                format!("no weights: expected one of {}", candidates.join(", ")),
            )
        })
}

fn check_t5(t5: &T5Config, file: &Path) -> Result<()> {
    let bad = |field: &str, why: &str| Err(Error::config(file, format!("field `{field}`: {why}")));
    if t5.d_model == 0 || t5.num_heads == 0 || t5.d_kv == 0 || t5.num_layers == 0 {
        return bad("d_model/num_heads/d_kv/num_layers", "must be positive");
    }
    if t5.relative_attention_num_buckets < 4 {
        return bad("relative_attention_num_buckets", "must be at least 4");
    }
    if Activation::from_t5(t5.feed_forward_proj.activation).is_none() {
        return bad("feed_forward_proj", "unsupported activation");
    }
    Ok(())
}

fn check_pooling(src: &dyn ModelSource, rel: &str, dim: usize) -> Result<()> {
    let file = &src.root().join(rel);
    #[derive(Deserialize)]
    struct Pooling {
        word_embedding_dimension: usize,
        #[serde(default)]
        pooling_mode_mean_tokens: bool,
        #[serde(default)]
        pooling_mode_cls_token: bool,
        #[serde(default)]
        pooling_mode_max_tokens: bool,
        #[serde(default)]
        pooling_mode_mean_sqrt_len_tokens: bool,
    }
    let p: Pooling = parse_json(src, rel)?;
    if !p.pooling_mode_mean_tokens
        || p.pooling_mode_cls_token
        || p.pooling_mode_max_tokens
        || p.pooling_mode_mean_sqrt_len_tokens
    {
        return Err(Error::config(
            file,
            "only mean pooling (`pooling_mode_mean_tokens` alone) is supported",
        ));
    }
    if p.word_embedding_dimension != dim {
        return Err(Error::config(
            file,
            format!(
                "word_embedding_dimension is {} but config.json has d_model {dim}",
                p.word_embedding_dimension
            ),
        ));
    }
    Ok(())
}

fn parse_dense(src: &dyn ModelSource, rel: &str, module: &Module) -> Result<DenseConfig> {
    let file = &src.root().join(rel);
    #[derive(Deserialize)]
    struct Dense {
        in_features: usize,
        out_features: usize,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default = "identity")]
        activation_function: String,
    }
    fn yes() -> bool {
        true
    }
    fn identity() -> String {
        "torch.nn.modules.linear.Identity".into()
    }
    let d: Dense = parse_json(src, rel)?;
    let activation = Activation::from_torch_class(&d.activation_function).ok_or_else(|| {
        Error::config(
            file,
            format!(
                "field `activation_function`: unsupported `{}`",
                d.activation_function
            ),
        )
    })?;
    Ok(DenseConfig {
        in_features: d.in_features,
        out_features: d.out_features,
        bias: d.bias,
        activation,
        weights: find_weights(src, module)?,
    })
}
