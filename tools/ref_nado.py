#!/usr/bin/env python3
"""ref_nado.py — PyTorch reference for the NADO head and the attribute KL with a base model
(tests/test_nado.c).

Written from the formulas (Meng et al. 2022, arXiv 2205.14219: BCE + consistency; Meng et
al. 2024, arXiv 2410.05559: the KL regulariser with q built on a base model), not from the
C code: every loss is a plain float64 torch expression and dlogits come from autograd.

One batch of B rows (prompt, response, padding; one row without padding, one whose only
response position is the EOS, labels 0 and 1), NADO logits r (B,T,V), base logits (B,T,V).
Written:
  targets (B,T) i32 (-1 = padding), loss_mask (B,T) i32, labels (B) f32,
  r (B,T,V), base (B,T,V), guide (B,T,V) f32,
  nado_cfgs (NN,2): alpha_reg, stop_grad_expectation
  nado_out (NN,4): loss, bce, consistency, accuracy;  nado_dr.<k> (B,T,V) dL/dr
  attr_cfgs (NA,2): objective type (0 pretrain, 1 sft), lambda   (q_base base: policy
           logits = r, guide = guide, base = base)
  attr_out (NA,3): loss, nll_loss, kl;  attr_dl.<k> (B,T,V) dL/dlogits
Run by tests/run.sh on every `make test`; nothing it writes is committed.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reffile import write_ref  # noqa: E402

NADO_VARIANTS = [(1.0, 0), (0.5, 1), (0.0, 0), (2.5, 0)]  # alpha_reg, stop_grad_expectation
ATTR_VARIANTS = [(1, 0.7), (0, 1.3)]                    # (sft | pretrain, lambda), q_base base


def make_batch(B, T, V, gen):
    targets = torch.full((B, T), -1, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    for i in range(B):
        p = int(torch.randint(1, 5, (1,), generator=gen))
        r = int(torch.randint(1, T - p + 1, (1,), generator=gen))
        if i == 0:
            r = T - p      # no padding
        if i == 1:
            r = 1          # only the EOS position: no consistency pair
        targets[i, :p + r] = torch.randint(0, V, (p + r,), generator=gen)
        mask[i, p:p + r] = 1  # the last r target positions are the response's
    return targets, mask


def nado_loss(r, lp_base, targets, mask, labels, alpha, stop):
    """(loss, bce, consistency, accuracy): sums over positions / N response tokens."""
    m = mask.double()
    N = m.sum()
    a = r.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B,T) a_t = r_t[y_t]
    C = labels.double().unsqueeze(1)
    bce = -(C * F.logsigmoid(a) + (1 - C) * F.logsigmoid(-a)) * m
    rr = r.detach() if stop else r
    pb = lp_base.exp()
    E = (pb * rr.sigmoid()).sum(-1)       # E[:, j] = expectation at position j
    Eb = (pb * (-rr).sigmoid()).sum(-1)
    pair = m[:, :-1] * m[:, 1:]           # (t, t+1) both response positions
    K = (E[:, 1:] * (E[:, 1:].log() - F.logsigmoid(a[:, :-1]))
         + Eb[:, 1:] * (Eb[:, 1:].log() - F.logsigmoid(-a[:, :-1]))) * pair
    loss = bce.sum() / N + alpha * K.sum() / N
    # accuracy at each row's last response position
    last = mask.shape[1] - 1 - torch.flip(mask, [1]).argmax(1)
    a_last = a.detach()[torch.arange(a.shape[0]), last]
    acc = ((a_last > 0) == (labels > 0.5)).double().mean()
    return loss, (bce.sum() / N).item(), (K.sum() / N).item(), acc.item()


def attr_loss(typ, lam, logits, guide, lp_base, targets, mask):
    """NLL + lambda KL(q || p) over the NLL's tokens, q = softmax(log pb + logsigmoid(guide))."""
    lp = logits.log_softmax(-1)
    lt = lp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    sel = mask.double() if typ == 1 else (targets >= 0).double()
    nll = -(lt * sel).sum() / sel.sum()
    log_q = (lp_base + F.logsigmoid(guide)).log_softmax(-1)   # a constant target
    kl = ((log_q.exp() * (log_q - lp)).sum(-1) * sel).sum() / sel.sum()
    return nll + lam * kl, nll.item(), kl.item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=4321)
    a = ap.parse_args()
    gen = torch.Generator().manual_seed(a.seed)
    B, T, V = 6, 10, 24
    targets, mask = make_batch(B, T, V, gen)
    labels = torch.tensor([1, 0, 1, 0, 0, 1], dtype=torch.float32)
    r = (torch.randn(B, T, V, generator=gen) * 2.0).float()
    base = (torch.randn(B, T, V, generator=gen) * 2.0).float()
    guide = (torch.randn(B, T, V, generator=gen) * 3.0).float()
    lp_base = base.double().log_softmax(-1)

    records = [("targets", targets.numpy()), ("loss_mask", mask.numpy()),
               ("labels", labels.numpy()), ("r", r.numpy()), ("base", base.numpy()),
               ("guide", guide.numpy())]
    outs, grads = [], []
    for alpha, stop in NADO_VARIANTS:
        x = r.double().requires_grad_(True)
        loss, bce, cons, acc = nado_loss(x, lp_base, targets, mask, labels, alpha, stop)
        loss.backward()
        outs.append([loss.item(), bce, cons, acc])
        grads.append(x.grad.float().numpy())
    accs = [o[3] for o in outs]
    assert 0 < accs[0] < 1, "want rows on both sides of the accuracy"
    records += [("nado_cfgs", np.array(NADO_VARIANTS, dtype=np.float32)),
                ("nado_out", np.array(outs))]
    records += [(f"nado_dr.{k}", g) for k, g in enumerate(grads)]

    aouts, agrads = [], []
    for typ, lam in ATTR_VARIANTS:
        x = r.double().requires_grad_(True)
        loss, nll, kl = attr_loss(typ, lam, x, guide.double(), lp_base, targets, mask)
        loss.backward()
        aouts.append([loss.item(), nll, kl])
        agrads.append(x.grad.float().numpy())
    records += [("attr_cfgs", np.array(ATTR_VARIANTS, dtype=np.float32)),
                ("attr_out", np.array(aouts))]
    records += [(f"attr_dl.{k}", g) for k, g in enumerate(agrads)]

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_ref(a.out, records)
    print(f"ref_nado: wrote {a.out}: nado losses "
          f"{', '.join(f'{o[0]:.6f}' for o in outs)}; attribute q_base=base losses "
          f"{', '.join(f'{o[0]:.6f}' for o in aouts)}")


if __name__ == "__main__":
    main()
