#!/usr/bin/env python3
"""Peer of the prompt-retrieval language model (issue 15): transformers' GPTJForCausalLM on the CPU,
random weights at a small GPT-J shape, saved as a folder that `cargo bench -p instructor-eval --bench
lm` then runs (benches/lm.sh does both and prints the ratios).  Not for CI (needs torch, transformers).

    /opt/venvs/ref/bin/python benches/lm.py --out /tmp/lm-bench --threads 2

Shape (--shape small): n_embd 1024, 12 layers, 16 heads, rotary_dim 64, vocab 50400 (GPT-J's vocab
and head layout; 6B is n_embd 4096, 28 layers).  Two timings, best of --repeat:
  forward   one 512-token sequence, logits of every position: tokens/s.
  score     one test input as main.py scores it: MetaICL's run_model on each of 5 options, each
            prompt+option (500 + 3 tokens) padded to max_length 1024, batch size 1: seconds.
Output lines `peer=torch forward_tokens_per_s=<x>` and `peer=torch score_s=<x>`.
"""
import argparse
import json
import os
import shutil
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--repeat", type=int, default=3)
a = p.parse_args()
torch.set_num_threads(a.threads)
from transformers import GPTJConfig, GPTJForCausalLM

cfg = GPTJConfig(vocab_size=50400, n_positions=2048, n_embd=1024, n_layer=12, n_head=16, rotary_dim=64)
torch.manual_seed(0)
model = GPTJForCausalLM(cfg).eval()
os.makedirs(a.out, exist_ok=True)
model.save_pretrained(a.out, safe_serialization=True)
here = os.path.dirname(os.path.abspath(__file__))
shutil.copy(os.path.join(here, "..", "tests", "fixtures", "models", "tiny-gptj", "tokenizer.json"), a.out)

g = torch.Generator().manual_seed(1)
ids = torch.randint(0, 50400, (1, 512), generator=g)
prompt = torch.randint(0, 50400, (500,), generator=g).tolist()
options = [torch.randint(0, 50400, (3,), generator=g).tolist() for _ in range(5)]
json.dump({"forward": ids[0].tolist(), "prompt": prompt, "options": options}, open(os.path.join(a.out, "inputs.json"), "w"))


def best(f):
    t = []
    for _ in range(a.repeat):
        s = time.perf_counter()
        f()
        t.append(time.perf_counter() - s)
    return min(t)


with torch.no_grad():
    model(input_ids=ids[:, :16])
    fwd = best(lambda: model(input_ids=ids).logits)

    def score():
        for o in options:
            seq = prompt + o
            n = len(seq)
            x = torch.tensor([seq + [0] * (1024 - n)])
            m = torch.tensor([[1] * n + [0] * (1024 - n)])
            logits = model(input_ids=x, attention_mask=m).logits[..., :-1, :]
            types = torch.tensor([[0] * len(prompt) + [1] * len(o) + [0] * (1024 - n)])[..., 1:]
            l = torch.nn.CrossEntropyLoss(reduction="none")(logits.reshape(-1, logits.size(-1)), x[..., 1:].reshape(-1))
            (l.view(1, -1) * types).sum() / types.sum()

    sc = best(score)
print(f"peer=torch forward_tokens_per_s={512 / fwd:.1f}")
print(f"peer=torch score_s={sc:.3f}")
