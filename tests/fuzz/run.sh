#!/usr/bin/env bash
# run.sh BUILD SECONDS JOBS — runs every libFuzzer target BUILD/fuzz_* for SECONDS each,
# JOBS at a time (make fuzz; CI). Each target starts from its committed seeds
# (tests/fuzz/corpus/<target>/) plus what earlier runs found interesting
# (BUILD/corpus/<target>/, kept between runs, never committed); an input that crashes,
# trips ASan/UBSan or an oracle, or runs longer than 10 s is saved as
# BUILD/findings/<target>-crash-... (or timeout-, oom-) and fails the run.
# Prints one line per target: executions, executions per second, corpus size, new
# coverage; then the total. Exit status 1 when any target found something.
set -u
BUILD=${1:-build/fuzz}
SECONDS_EACH=${2:-60}
JOBS=${3:-2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export TA_ROOT="$ROOT"
mkdir -p "$BUILD/findings" "$BUILD/logs"

one() { # target
  local t=$1 bin="$BUILD/fuzz_$1"
  mkdir -p "$BUILD/corpus/$t"
  # -max_len: the largest seed or 8 KiB; -timeout per input; ASan's allocator limits
  # stand in for an RSS limit (a target that allocates >1 GiB at once is a finding)
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -max_len=8192 -print_final_stats=1 -artifact_prefix="$BUILD/findings/$t-" \
    "$BUILD/corpus/$t" "tests/fuzz/corpus/$t" >"$BUILD/logs/$t.log" 2>&1
  echo "$t $?"
}
export -f one
export BUILD SECONDS_EACH

targets=$(for b in "$BUILD"/fuzz_*; do [ -x "$b" ] && [ "${b%.o}" = "$b" ] && basename "$b" | sed 's/^fuzz_//'; done | sort)
[ -n "$targets" ] || { echo "no fuzz targets in $BUILD (make fuzz-build)"; exit 1; }
start=$(date +%s)
results=$(printf '%s\n' $targets | xargs -P "$JOBS" -I{} bash -c 'one {}')

status=0 total=0
printf '%-14s %12s %10s %8s %s\n' target executions exec/s corpus result
for t in $targets; do
  rc=$(awk -v t="$t" '$1 == t {print $2}' <<<"$results")
  log="$BUILD/logs/$t.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(ls "$BUILD/corpus/$t" | wc -l)
  if [ "$rc" = 0 ]; then res=ok; else
    res="FINDING (exit $rc): $(grep -m1 -E 'ERROR: |runtime error|fuzz oracle failed|Test unit written' "$log")"
    status=1
  fi
  total=$((total + ${execs:-0}))
  printf '%-14s %12s %10s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$res"
done
echo "fuzz: $total executions in $(( $(date +%s) - start ))s wall, $SECONDS_EACH s per target, $JOBS at a time"
if [ $status -ne 0 ]; then
  echo "fuzz: findings saved under $BUILD/findings/ (logs in $BUILD/logs/); replay one with"
  echo "      $BUILD/fuzz_TARGET FILE, fix it, and commit it under tests/fuzz/regress/TARGET/"
fi
exit $status
