#!/usr/bin/env bash
# Builds the npm package (pkg/) and runs its tests in real headless Chromium against the mock hub.
# Installs what is missing: Debian's chromium (apt, only if /usr/bin/chromium is absent), the npm
# test deps (playwright-core, binaryen, vite), wasm-bindgen-cli (only if absent; see build-wasm.sh).
#
#   scripts/test-browser.sh            build + tests
#   scripts/test-browser.sh --bench    build + tests + throughput benchmark (wasm 1 thread, wasm N
#                                      threads, native)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "test-browser: installing Debian's chromium"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi
fi
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/binaryen ] ||
  [ ! -d tests/browser/node_modules/vite ]; then
  (cd tests/browser && npm install --no-audit --no-fund)
fi

scripts/build-wasm.sh

# The mock hub (crates/mock-hub; no candle to compile), built once here rather than by each test ($MOCK_HUB_BIN
# overrides it).
if [ -z "${MOCK_HUB_BIN:-}" ]; then
  cargo build --quiet -p instructor-mock-hub
  export MOCK_HUB_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/mock_hub"
fi

node --test --test-concurrency=1 tests/browser/embed.test.mjs tests/browser/webgpu.test.mjs tests/browser/threads.test.mjs \
  tests/browser/int8.test.mjs tests/browser/vite.test.mjs

if [ "${1:-}" = --bench ]; then
  node tests/browser/bench.mjs
fi
