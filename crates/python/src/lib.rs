//! `instructor_embed._native`: the Rust half of the Python package. It is thin on purpose: it
//! turns Python inputs into [`Input`]s, runs the core's one encode path with the GIL released,
//! fetches models through the hub crate (the huggingface_hub cache the CLI shares), and maps
//! errors to Python's classes. The seed's API (`INSTRUCTOR.encode`'s options, numpy/torch
//! outputs), the mteb and LangChain adapters live in Python, in `python/instructor_embed`.

use instructor::{Device, EncodeOptions, Error, ErrorKind, Input, Instructor, LoadOptions};
use instructor_hub::{self as hub, HubError, HubOptions, Progress};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use std::path::PathBuf;
use std::sync::Mutex;

/// Our own allocations keep freed memory for the next batch (see `instructor_alloc`).
#[global_allocator]
static ALLOC: instructor_alloc::Allocator = instructor_alloc::Allocator;

/// A core error as the Python exception a user of InstructorEmbedding expects: a missing file is
/// `FileNotFoundError`, an unreadable model `OSError` (as transformers raises), bad input
/// `ValueError`, the device or the arithmetic `RuntimeError`. The message is the CLI's.
fn core_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match (&e, e.kind()) {
        (Error::Io { source, .. }, _) if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(msg)
        }
        (_, ErrorKind::Io | ErrorKind::Model) => PyOSError::new_err(msg),
        (_, ErrorKind::Input) => PyValueError::new_err(msg),
        (_, ErrorKind::Device | ErrorKind::Compute) => PyRuntimeError::new_err(msg),
        (_, ErrorKind::Interrupted) => PyKeyboardInterrupt::new_err(msg),
    }
}

/// A hub error: `FileNotFoundError` when the name is no folder or the file is not in the cache
/// (offline), `OSError` for everything else the hub can do wrong (as huggingface_hub's errors
/// are `OSError`s).
fn hub_err(e: HubError) -> PyErr {
    let msg = e.to_string();
    match e {
        HubError::NotAModel(_) | HubError::NotCached(_) => PyFileNotFoundError::new_err(msg),
        _ => PyOSError::new_err(msg),
    }
}

/// The inputs of `encode`: each a string (embedded without an instruction) or an
/// `[instruction, text]` pair (list or tuple). Anything else is a `ValueError` naming the input.
fn inputs(items: &Bound<'_, PyAny>) -> PyResult<Vec<Input>> {
    let mut out = Vec::new();
    for (i, item) in items.try_iter()?.enumerate() {
        let item = item?;
        if let Ok(s) = item.cast::<PyString>() {
            out.push(Input::plain(s.extract::<String>()?));
            continue;
        }
        let bad = |what: String| PyValueError::new_err(format!("input {i}: {what}"));
        let parts: Vec<Bound<'_, PyAny>> = if let Ok(l) = item.cast::<PyList>() {
            l.iter().collect()
        } else if let Ok(t) = item.cast::<PyTuple>() {
            t.iter().collect()
        } else {
            let kind = item.get_type().name()?;
            return Err(bad(format!(
                "expected a string or an [instruction, text] pair, got {kind}"
            )));
        };
        if parts.len() != 2 {
            return Err(bad(format!(
                "an INSTRUCTOR pair is [instruction, text], got {} items",
                parts.len()
            )));
        }
        let text = |k: usize, name: &str| -> PyResult<String> {
            match parts[k].cast::<PyString>() {
                Ok(s) => s.extract::<String>(),
                Err(_) => Err(bad(format!(
                    "the {name} must be a string, got {}",
                    parts[k].get_type().name()?
                ))),
            }
        };
        out.push(Input::new(text(0, "instruction")?, text(1, "text")?));
    }
    Ok(out)
}

/// A loaded model. Python's `INSTRUCTOR` holds one and reloads it for another device.
#[pyclass(frozen, module = "instructor_embed._native")]
struct Model {
    inner: Instructor,
}

#[pymethods]
impl Model {
    /// Loads a model folder (sentence-transformers layout) onto `device` (`cpu`, `cuda`,
    /// `cuda:N`, `wgpu`, `auto`), its matrix products in `dtype` (`f32`, `f16`, `bf16`, `int8`).
    #[new]
    #[pyo3(signature = (folder, device = "cpu", dtype = "f32"))]
    fn new(py: Python<'_>, folder: PathBuf, device: &str, dtype: &str) -> PyResult<Self> {
        let device: Device = device.parse().map_err(core_err)?;
        let dtype = dtype.parse().map_err(PyValueError::new_err)?;
        let opts = LoadOptions { device, dtype };
        let inner = py
            .detach(|| Instructor::load(&folder, &opts))
            .map_err(core_err)?;
        Ok(Self { inner })
    }

    /// `[len(inputs), dim]` float32 embeddings in input order. `progress(done, total)` is called
    /// after each batch, with the GIL; so is Python's signal check, so Ctrl-C stops a long encode
    /// between batches (KeyboardInterrupt).
    #[pyo3(signature = (items, batch_size = 32, normalize = false, max_seq_length = None, progress = None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyAny>,
        batch_size: usize,
        normalize: bool,
        max_seq_length: Option<usize>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let inputs = inputs(items)?;
        let out = Batches::new(progress).run(py, |report| {
            self.inner.encode(
                &inputs,
                &EncodeOptions {
                    batch_size,
                    normalize,
                    max_seq_length,
                    progress: Some(report),
                },
            )
        })?;
        let array =
            Array2::from_shape_vec((out.rows, out.dim), out.data).expect("rows × dim values");
        Ok(array.into_pyarray(py))
    }

    /// The encoder's states per input, instruction included, padding excluded: a list of
    /// `(input_ids int64 [n], states float32 [n, d_model], instruction_len)`.
    #[pyo3(signature = (items, batch_size = 32, max_seq_length = None, progress = None))]
    #[allow(clippy::type_complexity)]
    fn encode_tokens<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyAny>,
        batch_size: usize,
        max_seq_length: Option<usize>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Vec<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray2<f32>>, usize)>> {
        let inputs = inputs(items)?;
        let instruction_lens: Vec<usize> = self
            .inner
            .tokenize(&inputs, max_seq_length)
            .map_err(core_err)?
            .into_iter()
            .map(|t| t.instruction_len)
            .collect();
        let out = Batches::new(progress).run(py, |report| {
            self.inner.encode_tokens(
                &inputs,
                &EncodeOptions {
                    batch_size,
                    normalize: false,
                    max_seq_length,
                    progress: Some(report),
                },
            )
        })?;
        Ok(out
            .into_iter()
            .zip(instruction_lens)
            .map(|(t, n)| {
                let ids: Vec<i64> = t.ids.iter().map(|&i| i64::from(i)).collect();
                let states = Array2::from_shape_vec((t.ids.len(), t.dim), t.data)
                    .expect("tokens × d_model values");
                (ids.into_pyarray(py), states.into_pyarray(py), n)
            })
            .collect())
    }

    /// The embedding's dimension (the last Dense layer's output).
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// The encoder's width (token embeddings' dimension).
    #[getter]
    fn d_model(&self) -> usize {
        self.inner.config().t5.d_model
    }

    /// The model's own truncation length (`sentence_bert_config.json`, else 512).
    /// What the matrix products compute in (a quantized folder is `int8` on the CPU).
    #[getter]
    fn dtype(&self) -> String {
        self.inner.dtype().to_string()
    }

    #[getter]
    fn max_seq_length(&self) -> usize {
        self.inner.config().max_seq_length
    }

    /// `cpu`, `cuda` or `wgpu: <adapter>`.
    #[getter]
    fn backend(&self) -> String {
        self.inner.backend()
    }
}

/// An encode with the GIL released, reporting to a Python callback and checking for signals
/// after each batch. Python errors raised there (Ctrl-C's KeyboardInterrupt, or the callback's
/// own) stop the encode and are re-raised as they were.
struct Batches {
    callback: Option<Py<PyAny>>,
    raised: Mutex<Option<PyErr>>,
}

impl Batches {
    fn new(callback: Option<Py<PyAny>>) -> Self {
        Self {
            callback,
            raised: Mutex::new(None),
        }
    }

    fn report(&self, done: usize, total: usize) -> instructor::Result<()> {
        Python::attach(|py| {
            let called = match &self.callback {
                Some(cb) => cb.call1(py, (done, total)).map(drop),
                None => Ok(()),
            };
            called.and_then(|()| py.check_signals()).map_err(|e| {
                *self.raised.lock().expect("not poisoned") = Some(e);
                Error::Interrupted
            })
        })
    }

    fn run<T: Send>(
        self,
        py: Python<'_>,
        work: impl FnOnce(
                &(dyn Fn(usize, usize) -> instructor::Result<()> + Sync),
            ) -> instructor::Result<T>
            + Send,
    ) -> PyResult<T> {
        let report = |done: usize, total: usize| self.report(done, total);
        match py.detach(|| work(&report)) {
            Ok(v) => Ok(v),
            Err(Error::Interrupted) => Err(self
                .raised
                .into_inner()
                .expect("not poisoned")
                .unwrap_or_else(|| PyKeyboardInterrupt::new_err("interrupted"))),
            Err(e) => Err(core_err(e)),
        }
    }
}

/// Download progress to a Python callback `progress(file, done, total)` (`total` None when
/// unknown; `done == total` once verified). Exceptions the callback raises are reported as
/// unraisable (a download is not stopped by its progress bar), but KeyboardInterrupt and other
/// non-`Exception`s stop it and are re-raised.
struct HubProgress {
    callback: Option<Py<PyAny>>,
    file: String,
    total: Option<u64>,
    /// A signal's exception (Ctrl-C), which stops the download and is re-raised.
    raised: Option<PyErr>,
}

impl HubProgress {
    fn tell(&mut self, done: u64) {
        let Some(cb) = &self.callback else { return };
        Python::attach(|py| {
            if let Err(e) = cb.call1(py, (self.file.as_str(), done, self.total)) {
                // Ctrl-C lands in whatever Python code runs, often the bar: it stops the
                // download (see `stop`); the bar's own failures do not.
                if e.is_instance_of::<pyo3::exceptions::PyException>(py) {
                    e.write_unraisable(py, None);
                } else {
                    self.raised.get_or_insert(e);
                }
            }
        });
    }
}

impl Progress for HubProgress {
    fn start(&mut self, file: &str, done: u64, total: Option<u64>) {
        self.file = file.to_string();
        self.total = total;
        self.tell(done);
    }

    fn advance(&mut self, done: u64) {
        self.tell(done);
    }

    fn finish(&mut self) {
        if let Some(total) = self.total {
            self.tell(total);
        }
    }

    fn stop(&mut self) -> bool {
        if self.raised.is_none() {
            self.raised = Python::attach(|py| py.check_signals()).err();
        }
        self.raised.is_some()
    }
}

/// A model name to a folder: an existing folder as it is, else a hub repo id fetched into the
/// huggingface_hub cache (`cache_folder`, else `HF_HUB_CACHE` / `HF_HOME`; `HF_ENDPOINT`,
/// `HF_TOKEN` (or `token`), `HF_HUB_OFFLINE` apply, as for the CLI), verified and resumable. The
/// GIL is released while downloading; Ctrl-C stops it (what arrived is kept for a resume).
#[pyfunction]
#[pyo3(signature = (model, revision = None, cache_folder = None, token = None, progress = None))]
fn resolve(
    py: Python<'_>,
    model: &str,
    revision: Option<&str>,
    cache_folder: Option<PathBuf>,
    token: Option<String>,
    progress: Option<Py<PyAny>>,
) -> PyResult<PathBuf> {
    let mut opts = HubOptions::from_env();
    if let Some(dir) = cache_folder {
        opts.cache_dir = dir;
    }
    if token.is_some() {
        opts.token = token;
    }
    let mut bars = HubProgress {
        callback: progress,
        file: String::new(),
        total: None,
        raised: None,
    };
    let resolved = py.detach(|| {
        hub::resolve_model(
            model,
            revision.unwrap_or("main"),
            &opts,
            &|dir| Ok(instructor::config::model_files(dir)?),
            &mut bars,
        )
    });
    match (resolved, bars.raised) {
        (Err(HubError::Interrupted), Some(raised)) => Err(raised),
        (resolved, _) => resolved.map_err(hub_err),
    }
}

/// The instructions INSTRUCTOR's evaluation embeds a task's texts with: `(query, corpus)` for
/// task `task` of mteb type `task_type` (`Retrieval`, `STS`, ...), from the shipped table of the
/// INSTRUCTOR repository (`table`: `hkunlp/instructor-{base,large,xl}`, or None for the per-type
/// defaults only).
#[pyfunction]
#[pyo3(signature = (task, task_type, table = None))]
fn task_instructions(
    task: &str,
    task_type: &str,
    table: Option<&str>,
) -> PyResult<(String, String)> {
    use instructor_eval::{tasks::TaskTable, TaskType};
    let mut tasks = TaskTable::builtin();
    if let Some(t) = table {
        let name = tasks.model_name(t).map_err(PyValueError::new_err)?;
        tasks.use_model(&name).map_err(PyValueError::new_err)?;
    }
    let kind = TaskType::parse(task_type)
        .ok_or_else(|| PyValueError::new_err(format!("unknown task type `{task_type}`")))?;
    let spec = tasks
        .spec(task, Some(kind))
        .map_err(PyValueError::new_err)?;
    Ok((spec.query_instruction, spec.corpus_instruction))
}

/// The shipped instruction table a model name implies (`hkunlp/instructor-large`, a folder
/// named `instructor-large`, or its hub-cache snapshot), or None.
#[pyfunction]
fn model_table(model: &str) -> Option<&'static str> {
    instructor_eval::tasks::infer_model_table(model)
}

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(resolve, m)?)?;
    m.add_function(wrap_pyfunction!(task_instructions, m)?)?;
    m.add_function(wrap_pyfunction!(model_table, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
