#!/usr/bin/env python3
"""check_diversity_task.py — scores outputs of the digit-sum diversity task
(tools/gen_diversity_task.py) for the DDPO / DORPO reproduction (tools/repro_ddpo.sh):
quality and diversity of each prompt's responses, with the SAME semantic and style
embeddings that gave the training pairs their deviation weights.

  score FILE.jsonl [--prompts TEST.jsonl] [--data-seed 0] [--per-prompt]
        FILE: multi-response JSONL as `tinyalign sample --n N` writes it (or the task's
        own files): {"prompt", "responses": [{"text", ...}, ...]}. The digit sum S of a
        prompt is its "sum" field, else the "sum" of the same prompt in --prompts, else
        the last integer in the prompt text. Prints one JSON object:
          prompts, responses     counted
          validity               share of responses that are a correct answer: exactly
                                 "N" or "ans N." with N in 100..999 and digit sum S
          well_formed            share in one of the two formats with N in 100..999 (any sum)
          distinct_valid         mean over prompts of the number of distinct valid
                                 numbers among the prompt's responses (a number in both
                                 formats counts once)
          distinct_valid_texts   the same counting "N" and "ans N." apart
          sem_dist, sty_dist     mean over prompts of the mean pairwise cosine distance
                                 1 - cos(e_i, e_j), i < j, over the prompt's well-formed
                                 responses, with the task's semantic (digit histogram +
                                 positional one-hot, 40-d) and style (format one-hot +
                                 length, 3-d) embeddings; prompts with < 2 well-formed
                                 responses are left out (counted in dist_prompts)
          ans_format             share of well-formed responses written "ans N."
          popular_share          share of valid responses that are one of the 5 most
                                 popular (over-voted) answers of their S in the task
                                 generated with --data-seed (default 0)
        --per-prompt adds "per_prompt": [...] with the same quantities per prompt.
  same-pairs A.jsonl B.jsonl ...
        checks that preference files hold the same (prompt, chosen, rejected) sequence
        (DPO and DDPO must train on identical pairs); prints the pair count, exit 1 if not.

stdlib + numpy only.
"""
import argparse
import json
import os
import random
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_diversity_task import (digit_sum, semantic_embedding, style_embedding,  # noqa: E402
                                valid_set)

ANSWER = re.compile(r"(?:(ans) )?([1-9][0-9]{2})(\.?)")
POPULAR_TOP = 5


def parse_answer(text):
    """(number, format) when text is exactly "N" (format 0) or "ans N." (format 1), N in
    100..999; else None."""
    m = ANSWER.fullmatch(text)
    if not m:
        return None
    has_ans, has_dot = m.group(1) is not None, m.group(3) == "."
    if has_ans != has_dot:
        return None
    return int(m.group(2)), int(has_ans)


def popular_answers(s, data_seed):
    v = valid_set(s)
    random.Random(1000 * data_seed + s).shuffle(v)  # the generator's popularity order
    return set(v[:POPULAR_TOP])


def mean_pairwise_distance(vectors):
    e = np.asarray(vectors, dtype=np.float64)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    c = e @ e.T
    n = len(e)
    iu = np.triu_indices(n, 1)
    return float(np.mean(1.0 - c[iu]))


def score_prompt(s, texts, data_seed):
    parsed = [parse_answer(t) for t in texts]
    wf = [(t, p) for t, p in zip(texts, parsed) if p is not None]
    valid = [p for _, p in wf if digit_sum(p[0]) == s]
    out = {"sum": s, "responses": len(texts), "valid": len(valid), "well_formed": len(wf),
           "distinct_valid": len({n for n, _ in valid}),
           "distinct_valid_texts": len(set(valid)),
           "ans_format": sum(f for _, (_, f) in wf),
           "popular": sum(n in popular_answers(s, data_seed) for n, _ in valid)}
    if len(wf) >= 2:
        out["sem_dist"] = mean_pairwise_distance([semantic_embedding(n) for _, (n, _) in wf])
        out["sty_dist"] = mean_pairwise_distance([style_embedding(t, f) for t, (_, f) in wf])
    return out


def prompt_sums(path):
    sums = {}
    if path:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    sums[r["prompt"]] = int(r["sum"])
    return sums


def score_file(path, prompts=None, data_seed=0, per_prompt=False):
    known = prompt_sums(prompts)
    rows = []
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            if "sum" in r:
                s = int(r["sum"])
            elif r["prompt"] in known:
                s = known[r["prompt"]]
            else:
                ints = re.findall(r"\d+", r["prompt"])
                if not ints:
                    raise SystemExit(f"{path}:{ln}: no digit sum in the prompt")
                s = int(ints[-1])
            texts = [x["text"] if isinstance(x, dict) else x for x in r["responses"]]
            p = score_prompt(s, texts, data_seed)
            p["prompt"] = r["prompt"]
            rows.append(p)
    if not rows:
        raise SystemExit(f"{path}: no prompts")
    n = sum(p["responses"] for p in rows)
    wf = sum(p["well_formed"] for p in rows)
    nv = sum(p["valid"] for p in rows)
    dist = [p for p in rows if "sem_dist" in p]
    out = {
        "file": path, "prompts": len(rows), "responses": n,
        "validity": sum(p["valid"] for p in rows) / n,
        "well_formed": wf / n,
        "distinct_valid": float(np.mean([p["distinct_valid"] for p in rows])),
        "distinct_valid_texts": float(np.mean([p["distinct_valid_texts"] for p in rows])),
        "sem_dist": float(np.mean([p["sem_dist"] for p in dist])) if dist else 0.0,
        "sty_dist": float(np.mean([p["sty_dist"] for p in dist])) if dist else 0.0,
        "dist_prompts": len(dist),
        "ans_format": sum(p["ans_format"] for p in rows) / wf if wf else 0.0,
        "popular_share": sum(p["popular"] for p in rows) / nv if nv else 0.0,
    }
    if per_prompt:
        out["per_prompt"] = rows
    return out


def same_pairs(paths):
    seqs = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            seqs.append([(r["prompt"], r["chosen"], r["rejected"])
                         for r in map(json.loads, filter(str.strip, f))])
    for p, s in zip(paths[1:], seqs[1:]):
        if s != seqs[0]:
            print(f"{p}: pairs differ from {paths[0]}", file=sys.stderr)
            return 1
    print(len(seqs[0]))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sc = sub.add_parser("score")
    sc.add_argument("file")
    sc.add_argument("--prompts")
    sc.add_argument("--data-seed", type=int, default=0)
    sc.add_argument("--per-prompt", action="store_true")
    sp = sub.add_parser("same-pairs")
    sp.add_argument("files", nargs="+")
    a = ap.parse_args()
    if a.cmd == "score":
        print(json.dumps(score_file(a.file, a.prompts, a.data_seed, a.per_prompt)))
        return 0
    return same_pairs(a.files)


if __name__ == "__main__":
    sys.exit(main())
