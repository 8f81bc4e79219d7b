#!/usr/bin/env bash
# Builds the npm package `instructor-embed` into pkg/, in three variants:
#   pkg/wasm/          single-threaded, the default, with the WebGPU backend and relaxed SIMD (the
#                      int8 kernel's `i32x4.relaxed_dot_i8x16_i7x16_add`): cargo -p instructor-web
#                      (wasm32, +simd128,+relaxed-simd, in $CARGO_TARGET_DIR/wasm-relaxed) →
#                      wasm-bindgen --target web
#   pkg/wasm-simd128/  the same without relaxed SIMD (+simd128 from .cargo/config.toml), for
#                      browsers that cannot instantiate a module containing it (Safari): the
#                      package tests which the browser takes before fetching either
#   pkg/wasm-threads/  threaded, used when the page is cross-origin isolated and the browser has
#                      relaxed SIMD: nightly cargo with std rebuilt for +atomics (-Z build-std), in
#                      its own target folder ($CARGO_TARGET_DIR/wasm-threads); CPU only.
#                      WASM_THREADS=0 skips it.
# then, for each, optional wasm-opt (WASM_OPT=1; the npm `binaryen` package, never Debian's
# binaryen 108, whose output Chromium rejects) and a check that the matmul kernels use v128
# instructions.
# Installs what is missing: the wasm32 target, wasm-bindgen-cli at exactly the lockfile's
# wasm-bindgen version (a cold `cargo install` takes ~7 minutes), the nightly toolchain's rust-src
# (and the toolchain itself, $WASM_NIGHTLY, default `nightly`), the npm dev tools.
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

# wasm-bindgen → pkg/$1, then the optional wasm-opt and the SIMD check. $2: the cargo output, $3:
# --relaxed or --no-relaxed (see check-simd.mjs).
generate() {
  local out=pkg/$1
  rm -rf "$out"
  wasm-bindgen --target web --out-dir "$out" --out-name instructor "$2"
  if [ "${WASM_OPT:-0}" = 1 ]; then
    tests/browser/node_modules/.bin/wasm-opt -O3 --enable-simd --enable-bulk-memory \
      --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals --enable-threads \
      --enable-relaxed-simd \
      "$out/instructor_bg.wasm" -o "$out/instructor_bg.opt.wasm"
    mv "$out/instructor_bg.opt.wasm" "$out/instructor_bg.wasm"
  fi
  node scripts/check-simd.mjs "$out/instructor_bg.wasm" "$3"
  ls -l "$out/instructor_bg.wasm"
}

# The bindings are the crate crates/web (the workspace's only cdylib). RUSTFLAGS replace
# .cargo/config.toml's, so +simd128 is repeated; the relaxed build has a target folder of its own so
# that the two builds do not rebuild each other's dependencies.
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" CARGO_TARGET_DIR="$TARGET_DIR/wasm-relaxed" \
  cargo build -p instructor-web --target wasm32-unknown-unknown --release --features wgpu
generate wasm "$TARGET_DIR/wasm-relaxed/wasm32-unknown-unknown/release/instructor_web.wasm" --relaxed
cargo build -p instructor-web --target wasm32-unknown-unknown --release --features wgpu
generate wasm-simd128 "$TARGET_DIR/wasm32-unknown-unknown/release/instructor_web.wasm" --no-relaxed

if [ "${WASM_THREADS:-1}" != 0 ]; then
  NIGHTLY=${WASM_NIGHTLY:-nightly}
  if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src
  elif ! rustup component list --toolchain "$NIGHTLY" --installed | grep -q '^rust-src'; then
    rustup component add rust-src --toolchain "$NIGHTLY"
  fi
  # atomics + bulk-memory: std's threads (wasm-bindgen-rayon's README). Since rust-lang/rust#147225
  # (nightly 2025-10) the shared, imported memory and the exports wasm-bindgen's thread support
  # needs are linker arguments of their own, and since #156174 (2026-05) `__heap_base` must be
  # exported too. The memory may grow to wasm32's whole 4 GiB (instructor-large needs ~1.7 GiB).
  # These RUSTFLAGS replace .cargo/config.toml's, so +simd128 is repeated.
  link=""
  for a in --shared-memory --max-memory=4294967296 --import-memory --export=__wasm_init_tls \
    --export=__tls_size --export=__tls_align --export=__tls_base --export=__heap_base; do
    link="$link -C link-arg=$a"
  done
  RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128,+relaxed-simd$link" \
    CARGO_TARGET_DIR="$TARGET_DIR/wasm-threads" \
    cargo "+$NIGHTLY" build -Z build-std=panic_abort,std --target wasm32-unknown-unknown --release \
    -p instructor-web
  generate wasm-threads "$TARGET_DIR/wasm-threads/wasm32-unknown-unknown/release/instructor_web.wasm" --relaxed
  # Without a shared memory wasm-bindgen emits no thread support at all (initThreadPool then fails
  # in the browser with a DataCloneError); without the 4 GiB maximum large models run out.
  memory=$(tests/browser/node_modules/.bin/wasm-dis pkg/wasm-threads/instructor_bg.wasm |
    grep -m1 -o '(import "[^"]*" "memory" (memory [^)]*)' || true)
  case "$memory" in
    *' 65536 shared)') ;;
    *) echo "build-wasm: pkg/wasm-threads wants a shared memory of at most 65536 pages, has: ${memory:-none}" >&2; exit 1 ;;
  esac
  # wasm-bindgen puts wasm-bindgen-rayon's worker script under snippets/<crate>-<hash>/: give it a
  # fixed name, so that package.json (and the demo's service worker, which precaches what it
  # lists) can name it.
  helper=$(cd pkg/wasm-threads && find snippets -name 'workerHelpers.no-bundler.js')
  [ "$(echo "$helper" | wc -l)" = 1 ] && [ -n "$helper" ] || { echo "build-wasm: expected one workerHelpers.no-bundler.js, found: $helper" >&2; exit 1; }
  mv "pkg/wasm-threads/$helper" pkg/wasm-threads/workerHelpers.js
  rm -r pkg/wasm-threads/snippets
  sed -i "s#'./$helper'#'./workerHelpers.js'#" pkg/wasm-threads/instructor.js
  grep -q "from './workerHelpers.js'" pkg/wasm-threads/instructor.js || { echo "build-wasm: could not point instructor.js at workerHelpers.js" >&2; exit 1; }
fi
