#!/usr/bin/env bash
# Ours against PyTorch and ONNX Runtime on the same 256 pairs, in one run, with ratios.
# Needs a Python with torch, transformers, tokenizers, onnx, onnxruntime: PYTHON=/path/to/python.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-2}
work=$(mktemp -d)
"${PYTHON:-python3}" benches/peers.py --threads "$threads" --shape "${SHAPE:-base}" \
    --pairs "$work/pairs.jsonl" --json "$work/peers.json" --work-dir "$work"
cmp -s "$work/pairs.jsonl" benches/pairs.jsonl || echo "warning: peers.py pairs differ from benches/pairs.jsonl"
RAYON_NUM_THREADS=$threads PEERS_JSON="$work/peers.json" cargo bench --bench encode -- --warm-up-time 1 --measurement-time 5
