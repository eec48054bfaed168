#!/usr/bin/env python3
"""ref_gpt2.py — the PyTorch reference the C engine is checked against (tests/test_gpt2.c).

Builds a tiny GPT-2 written independently with torch.nn.functional (pre-LN, GELU tanh,
learned positions, tied LM head over a padded vocabulary, causal attention), and writes:
  config, params (flat, tinyalign slab order), tokens, targets (with masked positions),
  logits (B,T,V), loss (mean NLL over unmasked targets), grads (flat, slab order), and the
  losses, learning rates and grad norms of 10 AdamW steps (warmup + cosine, clipping,
  weight decay on the 2-D matmul weights only), plus the parameters after them.
Run by tests/run.sh on every `make test`; nothing it writes is committed.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reffile import write_ref  # noqa: E402

# slab order of tinyalign's parameter tensors (include/tinyalign/model.h)
ORDER = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
         "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"]
DECAY = {"qkvw", "attprojw", "fcw", "fcprojw"}


def make_params(L, NH, C, V, Vp, maxT, gen):
    def n(*shape, std=0.02):
        return torch.randn(*shape, generator=gen) * std
    p = {
        "wte": torch.cat([n(V, C), torch.zeros(Vp - V, C)]),
        "wpe": n(maxT, C),
        # LayerNorm and biases perturbed away from 1/0 so their paths are exercised
        "ln1w": 1 + n(L, C, std=0.1), "ln1b": n(L, C, std=0.1),
        "qkvw": n(L, 3 * C, C), "qkvb": n(L, 3 * C, std=0.1),
        "attprojw": n(L, C, C, std=0.02 / math.sqrt(2 * L)), "attprojb": n(L, C, std=0.1),
        "ln2w": 1 + n(L, C, std=0.1), "ln2b": n(L, C, std=0.1),
        "fcw": n(L, 4 * C, C), "fcb": n(L, 4 * C, std=0.1),
        "fcprojw": n(L, C, 4 * C, std=0.02 / math.sqrt(2 * L)), "fcprojb": n(L, C, std=0.1),
        "lnfw": 1 + n(C, std=0.1), "lnfb": n(C, std=0.1),
    }
    return {k: torch.nn.Parameter(v.float().contiguous()) for k, v in p.items()}


def hidden(p, idx, L, NH):
    """The trunk: embeddings, L blocks, final LayerNorm -> (B, T, C)."""
    B, T = idx.shape
    C = p["wte"].shape[1]
    hs = C // NH
    x = p["wte"][idx] + p["wpe"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        h = F.layer_norm(x, (C,), p["ln1w"][l], p["ln1b"][l], 1e-5)
        qkv = F.linear(h, p["qkvw"][l], p["qkvb"][l])
        q, k, v = qkv.split(C, dim=-1)
        q = q.view(B, T, NH, hs).transpose(1, 2)
        k = k.view(B, T, NH, hs).transpose(1, 2)
        v = v.view(B, T, NH, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + F.linear(y, p["attprojw"][l], p["attprojb"][l])
        h = F.layer_norm(x, (C,), p["ln2w"][l], p["ln2b"][l], 1e-5)
        h = F.gelu(F.linear(h, p["fcw"][l], p["fcb"][l]), approximate="tanh")
        x = x + F.linear(h, p["fcprojw"][l], p["fcprojb"][l])
    return F.layer_norm(x, (C,), p["lnfw"], p["lnfb"], 1e-5)


def forward(p, idx, L, NH, V):
    return hidden(p, idx, L, NH) @ p["wte"].t()  # (B, T, Vp); columns >= V are padding


def loss_fn(logits, targets, V):
    return F.cross_entropy(logits[..., :V].reshape(-1, V), targets.reshape(-1), ignore_index=-1)


def lr_lambda(step, warmup, max_steps, min_ratio):
    if step < warmup:
        return (step + 1) / warmup
    prog = min(max((step - warmup) / max(1, max_steps - warmup), 0.0), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * prog))


def flat(tensors):
    return torch.cat([t.detach().reshape(-1) for t in tensors]).numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    torch.set_num_threads(1)
    L, NH, C, V, maxT, B, T = 2, 4, 64, 100, 16, 4, 16
    Vp = (V + 63) // 64 * 64
    gen = torch.Generator().manual_seed(a.seed)
    p = make_params(L, NH, C, V, Vp, maxT, gen)
    idx = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    targets[0, :3] = -1   # masked positions (no target) must not affect anything
    targets[2, 5] = -1
    params0 = flat([p[k] for k in ORDER])

    logits = forward(p, idx, L, NH, V)
    loss = loss_fn(logits, targets, V)
    loss.backward()
    grads = flat([p[k].grad for k in ORDER])
    records = [("config", np.array([L, NH, C, V, maxT, B, T], dtype=np.int32)),
               ("params", params0), ("tokens", idx.numpy()), ("targets", targets.numpy()),
               ("logits", logits[..., :V].detach().numpy()),
               ("loss", np.array([loss.item()])), ("grads", grads)]

    # 10 AdamW steps: warmup 3, cosine to 10% over 10 steps, clip 0.5 (active: norms ~0.8-1), wd 0.1 on matmuls
    lr, wd, steps, warmup, min_ratio, clip = 1e-3, 0.1, 10, 3, 0.1, 0.5
    for k in ORDER:
        p[k].grad = None
    groups = [{"params": [p[k] for k in ORDER if k in DECAY], "weight_decay": wd},
              {"params": [p[k] for k in ORDER if k not in DECAY], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, foreach=False)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_lambda(s, warmup, steps, min_ratio))
    losses, lrs, norms = [], [], []
    for s in range(steps):
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(forward(p, idx, L, NH, V), targets, V)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([p[k] for k in ORDER], clip)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        losses.append(loss.item())
        norms.append(norm.item())
    records += [("train_hparams", np.array([lr, wd, steps, warmup, min_ratio, clip, 0.9, 0.95, 1e-8])),
                ("adamw_losses", np.array(losses)), ("adamw_lrs", np.array(lrs)),
                ("adamw_norms", np.array(norms)), ("params_after", flat([p[k] for k in ORDER]))]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_ref(a.out, records)
    print(f"ref_gpt2: wrote {a.out}: loss {records[5][1][0]:.6f}, "
          f"adamw losses {losses[0]:.4f} -> {losses[-1]:.4f}")


if __name__ == "__main__":
    main()
