#!/usr/bin/env bash
# plot.sh — tools/plot.py draws a PNG with the expected panels from the metrics.jsonl of a
# small real run (loss, lr, grad_norm, throughput) overlaid with a second run that logs
# preference metrics, with steps or tokens on x; bad input exits 2 with one message.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_plot)
"$PY" tools/synth_shards.py --out "$D/data" --tokens 20000 --val-tokens 3000 >/dev/null
cat > "$D/run.json" <<EOF2
{"run": {"name": "p", "out_dir": "$D/run", "seed": 3},
 "model": {"n_layer": 1, "n_head": 2, "d_model": 16, "max_seq_len": 16},
 "tokenizer": {"type": "none"},
 "data": {"format": "tokens", "train": "$D/data/train.bin", "val": "$D/data/val.bin", "max_len": 16},
 "train": {"batch_size": 4, "max_steps": 20, "log_every": 2, "eval_every": 5, "eval_batches": 2, "save_every": 20}}
EOF2
"$BIN" train "$D/run.json" --quiet >"$D/train.log" 2>&1 || fail "small_run" "$(tail -2 "$D/train.log")"
# a second "run" with DPO-style metrics, as a preference run logs them
mkdir -p "$D/dpo"
for s in 2 4 6; do
  echo "{\"kind\": \"train\", \"step\": $s, \"loss\": 0.6$s, \"lr\": 1e-4, \"grad_norm\": 1.$s, \"tokens\": ${s}00, \"rewards/accuracies\": 0.$s, \"rewards/margins\": 0.1$s, \"tok_per_s\": 100}"
done > "$D/dpo/metrics.jsonl"
echo '{"kind": "eval", "step": 5, "loss": 0.6, "rewards/accuracies": 0.7}' >> "$D/dpo/metrics.jsonl"

out=$("$PY" tools/plot.py "$D/run" "$D/dpo" --labels pre,dpo --out "$D/fig.png" --json 2>&1)
if [ "$(head -c 8 "$D/fig.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; then
  pass "png_written"; else fail "png_written" "$out"; fi
panels=$("$PY" -c 'import json,sys; print(",".join(json.loads(sys.argv[1])["panels"]))' "$out" 2>/dev/null)
[ "$panels" = "loss,lr,grad_norm,rewards/accuracies,rewards/margins,tok_per_s" ] && pass "expected_panels" \
  || fail "expected_panels" "got \"$panels\" from: $out"
"$PY" tools/plot.py "$D/run/metrics.jsonl" --x tokens --metrics loss,lr --out "$D/tok.png" --json >"$D/tok.out" 2>&1 \
  && grep -q '"panels": \["loss", "lr"\]' "$D/tok.out" && pass "tokens_axis_and_metric_filter" \
  || fail "tokens_axis_and_metric_filter" "$(cat "$D/tok.out")"

pyerr() { # NAME WANT -- args: exit 2 and the message names WANT
  local name=$1 want=$2; shift 3
  local e; e=$("$PY" tools/plot.py "$@" 2>&1 >/dev/null); local rc=$?
  if [ $rc -eq 2 ] && grep -qF -- "$want" <<<"$e"; then pass "$name"; else fail "$name" "exit $rc: $e"; fi
}
pyerr no_metrics_file "no metrics.jsonl" -- "$D/nowhere" --out "$D/x.png"
{ echo '{"kind": "train", "step": 1, "loss": 1}'; echo 'not json'; echo '{"kind": "train", "step": 2, "loss": 1}'; } > "$D/bad.jsonl"
pyerr bad_line_named "bad.jsonl:2" -- "$D/bad.jsonl" --out "$D/x.png"
pyerr unknown_metric 'no metric "nope"' -- "$D/run" --metrics nope --out "$D/x.png"
[ ! -e "$D/x.png" ] && pass "no_output_on_error" || fail "no_output_on_error" "x.png written"
exit $((FAILS > 0))
