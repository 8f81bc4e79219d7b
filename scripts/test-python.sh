#!/usr/bin/env bash
# The Python package (crates/python): builds the wheel with maturin, installs it into a fresh venv and
# runs pytest (tests/python) against the installed package, with the mock hub. Tools go into local
# folders under target/python; nothing is installed system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
py="${PYTHON:-python3}"
pip_quiet=(--quiet --disable-pip-version-check)

# Debian's own python3 keeps venv in a separate package.
if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3-venv
fi

tools="$target/python/tools"
if [ ! -x "$tools/bin/maturin" ]; then
  "$py" -m venv "$tools"
  "$tools/bin/pip" install "${pip_quiet[@]}" "maturin==1.16.0"
fi

# The dev profile, as `cargo test` builds: dependencies are optimised there (Cargo.toml), so this
# reuses the test build's artefacts instead of compiling candle again in release (the release wheel:
# `maturin build --release -m crates/python/Cargo.toml`).
rm -f "$target"/wheels/instructor_embed-*.whl
"$tools/bin/maturin" build --locked --profile dev -m crates/python/Cargo.toml --out "$target/wheels"
wheel=$(ls "$target"/wheels/instructor_embed-*.whl)
echo "wheel: $wheel ($(du -h "$wheel" | cut -f1))"
cargo build --locked --quiet -p instructor-mock-hub

# A fresh venv each run: the wheel's own dependencies must be enough to import it. The test tools
# come after (scikit-learn for the seed's example, langchain-core and huggingface_hub for the
# adapters; torch and mteb never: tests/python/test_mteb.py says how to run those).
venv="$target/python/test-venv"
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/pip" install "${pip_quiet[@]}" "$wheel"
"$venv/bin/python" -c "import instructor_embed; print('installed instructor_embed', instructor_embed.__version__)"
"$venv/bin/pip" install "${pip_quiet[@]}" "pytest>=8" "scikit-learn>=1.3" "langchain-core>=0.3" "huggingface_hub>=0.30"

# From tests/python, not the repository root, so `import instructor_embed` finds only the wheel.
cd tests/python
MOCK_HUB_BIN="$target/debug/mock_hub" "$venv/bin/python" -m pytest -p no:cacheprovider -q -rs
