#!/usr/bin/env python3
"""gen_arith_task.py — the synthetic two-step arithmetic word problems of the IWSI
reproduction (Jiang et al., AAAI 2025, arXiv 2408.09849; docs/repro_iwsi.md).

Each question is one of two templates over a in [1, 30], b, c in [2, 9]:
    add:  "<Name> has a <items>. <Pronoun> buys b bags of c. How many <items> now?"
          chain of thought  "b*c = P. a+P = N. The answer is N."
    sub:  "<Name> has b bags of c <items>. <Pronoun> gives away a. How many <items> now?"
          chain of thought  "b*c = P. P-a = N. The answer is N."   (a < b*c)
Prompts are "Q: <question> A:" and completions start with a space.

Writes into --out DIR (every file JSONL, one object per line):
    labelled.jsonl   --labelled SFT rows {"prompt", "completion"} (the weak start model's data)
    unlabelled.jsonl the --train questions but D_v's, {"prompt", "answer"}: the
                     self-improvement pool; the
                     gold "answer" rides along for the ground-truth arm and the DS-vs-correctness
                     analysis (the vote never reads it)
    valid.jsonl      --valid-frac of the --train questions (the first ones), labelled (and not
                     in the pool), as SFT rows
                     {"prompt", "completion", "answer"}: D_v of the loss model
    test.jsonl       --test questions {"prompt", "answer"}, disjoint from the others
    tok.txt          text for the tokenizer
Every question (a template, name, item and numbers) appears in at most one file.
"""
import argparse
import json
import os
import random

NAMES = [("Sam", "He"), ("Ann", "She"), ("Tom", "He"), ("Mia", "She"), ("Leo", "He"),
         ("Eva", "She")]
ITEMS = ["apples", "pens", "cards", "eggs", "nuts", "shells"]


def make(rng):
    kind = rng.choice(["add", "sub"])
    name, pron = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    b, c = rng.randint(2, 9), rng.randint(2, 9)
    p = b * c
    if kind == "add":
        a = rng.randint(1, 30)
        q = f"{name} has {a} {item}. {pron} buys {b} bags of {c}. How many {item} now?"
        n = a + p
        cot = f" {b}*{c} = {p}. {a}+{p} = {n}. The answer is {n}."
    else:
        a = rng.randint(1, min(30, p - 1))
        q = f"{name} has {b} bags of {c} {item}. {pron} gives away {a}. How many {item} now?"
        n = p - a
        cot = f" {b}*{c} = {p}. {p}-{a} = {n}. The answer is {n}."
    return f"Q: {q} A:", cot, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--labelled", type=int, default=500)
    ap.add_argument("--train", type=int, default=1200)
    ap.add_argument("--valid-frac", type=float, default=0.05)
    ap.add_argument("--test", type=int, default=500)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    seen = set()

    def fresh(n):
        out = []
        while len(out) < n:
            q = make(rng)
            if q[0] in seen:
                continue
            seen.add(q[0])
            out.append(q)
        return out

    test = fresh(a.test)
    labelled = fresh(a.labelled)
    train = fresh(a.train)
    n_valid = max(1, round(a.valid_frac * a.train))
    os.makedirs(a.out, exist_ok=True)

    def dump(name, rows):
        with open(os.path.join(a.out, name), "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    dump("labelled.jsonl", [{"prompt": p, "completion": c} for p, c, _ in labelled])
    dump("unlabelled.jsonl", [{"prompt": p, "answer": str(n)} for p, _, n in train[n_valid:]])
    dump("valid.jsonl", [{"prompt": p, "completion": c, "answer": str(n)}
                         for p, c, n in train[:n_valid]])
    dump("test.jsonl", [{"prompt": p, "answer": str(n)} for p, _, n in test])
    with open(os.path.join(a.out, "tok.txt"), "w") as f:
        for p, c, _ in labelled + train + test:
            f.write(p + c + "\n")
    print(f"labelled {len(labelled)}, unlabelled {len(train) - n_valid}, valid {n_valid}, test {len(test)}")


if __name__ == "__main__":
    main()
