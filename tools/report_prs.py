#!/usr/bin/env python3
"""report_prs.py OUT --seeds N --ns "4 8 16 32" — the report of tools/repro_prs.sh.

Reads OUT/seedS/bon/ARM-N.summary.json (tinyalign prs summaries) and
OUT/seedS/rest-MODE/metrics.jsonl (tools/rest_prs.sh), writes
  OUT/results.json  every number, per seed
  OUT/report.md     mean +- std over seeds: best-of-N mean best reward and exact match of the
                    best sample per arm and N; PRS vs Rand per seed; ReST greedy accuracy
  OUT/bon.png, OUT/rest.png
"""
import argparse
import json
import os
import statistics as st

ARMS = [("rand", "Rand"), ("rand-no-pref", "Rand w/o pref"), ("prs-q", "PRS N0=N/4"),
        ("prs-h", "PRS N0=N/2"), ("prs-3q", "PRS N0=3N/4"), ("prs-nofb", "PRS w/o feedback")]


NSEEDS = 0


def ms(xs):
    if not xs:
        return float("nan"), float("nan")
    return st.mean(xs), (st.stdev(xs) if len(xs) > 1 else 0.0)


def fmt(xs, p=3):
    if not xs:
        return "—"
    m, s = ms(xs)
    if NSEEDS and len(xs) < NSEEDS:  # a cell with fewer seeds than the study says so
        return f"{m:.{p}f} ± {s:.{p}f} ({len(xs)} seeds)"
    return f"{m:.{p}f} ± {s:.{p}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--ns", default="4 8 16 32")
    a = ap.parse_args()
    ns = [int(x) for x in a.ns.split()]
    seeds = list(range(1, a.seeds + 1))
    global NSEEDS
    NSEEDS = len(seeds)
    R = {"bon": {}, "rest": {}}
    for arm, _ in ARMS:
        for n in ns:
            for s in seeds:
                p = os.path.join(a.out, f"seed{s}", "bon", f"{arm}-{n}.summary.json")
                if not os.path.exists(p):
                    continue
                S = json.load(open(p))
                R["bon"].setdefault(arm, {}).setdefault(str(n), {})[str(s)] = {
                    "mean_best": S["mean_best"], "exact": S["best_rates"].get("correct", 0.0),
                    "mean_score": S["mean_score"], "tokens_per_s": S["tokens_per_s"],
                    "mean_best_after_layer": S["mean_best_after_layer"]}
    for mode in ("rand", "prs"):
        for s in seeds:
            p = os.path.join(a.out, f"seed{s}", f"rest-{mode}", "metrics.jsonl")
            if os.path.exists(p):
                R["rest"].setdefault(mode, {})[str(s)] = [json.loads(l) for l in open(p)]
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(R, f, indent=1)

    def vals(arm, n, key):
        d = R["bon"].get(arm, {}).get(str(n), {})
        return [d[str(s)][key] for s in seeds if str(s) in d]

    L = ["# PRS reproduction: results", "",
         f"Seeds {seeds}; 200 held-out prompts per run unless the smoke sizes were used. "
         "Mean ± std over seeds (std across seeds, n-1).", ""]
    for key, title in (("mean_best", "Mean best reward (fraction of positions right − 0.1·format violations)"),
                       ("exact", "Exact match of the best sample")):
        L += [f"## Best-of-N: {title}", "", "| arm | " + " | ".join(f"N={n}" for n in ns) + " |",
              "|---|" + "---|" * len(ns)]
        for arm, name in ARMS:
            L.append(f"| {name} | " + " | ".join(fmt(vals(arm, n, key)) for n in ns) + " |")
        L.append("")
    L += ["## PRS (N0 = N/2) minus Rand, per seed (mean best reward)", "",
          "| N | " + " | ".join(f"seed {s}" for s in seeds) + " | seeds where PRS > Rand |",
          "|---|" + "---|" * (len(seeds) + 1)]
    for n in ns:
        cells, wins, cnt = [], 0, 0
        for s in seeds:
            p = R["bon"].get("prs-h", {}).get(str(n), {}).get(str(s))
            r = R["bon"].get("rand", {}).get(str(n), {}).get(str(s))
            if p and r:
                d = p["mean_best"] - r["mean_best"]
                cells.append(f"{d:+.3f}")
                wins += d > 0
                cnt += 1
            else:
                cells.append("—")
        L.append(f"| {n} | " + " | ".join(cells) + f" | {wins}/{cnt} |")
    L.append("")
    # the quality of single responses: i.i.d. samples vs refinements (not at the ceiling)
    L += ["## Mean reward of a single response (all responses of the run)", "",
          "| arm | " + " | ".join(f"N={n}: layer 0 / layer 1" for n in ns) + " |",
          "|---|" + "---|" * len(ns)]
    for arm, name in ARMS:
        cells = []
        for n in ns:
            l0, l1 = [], []
            for s in seeds:
                f = os.path.join(a.out, f"seed{s}", "bon", f"{arm}-{n}.jsonl")
                if not os.path.exists(f):
                    continue
                x0 = x1 = c0 = c1 = 0
                for line in open(f):
                    for y in json.loads(line)["responses"]:
                        if y["layer"] == 0:
                            x0 += y["score"]; c0 += 1
                        else:
                            x1 += y["score"]; c1 += 1
                l0.append(x0 / c0)
                if c1:
                    l1.append(x1 / c1)
            cells.append(fmt(l0) + (" / " + fmt(l1) if l1 else ""))
        L.append(f"| {name} | " + " | ".join(cells) + " |")
    L.append("")
    if R["rest"]:
        L += ["## ReST loop: greedy test accuracy (exact match) per iteration", "",
              "| data from | iter 0 (SFT) | iter 1 | iter 2 | iter 3 |", "|---|---|---|---|---|"]
        for mode in ("rand", "prs"):
            runs = R["rest"].get(mode, {})
            cells = []
            for k in range(4):
                xs = [m[k]["test_rates"]["correct"] for m in runs.values() if len(m) > k]
                cells.append(fmt(xs) if xs else "")
            L.append(f"| {'Rand' if mode == 'rand' else 'PRS'} (N=8) | " + " | ".join(cells) + " |")
        L += ["", "| data from | mean best reward of the generated data, iter 1 | iter 2 | iter 3 |",
              "|---|---|---|---|"]
        for mode in ("rand", "prs"):
            runs = R["rest"].get(mode, {})
            cells = []
            for k in range(1, 4):
                xs = [m[k]["gen_mean_best"] for m in runs.values() if len(m) > k]
                cells.append(fmt(xs) if xs else "")
            L.append(f"| {'Rand' if mode == 'rand' else 'PRS'} | " + " | ".join(cells) + " |")
        L.append("")
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write("\n".join(L) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for i, (key, title) in enumerate((("mean_best", "mean best reward"), ("exact", "exact match of the best"))):
        for arm, name in ARMS:
            if arm == "rand-no-pref":  # far below (see the table): it would flatten the rest
                continue
            m = [ms(vals(arm, n, key)) for n in ns]
            ax[i].errorbar(ns, [x[0] for x in m], yerr=[x[1] for x in m], marker="o", capsize=3, label=name)
        ax[i].set_xscale("log", base=2)
        ax[i].set_xticks(ns)
        ax[i].set_xticklabels([str(n) for n in ns])
        ax[i].set_xlabel("budget N (responses per prompt)")
        ax[i].set_title(title)
        ax[i].grid(alpha=0.3)
    ax[1].legend(fontsize=8)
    fig.suptitle(f"Best-of-N on sort-6-digits (<asc>/<desc>), mean ± std over seeds (up to {len(seeds)}); "
                 "Rand w/o pref is off the scale (table)")
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "bon.png"), dpi=110)
    if R["rest"]:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for mode, name in (("rand", "Rand-generated data"), ("prs", "PRS-generated data")):
            runs = list(R["rest"].get(mode, {}).values())
            K = min(len(m) for m in runs) if runs else 0
            m = [ms([r[k]["test_rates"]["correct"] for r in runs]) for k in range(K)]
            ax.errorbar(range(K), [x[0] for x in m], yerr=[x[1] for x in m], marker="o", capsize=3, label=name)
        ax.set_xlabel("ReST iteration (0 = the SFT start)")
        ax.set_ylabel("greedy test accuracy (exact match)")
        ax.set_xticks(range(4))
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title(f"ReST, N=8, top-1, mean ± std over {len(seeds)} seeds")
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, "rest.png"), dpi=110)
    print(f"wrote {a.out}/report.md, results.json, bon.png" + (", rest.png" if R["rest"] else ""))


if __name__ == "__main__":
    main()
