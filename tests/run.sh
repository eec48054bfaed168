#!/usr/bin/env bash
# run.sh BUILD — run the whole suite: every C test binary in BUILD/tests and every shell
# test in tests/cli/*.sh. Each prints "PASS name" / "FAIL name: why" lines; a binary that
# crashes or exits non-zero without printing a FAIL counts as one failure. The last line
# is exactly "N passed, N failed" (CI reads it); exit status 1 when anything failed.
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export TA_BUILD="$BUILD" TA_ROOT="$ROOT" PYTHON=${PYTHON:-/usr/bin/python3}
export TA_REF="$BUILD/ref"
mkdir -p "$TA_REF"
pass=0; fail=0; failed_names=()
start=$(date +%s)

# TA_ONLY="test_x cli/y ...": run only these (make asan-test); default: everything
only() { [ -z "${TA_ONLY:-}" ] || [[ " $TA_ONLY " == *" $1 "* ]]; }

run_one() { # name, command...
  local name=$1; shift
  local out rc t0=$(date +%s)
  out=$("$@" 2>&1); rc=$?
  local p f
  p=$(grep -c '^PASS ' <<<"$out"); f=$(grep -c '^FAIL ' <<<"$out")
  grep -E '^(PASS|FAIL) ' <<<"$out" | sed "s/^/[$name] /"
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1; echo "FAIL [$name] exited with status $rc; last output:"; tail -n 15 <<<"$out" | sed 's/^/    /'
  elif [ "$f" -gt 0 ]; then
    tail -n 8 <<<"$out" | grep -v -E '^(PASS|FAIL) ' | sed 's/^/    /'
  fi
  [ "$f" -gt 0 ] && failed_names+=("$name")
  pass=$((pass + p)); fail=$((fail + f))
  echo "  ($name: $p passed, $f failed, $(( $(date +%s) - t0 ))s)"
}

# Reference data from the real PyTorch, generated fresh on every run (never committed).
if ! $PYTHON tools/ref_gpt2.py --out "$TA_REF/gpt2" > "$TA_REF/ref_gpt2.log" 2>&1; then
  echo "FAIL [ref] tools/ref_gpt2.py failed:"; tail -n 20 "$TA_REF/ref_gpt2.log"; fail=$((fail+1))
fi
if ! $PYTHON tools/ref_objectives.py --out "$TA_REF/objectives" > "$TA_REF/ref_objectives.log" 2>&1; then
  echo "FAIL [ref] tools/ref_objectives.py failed:"; tail -n 20 "$TA_REF/ref_objectives.log"; fail=$((fail+1))
fi
if ! $PYTHON tools/ref_reward.py --out "$TA_REF/reward" > "$TA_REF/ref_reward.log" 2>&1; then
  echo "FAIL [ref] tools/ref_reward.py failed:"; tail -n 20 "$TA_REF/ref_reward.log"; fail=$((fail+1))
fi

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  only "$(basename "$t")" || continue
  run_one "$(basename "$t")" "$t"
done
for s in tests/cli/*.sh; do
  [ -f "$s" ] || continue
  only "cli/$(basename "$s" .sh)" || continue
  run_one "$(basename "$s" .sh)" bash "$s"
done

echo "suite time: $(( $(date +%s) - start ))s"
[ ${#failed_names[@]} -gt 0 ] && echo "failed in: ${failed_names[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
