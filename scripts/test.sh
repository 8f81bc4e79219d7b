#!/usr/bin/env bash
# Every test of the project, on a fresh Debian machine with Rust: the README's test command.
# Installs only what is missing, so a second run goes straight to the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# A one-off build gains nothing from incremental state, which would take ~0.7 GB of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# Disk is the scarce thing on CI (native, wgpu and two wasm builds): say what is left before each part.
space() { df -h "${CARGO_TARGET_DIR:-target}" 2>/dev/null | awk 'NR == 2 { print "(disk: " $4 " free)" }' || true; }

mkdir -p "${CARGO_TARGET_DIR:-target}"
echo "== OpenMPI and lavapipe, when missing $(space)"
source scripts/native-env.sh
echo "== lints: rustfmt, clippy (native with wgpu and mpi, and wasm32), rustdoc $(space)"
cargo fmt --all --check
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
# Natively every crate and target, wgpu and MPI included (CUDA needs a toolkit: check-cuda.sh).
cargo clippy --locked --workspace --all-targets --features "$NATIVE_FEATURES" -- -D warnings
# The core without features (what a CPU-only user builds): code used only by wgpu shows up here.
cargo clippy --locked -p instructor --lib -- -D warnings
# The browser build: the core and the bindings as the single-threaded package builds them.
cargo clippy --locked -p instructor -p instructor-web --target wasm32-unknown-unknown \
  --features instructor-web/wgpu -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps --features "$NATIVE_FEATURES"

echo "== native tests: cargo test --workspace, the wgpu backend (on lavapipe without a GPU) and \
mpirun -np 2 included $(space)"
cargo test --locked --workspace --features "$NATIVE_FEATURES" 2>&1
scripts/test-int8-wasm.sh

echo "== Python package (the wheel, installed into a fresh venv; pytest) $(space)"
scripts/test-python.sh

echo "== browser tests (wasm package in headless Chromium) $(space)"
scripts/test-browser.sh

echo "== demo page (www/): unit tests and headless Chromium $(space)"
scripts/test-demo.sh
echo "== all tests passed $(space)"
