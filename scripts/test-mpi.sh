#!/usr/bin/env bash
# The `mpi` feature (crates/cli/src/dist.rs): `instructor` under `mpirun -np 2` on this machine, the
# ranks on loopback. Installs Debian's OpenMPI (and libclang, which rsmpi's bindings are generated
# with) only when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

missing=()
command -v mpicc >/dev/null || missing+=(libopenmpi-dev)
command -v mpirun >/dev/null || missing+=(openmpi-bin)
ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 ||
  missing+=(libclang-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}"
fi

cargo clippy --locked -p instructor-cli --features mpi --all-targets -- -D warnings
# The unit tests (dealing, gathering) and the mpirun tests, with MPI compiled in.
cargo test --locked -p instructor-cli --features mpi --bin instructor --test mpi_cli 2>&1
