#!/usr/bin/env bash
# MPI scaling on this machine: `instructor embed` and `instructor train` (feature mpi) on 2 ranks
# × 1 thread against 1 process × 1 thread, at instructor-base's shape with random weights, on
# benches/pairs.jsonl (256 pairs). Prints wall times, the ratios, and what the training step's
# collectives cost (train_log.jsonl's sync_s). Needs OpenMPI (scripts/test-mpi.sh installs it).
#
#   benches/mpi.sh              # SHAPE=large for instructor-large's shape, STEPS=4 updates
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${SHAPE:-base}
steps=${STEPS:-4}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --locked -p instructor-cli --features mpi
cargo run --release --locked --example random_model -- "$shape" "$work/model" >/dev/null
bin=target/release/instructor
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl self,tcp
  --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo -x RAYON_NUM_THREADS=1)
export RAYON_NUM_THREADS=1
grep -m1 "model name" /proc/cpuinfo
echo "flags: $(grep -m1 -o -w -E 'avx512f|avx512_vnni|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"

# Wall time of a command in seconds.
seconds() {
  local t0
  t0=$(date +%s%N)
  "$@" >/dev/null
  python3 -c "import sys; print((int(sys.argv[2]) - int(sys.argv[1])) / 1e9)" "$t0" "$(date +%s%N)"
}

echo "== embed: $shape shape, 256 pairs, batch 32"
embed=(embed --quiet --model "$work/model" --input benches/pairs.jsonl --batch-size 32)
one=$(seconds "$bin" "${embed[@]}" --output "$work/one.npy")
two=$(seconds "${mpirun[@]}" -np 2 "$bin" "${embed[@]}" --output "$work/two.npy")
cmp "$work/one.npy" "$work/two.npy" && echo "outputs: the same bytes"
python3 -c "import sys; a,b=map(float,sys.argv[1:]); print(f'1 process × 1 thread {a:.1f} s, 2 ranks × 1 thread {b:.1f} s: {a/b:.2f}×')" "$one" "$two"

echo "== train: $shape shape, global batch 8 (1 × 8 against 2 × 4), $steps updates"
python3 - "$work/medi.jsonl" <<'EOF'
import json, sys
pairs = [json.loads(l) for l in open("benches/pairs.jsonl")]
with open(sys.argv[1], "w") as f:
    for i, p in enumerate(pairs):
        pos, neg = pairs[(i + 1) % len(pairs)], pairs[(i + 7) % len(pairs)]
        rec = {"query": [p["instruction"], p["text"]], "pos": [pos["instruction"], pos["text"]],
               "neg": [neg["instruction"], neg["text"]], "task_name": "bench"}
        f.write(json.dumps(rec) + "\n")
EOF
train=(train --quiet --model "$work/model" --data "$work/medi.jsonl" --max-steps "$steps" --dropout 0)
one=$(seconds "$bin" "${train[@]}" --batch-size 8 --output "$work/t1")
two=$(seconds "${mpirun[@]}" -np 2 "$bin" "${train[@]}" --batch-size 4 --output "$work/t2")
python3 - "$work" "$one" "$two" <<'EOF'
import json, sys
work, one, two = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
def log(d):
    return [json.loads(l) for l in open(f"{work}/{d}/train_log.jsonl")]
a, b = log("t1"), log("t2")
# The first update also pays for warming up; the rest are steady.
rate = lambda l: sum(e["tokens"] for e in l[1:]) / sum(e["tokens"] / e["tokens_per_s"] for e in l[1:])
step = lambda l: sum(e["tokens"] / e["tokens_per_s"] for e in l[1:]) / len(l[1:])
print(f"wall: 1 process {one:.1f} s, 2 ranks {two:.1f} s: {one/two:.2f}×")
print(f"steady updates: 1 process {rate(a):.0f} tok/s ({step(a):.2f} s/update), "
      f"2 ranks {rate(b):.0f} tok/s ({step(b):.2f} s/update): {rate(b)/rate(a):.2f}×")
sync = sum(e["sync_s"] for e in b[1:]) / len(b[1:])
print(f"collectives on rank 0 (all-gathers of the embeddings, all-reduce of the gradients, "
      f"waiting included): {sync:.3f} s/update, {100*sync/step(b):.1f}% of the update")
print("loss curves:", [round(e["loss"], 6) for e in a], [round(e["loss"], 6) for e in b])
EOF
