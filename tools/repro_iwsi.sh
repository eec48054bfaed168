#!/usr/bin/env bash
# repro_iwsi.sh — reproduces the claim of IWSI (Jiang et al., AAAI 2025, arXiv 2408.09849) at
# small scale: self-improvement that also drops the samples with the largest distribution-
# shift extent (DS) beats self-improvement on majority-voted samples alone (LMSI, Huang et
# al. 2022, arXiv 2210.11610), and DS is largely orthogonal to correctness.
#
#   tools/repro_iwsi.sh [--seeds N] [--out DIR] [--jobs J] [--build DIR] [--k K] [--smoke]
#                       [--no-iter2] [--labelled N] [--start-steps N]
#
#   --seeds N   seeds 1..N (default 3)                 --out DIR  results (default runs/repro_iwsi)
#   --jobs J    jobs at once, 1 thread each (default 3)
#   --build DIR where tinyalign is (default build)    --k K      samples per question (default 8)
#   --smoke     tiny sizes, for the test               --no-iter2 skip the extra iteration
#   --labelled N  labelled rows of the start model (default 500)
#   --start-steps N  SFT steps of the start model (default 500: configs/repro-iwsi-sft.json)
#
# Stages (a seed's stage is skipped when its output exists; outputs are written under a
# temporary name and renamed):
#   1. data    tools/gen_arith_task.py: two-step arithmetic word problems ("b*c = P. a+P = N.
#              The answer is N."), 500 labelled, 1200 unlabelled of which 5% (60) are
#              labelled as the valid set D_v and the rest (1140) are the pool, 500 test;
#              a 128-piece SentencePiece tokenizer (one piece per digit).
#   2. start   per seed: configs/repro-iwsi-sft.json from scratch on the 500 labelled rows
#              (500 steps): a weak start model M0.
#   3. sample  M0, K samples per pool question at T = 0.8 (seeded); curate vote (default
#              regex, the gold answer rides along for the analysis and the groundtruth arm).
#   4. loss    M_v = M0 fine-tuned on D_v (configs/iwsi-loss-model.json, 5 epochs of D_v);
#              curate dsweight --all --loss-scope response (see docs/repro_iwsi.md for why the
#              response scope) keeps l, w, DS of every sample for the analysis.
#   5. arms    per seed, the kept rows of each filter fine-tune M0 with
#              configs/repro-iwsi-finetune.json for 1 epoch of that arm's rows:
#                lmsi (--filter vote), iwsi-0.6 / iwsi-0.8 / iwsi-0.9 (--filter ds --keep k),
#                random-0.8 (--filter random --keep 0.8), gt (--filter groundtruth)
#   6. eval    greedy decoding of the 500 test questions; accuracy = the extracted answer
#              equals the gold one.
#   7. iter2   (unless --no-iter2) the best of lmsi / iwsi-* by mean accuracy over seeds
#              runs one more round from its own model: sample, vote, M_v from that model,
#              the same filter, fine-tune that model, eval.
#   8. report  tools/report_iwsi.py: DIR/report.md (mean +- std over seeds per arm, DS vs
#              correctness), DIR/results.json, DIR/repro_iwsi.png.
# Every long step runs under nice -n 10. Logs: DIR/logs/. Wall times: DIR/timings.txt.
set -euo pipefail
source "$(dirname "$0")/lib_repro.sh"
cd "$(dirname "$0")/.."
REPRO_NAME=repro_iwsi.sh

ARMS="lmsi iwsi-0.6 iwsi-0.8 iwsi-0.9 random-0.8 gt"

filter_args() { # ARM -> the curate dsweight filter flags
  case $1 in
    lmsi|lmsi2) echo "--filter vote" ;;
    iwsi-*) echo "--filter ds --keep ${1#iwsi-}" ;;
    random-*) echo "--filter random --keep ${1#random-}" ;;
    gt) echo "--filter groundtruth" ;;
    *) echo "repro_iwsi.sh: unknown arm $1" >&2; return 2 ;;
  esac
}

# ---- one seed's job (the script calls itself through xargs: _job KIND SEED [ARM]) ----------
if [ "${1:-}" = _job ]; then
  shift
  : "${OUT:?}" "${BIN:?}" "${PY:?}"
  kind=$1; seed=$2; arm=${3:-}
  S=$OUT/seed$seed D=$OUT/data
  repro_job_log "$OUT/logs/$kind-s$seed${arm:+-$arm}.log" "$kind seed $seed ${arm:-}"
  N="nice -n 10"
  tok=(--set tokenizer.model="$D/spm.model")
  small=()
  [ "$SMOKE" = 1 ] && small=(--set train.max_steps=60)
  [ "$SMOKE" = 1 ] && START_STEPS=60
  # train_sft RUN INIT DATA EPOCHS: configs/repro-iwsi-finetune.json for EPOCHS over DATA
  train_sft() {
    local run=$1 init=$2 data=$3 epochs=$4 rows steps
    rows=$(grep -c . "$data")
    steps=$(( (epochs * rows + 31) / 32 ))
    rm -rf "$run"
    $N "$BIN" train configs/repro-iwsi-finetune.json --quiet --set run.seed="$seed" \
        --set run.out_dir="$run" --set model.path="$init" --set data.train="$data" \
        --set train.max_steps="$steps" "${tok[@]}" "${small[@]}"
  }
  # round MODEL DIR: sample the pool with MODEL, vote, train M_v from MODEL, all DS fields
  round() {
    local model=$1 R=$2
    mkdir -p "$R"
    $N "$BIN" sample --model "$model" --prompts "$D/pool.jsonl" --n "$K" --temperature 0.8 \
        --max-new-tokens 40 --min-new-tokens 1 --seed "$seed" --threads 1 --quiet \
        --out "$R/samples.jsonl"
    # a response that decodes to "" (a lone space piece, then EOS) has no answer: it is left
    # out (counted), so the vote's parsed share counts non-empty responses only
    "$PY" -c '
import json, sys
n = 0
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as o:
    for line in f:
        r = json.loads(line)
        k = [x for x in r["responses"] if x["text"]]
        n += len(r["responses"]) - len(k)
        if k:
            r["responses"] = k
            o.write(json.dumps(r) + "\n")
print(f"left out {n} empty responses")' "$R/samples.jsonl" "$R/samples.nonempty.jsonl"
    "$BIN" curate vote --in "$R/samples.nonempty.jsonl" --out "$R/voted.jsonl"
    rm -rf "$R/mv"
    local vsteps=$(( (5 * $(grep -c . "$D/valid.jsonl") + 15) / 16 )) # 5 epochs of batch 16
    $N "$BIN" train configs/iwsi-loss-model.json --quiet --set run.seed="$seed" \
        --set run.out_dir="$R/mv" --set model.path="$model" --set data.train="$D/valid.jsonl" \
        --set train.max_steps="$vsteps" "${tok[@]}"
    $N "$BIN" curate dsweight --in "$R/voted.jsonl" --model "$R/mv" --valid "$D/valid.jsonl" \
        --loss-scope response --keep 0.8 --all --out "$R/all.jsonl.tmp" --threads 1
    mv "$R/all.jsonl.tmp" "$R/all.jsonl"
  }
  # arm ROUND_DIR ARM INIT RUN: filter the round's votes, fine-tune INIT, greedy test answers
  arm() {
    local R=$1 a=$2 init=$3 run=$4
    # shellcheck disable=SC2046
    $N "$BIN" curate dsweight --in "$R/voted.jsonl" --model "$R/mv" --valid "$D/valid.jsonl" \
        --loss-scope response --seed "$seed" $(filter_args "$a") --out "$R/$a.jsonl" --threads 1
    train_sft "$run" "$init" "$R/$a.jsonl" 1
    evaluate "$run"
  }
  evaluate() { # RUN: greedy answers to the test questions -> RUN/test.jsonl
    $N "$BIN" sample --model "$1" --prompts "$D/test.jsonl" --temperature 0 --max-new-tokens 40 \
        --min-new-tokens 1 --threads 1 --quiet --out "$1/test.jsonl.tmp"
    mv "$1/test.jsonl.tmp" "$1/test.jsonl"
  }
  case $kind in
    start)
      [ -f "$S/round1/all.jsonl" ] && exit 0
      if [ ! -f "$S/start/DONE" ]; then
        rm -rf "$S"; mkdir -p "$S"
        $N "$BIN" train configs/repro-iwsi-sft.json --quiet --set run.seed="$seed" \
            --set run.out_dir="$S/start" --set data.train="$D/labelled.jsonl" \
            --set train.max_steps="$START_STEPS" "${tok[@]}" "${small[@]}"
        touch "$S/start/DONE"
      fi
      [ -f "$S/start/test.jsonl" ] || evaluate "$S/start"
      round "$S/start" "$S/round1"
      ;;
    arm)
      [ -f "$S/$arm/test.jsonl" ] && exit 0
      arm "$S/round1" "$arm" "$S/start" "$S/$arm"
      ;;
    iter2)
      [ -f "$S/iter2-$arm/test.jsonl" ] && exit 0
      round "$S/$arm" "$S/round2-$arm"
      arm "$S/round2-$arm" "$arm" "$S/$arm" "$S/iter2-$arm"
      ;;
    *) echo "repro_iwsi.sh: unknown job $kind" >&2; exit 2 ;;
  esac
  exit 0
fi

# ---- the driver --------------------------------------------------------------------------
SEEDS=3 OUT=runs/repro_iwsi JOBS=3 BUILD=build SMOKE=0 K=8 ITER2=1 LABELLED=500 START_STEPS=500
while [ $# -gt 0 ]; do
  repro_parse_common "$@"
  [ "$REPRO_SHIFT" -gt 0 ] && { shift "$REPRO_SHIFT"; continue; }
  case $1 in
    --k) K=$2; shift 2 ;;
    --no-iter2) ITER2=0; shift ;;
    --labelled) LABELLED=$2; shift 2 ;;
    --start-steps) START_STEPS=$2; shift 2 ;;
    *) repro_unknown "$1" ;;
  esac
done
repro_count --seeds "$SEEDS" --jobs "$JOBS" --k "$K" --labelled "$LABELLED" \
    --start-steps "$START_STEPS"
repro_setup
export OUT BIN PY SMOKE K START_STEPS
echo "# $(date -u +%FT%TZ) seeds $SEEDS jobs $JOBS k $K labelled $LABELLED start-steps $START_STEPS smoke $SMOKE" >> "$OUT/timings.txt"

# 1. data
D=$OUT/data
if [ ! -d "$D" ]; then
  rm -rf "$D.tmp" "$OUT"/seed*
  gen=(--seed 0 --labelled "$LABELLED")
  [ "$SMOKE" = 1 ] && gen+=(--labelled 40 --train 60 --test 20)
  "$PY" tools/gen_arith_task.py --out "$D.tmp" "${gen[@]}" > "$OUT/logs/data.log"
  cp "$D.tmp/unlabelled.jsonl" "$D.tmp/pool.jsonl"
  repro_tokenizer "$D.tmp" 128
  mv "$D.tmp" "$D"
fi
stage_done data
seeds=$(seq 1 "$SEEDS")
# 2-4. start model, round-1 samples, votes and losses
for s in $seeds; do echo "start $s"; done | run_jobs
stage_done "start + sample + vote + loss model"
# 5-6. the arms
for s in $seeds; do for a in $ARMS; do echo "arm $s $a"; done; done | run_jobs
stage_done "arms + eval"
# 7. one more iteration of the best self-improvement arm (no gold: lmsi / iwsi-*)
if [ "$ITER2" = 1 ]; then
  best=$("$PY" tools/report_iwsi.py best --out "$OUT" --seeds "$SEEDS" --arms "$ARMS")
  echo "iteration 2 of $best" >&2
  for s in $seeds; do echo "iter2 $s $best"; done | run_jobs
  stage_done "iteration 2 ($best)"
fi
"$PY" tools/report_iwsi.py report --out "$OUT" --seeds "$SEEDS" --arms "$ARMS" > "$OUT/logs/report.log"
stage_done report
echo "== total: $(( $(date +%s) - T0 )) s; report $OUT/report.md, figure $OUT/repro_iwsi.png" \
  | tee -a "$OUT/timings.txt" >&2
