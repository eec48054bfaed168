#!/usr/bin/env python3
"""ref_objectives.py — PyTorch reference for the loss heads (tests/test_objective.c).

Written from the formulas (DPO: Rafailov et al. 2023, arXiv 2305.18290; ORPO: Hong et al. 2024,
arXiv 2403.07691; DDPO / DORPO: Chung et al. 2025, arXiv 2503.17126; attribute KL: Meng et al.
2024, arXiv 2410.05559; and TRL's DPOTrainer /
ORPOTrainer conventions), not from the C code: every loss is a plain torch expression of
the logits in float64, and dlogits come from autograd.

One preference batch of P pairs (rows [0,P) chosen, [P,2P) rejected) with random prompt
lengths, response lengths and padding; random logits (B,T,V), targets, loss masks,
reference sequence log-probs (sums over response tokens) and pair weights. Written:
  logits (B,T,V) f32, targets (B,T) i32 (-1 = padding), loss_mask (B,T) i32,
  ref (B) f32, weights (B) f32, guide (B,T,V) f32 (a guide model's logits r),
  row_weights (NV,B) f32: the batch's per-row weights for variant k (the pair weights for
                   the pairwise objectives; 1 for sft / pretrain, except the *_weighted sft
                   variants: random in [0.2, 3] with two rows of weight 0),
  row_feeds (NV,B) f32: the loss terms each row feeds (a data.train source's "loss"):
                   0 all, 1 the NLL only, 2 the attribute KL only (NLL weight 0: prefixes
                   sampled from the model); sft_attribute_klrows: rows 1, 5, 10 (weight 0:
                   nothing) and 12 feed the KL only, rows 0, 2, 3 (weight 0), 9 the NLL
                   only; 0 everywhere else,
  cfgs (NV,10) f32: type, beta, loss_type, label_smoothing, sft_weight, lambda, nll_scope,
                   dorpo_match_trl_quirk, odds_clamp, attribute lambda (-1 = no
                   objective.attribute) (enums as in include/tinyalign/config.h)
  losses (NV), metrics (NV,15) in the order of METRICS below (NaN = not defined),
  dlogits.<k> (B,T,V) for variant k,
  sat.* : an ORPO batch whose chosen responses are near-certain (mean log-prob ~ -1e-9,
          clamped, and ~ -1e-3), with its loss / dlogits / A, in float64 arithmetic.
  reward.* : the reward model's Bradley-Terry head (TRL RewardTrainer) on per-row scalars:
          reward.scores (B) f32 (random rewards, pair layout), reward.margins (B) f32 (the
          pair's margin on both rows), reward.cfgs (NR,2) (center_rewards_coefficient, use
          margins), reward.losses (NR), reward.metrics (NR, len(METRICS)),
          reward.dscores (NR,B) (autograd).
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

PRETRAIN, SFT, DPO, ORPO, DDPO, DORPO = range(6)
SIGMOID, IPO, HINGE, ROBUST = range(4)
RESPONSE, FULL = range(2)
METRICS = ["loss", "nll_loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
           "rewards/margins", "logps/chosen", "logps/rejected", "log_odds_ratio",
           "log_odds_chosen", "weights/mean", "kl", "bce", "consistency", "accuracy"]

# name, type, beta, loss_type, label_smoothing, sft_weight, lambda, nll_scope, quirk
# (+ an optional attribute lambda: objective.attribute with the guide logits)
VARIANTS = [
    ("pretrain",         PRETRAIN, 0.1, SIGMOID, 0.0, 0.0, 0.1, RESPONSE, 0),
    ("sft",              SFT,      0.1, SIGMOID, 0.0, 0.0, 0.1, RESPONSE, 0),
    ("dpo_sigmoid",      DPO,      0.1, SIGMOID, 0.0, 0.0, 0.1, RESPONSE, 0),
    ("dpo_ipo",          DPO,      0.1, IPO,     0.0, 0.0, 0.1, RESPONSE, 0),
    ("dpo_hinge",        DPO,      1.0, HINGE,   0.0, 0.0, 0.1, RESPONSE, 0),
    ("dpo_cdpo",         DPO,      0.2, SIGMOID, 0.1, 0.0, 0.1, RESPONSE, 0),
    ("dpo_robust",       DPO,      0.2, ROBUST,  0.2, 0.0, 0.1, RESPONSE, 0),
    ("dpo_rpo",          DPO,      0.1, SIGMOID, 0.0, 0.7, 0.1, RESPONSE, 0),
    ("orpo_response",    ORPO,     0.1, SIGMOID, 0.0, 0.0, 0.25, RESPONSE, 0),
    ("orpo_full",        ORPO,     0.1, SIGMOID, 0.0, 0.0, 0.1, FULL, 0),
    ("ddpo",             DDPO,     0.1, SIGMOID, 0.0, 0.0, 0.1, RESPONSE, 0),
    ("dorpo_clean",      DORPO,    0.1, SIGMOID, 0.0, 0.0, 0.25, RESPONSE, 0),
    ("dorpo_quirk",      DORPO,    0.1, SIGMOID, 0.0, 0.0, 0.25, RESPONSE, 1),
    ("dorpo_clean_full", DORPO,    0.1, SIGMOID, 0.0, 0.0, 0.25, FULL, 0),
    ("ddpo_robust_rpo",  DDPO,     0.2, ROBUST,  0.1, 0.5, 0.1, RESPONSE, 0),
    ("sft_attribute",    SFT,      0.1, SIGMOID, 0.0, 0.0, 0.1, RESPONSE, 0, 0.7),
    ("pretrain_attribute", PRETRAIN, 0.1, SIGMOID, 0.0, 0.0, 0.1, RESPONSE, 0, 1.3),
    ("sft_weighted",     SFT,      0.1, SIGMOID, 0.0, 0.0, 0.1, RESPONSE, 0),
    ("sft_attribute_weighted", SFT, 0.1, SIGMOID, 0.0, 0.0, 0.1, RESPONSE, 0, 0.7),
    ("sft_attribute_klrows", SFT, 0.1, SIGMOID, 0.0, 0.0, 0.1, RESPONSE, 0, 0.7),
]
WEIGHTED_SFT = {"sft_weighted", "sft_attribute_weighted", "sft_attribute_klrows"}
KL_ROWS = {"sft_attribute_klrows": [1, 5, 10, 12]}
NLL_ROWS = {"sft_attribute_klrows": [0, 2, 3, 9]}
# reward variants: name, center_rewards_coefficient, use the margins
REWARD_VARIANTS = [("reward", 0.0, False), ("reward_margin_center", 0.3, True)]
ODDS_CLAMP = 1e-6


def make_batch(P, T, V, gen):
    """Random pair batch: per pair a shared prompt length, own response lengths, padding."""
    B = 2 * P
    targets = torch.full((B, T), -1, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    for i in range(P):
        p = int(torch.randint(1, 6, (1,), generator=gen))
        for row in (i, P + i):
            r = int(torch.randint(1, T - p + 1, (1,), generator=gen))
            if i == 0 and row == 0:
                r = T - p  # one row without padding
            targets[row, :p + r] = torch.randint(0, V, (p + r,), generator=gen)
            mask[row, p:p + r] = 1
    return targets, mask


def token_logps(logits64, targets):
    """(B,T) log p(target) over the V real columns; 0 where there is no target."""
    lp = torch.log_softmax(logits64, dim=-1)
    g = lp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return g * (targets >= 0).to(g.dtype)


def logodds(A, clamp):
    """log(p/(1-p)) of p = exp(A), A clamped to <= -clamp (gradient 0 where clamped)."""
    A = torch.clamp(A, max=-clamp)
    return A - torch.log(-torch.expm1(A))


def attribute_kl(logits64, guide64):
    """(B,T) KL(q || p) per position, q = normalise(stop_grad(p) * sigmoid(r)) (Meng et al. 2024)."""
    lp = torch.log_softmax(logits64, dim=-1)
    log_q = torch.log_softmax(lp.detach() + F.logsigmoid(guide64), dim=-1)
    return (log_q.exp() * (log_q - lp)).sum(-1)


def objective(cfg, logits64, targets, mask, ref, weights, P, guide64=None, feeds=None):
    """Returns (loss tensor, metrics dict) for one variant, straight from the formulas.
    weights: the batch's per-row weights (pairs: the pair's, on both rows; sft: the row's).
    feeds (B): 0 the row feeds every term, 1 the NLL only, 2 the attribute KL only."""
    _, typ, beta, loss_type, eps, sft_w, lam, scope, quirk = cfg[:9]
    attr = cfg[9] if len(cfg) > 9 else None
    lt = token_logps(logits64, targets)
    full = (targets >= 0).double()
    resp = mask.double()
    m = {}
    if typ in (PRETRAIN, SFT):
        sel = full if typ == PRETRAIN else resp
        # sft: a row's weight scales its token losses; N counts the tokens of rows of weight > 0
        rw = weights.double()[:, None] if typ == SFT else torch.ones_like(sel)
        # a row that feeds one term only has weight 0 in the other
        f = feeds.double()[:, None] if feeds is not None else torch.zeros_like(rw)
        nw, kw = rw * (f != 2), rw * (f != 1)
        N = (sel * (nw > 0)).sum()
        loss = -(lt * sel * nw).sum() / N
        if attr is not None:  # NLL + lambda * the KL's weighted mean over ITS tokens
            N_kl = (sel * (kw > 0)).sum()  # (= N when every row feeds both terms)
            kl = (attribute_kl(logits64, guide64) * sel * kw).sum() / N_kl
            m["nll_loss"], m["kl"] = loss.item(), kl.item()
            loss = loss + attr * kl
        m["loss"] = loss.item()
        return loss, m
    S = (lt * resp).sum(1)            # summed response log-prob per row
    n = resp.sum(1)
    A = S / n                         # mean response log-prob per row
    w = weights[:P].double()
    if typ in (DPO, DDPO):
        if loss_type == IPO:          # TRL averages log-probs for ipo only
            pol, refl = A, ref / n
        else:
            pol, refl = S, ref
        x = (pol[:P] - refl[:P]) - (pol[P:] - refl[P:])
        if loss_type == SIGMOID:
            losses = -F.logsigmoid(beta * x) * (1 - eps) - F.logsigmoid(-beta * x) * eps
        elif loss_type == ROBUST:
            losses = (-F.logsigmoid(beta * x) * (1 - eps)
                      + F.logsigmoid(-beta * x) * eps) / (1 - 2 * eps)
        elif loss_type == HINGE:
            losses = torch.relu(1 - beta * x)
        else:
            losses = (x - 1 / (2 * beta)) ** 2
        if typ == DDPO:
            losses = w * losses
        loss = losses.mean()
        if sft_w > 0:
            nll = -(lt[:P] * resp[:P]).sum() / resp[:P].sum()
            loss = loss + sft_w * nll
            m["nll_loss"] = nll.item()
        rw = beta * (pol[:P] - refl[:P])
        rl = beta * (pol[P:] - refl[P:])
        lpw, lpl = pol[:P], pol[P:]
        if typ == DDPO:
            m["weights/mean"] = w.mean().item()
    else:
        wz = w if typ == DORPO else torch.ones_like(w)
        z = logodds(A[:P], ODDS_CLAMP) - logodds(A[P:], ODDS_CLAMP)
        lor = F.logsigmoid(wz * z)
        sc = full if (scope == FULL or (typ == DORPO and quirk)) else resp
        if typ == DORPO and not quirk:
            nll_i = -(lt[:P] * sc[:P]).sum(1) / sc[:P].sum(1)
            loss = (w * nll_i - lam * lor).mean()
            nll = nll_i.mean()
        else:
            nll = -(lt[:P] * sc[:P]).sum() / sc[:P].sum()
            scale = w.mean() if typ == DORPO else 1.0
            loss = scale * nll - lam * lor.mean()
        m["nll_loss"] = nll.item()
        m["log_odds_ratio"] = lor.mean().item()
        m["log_odds_chosen"] = z.mean().item()
        rw, rl = lam * A[:P], lam * A[P:]
        lpw, lpl = A[:P], A[P:]
        if typ == DORPO:
            m["weights/mean"] = w.mean().item()
    m["loss"] = loss.item()
    m["rewards/chosen"] = rw.mean().item()
    m["rewards/rejected"] = rl.mean().item()
    m["rewards/accuracies"] = (rw > rl).double().mean().item()
    m["rewards/margins"] = (rw - rl).mean().item()
    m["logps/chosen"] = lpw.mean().item()
    m["logps/rejected"] = lpl.mean().item()
    return loss, m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    P, T, V = 8, 12, 40
    B = 2 * P
    targets, mask = make_batch(P, T, V, gen)
    logits = (torch.randn(B, T, V, generator=gen) * 2.0).float()
    with torch.no_grad():
        lt = token_logps(logits.double(), targets)
        S = (lt * mask.double()).sum(1)
    ref = (S + torch.randn(B, generator=gen, dtype=torch.float64) * 2.0).float()
    wp = (0.2 + 2.8 * torch.rand(P, generator=gen)).float()
    weights = torch.cat([wp, wp])
    guide = (torch.randn(B, T, V, generator=gen) * 3.0).float()

    records = [("logits", logits.numpy()), ("targets", targets.numpy()),
               ("loss_mask", mask.numpy()), ("ref", ref.numpy()), ("weights", weights.numpy()),
               ("guide", guide.numpy())]
    sft_rw = (0.2 + 2.8 * torch.rand(B, generator=gen)).float()
    sft_rw[3] = 0.0  # weight-0 rows contribute nothing (one in each half of the batch)
    sft_rw[10] = 0.0
    cfgs, losses, metrics, grads, row_weights, kl_rows = [], [], [], [], [], []
    for k, v in enumerate(VARIANTS):
        x = logits.double().requires_grad_(True)
        rw = weights if v[1] not in (PRETRAIN, SFT) else sft_rw if v[0] in WEIGHTED_SFT else torch.ones(B)
        row_weights.append(rw.numpy())
        ko = torch.zeros(B)
        ko[KL_ROWS.get(v[0], [])] = 2.0
        ko[NLL_ROWS.get(v[0], [])] = 1.0
        kl_rows.append(ko.numpy())
        loss, m = objective(v, x, targets, mask, ref.double(), rw, P, guide.double(), ko)
        loss.backward()
        if v[3] == HINGE and v[1] in (DPO, DDPO):  # keep away from the kink
            with torch.no_grad():
                Sx = (token_logps(x, targets) * mask.double()).sum(1)
                u = v[2] * ((Sx[:P] - ref[:P]) - (Sx[P:] - ref[P:]))
                assert (u - 1).abs().min() > 1e-2, "hinge kink too close; change the seed"
                assert (u < 1).any() and (u > 1).any(), "hinge: both branches wanted"
        _, typ, beta, lt_, eps, sw, lam, scope, quirk = v[:9]
        attr = v[9] if len(v) > 9 else -1.0
        cfgs.append([typ, beta, lt_, eps, sw, lam, scope, quirk, ODDS_CLAMP, attr])
        losses.append(loss.item())
        metrics.append([m.get(name, float("nan")) for name in METRICS])
        grads.append(x.grad.float().numpy())
    records += [("cfgs", np.array(cfgs)), ("losses", np.array(losses)),
                ("metrics", np.array(metrics)), ("row_weights", np.array(row_weights)),
                ("row_feeds", np.array(kl_rows, dtype=np.float32))]
    records += [(f"dlogits.{k}", g) for k, g in enumerate(grads)]

    # ORPO near P -> 1: pair 0's chosen tokens have a margin of 22 nats (A ~ -1e-9, clamped),
    # pair 1's chosen a margin of 8 (A ~ -1e-3, not clamped), its rejected a margin of 3.
    sP, sT = 2, 6
    st = torch.full((2 * sP, sT), -1, dtype=torch.long)
    sm = torch.zeros(2 * sP, sT, dtype=torch.long)
    st[:, :5] = torch.randint(0, V, (2 * sP, 5), generator=gen)
    sm[:, 2:5] = 1
    sl = torch.randn(2 * sP, sT, V, generator=gen).float()
    for row, margin in ((0, 22.0), (1, 8.0), (3, 3.0)):
        for t in range(2, 5):
            sl[row, t, st[row, t]] = sl[row, t].max() + margin
    x = sl.double().requires_grad_(True)
    cfg = ("sat", ORPO, 0.1, SIGMOID, 0.0, 0.0, 0.25, RESPONSE, 0)
    sw = torch.ones(2 * sP)
    loss, _ = objective(cfg, x, st, sm, torch.zeros(2 * sP, dtype=torch.float64), sw, sP)
    loss.backward()
    with torch.no_grad():
        A = (token_logps(x, st) * sm.double()).sum(1) / sm.double().sum(1)
    assert -1e-6 < A[0] < 0 and -1e-2 < A[1] < -1e-4, A
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    records += [("sat.logits", sl.numpy()), ("sat.targets", st.numpy()),
                ("sat.loss_mask", sm.numpy()), ("sat.loss", np.array([loss.item()])),
                ("sat.dlogits", x.grad.float().numpy()), ("sat.A", A.numpy())]

    # The reward model's head: per-row rewards r (pair layout), margins; the loss from the
    # formula (TRL RewardTrainer.compute_loss), dL/dr by autograd.
    scores = (torch.randn(B, generator=gen) * 1.5).float()
    mp = (torch.rand(P, generator=gen) * 1.0).float()
    margins = torch.cat([mp, mp])
    rcfgs, rlosses, rmetrics, rgrads = [], [], [], []
    for name, coef, use_m in REWARD_VARIANTS:
        r = scores.double().requires_grad_(True)
        rc, rr = r[:P], r[P:]
        mg = margins[:P].double() if use_m else torch.zeros(P, dtype=torch.float64)
        loss = -F.logsigmoid(rc - rr - mg).mean()
        if coef:
            loss = loss + coef * torch.mean((rc + rr) ** 2)
        loss.backward()
        m = {"loss": loss.item(), "rewards/chosen": rc.mean().item(),
             "rewards/rejected": rr.mean().item(), "rewards/margins": (rc - rr).mean().item(),
             "accuracy": (rc > rr).double().mean().item()}
        rcfgs.append([coef, 1.0 if use_m else 0.0])
        rlosses.append(loss.item())
        rmetrics.append([m.get(k, float("nan")) for k in METRICS])
        rgrads.append(r.grad.float().numpy())
    assert 0 < rmetrics[0][METRICS.index("accuracy")] < 1, "want both right and wrong pairs"
    records += [("reward.scores", scores.numpy()), ("reward.margins", margins.numpy()),
                ("reward.cfgs", np.array(rcfgs)), ("reward.losses", np.array(rlosses)),
                ("reward.metrics", np.array(rmetrics)), ("reward.dscores", np.array(rgrads))]

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_ref(a.out, records)
    print(f"ref_objectives: wrote {a.out}: {len(VARIANTS)} variants, "
          f"losses {', '.join(f'{v[0]}={l:.5f}' for v, l in zip(VARIANTS, losses))}")


if __name__ == "__main__":
    main()
