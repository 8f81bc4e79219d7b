#!/usr/bin/env bash
# The wgpu backend's tests (tests/wgpu.rs). On a machine without a GPU they run on Mesa's lavapipe
# (a CPU Vulkan driver): installs Debian's `mesa-vulkan-drivers` only when its ICD is missing.
# INSTRUCTOR_REQUIRE_GPU=1 makes a missing adapter a failure rather than a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
    echo "== installing mesa-vulkan-drivers (lavapipe)"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq mesa-vulkan-drivers
fi

echo "== wgpu backend tests"
# Vulkan only (lavapipe, or a real GPU's driver); the loader wants a runtime dir even headless.
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export INSTRUCTOR_REQUIRE_GPU="${INSTRUCTOR_REQUIRE_GPU:-1}"
# The backend's own tests, then the CLI's `--device wgpu`.
cargo test --locked -p instructor --features wgpu --test wgpu "$@" 2>&1
cargo test --locked -p instructor-cli --features wgpu --test wgpu_cli "$@" 2>&1
