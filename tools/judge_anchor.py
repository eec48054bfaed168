#!/usr/bin/env python3
"""judge_anchor.py — the programmatic judge of the AnchorAlign reproduction task
(tools/gen_anchor_task.py), a `tinyalign score --scorer "cmd:python3 tools/judge_anchor.py"`
program: one JSON request per line on stdin ({"prompt", "response", "label", ...}), one JSON
result per line on stdout. The operands come from the prompt ("is A+B>=100?", also after a
"hint ..." prefix), the gold label from the row's "label" field.

Five criteria, one point each (score 0-5), standing in for the paper's judge criteria:
  sum_ok        factual accuracy: the response states A+B=C with the prompt's A, B and C = A+B
  consistent    coherence: it states a sum C and a label, and the label is what C implies
  property      relevance: it states the deciding property "C>=100" / "C<100" for its own C,
                and that comparison is true
  clean         clarity: the response is exactly "A+B=C; C>=100|<100; LABEL: yes|no", no more
  intermediate  depth: it states an intermediate result ("X+Y=Z", any numbers)
correct = the response's label ("LABEL: yes|no", the first one) equals the gold label; a
response without a label (unparseable) is incorrect.
"""
import json
import re
import sys

PROMPT = re.compile(r"is (\d+)\+(\d+)>=100\?")
SUM = re.compile(r"(\d+)\+(\d+)=(\d+)")
PROP = re.compile(r"(\d+)(>=|<)100")
LABEL = re.compile(r"LABEL: (yes|no)")
CLEAN = re.compile(r"\d+\+\d+=\d+; \d+(>=|<)100; LABEL: (yes|no)")


def judge(prompt, response, gold):
    m = PROMPT.search(prompt)
    a, b = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    r = response.strip()
    s = SUM.search(r)
    lab = LABEL.search(r)
    label = lab.group(1) if lab else None
    c = int(s.group(3)) if s else None
    sum_ok = bool(s) and a is not None and int(s.group(1)) == a and int(s.group(2)) == b \
        and c == a + b
    consistent = c is not None and label is not None and (c >= 100) == (label == "yes")
    p = PROP.search(r)
    prop = bool(p) and c is not None and int(p.group(1)) == c \
        and ((c >= 100) if p.group(2) == ">=" else (c < 100))
    clean = bool(CLEAN.fullmatch(r))
    crit = {"sum_ok": sum_ok, "consistent": consistent, "property": prop, "clean": clean,
            "intermediate": bool(s)}
    out = {"score": float(sum(crit.values())), "correct": label == gold,
           "parsed": label is not None}
    out.update(crit)
    return out


def main():
    for line in sys.stdin:
        req = json.loads(line)
        print(json.dumps(judge(req["prompt"], req["response"], req.get("label"))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
