#!/usr/bin/env python3
"""bench_decode.py — KV-cache decoding speed, tinyalign vs PyTorch, same weights, same run.

For each model shape (small: L=6 NH=6 C=384 V=8192; 124M: L=12 NH=12 C=768 V=50257) it
writes random weights as a model directory (tools/hf_gpt2.py layout), then for batch 1
and batch 8:
  - tinyalign: `BUILD/tinyalign sample --model DIR --bench --batch B --prompt-len P
    --max-new-tokens N --threads T` (greedy, EOS disabled; a warm-up run, then the timed
    one; decode = the steps after the prefill, sampling included);
  - PyTorch: tools/hf_gpt2.py's GPT2 loaded from the same directory (float32), run with
    its own KV cache written here (torch.no_grad, torch.set_num_threads(T)): one prefill
    forward over the prompt, then one token per step, greedy argmax, same warm-up;
and prints decode tokens/s for both and the ratio (> 1: tinyalign faster). Both start
from the same random prompt ids; the first greedy ids are printed as a sanity check
(random weights make near-ties, so they may legitimately differ after a few tokens).

usage: bench_decode.py [--build build] [--threads 2] [--models small,124m]
                       [--batches 1,8] [--prompt-len 16] [--new-tokens N] [--reps 3]
                       [--json FILE]
Each side does one warm-up run and --reps timed runs and reports its fastest decode (other
processes on the machine only ever slow a run down).
Total runtime at the defaults: about a minute on 2 cores.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_gpt2  # noqa: E402

SHAPES = {"small": (6, 6, 384, 8192, 256), "124m": (12, 12, 768, 50257, 1024)}
NEW_TOKENS = {"small": 32, "124m": 16}  # default decode steps per run (keeps the bench ~1 min)


def write_model(d, L, NH, C, V, T, seed=0):
    """Random GPT-2 weights (N(0, 0.02), LN 1/0) as an HF-layout model directory."""
    rng = np.random.default_rng(seed)
    n = lambda *s: (rng.standard_normal(s, dtype=np.float32) * 0.02)  # noqa: E731
    t = {"transformer.wte.weight": n(V, C), "transformer.wpe.weight": n(T, C)}
    for i in range(L):
        p = f"transformer.h.{i}."
        t[p + "ln_1.weight"] = np.ones(C, np.float32)
        t[p + "ln_1.bias"] = np.zeros(C, np.float32)
        t[p + "attn.c_attn.weight"] = n(C, 3 * C)
        t[p + "attn.c_attn.bias"] = np.zeros(3 * C, np.float32)
        t[p + "attn.c_proj.weight"] = n(C, C) / math.sqrt(2 * L)
        t[p + "attn.c_proj.bias"] = np.zeros(C, np.float32)
        t[p + "ln_2.weight"] = np.ones(C, np.float32)
        t[p + "ln_2.bias"] = np.zeros(C, np.float32)
        t[p + "mlp.c_fc.weight"] = n(C, 4 * C)
        t[p + "mlp.c_fc.bias"] = np.zeros(4 * C, np.float32)
        t[p + "mlp.c_proj.weight"] = n(4 * C, C) / math.sqrt(2 * L)
        t[p + "mlp.c_proj.bias"] = np.zeros(C, np.float32)
    t["transformer.ln_f.weight"] = np.ones(C, np.float32)
    t["transformer.ln_f.bias"] = np.zeros(C, np.float32)
    os.makedirs(d, exist_ok=True)
    hf_gpt2.st_write(os.path.join(d, "model.safetensors"), t, {"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(hf_gpt2.hf_config(L, NH, C, T, V), f)


def prompt_ids(seed, B, P, V):
    """The prompt ids `tinyalign sample --bench` draws (xoshiro256** seeded by splitmix64,
    ta_rng_below), so both sides decode the same prompts."""
    M = (1 << 64) - 1

    def splitmix(x):
        x = (x + 0x9E3779B97F4A7C15) & M
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        return x, z ^ (z >> 31)

    s, x = [], seed
    for _ in range(4):
        x, z = splitmix(x)
        s.append(z)
    rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M  # noqa: E731

    def nxt():
        r = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return r

    limit = M - (M % V)  # UINT64_MAX - UINT64_MAX % n
    out = []
    for _ in range(B * P):
        while True:
            v = nxt()
            if v < limit:
                break
        out.append(v % V)
    return torch.tensor(out, dtype=torch.long).view(B, P)


class TorchDecoder:
    """GPT-2 decoding with a preallocated KV cache, on hf_gpt2.GPT2's parameters.
    Conv1D layers as torch.addmm(bias, x, W) (what HF's Conv1D does), fused GELU-tanh."""

    def __init__(self, model, B, maxT):
        tr = model.transformer
        self.tr = tr
        self.L = len(tr.h)
        self.C = tr.wte.weight.shape[1]
        self.NH = tr.h[0].attn.NH
        self.hs = self.C // self.NH
        self.K = torch.zeros(self.L, B, self.NH, maxT, self.hs)
        self.V = torch.zeros(self.L, B, self.NH, maxT, self.hs)

    @staticmethod
    def lin(m, x):
        B, T, C = x.shape
        return torch.addmm(m.bias, x.reshape(B * T, C), m.weight).view(B, T, -1)

    def forward(self, idx, pos0):
        """idx (B, T) at positions pos0..pos0+T-1 -> logits of the last position (B, V)."""
        tr, C, NH, hs = self.tr, self.C, self.NH, self.hs
        B, T = idx.shape
        x = tr.wte(idx) + tr.wpe(torch.arange(pos0, pos0 + T))
        end = pos0 + T
        for l, blk in enumerate(tr.h):
            h = F.layer_norm(x, (C,), blk.ln_1.weight, blk.ln_1.bias, 1e-5)
            q, k, v = self.lin(blk.attn.c_attn, h).split(C, dim=2)
            q = q.view(B, T, NH, hs).transpose(1, 2)
            self.K[l, :B, :, pos0:end] = k.view(B, T, NH, hs).transpose(1, 2)
            self.V[l, :B, :, pos0:end] = v.view(B, T, NH, hs).transpose(1, 2)
            Kl, Vl = self.K[l, :B, :, :end], self.V[l, :B, :, :end]
            att = (q @ Kl.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
            if T > 1:  # causal mask inside the new block
                mask = torch.ones(T, end, dtype=torch.bool).tril(diagonal=pos0)
                att = att.masked_fill(~mask, float("-inf"))
            y = (att.softmax(dim=-1) @ Vl).transpose(1, 2).reshape(B, T, C)
            x = x + self.lin(blk.attn.c_proj, y)
            h = F.layer_norm(x, (C,), blk.ln_2.weight, blk.ln_2.bias, 1e-5)
            h = F.gelu(self.lin(blk.mlp.c_fc, h), approximate="tanh")
            x = x + self.lin(blk.mlp.c_proj, h)
        x = F.layer_norm(x[:, -1], (C,), tr.ln_f.weight, tr.ln_f.bias, 1e-5)
        return x @ tr.wte.weight.t()

    def generate(self, prompts, new_tokens):
        """Greedy; returns (ids (B, new_tokens), prefill seconds, decode seconds)."""
        B, P = prompts.shape
        t0 = time.perf_counter()
        tok = self.forward(prompts, 0).argmax(dim=-1)
        t1 = time.perf_counter()
        out = [tok]
        for i in range(new_tokens - 1):
            tok = self.forward(tok.view(B, 1), P + i).argmax(dim=-1)
            out.append(tok)
        t2 = time.perf_counter()
        return torch.stack(out, 1), t1 - t0, t2 - t1


def bench_torch(model_dir, B, P, N, threads, seed, reps):
    torch.set_num_threads(threads)
    model, cfg = hf_gpt2.load_dir(model_dir, dtype=torch.float32)
    model.eval()
    prompts = prompt_ids(seed, B, P, cfg["vocab_size"])
    with torch.no_grad():
        dec = TorchDecoder(model, B, P + N)
        dec.generate(prompts, N)  # warm-up
        best = None
        for _ in range(reps):  # the fastest of `reps` runs, as the C side reports
            r = dec.generate(prompts, N)
            if best is None or r[2] < best[2]:
                best = r
    ids, pre, d = best
    return {"decode_tok_per_s": B * (N - 1) / d, "prefill_s": pre, "decode_s": d,
            "first_ids": ids[0, :3].tolist()}


def bench_c(build, model_dir, B, P, N, threads, seed, reps):
    cmd = [os.path.join(build, "tinyalign"), "sample", "--model", model_dir, "--bench",
           "--batch", str(B), "--prompt-len", str(P), "--max-new-tokens", str(N),
           "--threads", str(threads), "--seed", str(seed), "--bench-reps", str(reps)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="small,124m")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=0,
                    help="tokens per response (default: 32 small, 16 124m)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reps", type=int, default=3, help="timed runs per side (fastest kept)")
    ap.add_argument("--json", help="also write the results to this file")
    a = ap.parse_args()
    t_start = time.time()
    rows = []
    print(f"decode benchmark: prompt {a.prompt_len} tokens, greedy, {a.threads} threads, best of "
          f"{a.reps} runs each, PyTorch {torch.__version__} (float32, no_grad)")
    print(f"{'model':<6} {'batch':>5} {'tinyalign tok/s':>16} {'pytorch tok/s':>14} {'ratio':>7}"
          f"  first ids (ours / torch)")
    with tempfile.TemporaryDirectory(prefix="ta-bench-decode-") as tmp:
        for name in a.models.split(","):
            L, NH, C, V, T = SHAPES[name]
            d = os.path.join(tmp, name)
            write_model(d, L, NH, C, V, T)
            N = a.new_tokens or NEW_TOKENS[name]
            for B in [int(b) for b in a.batches.split(",")]:
                c = bench_c(a.build, d, B, a.prompt_len, N, a.threads, a.seed, a.reps)
                t = bench_torch(d, B, a.prompt_len, N, a.threads, a.seed, a.reps)
                ratio = c["decode_tok_per_s"] / t["decode_tok_per_s"]
                rows.append({"model": name, "L": L, "NH": NH, "C": C, "V": V, "batch": B,
                             "new_tokens": N,
                             "tinyalign": c, "pytorch": t, "ratio": ratio})
                print(f"{name:<6} {B:>5} {c['decode_tok_per_s']:>16.1f} "
                      f"{t['decode_tok_per_s']:>14.1f} {ratio:>6.2f}x  "
                      f"{c['first_ids']} / {t['first_ids']}", flush=True)
            os.remove(os.path.join(d, "model.safetensors"))
    print(f"(ratio = tinyalign / PyTorch decode tokens/s; total {time.time() - t_start:.0f}s)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
