//! The core's int8 kernels compiled on their own: `src/model/int8.rs` needs nothing but std (and
//! rayon natively), so this crate's `cargo test --target wasm32-wasip1` runs that file's tests,
//! bit-exact integer sums on ragged shapes, with the wasm kernels (scripts/test-int8-wasm.sh builds
//! it once with simd128 and once with relaxed SIMD). Natively the same tests run in the core.

#[allow(dead_code)]
#[path = "../../../src/model/int8.rs"]
mod int8;
