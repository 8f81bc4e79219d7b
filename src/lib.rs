//! INSTRUCTOR text embeddings (Su et al., 2023: "One Embedder, Any Task"), exactly as the
//! reference InstructorEmbedding package computes them: the instruction is attended to by the
//! T5 encoder but left out of the mean pooling, then the Dense layer and the normalisation.
//!
//! The path of one embedding, module by module:
//! [`input`] (pairs, tokens) → [`config`] (the model folder) → [`source`] (its bytes: a folder,
//! or memory in the browser) → `tokenize` (INSTRUCTOR's input rules) → [`model`] (the T5
//! encoder, read from the checkpoint) → [`backend`] (where it runs: the one [`Device`]; candle,
//! or wgpu with the `wgpu` feature) → `pooling` (the instruction left out of the mean) →
//! [`head`] (Dense / Normalize) → [`Instructor`] (load, the one batch loop, encode); [`quantize`]
//! writes a model back as int8. Nothing here knows about HTTP, result files, training or JS: the
//! hub, eval, train, the CLI and the bindings are crates of this workspace that use this one.
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

// In the order data flows through them (blank lines keep rustfmt from sorting them).
pub mod input;

pub mod config;

pub mod source;

mod tokenize;

pub mod model;

pub mod backend;

mod pooling;

pub mod head;

pub mod quantize;

mod instructor;

mod error;

pub use backend::candle::Batch;
pub use backend::Device;
pub use error::{Error, ErrorKind, Result};
pub use input::{Input, Tokens};
pub use instructor::{Embeddings, EncodeOptions, Instructor, LoadOptions, TokenEmbeddings};
pub use model::Dtype;
