#!/usr/bin/env bash
# Builds the npm package (pkg/) and serves the demo page (www/) with it.
#
#   scripts/demo.sh [--port 8080] [--host 127.0.0.1]     the page, models from huggingface.co
#   scripts/demo.sh --mirror [...]                       also the mock hub over the fixture models,
#                                                        and the page's address pointed at it
set -euo pipefail
cd "$(dirname "$0")/.."

mirror=0
args=()
for a in "$@"; do
  if [ "$a" = --mirror ]; then mirror=1; else args+=("$a"); fi
done

scripts/build-wasm.sh

if [ "$mirror" = 1 ]; then
  cargo build --quiet -p instructor-mock-hub
  hub_log=$(mktemp)
  "${CARGO_TARGET_DIR:-$PWD/target}/debug/mock_hub" --root tests/fixtures/models --port 0 >"$hub_log" &
  hub_pid=$!
  trap 'kill "$hub_pid" 2>/dev/null; rm -f "$hub_log"' EXIT
  until hub=$(grep -o 'http://[^ ]*' "$hub_log"); do kill -0 "$hub_pid" || exit 1; sleep 0.1; done
  echo "mock hub (fixture models) at $hub: open the page below with ?hub=$hub"
fi
node www/serve.mjs "${args[@]}"
