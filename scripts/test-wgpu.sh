#!/usr/bin/env bash
# The wgpu backend's tests alone (tests/wgpu.rs, then the CLI's `--device wgpu`), as test.sh builds
# them (scripts/native-env.sh): on lavapipe where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/native-env.sh
cargo test --locked --workspace --features "$NATIVE_FEATURES" --test wgpu --test wgpu_cli "$@" 2>&1
