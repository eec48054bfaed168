#!/usr/bin/env bash
# mpi.sh — data parallel training under `mpirun -np 2` (build/tinyalign-mpi, one thread per
# rank, a 2-layer model, 20 steps; independent runs go in parallel, since each mpirun
# start costs a second or two): mpirun -np 1 is bit-identical to the binary
# without MPI; two runs at N = 2 are bit-identical; N = 2 agrees with N = 1 within float
# tolerance (the measured difference is printed); rank 0 alone writes and reports; a stop
# and resume at N = 2 is bit-exact, a resume at N = 1 of an N = 2 run continues it; SIGINT
# on rank 1 / SIGTERM on rank 0 stops both after one save (exit 130 / 143) and the resume
# is bit-exact; a rank killed with -9 stops the job; DPO
# with a cached reference built by both ranks, and `eval`, agree with N = 1; bad input:
# a batch that does not split among the ranks, ranks with different configs, options or
# binaries, a run directory that one rank does not see at resume, and the build without
# MPI started by mpirun; a metrics or checkpoint write failing on rank 0 stops both (exit
# 1). Skipped, with the reason printed, when MPI is not installed.
source "$(dirname "$0")/../lib.sh"
MBIN=${TA_BUILD:-build}/tinyalign-mpi
if ! command -v mpirun >/dev/null; then echo "SKIP mpi: mpirun not found (make deps installs openmpi-bin)"; exit 0; fi
if [ ! -x "$MBIN" ]; then echo "SKIP mpi: $MBIN was not built (needs libopenmpi-dev: make deps, then make)"; exit 0; fi
# --oversubscribe: 2 ranks even on a machine with fewer cores; root needs the explicit flag
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
D=$(scratch_dir cli_mpi)
"$PY" tools/synth_shards.py --out "$D/data" --tokens 30000 --val-tokens 3000 >/dev/null

cat > "$D/base.json" <<EOF2
{"run": {"name": "t", "out_dir": "$D/one", "seed": 7, "threads": 1},
 "model": {"n_layer": 2, "n_head": 2, "d_model": 32, "max_seq_len": 32},
 "tokenizer": {"type": "none"},
 "data": {"format": "tokens", "train": "$D/data/train.bin", "val": "$D/data/val.bin", "max_len": 32},
 "optim": {"lr": 3e-3, "warmup_steps": 5, "weight_decay": 0.1},
 "train": {"batch_size": 4, "grad_accum": 2, "max_steps": 20, "log_every": 5, "eval_every": 10,
           "eval_batches": 3, "save_every": 10}}
EOF2
one() { "$BIN" train "$D/base.json" --quiet "$@"; }
np() { local n=$1; shift; "${MPIRUN[@]}" -np "$n" "$MBIN" "$@"; }
strip_timing() { sed -E 's/, "tok_per_s": [^,}]*//; s/, "elapsed_s": [^,}]*//' "$1"; }
FINAL=checkpoints/step-00000020/model.safetensors
same_bits() { # NAME A B: same final model and metrics
  if ! cmp -s "$2/$FINAL" "$3/$FINAL"; then fail "$1" "final model.safetensors differs"; return; fi
  if ! diff <(strip_timing "$2/metrics.jsonl") <(strip_timing "$3/metrics.jsonl") >/dev/null; then
    fail "$1" "metrics differ: $(diff <(strip_timing "$2/metrics.jsonl") <(strip_timing "$3/metrics.jsonl") | head -2)"; return; fi
  pass "$1"
}
# close_runs NAME A B TOL_W TOL_LOSS: weights within TOL_W (max abs) and every logged loss,
# grad norm and metric within TOL_LOSS relative (+ 1e-6 absolute); prints the measured
# differences
close_runs() {
  local out
  if out=$("$PY" - "$@" <<'EOF3'
import json, struct, sys
import numpy as np
name, a, b, tol_w, tol_l = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
def weights(run):
    raw = open(run + "/checkpoints/" + open(run + "/checkpoints/latest").read().split()[0] + "/model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]; hdr = json.loads(raw[8:8 + n]); data = raw[8 + n:]
    return {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], np.float32)
            for k, v in hdr.items() if k != "__metadata__"}
wa, wb = weights(a), weights(b)
dw = max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)
def rows(run):
    return [json.loads(l) for l in open(run + "/metrics.jsonl") if '"kind": "train"' in l or '"kind": "eval"' in l]
ra, rb = rows(a), rows(b)
assert len(ra) == len(rb), "%d vs %d metrics lines" % (len(ra), len(rb))
dl, worst, raw = 0.0, "", 0.0  # dl: beyond 1e-6 absolute (values near 0); raw: values >= 0.01
for x, y in zip(ra, rb):
    for k, v in x.items():
        if k in ("tok_per_s", "elapsed_s") or not isinstance(v, float):
            continue
        m = max(abs(v), abs(y[k]))
        if m >= 0.01:
            raw = max(raw, abs(v - y[k]) / m)
        d = abs(v - y[k]) - 1e-6
        if d > 0 and d / m > dl:
            dl, worst = d / m, "%s %s step %d: %.9g vs %.9g" % (x["kind"], k, x["step"], v, y[k])
print("max |dw| %.2g, metrics max rel diff %.2g" % (dw, raw) + (" (%s)" % worst if dl > tol_l else ""))
sys.exit(0 if dw <= tol_w and dl <= tol_l else 1)
EOF3
  ); then pass "$1 ($out)"; else fail "$1" "$out"; fi
}
# ---- N = 1 under mpirun is the binary without MPI; N = 2 is deterministic ------------------
one >"$D/one.log" 2>&1 &
np 1 train "$D/base.json" --quiet --set run.out_dir="$D/mpi1" >"$D/mpi1.log" 2>&1 &
np 2 train "$D/base.json" --quiet --set run.out_dir="$D/two" >"$D/two.log" 2>&1 &
np 2 train "$D/base.json" --quiet --set run.out_dir="$D/two_again" >/dev/null 2>&1 &
np 2 train "$D/base.json" --quiet --set run.out_dir="$D/stop" --stop-after 7 >/dev/null 2>&1 &
wait
same_bits "np1_bit_identical_to_build_without_mpi" "$D/one" "$D/mpi1"
same_bits "np2_runs_bit_identical" "$D/two" "$D/two_again"
close_runs "np2_agrees_with_np1" "$D/one" "$D/two" 1e-4 1e-5
# rank 0 alone reports: each progress line and the checkpoint lines once, no "[rank 1]"
if [ "$(grep -c '^step 20/20' "$D/two.log")" -eq 1 ] && [ "$(grep -c '^checkpoint: ' "$D/two.log")" -eq 2 ] \
   && ! grep -q '^\[rank' "$D/two.log" && grep -q 'data parallel: 2 ranks x 1 thread, 2 of the 4 examples' "$D/two.log"; then
  pass "np2_rank0_reports_alone"; else fail "np2_rank0_reports_alone" "$(grep -E '^(step 20|checkpoint|\[rank|data parallel)' "$D/two.log")"; fi

# ---- resume: same N bit-exact; another N allowed (the data cursor is global) ---------------
cp -r "$D/stop" "$D/stop1"
np 2 resume "$D/stop" >"$D/stop.log" 2>&1 &
"$BIN" resume "$D/stop1" >"$D/stop1.log" 2>&1 &
wait
same_bits "np2_stop_resume_bit_exact" "$D/two" "$D/stop"
close_runs "resume_np2_run_at_np1" "$D/one" "$D/stop1" 1e-4 1e-5

# ---- a signal on any rank: both finish the step, rank 0 saves once, exit 130 / 143 ---------
# SIGINT to rank 1 and SIGTERM to rank 0 (found by OMPI_COMM_WORLD_RANK), in parallel; each
# run then resumes to the bit-exact end of the uninterrupted run
rank_pid() { # MPIRUN_PID RANK
  local p
  for p in $(pgrep -P "$1"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
  done
}
signal_run() { # NAME SIGNAL RANK
  local R="$D/$1"
  TINYALIGN_CKPT_DELAY_MS=200 "${MPIRUN[@]}" -np 2 "$MBIN" train "$D/base.json" --quiet --set run.out_dir="$R" >"$D/$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 500); do grep -q '"step": 5' "$R/metrics.jsonl" 2>/dev/null && break; sleep 0.01; done
  kill -"$2" "$(rank_pid $pid "$3")"; wait $pid; echo $? >"$D/$1.rc"
  [ "$(cat "$D/$1.rc")" -ne 0 ] && np 2 resume "$R" >/dev/null 2>&1
}
signal_run sigint INT 1 &
signal_run sigterm TERM 0 &
wait
for c in "sigint INT 130 1" "sigterm TERM 143 0"; do
  set -- $c
  rc=$(cat "$D/$1.rc"); saved=$(sed -n 's/^checkpoint: .*\(step-[0-9]*\).*/\1/p' "$D/$1.log" | tail -1)
  if [ "$rc" -eq "$3" ] && [ "$(grep -c "SIG$2 received" "$D/$1.log")" -eq 1 ] && [ -n "$saved" ]; then pass "sig${2,,}_on_rank_$4_saves_exit_$3 ($saved)"
  elif [ "$rc" -eq 0 ]; then pass "sig${2,,}_on_rank_$4_saves_exit_$3 (the run finished before the signal)"
  else fail "sig${2,,}_on_rank_$4_saves_exit_$3" "exit $rc: $(grep -v '^step' "$D/$1.log" | tail -3)"; fi
  same_bits "sig${2,,}_resume_bit_exact" "$D/two" "$D/$1"
done

# ---- a rank killed with -9: mpirun stops the other one and names the rank -------------------
"${MPIRUN[@]}" -np 2 "$MBIN" train "$D/base.json" --quiet --set run.out_dir="$D/kill9" --set train.max_steps=100000 >"$D/kill9.log" 2>&1 &
pid=$!
for _ in $(seq 500); do grep -q '"step": 5' "$D/kill9/metrics.jsonl" 2>/dev/null && break; sleep 0.01; done
t0=$(date +%s); kill -9 "$(pgrep -P $pid | tail -1)"
for _ in $(seq 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then kill -9 $pid; fail "killed_rank_stops_the_job" "still running after 30 s"
else wait $pid; rc=$?
  if [ $rc -ne 0 ] && grep -q "exited on signal 9" "$D/kill9.log"; then pass "killed_rank_stops_the_job ($(( $(date +%s) - t0 )) s, exit $rc)"
  else fail "killed_rank_stops_the_job" "exit $rc: $(tail -3 "$D/kill9.log")"; fi
fi

# ---- DPO with a cached reference: both ranks build the cache, rank 0 writes it -------------
T="$D/task"
"$PY" tools/gen_pref_task.py --out "$T" --sft 400 --val 16 --prefs 64 --pref-val 21 >/dev/null
"$BIN" tokenizer train --input "$T/tok_corpus.txt" --vocab-size 32 --model-type bpe \
    --byte-fallback 0 --character-coverage 1.0 --out "$T/spm" >/dev/null 2>&1
cat > "$D/sft.json" <<EOF2
{"run": {"name": "sft", "out_dir": "$D/sft", "seed": 3, "threads": 1},
 "model": {"n_layer": 2, "n_head": 2, "d_model": 32, "max_seq_len": 24},
 "tokenizer": {"model": "$T/spm.model"},
 "data": {"format": "sft", "train": "$T/sft.jsonl", "max_len": 24, "max_prompt_len": 16},
 "objective": {"type": "sft"}, "optim": {"lr": 3e-3, "warmup_steps": 2},
 "train": {"batch_size": 16, "max_steps": 10, "log_every": 5, "save_every": 10}}
EOF2
cat > "$D/dpo.json" <<EOF2
{"run": {"name": "dpo", "out_dir": "$D/dpo1", "seed": 5, "threads": 1},
 "model": {"init": "checkpoint", "path": "$D/sft"},
 "tokenizer": {"model": "$T/spm.model"},
 "data": {"format": "preference", "train": "$T/prefs.jsonl", "val": "$T/prefs-val.jsonl", "max_len": 24, "max_prompt_len": 16},
 "objective": {"type": "dpo", "beta": 0.1, "reference": {"mode": "cached", "cache_dir": "$D/cache"}},
 "optim": {"lr": 1e-3, "warmup_steps": 0},
 "train": {"batch_size": 8, "grad_accum": 2, "max_steps": 6, "log_every": 1, "eval_every": 3, "eval_batches": 3, "save_every": 6}}
EOF2
"$BIN" train "$D/sft.json" --quiet >/dev/null 2>&1 || fail "sft_for_dpo" "exit $?"
"$BIN" train "$D/dpo.json" --quiet --set objective.reference.cache_dir="$D/cache1" >"$D/dpo1.log" 2>&1 &
np 2 train "$D/dpo.json" --quiet --set run.out_dir="$D/dpo2" >"$D/dpo2.log" 2>&1 &
wait
ncache=$(ls "$D/cache" 2>/dev/null | grep -c reflogp)
if grep -q "computed log-probs of 64 examples on 2 ranks" "$D/dpo2.log" && [ "$ncache" -eq 2 ]; then
  pass "np2_cached_reference_built_together"; else fail "np2_cached_reference_built_together" "$ncache files: $(grep -E 'reference|tinyalign' "$D/dpo2.log")"; fi
# 21 validation pairs in batches of 8: the last eval batch splits 2 / 3 between the ranks;
# rewards are beta (S - S_ref) of S ~ 10: near 0, float rounding is 1e-7 absolute
close_runs "np2_dpo_agrees_with_np1" "$D/dpo1" "$D/dpo2" 1e-4 1e-5
"$BIN" eval "$D/dpo.json" --checkpoint "$D/dpo1" >"$D/e1.json" 2>/dev/null &
np 2 eval "$D/dpo.json" --checkpoint "$D/dpo1" >"$D/e2.json" 2>"$D/e2.log" &
wait
if [ "$(grep -c . "$D/e2.json")" -eq 1 ] && grep -q "cached log-probs $D/cache/prefs-val.jsonl.reflogp" "$D/e2.log" && "$PY" -c "
import json, sys; a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(0 if a.keys() == b.keys() and all(abs(a[k] - b[k]) <= 1e-5 * abs(a[k]) + 1e-6 for k in a) else 1)" "$D/e1.json" "$D/e2.json"; then
  pass "np2_eval_reads_the_cache_agrees_with_np1"; else fail "np2_eval_reads_the_cache_agrees_with_np1" "$(cat "$D/e1.json" "$D/e2.json"; grep reference "$D/e2.log")"; fi

# ---- bad input: one message from rank 0, exit 2 (the runs in parallel, then the checks) ----
# bad NAME CMD...: runs CMD in the background, its output and status in $D/NAME.{out,rc}
bad() { local n=$1; shift; ( "$@" >"$D/$n.out" 2>&1; echo $? >"$D/$n.rc" ) & }
# one_error NAME STATUS WANT...: exit STATUS, every WANT in the output, and exactly one
# tinyalign error line (rank 0 reports for the job)
one_error() {
  local name=$1 want_rc=$2; shift 2
  local out rc
  out=$(cat "$D/$name.out"); rc=$(cat "$D/$name.rc")
  if [ "$rc" -ne "$want_rc" ]; then fail "bad/$name" "exit $rc (expected $want_rc): $(grep tinyalign <<<"$out" | head -3)"; return; fi
  for w in "$@"; do
    if ! grep -qF -- "$w" <<<"$out"; then fail "bad/$name" "no \"$w\" in: $(grep tinyalign <<<"$out" | head -3)"; return; fi
  done
  local n; n=$(grep -c '^\(\[rank [0-9]*\] \)\?tinyalign' <<<"$out")
  if [ "$n" -ne 1 ]; then fail "bad/$name" "$n error lines: $(grep tinyalign <<<"$out")"; return; fi
  pass "bad/$name"
}
cp "$MBIN" "$D/other-build"; printf 'x' >> "$D/other-build"
bad batch_not_divisible np 2 train "$D/base.json" --quiet --set run.out_dir="$D/bad1" --set train.batch_size=3
bad ranks_with_different_configs "${MPIRUN[@]}" -np 1 "$MBIN" train "$D/base.json" --quiet --set run.out_dir="$D/bad2" : \
    -np 1 "$MBIN" train "$D/base.json" --quiet --set run.out_dir="$D/bad2" --set optim.lr=0.01
bad ranks_with_different_options "${MPIRUN[@]}" -np 1 "$MBIN" train "$D/base.json" --quiet --set run.out_dir="$D/bad3" : \
    -np 1 "$MBIN" train "$D/base.json" --quiet --set run.out_dir="$D/bad3" --stop-after 5
bad ranks_with_different_binaries "${MPIRUN[@]}" -np 1 "$MBIN" train "$D/base.json" --quiet --set run.out_dir="$D/bad4" : \
    -np 1 "$D/other-build" train "$D/base.json" --quiet --set run.out_dir="$D/bad4"
# a write that fails on rank 0 (injected, src/core/common.c) stops both ranks at once
TINYALIGN_FAULT=ENOSPC:metrics.jsonl bad metrics_write_fault_stops_all np 2 train "$D/base.json" --quiet --set run.out_dir="$D/fault1"
TINYALIGN_FAULT=ENOSPC:step-00000010 bad checkpoint_write_fault_stops_all np 2 train "$D/base.json" --quiet --set run.out_dir="$D/fault2"
bad build_without_mpi_under_mpirun "${MPIRUN[@]}" -np 2 "$BIN" train "$D/base.json" --quiet --set run.out_dir="$D/bad5"
# a run directory rank 1 does not see: in its own mount namespace, an empty directory, then
# an older copy of the run, at the same path
can_unshare=0; unshare -m true 2>/dev/null && can_unshare=1
if [ $can_unshare = 1 ]; then
  mkdir -p "$D/empty"; cp -r "$D/stop1" "$D/stale"
  echo step-00000007 > "$D/stale/checkpoints/latest"
  bad resume_run_dir_not_on_every_rank "${MPIRUN[@]}" -np 1 "$MBIN" resume "$D/two" : \
      -np 1 unshare -m sh -c "mount --bind '$D/empty' '$D/two' && exec '$MBIN' resume '$D/two'"
  bad resume_stale_copy_on_one_rank "${MPIRUN[@]}" -np 1 "$MBIN" resume "$D/stop1" : \
      -np 1 unshare -m sh -c "mount --bind '$D/stale' '$D/stop1' && exec '$MBIN' resume '$D/stop1'"
fi
wait
one_error batch_not_divisible 2 "train.batch_size 3 cannot be split among 2 ranks" "multiple of the number of ranks"
one_error ranks_with_different_configs 2 "rank 1 of 2 differs from rank 0 in its config" '`"lr": 0.003,`' '`"lr": 0.01,`'
one_error ranks_with_different_options 2 "differs from rank 0 in its command line" "stop_after 5"
one_error ranks_with_different_binaries 2 "rank 1 of 2 differs from rank 0 in its binary"
one_error build_without_mpi_under_mpirun 2 "built without MPI" "MPI=1"
one_error metrics_write_fault_stops_all 1 "metrics.jsonl: write failed: No space left on device" "the run stops"
one_error checkpoint_write_fault_stops_all 1 "the checkpoint of step 10 failed" "No space left on device"
if ! grep -q . < <(ls "$D/bad1" "$D/bad2" "$D/bad3" "$D/bad4" "$D/bad5" 2>/dev/null); then pass "bad/nothing_written"
else fail "bad/nothing_written" "$(ls "$D"/bad*)"; fi
if [ $can_unshare = 1 ]; then
  one_error resume_run_dir_not_on_every_rank 2 "rank 1 of 2:" "no checkpoint" "every node must see the same files"
  one_error resume_stale_copy_on_one_rank 2 "differs from rank 0 in its model weights or training state" \
      "rank 0 has \`step 20," "rank 1 has \`step 7,"
else
  echo "SKIP bad/resume_run_dir_not_on_every_rank: unshare -m (a mount namespace per rank) is not permitted here"
fi

[ "$FAILS" -eq 0 ]
