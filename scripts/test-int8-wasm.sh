#!/usr/bin/env bash
# The int8 kernels' tests (src/model/int8.rs, through crates/int8-check) on wasm32 under Node's
# WASI: once with simd128 (the fallback build's kernel) and once with relaxed SIMD (the default
# builds'), each against the scalar kernel on ragged shapes. Installs the wasm32-wasip1 target if
# it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  rustup target add wasm32-wasip1
fi
# Node 20 has relaxed SIMD behind a V8 flag (Chromium ships it on).
export CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings --experimental-wasm-relaxed-simd $PWD/scripts/wasi-run.mjs"
for features in +simd128 +simd128,+relaxed-simd; do
  echo "== int8 kernels on wasm32 ($features)"
  RUSTFLAGS="-C target-feature=$features" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/int8-wasm$features" \
    cargo test --locked --quiet -p instructor-int8-check --target wasm32-wasip1 -- --nocapture --test-threads=1
done
