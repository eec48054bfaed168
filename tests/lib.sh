# lib.sh — shared helpers for the shell tests in tests/cli/ (sourced, not run).
# Each test prints one "PASS name" / "FAIL name: why" line; tests/run.sh counts them.
# Provides: ROOT, BIN, PY, pass, fail, expect_err, scratch_dir.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
BIN=${TA_BUILD:-build}/tinyalign
PY=${PYTHON:-/usr/bin/python3}
FAILS=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; FAILS=$((FAILS + 1)); }

# scratch_dir NAME: a fresh directory under $TA_REF (default build/ref) for one test file.
scratch_dir() {
  local d=${TA_REF:-build/ref}/$1
  rm -rf "$d"; mkdir -p "$d"; echo "$d"
}

# expect_err NAME WANT_SUBSTRING... -- CMD...: the command exits 2, and stderr holds one
# line containing every substring.
expect_err() {
  local name=$1; shift
  local want=()
  while [ "$1" != "--" ]; do want+=("$1"); shift; done; shift
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  err=$(grep -v -E '^(checkpoint: |step [0-9]|eval step|done: |stopped after|resumed from)' <<<"$err")
  if [ $rc -ne 2 ]; then fail "$name" "exit $rc (expected 2): $err"; return; fi
  for w in "${want[@]}"; do
    if ! grep -qF -- "$w" <<<"$err"; then fail "$name" "message lacks \"$w\": $err"; return; fi
  done
  if [ "$(grep -c . <<<"$err")" -gt 1 ]; then fail "$name" "expected one message line, got: $err"; return; fi
  pass "$name"
}
