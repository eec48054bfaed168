#!/usr/bin/env python3
"""report_anchor.py — the tables and the figure of tools/repro_anchor.sh (the AnchorAlign
reproduction). Reads DIR/seedS/MODEL/test-greedy.jsonl and test-t1.jsonl (held-out samples
judged by tools/judge_anchor.py), DIR/seedS/pairs/*.summary.json (categories and pairs) and
DIR/seedS/anchors.jsonl; writes DIR/results.json, DIR/report.md (mean +- std over seeds;
std with ddof 1) and DIR/anchor.png.

  report_anchor.py --out DIR --seeds N --models "explain label anchor ..." [--smoke]
"""
import argparse
import json
import os

import numpy as np

NAMES = {"explain": "stage 0: explanation SFT", "label": "stage 1: label-only SFT",
         "anchor": "AnchorAlign (DPO)", "anchor-noci": "AnchorAlign without CI (DPO)",
         "judge-only": "judge-only pairs (DPO)", "correctness-only": "correctness-only pairs (DPO)"}
METRICS = ("accuracy", "judge_score", "consistency")


def metrics(path, expected=0):
    """Rates over max(expected, responses): a response the driver dropped because it decoded
    to an empty text counts as incorrect, score 0, inconsistent."""
    acc, score, cons, n = 0.0, 0.0, 0.0, 0
    for line in open(path):
        row = json.loads(line)
        for r in row["responses"]:
            acc += bool(r["correct"])
            score += r["score"]
            cons += bool(r["consistent"])
            n += 1
    m = max(n, expected)
    return {"accuracy": acc / m, "judge_score": score / m, "consistency": cons / m, "n": n,
            "empty": m - n}


def ms(xs):
    xs = np.asarray(xs, dtype=float)
    return float(xs.mean()), float(xs.std(ddof=1)) if len(xs) > 1 else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    models = a.models.split()
    arms = [m for m in models if m not in ("explain", "label")]
    seeds = list(range(1, a.seeds + 1))
    n_test = sum(1 for line in open(os.path.join(a.out, "data", "test.jsonl")) if line.strip())
    res = {"seeds": seeds, "per_seed": {}, "mean": {}, "categories": {}, "pairs": {},
           "anchors": {}}
    for s in seeds:
        S = os.path.join(a.out, f"seed{s}")
        res["per_seed"][s] = {m: {mode: metrics(os.path.join(S, m, f"test-{mode}.jsonl"),
                                                n_test * (1 if mode == "greedy" else 4))
                                  for mode in ("greedy", "t1")} for m in models}
        summ = {arm: json.load(open(os.path.join(S, "pairs", f"{arm}.summary.json")))
                for arm in arms}
        res["categories"][s] = summ[arms[0]]["proportions"]
        res["pairs"][s] = {arm: summ[arm]["pairs"] for arm in arms}
        if "anchor" in summ:
            res["anchors"][s] = summ["anchor"]["anchor_file"]
        samp = metrics(os.path.join(S, "samples.jsonl"))
        res["per_seed"][s]["label"]["train_samples"] = samp
    for m in models:
        res["mean"][m] = {}
        for mode in ("greedy", "t1"):
            res["mean"][m][mode] = {k: ms([res["per_seed"][s][m][mode][k] for s in seeds])
                                    for k in METRICS}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)

    def cell(m, mode, k):
        mu, sd = res["mean"][m][mode][k]
        return f"{mu:.3f} ± {sd:.3f}"

    L = []
    L.append(f"# AnchorAlign reproduction{' (smoke: tiny sizes, not a result)' if a.smoke else ''}\n")
    L.append(f"Seeds: {len(seeds)}; mean ± std over seeds (std with ddof 1). Held-out prompts, "
             "judged by tools/judge_anchor.py (score 0-5).\n")
    for mode, title in (("greedy", "greedy decoding"), ("t1", "4 samples per prompt at T = 1")):
        L.append(f"\n## Held-out, {title}\n")
        L.append("| model | accuracy | mean judge score | label-explanation consistency |")
        L.append("|---|---|---|---|")
        for m in models:
            L.append(f"| {NAMES.get(m, m)} | " + " | ".join(cell(m, mode, k) for k in METRICS) + " |")
    L.append("\n## The label model's K = 8 samples per training prompt (T = 1)\n")
    L.append("| seed | CC | V | CI | sample accuracy | sample judge score |")
    L.append("|---|---|---|---|---|---|")
    for s in seeds:
        c = res["categories"][s]
        t = res["per_seed"][s]["label"]["train_samples"]
        L.append(f"| {s} | {c['CC']:.3f} | {c['V']:.3f} | {c['CI']:.3f} | {t['accuracy']:.3f} | "
                 f"{t['judge_score']:.3f} |")
    L.append("\n## Pairs per arm (CC / V / CI = total)\n")
    L.append("| seed | " + " | ".join(arms) + " | anchors kept / responses |")
    L.append("|---|" + "---|" * len(arms) + "---|")
    for s in seeds:
        p = res["pairs"][s]
        an = res["anchors"].get(s, {})
        L.append(f"| {s} | " + " | ".join(f"{p[x]['CC']} / {p[x]['V']} / {p[x]['CI']} = {p[x]['total']}"
                                          for x in arms)
                 + f" | {an.get('kept', '-')} / {an.get('responses', '-')} |")
    L.append("\n## Per seed (greedy: accuracy, judge score)\n")
    L.append("| model | " + " | ".join(f"seed {s}" for s in seeds) + " |")
    L.append("|---|" + "---|" * len(seeds))
    for m in models:
        L.append(f"| {m} | " + " | ".join(
            f"{res['per_seed'][s][m]['greedy']['accuracy']:.3f}, "
            f"{res['per_seed'][s][m]['greedy']['judge_score']:.2f}" for s in seeds) + " |")
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write("\n".join(L) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    colors = ["#999999", "#555555", "#1f77b4", "#6baed6", "#d62728", "#ff9896"]
    for r, mode in enumerate(("greedy", "t1")):
        for c, k in enumerate(METRICS):
            ax = axes[r][c]
            mu = [res["mean"][m][mode][k][0] for m in models]
            sd = [res["mean"][m][mode][k][1] for m in models]
            x = np.arange(len(models))
            ax.bar(x, mu, yerr=sd, capsize=3, color=colors[:len(models)])
            for i, m in enumerate(models):
                ax.scatter([i] * len(seeds), [res["per_seed"][s][m][mode][k] for s in seeds],
                           color="black", s=8, zorder=3)
            ax.set_xticks(x)
            ax.set_xticklabels(models, rotation=35, ha="right", fontsize=8)
            ax.set_title(f"{k.replace('_', ' ')} ({'greedy' if mode == 'greedy' else 'T = 1'})",
                         fontsize=10)
            ax.set_ylim(0, 5.0 if k == "judge_score" else 1.0)  # full scales: no zoom
    fig.suptitle(f"AnchorAlign at small scale: held-out metrics, mean ± std over {len(seeds)} seeds "
                 "(dots: seeds)")
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "anchor.png"), dpi=110)
    print(open(os.path.join(a.out, "report.md")).read())


if __name__ == "__main__":
    main()
