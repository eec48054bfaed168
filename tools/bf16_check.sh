#!/usr/bin/env bash
# bf16_check.sh [BUILD] — model.precision bf16 against fp32 on real training runs (too long
# for the test suite, whose tests/cli/bf16.sh does a short version):
#  1. the quickstart (configs/quickstart.json: a 0.8M-parameter GPT-2 on Debian's fortunes,
#     500 steps): fp32 and bf16, same seed and threads; the final validation loss of each
#     and their relative difference (goal: within 1%);
#  2. DPO on the reverse-the-word task (tools/run_pref_demo.sh's data and configs): from one
#     fp32 SFT checkpoint, DPO (configs/dpo-tiny.json) in fp32 and in bf16 for each seed in
#     SEEDS; the held-out loss, rewards/accuracies and rewards/margins (tinyalign eval, in
#     the run's own precision), as mean and spread over the seeds per precision: bf16
#     should sit within the seed-to-seed spread of fp32.
# Env: THREADS (quickstart threads, default 2), SEEDS (default "1 2 3"), SKIP_QUICKSTART=1,
# SKIP_DPO=1. Results: runs/bf16-check/results.jsonl and a table on stdout.
# Time: the quickstart ~3 min per precision on 2 quiet cores; DPO ~1 min per run.
set -euo pipefail
BUILD=${1:-build}
BIN=$BUILD/tinyalign
PY=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-2}
SEEDS=${SEEDS:-1 2 3}
OUT=runs/bf16-check
mkdir -p "$OUT"
RES=$OUT/results.jsonl
: > "$RES"
if ! "$BIN" info | grep -q "bf16 native"; then
  echo "bf16_check: this CPU cannot run model.precision bf16 ($("$BIN" info | tail -1))"; exit 1
fi
last_eval() { grep '"kind": "eval"' "$1/metrics.jsonl" | tail -1 | sed -E 's/.*"loss": ([0-9.e-]+).*/\1/'; }

if [ "${SKIP_QUICKSTART:-0}" != 1 ]; then
  bash tools/prepare_data.sh "$BUILD" >/dev/null
  for prec in fp32 bf16; do
    rm -rf "$OUT/quickstart-$prec"
    t0=$SECONDS
    "$BIN" train configs/quickstart.json --quiet --set run.out_dir="$OUT/quickstart-$prec" \
        --set run.threads="$THREADS" --set model.precision=$prec --set train.sample_every=0 \
        > "$OUT/quickstart-$prec.log" 2>&1
    echo "{\"run\": \"quickstart\", \"precision\": \"$prec\", \"val_loss\": $(last_eval "$OUT/quickstart-$prec"), \"seconds\": $((SECONDS - t0))}" >> "$RES"
    echo "== quickstart $prec: val loss $(last_eval "$OUT/quickstart-$prec") in $((SECONDS - t0))s" >&2
  done
fi

if [ "${SKIP_DPO:-0}" != 1 ]; then
  tools/prepare_pref_task.sh "$BUILD" >/dev/null
  SFT=$OUT/sft-tiny
  if [ ! -f "$SFT/checkpoints/latest" ] || [ "$(cat "$SFT/checkpoints/latest")" != step-00004000 ]; then
    rm -rf "$SFT"
    "$BIN" train configs/sft-tiny.json --quiet --set run.out_dir="$SFT" > "$OUT/sft-tiny.log" 2>&1
  fi
  for seed in $SEEDS; do
    for prec in fp32 bf16; do
      R=$OUT/dpo-$prec-s$seed
      rm -rf "$R"
      t0=$SECONDS
      "$BIN" train configs/dpo-tiny.json --quiet --set run.out_dir="$R" --set run.seed="$seed" \
          --set model.path="$SFT" --set model.precision=$prec > "$R.log" 2>&1
      ev=$("$BIN" eval configs/dpo-tiny.json --checkpoint "$R" --set model.path="$SFT" \
           --set model.precision=$prec 2>/dev/null)
      echo "{\"run\": \"dpo\", \"precision\": \"$prec\", \"seed\": $seed, \"eval\": $ev, \"seconds\": $((SECONDS - t0))}" >> "$RES"
      echo "== dpo $prec seed $seed: $ev" >&2
    done
  done
fi

"$PY" - "$RES" <<'EOF'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
q = {r["precision"]: r for r in rows if r["run"] == "quickstart"}
if q:
    a, b = q["fp32"]["val_loss"], q["bf16"]["val_loss"]
    print("quickstart final val loss: fp32 %.4f (%ds), bf16 %.4f (%ds): bf16 %+.2f%% (goal within 1%%)"
          % (a, q["fp32"]["seconds"], b, q["bf16"]["seconds"], 100 * (b - a) / a))
d = [r for r in rows if r["run"] == "dpo"]
if d:
    print("DPO (reverse-the-word, from one fp32 SFT checkpoint), held-out, mean +- sd over seeds %s:"
          % sorted({r["seed"] for r in d}))
    for k in ["loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected"]:
        cells = []
        for prec in ["fp32", "bf16"]:
            v = [r["eval"][k] for r in d if r["precision"] == prec and k in r["eval"]]
            if v:
                cells.append("%s %.4f +- %.4f" % (prec, st.mean(v), st.stdev(v) if len(v) > 1 else 0.0))
        print("  %-20s %s" % (k, " | ".join(cells)))
EOF
