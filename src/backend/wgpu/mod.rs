//! The encoder on a GPU through wgpu: Vulkan/Metal/DX12 natively, WebGPU in the browser.
//!
//! Everything between the token ids and the final embeddings runs in WGSL compute kernels
//! (`shaders/`): embedding gather, RMSNorm, one tiled matmul for every projection (Q/K/V fused,
//! O, feed-forward, Dense), attention with the relative-position bias over the packed batch,
//! instruction-masked mean pooling and L2 normalisation. Only the `n × dim` result is read back.
//!
//! Numerics: activations, the residual stream, norms, softmax and every accumulation are f32.
//! [`Storage::F16`] stores the *weights* as f16 (half the GPU memory and bandwidth) and widens
//! each value to f32 as it is loaded; T5 overflows f16 in its residual stream and norms, so those
//! never see f16.
//!
//! [`Gpu`] is a device with its compiled kernels; [`WgpuEncoder`] is a model's weights on it,
//! uploaded once, plus activation buffers reused across batches. Entry points are `async` because
//! WebGPU is; natively `*_blocking` variants wait with `pollster`.

mod kernels;
mod model;
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub mod testing;

pub use kernels::Mode;
pub use model::{WgpuEncoder, WgpuOptions};

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// How weight matrices are stored on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    #[default]
    F32,
    /// Two halves per `u32`, unpacked with `unpack2x16float`: needs no `shader-f16`.
    F16,
    /// Stored as [`F16`](Self::F16), and the matmuls multiply and add in f16 within each step of
    /// their tiling (see `shaders/weights_f16_math.wgsl` for what stays f32). Needs the adapter's
    /// `shader-f16` ([`Gpu::has_shader_f16`]).
    F16Arithmetic,
}

/// A GPU device with the encoder's kernels, compiled on first use.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    /// Why the device was lost, once it is (set by wgpu's callback).
    lost: Arc<Mutex<Option<String>>>,
    /// An error raised outside the error scopes (reported by the next call).
    uncaptured: Arc<Mutex<Option<String>>>,
    pipelines: Mutex<HashMap<String, wgpu::ComputePipeline>>,
    /// Bound where a kernel's optional input is absent (a Dense layer without bias, the L2 norm's
    /// weight): WebGPU has no null bindings.
    dummy: wgpu::Buffer,
}

impl Gpu {
    /// Opens the default adapter (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and wgpu's other
    /// environment variables apply natively) with every limit it offers: the storage-binding
    /// size decides how large weights are split.
    pub async fn new() -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::device("wgpu", format!("no GPU adapter: {e}")))?;
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("instructor"),
                required_features: adapter.features() & wgpu::Features::SHADER_F16,
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::device(&info.name, format!("cannot open the device: {e}")))?;
        let lost = Arc::new(Mutex::new(None));
        let slot = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            *slot.lock().unwrap() = Some(format!("{reason:?}: {msg}"));
        });
        // Errors outside an error scope (e.g. compiling a kernel while recording) would panic by
        // default; they are kept and returned by the next call instead.
        let uncaptured = Arc::new(Mutex::new(None));
        let slot = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            slot.lock().unwrap().get_or_insert(e.to_string());
        }));
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused binding"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Ok(Self {
            device,
            queue,
            info,
            lost,
            uncaptured,
            pipelines: Mutex::new(HashMap::new()),
            dummy,
        })
    }

    /// The adapter's name and backend, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`.
    pub fn name(&self) -> String {
        // Browsers hide the adapter's description unless asked to unmask it.
        let name = match self.info.name.as_str() {
            "" => "unnamed adapter",
            name => name,
        };
        let software = if self.is_software() { ", software" } else { "" };
        format!("{name} ({:?}{software})", self.info.backend)
    }

    /// Whether the device computes in f16 (WGSL's `enable f16`), for [`Storage::F16Arithmetic`].
    pub fn has_shader_f16(&self) -> bool {
        self.device.features().contains(wgpu::Features::SHADER_F16)
    }

    /// A CPU implementation (lavapipe, SwiftShader, WARP) rather than a GPU.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// Largest buffer one binding may hold.
    fn max_binding_bytes(&self) -> u64 {
        let l = self.device.limits();
        l.max_storage_buffer_binding_size.min(l.max_buffer_size)
    }

    /// Fails once the device is lost, or with an error raised outside the error scopes.
    fn check_alive(&self) -> Result<()> {
        if let Some(why) = &*self.lost.lock().unwrap() {
            return Err(Error::device(
                self.name(),
                format!("GPU device lost ({why}); load the model again"),
            ));
        }
        match self.uncaptured.lock().unwrap().take() {
            Some(e) => Err(Error::device(self.name(), e)),
            None => Ok(()),
        }
    }

    fn storage_buffer(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    fn buffer_with(&self, label: &str, data: &[u8]) -> wgpu::Buffer {
        let buffer = self.storage_buffer(label, data.len() as u64);
        self.queue.write_buffer(&buffer, 0, data);
        buffer
    }

    /// Runs `f` inside error scopes and returns the first error they caught, or `f`'s value.
    async fn scoped<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        self.check_alive()?;
        let scopes = [
            self.device.push_error_scope(wgpu::ErrorFilter::Validation),
            self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory),
            self.device.push_error_scope(wgpu::ErrorFilter::Internal),
        ];
        let value = f();
        let errors: Vec<_> = scopes.into_iter().rev().map(|s| s.pop()).collect();
        for e in errors {
            if let Some(e) = e.await {
                self.check_alive()?;
                return Err(Error::device(self.name(), e));
            }
        }
        self.check_alive()?;
        Ok(value)
    }

    /// Runs the recorded steps, then reads back `read` (a buffer and a length in f32s).
    async fn run(
        &self,
        pass: kernels::Pass,
        params: &mut Option<wgpu::Buffer>,
        staging: &mut Option<wgpu::Buffer>,
        read: (&wgpu::Buffer, usize),
    ) -> Result<Vec<f32>> {
        let bytes = read.1 as u64 * 4;
        if staging.as_ref().is_none_or(|s| s.size() < bytes) {
            *staging = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: bytes.max(16),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let staging = staging.as_ref().expect("allocated above");
        self.scoped(|| {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            pass.encode(self, params, &mut encoder);
            encoder.copy_buffer_to_buffer(read.0, 0, staging, 0, bytes);
            self.queue.submit([encoder.finish()]);
        })
        .await?;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let slice = staging.slice(..bytes);
        let (done, result) = oneshot();
        slice.map_async(wgpu::MapMode::Read, done);
        // Natively this runs the map callback; on the web it is a no-op and the browser does.
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        let mapped = result.await;
        self.check_alive()?;
        match mapped {
            Some(Ok(())) => {
                let out = slice
                    .get_mapped_range()
                    .map(|view| bytemuck::cast_slice::<u8, f32>(&view).to_vec());
                staging.unmap();
                out.map_err(|e| Error::device(self.name(), e))
            }
            _ => Err(Error::device(
                self.name(),
                "reading the results back failed",
            )),
        }
    }
}

type Slot<T> = Arc<Mutex<(Option<T>, Option<Waker>)>>;

/// A one-shot channel as a future: wgpu reports a finished buffer map through a callback, which
/// natively runs inside `poll` and on the web from the browser's event loop.
fn oneshot<T: Send + 'static>() -> (impl FnOnce(T) + Send + 'static, Receiver<T>) {
    let slot: Slot<T> = Arc::new(Mutex::new((None, None)));
    let tx = slot.clone();
    let send = move |v: T| {
        let waker = {
            let mut s = tx.lock().unwrap();
            s.0 = Some(v);
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    };
    (send, Receiver(slot))
}

/// Resolves to `None` if the sender was dropped unused (the device went away).
struct Receiver<T>(Slot<T>);

impl<T> Future for Receiver<T> {
    type Output = Option<T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = self.0.lock().unwrap();
        if let Some(v) = s.0.take() {
            return Poll::Ready(Some(v));
        }
        if Arc::strong_count(&self.0) == 1 {
            return Poll::Ready(None);
        }
        s.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}
