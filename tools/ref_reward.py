#!/usr/bin/env python3
"""ref_reward.py — the PyTorch reference of a reward model (tests/test_reward.c): a tiny
GPT-2 trunk (tools/ref_gpt2.py's, written with torch.nn.functional) plus the scalar head of
Hugging Face's GPT2ForSequenceClassification (num_labels 1, no bias), read at each row's last
real token, trained with TRL RewardTrainer's loss:
    r_b  = h[b, last_b] . w                      h = the final LayerNorm's output (B, T, C)
    loss = mean_i -log sigmoid(r_c - r_r - margin_i) + coef * mean_i (r_c + r_r)^2
over a preference batch of P pairs (rows [0,P) chosen, [P,2P) rejected), rows of different
lengths padded with random ids after their last token (which the causal model must ignore).
Every gradient, the score head's included, comes from autograd.

Written (tools/reffile.py format):
  config (L, NH, C, V, maxT, B, T, P) i32, params (flat: tinyalign's slab order, the score
  head (C) last), tokens (B,T) i32, targets (B,T) i32 (next tokens up to the last, -1
  after), loss_mask (B,T) i32 (response tokens), last (B) i32, margins (B) f32 (a pair's on
  both rows), coef (1), rewards (B), loss (1), metrics (4: rewards/chosen, rewards/rejected,
  rewards/margins, accuracy), grads (flat, like params).
Run by tests/run.sh on every `make test`; nothing it writes is committed.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_gpt2 import ORDER, hidden, make_params  # noqa: E402
from reffile import write_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=4321)
    a = ap.parse_args()
    torch.set_num_threads(1)
    L, NH, C, V, maxT, P, T = 2, 4, 32, 50, 16, 3, 12
    B = 2 * P
    Vp = (V + 63) // 64 * 64
    gen = torch.Generator().manual_seed(a.seed)
    p = make_params(L, NH, C, V, Vp, maxT, gen)
    score = torch.nn.Parameter((torch.randn(C, generator=gen) * 0.5).float())
    coef = 0.1

    # rows: a shared prompt per pair, responses of their own lengths; padding after the last
    # token is random ids (not a pad id) so any leak of padding into a reward would show
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.full((B, T), -1, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    last = torch.zeros(B, dtype=torch.long)
    for i in range(P):
        plen = int(torch.randint(2, 5, (1,), generator=gen))
        prompt = torch.randint(0, V, (plen,), generator=gen)
        for row in (i, P + i):
            n = int(torch.randint(plen + 2, T + 1, (1,), generator=gen))  # tokens in the row
            if row == 0:
                n = T  # one row fills the batch
            tokens[row, :plen] = prompt
            last[row] = n - 1
            targets[row, :n - 1] = tokens[row, 1:n]
            mask[row, plen - 1:n - 1] = 1
    mp = torch.rand(P, generator=gen) * 0.5
    margins = torch.cat([mp, mp]).float()

    h = hidden(p, tokens, L, NH)
    r = h[torch.arange(B), last] @ score  # HF: score(h)[arange(B), last, 0]
    rc, rr = r[:P], r[P:]
    loss = -F.logsigmoid(rc - rr - margins[:P]).mean() + coef * torch.mean((rc + rr) ** 2)
    loss.backward()
    flat = lambda ts: torch.cat([t.reshape(-1) for t in ts]).detach().numpy()  # noqa: E731
    params = flat([p[k] for k in ORDER] + [score])
    grads = flat([p[k].grad for k in ORDER] + [score.grad])
    metrics = [rc.mean().item(), rr.mean().item(), (rc - rr).mean().item(),
               (rc > rr).double().mean().item()]
    records = [("config", np.array([L, NH, C, V, maxT, B, T, P], dtype=np.int32)),
               ("params", params), ("tokens", tokens.numpy().astype(np.int32)),
               ("targets", targets.numpy().astype(np.int32)),
               ("loss_mask", mask.numpy().astype(np.int32)),
               ("last", last.numpy().astype(np.int32)), ("margins", margins.numpy()),
               ("coef", np.array([coef])), ("rewards", r.detach().numpy()),
               ("loss", np.array([loss.item()])), ("metrics", np.array(metrics)),
               ("grads", grads)]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_ref(a.out, records)
    print(f"ref_reward: wrote {a.out}: loss {loss.item():.6f}, rewards {r.detach().numpy()}")


if __name__ == "__main__":
    main()
