#!/usr/bin/env bash
# Builds the npm package `instructor-embed` into pkg/ (the generated part goes to pkg/wasm/):
#   cargo (wasm32-unknown-unknown, +simd128 from .cargo/config.toml) → wasm-bindgen --target web
#   → optional wasm-opt (WASM_OPT=1; the npm `binaryen` package, never Debian's binaryen 108, whose
#   output Chromium rejects) → a check that the matmul kernels use v128 instructions.
# Installs what is missing: the wasm32 target, wasm-bindgen-cli at exactly the lockfile's
# wasm-bindgen version (a cold `cargo install` takes ~7 minutes), the npm dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  echo "build-wasm: installing wasm-bindgen-cli $WB_VERSION (cold: ~7 min)"
  cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
if [ ! -d tests/browser/node_modules/binaryen ] || [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm install --no-audit --no-fund)
fi

cargo build --target wasm32-unknown-unknown --release --lib --no-default-features --features wgpu
rm -rf pkg/wasm
wasm-bindgen --target web --out-dir pkg/wasm --out-name instructor \
  "$TARGET_DIR/wasm32-unknown-unknown/release/instructor.wasm"
if [ "${WASM_OPT:-0}" = 1 ]; then
  tests/browser/node_modules/.bin/wasm-opt -O3 --enable-simd --enable-bulk-memory \
    --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
    pkg/wasm/instructor_bg.wasm -o pkg/wasm/instructor_bg.opt.wasm
  mv pkg/wasm/instructor_bg.opt.wasm pkg/wasm/instructor_bg.wasm
fi
node scripts/check-simd.mjs pkg/wasm/instructor_bg.wasm
ls -l pkg/wasm/instructor_bg.wasm
