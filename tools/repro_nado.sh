#!/usr/bin/env bash
# repro_nado.sh — reproduces the claim of attribute-controlled fine-tuning with a NADO guide
# (Meng et al. 2024, arXiv 2410.05559: fewer constraint violations at a small utility cost,
# and the model still detects the attribute) at small scale, with a banned-word attribute
# in place of toxicity:
#
#   tools/repro_nado.sh [--seeds N] [--out DIR] [--jobs J] [--build DIR] [--smoke]
#                       [--lambdas "L ..."] [--parallel-lambdas "L ..."]
#                       [--sample-lambdas "L ..."]
#
#   --seeds N   seeds 1..N (default 3)          --out DIR   results (default runs/repro_nado)
#   --jobs J    seeds at once, 1 thread per process (default 2)
#   --lambdas   KL weights of the sequential arms, run in this order (default "2 8 0.5")
#   --parallel-lambdas   ... of the parallel-schedule arms (default "2 8")
#   --sample-lambdas     ... of the sequential arms whose KL is on the model's samples
#               (nado_rounds.sh --prefixes samples; default "2")
#   --build DIR where tinyalign is (default build)   --smoke  tiny sizes, 2 rounds (a pipeline check)
#
# Stages (each skipped when its outputs exist; a training run counts only with its DONE
# marker, sample / score / eval outputs are written under a temporary name and renamed):
#   1. task     tools/gen_banned_task.py --seed 0: 20k templated sentences (15% with one of
#               12 banned words) + 2k "check: SENTENCE ->" yes/no judge rows; held-out
#               prompts, clean and banned held-out text, held-out judge prompts; a
#               420-piece SentencePiece tokenizer.
#   2. sft      per seed, from scratch (configs/repro-nado-sft.json: 2 layers, d 64):
#               sft_full on the corpus (LLM_0, the start of every other arm) and
#               sft_filtered on the corpus without banned-word rows (made after NADO_1).
#   3. nado1    per seed: 8 samples of LLM_0 per sample prompt, labelled by the banned:
#               oracle (`tinyalign score`), NADO_1 trained on them
#               (configs/nado-guide-tiny.json, initialised from LLM_0); its accuracy at
#               telling held-out clean from banned-word sentences (`tinyalign eval`).
#   4. arms     per seed, from LLM_0, 3 rounds of 200 fine-tuning steps on the corpus
#               (configs/nado-finetune-tiny.json):
#                 sft_cont   lambda 0 (plain SFT, the same budget: the utility control)
#                 seq_L      tools/nado_rounds.sh --schedule sequential --lambda L
#                 par_L      tools/nado_rounds.sh --schedule parallel --lambda L (round 1,
#                            the same as the sequential one, is copied from seq_L)
#                 seqsamp_L  sequential, --prefixes samples: the KL on the samples each
#                            guide learned from (half the rows), the NLL on the corpus
#               both starting from NADO_1 (--first-guide); guided = LLM_0 + NADO_1 at
#               decoding time (no fine-tuning).
#   5. eval     per arm, as soon as it is made: violation rate of 8 samples (temperature 1) per held-out prompt
#               (banned: oracle), perplexity on held-out clean and banned-word text
#               (`tinyalign eval`; guided: LLM_0's), detection accuracy of greedy answers to
#               held-out judge prompts (guided: decoded with the guide).
#   6. report   tools/report_nado.py: DIR/report.md (mean +- std over seeds), results.json,
#               tradeoff.png, bars.png.
# Logs: DIR/logs/. Stage wall times: DIR/timings.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "repro_nado.sh: $*" >&2; exit 2; }
SEEDS=3 OUT=runs/repro_nado JOBS=2 BUILD=build SMOKE=0 LAMBDAS="2 8 0.5" PLAMBDAS="2 8" SLAMBDAS="2"
while [ $# -gt 0 ]; do
  case $1 in
    --seeds) SEEDS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --lambdas) LAMBDAS=$2; shift 2 ;;
    --parallel-lambdas) PLAMBDAS=$2; shift 2 ;;
    --sample-lambdas) SLAMBDAS=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ $SEEDS =~ ^[1-9][0-9]*$ ]] || die "--seeds needs a count >= 1, got $SEEDS"
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a count >= 1, got $JOBS"
for l in $LAMBDAS $PLAMBDAS $SLAMBDAS; do
  [[ $l =~ ^[0-9]*\.?[0-9]+$ ]] || die "--lambdas / --parallel-lambdas / --sample-lambdas: $l is not a number >= 0"
done
for l in $PLAMBDAS; do
  [[ " $LAMBDAS " == *" $l "* ]] || die "--parallel-lambdas: $l is not in --lambdas (round 1 is shared)"
done
BIN=$BUILD/tinyalign
[ -x "$BIN" ] || die "$BIN not found (run make)"
PY=${PYTHON:-/usr/bin/python3}
T=$OUT/task LOG=$OUT/logs
mkdir -p "$OUT" "$LOG"

# sizes: the study, or --smoke (seconds; checks the pipeline, not the claim)
if [ "$SMOKE" = 1 ]; then
  TASK=(--train 1500 --sample-prompts 40 --heldout-prompts 16 --heldout 32 --judge-heldout 16)
  SFT_STEPS=60 NS=2 NE=2 ROUND_SET=(--smoke)
  NADO_SET=(--set train.max_steps=12 --set train.batch_size=8)
  FT_STEPS=6 FT_BATCH=8 ROUNDS=2 # round 2 already has both schedules' guides
else
  TASK=()
  SFT_STEPS=1500 NS=8 NE=8 ROUND_SET=()
  NADO_SET=()
  FT_STEPS=200 FT_BATCH=32 ROUNDS=3
fi
MAXNEW=32
FT_COMMON=(--set data.max_prompt_len=32 --set run.threads=1)

now() { date +%s.%N; }
timed() { # NAME CMD...: runs CMD, appends "NAME seconds" to DIR/timings.txt; CMD's status
  local name=$1 t0; shift
  t0=$(now)
  "$@" || return $?
  awk -v a="$(now)" -v b="$t0" -v n="$name" 'BEGIN{printf "%s\t%.1f\n", n, a - b}' >> "$OUT/timings.txt"
}
train() { # OUT_DIR LOGNAME CONFIG ARGS...: one training run with its DONE marker
  local dir=$1 name=$2 cfg=$3; shift 3
  [ -f "$dir/DONE" ] && return 0
  rm -rf "$dir"
  timed "$name" "$BIN" train "$cfg" --quiet --set run.out_dir="$dir" "$@" > "$LOG/$name.log" 2>&1 \
    || die "$name failed (see $LOG/$name.log)"
  touch "$dir/DONE"
}

# ---- 1. task ---------------------------------------------------------------------------------
if [ ! -f "$T/DONE" ]; then
  rm -rf "$T"
  timed task "$PY" tools/gen_banned_task.py --out "$T" --seed 0 "${TASK[@]}" > "$LOG/task.log" 2>&1 \
    || die "task generation failed (see $LOG/task.log)"
  "$BIN" tokenizer train --input "$T/tok_corpus.txt" --vocab-size 420 --byte-fallback 0 \
    --character-coverage 1.0 --out "$T/spm" >> "$LOG/task.log" 2>&1 || die "tokenizer failed"
  touch "$T/DONE"
fi
# perplexity: `tinyalign eval` of a model (its own tokenizer) on an SFT file (mean NLL of the
# completion tokens and EOS)
cat > "$T/eval.json" <<EOF
{"run": {"name": "repro-nado-eval", "out_dir": "$OUT/logs/eval", "threads": 1},
 "model": {"init": "checkpoint", "path": "$OUT/seed1/sft_full"},
 "data": {"format": "sft", "train": "$T/heldout_clean.jsonl", "max_len": 40, "max_prompt_len": 32},
 "objective": {"type": "sft"},
 "train": {"batch_size": 32, "eval_batches": 1000}}
EOF
# the guide's detection check: held-out clean (label 1) and banned-word (label 0) sentences
# as labelled rows; `tinyalign eval` of objective nado reports the accuracy of
# sigmoid(r) > 1/2 at the last position (chance 0.5)
"$PY" - "$T" <<'EOF'
import json, sys
t = sys.argv[1]
with open(f"{t}/heldout_labelled.jsonl.tmp", "w") as f:
    for name, score in (("heldout_clean.jsonl", 1), ("heldout_banned.jsonl", 0)):
        for line in open(f"{t}/{name}"):
            r = json.loads(line)
            f.write(json.dumps({"prompt": r["prompt"],
                                "responses": [{"text": r["completion"], "score": score}]}) + "\n")
EOF
mv "$T/heldout_labelled.jsonl.tmp" "$T/heldout_labelled.jsonl"
cat > "$T/eval_nado.json" <<EOF
{"run": {"name": "repro-nado-eval-guide", "out_dir": "$OUT/logs/eval", "threads": 1},
 "model": {"init": "checkpoint", "path": "$OUT/seed1/sft_full"},
 "data": {"format": "multi", "train": "$T/heldout_labelled.jsonl", "max_len": 40, "max_prompt_len": 32},
 "objective": {"type": "nado"},
 "train": {"batch_size": 32, "eval_batches": 1000}}
EOF

# ---- per seed --------------------------------------------------------------------------------
eval_arm() { # S ARM MODEL [GUIDE]: DIR/seedS/ARM/eval/{violations,judge}.jsonl, ppl_*.json
  local s=$1 arm=$2 model=$3 guide=${4:-} E=$OUT/seed$1/$2/eval g=() f
  g=(); [ -z "$guide" ] || g=(--guide "$guide")
  [ -f "$E/DONE" ] && return 0
  rm -rf "$E"; mkdir -p "$E"
  (
    "$BIN" sample --model "$model" "${g[@]}" --prompts "$T/heldout_prompts.jsonl" --n "$NE" \
      --temperature 1 --min-new-tokens 1 --max-new-tokens "$MAXNEW" --seed $((s * 100 + 7)) \
      --threads 1 --quiet --out "$E/samples.raw.jsonl" &&
    "$PY" tools/drop_empty_responses.py "$E/samples.raw.jsonl" "$E/samples.jsonl" &&
    "$BIN" score --in "$E/samples.jsonl" --scorer "banned:$T/banned.txt" --out "$E/violations.jsonl" \
      --quiet --threads 1 &&
    "$BIN" sample --model "$model" "${g[@]}" --prompts "$T/judge_heldout.jsonl" --temperature 0 \
      --max-new-tokens 3 --threads 1 --quiet --out "$E/judge.jsonl" &&
    for f in clean banned; do
      "$BIN" eval "$T/eval.json" --set model.path="$model" --set data.train="$T/heldout_$f.jsonl" \
        > "$E/ppl_$f.json.tmp" && mv "$E/ppl_$f.json.tmp" "$E/ppl_$f.json" || exit 1
    done
  ) > "$LOG/seed$s-$arm-eval.log" 2>&1 || die "seed $s $arm: eval failed (see $LOG/seed$s-$arm-eval.log)"
  touch "$E/DONE"
}

run_seed() { # S
  local s=$1 S=$OUT/seed$1 l k prev
  mkdir -p "$S"
  # 2. LLM_0: SFT on the full corpus (each arm is evaluated as soon as it exists, so an
  # interrupted study keeps the finished arms)
  train "$S/sft_full" "seed$s-sft_full" configs/repro-nado-sft.json --set run.seed="$s" \
    --set tokenizer.model="$T/spm.model" --set data.train="$T/corpus.jsonl" \
    --set train.max_steps="$SFT_STEPS"
  eval_arm "$s" sft_full "$S/sft_full"
  # 3. NADO_1 from labelled samples of LLM_0
  if [ ! -f "$S/nado1/DONE" ]; then
    timed "seed$s-nado1-sample" "$BIN" sample --model "$S/sft_full" --prompts "$T/sample_prompts.jsonl" \
      --n "$NS" --temperature 1 --min-new-tokens 1 --max-new-tokens "$MAXNEW" --seed "$s" \
      --threads 1 --quiet --out "$S/nado1_samples.raw.jsonl" > "$LOG/seed$s-nado1.log" 2>&1 \
      || die "seed $s: sampling failed"
    "$PY" tools/drop_empty_responses.py "$S/nado1_samples.raw.jsonl" "$S/nado1_samples.jsonl" \
      >> "$LOG/seed$s-nado1.log" || die "seed $s: sampling failed"
    "$BIN" score --in "$S/nado1_samples.jsonl" --scorer "banned:$T/banned.txt" \
      --out "$S/nado1_labels.jsonl" --quiet --threads 1 >> "$LOG/seed$s-nado1.log" 2>&1 || die "seed $s: score failed"
    train "$S/nado1" "seed$s-nado1" configs/nado-guide-tiny.json --set run.seed="$s" \
      --set run.threads=1 --set model.path="$S/sft_full" --set data.train="$S/nado1_labels.jsonl" \
      --set data.max_prompt_len=32 "${NADO_SET[@]}"
  fi
  if [ ! -s "$S/nado1_eval.json" ]; then
    "$BIN" eval "$T/eval_nado.json" --set model.path="$S/sft_full" --checkpoint "$S/nado1" \
      > "$S/nado1_eval.json.tmp" 2>> "$LOG/seed$s-nado1.log" && mv "$S/nado1_eval.json.tmp" "$S/nado1_eval.json" \
      || die "seed $s: the guide's eval failed"
  fi
  eval_arm "$s" guided "$S/sft_full" "$S/nado1"
  # 4. the baselines and the arms
  train "$S/sft_filtered" "seed$s-sft_filtered" configs/repro-nado-sft.json --set run.seed="$s" \
    --set tokenizer.model="$T/spm.model" --set data.train="$T/corpus_filtered.jsonl" \
    --set train.max_steps="$SFT_STEPS"
  eval_arm "$s" sft_filtered "$S/sft_filtered"
  prev=$S/sft_full
  for k in $(seq 1 $ROUNDS); do # lambda 0: plain SFT in the same 3 x FT_STEPS steps
    train "$S/sft_cont/round$k" "seed$s-sft_cont-$k" configs/nado-finetune-tiny.json \
      --set run.seed=$((s * 1000 + k)) --set model.path="$prev" --set data.train="$T/corpus.jsonl" \
      --set objective.attribute.guide= --set train.max_steps="$FT_STEPS" \
      --set train.batch_size="$FT_BATCH" "${FT_COMMON[@]}"
    prev=$S/sft_cont/round$k
  done
  eval_arm "$s" sft_cont "$S/sft_cont/round$ROUNDS"
  for l in $LAMBDAS; do
    rounds "$s" sequential "$l"
    eval_arm "$s" "seq_$l" "$S/seq_$l/round$ROUNDS/model"
    if [[ " $PLAMBDAS " == *" $l "* ]]; then
      rounds "$s" parallel "$l"
      eval_arm "$s" "par_$l" "$S/par_$l/round$ROUNDS/model"
    fi
  done
  for l in $SLAMBDAS; do
    rounds "$s" sequential "$l" samples
    eval_arm "$s" "seqsamp_$l" "$S/seqsamp_$l/round$ROUNDS/model"
  done
  return 0
}

rounds() { # S SCHEDULE LAMBDA [samples]
  local s=$1 sch=$2 l=$3 S=$OUT/seed$1 R arm pre=()
  arm=${sch:0:3}_$l
  if [ "${4:-}" = samples ]; then
    arm=seqsamp_$l
    pre=(--prefixes samples --first-samples "$S/nado1_samples.jsonl")
  fi
  R=$S/$arm
  [ -f "$R/DONE" ] && return 0
  if [ "$sch" = parallel ] && [ ! -f "$R/round1/model/DONE" ]; then
    # round 1 is the same job in both schedules: reuse the sequential one's
    rm -rf "$R"; mkdir -p "$R/round1" "$R/timings"
    cp -r "$S/seq_$l/round1/model" "$R/round1/model"
    cp "$S/seq_$l/timings/round1-"*.seconds "$R/timings/"
  fi
  timed "seed$s-$arm" tools/nado_rounds.sh --base "$S/sft_full" --corpus "$T/corpus.jsonl" \
    --prompts "$T/sample_prompts.jsonl" --oracle "banned:$T/banned.txt" --out "$R" \
    --rounds $ROUNDS --schedule "$sch" --lambda "$l" --n "$NS" --max-new-tokens "$MAXNEW" \
    --seed "$s" --first-guide "$S/nado1" --build "$BUILD" \
    --guide-set data.max_prompt_len=32 --ft-set data.max_prompt_len=32 \
    --ft-set train.max_steps="$FT_STEPS" --ft-set train.batch_size="$FT_BATCH" \
    "${ROUND_SET[@]}" "${pre[@]}" > "$LOG/seed$s-$arm.log" 2>&1 \
    || die "seed $s $arm failed (see $LOG/seed$s-$arm.log)"
  touch "$R/DONE"
}

echo "# $(date -u +%FT%TZ) seeds $SEEDS jobs $JOBS lambdas $LAMBDAS parallel $PLAMBDAS samples $SLAMBDAS smoke $SMOKE" \
  >> "$OUT/timings.txt"
T0=$(now)
pids=()
for s in $(seq 1 "$SEEDS"); do
  run_seed "$s" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ "$failed" = 0 ] || die "a seed failed (logs in $LOG)"
awk -v a="$(now)" -v b="$T0" 'BEGIN{printf "total\t%.1f\n", a - b}' >> "$OUT/timings.txt"

# ---- 6. report -------------------------------------------------------------------------------
"$PY" tools/report_nado.py --dir "$OUT" --seeds "$SEEDS" --lambdas "$LAMBDAS" \
  --parallel-lambdas "$PLAMBDAS" --sample-lambdas "$SLAMBDAS" || die "report failed"
echo "repro_nado.sh: report in $OUT/report.md"
