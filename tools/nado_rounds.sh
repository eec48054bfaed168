#!/usr/bin/env bash
# nado_rounds.sh — attribute-controlled fine-tuning in rounds (Meng et al. 2024, arXiv
# 2410.05559): a NADO guide (Meng et al. 2022, arXiv 2205.14219) learns from labelled
# samples of the current model, and the model is fine-tuned on a corpus with
# NLL + lambda * KL(q || p) toward the guide-reweighted distribution q.
#
#   tools/nado_rounds.sh --base MODEL --corpus SFT.jsonl --prompts PROMPTS.jsonl
#                        --oracle SPEC --out DIR [options]
#
# Round k (LLM_0 = --base):
#   a_k  sample  `tinyalign sample` --n N responses to every prompt from LLM_{k-1}
#                                     -> DIR/round<k>/samples.jsonl
#        label   `tinyalign score --scorer ORACLE` (a 0/1 oracle: banned:FILE, or any cmd:
#                program answering {"score": 0|1})  -> DIR/round<k>/labels.jsonl
#        nado    `tinyalign train` objective nado (--guide-config), initialised from
#                LLM_{k-1}, whose frozen copy is the base of the consistency term
#                                                      -> DIR/round<k>/nado
#   b_k  finetune  `tinyalign train` sft + objective.attribute (--ft-config) from LLM_{k-1}
#                on the corpus, guide NADO_g           -> DIR/round<k>/model
#   sequential schedule: g = k, a_k then b_k.
#   parallel schedule:   round 1 as above; for k >= 2, g = k - 1, so a_k and b_k depend only
#                on round k-1 and run at the same time (one round of guidance lag). The last
#                round trains no NADO (nothing would use it).
# With --q-base base the p inside q is the model the guide was trained on (LLM_{g-1}), not
# the policy (objective.attribute.q_base).
# Prefixes (where the KL is taken): --prefixes corpus (the default) puts the KL on the
# corpus rows, beside their NLL. --prefixes samples puts it on the samples NADO_g learned
# from (DIR/round<g>/samples.jsonl as prompt/completion rows, DIR/round<g>/prefixes.jsonl):
# the fine-tuning data is then a mixture, the corpus feeding the NLL only and the samples the
# KL only (data.train sources with "loss": "nll" and "loss": "kl"), the samples making
# --sample-share of the rows. These are the samples of the model being fine-tuned in the
# sequential schedule, and one round older in the parallel one, like its guide: the KL is
# taken where the guide was trained, and the two jobs of a parallel round stay independent.
# With --first-guide, --first-samples names the samples NADO_1 learned from.
#
# Options:
#   --rounds K (3)  --schedule sequential|parallel (sequential)  --lambda L (0.5)
#   --n N responses per prompt (8)   --max-new-tokens N (32)   --seed S (1)
#   --first-guide DIR   NADO_1 already trained on samples of --base: a_1 is skipped
#   --guide-config FILE (configs/nado-guide-tiny.json)
#   --ft-config FILE (configs/nado-finetune-tiny.json)
#   --guide-set K=V, --ft-set K=V   config overrides (repeatable)
#   --q-base policy|base (policy)   --threads N per process (1)   --build DIR (build)
#   --prefixes corpus|samples (corpus)   --sample-share F in (0, 1) (0.5)
#   --first-samples FILE   the labelled samples NADO_1 (--first-guide) learned from
#   --smoke   short trainings (the test suite)
# Resumable at stage granularity: a stage whose output exists is skipped; an interrupted
# one is redone from scratch (sample and score write atomically; a training run counts only
# with its DONE marker, otherwise its directory is removed and the run redone). When an
# input of a stage is remade (a new NADO or model), what was made from the old one is
# removed first.
# Timing: DIR/timings.tsv (stage, seconds: the run that made each output), and
# DIR/wallclock.txt: the wall time of every round from those (sequential: a_k + b_k;
# parallel: max(a_k, b_k), measured while both ran) and their sum. The machine may be
# shared: the numbers are those of the run.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "nado_rounds.sh: $*" >&2; exit 2; }
BASE="" CORPUS="" PROMPTS="" ORACLE="" OUT="" ROUNDS=3 SCHEDULE=sequential LAMBDA=0.5 N=8
MAXNEW=32 SEED=1 FIRST="" GCFG=configs/nado-guide-tiny.json FCFG=configs/nado-finetune-tiny.json
QBASE=policy THREADS=1 BUILD=build SMOKE=0 PREFIXES=corpus SHARE=0.5 FIRST_SAMPLES=""
GSET=() FSET=()
while [ $# -gt 0 ]; do
  case $1 in
    --base) BASE=$2; shift 2 ;;
    --corpus) CORPUS=$2; shift 2 ;;
    --prompts) PROMPTS=$2; shift 2 ;;
    --oracle) ORACLE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --schedule) SCHEDULE=$2; shift 2 ;;
    --lambda) LAMBDA=$2; shift 2 ;;
    --n) N=$2; shift 2 ;;
    --max-new-tokens) MAXNEW=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --first-guide) FIRST=$2; shift 2 ;;
    --guide-config) GCFG=$2; shift 2 ;;
    --ft-config) FCFG=$2; shift 2 ;;
    --guide-set) GSET+=(--set "$2"); shift 2 ;;
    --ft-set) FSET+=(--set "$2"); shift 2 ;;
    --q-base) QBASE=$2; shift 2 ;;
    --prefixes) PREFIXES=$2; shift 2 ;;
    --sample-share) SHARE=$2; shift 2 ;;
    --first-samples) FIRST_SAMPLES=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in BASE CORPUS PROMPTS ORACLE OUT; do
  [ -n "${!v}" ] || die "--$(tr 'A-Z' 'a-z' <<<"$v") is required (see --help)"
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds needs a count >= 1, got $ROUNDS"
[[ $N =~ ^[1-9][0-9]*$ ]] || die "--n needs a count >= 1, got $N"
[[ $SCHEDULE == sequential || $SCHEDULE == parallel ]] || die "--schedule must be sequential or parallel, got $SCHEDULE"
[[ $QBASE == policy || $QBASE == base ]] || die "--q-base must be policy or base, got $QBASE"
[[ $LAMBDA =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]] || die "--lambda needs a number >= 0, got $LAMBDA"
[[ $PREFIXES == corpus || $PREFIXES == samples ]] || die "--prefixes must be corpus or samples, got $PREFIXES"
[[ $SHARE =~ ^0?\.[0-9]*[1-9][0-9]*$ ]] || die "--sample-share needs a number in (0, 1), got $SHARE"
if [ "$PREFIXES" = samples ] && [ -n "$FIRST" ] && [ -z "$FIRST_SAMPLES" ]; then
  die "--prefixes samples with --first-guide needs --first-samples (the samples NADO_1 learned from)"
fi
[ -z "$FIRST_SAMPLES" ] || [ "$PREFIXES" = samples ] || die "--first-samples is only read with --prefixes samples"
[ -z "$FIRST_SAMPLES" ] || [ -n "$FIRST" ] || die "--first-samples goes with --first-guide"
BIN=$BUILD/tinyalign
PY=${PYTHON:-/usr/bin/python3}
[ -x "$BIN" ] || die "$BIN not found (run make)"
for f in "$CORPUS" "$PROMPTS" "$GCFG" "$FCFG"; do [ -f "$f" ] || die "$f: no such file"; done
[ -z "$FIRST" ] || [ -d "$FIRST" ] || die "--first-guide $FIRST: no such directory"
[ -z "$FIRST_SAMPLES" ] || [ -f "$FIRST_SAMPLES" ] || die "--first-samples $FIRST_SAMPLES: no such file"
mkdir -p "$OUT"
LOG=$OUT/logs
mkdir -p "$LOG"
smoke_g=() smoke_f=()
if [ "$SMOKE" = 1 ]; then
  smoke_g=(--set train.max_steps=12 --set train.log_every=6 --set train.batch_size=8)
  smoke_f=(--set train.max_steps=6 --set train.log_every=3 --set train.batch_size=8)
fi

model_of() { # K: the model after round K (0: the base)
  if [ "$1" -eq 0 ]; then echo "$BASE"; else echo "$OUT/round$1/model"; fi
}
nado_of() { # K: NADO_K
  if [ "$1" -eq 1 ] && [ -n "$FIRST" ]; then echo "$FIRST"; else echo "$OUT/round$1/nado"; fi
}
samples_of() { # K: the samples NADO_K learned from
  if [ "$1" -eq 1 ] && [ -n "$FIRST" ]; then echo "$FIRST_SAMPLES"; else echo "$OUT/round$1/samples.jsonl"; fi
}
guide_round() { # K: the round whose NADO fine-tunes round K's model
  if [ "$SCHEDULE" = parallel ] && [ "$1" -ge 2 ]; then echo $(($1 - 1)); else echo "$1"; fi
}
record() { # STAGE SECONDS: DIR/timings/<stage>.seconds (stages of a parallel round write
  # at the same time, so one file each; DIR/timings.tsv is assembled at the end)
  mkdir -p "$OUT/timings"
  echo "$2" > "$OUT/timings/${1//\//-}.seconds"
}
now() { date +%s.%N; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN{printf "%.1f", a - b}'; }
done_run() { [ -f "$1/DONE" ]; }
# invalidate DIR...: removes stage outputs made from an input that is being remade
invalidate() { for d in "$@"; do rm -rf "$d"; done; }

# ---- the stages ----------------------------------------------------------------------------
stage_a() { # K: sample LLM_{K-1}, label, train NADO_K
  local k=$1 R=$OUT/round$1 src t0
  src=$(model_of $((k - 1)))
  mkdir -p "$R"
  if [ ! -s "$R/samples.jsonl" ]; then
    invalidate "$R/labels.jsonl" "$R/nado" "$R/prefixes.jsonl"
    t0=$(now)
    "$BIN" sample --model "$src" --prompts "$PROMPTS" --n "$N" --temperature 1 --min-new-tokens 1 \
        --max-new-tokens "$MAXNEW" --seed $((SEED * 1000 + k)) --threads "$THREADS" --quiet \
        --out "$R/samples.raw.jsonl" > "$LOG/round$k-sample.log" 2>&1
    "$PY" tools/drop_empty_responses.py "$R/samples.raw.jsonl" "$R/samples.jsonl" >> "$LOG/round$k-sample.log"
    rm -f "$R/samples.raw.jsonl"
    record "round$k/sample" "$(elapsed "$t0")"
  fi
  if [ ! -s "$R/labels.jsonl" ]; then
    invalidate "$R/nado"
    t0=$(now)
    "$BIN" score --in "$R/samples.jsonl" --scorer "$ORACLE" --out "$R/labels.jsonl" \
        --threads "$THREADS" > "$LOG/round$k-label.log" 2>&1
    record "round$k/label" "$(elapsed "$t0")"
  fi
  if ! done_run "$R/nado"; then
    rm -rf "$R/nado"
    t0=$(now)
    "$BIN" train "$GCFG" --quiet --set run.out_dir="$R/nado" --set run.seed=$((SEED * 1000 + k)) \
        --set run.threads="$THREADS" --set model.init=checkpoint --set model.path="$src" \
        --set data.train="$R/labels.jsonl" --set data.val= --set objective.nado.base= \
        "${GSET[@]}" "${smoke_g[@]}" > "$LOG/round$k-nado.log" 2>&1
    record "round$k/nado" "$(elapsed "$t0")"
    touch "$R/nado/DONE"
  fi
}

stage_b() { # K: fine-tune LLM_K from LLM_{K-1} with NADO_g
  local k=$1 R=$OUT/round$1 g src t0 qb=()
  g=$(guide_round "$k")
  src=$(model_of $((k - 1)))
  if done_run "$R/model"; then return 0; fi
  rm -rf "$R/model"
  mkdir -p "$R"
  # the prefixes of the KL: the corpus itself, or the samples NADO_g learned from, as
  # prompt/completion rows that feed the KL only (the corpus then feeds the NLL only)
  local data=(--set data.train="$CORPUS")
  if [ "$PREFIXES" = samples ]; then
    local pf=$OUT/round$g/prefixes.jsonl
    if [ ! -s "$pf" ]; then
      mkdir -p "$OUT/round$g"
      "$PY" - "$(samples_of "$g")" "$pf.tmp" <<'PYEOF' || die "round $k: cannot make $pf"
import json, sys
n = 0
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        if line.strip():
            row = json.loads(line)
            for r in row["responses"]:
                if r["text"]:
                    out.write(json.dumps({"prompt": row["prompt"], "completion": r["text"]}) + "\n")
                    n += 1
if n == 0:
    sys.exit(f"{sys.argv[1]}: no non-empty response to use as a prefix")
PYEOF
      mv "$pf.tmp" "$pf"
    fi
    local cshare
    cshare=$(awk -v s="$SHARE" 'BEGIN{printf "%.6g", 1 - s}')
    data=(--set "data.train=[{\"path\": \"$CORPUS\", \"weight\": $cshare, \"loss\": \"nll\"}, {\"path\": \"$pf\", \"weight\": $SHARE, \"loss\": \"kl\"}]")
  fi
  # q_base base: the model NADO_g learned from, LLM_{g-1} (sequential: the initial policy)
  if [ "$QBASE" = base ]; then
    qb=(--set objective.attribute.q_base=base)
    [ "$g" -eq "$k" ] || qb+=(--set objective.attribute.base="$(model_of $((g - 1)))")
  fi
  t0=$(now)
  "$BIN" train "$FCFG" --quiet --set run.out_dir="$R/model" --set run.seed=$((SEED * 1000 + k)) \
      --set run.threads="$THREADS" --set model.init=checkpoint --set model.path="$src" \
      "${data[@]}" --set objective.attribute.guide="$(nado_of "$g")" \
      --set objective.attribute.lambda="$LAMBDA" "${qb[@]}" "${FSET[@]}" "${smoke_f[@]}" \
      > "$LOG/round$k-finetune.log" 2>&1
  record "round$k/finetune" "$(elapsed "$t0")"
  touch "$R/model/DONE"
}

needs_nado() { # K: 1 when round K trains a NADO
  if [ "$1" -eq 1 ] && [ -n "$FIRST" ]; then return 1; fi
  if [ "$SCHEDULE" = parallel ] && [ "$1" -eq "$ROUNDS" ] && [ "$1" -ge 2 ]; then return 1; fi
  return 0
}
# Outputs are valid only for the inputs they were made from. The first round with a missing
# output is redone from there: every later round is removed, and (sequential) a round whose
# NADO is to be remade loses its model too. (Parallel: NADO_k is read by round k+1, removed.)
for k in $(seq 1 "$ROUNDS"); do
  nado_ok=1
  needs_nado "$k" && ! done_run "$OUT/round$k/nado" && nado_ok=0
  if [ "$nado_ok" = 0 ] || ! done_run "$OUT/round$k/model"; then
    for j in $(seq $((k + 1)) $((ROUNDS + 1))); do invalidate "$OUT/round$j"; done
    [ "$nado_ok" = 0 ] && [ "$SCHEDULE" = sequential ] && invalidate "$OUT/round$k/model"
    break
  fi
done

T_START=$(now)
for k in $(seq 1 "$ROUNDS"); do
  t0=$(now)
  need_a=1
  needs_nado "$k" || need_a=0
  if [ "$SCHEDULE" = parallel ] && [ "$k" -ge 2 ]; then
    # a_k (from LLM_{k-1}) and b_k (LLM_{k-1} + NADO_{k-1}) at once
    pid=""
    if [ "$need_a" = 1 ]; then stage_a "$k" & pid=$!; fi
    stage_b "$k"
    [ -z "$pid" ] || wait "$pid" || die "round $k: the NADO stage failed (logs in $LOG)"
  else
    if [ "$need_a" = 1 ]; then stage_a "$k"; fi
    stage_b "$k"
  fi
  echo "nado_rounds.sh: round $k done ($(elapsed "$t0") s in this invocation)"
done

# The schedule's wall time from the stages' recorded times (so a resumed run reports the
# time its stages took when they ran): sequential round = a_k + b_k; parallel round k >= 2 =
# max(a_k, b_k), both measured while running at the same time.
sec() { cat "$OUT/timings/round$1-$2.seconds" 2>/dev/null || echo 0; }
for f in "$OUT"/timings/*.seconds; do
  [ -f "$f" ] && printf "%s\t%s\n" "$(basename "$f" .seconds)" "$(cat "$f")"
done > "$OUT/timings.tsv"
{
  echo "# $(date -u +%FT%TZ) schedule $SCHEDULE rounds $ROUNDS lambda $LAMBDA q_base $QBASE prefixes $PREFIXES seed $SEED threads $THREADS"
  total=0
  for k in $(seq 1 "$ROUNDS"); do
    a=$(awk -v x="$(sec "$k" sample)" -v y="$(sec "$k" label)" -v z="$(sec "$k" nado)" 'BEGIN{print x + y + z}')
    b=$(sec "$k" finetune)
    if [ "$SCHEDULE" = parallel ] && [ "$k" -ge 2 ]; then
      w=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.1f", (a > b) ? a : b}')
    else
      w=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.1f", a + b}')
    fi
    total=$(awk -v t="$total" -v w="$w" 'BEGIN{printf "%.1f", t + w}')
    printf "round %d: %s s (nado stages %.1f s, fine-tune %.1f s)\n" "$k" "$w" "$a" "$b"
  done
  echo "total: $total s ($SCHEDULE)"
} > "$OUT/wallclock.txt"
cat "$OUT/wallclock.txt"
echo "nado_rounds.sh: this invocation $(elapsed "$T_START") s; final model $(model_of "$ROUNDS")"
