# lib_repro.sh — what the reproduction drivers (tools/repro_anchor.sh, repro_ddpo.sh,
# repro_iwsi.sh) share, sourced by them (not run). REPRO_NAME (set by the driver) names
# it in messages.
#
# Driver side:
#   repro_parse_common "$@"     one option of the common set: --seeds N, --out DIR, --jobs J,
#                               --build DIR, --smoke, -h/--help (the script's header comment);
#                               sets SEEDS OUT JOBS BUILD SMOKE and REPRO_SHIFT (how many
#                               words it used; 0 = not a common option)
#   repro_unknown OPT           the "unknown option" error (exit 2)
#   repro_kv_option OPT VALUE   exits 2 unless VALUE is KEY=VALUE without spaces
#   repro_count FLAG VALUE ...  exits 2 unless every VALUE (of its FLAG) is a count >= 1
#   repro_setup                 BIN, PY, the binary's check, $OUT/logs, T0 and stage_t0
#   stage_done NAME             prints and records (DIR/timings.txt) the stage's wall time
#   run_jobs                    reads "KIND SEED [ARG]" lines, runs "$0 _job ..." JOBS at once
#   repro_tokenizer DIR VOCAB   a BPE SentencePiece tokenizer DIR/spm.model of DIR/tok.txt,
#                               one piece per digit (log: $OUT/logs/data.log)
# Job side (in the "$0 _job" / "_seed" process):
#   repro_job_log LOG WHAT [append]  everything the job prints goes to LOG (truncated, or
#                               appended to); on the first failing command (set -e) the ERR
#                               trap shows LOG's tail on the driver's stderr, headed
#                               "REPRO_NAME: WHAT failed"

repro_parse_common() {
  REPRO_SHIFT=0
  case $1 in
    --seeds) SEEDS=$2; REPRO_SHIFT=2 ;;
    --out) OUT=$2; REPRO_SHIFT=2 ;;
    --jobs) JOBS=$2; REPRO_SHIFT=2 ;;
    --build) BUILD=$2; REPRO_SHIFT=2 ;;
    --smoke) SMOKE=1; REPRO_SHIFT=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  esac
}

repro_unknown() {
  echo "$REPRO_NAME: unknown option $1 (see --help)" >&2; exit 2
}

repro_kv_option() {
  [[ ${2:-} =~ ^[a-z_.]+=[^[:space:]]+$ ]] \
    || { echo "$REPRO_NAME: $1 needs KEY=VALUE (no spaces), got \"${2:-}\"" >&2; exit 2; }
}

repro_count() {
  while [ $# -gt 0 ]; do
    [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "$REPRO_NAME: $1 needs a count >= 1, got $2" >&2; exit 2; }
    shift 2
  done
}

repro_setup() {
  BIN=$BUILD/tinyalign
  PY=${PYTHON:-/usr/bin/python3}
  [ -x "$BIN" ] || { echo "$REPRO_NAME: $BIN not found (run make)" >&2; exit 2; }
  mkdir -p "$OUT/logs"
  T0=$(date +%s)
  stage_t0=$T0
}

stage_done() {
  local now; now=$(date +%s)
  echo "== $1: $((now - stage_t0)) s" | tee -a "$OUT/timings.txt" >&2
  stage_t0=$now
}

run_jobs() {
  xargs -P "$JOBS" -L 1 "$0" _job
}

repro_tokenizer() {
  "$BIN" tokenizer train --input "$1/tok.txt" --vocab-size "$2" --model-type bpe \
      --split-digits 1 --byte-fallback 0 --character-coverage 1.0 --out "$1/spm" \
      >> "$OUT/logs/data.log"
}

repro_job_log() {
  REPRO_LOG=$1 REPRO_WHAT=$2
  if [ "${3:-}" = append ]; then exec 3>&2 >>"$REPRO_LOG" 2>&1; else exec 3>&2 >"$REPRO_LOG" 2>&1; fi
  trap 'echo "$REPRO_NAME: $REPRO_WHAT failed (log $REPRO_LOG):" >&3; tail -5 "$REPRO_LOG" >&3' ERR
}
