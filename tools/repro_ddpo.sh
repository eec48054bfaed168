#!/usr/bin/env bash
# repro_ddpo.sh — reproduces the diversity claim of DDPO / DORPO (Chung et al. 2025,
# arXiv 2503.17126) end to end at small scale, against DPO, ORPO, DivPO (Lanchantin et al.
# 2025, arXiv 2501.18101) and the SFT start:
#
#   tools/repro_ddpo.sh [--seeds N] [--out DIR] [--jobs J] [--build DIR] [--smoke]
#                       [--pref-set KEY=VALUE ...]
#
#   --seeds N   seeds 1..N per arm (default 5)        --out DIR  results (default runs/repro_ddpo)
#   --jobs J    processes at once, 1 thread each (default 2)
#   --build DIR where tinyalign is (default build)    --smoke    tiny sizes, for the test
#   --pref-set KEY=VALUE   a config override for every preference run (repeatable; for a
#               sensitivity check such as optim.lr=1e-4, noted in the report; the settings
#               of the study are the configs')
#
# Stages (each skipped when its outputs exist; an interrupted stage is redone from scratch:
# every output is written under a temporary name and renamed, a run directory counts only
# with its DONE marker; redoing the data, a seed's SFT or its pairs also redoes what was
# made from them):
#   1. data      tools/gen_diversity_task.py --holdout-mode templates: 16 digit sums x 10
#                prompts x 12 "human" responses (25% invalid, Zipf-popular valid answers,
#                popularity-biased upvotes), a semantic (40-d) and a style (3-d) embedding per
#                response; held-out prompts = (sum, template) combinations never trained on;
#                "gold" = 16 fresh human responses per held-out prompt; SFT data = every
#                response; a 96-piece SentencePiece tokenizer (one piece per digit).
#   2. sft       per seed: configs/repro-ddpo-sft.json (2 layers, d 64) from scratch.
#   3. pairs     per seed: `curate pairs --gap 5 --seed S` with the semantic, the style and
#                both embeddings (the pair draw does not depend on the weights, so DPO and
#                DDPO train on IDENTICAL pairs: checked); the few-responses ablation keeps 2
#                pairs (4 responses) per prompt, with and without --min-weight 0.2;
#                `curate divpo --rho 25 --max-pairs 2` with both embeddings.
#   4. arms      per seed, every arm from that seed's SFT model, same budget per family:
#                DPO family configs/repro-ddpo-dpo.json (beta 0.1, lr 5e-4, 12 pairs x 230
#                steps ~ 3 epochs), ORPO family configs/repro-ddpo-orpo.json (lambda 0.25,
#                same lr, 12 pairs x 310 steps ~ 4 epochs).
#   5. sample    per arm and seed: `tinyalign sample --n 16 --temperature 1` on the held-out
#                prompts (and the trained prompts, secondary).
#   6. report    tools/report_ddpo.py scores the samples (tools/check_diversity_task.py and
#                `tinyalign curate diversity`; kept in each run's metrics.json) and writes
#                DIR/report.md (mean +- std over seeds per arm), DIR/results.json,
#                DIR/scatter.png.
# Logs: DIR/logs/. Wall time of each stage: DIR/timings.txt.
set -euo pipefail
source "$(dirname "$0")/lib_repro.sh"
cd "$(dirname "$0")/.."
REPRO_NAME=repro_ddpo.sh

ARMS="sft dpo ddpo-sem ddpo-sty ddpo-both orpo dorpo-both divpo dpo-few ddpo-few ddpo-few-floor"

# arm_spec ARM -> "CONFIG OBJECTIVE PAIRS" (PAIRS: a file of the seed's pairs directory)
arm_spec() {
  case $1 in
    dpo)            echo "dpo dpo both" ;;
    ddpo-sem)       echo "dpo ddpo sem" ;;
    ddpo-sty)       echo "dpo ddpo sty" ;;
    ddpo-both)      echo "dpo ddpo both" ;;
    orpo)           echo "orpo orpo both" ;;
    dorpo-both)     echo "orpo dorpo both" ;;
    divpo)          echo "dpo dpo divpo" ;;
    dpo-few)        echo "dpo dpo few" ;;
    ddpo-few)       echo "dpo ddpo few" ;;
    ddpo-few-floor) echo "dpo ddpo few-floor" ;;
    *) echo "repro_ddpo.sh: unknown arm $1" >&2; return 2 ;;
  esac
}

# ---- one job (the script calls itself through xargs: _job KIND ARG...) ----------------------
if [ "${1:-}" = _job ]; then
  shift
  : "${OUT:?}" "${BIN:?}" "${PY:?}"
  kind=$1; seed=$2; arm=${3:-}
  S=$OUT/seed$seed
  D=$OUT/data
  extra_set=()
  repro_job_log "$OUT/logs/$kind-s$seed${arm:+-$arm}.log" "$kind seed $seed ${arm:-}"
  case $kind in
    sft)
      run=$S/sft
      [ -f "$run/DONE" ] && exit 0
      rm -rf "$run"; mkdir -p "$S"
      [ "$SMOKE" = 1 ] && extra_set=(--set train.max_steps=150 --set train.log_every=50)
      t0=$(date +%s.%N)
      "$BIN" train configs/repro-ddpo-sft.json --quiet --set run.seed="$seed" \
          --set run.out_dir="$run" --set data.train="$D/sft.jsonl" \
          --set tokenizer.model="$D/spm.model" "${extra_set[@]}"
      echo "$(date +%s.%N) $t0" | awk '{printf "%.1f\n", $1 - $2}' > "$run/seconds"
      touch "$run/DONE"
      ;;
    pairs)
      P=$S/pairs
      [ -d "$P" ] && exit 0
      rm -rf "$P.tmp"; mkdir -p "$P.tmp"
      both=(--source field:embedding --source field:style_embedding)
      cp_args=(--in "$D/train.jsonl" --gap 5 --seed "$seed")
      "$BIN" curate pairs "${cp_args[@]}" --out "$P.tmp/sem.jsonl" --source field:embedding
      "$BIN" curate pairs "${cp_args[@]}" --out "$P.tmp/sty.jsonl" --source field:style_embedding
      "$BIN" curate pairs "${cp_args[@]}" --out "$P.tmp/both.jsonl" "${both[@]}"
      "$BIN" curate pairs "${cp_args[@]}" --out "$P.tmp/few.jsonl" "${both[@]}" \
          --max-pairs-per-prompt 2
      "$BIN" curate pairs "${cp_args[@]}" --out "$P.tmp/few-floor.jsonl" "${both[@]}" \
          --max-pairs-per-prompt 2 --min-weight 0.2
      "$BIN" curate divpo --in "$D/train.jsonl" --out "$P.tmp/divpo.jsonl" "${both[@]}" \
          --rho 25 --max-pairs 2 --seed "$seed"
      # DPO and DDPO (ORPO and DORPO) must see the same pairs: only the weights differ
      n=$("$PY" tools/check_diversity_task.py same-pairs "$P.tmp/both.jsonl" \
          "$P.tmp/sem.jsonl" "$P.tmp/sty.jsonl")
      nf=$("$PY" tools/check_diversity_task.py same-pairs "$P.tmp/few.jsonl" \
          "$P.tmp/few-floor.jsonl")
      echo "identical pairs: $n in both/sem/sty, $nf in few/few-floor"
      mv "$P.tmp" "$P"
      ;;
    train)
      run=$S/$arm
      [ -f "$run/DONE" ] && exit 0
      rm -rf "$run"
      read -r cfg obj pairs <<<"$(arm_spec "$arm")"
      [ "$SMOKE" = 1 ] && extra_set=(--set train.max_steps=10 --set train.log_every=5)
      for kv in $PREF_SET; do extra_set+=(--set "$kv"); done
      t0=$(date +%s.%N)
      "$BIN" train "configs/repro-ddpo-$cfg.json" --quiet --set run.seed="$seed" \
          --set run.name="$arm" --set run.out_dir="$run" --set model.path="$S/sft" \
          --set objective.type="$obj" --set data.train="$S/pairs/$pairs.jsonl" \
          "${extra_set[@]}"
      echo "$(date +%s.%N) $t0" | awk '{printf "%.1f\n", $1 - $2}' > "$run/seconds"
      touch "$run/DONE"
      ;;
    sample)
      run=$S/$arm
      [ -s "$run/seen.jsonl" ] && exit 0
      for split in heldout seen; do
        "$BIN" sample --model "$run" --prompts "$D/$split.jsonl" --n 16 --temperature 1 \
            --min-new-tokens 1 --max-new-tokens 8 --seed "$seed" --threads 1 --quiet \
            --out "$run/$split.jsonl.tmp"
        mv "$run/$split.jsonl.tmp" "$run/$split.jsonl"
      done
      ;;
    *) echo "repro_ddpo.sh: unknown job $kind" >&2; exit 2 ;;
  esac
  exit 0
fi

# ---- the driver --------------------------------------------------------------------------
SEEDS=5 OUT=runs/repro_ddpo JOBS=2 BUILD=build SMOKE=0 PREF_SET=""
while [ $# -gt 0 ]; do
  repro_parse_common "$@"
  [ "$REPRO_SHIFT" -gt 0 ] && { shift "$REPRO_SHIFT"; continue; }
  case $1 in
    --pref-set) repro_kv_option --pref-set "${2:-}"; PREF_SET="$PREF_SET $2"; shift 2 ;;
    *) repro_unknown "$1" ;;
  esac
done
repro_count --seeds "$SEEDS" --jobs "$JOBS"
repro_setup
export OUT BIN PY SMOKE PREF_SET
echo "# $(date -u +%FT%TZ) seeds $SEEDS jobs $JOBS smoke $SMOKE${PREF_SET:+ pref-set$PREF_SET}" \
  >> "$OUT/timings.txt"

# 1. data
D=$OUT/data
if [ ! -d "$D" ]; then
  rm -rf "$D.tmp" "$OUT"/seed*   # everything downstream derives from the data
  mkdir -p "$D.tmp"
  gen=(--seed 0 --holdout-mode templates)
  [ "$SMOKE" = 1 ] && gen+=(--prompts-per-sum 3)
  "$PY" tools/gen_diversity_task.py --out "$D.tmp/train.jsonl" --test-out "$D.tmp/heldout.jsonl" \
      --gold-out "$D.tmp/gold.jsonl" "${gen[@]}" > "$OUT/logs/data.log"
  "$PY" - "$D.tmp" <<'EOF'
import json, sys
d = sys.argv[1]
seen = {}
with open(f"{d}/sft.jsonl", "w") as sft, open(f"{d}/tok.txt", "w") as tok:
    for line in open(f"{d}/train.jsonl"):
        r = json.loads(line)
        seen.setdefault(r["prompt"], r["sum"])
        tok.write(r["prompt"] + "\n")
        for x in r["responses"]:
            sft.write(json.dumps({"prompt": r["prompt"], "completion": x["text"]}) + "\n")
            tok.write(x["text"] + "\n")
with open(f"{d}/seen.jsonl", "w") as f:
    for p, s in seen.items():
        f.write(json.dumps({"prompt": p, "sum": s}) + "\n")
EOF
  repro_tokenizer "$D.tmp" 96
  mv "$D.tmp" "$D"
fi
stage_done data

seeds=$(seq 1 "$SEEDS")
# a seed whose SFT model or pairs are to be (re)made loses the arms trained on the old ones
for s in $seeds; do
  if [ ! -f "$OUT/seed$s/sft/DONE" ] || [ ! -d "$OUT/seed$s/pairs" ]; then
    for a in $ARMS; do [ "$a" = sft ] || rm -rf "$OUT/seed$s/$a"; done
  fi
done
# 2. SFT, 3. pairs (the pairs need no model: run beside the SFTs)
{ for s in $seeds; do echo "sft $s"; done; for s in $seeds; do echo "pairs $s"; done; } | run_jobs
stage_done "sft + pairs"
# 4. every preference arm from its seed's SFT model
for s in $seeds; do for a in $ARMS; do [ "$a" = sft ] || echo "train $s $a"; done; done | run_jobs
stage_done arms
# 5. sample
for s in $seeds; do for a in $ARMS; do echo "sample $s $a"; done; done | run_jobs
stage_done sample
# 6. score and report
report_flags=()
[ "$SMOKE" = 1 ] && report_flags=(--smoke)
[ -n "$PREF_SET" ] && report_flags+=(--title "preference runs with$PREF_SET" \
    --note "Sensitivity run: every preference run with --set$PREF_SET (not the study's settings).")
"$PY" tools/report_ddpo.py report --out "$OUT" --seeds "$SEEDS" --arms "$ARMS" --bin "$BIN" \
    "${report_flags[@]}" \
    > "$OUT/logs/report.log"
stage_done report
echo "== total: $(( $(date +%s) - T0 )) s; report $OUT/report.md, figure $OUT/scatter.png" \
  | tee -a "$OUT/timings.txt" >&2
