#!/usr/bin/env python3
"""report_iwsi.py — the tables and figure of tools/repro_iwsi.sh (IWSI, Jiang et al., AAAI
2025, arXiv 2408.09849).

    report_iwsi.py best   --out DIR --seeds N --arms "A B ..."   prints the best of lmsi /
                          iwsi-* by mean greedy test accuracy over the seeds
    report_iwsi.py report --out DIR --seeds N --arms "A B ..."   writes DIR/report.md,
                          DIR/results.json and DIR/repro_iwsi.png

Accuracy: the greedy answer to a test question, extracted like `curate vote`'s default regex
(the last "The answer is N", commas removed), equals the gold answer. DS vs correctness: over
the round-1 majority-consistent samples (DIR/seedS/round1/all.jsonl, every sample's l, w, DS
from `curate dsweight --all`), the point-biserial (Pearson) correlation between DS and the
0/1 correctness, Spearman's rho, and the AUC of "low DS" as a detector of correct samples.
"""
import argparse
import glob
import json
import math
import os
import re
import statistics as st

ANSWER = re.compile(r"[Tt]he answer is\s*\$?(-?[0-9][0-9,]*(\.[0-9]+)?)")


def extract(text):
    m = None
    for m in ANSWER.finditer(text):
        pass
    if not m:
        return None
    s = m.group(1).replace(",", "")
    try:
        v = float(s)
        return str(int(v)) if v == int(v) else repr(v)
    except ValueError:
        return s


def accuracy(path):
    n = c = 0
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            n += 1
            c += extract(r["responses"][0]["text"]) == str(r["answer"])
    return c / n if n else float("nan")


def arm_acc(out, seeds, arm):
    acc = []
    for s in range(1, seeds + 1):
        p = os.path.join(out, f"seed{s}", arm, "test.jsonl")
        if os.path.exists(p):
            acc.append(accuracy(p))
    return acc


def mean_std(v):
    if not v:
        return float("nan"), float("nan")
    return st.mean(v), (st.stdev(v) if len(v) > 1 else 0.0)


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def pearson(x, y):
    mx, my = st.mean(x), st.mean(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sx = math.sqrt(sum((a - mx) ** 2 for a in x))
    sy = math.sqrt(sum((b - my) ** 2 for b in y))
    return sxy / (sx * sy) if sx > 0 and sy > 0 else float("nan")


def ds_stats(path):
    rows = [json.loads(l) for l in open(path)]
    c = [r for r in rows if r["consistent"]]
    ds = [r["ds"] for r in c]
    ok = [1.0 if r["correct"] else 0.0 for r in c]
    pos = [d for d, o in zip(ds, ok) if o]
    neg = [d for d, o in zip(ds, ok) if not o]
    # AUC of low DS flagging a correct sample: P(DS_correct < DS_wrong) + ties / 2
    rk = ranks(ds)
    if pos and neg:
        rsum = sum(r for r, o in zip(rk, ok) if o)
        auc = 1 - (rsum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
    else:
        auc = float("nan")
    return {"consistent": len(c), "correct": len(pos),
            "pearson": pearson(ds, ok), "spearman": pearson(rk, ranks(ok)),
            "auc_low_ds_correct": auc,
            "ds_mean_correct": st.mean(pos) if pos else float("nan"),
            "ds_mean_wrong": st.mean(neg) if neg else float("nan"),
            "ds": ds, "ok": ok}


def kept_stats(path):
    n = c = 0
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            n += 1
            c += bool(r.get("correct"))
    return n, (c / n if n else float("nan"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["best", "report"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, required=True)
    ap.add_argument("--arms", required=True)
    a = ap.parse_args()
    arms = a.arms.split()
    if a.what == "best":
        cand = [x for x in arms if x == "lmsi" or x.startswith("iwsi-")]
        print(max(cand, key=lambda x: mean_std(arm_acc(a.out, a.seeds, x))[0]))
        return
    iter2 = sorted({os.path.basename(p) for p in glob.glob(os.path.join(a.out, "seed*", "iter2-*"))})
    res = {"seeds": a.seeds, "arms": {}}
    table = []
    for arm in ["start"] + arms + iter2:
        acc = arm_acc(a.out, a.seeds, arm)
        m, s = mean_std(acc)
        rows, prec = [], []
        for sd in range(1, a.seeds + 1):
            base = arm[len("iter2-"):] if arm.startswith("iter2-") else arm
            rd = f"round2-{base}" if arm.startswith("iter2-") else "round1"
            p = os.path.join(a.out, f"seed{sd}", rd, f"{base}.jsonl")
            if arm != "start" and os.path.exists(p):
                n, q = kept_stats(p)
                rows.append(n)
                prec.append(q)
        res["arms"][arm] = {"acc": acc, "mean": m, "std": s, "rows": rows, "kept_correct": prec}
        table.append((arm, acc, m, s, rows, prec))
    dss = []
    for sd in range(1, a.seeds + 1):
        p = os.path.join(a.out, f"seed{sd}", "round1", "all.jsonl")
        if os.path.exists(p):
            dss.append(ds_stats(p))
    res["ds_vs_correct"] = [{k: v for k, v in d.items() if k not in ("ds", "ok")} for d in dss]
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    lines = ["# IWSI reproduction (tools/repro_iwsi.sh)", "",
             f"Greedy test accuracy, {a.seeds} seeds (mean +- sample std; per-seed values).", "",
             "| arm | accuracy | per seed | SFT rows (mean) | kept rows correct (mean) |",
             "|---|---|---|---|---|"]
    for arm, acc, m, s, rows, prec in table:
        per = " ".join(f"{x:.3f}" for x in acc)
        r = f"{st.mean(rows):.0f}" if rows else "-"
        q = f"{st.mean(prec):.3f}" if prec else "-"
        lines.append(f"| {arm} | {m:.4f} +- {s:.4f} | {per} | {r} | {q} |")
    base = res["arms"].get("lmsi", {}).get("acc", [])
    lines += ["", "Paired by seed against lmsi (vote only):", "",
              "| arm | accuracy - lmsi | seeds above lmsi |", "|---|---|---|"]
    for arm, acc, m, s, rows, prec in table:
        if arm == "lmsi" or len(acc) != len(base) or not acc:
            continue
        d = [x - y for x, y in zip(acc, base)]
        dm, ds_ = mean_std(d)
        res["arms"][arm]["minus_lmsi"] = d
        lines.append(f"| {arm} | {dm:+.4f} +- {ds_:.4f} | {sum(x > 0 for x in d)}/{len(d)} |")
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    lines += ["", "DS vs correctness over the round-1 consistent samples (per seed):", "",
              "| seed | consistent | correct | Pearson r(DS, correct) | Spearman | AUC(low DS -> correct) | mean DS correct | mean DS wrong |",
              "|---|---|---|---|---|---|---|---|"]
    for i, d in enumerate(dss, 1):
        lines.append(f"| {i} | {d['consistent']} | {d['correct']} | {d['pearson']:.3f} | "
                     f"{d['spearman']:.3f} | {d['auc_low_ds_correct']:.3f} | "
                     f"{d['ds_mean_correct']:.3f} | {d['ds_mean_wrong']:.3f} |")
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    names = [t[0] for t in table]
    ax[0].bar(range(len(names)), [t[2] for t in table], yerr=[t[3] for t in table],
              color=["grey" if n == "start" else "C1" if n.startswith("iwsi") or n.startswith("iter2")
                     else "C0" for n in names], capsize=3)
    for i, t in enumerate(table):
        ax[0].plot([i] * len(t[1]), t[1], "k.", ms=4)
    ax[0].set_xticks(range(len(names)))
    ax[0].set_xticklabels(names, rotation=30, ha="right")
    ax[0].set_ylabel("greedy test accuracy")
    ax[0].set_title(f"arms, {a.seeds} seeds (bars: mean, dots: seeds)")
    if dss:
        d = dss[0]
        bins = [1 + 0.1 * i for i in range(41)]
        ax[1].hist([x for x, o in zip(d["ds"], d["ok"]) if o], bins=bins, alpha=0.6,
                   density=True, label="correct")
        ax[1].hist([x for x, o in zip(d["ds"], d["ok"]) if not o], bins=bins, alpha=0.6,
                   density=True, label="wrong")
        ax[1].set_xlabel("DS (1 = no shift, 5 = cap)")
        ax[1].set_ylabel("density")
        ax[1].set_title(f"seed 1 consistent samples: r(DS, correct) = {d['pearson']:.2f}")
        ax[1].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "repro_iwsi.png"), dpi=110)


if __name__ == "__main__":
    main()
