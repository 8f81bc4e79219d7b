#!/usr/bin/env bash
# The `mpi` feature's tests alone (crates/cli/src/dist.rs's unit tests, then `instructor` under
# `mpirun -np 2`, the ranks on loopback), as test.sh builds them (scripts/native-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/native-env.sh
cargo test --locked --workspace --features "$NATIVE_FEATURES" --bin instructor --test mpi_cli 2>&1
