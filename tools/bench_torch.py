#!/usr/bin/env python3
"""bench_torch.py — PyTorch (CPU) training-step speed for the same GPT-2 shape, batch and
thread count as `tinyalign bench`, so `make bench` can print the ratio.

The model is tools/torch_gpt2.py's idiomatic nn.Module GPT-2 (the peer at its best, not
the clarity-first parity model of tools/ref_gpt2.py). One step = zero_grad, forward +
cross-entropy, backward, clip_grad_norm_(1.0), AdamW (foreach=True, weight decay 0.1 on
the blocks' 2-D matmul weights only, as tinyalign). --precision bf16 runs the forward
and the loss under torch.autocast("cpu", dtype=torch.bfloat16) (master weights, grads
and AdamW state stay float32), the documented way to train in bf16 with PyTorch.
Prints one JSON line."""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt2 import GPT, HAS_SDPA  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    for k, d in [("layers", 6), ("heads", 6), ("dim", 384), ("vocab", 8192), ("batch", 8),
                 ("seq", 256), ("steps", 10), ("warmup", 2), ("threads", 2)]:
        ap.add_argument("--" + k, type=int, default=d)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    L, NH, C, V, B, T = a.layers, a.heads, a.dim, a.vocab, a.batch, a.seq
    model = GPT(L, NH, C, V, T)
    model.train()
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=1e-4, foreach=True)
    idx = torch.randint(0, V, (B, T))
    tgt = torch.randint(0, V, (B, T))
    bf16 = a.precision == "bf16"
    total = 0.0
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(model(idx), tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if s >= a.warmup:
            total += dt
    Vp = model.Vp
    flops_tok = 6 * (L * 12 * C * C + Vp * C) + 12 * L * T * C
    toks = B * T * a.steps / total
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "precision": a.precision,
                      "attention": "sdpa" if HAS_SDPA else "matmul+softmax",
                      "threads": a.threads, "ms_per_step": 1000 * total / a.steps,
                      "tokens_per_s": toks, "gflops": flops_tok * toks / 1e9,
                      "loss": float(loss)}))


if __name__ == "__main__":
    main()
