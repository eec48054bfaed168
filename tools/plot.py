#!/usr/bin/env python3
"""plot.py — training curves of one or several tinyalign runs, from their metrics.jsonl.

usage: plot.py RUN [RUN ...] --out FILE.png [--x step|tokens] [--labels A,B,...]
               [--metrics M1,M2,...] [--title TEXT] [--smooth N] [--json]

RUN is a run directory (its metrics.jsonl is read) or a metrics.jsonl file. One panel per
quantity, runs overlaid with a legend (one colour per run):
  loss        training loss (solid) and validation loss (dashed, markers)
  lr          learning rate
  grad_norm   global gradient norm before clipping
  <metric>    every other number the objective logs (rewards/accuracies, rewards/margins,
              logps/chosen, nll_loss, log_odds_ratio, kl, eval/score_mean, ...): its
              training values solid, its validation values dashed
  tok_per_s   throughput
--x tokens puts training tokens on the x axis instead of optimizer steps (validation points
are placed at the tokens of their step). --metrics keeps only the named panels (loss, lr,
grad_norm and metric names). --smooth N draws an N-point running mean of training curves.
Prints the panels it drew (or, with --json, one JSON object {"out", "panels", "runs"}).
Exit status 2 with one message on bad input (no metrics.jsonl, a line that is not JSON, an
unknown --metrics name). A last line cut short by a run still writing is skipped.

Record kinds in metrics.jsonl (written by `tinyalign train`): "data" (step 0: dataset sizes),
"train" (every log_every steps), "eval" (every eval_every steps), "sample" (texts; not plotted).
Needs Debian's python3-matplotlib.
"""
import argparse
import json
import math
import os
import sys

BOOKKEEPING = {"kind", "step", "epoch", "tokens", "elapsed_s", "tok_per_s", "samples"}
FIXED = ["loss", "lr", "grad_norm"]


def die(msg):
    print("plot.py: " + msg, file=sys.stderr)
    sys.exit(2)


def read_run(path):
    """Returns (label, train records, eval records) of one run."""
    f = os.path.join(path, "metrics.jsonl") if os.path.isdir(path) else path
    if not os.path.isfile(f):
        die("%s: no metrics.jsonl (expected a run directory or a metrics.jsonl file)" % path)
    with open(f, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    train, evals = [], []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if i >= len(lines) - 2:  # the last line of a run that is still writing
                print("plot.py: %s:%d: skipping a partial last line" % (f, i + 1), file=sys.stderr)
                continue
            die("%s:%d: not JSON (%s)" % (f, i + 1, e.msg))
        if not isinstance(rec, dict):
            die("%s:%d: expected a JSON object" % (f, i + 1))
        kind = rec.get("kind")
        if kind == "train":
            train.append(rec)
        elif kind == "eval":
            evals.append(rec)
    label = os.path.basename(os.path.normpath(path if os.path.isdir(path) else os.path.dirname(path) or "."))
    return label, train, evals


def numeric_keys(records):
    keys = []
    for r in records:
        for k, v in r.items():
            if k in BOOKKEEPING or k in keys:
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.append(k)
    return keys


def smooth(ys, n):
    if n <= 1:
        return ys
    out, acc, buf = [], 0.0, []
    for y in ys:
        buf.append(y)
        acc += y
        if len(buf) > n:
            acc -= buf.pop(0)
        out.append(acc / len(buf))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("runs", nargs="+", metavar="RUN")
    ap.add_argument("--out", required=True)
    ap.add_argument("--x", choices=["step", "tokens"], default="step")
    ap.add_argument("--labels", default="")
    ap.add_argument("--metrics", default="")
    ap.add_argument("--title", default="")
    ap.add_argument("--smooth", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    runs = [read_run(p) for p in a.runs]
    labels = [s for s in a.labels.split(",")] if a.labels else [r[0] for r in runs]
    if len(labels) != len(runs):
        die("--labels has %d names for %d runs" % (len(labels), len(runs)))
    if not any(r[1] or r[2] for r in runs):
        die("no train or eval records in %s" % ", ".join(a.runs))

    # panels: loss, lr, grad_norm, then every objective metric (train or eval), throughput
    panels = list(FIXED)
    for _, tr, ev in runs:
        for k in numeric_keys(tr) + numeric_keys(ev):
            if k not in panels:
                panels.append(k)
    if any("tok_per_s" in r for _, tr, _ in runs for r in tr):
        panels.append("tok_per_s")
    if a.metrics:
        want = [m.strip() for m in a.metrics.split(",") if m.strip()]
        for m in want:
            if m not in panels:
                die("--metrics: no metric \"%s\" in these runs (have: %s)" % (m, ", ".join(panels)))
        panels = want

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = min(3, len(panels))
    nrow = int(math.ceil(len(panels) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.4 * nrow), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = []
    for pi, name in enumerate(panels):
        ax = axes[pi // ncol][pi % ncol]
        any_line = False
        for ri, (_, tr, ev) in enumerate(runs):
            c = colours[ri % len(colours)]
            step_tokens = {r["step"]: r.get("tokens", 0) for r in tr if "step" in r}

            def xs_of(recs):
                if a.x == "step":
                    return [r["step"] for r in recs]
                xs = []
                known = sorted(step_tokens.items())
                for r in recs:  # eval steps between logged train steps: linear interpolation
                    s = r["step"]
                    if s in step_tokens:
                        xs.append(step_tokens[s])
                        continue
                    lo = max([kv for kv in known if kv[0] <= s], default=(0, 0))
                    hi = min([kv for kv in known if kv[0] >= s], default=lo)
                    t = 0.0 if hi[0] == lo[0] else (s - lo[0]) / (hi[0] - lo[0])
                    xs.append(lo[1] + t * (hi[1] - lo[1]))
                return xs

            trs = [r for r in tr if isinstance(r.get(name), (int, float)) and "step" in r]
            evs = [r for r in ev if isinstance(r.get(name), (int, float)) and "step" in r]
            if trs:
                ax.plot(xs_of(trs), smooth([r[name] for r in trs], a.smooth), color=c, lw=1.4,
                        label=labels[ri] + (" train" if evs else ""))
                any_line = True
            if evs:
                ax.plot(xs_of(evs), [r[name] for r in evs], color=c, lw=1.2, ls="--", marker="o",
                        ms=3, label=labels[ri] + " val")
                any_line = True
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("training tokens" if a.x == "tokens" else "step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if name in ("loss", "lr", "grad_norm") and any_line:
            vals = [r[name] for _, tr, ev in runs for r in tr + ev
                    if isinstance(r.get(name), (int, float))]
            if name == "lr" and vals and min(vals) > 0 and max(vals) / min(vals) > 50:
                ax.set_yscale("log")
        if any_line:
            ax.legend(fontsize=7)
            drawn.append(name)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    for pi in range(len(panels), nrow * ncol):
        axes[pi // ncol][pi % ncol].axis("off")
    if a.title:
        fig.suptitle(a.title)
    fig.tight_layout()
    tmp = a.out + ".tmp.png"
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, a.out)
    if a.json:
        print(json.dumps({"out": a.out, "panels": drawn, "runs": labels}))
    else:
        print("wrote %s: %d panel(s): %s" % (a.out, len(drawn), ", ".join(drawn)))


if __name__ == "__main__":
    main()
