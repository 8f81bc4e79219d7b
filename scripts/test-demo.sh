#!/usr/bin/env bash
# Tests of the demo page (www/): unit tests of its pure modules (k-means, PCA, ranking, file
# parsing, progress, the static server, the service worker's file list), then the page in headless
# Chromium against the mock hub (tests/browser/demo.test.mjs). Installs the npm test deps only
# when missing; builds the npm package (scripts/build-wasm.sh) and the mock hub first.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== demo page: unit tests"
node --test tests/www/*.test.mjs

if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm install --no-audit --no-fund)
fi
scripts/build-wasm.sh
if [ -z "${MOCK_HUB_BIN:-}" ]; then
  cargo build --quiet -p instructor-mock-hub
  export MOCK_HUB_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/mock_hub"
fi

echo "== demo page: headless Chromium"
node --test --test-concurrency=1 tests/browser/demo.test.mjs
