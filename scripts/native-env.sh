# Sourced by test.sh, test-wgpu.sh and test-mpi.sh: what the native tests need, installed only
# when missing, and the one feature set every native lint, doc and test build uses, so that each
# crate is compiled once: the wgpu backend (its tests run on Mesa's lavapipe, a CPU Vulkan driver,
# where there is no GPU) and MPI (the `mpirun -np 2` tests).
scripts/install-mpi.sh
if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
    echo "== installing mesa-vulkan-drivers (lavapipe)"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq mesa-vulkan-drivers
fi
export NATIVE_FEATURES=instructor-cli/wgpu,instructor-cli/mpi
# Vulkan only (lavapipe, or a real GPU's driver); the loader wants a runtime dir even headless.
# INSTRUCTOR_REQUIRE_GPU=1 makes a missing adapter a failure rather than a skip.
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export INSTRUCTOR_REQUIRE_GPU="${INSTRUCTOR_REQUIRE_GPU:-1}"
