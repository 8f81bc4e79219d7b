#!/usr/bin/env python3
"""Peer throughput for INSTRUCTOR-shaped encoders: PyTorch f32, PyTorch bf16 autocast, ONNX Runtime f32
and int8 (`quantize_dynamic`, QInt8 weights), and ours from Python (`--peers instructor-embed`: the installed `instructor_embed` wheel).

Not for CI (needs torch, transformers, tokenizers, onnx, onnxruntime).  Example:

    /opt/venvs/ref/bin/python benches/peers.py --threads 2 --pairs /tmp/peers/pairs.jsonl --json /tmp/peers/peers.json

What it measures: a random-weight T5 v1.0 encoder at instructor-base shape (d_model 768, d_kv 64,
12 heads, d_ff 3072, 12 layers, relu, vocab 32128; `--shape large`: d_model 1024, 16 heads, d_ff 4096,
24 layers) + INSTRUCTOR pooling (mean over the text tokens, the instruction's first n tokens masked
out) + Dense (768->768 / 1024->768, no bias), on a fixed, seeded set of 256 mixed-length
{"instruction","text"} pairs written to --pairs (JSON lines) so the Rust benchmark can embed the
same inputs.  Tokens are counted with --tokenizer (default: the fixture tokenizer
tests/fixtures/models/tiny-relu-bin/tokenizer.json, ids taken modulo nothing: they all lie below
32128); the model input is (instruction + text.strip()).strip(), truncated to 512 tokens incl. </s>.

Batching as InstructorEmbedding.encode does it: pairs sorted by decreasing character length of the
text (np.argsort of -len(text), stable), batches of --batch-size (32), each padded on the right to its
longest member.  Timed: the encoder forward with attention mask + pooling + Dense for all batches,
after one warm-up on the shortest batch per peer (whose output is compared with PyTorch f32:
`max_abs_diff_vs_torch_f32` in the JSON); tokenisation is done beforehand and not timed (it is timed
separately and reported as `tokenize_tokens_per_s`).  tokens_per_s = real (non-padding) tokens of
all pairs / seconds.  With --repeat N the best of N passes is reported.

`instructor-embed` (the Python package, `pip install target/wheels-release/instructor_embed-*.whl` into
this Python) is timed as a user calls it: `INSTRUCTOR(folder).encode(pairs, batch_size=32)`, tokenisation
included, on the same random weights saved as a sentence-transformers folder.  Its ratio is printed against
PyTorch f32 both ways: forward only (as timed above) and forward + tokenisation (InstructorEmbedding's
`encode` does both), e.g.

    python benches/peers.py --threads 2 --peers torch-f32,instructor-embed --repeat 2

Output: one line `peer=<name> tokens_per_s=<x>` per peer on stdout, and --json PATH with the details.
"""

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_TOKENIZER = os.path.join(ROOT, "tests", "fixtures", "models", "tiny-relu-bin", "tokenizer.json")

SHAPES = {
    "base": dict(d_model=768, d_kv=64, num_heads=12, d_ff=3072, num_layers=12, dense_out=768),
    "large": dict(d_model=1024, d_kv=64, num_heads=16, d_ff=4096, num_layers=24, dense_out=768),
}

INSTRUCTIONS = [
    "Represent the Science title: ",
    "Represent the Wikipedia document for retrieval: ",
    "Represent the Wikipedia question for retrieving supporting documents: ",
    "Represent the Medicine sentence for clustering: ",
    "Represent the Financial statement: ",
    "Represent the Amazon review for classifying the sentiment: ",
    "Represent the News title for clustering: ",
    "Represent the Biology paragraph for retrieval: ",
    "Represent the sentence: ",
    "Represent the question for retrieving duplicate questions: ",
]

WORDS = (
    "the of and to in is was for on that with as by at from his her an were are which this be or has had not "
    "first new one their its after also two been other who may all more time year city film team world state "
    "university school war music season government national history river village district company family "
    "population game series album church system people early during would most where known later between "
    "energy protein cell patient treatment market price bank interest rate growth climate water temperature "
    "model network learning data training language translation image sound vector sentence embedding "
    "retrieval question answer document title review product delivery battery screen quality service "
    "photosynthesis glucose antibiotic fever infection vaccine species forest frog bird ocean mountain "
    "Paris France Germany London Tokyo Brazil Europe America Africa Asia Monday January October"
).split()


def make_pairs(n_pairs, seed):
    """Deterministic mixed-length pairs: mostly short/medium texts, a tail of long ones (some > 512 tokens)."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n_pairs):
        u = rng.random()
        if u < 0.45:
            n_words = rng.randint(3, 12)
        elif u < 0.85:
            n_words = rng.randint(12, 38)
        elif u < 0.97:
            n_words = rng.randint(38, 100)
        else:
            n_words = rng.randint(130, 220)
        words = [rng.choice(WORDS) for _ in range(n_words)]
        # sentences with capitals and full stops
        text, k = [], 0
        while k < len(words):
            m = rng.randint(5, 14)
            s = words[k:k + m]
            s[0] = s[0].capitalize()
            text.append(" ".join(s) + ".")
            k += m
        pairs.append({"instruction": INSTRUCTIONS[i % len(INSTRUCTIONS) if rng.random() < 0.5 else rng.randrange(len(INSTRUCTIONS))],
                      "text": " ".join(text)})
    return pairs


def tokenize_pairs(tk, pairs, max_len):
    tk.enable_truncation(max_len)
    inputs = [(p["instruction"] + p["text"].strip()).strip() for p in pairs]
    instrs = [p["instruction"].strip() for p in pairs]
    t0 = time.perf_counter()
    ids = [e.ids for e in tk.encode_batch(inputs)]
    ns = [len(e.ids) - 1 for e in tk.encode_batch(instrs)]
    t_tok = time.perf_counter() - t0
    ns = [0 if n <= 1 else n for n in ns]
    return ids, ns, t_tok


def make_batches(pairs, ids, ns, batch_size):
    import numpy as np

    order = np.argsort([-len(p["text"]) for p in pairs], kind="stable")
    batches = []
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        L = max(len(ids[i]) for i in idx)
        inp = np.zeros((len(idx), L), dtype=np.int64)
        att = np.zeros((len(idx), L), dtype=np.int64)
        pool = np.zeros((len(idx), L), dtype=np.float32)
        for r, i in enumerate(idx):
            inp[r, :len(ids[i])] = ids[i]
            att[r, :len(ids[i])] = 1
            pool[r, :len(ids[i])] = 1
            pool[r, :ns[i]] = 0
        batches.append((inp, att, pool))
    return batches


def build_model(shape, seed):
    import torch
    from transformers import T5Config, T5EncoderModel

    s = SHAPES[shape]
    cfg = T5Config(vocab_size=32128, d_model=s["d_model"], d_kv=s["d_kv"], d_ff=s["d_ff"], num_layers=s["num_layers"],
                   num_heads=s["num_heads"], relative_attention_num_buckets=32, relative_attention_max_distance=128,
                   feed_forward_proj="relu", layer_norm_epsilon=1e-6, dropout_rate=0.1)
    torch.manual_seed(seed)
    model = T5EncoderModel(cfg).eval()
    dense = torch.nn.Linear(s["d_model"], s["dense_out"], bias=False).eval()
    return model, dense


def run_torch(model, dense, batches, autocast, repeat):
    import torch

    def pass_once(bs):
        outs = []
        with torch.inference_mode():
            for inp, att, pool in bs:
                ids = torch.from_numpy(inp)
                mask = torch.from_numpy(att)
                pm = torch.from_numpy(pool)
                if autocast:
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
                else:
                    h = model(input_ids=ids, attention_mask=mask).last_hidden_state
                h = h.float()
                pooled = (h * pm[..., None]).sum(1) / torch.clamp(pm.sum(1, keepdim=True), min=1e-9)
                outs.append(dense(pooled).float().numpy())
        return outs

    check = pass_once(batches[-1:])[0]  # warm-up on the shortest batch; its output is kept for a check
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        pass_once(batches)
        best = min(best, time.perf_counter() - t0)
    return best, check


def export_folder(model, dense, tokenizer, folder):
    """The random model as a sentence-transformers folder (what the hub's INSTRUCTOR repos hold):
    encoder in safetensors, mean pooling, Dense without bias, Normalize."""
    import shutil
    import torch
    from safetensors.torch import save_file

    if os.path.exists(os.path.join(folder, "2_Dense", "model.safetensors")):
        return
    os.makedirs(os.path.join(folder, "1_Pooling"), exist_ok=True)
    os.makedirs(os.path.join(folder, "2_Dense"), exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    shutil.copy(tokenizer, os.path.join(folder, "tokenizer.json"))
    d_in, d_out = dense.in_features, dense.out_features
    files = {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
            {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": 512, "do_lower_case": False},
        "1_Pooling/config.json": {"word_embedding_dimension": d_in, "pooling_mode_mean_tokens": True},
        "2_Dense/config.json": {"in_features": d_in, "out_features": d_out, "bias": False,
                                "activation_function": "torch.nn.modules.linear.Identity"},
    }
    for name, value in files.items():
        with open(os.path.join(folder, name), "w") as f:
            json.dump(value, f)
    save_file({"linear.weight": dense.weight.detach().contiguous()},
              os.path.join(folder, "2_Dense", "model.safetensors"))


def run_ours(folder, pairs, batches_last, batch_size, repeat):
    """The Python package as a user calls it; returns (seconds, output rows of the shortest batch)."""
    import numpy as np
    from instructor_embed import INSTRUCTOR

    model = INSTRUCTOR(folder)
    inputs = [[p["instruction"], p["text"]] for p in pairs]
    order = np.argsort([-len(p["text"]) for p in pairs], kind="stable")
    last = [inputs[i] for i in order[-batches_last:]]
    # Unnormalised, as the torch peer's output (Normalize is undone by comparing directions).
    check = model.encode(last, batch_size=batch_size)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        model.encode(inputs, batch_size=batch_size)
        best = min(best, time.perf_counter() - t0)
    return best, check


def export_onnx(model, path):
    import warnings

    import torch

    warnings.filterwarnings("ignore", category=DeprecationWarning)

    class Enc(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.ones(2, 7, dtype=torch.long)
    mask = torch.ones(2, 7, dtype=torch.long)
    torch.onnx.export(Enc(model), (ids, mask), path, input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                    "last_hidden_state": {0: "batch", 1: "seq"}},
                      opset_version=17, dynamo=False)


def run_ort(path, dense, batches, threads, repeat):
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    w = dense.weight.detach().numpy().T.copy()

    def pass_once(bs):
        outs = []
        for inp, att, pool in bs:
            h = sess.run(None, {"input_ids": inp, "attention_mask": att})[0]
            pooled = (h * pool[..., None]).sum(1) / np.maximum(pool.sum(1, keepdims=True), 1e-9)
            outs.append(pooled @ w)
        return outs

    check = pass_once(batches[-1:])[0]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        pass_once(batches)
        best = min(best, time.perf_counter() - t0)
    return best, check, ort.__version__


def main():
    ap = argparse.ArgumentParser(description="peer throughput (see the module docstring)")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="base")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--n-pairs", type=int, default=256)
    ap.add_argument("--seed", type=int, default=20241)
    ap.add_argument("--max-seq-length", type=int, default=512)
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    ap.add_argument("--pairs", default=None, help="write the pairs here (JSON lines)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--peers", default="torch-f32,torch-bf16,ort-f32,ort-int8")
    ap.add_argument("--repeat", type=int, default=1, help="timed passes per peer; the best is reported")
    ap.add_argument("--work-dir", default=None, help="where the ONNX export goes (default: a temp dir)")
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))  # ours (candle's matmul pool)
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    from tokenizers import Tokenizer

    pairs = make_pairs(args.n_pairs, args.seed)
    if args.pairs:
        os.makedirs(os.path.dirname(os.path.abspath(args.pairs)), exist_ok=True)
        with open(args.pairs, "w", encoding="utf-8") as f:
            for p in pairs:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
    tk = Tokenizer.from_file(args.tokenizer)
    ids, ns, t_tok = tokenize_pairs(tk, pairs, args.max_seq_length)
    total = sum(len(x) for x in ids)
    batches = make_batches(pairs, ids, ns, args.batch_size)
    padded = sum(b[0].size for b in batches)
    print(f"shape={args.shape} threads={args.threads} pairs={len(pairs)} tokens={total} padded_tokens={padded} "
          f"batches={len(batches)} max_len={max(len(x) for x in ids)}", file=sys.stderr)

    model, dense = build_model(args.shape, args.seed)
    results = {}
    reference = None  # torch f32 output on the shortest batch, to check the other peers compute the same thing
    for peer in [p for p in args.peers.split(",") if p]:
        t_setup = time.perf_counter()
        extra = {}
        if peer == "torch-f32":
            secs, check = run_torch(model, dense, batches, False, args.repeat)
        elif peer == "torch-bf16":
            secs, check = run_torch(model, dense, batches, True, args.repeat)
        elif peer in ("ort-f32", "ort-int8"):
            work = args.work_dir or tempfile.mkdtemp(prefix="instructor-peers-")
            os.makedirs(work, exist_ok=True)
            path = os.path.join(work, f"t5-encoder-{args.shape}.onnx")
            if not os.path.exists(path):
                export_onnx(model, path)
            if peer == "ort-int8":
                # ONNX Runtime's dynamic quantization, as transformers.js's model_quantized.onnx
                # and Optimum make it: int8 weights, activations quantized at run time.
                from onnxruntime.quantization import QuantType, quantize_dynamic
                q = path.replace(".onnx", "-int8.onnx")
                if not os.path.exists(q):
                    quantize_dynamic(path, q, weight_type=QuantType.QInt8)
                extra["onnx_bytes"] = os.path.getsize(q)
                path = q
            else:
                extra["onnx_bytes"] = os.path.getsize(path)
            secs, check, ver = run_ort(path, dense, batches, args.threads, args.repeat)
            extra["onnxruntime"] = ver
        elif peer == "instructor-embed":
            work = args.work_dir or tempfile.mkdtemp(prefix="instructor-peers-")
            folder = os.path.join(work, f"st-{args.shape}")
            export_folder(model, dense, args.tokenizer, folder)
            secs, check = run_ours(folder, pairs, len(batches[-1][0]), args.batch_size, args.repeat)
            import instructor_embed
            extra["instructor_embed"] = instructor_embed.__version__
            extra["timed"] = "INSTRUCTOR.encode from Python, tokenisation included"
        else:
            raise SystemExit(f"unknown peer {peer}")
        if reference is None:
            reference = run_torch(model, dense, batches[-1:], False, 0)[1] if peer != "torch-f32" else check
        if peer == "instructor-embed":  # the same rows, L2-normalised by the folder's Normalize
            import numpy as np
            want = reference / np.linalg.norm(reference, axis=1, keepdims=True)
            extra["max_abs_diff_vs_torch_f32"] = float(abs(check - want).max())
        else:
            extra["max_abs_diff_vs_torch_f32"] = float(abs(check - reference).max())
        tps = total / secs
        results[peer] = {"seconds": secs, "tokens_per_s": tps, **extra}
        print(f"peer={peer} tokens_per_s={tps:.1f}", flush=True)
        print(f"  ({peer}: {secs:.2f} s timed, {time.perf_counter() - t_setup:.1f} s with setup)", file=sys.stderr)

    if "instructor-embed" in results and "torch-f32" in results:
        ours, torch_f32 = results["instructor-embed"]["seconds"], results["torch-f32"]["seconds"]
        print(f"ratio instructor-embed/torch-f32 (forward only) = {torch_f32 / ours:.2f}x; "
              f"with torch's tokenisation = {(torch_f32 + t_tok) / ours:.2f}x", flush=True)
    out = {
        "shape": args.shape, **SHAPES[args.shape], "vocab_size": 32128, "threads": args.threads,
        "batch_size": args.batch_size, "n_pairs": len(pairs), "seed": args.seed, "total_tokens": total,
        "padded_tokens": padded, "max_seq_length": args.max_seq_length, "tokenizer": os.path.relpath(args.tokenizer, ROOT),
        "pairs": args.pairs, "tokenize_tokens_per_s": total / t_tok if t_tok > 0 else None,
        "timed": "encoder forward with attention mask + pooling + Dense, tokenisation excluded, best of repeat",
        "repeat": args.repeat, "peers": results,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
    }
    try:
        import transformers
        out["versions"]["transformers"] = transformers.__version__
    except Exception:
        pass
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
