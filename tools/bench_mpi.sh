#!/usr/bin/env bash
# bench_mpi.sh [BUILD] — data parallel speed on this machine; a benchmark, never a test.
#   1. the gradient sum per model shape (tiny, small, gpt2-124m): the rank-ordered sum of
#      dist.h against MPI_Allreduce and the other reductions (build/bench_allreduce), at
#      NP ranks, with a bit-for-bit check against the sum in rank order
#   2. training throughput of the small model (L6 C384 V8192 T256, batch 8, pretraining on
#      synthetic tokens): 1 rank x THREADS threads vs NP ranks x THREADS/NP threads, ROUNDS
#      rounds interleaved (so a load that comes and goes hits both alike), tokens/s over
#      steps 3..STEPS of each run, the median round and the ratio
# Env: NP (default 2), THREADS (default: the cores), ROUNDS (default 3), STEPS (default 10),
# REPEATS (default 5: timings per method and shape in part 1).
# Needs build/tinyalign-mpi (make, with libopenmpi-dev installed). As root it passes
# --allow-run-as-root to mpirun.
set -uo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
NP=${NP:-2}
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-10}
REPEATS=${REPEATS:-5}
PY=${PYTHON:-/usr/bin/python3}
MPIRUN=(mpirun -np "$NP" --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
make --no-print-directory "$BUILD/tinyalign" "$BUILD/tinyalign-mpi" "$BUILD/bench_allreduce" >/dev/null || {
  echo "bench_mpi: cannot build $BUILD/tinyalign-mpi (is libopenmpi-dev installed? make deps)"; exit 1; }
echo "== tinyalign data parallel bench, $(date -u +%Y-%m-%d) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD/tinyalign-mpi" info | tail -1

echo; echo "== 1. gradient sum per step, $NP ranks on one machine (shared memory)"
"${MPIRUN[@]}" "$BUILD/bench_allreduce" "$REPEATS" 2>/dev/null

echo; echo "== 2. training throughput, small model: 1 rank x $THREADS threads vs $NP ranks x $((THREADS / NP)) thread(s)"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$PY" tools/synth_shards.py --out "$W/data" --vocab 8192 --tokens 400000 --val-tokens 1000 >/dev/null
cat > "$W/small.json" <<EOF
{"run": {"name": "bench", "out_dir": "$W/run", "seed": 1},
 "model": {"preset": "models/small.json"},
 "tokenizer": {"type": "none"},
 "data": {"format": "tokens", "train": "$W/data/train.bin", "max_len": 256},
 "optim": {"lr": 1e-3, "warmup_steps": 2},
 "train": {"batch_size": 8, "max_steps": $STEPS, "log_every": 1, "eval_every": 0, "save_every": 0}}
EOF
# tok/s between the train lines of step 3 and the last step (warm-up and saving left out)
tps() {
  "$PY" - "$1/metrics.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"kind": "train"' in l]
a, b = rows[2], rows[-1]
print("%.0f" % ((b["tokens"] - a["tokens"]) / (b["elapsed_s"] - a["elapsed_s"])))
EOF
}
one=(); many=()
for r in $(seq "$ROUNDS"); do
  rm -rf "$W/run"
  "$BUILD/tinyalign" train "$W/small.json" --quiet --set run.threads="$THREADS" >/dev/null 2>&1 && one+=("$(tps "$W/run")")
  rm -rf "$W/run"
  "${MPIRUN[@]}" "$BUILD/tinyalign-mpi" train "$W/small.json" --quiet --set run.threads=$((THREADS / NP > 0 ? THREADS / NP : 1)) \
      >"$W/mpi.log" 2>&1 && many+=("$(tps "$W/run")")
  comm=$(grep -o 'gradient all-reduce of .*' "$W/mpi.log")
  echo "round $r: 1 rank ${one[-1]:-?} tok/s | $NP ranks ${many[-1]:-?} tok/s ($comm)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m1=$(median "${one[@]}"); mn=$(median "${many[@]}")
echo "median: 1 rank x $THREADS threads $m1 tok/s | $NP ranks x $((THREADS / NP)) $mn tok/s | ratio $(awk -v a="$mn" -v b="$m1" 'BEGIN { printf "%.2f", a / b }') (goal >= 0.9)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (numbers measured under load are not the machine's)"
