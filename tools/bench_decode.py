#!/usr/bin/env python3
"""bench_decode.py — KV-cache decoding speed, tinyalign vs PyTorch, same weights, same run.

For each model shape (small: L=6 NH=6 C=384 V=8192; 124M: L=12 NH=12 C=768 V=50257) it
writes random weights as a model directory (tools/hf_gpt2.py layout), then for batch 1
and batch 8 and each precision (fp32, bf16):
  - tinyalign: `BUILD/tinyalign sample --model DIR --bench --batch B --prompt-len P
    --max-new-tokens N --threads T --precision P` (greedy, EOS disabled; a warm-up run,
    then the timed ones; decode = the steps after the prefill, sampling included);
  - PyTorch: tools/torch_gpt2.py's idiomatic GPT (nn.Linear, fused GELU, a preallocated
    KV cache; torch.no_grad, torch.set_num_threads(T)) with the same weights, in float32
    or cast to bfloat16: one prefill forward over the prompt (LM head on the last
    position only), then one token per step, greedy argmax, same warm-up;
and prints decode tokens/s for both, tinyalign / PyTorch at the same precision, and
tinyalign bf16 / fp32. Both start from the same random prompt ids; the first greedy ids
are printed as a sanity check (random weights make near-ties, so they may legitimately
differ after a few tokens, and bf16 rounds differently from fp32).

usage: bench_decode.py [--build build] [--threads 2] [--models small,124m]
                       [--batches 1,8] [--precisions fp32,bf16] [--prompt-len 16]
                       [--new-tokens N] [--reps 3] [--json FILE]
Each side does one warm-up run and --reps timed runs and reports its fastest decode (other
processes on the machine only ever slow a run down). A tinyalign precision the build or
CPU cannot run (bf16 without AVX512-BF16) is reported as "n/a".
Total runtime at the defaults: about two minutes on 2 cores.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_gpt2  # noqa: E402
from torch_gpt2 import GPT, KVCache  # noqa: E402

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


def torch_generate(model, cache, prompts, new_tokens):
    """Greedy with the KV cache: one prefill forward over the prompt, then one token per
    step. Returns (ids (B, new_tokens), prefill seconds, decode seconds)."""
    B, P = prompts.shape
    cache.pos = 0
    t0 = time.perf_counter()
    tok = model(prompts, cache, last_only=True)[:, -1, :model.V].argmax(dim=-1)
    t1 = time.perf_counter()
    out = [tok]
    for _ in range(new_tokens - 1):
        tok = model(tok.view(B, 1), cache)[:, -1, :model.V].argmax(dim=-1)
        out.append(tok)
    t2 = time.perf_counter()
    return torch.stack(out, 1), t1 - t0, t2 - t1


def bench_torch(model_dir, B, P, N, threads, seed, reps, precision):
    """tools/torch_gpt2.py's GPT (nn.Linear, fused GELU, KV cache) with the model
    directory's weights; bf16: weights and cache cast to bfloat16 (model.to(bfloat16),
    the usual way to run inference in bf16 — autocast would re-cast every weight on every
    call)."""
    torch.set_num_threads(threads)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    tensors, _, _ = hf_gpt2.st_read(os.path.join(model_dir, "model.safetensors"))
    model = GPT(cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["vocab_size"],
                cfg["n_positions"])
    model.load_hf(tensors)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = model.to(dtype).eval()
    C, NH = cfg["n_embd"], cfg["n_head"]
    prompts = prompt_ids(seed, B, P, cfg["vocab_size"])
    with torch.no_grad():
        cache = KVCache(cfg["n_layer"], B, NH, P + N, C // NH, dtype)
        torch_generate(model, cache, prompts, N)  # warm-up
        best = None
        for _ in range(reps):  # the fastest of `reps` runs, as the C side reports
            r = torch_generate(model, cache, prompts, N)
            if best is None or r[2] < best[2]:
                best = r
    ids, pre, d = best
    return {"decode_tok_per_s": B * (N - 1) / d, "prefill_s": pre, "decode_s": d,
            "first_ids": ids[0, :3].tolist()}


def bench_c(build, model_dir, B, P, N, threads, seed, reps, precision):
    """tinyalign's decode JSON line, or None when this precision cannot run here."""
    cmd = [os.path.join(build, "tinyalign"), "sample", "--model", model_dir, "--bench",
           "--batch", str(B), "--prompt-len", str(P), "--max-new-tokens", str(N),
           "--threads", str(threads), "--seed", str(seed), "--bench-reps", str(reps)]
    if precision != "fp32":
        cmd += ["--precision", precision]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode == 2 and precision != "fp32":
        print(f"  (tinyalign {precision}: {r.stderr.strip()})")
        return None
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="small,124m")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=0,
                    help="tokens per response (default: 32 small, 16 124m)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reps", type=int, default=3, help="timed runs per side (fastest kept)")
    ap.add_argument("--json", help="also write the results to this file")
    a = ap.parse_args()
    t_start = time.time()
    rows = []
    precisions = a.precisions.split(",")
    print(f"decode benchmark: prompt {a.prompt_len} tokens, greedy, {a.threads} threads, best of "
          f"{a.reps} runs each, PyTorch {torch.__version__} (no_grad)")
    print(f"{'model':<6} {'batch':>5} {'prec':>5} {'tinyalign tok/s':>16} {'pytorch tok/s':>14}"
          f" {'vs torch':>9} {'vs our fp32':>12}  first ids (ours / torch)")
    fmt = lambda x: f"{x:.1f}" if x else "n/a"  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="ta-bench-decode-") as tmp:
        for name in a.models.split(","):
            L, NH, C, V, T = SHAPES[name]
            d = os.path.join(tmp, name)
            write_model(d, L, NH, C, V, T)
            N = a.new_tokens or NEW_TOKENS[name]
            for B in [int(b) for b in a.batches.split(",")]:
                ours_fp32 = None
                for prec in precisions:  # interleaved: both sides, one precision at a time
                    c = bench_c(a.build, d, B, a.prompt_len, N, a.threads, a.seed, a.reps, prec)
                    t = bench_torch(d, B, a.prompt_len, N, a.threads, a.seed, a.reps, prec)
                    ct = c["decode_tok_per_s"] if c else None
                    tt = t["decode_tok_per_s"]
                    if prec == "fp32":
                        ours_fp32 = ct
                    vs_torch = f"{ct / tt:.2f}x" if ct else "n/a"
                    vs_fp32 = f"{ct / ours_fp32:.2f}x" if ct and ours_fp32 and prec != "fp32" else ""
                    rows.append({"model": name, "L": L, "NH": NH, "C": C, "V": V, "batch": B,
                                 "precision": prec, "new_tokens": N, "tinyalign": c,
                                 "pytorch": t, "ratio": ct / tt if ct else None})
                    print(f"{name:<6} {B:>5} {prec:>5} {fmt(ct):>16} {tt:>14.1f} {vs_torch:>9}"
                          f" {vs_fp32:>12}  {c['first_ids'] if c else '-'} / {t['first_ids']}",
                          flush=True)
            os.remove(os.path.join(d, "model.safetensors"))
    print(f"(vs torch = tinyalign / PyTorch decode tokens/s at the same precision; vs our fp32 ="
          f" tinyalign bf16 / fp32; total {time.time() - t_start:.0f}s)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
