#!/usr/bin/env python3
"""ref_anchors.py — an independent reimplementation of `tinyalign curate anchors`
(AnchorAlign pairs, Villa-Arenas et al. 2024, arXiv 2410.13216) from the rules as the README
and include/tinyalign/curate.h state them, for tests/cli/anchors.sh:

  category   CC: every sample correct; CI: none; V: mixed.
  picks      highest / lowest judge score, the earliest in the file on ties; random = the
             candidates in file order, index rng.below(len) from the prompt's own stream
             (seed + 0x9E3779B97F4A7C15 * (i + 1), splitmix64-seeded xoshiro256**).
  anchor     CC: highest vs lowest (none when all scores are equal); V: highest correct vs
             pick(--v-rejected) incorrect; CI: highest kept anchor vs pick(--ci-rejected)
             incorrect (none without a kept anchor or with --ci skip).
  judge-only highest vs lowest for every prompt (none when all equal).
  correctness-only  V only: random correct (drawn first) vs random incorrect.
  anchors    matched by "prompt"; kept when score >= --anchor-min-score and correct (or
             --anchor-any-label); a prompt's anchors keep the file order.
  a pair with identical chosen and rejected texts is dropped.

  ref_anchors.py --in F --out O [--anchors A --anchor-min-score S] [--anchor-any-label]
                 [--rules anchor|judge-only|correctness-only] [--v-rejected P] [--ci anchor|skip]
                 [--ci-rejected P] [--seed S]
Writes the pairs as JSON lines with the same keys as the C command (compare them with
`ref_curate.py compare`, which checks structure and numbers, not key order) and prints the
category counts as one JSON object on stdout.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_curate import Rng, prompt_seed  # noqa: E402  (the shared RNG replay)

CATS = ("CC", "V", "CI")


def pick(cands, scores, how, rng):
    """cands: indices in file order."""
    if not cands:
        return None
    if how == "random":
        return cands[rng.below(len(cands))]
    if how == "highest":
        best = max(scores[c] for c in cands)
    else:
        best = min(scores[c] for c in cands)
    return next(c for c in cands if scores[c] == best)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--anchors")
    ap.add_argument("--anchor-min-score", type=float)
    ap.add_argument("--anchor-any-label", action="store_true")
    ap.add_argument("--rules", default="anchor")
    ap.add_argument("--v-rejected", default="highest")
    ap.add_argument("--ci", default="anchor")
    ap.add_argument("--ci-rejected", default="highest")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    anchors = {}
    if a.anchors and a.rules == "anchor" and a.ci == "anchor":
        for line in open(a.anchors, encoding="utf-8"):
            if not line.strip():
                continue
            row = json.loads(line)
            for r in row["responses"]:
                if r["score"] >= a.anchor_min_score and (r["correct"] or a.anchor_any_label):
                    anchors.setdefault(row["prompt"], []).append(r)

    rows = [json.loads(line) for line in open(a.inp, encoding="utf-8") if line.strip()]
    out, counts, pairs = [], dict.fromkeys(CATS, 0), dict.fromkeys(CATS, 0)
    ours = ("prompt", "chosen", "rejected", "weight", "chosen_score", "rejected_score",
            "category", "chosen_correct", "rejected_correct", "chosen_from", "responses")
    for i, row in enumerate(rows):
        rs = row["responses"]
        sc = [r["score"] for r in rs]
        ok = [r["correct"] for r in rs]
        cor = [j for j in range(len(rs)) if ok[j]]
        inc = [j for j in range(len(rs)) if not ok[j]]
        cat = "CC" if not inc else "CI" if not cor else "V"
        counts[cat] += 1
        rng = Rng(prompt_seed(a.seed, i))
        allj = list(range(len(rs)))
        chosen = None  # (text, score, correct, from)
        rej = None
        if a.rules == "judge-only" or (a.rules == "anchor" and cat == "CC"):
            c, r = pick(allj, sc, "highest", rng), pick(allj, sc, "lowest", rng)
            if sc[c] != sc[r]:
                chosen, rej = (rs[c]["text"], sc[c], ok[c], "sample"), r
        elif a.rules == "correctness-only":
            if cat == "V":
                c = pick(cor, sc, "random", rng)
                r = pick(inc, sc, "random", rng)
                chosen, rej = (rs[c]["text"], sc[c], ok[c], "sample"), r
        elif cat == "V":
            c = pick(cor, sc, "highest", rng)
            r = pick(inc, sc, a.v_rejected, rng)
            chosen, rej = (rs[c]["text"], sc[c], ok[c], "sample"), r
        elif a.ci == "anchor" and anchors.get(row["prompt"]):
            an = anchors[row["prompt"]]
            asc = [x["score"] for x in an]
            k = pick(list(range(len(an))), asc, "highest", rng)
            r = pick(inc, sc, a.ci_rejected, rng)
            chosen, rej = (an[k]["text"], asc[k], an[k]["correct"], "anchor"), r
        if chosen is None or chosen[0] == rs[rej]["text"]:
            continue
        pairs[cat] += 1
        o = {"prompt": row["prompt"], "chosen": chosen[0], "rejected": rs[rej]["text"],
             "chosen_score": chosen[1], "rejected_score": sc[rej], "category": cat,
             "chosen_correct": chosen[2], "rejected_correct": ok[rej], "chosen_from": chosen[3]}
        for k, v in row.items():
            if k not in ours:
                o[k] = v
        out.append(o)
    with open(a.out, "w", encoding="utf-8") as f:
        for o in out:
            f.write(json.dumps(o) + "\n")
    print(json.dumps({"categories": counts, "pairs": pairs}))


if __name__ == "__main__":
    main()
