#!/usr/bin/env bash
# Debian's OpenMPI, and libclang (which rsmpi's bindings are generated with), when missing: what
# the `mpi` feature needs to build and `mpirun` to run (scripts/test-mpi.sh, check-cuda.sh).
set -euo pipefail
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
