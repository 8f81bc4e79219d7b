#!/usr/bin/env bash
# Ours (f32 and int8) against PyTorch and ONNX Runtime (f32 and int8) on the same 256 pairs, in one
# run, with ratios; the CPU's name and flags first. THREADS=1|2 (default 2); PEERS narrows peers.py's list.
# Needs a Python with torch, transformers, tokenizers, onnx, onnxruntime: PYTHON=/path/to/python.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-2}
work=$(mktemp -d)
lscpu | grep -m1 'Model name'
grep -m1 -o -w -E 'avx2|avx512f|avx512_vnni|avx_vnni' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
"${PYTHON:-python3}" benches/peers.py --threads "$threads" --shape "${SHAPE:-base}" --peers "${PEERS:-torch-f32,torch-bf16,ort-f32,ort-int8}" \
    --pairs "$work/pairs.jsonl" --json "$work/peers.json" --work-dir "$work"
cmp -s "$work/pairs.jsonl" benches/pairs.jsonl || echo "warning: peers.py pairs differ from benches/pairs.jsonl"
# Ours in f32 and int8, each against every peer of the same run.
for dtype in f32 int8; do
  DTYPE=$dtype RAYON_NUM_THREADS=$threads PEERS_JSON="$work/peers.json" cargo bench --bench encode -- --warm-up-time 1 --measurement-time 5
done
