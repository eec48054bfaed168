#!/usr/bin/env bash
# faults.sh — the trainer under write faults. Each fault hits a live run in the middle of a
# checkpoint write (or of a metrics line); the run must stop with exit 1 and one message
# naming the file, the system's reason and the last good checkpoint; `latest` must still
# name that checkpoint, no step-N.tmp may be left behind, and `tinyalign resume` after
# the cause is gone must end with the same bytes as a straight run.
#   - injected (TINYALIGN_FAULT=ERR:PATH-PART, src/core/common.c): disk full (ENOSPC) on
#     optim.safetensors, state.json, checkpoints/latest and metrics.jsonl; read-only
#     (EROFS) on model.safetensors and on the step directory; always run;
#   - real: a 500 KiB tmpfs that fills up during the second checkpoint, and a checkpoints/
#     directory bind-mounted read-only under a live run (in a private mount namespace:
#     `unshare -m` as root, `unshare -rm` otherwise; skipped with a note where neither works);
#   - a step-N.tmp directory removed by hand while the run writes into it.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_faults)
"$PY" tools/synth_shards.py --out "$D/data" --tokens 30000 --val-tokens 3000 >/dev/null

cat > "$D/base.json" <<EOF2
{"run": {"name": "f", "out_dir": "$D/straight", "seed": 11, "threads": 1},
 "model": {"n_layer": 2, "n_head": 2, "d_model": 32, "max_seq_len": 32},
 "tokenizer": {"type": "none"},
 "data": {"format": "tokens", "train": "$D/data/train.bin", "val": "$D/data/val.bin", "max_len": 32},
 "optim": {"lr": 3e-3, "warmup_steps": 5},
 "train": {"batch_size": 4, "max_steps": 30, "log_every": 5, "eval_every": 10,
           "eval_batches": 2, "save_every": 10}}
EOF2
train() { "$BIN" train "$D/base.json" --quiet "$@"; }
FINAL=checkpoints/step-00000030/model.safetensors
strip_timing() { sed -E 's/, "tok_per_s": [^,}]*//; s/, "elapsed_s": [^,}]*//' "$1"; }
if train >"$D/straight.log" 2>&1; then pass "straight_run"; else fail "straight_run" "$(tail -3 "$D/straight.log")"; fi

# stopped NAME RUN RC ERR WANT_LATEST WANT...: the faulted run exited 1 with one message
# holding every WANT and naming the last good checkpoint; latest unchanged; no *.tmp left
stopped() {
  local name=$1 run=$2 rc=$3 err=$4 latest=$5; shift 5
  err=$(grep -v -E '^(checkpoint: |step [0-9]|eval step|data: |model: |BLAS|matmuls: |objective: |resumed from)' <<<"$err")
  if [ "$rc" -ne 1 ]; then fail "$name" "exit $rc (expected 1): $err"; return 1; fi
  for w in "$@"; do
    grep -qF -- "$w" <<<"$err" || { fail "$name" "message lacks \"$w\": $err"; return 1; }
  done
  [ "$(grep -c . <<<"$err")" -eq 1 ] || { fail "$name" "expected one message line: $err"; return 1; }
  local got; got=$(cut -d' ' -f1 "$run/checkpoints/latest" 2>/dev/null)
  [ "$got" = "$latest" ] || { fail "$name" "latest is \"$got\", expected $latest"; return 1; }
  ls -d "$run"/checkpoints/*.tmp "$run"/checkpoints/*/*.tmp >/dev/null 2>&1 && { fail "$name" "a .tmp is left"; return 1; }
  # the run summary is still written, silently: it says an error ended the run
  "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(s["exit_reason"] != "error" or s["exit_status"] != 1)' \
    "$run/summary.json" 2>/dev/null || { fail "$name" "no summary.json with exit_reason error"; return 1; }
  pass "$name"
}
# resumes NAME RUN: resume to the end gives the straight run's model and metrics
resumes() {
  local out
  if ! out=$("$BIN" resume "$2" 2>&1); then fail "$1" "resume failed: $(tail -1 <<<"$out")"; return; fi
  if ! cmp -s "$D/straight/$FINAL" "$2/$FINAL"; then fail "$1" "final model differs from the straight run"; return; fi
  if ! diff <(strip_timing "$D/straight/metrics.jsonl") <(strip_timing "$2/metrics.jsonl") >/dev/null; then
    fail "$1" "metrics.jsonl differs: $(diff <(strip_timing "$D/straight/metrics.jsonl") <(strip_timing "$2/metrics.jsonl") | head -3)"; return; fi
  pass "$1"
}

# ---- injected faults: each one at step 20, the checkpoint of step 10 is the last good ------
# (name, TINYALIGN_FAULT, the words the message must hold)
while IFS='|' read -r name fault w1 w2; do
  R="$D/inj_$name"
  err=$(TINYALIGN_FAULT="$fault" train --set run.out_dir="$R" 2>&1); rc=$?
  stopped "injected/$name/stops" "$R" $rc "$err" step-00000010 "$w1" "$w2" "step-00000010, is intact" "tinyalign resume $R" \
    && resumes "injected/$name/resume_bitexact" "$R"
done <<'EOF'
enospc_optim|ENOSPC:step-00000020.tmp/optim|optim.safetensors.tmp: write failed|No space left on device
enospc_state|ENOSPC:step-00000020.tmp/state.json|state.json.tmp: write failed|No space left on device
erofs_model|EROFS:step-00000020.tmp/model|model.safetensors.tmp: cannot create|Read-only file system
erofs_stepdir|EROFS:step-00000020.tmp|step-00000020.tmp: cannot create|Read-only file system
EOF
# `latest` itself cannot be written: the new step directory exists, latest still names the
# previous one, and resume (through latest) re-does step 20 from there
R="$D/inj_latest"
train --set run.out_dir="$R" --stop-after 10 >/dev/null 2>&1
err=$(TINYALIGN_FAULT="ENOSPC:checkpoints/latest" "$BIN" resume "$R" 2>&1); rc=$?
stopped "injected/enospc_latest/stops" "$R" $rc "$err" step-00000010 "latest.tmp: write failed" "step-00000010, is intact" \
  && resumes "injected/enospc_latest/resume_bitexact" "$R"
# metrics.jsonl cannot be written: the run stops at the first log line instead of training
# on without its metrics
R="$D/inj_metrics"
err=$(TINYALIGN_FAULT="ENOSPC:metrics.jsonl" train --set run.out_dir="$R" 2>&1); rc=$?
err=$(grep -v -E '^(step [0-9]|data: |model: |BLAS|objective: )' <<<"$err")
if [ $rc -eq 1 ] && grep -q "metrics.jsonl: write failed: No space left on device" <<<"$err" \
   && grep -q "no checkpoint was written yet" <<<"$err" && [ ! -e "$R/checkpoints/latest" ]; then
  pass "injected/enospc_metrics/stops"; else fail "injected/enospc_metrics/stops" "exit $rc: $err"; fi

# ---- a step directory removed while the run writes into it --------------------------------
R="$D/removed"
TINYALIGN_CKPT_DELAY_MS=300 train --set run.out_dir="$R" >"$D/removed.log" 2>&1 &
pid=$!
for _ in $(seq 1000); do [ -d "$R/checkpoints/step-00000020.tmp" ] && break; sleep 0.01; done
if [ -d "$R/checkpoints/step-00000020.tmp" ]; then
  rm -rf "$R/checkpoints/step-00000020.tmp"
  wait $pid; rc=$?
  stopped "removed_step_tmp/stops" "$R" $rc "$(cat "$D/removed.log")" step-00000010 "step-00000020.tmp" \
    "step-00000010, is intact" && resumes "removed_step_tmp/resume_bitexact" "$R"
else
  kill $pid 2>/dev/null; wait $pid 2>/dev/null; fail "removed_step_tmp/stops" "never saw step-00000020.tmp"
fi

# ---- real faults in a private mount namespace ---------------------------------------------
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then NS="unshare -m"
elif unshare -rm true 2>/dev/null; then NS="unshare -rm"
else NS=""; fi
if [ -n "$NS" ]; then
  # the disk fills up during the checkpoint of step 20 (one checkpoint is ~350 KiB)
  mkdir -p "$D/tmpfs"
  out=$($NS bash -c '
    set -u; D=$1; BIN=$2
    mount -t tmpfs -o size=500k tmpfs "$D/tmpfs" || { echo "MOUNT_FAILED"; exit 0; }
    "$BIN" train "$D/base.json" --quiet --set run.out_dir="$D/tmpfs/run" >"$D/full.log" 2>&1; echo "RC=$?"
    echo "LATEST=$(cat "$D/tmpfs/run/checkpoints/latest")"
    ls -d "$D"/tmpfs/run/checkpoints/*.tmp 2>/dev/null | sed "s/^/TMP=/"
    mount -o remount,size=4m "$D/tmpfs"
    "$BIN" resume "$D/tmpfs/run" >"$D/full_resume.log" 2>&1; echo "RESUME=$?"
    cp "$D/tmpfs/run/checkpoints/step-00000030/model.safetensors" "$D/full_final.safetensors"
    cp "$D/tmpfs/run/metrics.jsonl" "$D/full_metrics.jsonl"' _ "$D" "$ROOT/$BIN" 2>&1)
  if grep -q MOUNT_FAILED <<<"$out"; then
    echo "note: tmpfs cannot be mounted here ($NS): the real disk-full case is covered by the injected ones only"
  else
    msg=$(grep -v -E '^(checkpoint: |step [0-9]|eval step|data: |model: |BLAS|objective: )' "$D/full.log")
    if grep -q "RC=1" <<<"$out" && grep -q "LATEST=step-00000010" <<<"$out" && ! grep -q "TMP=" <<<"$out" \
       && grep -q "No space left on device" <<<"$msg" && grep -q "step-00000010, is intact" <<<"$msg"; then
      pass "tmpfs_full/stops_latest_intact"; else fail "tmpfs_full/stops_latest_intact" "$out | $msg"; fi
    if grep -q "RESUME=0" <<<"$out" && cmp -s "$D/straight/$FINAL" "$D/full_final.safetensors" \
       && diff <(strip_timing "$D/straight/metrics.jsonl") <(strip_timing "$D/full_metrics.jsonl") >/dev/null; then
      pass "tmpfs_full/resume_bitexact"; else fail "tmpfs_full/resume_bitexact" "$out $(tail -1 "$D/full_resume.log")"; fi
  fi
  # checkpoints/ turns read-only under a live run (a bind mount of it, remounted ro)
  R="$D/ro"
  train --set run.out_dir="$R" --stop-after 10 >/dev/null 2>&1
  out=$($NS bash -c '
    set -u; R=$1; BIN=$2
    mount --bind "$R/checkpoints" "$R/checkpoints" && mount -o remount,bind,ro "$R/checkpoints" \
      || { echo "MOUNT_FAILED"; exit 0; }
    "$BIN" resume "$R" >"$R.log" 2>&1; echo "RC=$?"' _ "$R" "$ROOT/$BIN" 2>&1)
  if grep -q MOUNT_FAILED <<<"$out"; then
    echo "note: no read-only bind mount here ($NS): the read-only case is covered by the injected ones only"
  else
    stopped "readonly_checkpoints/stops" "$R" "$(sed -n 's/^RC=//p' <<<"$out")" "$(cat "$R.log")" step-00000010 \
      "Read-only file system" "step-00000010, is intact" && resumes "readonly_checkpoints/resume_bitexact" "$R"
  fi
else
  echo "note: no private mount namespace (unshare): the real tmpfs and read-only cases are covered by the injected ones only"
fi

[ "$FAILS" -eq 0 ]
