#!/usr/bin/env python3
"""gen_anchor_task.py — the checkable classification-with-explanation task of the AnchorAlign
reproduction (Villa-Arenas et al. 2024, arXiv 2410.13216, at small scale): "is a+b>=100?"
for two-digit a, b, answered with a self-explanation and a label,

    prompt   explain is 37+68>=100?
    output   37+68=105; 105>=100; LABEL: yes

and, label only (the classifier fine-tuning that degrades the explanations),

    prompt   answer is 37+68>=100?
    output   LABEL: yes

Writes into --out DIR (every (a, b) is in exactly one split):
  explain.jsonl  stage-0 SFT rows {"prompt", "completion"}: explanations + label; a share
                 (--hint-frac) of them with the gold label given first ("hint yes.
                 explain is 37+68>=100?"), so the model learns to rationalise a given label: the
                 anchors are sampled with that template later
  label.jsonl    stage-1 SFT rows, label only: {"prompt": "answer is ...", "completion":
                 "LABEL: yes"}
  train.jsonl    the labelled training prompts K samples are drawn for: {"prompt": "explain
                 is ...", "label", "a", "b"} (the label-only rows' (a, b), the first --pool)
  test.jsonl     held-out prompts, same fields
  tok.txt        tokenizer training text
The judge is tools/judge_anchor.py.
"""
import argparse
import json
import os
import random


def explain(a, b):
    c = a + b
    return f"{a}+{b}={c}; {c}{'>=' if c >= 100 else '<'}100; LABEL: {'yes' if c >= 100 else 'no'}"


def prompt(a, b, kind="explain"):
    """kind explain: answer with an explanation and the label; answer: the label only."""
    return f"{kind} is {a}+{b}>=100?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--explain", type=int, default=1200, help="stage-0 explanation rows")
    ap.add_argument("--label", type=int, default=1200, help="stage-1 label-only rows")
    ap.add_argument("--pool", type=int, default=400, help="training prompts to sample K for")
    ap.add_argument("--test", type=int, default=300, help="held-out prompts")
    ap.add_argument("--hint-frac", type=float, default=0.25)
    ap.add_argument("--near", type=int, default=20,
                    help="only (a, b) with |a+b-100| < NEAR: labels that hinge on the exact sum")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    pairs = [(x, y) for x in range(10, 100) for y in range(10, 100) if abs(x + y - 100) < a.near]
    rng.shuffle(pairs)
    need = a.explain + a.label + a.test
    if need > len(pairs):
        raise SystemExit(f"gen_anchor_task.py: {need} rows asked, {len(pairs)} (a, b) exist")
    ex = pairs[:a.explain]
    lab = pairs[a.explain:a.explain + a.label]
    test = pairs[a.explain + a.label:need]
    os.makedirs(a.out, exist_ok=True)

    def lbl(x, y):
        return "yes" if x + y >= 100 else "no"

    def write(name, rows):
        with open(os.path.join(a.out, name), "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    exp_rows = []
    for x, y in ex:
        p = prompt(x, y)
        if rng.random() < a.hint_frac:
            p = f"hint {lbl(x, y)}. {p}"
        exp_rows.append({"prompt": p, "completion": explain(x, y)})
    write("explain.jsonl", exp_rows)
    write("label.jsonl", [{"prompt": prompt(x, y, "answer"), "completion": f"LABEL: {lbl(x, y)}"}
                          for x, y in lab])
    write("train.jsonl", [{"prompt": prompt(x, y), "label": lbl(x, y), "a": x, "b": y}
                          for x, y in lab[:a.pool]])
    write("test.jsonl", [{"prompt": prompt(x, y), "label": lbl(x, y), "a": x, "b": y}
                         for x, y in test])
    with open(os.path.join(a.out, "tok.txt"), "w") as f:
        for r in exp_rows:
            f.write(r["prompt"] + "\n" + r["completion"] + "\n")
        f.write("answer\n")
    yes = sum(1 for x, y in test if x + y >= 100)
    print(f"explain {len(ex)}, label {len(lab)}, pool {min(a.pool, len(lab))}, test {len(test)} "
          f"({yes / max(1, len(test)):.2f} yes)")


if __name__ == "__main__":
    main()
