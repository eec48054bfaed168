#!/usr/bin/env python3
"""report_prs.py OUT --seeds N --ns "4 8 16 32" — the report of tools/repro_prs.sh.

Reads OUT/seedS/bon/ARM-N.summary.json (tinyalign prs summaries) and
OUT/seedS/{rest,rest-early}-MODE/metrics.jsonl (tools/rest_prs.sh), writes
  OUT/results.json  every number, per seed
  OUT/report.md     mean +- std over seeds: best-of-N mean best reward and exact match of the
                    best sample per arm and N; PRS vs Rand per seed; the policy's feedback
                    against the rule critic's; ReST greedy and sampled test reward per
                    iteration, from the SFT policy and from its early checkpoint
  OUT/bon.png, OUT/rest.png
"""
import argparse
import json
import os
import statistics as st

ARMS = [("rand", "Rand"), ("rand-no-pref", "Rand w/o pref"), ("prs-q", "PRS N0=N/4"),
        ("prs-h", "PRS N0=N/2"), ("prs-3q", "PRS N0=3N/4"), ("prs-nofb", "PRS w/o feedback"),
        ("prs-critic", "PRS, rule critic's feedback")]
# the ReST experiments: (directory prefix, title)
RESTS = [("rest", "from the SFT policy"), ("rest-early", "from an early SFT checkpoint")]


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


def diff_row(label, ds):
    """A table row: the per-seed differences PRS - Rand (None: not run) and how many are > 0."""
    got = [d for d in ds if d is not None]
    cells = " | ".join("—" if d is None else f"{d:+.3f}" for d in ds)
    return f"| {label} | {cells} | {sum(d > 0 for d in got)}/{len(got)} |"


def feedback_agreement(out, seeds, ns):
    """Per seed and N, for the PRS arms whose feedback the policy wrote: the fraction of
    prompts whose feedback equals the rule critic's on the same best draft, and the fraction
    of correct best drafts the policy called "ok"."""
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gen_prs_task import critique
    res = {}
    for n in ns:
        for s in seeds:
            f = os.path.join(out, f"seed{s}", "bon", f"prs-h-{n}.jsonl")
            if not os.path.exists(f):
                continue
            same = cnt = ok_right = right = 0
            for line in open(f):
                r = json.loads(line)
                ys = r["responses"]
                child = next((y for y in ys if y["layer"] == 1), None)
                if child is None:
                    continue
                draft = ys[child["parent"]]
                rule = critique(r["prompt"], r["preference"], draft["text"])
                fb = child["feedback"].strip()
                cnt += 1
                same += fb == rule
                if draft.get("correct"):
                    right += 1
                    ok_right += fb == "ok"
            res.setdefault(str(n), {})[str(s)] = {
                "agree": same / cnt if cnt else None,
                "ok_on_correct": ok_right / right if right else None}
    return res


def feedback_table(F, ns):
    rows = [n for n in ns if str(n) in F]
    if not rows:
        return []
    L = ["## The policy's feedback against the rule critic's (PRS N0 = N/2)", "",
         "Of the prompts, the fraction whose feedback (written by the policy on the best "
         "layer-0 draft) equals the rule critic's text for that draft; of the correct best "
         "drafts, the fraction the policy called \"ok\".", "",
         "| N | feedback = rule critic's | \"ok\" on a correct draft |", "|---|---|---|"]
    for n in rows:
        d = F[str(n)].values()
        L.append(f"| {n} | {fmt([x['agree'] for x in d if x['agree'] is not None])} | "
                 f"{fmt([x['ok_on_correct'] for x in d if x['ok_on_correct'] is not None])} |")
    return L + [""]


def refine_table(out, seeds, ns):
    """Layer-1 refinements split by their parent draft (correct or not): exact match of the
    refinement, and how often it copies the draft; per arm with a layer 1, smallest N >= 4 run."""
    arms = [("prs-h", "PRS N0=N/2 (the policy's feedback)"), ("prs-critic", "PRS, rule critic's feedback"),
            ("prs-nofb", "PRS w/o feedback")]
    n = next((n for n in ns if n >= 4 and all(os.path.exists(os.path.join(out, f"seed{s}", "bon", f"prs-critic-{n}.jsonl")) for s in seeds)), None)
    if n is None:
        return []
    L = [f"## Refinements by their draft (N = {n}, N0 = N/2; per seed, then mean ± std)", "",
         "| arm | draft correct: refinement correct | copies the draft | draft wrong: refinement correct |",
         "|---|---|---|---|"]
    for arm, name in arms:
        cr, cp, wr = [], [], []
        for s in seeds:
            f = os.path.join(out, f"seed{s}", "bon", f"{arm}-{n}.jsonl")
            if not os.path.exists(f):
                continue
            a = [0, 0, 0, 0, 0]  # right-draft count, right refinement, copies; wrong-draft count, right
            for line in open(f):
                ys = json.loads(line)["responses"]
                for y in ys:
                    if y["layer"] != 1:
                        continue
                    d = ys[y["parent"]]
                    if d["correct"]:
                        a[0] += 1; a[1] += y["correct"]; a[2] += y["text"].strip() == d["text"].strip()
                    else:
                        a[3] += 1; a[4] += y["correct"]
            if a[0]:
                cr.append(a[1] / a[0]); cp.append(a[2] / a[0])
            if a[3]:
                wr.append(a[4] / a[3])
        L.append(f"| {name} | {fmt(cr)} | {fmt(cp)} | {fmt(wr)} |")
    return L + [""]


def rest_tables(RR, pre, title, early_steps):
    """Per iteration: greedy and sampled test reward / exact match, the generated data's
    quality, and PRS - Rand per seed (sampled exact match)."""
    name = {"rand": "Rand (N=8)", "prs": "PRS (N=8, N0=4)"}
    L = [f"## ReST {title}" + (f" (step {early_steps} of 1500)" if pre == "rest-early" else ""), ""]

    def col(mode, k, get):
        return [get(m[k]) for m in RR.get(mode, {}).values() if len(m) > k and get(m[k]) is not None]

    for key, what in (("test", "greedy"), ("sampled", "sampled (T 0.8, top-k 50, pp 1.2; 4 per prompt)")):
        for stat, sname in (("correct", "exact match"), ("score", "mean reward")):
            def get(x, key=key, stat=stat):
                if stat == "score":
                    return x.get(f"{key}_score")
                return x.get(f"{key}_rates", {}).get("correct")
            if not any(col(m, 0, get) for m in ("rand", "prs")):
                continue
            L += [f"Test {sname} of a {what} response, per iteration:", "",
                  "| data from | iter 0 (start) | iter 1 | iter 2 | iter 3 |", "|---|---|---|---|---|"]
            for mode in ("rand", "prs"):
                L.append(f"| {name[mode]} | " + " | ".join(fmt(col(mode, k, get)) for k in range(4)) + " |")
            L.append("")
    L += ["Generated data (the ReST training prompts): mean best reward / mean reward of all "
          "responses:", "", "| data from | iter 1 | iter 2 | iter 3 |", "|---|---|---|---|"]
    for mode in ("rand", "prs"):
        cells = [fmt(col(mode, k, lambda x: x.get("gen_mean_best"))) + " / " +
                 fmt(col(mode, k, lambda x: x.get("gen_mean_score"))) for k in range(1, 4)]
        L.append(f"| {name[mode]} | " + " | ".join(cells) + " |")
    L.append("")
    seeds = sorted(set(RR.get("rand", {})) & set(RR.get("prs", {})), key=int)
    for key, what in (("sampled", "sampled"), ("test", "greedy")):
        if not seeds or not all(f"{key}_rates" in RR["prs"][s][0] for s in seeds):
            continue
        L += [f"PRS − Rand, {what} exact match, per seed:", "",
              "| iter | " + " | ".join(f"seed {s}" for s in seeds) + " | seeds where PRS > Rand |",
              "|---|" + "---|" * (len(seeds) + 1)]
        for k in range(1, 4):
            ds = []
            for s in seeds:
                p, r = RR["prs"][s], RR["rand"][s]
                ds.append(p[k][f"{key}_rates"]["correct"] - r[k][f"{key}_rates"]["correct"]
                          if len(p) > k and len(r) > k else None)
            L.append(diff_row(k, ds))
        L.append("")
    return L


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--ns", default="4 8 16 32")
    ap.add_argument("--early-steps", type=int, default=150)
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
    for pre, _ in RESTS:
        for mode in ("rand", "prs"):
            for s in seeds:
                p = os.path.join(a.out, f"seed{s}", f"{pre}-{mode}", "metrics.jsonl")
                if os.path.exists(p):
                    R.setdefault(pre, {}).setdefault(mode, {})[str(s)] = [json.loads(l) for l in open(p)]
    R["feedback"] = feedback_agreement(a.out, seeds, ns)
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
        ds = []
        for s in seeds:
            p = R["bon"].get("prs-h", {}).get(str(n), {}).get(str(s))
            r = R["bon"].get("rand", {}).get(str(n), {}).get(str(s))
            ds.append(p["mean_best"] - r["mean_best"] if p and r else None)
        L.append(diff_row(n, ds))
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
    L += feedback_table(R["feedback"], ns)
    L += refine_table(a.out, seeds, ns)
    for pre, title in RESTS:
        if R.get(pre):
            L += rest_tables(R[pre], pre, title, a.early_steps)
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
    pres = [(pre, t) for pre, t in RESTS if R.get(pre)]
    if pres:
        fig, ax = plt.subplots(len(pres), 2, figsize=(11, 4 * len(pres)), squeeze=False)
        for row, (pre, title) in enumerate(pres):
            for col, (key, what) in enumerate((("test", "greedy"), ("sampled", "sampled (T 0.8)"))):
                for mode, name in (("rand", "Rand-generated data"), ("prs", "PRS-generated data")):
                    runs = [r for r in R[pre].get(mode, {}).values()]
                    K = min(len(m) for m in runs) if runs else 0
                    xs = [[r[k][f"{key}_rates"]["correct"] for r in runs if f"{key}_rates" in r[k]]
                          for k in range(K)]
                    ks = [k for k in range(K) if xs[k]]
                    m = [ms(xs[k]) for k in ks]
                    ax[row][col].errorbar(ks, [x[0] for x in m], yerr=[x[1] for x in m], marker="o",
                                          capsize=3, label=name)
                ax[row][col].set_xlabel("ReST iteration (0 = the start policy)")
                ax[row][col].set_ylabel(f"{what} test exact match")
                ax[row][col].set_xticks(range(4))
                ax[row][col].grid(alpha=0.3)
                ax[row][col].set_title(f"ReST {title}: {what}", fontsize=10)
            ax[row][0].legend(fontsize=8)
        fig.suptitle(f"ReST, N=8, top-1, 3 iterations, mean ± std over {len(seeds)} seeds")
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, "rest.png"), dpi=110)
    print(f"wrote {a.out}/report.md, results.json, bon.png" + (", rest.png" if pres else ""))


if __name__ == "__main__":
    main()
