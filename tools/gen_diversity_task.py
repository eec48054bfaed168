#!/usr/bin/env python3
"""gen_diversity_task.py — the synthetic diversity task of SEEDS.md 2.9 (steps 1-2): "emit a
3-digit number whose digit sum is S", a task with many valid answers, a checkable validity
and two surface formats, written as multi-response JSONL for the curate commands:

  {"prompt": "Emit a 3-digit number whose digit sum is 12.", "sum": 12,
   "responses": [{"text": "ans 381.", "score": 14, "valid": true, "rank": 3,
                  "embedding": [...40 floats...], "style_embedding": [...3 floats...]}, ...]}

Per prompt (SEEDS 2.9 step 1):
  * --responses (12) "human" responses; each is invalid with probability --invalid (0.25):
    a 3-digit number whose digit sum is not S; otherwise a valid answer drawn from a Zipf
    distribution (exponent --zipf, 1.1) over that S's valid set in a fixed popularity order
    (a seeded permutation per S), so a few popular answers dominate;
  * surface format "N" or "ans N." (probability --format-p of the second, 0.5);
  * score = upvotes = round(max(0, 10*valid + 2*bonus + noise)), bonus = max(0, 5 - rank)
    for valid answers of popularity rank 0..4 (0 otherwise), noise ~ N(0, --noise = 2):
    popularity-biased voting that rewards the popular modes.
Embeddings (SEEDS 2.9 step 2, no external model):
  * "embedding" (semantic, 40-d): the digit histogram / 3 (10-d) followed by the positional
    one-hot of the three digits (30-d), L2-normalised — formats do not change it;
  * "style_embedding" (3-d): format one-hot (2-d) + character length / 10.
Held-out prompts (--holdout-mode):
  * sums (default): prompts use --sums (default 5-20) minus --holdout (default 8,15),
    --prompts-per-sum (10) each, phrased with four templates; the held-out prompts are the
    held-out sums in every template (4 per sum). A tiny model does not generalise digit
    sums to unseen S (its validity there is at chance), so the reproduction
    (tools/repro_ddpo.sh) uses:
  * templates: every sum is trained, but sum S never with template S mod 4 (the other
    three templates cycle); the held-out prompts are these unseen (sum, template)
    combinations, one per sum. --holdout is ignored.
--test-out writes the held-out prompts as {"prompt", "sum"} lines for sampling and
evaluation; --gold-out writes --gold-n (16) fresh "human" responses to each of them (the
same process as the training data; the "Gold" row of the evaluation).

Usage: tools/gen_diversity_task.py --out data/diversity/train.jsonl
           [--test-out data/diversity/test.jsonl] [--gold-out FILE] [--seed 0]
           [--holdout-mode sums|templates] [options]
"""
import argparse
import json
import math
import random

TEMPLATES = [
    "Emit a 3-digit number whose digit sum is {s}.",
    "Give a three-digit number with digit sum {s}.",
    "Write a 3-digit number; its digits must add up to {s}.",
    "Name a number from 100 to 999 whose digits sum to {s}.",
]


def digit_sum(n):
    return sum(int(c) for c in str(n))


def valid_set(s):
    return [n for n in range(100, 1000) if digit_sum(n) == s]


def semantic_embedding(n):
    d = [int(c) for c in f"{n:03d}"]
    hist = [0.0] * 10
    for x in d:
        hist[x] += 1.0 / 3.0
    pos = [0.0] * 30
    for i, x in enumerate(d):
        pos[10 * i + x] = 1.0
    v = hist + pos
    norm = math.sqrt(sum(x * x for x in v))
    return [round(x / norm, 6) for x in v]


def style_embedding(text, fmt):
    return [1.0 if fmt == 0 else 0.0, 1.0 if fmt == 1 else 0.0, round(len(text) / 10.0, 6)]


def parse_sums(spec):
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def zipf_pick(rng, k, a):
    w = [1.0 / (r + 1) ** a for r in range(k)]
    return rng.choices(range(k), weights=w)[0]


def human_response(rng, s, popular, a):
    """One synthetic "human" response to a prompt with digit sum s (SEEDS 2.9 step 1)."""
    if rng.random() < a.invalid:
        while True:
            n = rng.randint(100, 999)
            if digit_sum(n) != s:
                break
        valid, rank = False, -1
    else:
        rank = zipf_pick(rng, len(popular[s]), a.zipf)
        n, valid = popular[s][rank], True
    fmt = 1 if rng.random() < a.format_p else 0
    text = f"ans {n}." if fmt else str(n)
    bonus = max(0, 5 - rank) if valid else 0
    score = round(max(0.0, 10 * valid + 2 * bonus + rng.gauss(0, a.noise)))
    return {"text": text, "score": score, "valid": valid, "rank": rank,
            "embedding": semantic_embedding(n), "style_embedding": style_embedding(text, fmt)}


def heldout_template(s):
    """--holdout-mode templates: the template never shown with digit sum s in training."""
    return s % len(TEMPLATES)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--test-out")
    ap.add_argument("--gold-out")
    ap.add_argument("--gold-n", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sums", default="5-20")
    ap.add_argument("--holdout", default="8,15")
    ap.add_argument("--holdout-mode", choices=["sums", "templates"], default="sums")
    ap.add_argument("--prompts-per-sum", type=int, default=10)
    ap.add_argument("--responses", type=int, default=12)
    ap.add_argument("--invalid", type=float, default=0.25)
    ap.add_argument("--zipf", type=float, default=1.1)
    ap.add_argument("--format-p", type=float, default=0.5)
    ap.add_argument("--noise", type=float, default=2.0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    sums = parse_sums(a.sums)
    by_template = a.holdout_mode == "templates"
    hold = set() if by_template else set(parse_sums(a.holdout))
    for s in sums:
        if not valid_set(s):
            raise SystemExit(f"no 3-digit number has digit sum {s}")
    train_sums = [s for s in sums if s not in hold]
    # popularity order per S: a seeded permutation of the valid set
    popular = {}
    for s in sums:
        v = valid_set(s)
        random.Random(1000 * a.seed + s).shuffle(v)
        popular[s] = v
    lines = 0
    with open(a.out, "w", encoding="utf-8") as f:
        for rep in range(a.prompts_per_sum):
            for s in train_sums:
                if by_template:
                    seen = [t for t in range(len(TEMPLATES)) if t != heldout_template(s)]
                    tpl = TEMPLATES[seen[rep % len(seen)]]
                else:
                    tpl = TEMPLATES[rep % len(TEMPLATES)]
                prompt = tpl.format(s=s)
                resps = [human_response(rng, s, popular, a) for _ in range(a.responses)]
                f.write(json.dumps({"prompt": prompt, "sum": s, "responses": resps}) + "\n")
                lines += 1
    what = ("one template per sum held out" if by_template else f"held out {sorted(hold)}")
    print(f"wrote {lines} prompts x {a.responses} responses to {a.out} "
          f"(sums {train_sums[0]}..{train_sums[-1]}, {what})")
    # the held-out prompts: (sum, template) combinations never seen in training
    if by_template:
        test = [(s, TEMPLATES[heldout_template(s)].format(s=s)) for s in sums]
    else:
        test = [(s, t.format(s=s)) for s in sorted(hold) for t in TEMPLATES]
    if a.test_out:
        with open(a.test_out, "w", encoding="utf-8") as f:
            for s, p in test:
                f.write(json.dumps({"prompt": p, "sum": s}) + "\n")
        print(f"wrote {len(test)} held-out prompts to {a.test_out}")
    if a.gold_out:
        # "Gold": fresh human responses to the held-out prompts (own stream: the training
        # data do not depend on whether this file is asked for)
        grng = random.Random(f"gold-{a.seed}")
        with open(a.gold_out, "w", encoding="utf-8") as f:
            for s, p in test:
                resps = [human_response(grng, s, popular, a) for _ in range(a.gold_n)]
                f.write(json.dumps({"prompt": p, "sum": s, "responses": resps}) + "\n")
        print(f"wrote {len(test)} held-out prompts x {a.gold_n} human responses to {a.gold_out}")


if __name__ == "__main__":
    main()
