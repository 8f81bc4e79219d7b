//! The browser bindings (wasm-bindgen), wrapped by the npm package `instructor-embed`
//! (`pkg/index.js`). A leaf: it uses the core (one loader, one encode path) and nothing native.
//!
//! The JS side fetches the files and keeps them in IndexedDB; it hands them over as arrays of
//! `Uint8Array` chunks that stay in the JS heap. The loader reads the weights tensor by tensor
//! from them ([`JsChunks`]), so wasm memory holds the model once, plus one tensor in flight.

use crate::config::{needed_files, parse_modules};
use crate::source::{MemorySource, ReadAt};
use crate::tokenize::Tokens;
use crate::{BackendKind, Dtype, Input, Instructor, LoadOptions};
use js_sys::{Array, Float32Array, Promise, Uint8Array};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error(&format!("instructor-embed: {info}"))
    }));
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Which files a model needs, by the same rule as natively (`modules.json` → each module's files
/// and candidate weight files). Returns JSON `{ "files": [...], "weights": [[candidates], ...] }`.
#[wasm_bindgen(js_name = neededFiles)]
pub fn needed_files_json(modules_json: &str) -> Result<String, JsError> {
    let modules = parse_modules(modules_json, Path::new("modules.json")).map_err(js_err)?;
    let (files, weights) = needed_files(&modules);
    Ok(serde_json::json!({ "files": files, "weights": weights }).to_string())
}

/// Incremental SHA-256 (SubtleCrypto cannot hash a stream).
#[wasm_bindgen]
pub struct Sha256Hasher {
    inner: sha2::Sha256,
    buf: Vec<u8>,
}

#[wasm_bindgen]
impl Sha256Hasher {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self {
            inner: <sha2::Sha256 as sha2::Digest>::new(),
            buf: vec![0; 1 << 16],
        }
    }

    /// Hashes `data`, copied into wasm memory 64 KiB at a time.
    pub fn update(&mut self, data: &Uint8Array) {
        let n = data.length();
        let step = self.buf.len() as u32;
        let mut i = 0;
        while i < n {
            let end = (i + step).min(n);
            let piece = &mut self.buf[..(end - i) as usize];
            data.subarray(i, end).copy_to(piece);
            sha2::Digest::update(&mut self.inner, &*piece);
            i = end;
        }
    }

    /// The lowercase hex digest; the hasher can not be used afterwards.
    pub fn finish(self) -> String {
        let digest = sha2::Digest::finalize(self.inner);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl Default for Sha256Hasher {
    fn default() -> Self {
        Self::new()
    }
}

/// A file as JS chunks, read in place.
struct JsChunks {
    /// (start offset, chunk), in order.
    chunks: Vec<(u64, Uint8Array)>,
    len: u64,
}

// SAFETY: JS values live on the thread that created them. The single-threaded build has no other
// thread. In the threaded build (`atomics`) the pool threads only ever run the encoder's matrix
// products (`matmul_rows` in src/model/t5.rs), never the loader: a `JsChunks` is created, read
// and dropped inside `WasmModel::load`, on the thread that called it, before `load` returns.
unsafe impl Send for JsChunks {}
unsafe impl Sync for JsChunks {}

impl JsChunks {
    fn new(parts: &Array) -> Result<Self, JsError> {
        let mut chunks = Vec::with_capacity(parts.length() as usize);
        let mut len = 0u64;
        for part in parts.iter() {
            let a: Uint8Array = part
                .dyn_into()
                .map_err(|_| JsError::new("file chunks must be Uint8Arrays"))?;
            let n = a.length() as u64;
            if n > 0 {
                chunks.push((len, a));
                len += n;
            }
        }
        Ok(Self { chunks, len })
    }
}

impl ReadAt for JsChunks {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset + buf.len() as u64;
        if end > self.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "file truncated: wanted bytes {offset}..{end} of a {}-byte file",
                    self.len
                ),
            ));
        }
        // First chunk holding `offset`.
        let mut i = self.chunks.partition_point(|(start, _)| *start <= offset) - 1;
        let mut pos = offset;
        let mut out = 0usize;
        while out < buf.len() {
            let (start, chunk) = &self.chunks[i];
            let from = (pos - start) as u32;
            let take = ((chunk.length() - from) as usize).min(buf.len() - out);
            chunk
                .subarray(from, from + take as u32)
                .copy_to(&mut buf[out..out + take]);
            out += take;
            pos += take as u64;
            i += 1;
        }
        Ok(())
    }
}

/// Bytes one batch's attention-score tensor may take (see [`WasmModel::encode`]).
const ATTENTION_BUDGET: usize = 48 << 20;

/// A loaded model. Shared with the promises of its running `encode` calls.
#[wasm_bindgen]
pub struct WasmModel {
    inner: Rc<Instructor>,
}

#[wasm_bindgen]
impl WasmModel {
    /// Loads a model from its files: `files` is an array of `[name, Uint8Array[]]` pairs, names
    /// relative to the model root (`2_Dense/config.json`). `name` is used in error messages.
    /// `device` is `cpu`, `webgpu` (fails without a usable adapter) or `auto` (WebGPU when a
    /// hardware adapter takes the model, else the CPU with [`fallbackReason`] saying why).
    /// On WebGPU the weights go to the GPU block by block: wasm memory never holds the model.
    pub async fn load(
        name: String,
        files: Array,
        dtype: String,
        device: String,
    ) -> Result<WasmModel, JsError> {
        let dtype: Dtype = dtype.parse().map_err(js_err)?;
        let backend: BackendKind = match device.as_str() {
            "cpu" | "webgpu" | "auto" => device.parse().map_err(js_err)?,
            other => {
                return Err(JsError::new(&format!(
                    "unknown device `{other}` (expected 'auto', 'cpu' or 'webgpu')"
                )))
            }
        };
        let mut src = MemorySource::new(&name);
        for entry in files.iter() {
            let entry: Array = entry
                .dyn_into()
                .map_err(|_| JsError::new("files must be [name, chunks] pairs"))?;
            let file = entry
                .get(0)
                .as_string()
                .ok_or_else(|| JsError::new("file name must be a string"))?;
            let parts: Array = entry
                .get(1)
                .dyn_into()
                .map_err(|_| JsError::new("file chunks must be an array"))?;
            src.insert(file, Arc::new(JsChunks::new(&parts)?));
        }
        let opts = LoadOptions {
            dtype,
            backend,
            ..LoadOptions::default()
        };
        let inner = Instructor::from_source_async(&src, &opts)
            .await
            .map_err(js_err)?;
        Ok(WasmModel {
            inner: Rc::new(inner),
        })
    }

    /// Size of the embeddings.
    pub fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// `webgpu` or `cpu`.
    pub fn device(&self) -> String {
        if self.on_gpu() { "webgpu" } else { "cpu" }.into()
    }

    /// The WebGPU adapter's description, when on WebGPU.
    pub fn adapter(&self) -> Option<String> {
        self.inner.adapter()
    }

    /// Why `auto` chose the CPU.
    #[wasm_bindgen(js_name = fallbackReason)]
    pub fn fallback_reason(&self) -> Option<String> {
        self.inner.fallback_reason().map(str::to_owned)
    }

    fn on_gpu(&self) -> bool {
        self.adapter().is_some()
    }

    /// Embeds `instructions[i] + texts[i]` pairs; resolves to a `Float32Array`, row-major
    /// `n × dim`.
    ///
    /// On the CPU, batches are also capped by memory: the attention scores of a batch take
    /// `batch × heads × seq² × 4` bytes (400 MiB at batch 32, seq 512 for instructor-base), and
    /// wasm memory never shrinks and ends at 4 GiB. So long inputs go in smaller batches, sized to
    /// [`ATTENTION_BUDGET`]; results do not depend on the batching. The GPU's attention keeps no
    /// score matrix and takes the batches as asked.
    pub fn encode(
        &self,
        instructions: Vec<String>,
        texts: Vec<String>,
        batch_size: usize,
        normalize: bool,
    ) -> Promise {
        let inner = self.inner.clone();
        let budget = (!self.on_gpu()).then_some(ATTENTION_BUDGET);
        future_to_promise(async move {
            let out = encode(&inner, instructions, texts, batch_size, normalize, budget)
                .await
                .map_err(JsValue::from)?;
            Ok(Float32Array::from(out.as_slice()).into())
        })
    }

    /// Token counts of the inputs as encode truncates them (for throughput figures).
    #[wasm_bindgen(js_name = countTokens)]
    pub fn count_tokens(
        &self,
        instructions: Vec<String>,
        texts: Vec<String>,
    ) -> Result<usize, JsError> {
        let inputs: Vec<Input> = instructions
            .into_iter()
            .zip(texts)
            .map(|(i, t)| Input::new(i, t))
            .collect();
        Ok(self
            .inner
            .tokenize(&inputs, None)
            .map_err(js_err)?
            .iter()
            .map(|t| t.ids.len())
            .sum())
    }
}

/// [`WasmModel::encode`]'s work: longest inputs first, in groups of at most `batch_size` inputs
/// whose attention scores fit `budget` bytes (when given).
async fn encode(
    model: &Instructor,
    instructions: Vec<String>,
    texts: Vec<String>,
    batch_size: usize,
    normalize: bool,
    budget: Option<usize>,
) -> Result<Vec<f32>, JsError> {
    if instructions.len() != texts.len() {
        return Err(JsError::new("instructions and texts differ in length"));
    }
    if batch_size == 0 {
        return Err(JsError::new("batchSize must be at least 1"));
    }
    let inputs: Vec<Input> = instructions
        .into_iter()
        .zip(texts)
        .map(|(i, t)| Input::new(i, t))
        .collect();
    // Tokenized once; the groups go to the encoder as tokens.
    let mut tokens: Vec<(usize, Tokens)> = model
        .tokenize(&inputs, None)
        .map_err(js_err)?
        .into_iter()
        .enumerate()
        .collect();
    tokens.sort_by_key(|(_, t)| std::cmp::Reverse(t.ids.len()));
    let (order, tokens): (Vec<usize>, Vec<Tokens>) = tokens.into_iter().unzip();
    let heads = model.config().t5.num_heads;
    let dim = model.dim();
    let mut out = vec![0f32; inputs.len() * dim];
    let mut start = 0;
    while start < tokens.len() {
        // Sorted longest first: the first input of a group is its longest.
        let seq = tokens[start].ids.len().max(1);
        let fits = budget.map_or(batch_size, |b| (b / (heads * seq * seq * 4)).max(1));
        let end = (start + fits.min(batch_size)).min(tokens.len());
        let rows = model
            .embed_tokens(&tokens[start..end], normalize)
            .await
            .map_err(js_err)?;
        for (row, &k) in rows.chunks_exact(dim).zip(&order[start..end]) {
            out[k * dim..(k + 1) * dim].copy_from_slice(row);
        }
        start = end;
    }
    Ok(out)
}

/// Current size of the wasm linear memory in bytes (it only grows: this is the peak so far).
#[wasm_bindgen(js_name = wasmMemoryBytes)]
pub fn wasm_memory_bytes() -> f64 {
    (core::arch::wasm32::memory_size(0) as f64) * 65536.0
}

/// Starts the thread pool (`initThreadPool(n)`, a Promise; Web Workers sharing this module's
/// memory). Only in the threaded build; `pkg/index.js` calls it once, right after instantiating.
#[cfg(target_feature = "atomics")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// How many threads run the encoder's matrix products: the pool's size in the threaded build,
/// 1 in the single-threaded one.
#[wasm_bindgen]
pub fn threads() -> usize {
    #[cfg(target_feature = "atomics")]
    return rayon::current_num_threads();
    #[cfg(not(target_feature = "atomics"))]
    return 1;
}

/// Whether this build uses WebAssembly SIMD (v128).
#[wasm_bindgen]
pub fn simd() -> bool {
    cfg!(target_feature = "simd128")
}
