#!/usr/bin/env python3
"""ref_iwsi.py — independent reference of `curate vote` and `curate dsweight` (IWSI, Jiang et
al., AAAI 2025, arXiv 2408.09849) for tests/cli/iwsi.sh. Written from the documented rules
(the authors' filter_data.py / record_weights.py), not from the C code.

Commands:
  vote --in SAMPLED.jsonl --out REF.jsonl [--regex RE]
      Per prompt with an answer: {"majority", "majority_count", "parsed", "vote_entropy",
      "answers": [...], "consistent": [...], "correct": [...] | null}. Answer = the first
      group of the last match (Python re; the default regex is written the same way),
      blanks trimmed, commas removed, numbers in shortest round-trip form. Majority: the
      most frequent answer, ties to the one seen first (a dict in insertion order scanned
      with a strict >, as filter_data.py does).
  ds --voted VOTED.jsonl --lp LP.jsonl --valid-lp VLP.jsonl --keep K [--scope full|response]
     --out REF.jsonl
      LP / VLP: tools/ref_score.py logprob outputs (PyTorch float64) for the voted file's
      responses and the valid rows. l = -logprob_full_mean (full) or -logprob_mean;
      L_v = mean l over the valid rows; w = min(2, max(0, L_v / l)) (0 when l or L_v is 0);
      DS = w if w > 1 else min(1 / w, 5); among consistent samples with w > 0, sorted DS
      d, threshold d[int(len(d) * K)], kept iff DS < threshold (K = 1: all).
      One object per response {"loss", "iw", "ds", "weight"}.
  compare OUT.jsonl REF.jsonl --tol T
      OUT: curate dsweight --all rows; every loss / iw / ds within T (relative above 1),
      weight exactly. Exit 1 on a difference.
"""
import argparse
import json
import math
import re
import sys

DEFAULT_RE = r"[Tt]he answer is[ \t\n\r\f\v]*\$?(-?[0-9][0-9,]*(\.[0-9]+)?)"


def canonical(s):
    s = s.strip().replace(",", "")
    if not s:
        return None
    try:
        v = float(s)
        if math.isfinite(v) and not s[0].isspace():
            if v == 0:
                v = 0.0
            t = "%.15g" % v
            return t if float(t) == v else "%.17g" % v
    except ValueError:
        pass
    return s


def extract(rx, text):
    last = None
    for m in rx.finditer(text):
        last = m
    return canonical(last.group(1)) if last and last.group(1) is not None else None


def cmd_vote(a):
    rx = re.compile(a.regex or DEFAULT_RE)
    with open(a.inp, encoding="utf-8") as f, open(a.out, "w") as o:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            ans = [extract(rx, r["text"]) for r in row["responses"]]
            stat = {}
            for x in ans:
                if x is not None:
                    stat[x] = stat.get(x, 0) + 1
            if not stat:
                continue
            best, best_n = None, 0
            for k, v in stat.items():
                if v > best_n:
                    best, best_n = k, v
            n = sum(stat.values())
            h = -sum(v / n * math.log(v / n) for v in stat.values())
            gold = canonical(str(row["answer"])) if "answer" in row else None
            o.write(json.dumps({
                "majority": best, "majority_count": best_n, "parsed": n, "vote_entropy": h,
                "answers": ans, "consistent": [x == best for x in ans],
                "correct": [x is not None and x == gold for x in ans] if "answer" in row else None,
            }) + "\n")


def cmd_ds(a):
    def loss(x):
        return -(x["logprob_full_mean"] if a.scope == "full" else x["logprob_mean"])
    vl = [loss(json.loads(l)) for l in open(a.valid_lp) if l.strip()]
    lv = sum(vl) / len(vl)
    lp = [json.loads(l) for l in open(a.lp) if l.strip()]
    cons = []
    for line in open(a.voted, encoding="utf-8"):
        if line.strip():
            cons += [r["consistent"] for r in json.loads(line)["responses"]]
    assert len(cons) == len(lp), (len(cons), len(lp))
    out = []
    for x, c in zip(lp, cons):
        l = loss(x)
        w = min(2.0, max(0.0, lv / l)) if (l > 0 and lv > 0) else 0.0
        ds = w if w > 1 else (min(1 / w, 5.0) if w > 0 else 5.0)
        out.append({"loss": l, "iw": w, "ds": ds, "c": c})
    d = sorted(r["ds"] for r in out if r["c"] and r["iw"] > 0)
    th = math.inf if a.keep >= 1 or not d else d[int(len(d) * a.keep)]
    with open(a.out, "w") as o:
        for r in out:
            keep = r["c"] and r["iw"] > 0 and r["ds"] < th
            o.write(json.dumps({"loss": r["loss"], "iw": r["iw"], "ds": r["ds"],
                                "weight": 1 if keep else 0}) + "\n")


def cmd_compare(a):
    got = [json.loads(l) for l in open(a.a) if l.strip()]
    ref = [json.loads(l) for l in open(a.b) if l.strip()]
    if len(got) != len(ref):
        sys.exit(f"{len(got)} rows vs {len(ref)} reference rows")
    worst = 0.0
    for i, (g, r) in enumerate(zip(got, ref)):
        for k in ("loss", "iw", "ds"):
            d = abs(g[k] - r[k]) / max(1.0, abs(r[k]))
            worst = max(worst, d)
            if d > a.tol:
                sys.exit(f"row {i}: {k} {g[k]} vs reference {r[k]}")
        if g["weight"] != r["weight"]:
            sys.exit(f"row {i}: weight {g['weight']} vs reference {r['weight']} (ds {r['ds']})")
    print(f"{len(got)} rows agree (largest difference {worst:.2e})")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("vote")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--regex")
    p = sub.add_parser("ds")
    p.add_argument("--voted", required=True)
    p.add_argument("--lp", required=True)
    p.add_argument("--valid-lp", required=True)
    p.add_argument("--keep", type=float, required=True)
    p.add_argument("--scope", choices=["full", "response"], default="full")
    p.add_argument("--out", required=True)
    p = sub.add_parser("compare")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--tol", type=float, default=0.0)
    a = ap.parse_args()
    {"vote": cmd_vote, "ds": cmd_ds, "compare": cmd_compare}[a.cmd](a)


if __name__ == "__main__":
    main()
