//! The browser bindings (wasm-bindgen), wrapped by the npm package `instructor-embed`
//! (`pkg/index.js`). A leaf: it uses the core (one loader, one encode path, one batching policy)
//! and converts data and errors, nothing more. Natively this crate is empty.
//!
//! The JS side fetches the files and keeps them in IndexedDB; it hands them over as arrays of
//! `Uint8Array` chunks that stay in the JS heap. The loader reads the weights tensor by tensor
//! from them (`JsChunks`), so wasm memory holds the model once, plus one tensor in flight.

#![cfg(target_arch = "wasm32")]

use instructor::config::{needed_files, parse_modules};
use instructor::source::{MemorySource, ReadAt};
use instructor::{Device, Dtype, EncodeOptions, ErrorKind, Input, Instructor, LoadOptions};
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

/// A core error as a JS `Error` whose `name` is the package's class for its kind (see
/// `pkg/index.d.ts`): `ModelError` (the files do not make a model), `GPUError` (the device),
/// `TypeError` (a bad argument or input), `Error` otherwise.
fn core_err(e: instructor::Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name(match e.kind() {
        ErrorKind::Model | ErrorKind::Io => "ModelError",
        ErrorKind::Device => "GPUError",
        ErrorKind::Input => "TypeError",
        ErrorKind::Compute => "Error",
        ErrorKind::Interrupted => "AbortError",
    });
    err.into()
}

/// Which files a model needs, by the same rule as natively (`modules.json` → each module's files
/// and candidate weight files). Returns JSON `{ "files": [...], "weights": [[candidates], ...] }`.
#[wasm_bindgen(js_name = neededFiles)]
pub fn needed_files_json(modules_json: &str) -> Result<String, JsError> {
    let modules = parse_modules(modules_json, Path::new("modules.json")).map_err(js_err)?;
    let (files, weights) = needed_files(&modules);
    Ok(serde_json::json!({ "files": files, "weights": weights }).to_string())
}

/// `[name, Uint8Array[]]` pairs (as `WasmModel.load` takes them) as a source.
fn memory_source(name: &str, files: &Array) -> Result<MemorySource, JsValue> {
    let mut src = MemorySource::new(name);
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
    Ok(src)
}

/// The int8 copy of a model (`instructor quantize`'s files) from its files as `WasmModel.load`
/// takes them: `[name, Uint8Array]` pairs, or `null` when the model is quantized already. Reads
/// one f32 tensor at a time, so wasm memory holds the int8 result and little else.
#[wasm_bindgen(js_name = quantizeModel)]
pub fn quantize_model(name: String, files: Array) -> Result<JsValue, JsValue> {
    let src = memory_source(&name, &files)?;
    if instructor::config::ModelConfig::from_source(&src)
        .map_err(core_err)?
        .quantized
    {
        return Ok(JsValue::NULL);
    }
    let out = Array::new();
    for (file, bytes) in instructor::quantize::quantize_model(&src).map_err(core_err)? {
        let pair = Array::new();
        pair.push(&JsValue::from_str(&file));
        pair.push(&js_sys::Uint8Array::from(bytes.as_slice()));
        out.push(&pair);
    }
    Ok(out.into())
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
// products (`matmul_rows` in the core's src/model/t5.rs), never the loader: a `JsChunks` is created, read
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
    ) -> Result<WasmModel, JsValue> {
        let dtype: Dtype = dtype.parse().map_err(js_err)?;
        let device = match device.parse().map_err(core_err)? {
            d @ (Device::Cpu | Device::Wgpu | Device::Auto) => d,
            Device::Cuda(_) => {
                return Err(js_err(format!(
                    "unknown device `{device}` (expected 'auto', 'cpu' or 'webgpu')"
                ))
                .into())
            }
        };
        let src = memory_source(&name, &files)?;
        let inner = Instructor::from_source_async(&src, &LoadOptions { dtype, device })
            .await
            .map_err(core_err)?;
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

    /// What the matrix products compute in (`f32`, `f16`, `int8`): a quantized repo is `int8`
    /// whatever was asked.
    pub fn dtype(&self) -> String {
        self.inner.dtype().to_string()
    }

    /// The int8 kernel (`relaxed-simd` or `simd128`) when the model is int8.
    #[wasm_bindgen(js_name = int8Kernel)]
    pub fn int8_kernel(&self) -> Option<String> {
        self.inner.int8_kernel().map(str::to_owned)
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
    /// `n × dim`. Batched as natively (longest first, at most `batch_size` inputs and the tokens
    /// the backend allows: on the CPU wasm memory, which never shrinks, caps a batch).
    pub fn encode(
        &self,
        instructions: Vec<String>,
        texts: Vec<String>,
        batch_size: usize,
        normalize: bool,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            if instructions.len() != texts.len() {
                return Err(js_err("instructions and texts differ in length").into());
            }
            let inputs = pairs(instructions, texts);
            let opts = EncodeOptions {
                batch_size,
                normalize,
                ..EncodeOptions::default()
            };
            let out = inner.encode_async(&inputs, &opts).await.map_err(core_err)?;
            Ok(Float32Array::from(out.data.as_slice()).into())
        })
    }

    /// Token counts of the inputs as encode truncates them (for throughput figures).
    #[wasm_bindgen(js_name = countTokens)]
    pub fn count_tokens(
        &self,
        instructions: Vec<String>,
        texts: Vec<String>,
    ) -> Result<usize, JsError> {
        Ok(self
            .inner
            .tokenize(&pairs(instructions, texts), None)
            .map_err(js_err)?
            .iter()
            .map(|t| t.ids.len())
            .sum())
    }
}

fn pairs(instructions: Vec<String>, texts: Vec<String>) -> Vec<Input> {
    instructions
        .into_iter()
        .zip(texts)
        .map(|(i, t)| Input::new(i, t))
        .collect()
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

/// Whether this build uses relaxed SIMD (the int8 kernel's dot product): `pkg/wasm/` and
/// `pkg/wasm-threads/` do, `pkg/wasm-simd128/` does not.
#[wasm_bindgen(js_name = relaxedSimd)]
pub fn relaxed_simd() -> bool {
    cfg!(target_feature = "relaxed-simd")
}

/// Whether this build uses WebAssembly SIMD (v128).
#[wasm_bindgen]
pub fn simd() -> bool {
    cfg!(target_feature = "simd128")
}
