#!/usr/bin/env bash
# Builds the CUDA path (`--features cuda`: candle's CUDA backend) on a machine with no GPU and no
# CUDA toolkit, from NVIDIA's PyPI wheels. Not part of CI (scripts/test.sh): it downloads ~1.2 GB
# and compiles candle's CUDA kernels with nvcc (long on 2 cores; see the README's CUDA section).
#
#   scripts/check-cuda.sh            # cargo build -p instructor-cli --features cuda (and nccl), the tests
#   scripts/check-cuda.sh --bundle   # also .gpu/ for scripts/gpu-check.sh on a GPU machine
#   CUDA_VENV=/opt/venvs/cuda13 CUDA_COMPUTE_CAP=90 CARGO_TARGET_DIR=/work/target-cuda scripts/check-cuda.sh
#
# What it needs and why:
# - nvcc: only the CUDA 13 wheels (`nvidia-cuda-nvcc`) ship the nvcc driver (the cu12 wheels hold
#   just ptxas). They share one prefix, site-packages/nvidia/cu13 (bin/, include/, lib/), which is
#   CUDA_HOME here. The toolkit is pinned to 13.0, the CUDA of the H200 machines' driver (580):
#   candle embeds its kernels as PTX, and a driver rejects PTX from a newer nvcc than its own.
# - CUDA_COMPUTE_CAP: candle-kernels asks nvidia-smi otherwise (90: H100/H200; 80: A100).
# - Linking: candle turns on cudarc's `dynamic-linking`, so the binary links libcuda, libnvrtc,
#   libcublas(Lt), libcurand and libcudart by their unversioned names. The wheels hold only the
#   versioned files: links are made beside them. libcuda is the driver's, never in a toolkit
#   wheel: a stub exporting cudarc's driver symbols is linked instead (soname libcuda.so.1, so
#   the binary takes the real driver's library wherever it runs). Such a binary starts only
#   where the NVIDIA driver is installed.
# Installs only what is missing; a second run goes straight to cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${CUDA_VENV:-/opt/venvs/cuda13}
CUDA_VERSION=13.0
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}

if [ ! -x "$VENV/bin/pip" ]; then
    python3 -m venv "$VENV"
fi
PREFIX=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/nvidia/cu13
NCCL_VERSION=2.30
if ! "$PREFIX/bin/nvcc" --version 2>/dev/null | grep -q "release $CUDA_VERSION," \
    || [ ! -e "$PREFIX/lib/libcublas.so.13" ] || ! ls "$PREFIX"/lib/libnccl.so.2* >/dev/null 2>&1; then
    echo "== installing the CUDA $CUDA_VERSION wheels into $VENV"
    "$VENV/bin/pip" install -q \
        "nvidia-cuda-nvcc==$CUDA_VERSION.*" "nvidia-cuda-runtime==$CUDA_VERSION.*" \
        "nvidia-cuda-crt==$CUDA_VERSION.*" "nvidia-cuda-nvrtc==$CUDA_VERSION.*" \
        "nvidia-nvvm==$CUDA_VERSION.*" "nvidia-cuda-cccl==$CUDA_VERSION.*" nvidia-cublas nvidia-curand \
        "nvidia-nccl-cu13==$NCCL_VERSION.*" # NCCL: cudarc's bindings are NCCL 2.30's (feature nccl)
fi

# Unversioned names for the linker, beside the wheels' libraries.
# NCCL's wheel keeps its library elsewhere (nvidia/nccl or nvidia/cu13): put it beside the others.
nccl=$(find "$PREFIX/.." -name 'libnccl.so.2*' -not -path "$PREFIX/lib/*" | head -n1)
[ -n "$nccl" ] && ln -sf "$nccl" "$PREFIX/lib/$(basename "$nccl")"
for lib in cudart cublas cublasLt nvrtc curand nccl; do
    real=$(cd "$PREFIX/lib" && ls "lib$lib.so."* | sort | head -n1)
    ln -sf "$real" "$PREFIX/lib/lib$lib.so"
done

# The driver stub: every cu* function cudarc's driver bindings declare, as an empty function.
STUBS="$PREFIX/lib/stubs"
if [ ! -e "$STUBS/libcuda.so" ]; then
    mkdir -p "$STUBS"
    cargo fetch --locked >/dev/null
    version=$(grep -A1 '^name = "cudarc"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
    crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"cudarc-$version.crate" | head -n1)
    tar -xzOf "$crate" "cudarc-$version/src/driver/sys/mod.rs" | grep -oE '^ +fn cu[A-Za-z0-9_]+\(' \
        | sed -E 's/^ +fn (cu[A-Za-z0-9_]+)\(/void \1(void) {}/' | sort -u >"$STUBS/libcuda_stub.c"
    cc -shared -fPIC -o "$STUBS/libcuda.so" -Wl,-soname,libcuda.so.1 "$STUBS/libcuda_stub.c"
    ln -sf libcuda.so "$STUBS/libcuda.so.1"
fi

export CUDA_HOME="$PREFIX" PATH="$PREFIX/bin:$PATH"
# No debug info: with it, candle's CUDA build and the test binaries fill gigabytes of target/.
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-0}
export LIBRARY_PATH="$PREFIX/lib:$STUBS${LIBRARY_PATH:+:$LIBRARY_PATH}"
echo "== $(nvcc --version | tail -n1); CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP"

start=$SECONDS
cargo build --locked -p instructor-cli --features cuda
echo "== cargo build -p instructor-cli --features cuda: $((SECONDS - start)) s"
start=$SECONDS
# Training's collectives on NCCL (mpirun with one GPU a rank): needs OpenMPI too.
scripts/install-mpi.sh
cargo build --locked -p instructor-cli --features nccl
echo "== cargo build -p instructor-cli --features nccl: $((SECONDS - start)) s"
start=$SECONDS
cargo test --locked --workspace --features instructor/cuda --no-run
echo "== cargo test --workspace --features instructor/cuda --no-run: $((SECONDS - start)) s"
start=$SECONDS
# The Python wheel's Rust half with CUDA (a CUDA wheel: maturin build -m crates/python/Cargo.toml --features cuda).
cargo check --locked -p instructor-python --features cuda
echo "== cargo check -p instructor-python --features cuda: $((SECONDS - start)) s"

if [ "${1:-}" = "--bundle" ]; then
    # What scripts/gpu-check.sh runs on a GPU machine, which has no Rust toolchain and no
    # network: the CLI and the random-model writer, stripped and gzipped (the device tool carries
    # 64 MiB; the embedded PTX compresses ~4x). git ignores .gpu/.
    cargo build --locked -p instructor --features cuda --example random_model
    target=${CARGO_TARGET_DIR:-target}/debug
    rm -rf .gpu && mkdir -p .gpu
    for bin in instructor examples/random_model; do
        strip -o ".gpu/$(basename $bin)" "$target/$bin"
        gzip -9 ".gpu/$(basename $bin)"
    done
    # The NCCL build links libnccl and libmpi, which a GPU machine may lack: a binary of its own.
    cargo build --locked -p instructor-cli --features nccl
    strip -o .gpu/instructor-nccl "$target/instructor"
    gzip -9 .gpu/instructor-nccl
    pwd >.gpu/manifest_dir # random_model reads the fixture tokenizer from here
    ls -l .gpu
fi
