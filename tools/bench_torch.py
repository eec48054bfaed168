#!/usr/bin/env python3
"""bench_torch.py — PyTorch (fp32, CPU) training-step speed for the same GPT-2 shape,
batch and thread count as `tinyalign bench`, so `make bench` can print the ratio.
The model is tools/ref_gpt2.py's (the one the parity tests check tinyalign against)."""
import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_gpt2 import ORDER, DECAY, forward, loss_fn, make_params  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    for k, d in [("layers", 6), ("heads", 6), ("dim", 384), ("vocab", 8192), ("batch", 8),
                 ("seq", 256), ("steps", 10), ("warmup", 2), ("threads", 2)]:
        ap.add_argument("--" + k, type=int, default=d)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    L, NH, C, V, B, T = a.layers, a.heads, a.dim, a.vocab, a.batch, a.seq
    Vp = (V + 63) // 64 * 64
    p = make_params(L, NH, C, V, Vp, T, torch.Generator().manual_seed(1))
    opt = torch.optim.AdamW([{"params": [p[k] for k in ORDER if k in DECAY], "weight_decay": 0.1},
                             {"params": [p[k] for k in ORDER if k not in DECAY], "weight_decay": 0.0}],
                            lr=1e-4)
    idx = torch.randint(0, V, (B, T))
    tgt = torch.randint(0, V, (B, T))
    total = 0.0
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(forward(p, idx, L, NH, V), tgt, V)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p[k] for k in ORDER], 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if s >= a.warmup:
            total += dt
    flops_tok = 6 * (L * 12 * C * C + Vp * C) + 12 * L * T * C
    toks = B * T * a.steps / total
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "threads": a.threads,
                      "ms_per_step": 1000 * total / a.steps, "tokens_per_s": toks,
                      "gflops": flops_tok * toks / 1e9}))


if __name__ == "__main__":
    main()
