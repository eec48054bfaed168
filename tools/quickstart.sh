#!/usr/bin/env bash
# quickstart.sh BUILD — `make quickstart`: prepare the fortunes corpus and its tokenizer
# (tools/prepare_data.sh), train configs/quickstart.json from scratch (a fresh run each
# time), show the falling validation loss, and print a few samples from the result.
set -euo pipefail
BUILD=${1:-build}
BIN=$BUILD/tinyalign
t0=$(date +%s)
bash tools/prepare_data.sh "$BUILD"
rm -rf runs/quickstart
"$BIN" train configs/quickstart.json --quiet
echo
echo "== validation loss (runs/quickstart/metrics.jsonl)"
grep '"kind": "eval"' runs/quickstart/metrics.jsonl | sed -E 's/.*"step": ([0-9]+).*"loss": ([0-9.]+).*/  step \1: \2/'
if "$BIN" sample --help >/dev/null 2>&1; then
  echo
  echo "== samples (tinyalign sample --model runs/quickstart --temperature 0.8 --top-k 40)"
  for p in "The meaning of life is" "A computer" "Never"; do
    printf -- "--- %s" "$p"
    "$BIN" sample --model runs/quickstart --prompt "$p" --max-new-tokens 48 --temperature 0.8 \
        --top-k 40 --seed 1 2>/dev/null || true
    echo
  done
fi
echo "quickstart: done in $(( $(date +%s) - t0 ))s; the model is in runs/quickstart/checkpoints/latest"
