#!/usr/bin/env python3
"""report_nado.py — the tables and figures of tools/repro_nado.sh (attribute-controlled
fine-tuning with a NADO guide, Meng et al. 2024, arXiv 2410.05559, banned-word attribute).

usage: report_nado.py --dir DIR --seeds N --lambdas "L ..." --parallel-lambdas "L ..."
                      [--sample-lambdas "L ..."]

Reads DIR/seed<s>/<arm>/eval/ (written by repro_nado.sh) and writes
  DIR/results.json   every number per arm and seed
  DIR/report.md      mean +- sample std over seeds per arm, and the wall-clock of the
                     sequential and parallel schedules (DIR/seed<s>/<sch>_<L>/wallclock.txt)
  DIR/tradeoff.png   violation rate vs clean perplexity, one point per arm and seed
  DIR/bars.png       the four metrics per arm, mean with the seeds' spread

Metrics per arm and seed:
  violation   share of the samples of held-out prompts that contain a banned word
              (1 - the banned: oracle's score)
  ppl_clean   exp(mean NLL per token) on held-out sentences without banned words (utility)
  ppl_banned  ... on held-out sentences with a banned word
  detection   share of held-out "check: SENTENCE ->" prompts (balanced) whose greedy answer
              starts with the right word ("yes": a banned word is in the sentence)
"""
import argparse
import json
import math
import os
import statistics
import sys


def arm_list(lambdas, plambdas, slambdas=()):
    arms = ["sft_full", "sft_filtered", "sft_cont", "guided"]
    arms += [f"seq_{l}" for l in lambdas] + [f"par_{l}" for l in plambdas]
    arms += [f"seqsamp_{l}" for l in slambdas]
    return arms


ARM_DOC = {
    "sft_full": "SFT on the full corpus (LLM_0)",
    "sft_filtered": "SFT on the filtered corpus (from scratch)",
    "sft_cont": "LLM_0 + 3 rounds of plain SFT (lambda 0: the utility control)",
    "guided": "LLM_0 + NADO_1 at decoding time (no fine-tuning)",
}


def describe(arm):
    if arm in ARM_DOC:
        return ARM_DOC[arm]
    sch, lam = arm.split("_", 1)
    if sch == "seqsamp":
        return (f"LLM_0 + 3 rounds NLL (corpus) + {lam} KL on the model's samples, sequential")
    return (f"LLM_0 + 3 rounds NLL + {lam} KL, "
            f"{'sequential' if sch == 'seq' else 'parallel (one-round lag)'}")


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def arm_metrics(e):
    rows = read_jsonl(os.path.join(e, "violations.jsonl"))
    scores = [r["score"] for row in rows for r in row["responses"]]
    if not scores:
        sys.exit(f"report_nado.py: {e}/violations.jsonl: no scored responses")
    judge = read_jsonl(os.path.join(e, "judge.jsonl"))
    right = 0
    for row in judge:
        words = row["responses"][0]["text"].split()
        right += bool(words) and words[0] == row["answer"]
    out = {"violation": 1 - sum(scores) / len(scores), "samples": len(scores),
           "detection": right / len(judge)}
    for f in ("clean", "banned"):
        m = json.load(open(os.path.join(e, f"ppl_{f}.json")))
        out[f"ppl_{f}"] = math.exp(m["loss"])
    return out


def mean_std(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seeds", type=int, required=True)
    ap.add_argument("--lambdas", default="")
    ap.add_argument("--parallel-lambdas", default="")
    ap.add_argument("--sample-lambdas", default="")
    a = ap.parse_args()
    lambdas, plambdas = a.lambdas.split(), a.parallel_lambdas.split()
    arms = arm_list(lambdas, plambdas, a.sample_lambdas.split())
    seeds = list(range(1, a.seeds + 1))
    res = {arm: {s: arm_metrics(os.path.join(a.dir, f"seed{s}", arm, "eval")) for s in seeds}
           for arm in arms}
    keys = ["violation", "ppl_clean", "ppl_banned", "detection"]
    summary = {arm: {k: mean_std([res[arm][s][k] for s in seeds]) for k in keys} for arm in arms}

    # wall-clock of the schedules (per seed, lambdas run in both)
    walls = {}
    for l in plambdas:
        for sch in ("seq", "par"):
            ts = []
            for s in seeds:
                p = os.path.join(a.dir, f"seed{s}", f"{sch}_{l}", "wallclock.txt")
                if os.path.exists(p):
                    last = [x for x in open(p) if x.startswith("total:")]
                    if last:
                        ts.append(float(last[0].split()[1]))
            walls[f"{sch}_{l}"] = ts
    nado1 = []
    for s in seeds:
        p = os.path.join(a.dir, f"seed{s}", "nado1_labels.jsonl")
        if os.path.exists(p):
            sc = [r["score"] for row in read_jsonl(p) for r in row["responses"]]
            nado1.append(1 - sum(sc) / len(sc))

    guide_acc = []
    for s in seeds:
        p = os.path.join(a.dir, f"seed{s}", "nado1_eval.json")
        if os.path.exists(p):
            guide_acc.append(json.load(open(p))["accuracy"])
    json.dump({"seeds": seeds, "nado1_heldout_accuracy": guide_acc, "per_seed": res,
               "summary": {arm: {k: {"mean": m, "std": sd} for k, (m, sd) in v.items()}
                           for arm, v in summary.items()},
               "wallclock": walls, "nado1_sample_violation": nado1},
              open(os.path.join(a.dir, "results.json"), "w"), indent=1)

    lines = [f"# NADO attribute control: results over {len(seeds)} seeds (mean ± std)", "",
             "| arm | what | violation rate ↓ | ppl clean ↓ | ppl banned | detection ↑ |",
             "|---|---|---|---|---|---|"]
    for arm in arms:
        v = summary[arm]
        lines.append(f"| {arm} | {describe(arm)} | {v['violation'][0]:.4f} ± {v['violation'][1]:.4f} "
                     f"| {v['ppl_clean'][0]:.3f} ± {v['ppl_clean'][1]:.3f} "
                     f"| {v['ppl_banned'][0]:.3f} ± {v['ppl_banned'][1]:.3f} "
                     f"| {v['detection'][0]:.3f} ± {v['detection'][1]:.3f} |")
    lines += ["", "Per seed (violation / ppl clean / ppl banned / detection):", ""]
    for arm in arms:
        cells = "; ".join(f"s{s}: {res[arm][s]['violation']:.4f} / {res[arm][s]['ppl_clean']:.3f} / "
                          f"{res[arm][s]['ppl_banned']:.3f} / {res[arm][s]['detection']:.3f}"
                          for s in seeds)
        lines.append(f"- {arm}: {cells}")
    if nado1:
        lines += ["", f"Violation rate of LLM_0's samples on the NADO_1 training prompts: "
                      + ", ".join(f"{x:.4f}" for x in nado1)]
    if guide_acc:
        lines += ["", "NADO_1's accuracy at telling held-out clean from banned-word sentences "
                      "(sigmoid(r) > 1/2 at the last position, balanced, chance 0.5): "
                      + ", ".join(f"{x:.3f}" for x in guide_acc)]
    if walls:
        lines += ["", "Wall-clock of the rounds (s, per seed; from each run's wallclock.txt; "
                      "round 1's NADO_1 is shared and not included):", ""]
        for k, ts in walls.items():
            lines.append(f"- {k}: " + ", ".join(f"{t:.0f}" for t in ts))
    open(os.path.join(a.dir, "report.md"), "w").write("\n".join(lines) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, arm in enumerate(arms):
        xs = [res[arm][s]["ppl_clean"] for s in seeds]
        ys = [res[arm][s]["violation"] for s in seeds]
        ax.scatter(xs, ys, color=colors[i % len(colors)], label=arm, s=28,
                   marker="os^Dv<>p*h"[i % 10])
    ax.set_xlabel("perplexity on held-out clean text (utility, lower is better)")
    ax.set_ylabel("violation rate of samples (lower is better)")
    ax.set_title("banned-word attribute: violations vs utility (one point per seed)")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(a.dir, "tradeoff.png"), dpi=110)

    fig, axs = plt.subplots(1, 4, figsize=(14, 3.8))
    titles = {"violation": "violation rate ↓", "ppl_clean": "ppl clean ↓",
              "ppl_banned": "ppl banned-word text", "detection": "detection accuracy ↑"}
    for ax, k in zip(axs, keys):
        ms = [summary[arm][k][0] for arm in arms]
        ax.bar(range(len(arms)), ms, color=[colors[i % len(colors)] for i in range(len(arms))],
               alpha=0.6)
        for i, arm in enumerate(arms):
            ax.scatter([i] * len(seeds), [res[arm][s][k] for s in seeds], color="k", s=8, zorder=3)
        ax.set_xticks(range(len(arms)))
        ax.set_xticklabels(arms, rotation=60, ha="right", fontsize=8)
        ax.set_title(titles[k])
        if k in ("ppl_clean", "ppl_banned"):
            lo = min(res[arm][s][k] for arm in arms for s in seeds)
            hi = max(res[arm][s][k] for arm in arms for s in seeds)
            ax.set_ylim(max(0, lo - 0.1 * (hi - lo + 1e-9) - 0.05), hi + 0.1 * (hi - lo + 1e-9) + 0.05)
    fig.tight_layout()
    fig.savefig(os.path.join(a.dir, "bars.png"), dpi=110)
    print(f"report_nado.py: wrote {a.dir}/report.md, results.json, tradeoff.png, bars.png")


if __name__ == "__main__":
    main()
