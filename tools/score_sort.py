#!/usr/bin/env python3
"""score_sort.py — the "sort 6 digits" task's reward (tools/gen_prs_task.py) as a tinyalign
scorer program: `tinyalign prs --scorer "cmd:python3 tools/score_sort.py"`.

Reads one request per line on stdin, {"prompt": ..., "response": ..., "preference": ...,
<row fields>}, and prints one answer per line, in order:
    {"score": fraction of positions right - 0.1 per format violation, "correct": bool}
--critic: also "feedback": the rule critic's text ("ok", "order", "format", "wrong 2 5"),
for `tinyalign prs --feedback "cmd:python3 tools/score_sort.py --critic"`.
--count FILE: appends one line to FILE per call (tests count the calls).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_prs_task import critique, score  # noqa: E402


def main():
    args = sys.argv[1:]
    critic = "--critic" in args
    if "--count" in args:
        with open(args[args.index("--count") + 1], "a") as f:
            f.write("call\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        r = json.loads(line)
        s, ok = score(r["prompt"], r["preference"], r["response"])
        out = {"score": round(s, 6), "correct": ok}
        if critic:
            out["feedback"] = critique(r["prompt"], r["preference"], r["response"])
        print(json.dumps(out))


if __name__ == "__main__":
    main()
