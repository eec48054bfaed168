#!/usr/bin/env bash
# repro_anchor.sh — reproduces the claim of AnchorAlign (Villa-Arenas et al. 2024, arXiv
# 2410.13216) at small scale: DPO on anchored preference pairs raises the judge score of a
# model's self-explanations while keeping its accuracy, better than pairs chosen by the
# judge alone.
#
#   tools/repro_anchor.sh [--seeds N] [--out DIR] [--jobs J] [--build DIR] [--smoke]
#                         [--dpo-set KEY=VALUE ...]
#
#   --seeds N   seeds 1..N (default 3)          --out DIR  results (default runs/repro_anchor)
#   --jobs J    seeds at once, 1 thread each (default 2)
#   --build DIR where tinyalign is (default build)      --smoke  tiny sizes, for the test
#   --dpo-set KEY=VALUE  a config override for every DPO arm (repeatable; a sensitivity
#               check such as optim.lr=1e-4: the settings of the study are the configs')
#
# Stages (a stage whose marker exists is skipped; outputs are written under temporary names):
#   data     tools/gen_anchor_task.py: "explain is a+b>=100?" -> "a+b=c; c>=100; LABEL: yes"
#            for |a+b-100| < 20; 1200 explanation rows (a quarter with the gold label given
#            first, "hint yes. explain is ..."), 1200 label-only rows ("answer is ..." ->
#            "LABEL: yes"), 400 training prompts to sample, 300 held-out prompts; a 64-piece
#            tokenizer (one piece per digit).
#   per seed (the seed of every model, sample and pair draw):
#   explain  stage 0: SFT on the explanations (configs/repro-anchor-sft.json, 600 steps)
#   label    stage 1: label-only SFT from it (configs/repro-anchor-label.json, 20 steps)
#   samples  K = 8 samples per training prompt at T = 1 from the label model, judged by
#            tools/judge_anchor.py (`score --scorer cmd:...`: score 0-5, correct)
#   anchors  4 samples per training prompt with the gold label in the prompt
#            (`sample --template "hint {label}. {prompt}"`), judged the same way
#   pairs    `curate anchors`: anchor (--anchors, --anchor-min-score 4), anchor --ci skip,
#            --rules judge-only, --rules correctness-only
#   arms     DPO from the label model on each pair set (configs/repro-anchor-dpo.json:
#            beta 0.1, lr 5e-4, 16 pairs x 100 steps, the label model as reference)
#   eval     every model (explain, label and the four arms) on the held-out prompts: greedy,
#            and 4 samples at T = 1; judged; accuracy, mean judge score, consistency
#   report   tools/report_anchor.py: DIR/report.md (mean +- std over seeds), results.json,
#            anchor.png
# Logs: DIR/logs/. Wall time of each stage: DIR/timings.txt.
set -euo pipefail
source "$(dirname "$0")/lib_repro.sh"
cd "$(dirname "$0")/.."
REPRO_NAME=repro_anchor.sh

ARMS="anchor anchor-noci judge-only correctness-only"
MODELS="explain label $ARMS"

# ---- one seed (the script calls itself through xargs: _seed S) -----------------------------
if [ "${1:-}" = _seed ]; then
  : "${OUT:?}" "${BIN:?}" "${PY:?}"
  seed=$2
  S=$OUT/seed$seed
  D=$OUT/data
  mkdir -p "$S"
  repro_job_log "$OUT/logs/seed$seed.log" "seed $seed" append
  JUDGE="cmd:$PY tools/judge_anchor.py"
  small=()
  [ "$SMOKE" = 1 ] && small=(--set train.log_every=5)
  train() { # NAME CONFIG ARGS...: one run directory with a DONE marker
    local name=$1 cfg=$2; shift 2
    [ -f "$S/$name/DONE" ] && return 0
    rm -rf "$S/$name"
    "$BIN" train "$cfg" --quiet --set run.seed="$seed" --set run.out_dir="$S/$name" "${small[@]}" "$@"
    touch "$S/$name/DONE"
  }
  judged() { # MODEL PROMPTS N T MIN_K OUT [ARGS...]: sampled and judged, written atomically
    local model=$1 prompts=$2 n=$3 t=$4 min_k=$5 out=$6; shift 6
    [ -s "$out" ] && return 0
    "$BIN" sample --model "$model" --prompts "$prompts" --n "$n" --temperature "$t" \
        --min-new-tokens 1 --max-new-tokens 32 --seed "$seed" --threads 1 --quiet \
        --out "$out.raw" "$@"
    # an undertrained model can emit a token that decodes to nothing: such an empty
    # explanation is dropped (counted in the log), as are rows left with fewer than min_k
    # responses
    "$PY" - "$out.raw" "$min_k" <<'EOF2'
import json, sys
path, min_k = sys.argv[1], int(sys.argv[2])
rows = [json.loads(l) for l in open(path)]
kept, dropped, rows_dropped = [], 0, 0
for r in rows:
    rs = [x for x in r["responses"] if x["text"].strip()]
    dropped += len(r["responses"]) - len(rs)
    r["responses"] = rs
    if len(rs) >= min_k:
        kept.append(r)
    else:
        rows_dropped += 1
with open(path, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in kept)
print(f"{path}: dropped {dropped} empty responses, {rows_dropped} rows with < {min_k} left")
EOF2
    "$BIN" score --in "$out.raw" --scorer "$JUDGE" --out "$out.tmp" 2>/dev/null
    rm -f "$out.raw"; mv "$out.tmp" "$out"
  }
  steps=()
  [ "$SMOKE" = 1 ] && steps=(--set train.max_steps=40)
  train explain configs/repro-anchor-sft.json --set data.train="$D/explain.jsonl" \
      --set tokenizer.model="$D/spm.model" "${steps[@]}"
  train label configs/repro-anchor-label.json --set model.path="$S/explain" \
      --set data.train="$D/label.jsonl"
  judged "$S/label" "$D/train.jsonl" 8 1 2 "$S/samples.jsonl"
  judged "$S/label" "$D/train.jsonl" 4 1 1 "$S/anchors.jsonl" --template "hint {label}. {prompt}"
  if [ ! -d "$S/pairs" ]; then
    rm -rf "$S/pairs.tmp"; mkdir -p "$S/pairs.tmp"
    ca() { "$BIN" curate anchors --in "$S/samples.jsonl" --seed "$seed" "$@"; }
    ca --out "$S/pairs.tmp/anchor.jsonl" --anchors "$S/anchors.jsonl" --anchor-min-score 4
    ca --out "$S/pairs.tmp/anchor-noci.jsonl" --ci skip
    ca --out "$S/pairs.tmp/judge-only.jsonl" --rules judge-only
    ca --out "$S/pairs.tmp/correctness-only.jsonl" --rules correctness-only
    mv "$S/pairs.tmp" "$S/pairs"
  fi
  dsteps=()
  [ "$SMOKE" = 1 ] && dsteps=(--set train.max_steps=10)
  for kv in $DPO_SET; do dsteps+=(--set "$kv"); done
  for a in $ARMS; do
    train "$a" configs/repro-anchor-dpo.json --set model.path="$S/label" --set run.name="$a" \
        --set data.train="$S/pairs/$a.jsonl" "${dsteps[@]}"
  done
  for m in $MODELS; do
    judged "$S/$m" "$D/test.jsonl" 1 0 0 "$S/$m/test-greedy.jsonl"
    judged "$S/$m" "$D/test.jsonl" 4 1 0 "$S/$m/test-t1.jsonl"
  done
  exit 0
fi

# ---- the driver --------------------------------------------------------------------------
SEEDS=3 OUT=runs/repro_anchor JOBS=2 BUILD=build SMOKE=0 DPO_SET=""
while [ $# -gt 0 ]; do
  repro_parse_common "$@"
  [ "$REPRO_SHIFT" -gt 0 ] && { shift "$REPRO_SHIFT"; continue; }
  case $1 in
    --dpo-set) repro_kv_option --dpo-set "${2:-}"; DPO_SET="$DPO_SET $2"; shift 2 ;;
    *) repro_unknown "$1" ;;
  esac
done
repro_count --seeds "$SEEDS" --jobs "$JOBS"
repro_setup
export OUT BIN PY SMOKE DPO_SET
echo "# $(date -u +%FT%TZ) seeds $SEEDS jobs $JOBS smoke $SMOKE${DPO_SET:+ dpo-set$DPO_SET}" \
  >> "$OUT/timings.txt"

D=$OUT/data
if [ ! -d "$D" ]; then
  rm -rf "$D.tmp" "$OUT"/seed*   # everything downstream derives from the data
  gen=(--seed 0)
  [ "$SMOKE" = 1 ] && gen+=(--explain 200 --label 200 --pool 24 --test 24)
  "$PY" tools/gen_anchor_task.py --out "$D.tmp" "${gen[@]}" > "$OUT/logs/data.log"
  repro_tokenizer "$D.tmp" 64
  mv "$D.tmp" "$D"
fi
stage_done data

seq 1 "$SEEDS" | xargs -P "$JOBS" -I{} "$0" _seed {}
stage_done seeds

"$PY" tools/report_anchor.py --out "$OUT" --seeds "$SEEDS" --models "$MODELS" \
    $([ "$SMOKE" = 1 ] && echo --smoke) > "$OUT/logs/report.log"
echo "== total: $(( $(date +%s) - T0 )) s; report $OUT/report.md, figure $OUT/anchor.png" \
  | tee -a "$OUT/timings.txt" >&2
