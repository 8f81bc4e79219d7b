#!/usr/bin/env bash
# The CUDA checks, as one run on an NVIDIA GPU machine (the device tool's H200: 16 cores, CUDA 13.0
# driver and libraries, Python with numpy, no Rust toolchain and no network). Prepared here, run
# there in one call of at most 10 minutes; the log and the training logs go to $OUT (default
# ./gpu-out; the device tool returns at most 8 files):
#
#   1. embed parity: `instructor embed --device cuda` on the fixture models and cases, f32 and
#      bf16, against the Python reference expectations (tests/fixtures/expected, the README's
#      bounds: 1e-4 f32 on a GPU, 1.5e-2 bf16), normalized embeddings;
#   2. training: `instructor train --device cuda --dtype bf16` for 300 steps on a random
#      instructor-base-shape model and MEDI records made from benches/pairs.jsonl; tokens/s;
#   3. the wgpu benchmark (`cargo bench -p instructor --features wgpu --bench wgpu`) when its binary was carried;
#   4. NCCL (feature nccl): `mpirun -np 2 instructor train --device cuda` (one GPU a rank, the
#      collectives on NCCL) against one process with the same global batch; needs 2 GPUs, an MPI
#      and the nccl binary (.gpu/instructor-nccl.gz, from `check-cuda.sh --bundle`);
#   5. prompt retrieval: `instructor eval --task-type prompt-retrieval --device cuda` on the
#      fixture tasks with the tiny GPT-J, f32 and bf16: the predictions of the Python reference
#      (tests/fixtures/prompt_retrieval/expected).
#
# Binaries: carried, gzipped, in .gpu/ (made by `scripts/check-cuda.sh --bundle` on a Linux x86-64
# machine with CUDA 13.0's nvcc: a driver refuses PTX from a newer nvcc than its own); without
# them, built there with cargo (`--features cuda`, CUDA_COMPUTE_CAP=90) if it has cargo:
#
#   run(command="scripts/gpu-check.sh", carry=[".gpu"], timeout_s=540)
#
# The wgpu benchmark's binary (`cargo bench --features wgpu --bench wgpu --no-run`, its path as
# cargo prints it) can be carried as .gpu/wgpu-bench.gz; it needs the Vulkan loader there (see
# the device tool's README on carrying libvulkan1).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
say() { echo "== $*"; }
failed=0

if [ -e .gpu/instructor.gz ]; then
    BIN=$(mktemp -d)
    for bin in instructor random_model; do
        gunzip -c ".gpu/$bin.gz" >"$BIN/$bin" && chmod +x "$BIN/$bin"
    done
    RANDOM_MODEL=$BIN/random_model
    # random_model reads the fixture tokenizer at the path it was built in.
    built_in=$(cat .gpu/manifest_dir)
    if [ ! -e "$built_in" ]; then
        mkdir -p "$(dirname "$built_in")" && ln -s "$PWD" "$built_in"
    fi
elif command -v cargo >/dev/null; then
    say "building with cargo (--features cuda)"
    export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
    cargo build --release --locked -p instructor-cli --features cuda || exit 1
    cargo build --release --locked -p instructor --features cuda --example random_model || exit 1
    BIN=target/release
    RANDOM_MODEL=$BIN/examples/random_model
else
    say "no .gpu/instructor.gz and no cargo: run scripts/check-cuda.sh --bundle first"
    exit 1
fi

# The CUDA libraries the binary links (cuBLAS, cuRAND, NVRTC, the runtime): the CUDA 13 wheels
# of the machine's Python, then the driver's folder.
LIBS=$(python3 - <<'EOF'
import glob, os, site
dirs = [p for s in site.getsitepackages() for p in glob.glob(os.path.join(s, "nvidia", "*", "lib"))]
print(":".join(sorted(set(dirs))))
EOF
)
export LD_LIBRARY_PATH="$LIBS:/usr/local/nvidia/lib64:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi -L
ldd "$BIN/instructor" | grep -E "cuda|cublas|curand|nvrtc" || true

say "1. embed parity on the fixtures (--device cuda)"
work=$(mktemp -d)
for model in tiny-relu-bin tiny-gelu-st tiny-relu-f16; do
    for dtype in f32 bf16; do
        "$BIN/instructor" embed --device cuda --dtype "$dtype" --normalize --quiet \
            --model "tests/fixtures/models/$model" --input tests/fixtures/cases.jsonl \
            --output "$work/$model-$dtype.npy" || failed=1
    done
done
python3 - "$work" <<'EOF' || failed=1
import json, sys
import numpy as np
out, bad = sys.argv[1], 0
for model in ["tiny-relu-bin", "tiny-gelu-st", "tiny-relu-f16"]:
    want = np.array([c["embedding_normalized"] for c in json.load(open(f"tests/fixtures/expected/{model}.json"))["cases"]])
    for dtype, bound in [("f32", 1e-4), ("bf16", 1.5e-2)]:
        try:
            got = np.load(f"{out}/{model}-{dtype}.npy")
        except OSError as e:
            print(f"{model} {dtype}: no output ({e})"); bad = 1; continue
        d = float(np.abs(got - want).max())
        print(f"{model:14} {dtype:5} max abs diff {d:.2e} (bound {bound:g}) {'ok' if d <= bound else 'FAIL'}")
        bad |= d > bound
sys.exit(bad)
EOF

say "2. training, instructor-base shape (random weights): bf16 300 steps, f32 100"
"$RANDOM_MODEL" base "$work/base" >/dev/null || failed=1
python3 - "$work/medi.jsonl" <<'EOF'
import json, sys
pairs = [json.loads(l) for l in open("benches/pairs.jsonl") if l.strip()]
with open(sys.argv[1], "w") as f:
    for i, p in enumerate(pairs):
        q, d, n = pairs[i], pairs[(i + 1) % len(pairs)], pairs[(i + 7) % len(pairs)]
        f.write(json.dumps({"query": [q["instruction"], q["text"]], "pos": [d["instruction"], d["text"]],
                            "neg": [n["instruction"], n["text"]], "task_name": f"t{i % 2}"}) + "\n")
EOF
for dtype in bf16 f32; do
    steps=300
    [ "$dtype" = f32 ] && steps=100
    start=$SECONDS
    timeout 240 "$BIN/instructor" train --device cuda --dtype "$dtype" --quiet --model "$work/base" \
        --data "$work/medi.jsonl" --output "$work/train-$dtype" --max-steps "$steps" --batch-size 32 \
        --save-steps 100000 || failed=1
    cp "$work/train-$dtype/train_log.jsonl" "$OUT/train_log-$dtype.jsonl" 2>/dev/null
    python3 - "$OUT/train_log-$dtype.jsonl" "$dtype" $((SECONDS - start)) <<'EOF' || failed=1
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
steady = log[10:] or log
tokens = sum(s["tokens"] for s in steady)
tps = sum(s["tokens_per_s"] for s in steady) / len(steady)
print(f"train {sys.argv[2]}: {len(log)} steps in {sys.argv[3]} s, loss {log[0]['loss']:.3f} -> {log[-1]['loss']:.3f}, "
      f"{tps:,.0f} tokens/s (mean of steps 11..{len(log)}, {tokens} tokens)")
EOF
done

if [ -e .gpu/wgpu-bench.gz ]; then
    say "3. wgpu benchmark (Vulkan)"
    gunzip -c .gpu/wgpu-bench.gz >"$BIN/wgpu-bench" && chmod +x "$BIN/wgpu-bench"
    SHAPE=base PAIRS=64 timeout 120 "$BIN/wgpu-bench" --bench || failed=1
else
    say "3. wgpu benchmark: skipped (no .gpu/wgpu-bench.gz carried)"
fi

gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
if [ -e .gpu/instructor-nccl.gz ] && [ "$gpus" -ge 2 ] && command -v mpirun >/dev/null; then
    say "4. NCCL: 2 ranks × 16 against 1 process × 32, f32, 20 steps"
    gunzip -c .gpu/instructor-nccl.gz >"$BIN/instructor-nccl" && chmod +x "$BIN/instructor-nccl"
    nccl=(train --device cuda --quiet --model "$work/base" --data "$work/medi.jsonl" --max-steps 20
        --dropout 0 --save-steps 100000)
    timeout 200 "$BIN/instructor-nccl" "${nccl[@]}" --batch-size 32 --output "$work/nccl-1" || failed=1
    timeout 200 mpirun --allow-run-as-root -np 2 "$BIN/instructor-nccl" "${nccl[@]}" --batch-size 16 \
        --output "$work/nccl-2" || failed=1
    python3 - "$work/nccl-1/train_log.jsonl" "$work/nccl-2/train_log.jsonl" <<'EOF' || failed=1
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
d = max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b))
sync = sum(e["sync_s"] for e in b[1:]) / (len(b) - 1)
print(f"NCCL: loss curves differ by at most {d:.2e} over {len(b)} steps; collectives {sync*1e3:.1f} ms/step")
sys.exit(0 if len(a) == len(b) == 20 and d < 1e-3 else 1)
EOF
else
    say "4. NCCL: skipped (needs .gpu/instructor-nccl.gz, 2 GPUs and mpirun; $gpus GPU(s) here)"
fi

say "5. prompt retrieval on CUDA (tiny GPT-J), f32 and bf16, against the Python reference"
for dtype in f32 bf16; do
    timeout 120 "$BIN/instructor" eval --task-type prompt-retrieval --device cuda --lm-dtype "$dtype" \
        --quiet --model tests/fixtures/models/tiny-relu-bin --lm tests/fixtures/models/tiny-gptj \
        --tasks sst5,rte --data tests/fixtures/prompt_retrieval/data --output "$work/pr-$dtype" || failed=1
    python3 - "$work/pr-$dtype" "$dtype" <<'EOF' || failed=1
import json, os, sys
out, dtype, bad = sys.argv[1], sys.argv[2], 0
for task in ["sst5", "rte"]:
    want_dir, got_dir = f"tests/fixtures/prompt_retrieval/expected/{task}/results", f"{out}/{task}/results"
    load = lambda d: {f: json.load(open(os.path.join(d, f))) for f in os.listdir(d)}
    same = os.path.isdir(got_dir) and load(want_dir) == load(got_dir)
    print(f"prompt retrieval {task} {dtype}: predictions {'equal the reference' if same else 'DIFFER'}")
    bad |= not same
sys.exit(bad)
EOF
done

say "done: $([ $failed = 0 ] && echo all passed || echo FAILURES above)"
exit $failed
