//! Reading a weights file (`model.safetensors` or torch's `pytorch_model.bin`) into a
//! `VarBuilder`, converting to the compute dtype as tensors are requested.

use crate::error::{candle_message, Error, Result};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use std::path::Path;

/// Opens `path` by its extension. Truncated or malformed files fail here; a missing tensor or one
/// of the wrong shape fails when the model asks for it (the caller names the file then).
pub fn load_weights(path: &Path, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
    let vb = match path.extension().and_then(|e| e.to_str()) {
        // SAFETY: the file is memory-mapped read-only; like every mmap it must not be truncated
        // by another process while mapped, which the hub cache never does (blobs are immutable).
        Some("safetensors") => unsafe {
            VarBuilder::from_mmaped_safetensors(&[path], dtype, device)
        },
        Some("bin") | Some("pt") | Some("pth") => VarBuilder::from_pth(path, dtype, device),
        _ => {
            return Err(Error::weights(
                path,
                "unknown weights format (expected .safetensors or .bin)",
            ))
        }
    };
    vb.map_err(|e| Error::weights(path, format!("cannot read weights: {}", candle_message(&e))))
}
