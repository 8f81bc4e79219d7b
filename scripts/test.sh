#!/usr/bin/env bash
# Every test of the project, on a fresh Debian machine with Rust: the README's test command.
# Installs only what is missing, so a second run goes straight to the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== native tests (cargo test)"
cargo test --locked 2>&1

echo "== wgpu backend (lavapipe when there is no GPU)"
scripts/test-wgpu.sh

echo "== browser tests (wasm package in headless Chromium)"
scripts/test-browser.sh

echo "== demo page (www/): unit tests and headless Chromium"
scripts/test-demo.sh
