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
echo "== native tests (cargo test) $(space)"
cargo test --locked 2>&1

echo "== wgpu backend (lavapipe when there is no GPU) $(space)"
scripts/test-wgpu.sh

echo "== browser tests (wasm package in headless Chromium) $(space)"
scripts/test-browser.sh

echo "== demo page (www/): unit tests and headless Chromium $(space)"
scripts/test-demo.sh
echo "== all tests passed $(space)"
