#!/usr/bin/env python3
"""The ONNX side of the browser benchmark (tests/browser/bench.mjs --onnx DIR): a random-weight
instructor-<shape> encoder exported to ONNX in f32 and dynamically quantized to int8 (QInt8
weights, `quantize_dynamic`: what transformers.js's `model_quantized.onnx` is), and the benchmark's
pairs tokenized and batched as InstructorEmbedding batches them (benches/peers.py's rules), for
onnxruntime-web to run in the same Chromium.  Needs torch, transformers, tokenizers, onnx,
onnxruntime (never CI).

    /opt/venvs/ref/bin/python benches/onnx_export.py --out /tmp/onnx --pairs 96

Writes DIR/encoder.onnx, DIR/encoder-int8.onnx and DIR/batches.json
([{"ids": [[...]], "mask": [[...]], "pool": [[...]]}, ...], tokens counted in "tokens").
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--shape", choices=sorted(peers.SHAPES), default="base")
    ap.add_argument("--pairs", type=int, default=96, help="the first N lines of benches/pairs.jsonl")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=20241)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from tokenizers import Tokenizer

    with open(os.path.join(peers.ROOT, "benches/pairs.jsonl"), encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f if line.strip()][: args.pairs]
    ids, ns, _ = peers.tokenize_pairs(Tokenizer.from_file(peers.DEFAULT_TOKENIZER), pairs, 512)
    batches = [
        {"ids": inp.tolist(), "mask": att.tolist(), "pool": pool.tolist()}
        for inp, att, pool in peers.make_batches(pairs, ids, ns, args.batch_size)
    ]
    with open(os.path.join(args.out, "batches.json"), "w") as f:
        json.dump({"tokens": sum(len(x) for x in ids), "batches": batches}, f)
    model, _ = peers.build_model(args.shape, args.seed)
    f32 = os.path.join(args.out, "encoder.onnx")
    peers.export_onnx(model, f32)
    quantize_dynamic(f32, os.path.join(args.out, "encoder-int8.onnx"), weight_type=QuantType.QInt8)
    for name in ("encoder.onnx", "encoder-int8.onnx"):
        print(f"{name}: {os.path.getsize(os.path.join(args.out, name))} bytes")


if __name__ == "__main__":
    main()
