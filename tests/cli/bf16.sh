#!/usr/bin/env bash
# bf16.sh — model.precision / model.backend end to end on synthetic token shards:
# a bf16 run trains (val loss falls, fp32 checkpoints), is bit-identical run to run and
# resumes bit-exactly; resuming it in fp32 and back in bf16 is refused naming
# model.precision (--force continues, and bf16 -> fp32 -> bf16 ends where bf16 does); its
# checkpoint evaluates in fp32 and bf16 alike; fp32 on the oneDNN backend trains; bf16
# is refused (exit 2, one message naming the key) with the OpenBLAS backend and on a CPU
# without AVX512-BF16 (simulated with oneDNN's DNNL_MAX_CPU_ISA); bench and sample take
# --precision.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_bf16)
"$PY" tools/synth_shards.py --out "$D/data" --tokens 40000 --val-tokens 4000 >/dev/null

cat > "$D/base.json" <<EOF2
{"run": {"name": "b", "out_dir": "$D/straight", "seed": 3, "threads": 2},
 "model": {"n_layer": 2, "n_head": 2, "d_model": 64, "max_seq_len": 32, "precision": "bf16"},
 "tokenizer": {"type": "none"},
 "data": {"format": "tokens", "train": "$D/data/train.bin", "val": "$D/data/val.bin", "max_len": 32},
 "optim": {"lr": 3e-3, "warmup_steps": 3, "weight_decay": 0.1},
 "train": {"batch_size": 4, "grad_accum": 2, "max_steps": 24, "log_every": 4, "eval_every": 8,
           "eval_batches": 3, "save_every": 8}}
EOF2
train() { "$BIN" train "$D/base.json" --quiet "$@"; }
final() { echo "$1/checkpoints/step-00000024/model.safetensors"; }
strip_timing() { sed -E 's/, "tok_per_s": [^,}]*//; s/, "elapsed_s": [^,}]*//' "$1"; }

"$BIN" train --help-config | grep -q "model.precision" && "$BIN" train --help-config | grep -q "model.backend" \
  && pass "help_config_lists_precision_and_backend" || fail "help_config_lists_precision_and_backend" "missing"

expect_err "bf16_with_openblas_refused" "model.precision" "bf16" "model.backend" -- \
  train --set run.out_dir="$D/bad1" --set model.backend=openblas

if ! "$BIN" info | grep -q "bf16 native"; then
  # this CPU cannot run bf16: the refusal is the behaviour
  expect_err "bf16_refused_on_this_cpu" "model.precision" "AVX512-BF16" -- train --set run.out_dir="$D/bad2"
  exit $((FAILS > 0))
fi
# the same refusal on a CPU oneDNN sees without AVX512-BF16
expect_err "bf16_refused_without_avx512_bf16" "model.precision" "AVX512-BF16" "avx512_core" -- \
  env DNNL_MAX_CPU_ISA=AVX512_CORE "$BIN" train "$D/base.json" --quiet --set run.out_dir="$D/bad3"
expect_err "bench_bf16_refused_without_avx512_bf16" "model.precision" "AVX512-BF16" -- \
  env DNNL_MAX_CPU_ISA=AVX512_CORE "$BIN" bench --precision bf16 --steps 1
[ ! -e "$D/bad3" ] && pass "refusal_leaves_no_run_dir" || fail "refusal_leaves_no_run_dir" "$D/bad3 created"

# ---- a bf16 run: trains, reports, checkpoints stay fp32 ----------------------------------
if train >"$D/straight.log" 2>&1; then pass "bf16_run"; else fail "bf16_run" "$(tail -3 "$D/straight.log")"; fi
grep -q "matmuls: onednn bf16" "$D/straight.log" && pass "setup_names_bf16" || fail "setup_names_bf16" "$(grep matmuls "$D/straight.log")"
first=$(grep '"kind": "eval"' "$D/straight/metrics.jsonl" | head -1 | sed -E 's/.*"loss": ([0-9.]+).*/\1/')
last=$(grep '"kind": "eval"' "$D/straight/metrics.jsonl" | tail -1 | sed -E 's/.*"loss": ([0-9.]+).*/\1/')
if "$PY" -c "import sys; sys.exit(0 if float(sys.argv[2]) < float(sys.argv[1]) - 0.1 else 1)" "$first" "$last"; then
  pass "bf16_val_loss_falls ($first -> $last)"; else fail "bf16_val_loss_falls" "$first -> $last"; fi
grep -q '"precision": "bf16"' "$D/straight/config.json" && pass "run_config_stores_precision" \
  || fail "run_config_stores_precision" "no precision in config.json"
if "$PY" - "$(final "$D/straight")" <<'EOF2'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n]); h.pop("__metadata__", None)
sys.exit(0 if all(v["dtype"] == "F32" for v in h.values()) else 1)
EOF2
then pass "bf16_checkpoint_is_fp32"; else fail "bf16_checkpoint_is_fp32" "non-F32 tensors"; fi

# ---- determinism: run to run, and resume ---------------------------------------------------
train --set run.out_dir="$D/again" >/dev/null 2>&1
cmp -s "$(final "$D/straight")" "$(final "$D/again")" && pass "bf16_bitwise_run_to_run" \
  || fail "bf16_bitwise_run_to_run" "two identical bf16 runs differ"
R="$D/stop"
train --set run.out_dir="$R" --stop-after 9 >/dev/null 2>&1
"$BIN" resume "$R" >/dev/null 2>&1
if cmp -s "$(final "$D/straight")" "$(final "$R")" && \
   diff <(strip_timing "$D/straight/metrics.jsonl") <(strip_timing "$R/metrics.jsonl") >/dev/null; then
  pass "bf16_resume_bitexact"; else fail "bf16_resume_bitexact" "model or metrics differ after stop at 9 + resume"; fi

# ---- another precision on resume: refused naming the key, --force continues ------------------
R2="$D/switch"
train --set run.out_dir="$R2" --stop-after 8 >/dev/null 2>&1
err=$(train --set run.out_dir="$R2" --resume --set model.precision=fp32 2>&1 >/dev/null); rc=$?
if [ $rc -eq 2 ] && grep -q 'model.precision: "bf16" -> "fp32"\|model.precision: bf16 -> fp32' <<<"$err"; then
  pass "resume_in_fp32_refused"; else fail "resume_in_fp32_refused" "exit $rc: $err"; fi
if train --set run.out_dir="$R2" --resume --set model.precision=fp32 --force --stop-after 16 >"$D/force.log" 2>&1 \
   && grep -q "matmuls: openblas fp32" "$D/force.log"; then
  pass "resume_in_fp32_force"; else fail "resume_in_fp32_force" "$(tail -2 "$D/force.log")"; fi
# ... and back: the run (now fp32 from step 8) resumes in bf16 for steps 16-24
err=$(train --set run.out_dir="$R2" --resume 2>&1 >/dev/null); rc=$?
if [ $rc -eq 2 ] && grep -q 'model.precision: "fp32" -> "bf16"\|model.precision: fp32 -> bf16' <<<"$err"; then
  pass "resume_back_in_bf16_refused"; else fail "resume_back_in_bf16_refused" "exit $rc: $err"; fi
if train --set run.out_dir="$R2" --resume --force >"$D/back.log" 2>&1 \
   && grep -q "matmuls: onednn bf16" "$D/back.log" && [ -f "$(final "$R2")" ]; then
  pass "resume_back_in_bf16_force"; else fail "resume_back_in_bf16_force" "$(tail -2 "$D/back.log")"; fi
# bf16 -> fp32 -> bf16 ends where the straight bf16 run does, up to bf16 noise (1% of the loss)
a=$(grep '"kind": "eval"' "$D/straight/metrics.jsonl" | tail -1 | sed -E 's/.*"loss": ([0-9.]+).*/\1/')
b=$(grep '"kind": "eval"' "$R2/metrics.jsonl" | tail -1 | sed -E 's/.*"loss": ([0-9.]+).*/\1/')
if "$PY" -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(a - b) <= 0.01 * a else 1)" "$a" "$b"; then
  pass "bf16_fp32_bf16_matches_straight ($b vs $a)"; else fail "bf16_fp32_bf16_matches_straight" "$b vs straight $a"; fi

# ---- the bf16 checkpoint evaluates in fp32 and bf16: the same loss up to bf16 noise ----------
e32=$("$BIN" eval "$D/base.json" --checkpoint "$D/straight" --set model.precision=fp32 2>/dev/null | sed -E 's/.*"loss": ([0-9.e-]+).*/\1/')
e16=$("$BIN" eval "$D/base.json" --checkpoint "$D/straight" 2>/dev/null | sed -E 's/.*"loss": ([0-9.e-]+).*/\1/')
if "$PY" -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(a - b) <= 0.01 * a else 1)" "$e32" "$e16"; then
  pass "eval_fp32_and_bf16_agree ($e32 / $e16)"; else fail "eval_fp32_and_bf16_agree" "fp32 $e32 vs bf16 $e16"; fi

# ---- fp32 on oneDNN trains; bench and sample take --precision ---------------------------------
if train --set run.out_dir="$D/dnn32" --set model.precision=fp32 --set model.backend=onednn >"$D/dnn32.log" 2>&1 \
   && grep -q "matmuls: onednn fp32" "$D/dnn32.log"; then
  pass "fp32_onednn_run"; else fail "fp32_onednn_run" "$(tail -2 "$D/dnn32.log")"; fi
out=$("$BIN" bench --layers 2 --heads 2 --dim 64 --vocab 256 --batch 2 --seq 32 --steps 1 --warmup 0 --precision bf16 --json 2>&1)
grep -q '"precision": "bf16", "backend": "onednn"' <<<"$out" && pass "bench_precision_bf16" || fail "bench_precision_bf16" "$out"
out=$("$BIN" bench --layers 2 --heads 2 --dim 64 --vocab 256 --batch 2 --seq 32 --steps 1 --warmup 0 --forward-only --reward --precision bf16 --json 2>&1)
grep -q '"mode": "reward_forward".*"precision": "bf16"' <<<"$out" && pass "bench_reward_forward_bf16" || fail "bench_reward_forward_bf16" "$out"
out=$("$BIN" sample --model "$D/straight" --bench --batch 2 --prompt-len 4 --max-new-tokens 4 --precision bf16 2>&1)
grep -q '"precision": "bf16"' <<<"$out" && pass "sample_precision_bf16" || fail "sample_precision_bf16" "$out"
expect_err "sample_bad_precision" "--precision" "fp32 or bf16" -- "$BIN" sample --model "$D/straight" --bench --precision fp16
exit $((FAILS > 0))
