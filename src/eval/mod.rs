//! Native evaluation on MTEB task types with the metrics of mteb 2.x (and, where the INSTRUCTOR
//! paper's mteb 1.0 fork differs, its variant: [`Protocol::Paper`]).
//!
//! A leaf over the core: it embeds through [`crate::Instructor`] and nothing else.

pub mod metrics;
