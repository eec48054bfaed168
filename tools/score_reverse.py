#!/usr/bin/env python3
"""score_reverse.py — the "reverse the word" task's checker as a tinyalign scorer program
(tools/gen_pref_task.py makes the task): `tinyalign score --scorer "cmd:python3
tools/score_reverse.py"`, or train.eval_generate.scorer.

Reads one request per line on stdin, {"prompt": ..., "response": ..., <row fields>}, and
prints one answer per line, in order:
    {"score": 1.0 | 0.0, "correct": bool, "verdict": "correct" | "copy" | "swap" | "other"}
The verdict comes from the prompt alone (gen_pref_task.score: the word is in the prompt), so
rows need no gold field; when a row has an "answer" field, "matches_answer" says whether the
response equals it after whitespace normalisation.
--partial: score = the fraction of the reversal's positions the response gets right (its
letters compared position by position, divided by the longer length): partial credit.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_pref_task import reverse, score, word_of_prompt  # noqa: E402


def partial(prompt, response):
    word = word_of_prompt(prompt)
    if word is None:
        return 0.0
    want, got = reverse(word), response.split()
    return sum(a == b for a, b in zip(want, got)) / max(len(want), len(got))


def main():
    partial_credit = "--partial" in sys.argv[1:]
    for line in sys.stdin:
        if not line.strip():
            continue
        r = json.loads(line)
        verdict = score(r["prompt"], r["response"])
        s = partial(r["prompt"], r["response"]) if partial_credit else float(verdict == "correct")
        out = {"score": s, "correct": verdict == "correct", "verdict": verdict}
        if isinstance(r.get("answer"), str):
            out["matches_answer"] = r["response"].split() == r["answer"].split()
        print(json.dumps(out))


if __name__ == "__main__":
    main()
