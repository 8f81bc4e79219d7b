//! INSTRUCTOR text embeddings (Su et al., 2023: "One Embedder, Any Task"), exactly as the
//! reference InstructorEmbedding package computes them: the instruction is attended to by the
//! T5 encoder but left out of the mean pooling, then the Dense layer and the normalisation.
//!
//! Data flows through the modules in this order:
//! [`config`] (model folder) → [`tokenize`] → [`model`] (T5 encoder) → [`pooling`] → [`head`]
//! (Dense / Normalize). [`Instructor`] ties them together; it is the one encode path, and the
//! forward pass [`train`] fine-tunes through. The encoder, pooling and head run on a [`backend`]:
//! candle (CPU/CUDA), or wgpu with the `wgpu` feature.
//!
//! ```no_run
//! use instructor::{EncodeOptions, Input, Instructor, LoadOptions};
//! let model = Instructor::load("path/to/instructor-base", &LoadOptions::default())?;
//! let out = model.encode(
//!     &[Input::new("Represent the Science title: ", "3D ActionSLAM: wearable person tracking")],
//!     &EncodeOptions::default(),
//! )?;
//! assert_eq!(out.dim, model.dim());
//! # Ok::<(), instructor::Error>(())
//! ```

pub mod backend;
pub mod config;
mod embed;
mod error;
pub mod eval;
pub mod head;
#[cfg(all(feature = "hub", not(target_arch = "wasm32")))]
pub mod hub;
pub mod model;
pub mod pooling;
pub mod source;
pub mod tokenize;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use backend::BackendKind;
pub use embed::{Embeddings, EncodeOptions, Input, Instructor, LoadOptions, TokenEmbeddings};
pub use error::{Error, Result};
pub use model::Dtype;
