#!/usr/bin/env python3
"""report_ddpo.py — scoring and the report of the DDPO / DORPO reproduction
(tools/repro_ddpo.sh; Chung et al. 2025, arXiv 2503.17126).

  report --out DIR --seeds N --arms "sft dpo ..." --bin BUILD/tinyalign [--smoke] [--note S]
      Scores every arm and seed whose DIR/seed<s>/<arm>/metrics.json is missing, from the
      responses sampled on the held-out prompts (heldout.jsonl) and, secondary, on the
      trained prompts (seen.jsonl): tools/check_diversity_task.py's quality and diversity
      (validity, distinct valid answers, semantic / style embedding distances, ...) plus
      `tinyalign curate diversity`'s distinct-1/2, n-gram diversity (the table's column: the
      authors' form over the joined answers, ngram_diversity_joined), compression ratio and
      lexical embedding distance, the training wall time and last loss; the same for the
      gold human responses (DIR/data/gold_metrics.json). Then writes DIR/results.json
      (every number), DIR/report.md (mean +- sample std over seeds per arm and metric; the
      signature comparisons, paired by seed) and DIR/scatter.png (quality vs diversity, one
      point per seed).

Signature rule, fixed before any result was seen: arm X "is more diverse than" arm Y at
"about equal validity" when, paired by seed, distinct valid answers (of 16) are higher for X
in EVERY seed and the mean validity difference X - Y is >= -0.05. The paper's signature
reproduces when DDPO-both beats DPO, DORPO-both beats ORPO, and DDPO-both beats DivPO by
this rule.

stdlib + numpy (+ matplotlib for the figure).
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_diversity_task import score_file  # noqa: E402

LABELS = {
    "gold": "Gold (human, 16 fresh)",
    "sft": "SFT (start)",
    "dpo": "DPO",
    "ddpo-sem": "DDPO-sem",
    "ddpo-sty": "DDPO-sty",
    "ddpo-both": "DDPO-both",
    "orpo": "ORPO",
    "dorpo-both": "DORPO-both",
    "divpo": "DivPO (both)",
    "dpo-few": "DPO, 4 resp.",
    "ddpo-few": "DDPO-both, 4 resp.",
    "ddpo-few-floor": "DDPO-both, 4 resp., min-weight 0.2",
}
ARM_PAIRS = {"dpo": "both", "ddpo-sem": "sem", "ddpo-sty": "sty", "ddpo-both": "both",
             "orpo": "both", "dorpo-both": "both", "divpo": "divpo", "dpo-few": "few",
             "ddpo-few": "few", "ddpo-few-floor": "few-floor"}
WEIGHTED = {"ddpo-sem", "ddpo-sty", "ddpo-both", "dorpo-both", "ddpo-few", "ddpo-few-floor"}
ABLATION = ["dpo-few", "ddpo-few", "ddpo-few-floor"]
# (column key, header, decimals)
MAIN_COLS = [("validity", "validity", 3), ("well_formed", "well-formed", 3),
             ("distinct_valid", "distinct valid /16", 2),
             ("sem_dist", "sem. dist", 3), ("sty_dist", "style dist", 3),
             ("ans_format", "'ans N.' share", 2), ("popular_share", "top-5 share", 2),
             ("distinct_1", "distinct-1", 3), ("distinct_2", "distinct-2", 3),
             ("ngram_diversity_joined", "n-gram div", 3), ("compression_ratio", "compression", 3)]
COMPARISONS = [("ddpo-both", "dpo"), ("ddpo-sem", "dpo"), ("ddpo-sty", "dpo"),
               ("dorpo-both", "orpo"), ("ddpo-both", "divpo"), ("dpo", "sft"),
               ("ddpo-few", "dpo-few"), ("ddpo-few-floor", "ddpo-few"),
               ("ddpo-few-floor", "dpo-few"), ("dpo-few", "dpo"), ("ddpo-few", "ddpo-both")]
SIGNATURE = [("ddpo-both", "dpo"), ("dorpo-both", "orpo"), ("ddpo-both", "divpo")]
VALIDITY_TOL = 0.05


# ---- score ---------------------------------------------------------------------------------
def curate_diversity(binary, path):
    """`tinyalign curate diversity` on path. Empty texts, which sampling can produce (a lone
    "▁" piece before EOS decodes to ""), are left out of a temporary copy (they hold no
    n-gram) and counted, as the study always did."""
    tmp, empty = path + ".nonempty.tmp", 0
    with open(path) as f, open(tmp, "w") as g:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            keep = [x for x in r["responses"] if x["text"]]
            empty += len(r["responses"]) - len(keep)
            r["responses"] = keep
            g.write(json.dumps(r) + "\n")
    try:
        out = subprocess.run([binary, "curate", "diversity", "--in", tmp, "--json",
                              "--no-per-prompt"], capture_output=True, text=True)
    finally:
        os.remove(tmp)
    if out.returncode != 0:
        raise SystemExit(f"curate diversity failed on {path}: {out.stderr.strip()}")
    o = json.loads(out.stdout)["overall"]
    return {"distinct_1": o["distinct_1"], "distinct_2": o["distinct_2"],
            "ngram_diversity": o["ngram_diversity"],
            # the authors' form (n-grams of the joined answers), the paper's column
            "ngram_diversity_joined": o["ngram_diversity_joined"],
            "compression_ratio": o["compression_ratio"],
            "lexical_dist": o.get("embedding_distance/lexical"), "empty_texts": empty}


def split_metrics(binary, path, prompts):
    m = score_file(path, prompts)
    m.update(curate_diversity(binary, path))
    return m


def write_json(path, obj):
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
    os.replace(path + ".tmp", path)


def score_run(binary, data, run, arm, seed):
    """Metrics of one arm and seed from its samples RUN/{heldout,seen}.jsonl."""
    out = {"arm": arm, "seed": seed}
    for split in ("heldout", "seen"):
        out[split] = split_metrics(binary, os.path.join(run, split + ".jsonl"),
                                   os.path.join(data, split + ".jsonl"))
    sec = os.path.join(run, "seconds")
    if os.path.exists(sec):
        out["train_seconds"] = float(open(sec).read())
    rows = [json.loads(x) for x in open(os.path.join(run, "metrics.jsonl"))]
    train = [r for r in rows if r.get("kind") == "train"]
    if train:
        out["train_last"] = train[-1]
    return out


# ---- report --------------------------------------------------------------------------------
def mean_std(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return float("nan"), float("nan")
    m = float(np.mean(xs))
    s = float(np.std(xs, ddof=1)) if len(xs) > 1 else float("nan")
    return m, s


def fmt(m, s, d):
    if math.isnan(m):
        return "-"
    return f"{m:.{d}f}" if math.isnan(s) else f"{m:.{d}f} ± {s:.{d}f}"


def pair_stats(path):
    w = []
    with open(path) as f:
        for line in f:
            if line.strip():
                w.append(json.loads(line).get("weight", 1.0))
    return len(w), (sum(x == 0 for x in w) / len(w) if w else 0.0)


def compare(res, x, y, seeds):
    """Paired-by-seed differences x - y of validity, distinct valid and semantic distance."""
    rows = [(res[x][s]["heldout"], res[y][s]["heldout"]) for s in seeds
            if s in res.get(x, {}) and s in res.get(y, {})]
    if not rows:
        return None
    d = {k: [a[k] - b[k] for a, b in rows] for k in ("validity", "distinct_valid", "sem_dist")}
    out = {k: mean_std(v) for k, v in d.items()}
    out["n"] = len(rows)
    out["wins"] = {k: sum(x > 0 for x in v) for k, v in d.items()}
    out["more_diverse_every_seed"] = all(v > 0 for v in d["distinct_valid"])
    out["validity_ok"] = out["validity"][0] >= -VALIDITY_TOL
    out["holds"] = out["more_diverse_every_seed"] and out["validity_ok"]
    return out


def scatter(path, res, gold, seeds, arms, title=""):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    style = {"sft": ("#7f7f7f", "o"), "dpo": ("#1f77b4", "s"), "ddpo-sem": ("#9edae5", "^"),
             "ddpo-sty": ("#17becf", "v"), "ddpo-both": ("#08519c", "D"),
             "orpo": ("#ff7f0e", "s"), "dorpo-both": ("#d62728", "D"),
             "divpo": ("#2ca02c", "P"), "dpo-few": ("#1f77b4", "s"),
             "ddpo-few": ("#08519c", "D"), "ddpo-few-floor": ("#9467bd", "*")}
    main = [a for a in arms if a not in ABLATION]
    abl = ["dpo", "ddpo-both"] + [a for a in arms if a in ABLATION]
    panels = [(main, "distinct_valid", "distinct valid answers (of 16)",
               "(a) distinct valid answers"),
              (main, "sem_dist", "mean pairwise semantic distance (well-formed answers)",
               "(b) semantic embedding distance"),
              (abl, "distinct_valid", "distinct valid answers (of 16)",
               "(c) ablation: 4 responses per prompt instead of 12")]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
    for ax, (group, key, ylabel, ptitle) in zip(axes, panels):
        for a in group:
            if a not in res:
                continue
            c, mk = style.get(a, ("k", "o"))
            few = a in ABLATION
            pts = [(res[a][s]["heldout"]["validity"], res[a][s]["heldout"][key])
                   for s in seeds if s in res[a]]
            xs, ys = zip(*pts)
            face = "none" if few and a != "ddpo-few-floor" else c
            ax.scatter(xs, ys, c=[c] if face != "none" else "none", edgecolors=c,
                       marker=mk, s=36, alpha=0.55, linewidths=1.2)
            ax.scatter([np.mean(xs)], [np.mean(ys)], c=[c] if face != "none" else "none",
                       edgecolors="k" if face != "none" else c, marker=mk, s=130,
                       linewidths=1.5, label=LABELS[a])
        if gold and group is main:  # off the arms' scale: a note, not a point
            g = gold["heldout"]
            ax.text(0.98, 0.02, f"{LABELS['gold']}: validity {g['validity']:.2f}, "
                    f"{ylabel.split(' (')[0]} {g[key]:.2f}", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=8,
                    bbox={"facecolor": "lightyellow", "edgecolor": "0.6"})
        ax.set_xlabel("validity (share of correct answers) — quality")
        ax.set_ylabel(ylabel)
        ax.set_title(ptitle)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    axes[2].legend(fontsize=8, loc="best")
    fig.suptitle(f"DDPO/DORPO reproduction{title}: quality vs diversity of 16 samples at T = 1 "
                 f"per held-out prompt; small markers = seeds ({len(seeds)}), large = mean",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=80)
    os.replace(path + ".tmp.png", path)


def cmd_report(a):
    seeds = list(range(1, a.seeds + 1))
    arms = a.arms.split()
    data = os.path.join(a.out, "data")
    res = {}
    for arm in arms:
        for s in seeds:
            run = os.path.join(a.out, f"seed{s}", arm)
            p = os.path.join(run, "metrics.json")
            if not os.path.exists(p):  # scored once, kept (a redone run deletes it)
                if not os.path.exists(os.path.join(run, "seen.jsonl")):
                    raise SystemExit(f"report_ddpo.py: no samples in {run}")
                write_json(p, score_run(a.bin, data, run, arm, s))
            res.setdefault(arm, {})[s] = json.load(open(p))
    gp = os.path.join(data, "gold_metrics.json")
    if not os.path.exists(gp):
        write_json(gp, {"arm": "gold", "heldout": split_metrics(
            a.bin, os.path.join(data, "gold.jsonl"), os.path.join(data, "heldout.jsonl"))})
    gold = json.load(open(gp))
    pairs = {}
    for arm in arms:
        if arm in ARM_PAIRS:
            st = [pair_stats(os.path.join(a.out, f"seed{s}", "pairs", ARM_PAIRS[arm] + ".jsonl"))
                  for s in seeds]
            pairs[arm] = {"pairs": mean_std([x[0] for x in st])[0],
                          "zero_weight_share": mean_std([x[1] for x in st])[0]}
    comps = {f"{x} vs {y}": compare(res, x, y, seeds) for x, y in COMPARISONS
             if x in res and y in res}
    sig = [comps.get(f"{x} vs {y}") for x, y in SIGNATURE]
    reproduced = all(c is not None and c["holds"] for c in sig)

    L = []
    if a.note:
        L.append(f"**{a.note}**")
        L.append("")
    if a.smoke:
        L.append("**Smoke run** (tiny sizes): it checks that every stage runs; its numbers "
                 "mean nothing.")
        L.append("")
    L.append(f"Seeds: {len(seeds)} per arm (1..{len(seeds)}); each seed trains its own SFT "
             "model, draws its own pairs and samples with its own seed. Mean ± sample std "
             "over seeds; 16 samples at T = 1 for each held-out prompt.")
    L.append("")
    L.append("### Held-out prompts")
    L.append("")
    L.append("| arm | pairs | weight-0 share | " + " | ".join(h for _, h, _ in MAIN_COLS) + " |")
    L.append("|---|---|---|" + "---|" * len(MAIN_COLS))
    if gold:
        g = gold["heldout"]
        L.append(f"| {LABELS['gold']} | | | " +
                 " | ".join(fmt(*mean_std([g.get(k)]), d) for k, _, d in MAIN_COLS) + " |")
    for arm in arms:
        p = pairs.get(arm)
        pc = f"{p['pairs']:.0f}" if p else ""
        zc = f"{p['zero_weight_share']:.2f}" if p and arm in WEIGHTED else ""
        cells = [fmt(*mean_std([res[arm][s]["heldout"].get(k) for s in seeds]), d)
                 for k, _, d in MAIN_COLS]
        L.append(f"| {LABELS.get(arm, arm)} | {pc} | {zc} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("### Trained prompts (secondary: the (sum, template) combinations of the "
             "training data)")
    L.append("")
    L.append("| arm | validity | distinct valid /16 | sem. dist | top-5 share | train s |")
    L.append("|---|---|---|---|---|---|")
    for arm in arms:
        c = [fmt(*mean_std([res[arm][s]["seen"][k] for s in seeds]), d)
             for k, d in (("validity", 3), ("distinct_valid", 2), ("sem_dist", 3),
                          ("popular_share", 2))]
        ts = fmt(*mean_std([res[arm][s].get("train_seconds") for s in seeds]), 1)
        L.append(f"| {LABELS.get(arm, arm)} | " + " | ".join(c) + f" | {ts} |")
    L.append("")
    L.append("### Paired differences (X − Y, same seed: same SFT model and pairs)")
    L.append("")
    L.append("Seeds X > Y: in how many seeds X's value is higher. The rule: X > Y in distinct "
             f"valid answers in every seed, and mean Δ validity ≥ −{VALIDITY_TOL}.")
    L.append("")
    L.append("| X vs Y | Δ validity | seeds X > Y | Δ distinct valid | seeds X > Y | "
             "Δ sem. dist | seeds X > Y | rule holds |")
    L.append("|---|---|---|---|---|---|---|---|")
    for k, c in comps.items():
        if c is None:
            continue
        x, y = k.split(" vs ")
        w, n = c["wins"], c["n"]
        L.append(f"| {LABELS.get(x, x)} vs {LABELS.get(y, y)} | {fmt(*c['validity'], 3)} | "
                 f"{w['validity']}/{n} | {fmt(*c['distinct_valid'], 2)} | "
                 f"{w['distinct_valid']}/{n} | {fmt(*c['sem_dist'], 3)} | {w['sem_dist']}/{n} | "
                 f"{'yes' if c['holds'] else 'no'} |")
    L.append("")
    verdict = ("REPRODUCED" if reproduced else "NOT REPRODUCED")
    L.append(f"Signature (rule fixed in advance: DDPO-both > DPO, DORPO-both > ORPO and "
             f"DDPO-both > DivPO in distinct valid answers in every seed, with mean Δ validity "
             f"≥ −{VALIDITY_TOL}): **{verdict}** "
             + "(" + ", ".join(f"{x} vs {y}: {'holds' if c and c['holds'] else 'fails'}"
                              for (x, y), c in zip(SIGNATURE, sig)) + ").")
    report = "\n".join(L) + "\n"
    with open(os.path.join(a.out, "report.md.tmp"), "w") as f:
        f.write(report)
    os.replace(os.path.join(a.out, "report.md.tmp"), os.path.join(a.out, "report.md"))
    with open(os.path.join(a.out, "results.json.tmp"), "w") as f:
        json.dump({"seeds": seeds, "arms": arms, "results": res, "gold": gold, "pairs": pairs,
                   "comparisons": comps, "reproduced": reproduced}, f, indent=1)
    os.replace(os.path.join(a.out, "results.json.tmp"), os.path.join(a.out, "results.json"))
    scatter(os.path.join(a.out, "scatter.png"), res, gold, seeds, arms,
            f" ({a.title})" if a.title else "")
    print(report)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("report")
    rp.add_argument("--bin", required=True)
    rp.add_argument("--out", required=True)
    rp.add_argument("--seeds", type=int, required=True)
    rp.add_argument("--arms", required=True)
    rp.add_argument("--smoke", action="store_true")
    rp.add_argument("--note", default="")
    rp.add_argument("--title", default="", help="added to the figure's title")
    a = ap.parse_args()
    cmd_report(a)


if __name__ == "__main__":
    main()
