#!/usr/bin/env bash
# Prompt retrieval's language model on the CPU, ours against transformers in the same run (issue 15):
# benches/lm.py (torch peer; writes the random-weight folder), then crates/eval/benches/lm.rs on it.
# Needs a Python with torch and transformers: PYTHON=/opt/venvs/ref/bin/python benches/lm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
THREADS="${THREADS:-2}"
DIR="${LM_BENCH_DIR:-$(mktemp -d)}"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; threads $THREADS"
cargo bench -p instructor-eval --bench lm --no-run -q 2>/dev/null
peer=$("$PYTHON" benches/lm.py --out "$DIR" --threads "$THREADS")
ours=$(RAYON_NUM_THREADS="$THREADS" LM_BENCH_DIR="$DIR" cargo bench -q -p instructor-eval --bench lm)
echo "$peer"; echo "$ours"
val() { echo "$1" | sed -n "s/.*$2=\([0-9.]*\).*/\1/p"; }
awk -v a="$(val "$ours" forward_tokens_per_s)" -v b="$(val "$peer" forward_tokens_per_s)" \
  -v c="$(val "$peer" score_s)" -v d="$(val "$ours" score_s)" \
  'BEGIN { printf "ratio forward tokens/s ours/torch = %.2f; ratio score time torch(MetaICL, padded to 1024)/ours = %.2f\n", a / b, c / d }'
