#!/usr/bin/env bash
# repro_prs.sh — reproduces the claim of PRS (Ye & Ng, EMNLP 2024, arXiv 2408.12163), "PRS
# finds better responses than random sampling at the same budget", at small scale on the
# "sort 6 digits" task with an <asc>/<desc> preference (tools/gen_prs_task.py):
#
#   tools/repro_prs.sh [--seeds N] [--out DIR] [--jobs J] [--build DIR] [--ns "4 8 16 32"]
#                      [--critic-ns "2 4 8"] [--rest-prompts P] [--eval-samples M]
#                      [--early-steps K] [--smoke]
#
# The study of docs/repro_prs.md: tools/repro_prs.sh --ns "2 4 8 16 32" --rest-prompts 300
#
#   --seeds N   seeds 1..N (default 3)              --out DIR  results (default runs/repro_prs)
#   --jobs J    seeds at once (each runs its stages in order), 1 thread each (default 2)
#   --ns LIST   the budgets N of the best-of-N study (default "4 8 16 32"; at N < 4 the
#               N0 = N/4 and 3N/4 arms are skipped)
#   --critic-ns LIST   the budgets of the rule-critic arm (default "2 4 8"; only those in --ns)
#   --early-steps K    the weak start policy of the second ReST experiment: the SFT run's
#               checkpoint after K of its 1500 steps (default 150)
#   --rest-prompts P   the first P of the 1000 ReST prompts (default 1000; the study: 300)
#   --eval-samples M   ReST: also M sampled test responses per prompt (T 0.8) per iteration
#                      besides the greedy one (default 4; 0 = off)
#   --smoke     tiny sizes, 1 seed (for trying the pipeline)
#
# Stages (each skipped when its outputs exist; outputs are written under temporary names
# and renamed, a training run counts only with its DONE marker):
#   1. data    tools/gen_prs_task.py --seed 0: 6000 SFT rows (3000 direct "drafts", 30%
#              correct; 1000 rule critiques; 2000 revisions, 75% correct, half with the
#              feedback in the prompt, half without), 200 test prompts, 1000 ReST prompts;
#              a 35-piece tokenizer (one piece per digit, the task's words whole).
#   2. sft     per seed: configs/repro-prs-sft.json (GPT-2 2 layers, d 64), 1500 steps.
#   3. bon     per seed and N: `tinyalign prs` on the 200 test prompts with the paper's
#              sampling (T 0.8, top-k 50, presence penalty 1.2), sampling seed = the seed:
#              rand, rand-no-pref, prs with N0 = N/4, N/2, 3N/4 (feedback by the policy),
#              prs without feedback (N0 = N/2), and for N in --critic-ns prs with the
#              task's rule critic writing the feedback (N0 = N/2, --feedback "cmd:python3
#              tools/score_sort.py --critic"). Reward: tools/score_sort.py.
#   4. rest    per seed: tools/rest_prs.sh, 3 iterations on the ReST prompts, N = 8,
#              top-1 per prompt, 1 epoch of SFT continuing from the current policy
#              (configs/repro-prs-rest.json), --mode rand vs --mode prs (N0 = 4): greedy
#              test accuracy after each iteration (and, with --eval-samples M, the mean
#              reward and exact match of M sampled test responses: T 0.8, top-k 50, pp 1.2).
#   5. rest-early  the same ReST loop from a weak start: the seed's SFT run stopped after
#              --early-steps (train --stop-after: the same run's early checkpoint, bit for
#              bit) -> DIR/seedS/sft-early, DIR/seedS/rest-early-{rand,prs}.
#   6. report  tools/report_prs.py: DIR/report.md, DIR/results.json, DIR/bon.png, DIR/rest.png
# Logs: DIR/logs/. Wall time of each stage: DIR/timings.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

SEEDS=3 OUT=${OUT:-runs/repro_prs} JOBS=2 BUILD=${BUILD:-build} NS=${NS:-4 8 16 32} SMOKE=${SMOKE:-0}
CRITIC_NS=${CRITIC_NS:-2 4 8} EARLY_STEPS=${EARLY_STEPS:-150}
while [ $# -gt 0 ] && [ "$1" != _job ]; do
  case $1 in
    --seeds) SEEDS=$2; shift 2 ;;  --out) OUT=$2; shift 2 ;;  --jobs) JOBS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;  --ns) NS=$2; shift 2 ;;    --smoke) SMOKE=1; SEEDS=1; shift ;;
    --rest-prompts) REST_PROMPTS=$2; shift 2 ;;
    --eval-samples) EVAL_SAMPLES=$2; shift 2 ;;
    --critic-ns) CRITIC_NS=$2; shift 2 ;;  --early-steps) EARLY_STEPS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "repro_prs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
REST_PROMPTS=${REST_PROMPTS:-1000} EVAL_SAMPLES=${EVAL_SAMPLES:-4}
export OUT BIN=$BUILD/tinyalign PY=${PYTHON:-/usr/bin/python3} NS SMOKE BUILD REST_PROMPTS EVAL_SAMPLES CRITIC_NS EARLY_STEPS
D=$OUT/data
SCORE="cmd:$PY tools/score_sort.py"
export SCORE

# ---- one seed's job (the script calls itself through xargs: _job STAGE SEED) --------------
if [ "${1:-}" = _job ]; then
  stage=$2 seed=$3
  S=$OUT/seed$seed
  log=$OUT/logs/$stage-s$seed.log
  exec 3>&2 >"$log" 2>&1
  trap 'echo "repro_prs.sh: $stage seed $seed failed (log $log):" >&3; tail -5 "$log" >&3' ERR
  D=$OUT/data
  TM=(--query-template "$D/query.txt" --feedback-template "$D/feedback.txt"
      --revise-template "$D/revise.txt" --max-new-tokens 8 --feedback-max-new-tokens 8 --threads 1)
  if [ "$stage" = all ]; then
    for st in sft bon rest rest-early; do
      [ "$st" != sft ] && [ "$st" != bon ] && [ "$SMOKE" = 1 ] && continue
      t0=$(date +%s.%N)
      bash "$0" _job "$st" "$seed"
      echo "seed $seed $st $(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}')s" >> "$OUT/timings.txt"
    done
    exit 0
  fi
  case $stage in
    sft)
      [ -f "$S/sft/DONE" ] && exit 0
      rm -rf "$S/sft"; mkdir -p "$S"
      extra=()
      [ "$SMOKE" = 1 ] && extra=(--set train.max_steps=100)
      "$BIN" train configs/repro-prs-sft.json --quiet --set run.seed="$seed" \
          --set run.out_dir="$S/sft" --set data.train="$D/sft.jsonl" \
          --set tokenizer.model="$D/spm.model" "${extra[@]}"
      touch "$S/sft/DONE"
      ;;
    bon)
      mkdir -p "$S/bon"
      for n in $NS; do
        for arm in rand rand-no-pref prs-q prs-h prs-3q prs-nofb prs-critic; do
          o=$S/bon/$arm-$n
          [ -s "$o.summary.json" ] && continue
          case $arm in prs-q|prs-3q) [ $((n / 4)) -ge 1 ] || continue ;; esac
          [ "$arm" = prs-critic ] && { [[ " $CRITIC_NS " == *" $n "* ]] || continue; }
          case $arm in
            rand|rand-no-pref) a=(--mode "$arm" --query-template "$D/query.txt" --max-new-tokens 8 --threads 1) ;;
            prs-q)   a=("${TM[@]}" --n0 $((n / 4))) ;;
            prs-h)   a=("${TM[@]}" --n0 $((n / 2))) ;;
            prs-3q)  a=("${TM[@]}" --n0 $((3 * n / 4))) ;;
            prs-nofb) a=(--query-template "$D/query.txt" --revise-template "$D/revise_nofb.txt"
                         --feedback none --max-new-tokens 8 --threads 1 --n0 $((n / 2))) ;;
            prs-critic) a=("${TM[@]}" --n0 $((n / 2)) --feedback "cmd:$PY tools/score_sort.py --critic") ;;
          esac
          "$BIN" prs --model "$S/sft" --prompts "$D/test.jsonl" --scorer "$SCORE" --n "$n" \
              --seed "$seed" --out "$o.tmp.jsonl" --summary "$o.tmp.summary.json" --quiet "${a[@]}"
          mv "$o.tmp.jsonl" "$o.jsonl"
          mv "$o.tmp.summary.json" "$o.summary.json"
        done
      done
      ;;
    rest|rest-early)
      head -n "$REST_PROMPTS" "$D/rest.jsonl" > "$S/rest-prompts.jsonl"
      start=$S/sft pre=rest min_new=0
      if [ "$stage" = rest-early ]; then
        # the weak policy sometimes answers with nothing (EOS first), which `score` and
        # `curate best` refuse: its responses get at least one token, in both modes
        start=$S/sft-early pre=rest-early min_new=1
        if [ ! -f "$start/DONE" ]; then
          rm -rf "$start"
          "$BIN" train configs/repro-prs-sft.json --quiet --set run.seed="$seed" \
              --set run.out_dir="$start" --set data.train="$D/sft.jsonl" \
              --set tokenizer.model="$D/spm.model" --stop-after "$EARLY_STEPS"
          touch "$start/DONE"
        fi
      fi
      for mode in rand prs; do
        extra=()
        [ "$mode" = prs ] && extra=(--feedback-template "$D/feedback.txt" --revise-template "$D/revise.txt"
                                    --feedback-max-new-tokens 8 --n0 4)
        "$(dirname "$0")"/rest_prs.sh --model "$start" --prompts "$S/rest-prompts.jsonl" --test "$D/test.jsonl" \
            --scorer "$SCORE" --config configs/repro-prs-rest.json --set tokenizer.model="$D/spm.model" \
            --set run.threads=1 --out "$S/$pre-$mode" --mode "$mode" --n 8 --iters 3 --seed "$seed" \
            --query-template "$D/query.txt" --eval-max-new-tokens 8 --eval-samples "$EVAL_SAMPLES" \
            --eval-min-new-tokens "$min_new" --build "$BUILD" --threads 1 \
            -- --query-template "$D/query.txt" --max-new-tokens 8 --min-new-tokens "$min_new" \
               --threads 1 "${extra[@]}"
      done
      ;;
  esac
  exit 0
fi

mkdir -p "$OUT/logs"
: > "$OUT/timings.txt"
timed() { # NAME CMD...
  local t0; t0=$(date +%s.%N)
  "${@:2}"
  echo "$1 $(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}')s" | tee -a "$OUT/timings.txt" >&2
}
data() {
  if [ ! -s "$D/spm.model" ]; then
    rm -rf "$D.tmp"
    local sizes=()
    [ "$SMOKE" = 1 ] && sizes=(--direct 300 --feedback 100 --revise 200 --test 10 --rest 20)
    "$PY" tools/gen_prs_task.py --out "$D.tmp" --seed 0 "${sizes[@]}" > "$OUT/logs/data.log"
    "$BIN" tokenizer train --input "$D.tmp/tok_corpus.txt" --vocab-size 35 --model-type bpe \
        --byte-fallback 0 --character-coverage 1.0 --out "$D.tmp/spm" \
        --user-defined-symbols "<asc>,<desc>,DRAFT,FEEDBACK,REVISED,sort,ok,order,format,wrong" \
        >> "$OUT/logs/data.log" 2>&1
    rm -rf "$D"; mv "$D.tmp" "$D"
  fi
}
each_seed() { seq 1 "$SEEDS" | xargs -P "$JOBS" -I{} bash "$0" _job "$1" {}; }
timed data data
# each seed runs its stages in order (sft, bon, rest, rest-early); --jobs seeds at once
timed seeds each_seed all
timed report "$PY" tools/report_prs.py "$OUT" --seeds "$SEEDS" --ns "$NS" --early-steps "$EARLY_STEPS"
echo "report: $OUT/report.md" >&2
