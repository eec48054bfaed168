#!/usr/bin/env python3
"""gen_prs_task.py — the "sort 6 digits" task with an <asc>/<desc> preference, for the PRS
reproduction (tools/repro_prs.sh) and tests/cli/prs.sh. The preference changes what is
correct, as in the small-scale plan for PRS (Ye & Ng 2024, arXiv 2408.12163).

    prompt      "sort 3 9 1 4 7 2"          six distinct digits
    preference  "<asc>" | "<desc>"          (a row field: the query is "{prompt} {preference}")
    correct     "1 2 3 4 7 9"  /  "9 7 4 3 2 1"

Reward (score(), also tools/score_sort.py): the fraction of the 6 positions right, minus 0.1
per format violation (a token that is not one digit, each missing or extra token):
in [-inf, 1]; "correct" = the response is exactly the answer.

Rule critic (critique()): "ok" (correct), "order" (the right digits in the other direction),
"format" (not 6 digits), else "wrong" + the 1-based wrong positions ("wrong 2 5").

SFT data for the start policy (sft.jsonl), a MIX so that sampling has something to find:
  direct      "sort ... <asc>" -> a noisy answer (a "draft"): correct 30% (--p-correct),
              else equally often the wrong direction, one adjacent swap, two random swaps,
              or one digit replaced by a digit not in the prompt
  feedback    "{q} DRAFT {y0} FEEDBACK" -> critique(y0)   (y0 a noisy answer)
  revision    "{q} DRAFT {y0} FEEDBACK {f} REVISED" -> y1  (with feedback) and
              "{q} DRAFT {y0} REVISED" -> y1               (without: the ablation's format)
              y1 = the correct answer 75%, else a noisy answer (revisions are not perfect)
The templates these formats use are written to query.txt, feedback.txt, revise.txt,
revise_nofb.txt (for `tinyalign prs --*-template`).

Prompt files {"prompt", "preference", "answer"}: test.jsonl (best-of-N and greedy accuracy),
rest.jsonl (the ReST loop's prompts); no (prompt, preference) of them is in sft.jsonl.
tok_corpus.txt: text for the tokenizer. Deterministic for a given --seed and sizes.
"""
import argparse
import json
import os
import random

DIGITS = "0123456789"


def answer(prompt, pref):
    d = prompt.split()[1:]
    return " ".join(sorted(d, reverse=(pref == "<desc>")))


def score(prompt, pref, response):
    want = answer(prompt, pref).split()
    got = response.split()
    viol = sum(1 for t in got if len(t) != 1 or t not in DIGITS) + abs(len(got) - len(want))
    right = sum(1 for a, b in zip(want, got) if a == b)
    return right / len(want) - 0.1 * viol, got == want


def critique(prompt, pref, response):
    want = answer(prompt, pref).split()
    got = response.split()
    if got == want:
        return "ok"
    if len(got) != len(want) or any(len(t) != 1 or t not in DIGITS for t in got):
        return "format"
    if got == want[::-1]:
        return "order"
    return "wrong " + " ".join(str(i + 1) for i, (a, b) in enumerate(zip(want, got)) if a != b)


def noisy(r, prompt, pref, p_correct=0.3):
    """A draft: correct with probability p_correct, else (equally often) the wrong direction,
    one adjacent swap, two random swaps, or one digit replaced by one not in the prompt."""
    want = answer(prompt, pref).split()
    u = r.random()
    if u < p_correct:
        return " ".join(want)
    k = int((u - p_correct) / (1 - p_correct) * 4)
    y = list(want)
    if k == 0:
        y = y[::-1]
    elif k == 1:
        i = r.randrange(5)
        y[i], y[i + 1] = y[i + 1], y[i]
    elif k == 2:
        for _ in range(2):
            i, j = r.sample(range(6), 2)
            y[i], y[j] = y[j], y[i]
        if y == want:
            y[0], y[5] = y[5], y[0]
    else:
        unused = [c for c in DIGITS if c not in want]
        y[r.randrange(6)] = r.choice(unused)
    return " ".join(y)


def draw(r):
    return "sort " + " ".join(r.sample(DIGITS, 6)), r.choice(["<asc>", "<desc>"])


QUERY = "{prompt} {preference}"
FEEDBACK = "{question} DRAFT {answer} FEEDBACK"
REVISE = "{question} DRAFT {answer} FEEDBACK {feedback} REVISED"
REVISE_NOFB = "{question} DRAFT {answer} REVISED"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--direct", type=int, default=3000)
    ap.add_argument("--feedback", type=int, default=1000)
    ap.add_argument("--revise", type=int, default=2000)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--rest", type=int, default=1000)
    ap.add_argument("--p-correct", type=float, default=0.3)
    a = ap.parse_args()
    r = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    held = set()
    test, rest = [], []
    for lst, n in ((test, a.test), (rest, a.rest)):
        while len(lst) < n:
            p = draw(r)
            if p in held:
                continue
            held.add(p)
            lst.append({"prompt": p[0], "preference": p[1], "answer": answer(*p)})
    sft = []

    def fresh():
        while True:
            p = draw(r)
            if p not in held:
                return p
    for _ in range(a.direct):
        p, z = fresh()
        sft.append({"prompt": QUERY.format(prompt=p, preference=z), "completion": noisy(r, p, z, a.p_correct)})
    for _ in range(a.feedback):
        p, z = fresh()
        q, y0 = QUERY.format(prompt=p, preference=z), noisy(r, p, z, a.p_correct)
        sft.append({"prompt": FEEDBACK.format(question=q, answer=y0), "completion": critique(p, z, y0)})
    for k in range(a.revise):
        p, z = fresh()
        q, y0 = QUERY.format(prompt=p, preference=z), noisy(r, p, z, a.p_correct)
        y1 = answer(p, z) if r.random() < 0.75 else noisy(r, p, z, a.p_correct)
        t = REVISE if k % 2 == 0 else REVISE_NOFB
        sft.append({"prompt": t.format(question=q, answer=y0, feedback=critique(p, z, y0)),
                    "completion": y1})
    r.shuffle(sft)

    def dump(name, rows):
        with open(os.path.join(a.out, name), "w") as f:
            for x in rows:
                f.write(json.dumps(x) + "\n")
    dump("sft.jsonl", sft)
    dump("test.jsonl", test)
    dump("rest.jsonl", rest)
    for name, t in (("query.txt", QUERY), ("feedback.txt", FEEDBACK), ("revise.txt", REVISE),
                    ("revise_nofb.txt", REVISE_NOFB)):
        with open(os.path.join(a.out, name), "w") as f:
            f.write(t + "\n")
    with open(os.path.join(a.out, "tok_corpus.txt"), "w") as f:
        for x in sft:
            f.write(x["prompt"] + " " + x["completion"] + "\n")
    print(f"{a.out}: sft {len(sft)}, test {len(test)}, rest {len(rest)}")


if __name__ == "__main__":
    main()
