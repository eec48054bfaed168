#!/usr/bin/env bash
# rest_prs.sh — the ReST-style offline RL loop of PRS (Ye & Ng 2024, arXiv 2408.12163;
# "grow, then improve", Gulcehre et al. 2023, arXiv 2308.08998):
#
#   for k = 1..K:  generate N responses per prompt with `tinyalign prs` (--mode prs or rand)
#                  from the current policy -> keep the top response(s) per prompt
#                  (`tinyalign curate best`) -> SFT on (query, best response) from the
#                  start model or continuing from the current policy
#
#   tools/rest_prs.sh --model START --prompts P.jsonl --scorer SPEC --config SFT.json
#                      --out DIR [options] [-- PRS_ARGS...]
#
#   --iters K          iterations (default 3)
#   --mode prs|rand    the generator (default prs); everything after -- goes to `tinyalign
#                      prs` (templates, --n0, --feedback, sampling flags...)
#   --n N              responses per prompt (default 8): the same budget for both modes
#   --top K            responses kept per prompt (default 1)
#   --from continue|start   fine-tune the current policy (default) or the start model
#   --epochs E         SFT epochs over the kept responses (default 1)
#   --batch B          SFT batch size (default 32)
#   --test T.jsonl     held-out prompts: greedy responses scored after every iteration
#                      (and for the start model: iteration 0)
#   --query-template X the query template for the greedy test (default "{prompt}\n\n{preference}")
#   --eval-max-new-tokens M   greedy test response length (default 64)
#   --eval-samples M   also M responses per test prompt sampled with the paper's sampling
#                      (temperature 0.8, top-k 50, presence penalty 1.2, seed S: the same
#                      stream for every iteration and both modes), scored: the policy's
#                      typical response, not only its mode (default 0 = off)
#   --eval-min-new-tokens M   no EOS before M tokens in the test responses (default 0; 1 for
#                      a policy that can answer with nothing)
#   --seed S           generation seed of iteration k: S + k; SFT run seed S (default 1)
#   --set KEY=VALUE    a config override for every SFT run (repeatable)
#   --threads T        threads of the greedy test's sample (default 0 = all cores; PRS's
#                      and SFT's threads come from PRS_ARGS and the config)
#   --build DIR        where tinyalign is (default build)
#
# The SFT config must train "sft" from model.init "checkpoint" (the driver sets model.path,
# data.train, run.out_dir, train.max_steps, train.batch_size, run.seed).
# Stages of iteration k, each skipped when its output exists (every output is written under
# a temporary name and renamed; an interrupted stage is redone from scratch):
#   DIR/iterK/gen.jsonl (+ gen.summary.json)   prs
#   DIR/iterK/sft.jsonl                        curate best --prompt-field filled_prompt
#                                              (responses whose text is empty are left out,
#                                              as in the study of docs/repro_prs.md, run
#                                              when the readers still refused them; a prompt
#                                              with only empty ones gets no row; "kept"
#                                              counts the rows)
#   DIR/iterK/run/ + DONE                      train (log DIR/iterK/train.log)
#   DIR/iterK/eval.json                        sample --temperature 0 + score on --test
#   DIR/iterK/eval_sampled.json                with --eval-samples: sample T 0.8 + score
#                                              (an empty test response is scored as " ", as
#                                              in the study's runs)
# One metrics line per iteration: DIR/metrics.jsonl (rebuilt from the eval*.json files):
#   {"iter", "mode", "n", "gen_mean_best", "gen_mean_score", "gen_best_rates", "kept",
#    "test_score", "test_rates", ["sampled_score", "sampled_rates",] "seconds"}
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL= PROMPTS= SCORER= CONFIG= OUT= TEST= ITERS=3 MODE=prs N=8 TOP=1 FROM=continue EPOCHS=1
BATCH=32 SEED=1 BUILD=build EVAL_MAX_NEW=64 EVAL_SAMPLES=0 EVAL_MIN_NEW=0 THREADS=0 QT=$'{prompt}\n\n{preference}'
SETS=() PRS_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --model) MODEL=$2; shift 2 ;;          --prompts) PROMPTS=$2; shift 2 ;;
    --scorer) SCORER=$2; shift 2 ;;        --config) CONFIG=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;              --test) TEST=$2; shift 2 ;;
    --iters) ITERS=$2; shift 2 ;;          --mode) MODE=$2; shift 2 ;;
    --n) N=$2; shift 2 ;;                  --top) TOP=$2; shift 2 ;;
    --from) FROM=$2; shift 2 ;;            --epochs) EPOCHS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;          --seed) SEED=$2; shift 2 ;;
    --set) SETS+=(--set "$2"); shift 2 ;;  --build) BUILD=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --query-template) QT=$2; shift 2 ;;    --eval-max-new-tokens) EVAL_MAX_NEW=$2; shift 2 ;;
    --eval-samples) EVAL_SAMPLES=$2; shift 2 ;;
    --eval-min-new-tokens) EVAL_MIN_NEW=$2; shift 2 ;;
    --) shift; PRS_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "rest_prs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in MODEL PROMPTS SCORER CONFIG OUT; do
  [ -n "${!v}" ] || { echo "rest_prs.sh: --${v,,} is required (see --help)" >&2; exit 2; }
done
case $MODE in prs|rand) ;; *) echo "rest_prs.sh: --mode must be prs or rand, got $MODE" >&2; exit 2 ;; esac
case $EVAL_SAMPLES in ''|*[!0-9]*) echo "rest_prs.sh: --eval-samples must be a count >= 0, got $EVAL_SAMPLES" >&2; exit 2 ;; esac
case $FROM in continue|start) ;; *) echo "rest_prs.sh: --from must be continue or start" >&2; exit 2 ;; esac
BIN=$BUILD/tinyalign
PY=${PYTHON:-/usr/bin/python3}
mkdir -p "$OUT"

# evaluate POLICY DIR: the test prompts' responses, scored -> DIR/eval.json (greedy, the
# responses in DIR/test.scored.jsonl) and, with --eval-samples M, DIR/eval_sampled.json (M
# samples per prompt with the paper's sampling, in DIR/sampled.scored.jsonl)
evaluate() {
  local policy=$1 d=$2
  [ -n "$TEST" ] || return 0
  [ -s "$d/eval.json" ] || score_test "$policy" "$d" test --temperature 0 --n 1
  [ "$EVAL_SAMPLES" = 0 ] || [ -s "$d/eval_sampled.json" ] ||
    score_test "$policy" "$d" sampled --temperature 0.8 --top-k 50 --presence-penalty 1.2 \
        --seed "$SEED" --n "$EVAL_SAMPLES"
}

# score_test POLICY DIR KEY SAMPLE_FLAGS... -> DIR/eval.json (KEY test) or eval_KEY.json:
# {"KEY_score": the mean score over every response, "KEY_rates": {boolean field: fraction}}
score_test() {
  local policy=$1 d=$2 key=$3 out=$2/eval_$3.json
  shift 3
  [ "$key" = test ] && out=$d/eval.json
  "$BIN" sample --model "$policy" --prompts "$TEST" --template "$QT" "$@" \
      --max-new-tokens "$EVAL_MAX_NEW" --min-new-tokens "$EVAL_MIN_NEW" --threads "$THREADS" --quiet --out "$d/$key.tmp.jsonl"
  "$PY" - "$d/$key.tmp.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    for y in r["responses"]:
        y["text"] = y["text"] or " "
with open(sys.argv[1], "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
EOF
  "$BIN" score --in "$d/$key.tmp.jsonl" --out "$d/$key.scored.jsonl" --scorer "$SCORER" 2>/dev/null
  rm -f "$d/$key.tmp.jsonl"
  "$PY" - "$d/$key.scored.jsonl" "$key" > "$out.tmp" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rs = [y for r in rows for y in r["responses"]]
rates = {}
for k, v in rs[0].items():
    if isinstance(v, bool):
        rates[k] = sum(bool(x.get(k)) for x in rs) / len(rs)
key = sys.argv[2]
print(json.dumps({f"{key}_score": sum(x["score"] for x in rs) / len(rs), f"{key}_rates": rates}))
EOF
  mv "$out.tmp" "$out"
}

# metrics.jsonl from every iteration's files
metrics() {
  "$PY" - "$OUT" "$ITERS" "$MODE" "$N" > "$OUT/metrics.jsonl.tmp" <<'EOF'
import json, os, sys
out, K, mode, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
for k in range(K + 1):
    d = os.path.join(out, f"iter{k}")
    if not os.path.exists(os.path.join(d, "eval.json")) and k > 0 and not os.path.exists(os.path.join(d, "run", "DONE")):
        break
    m = {"iter": k, "mode": mode, "n": n}
    s = os.path.join(d, "gen.summary.json")
    if os.path.exists(s):
        S = json.load(open(s))
        m.update(gen_mean_best=S["mean_best"], gen_mean_score=S["mean_score"], gen_best_rates=S["best_rates"])
    if os.path.exists(os.path.join(d, "sft.jsonl")):
        m["kept"] = sum(1 for _ in open(os.path.join(d, "sft.jsonl")))
    for e in ("eval.json", "eval_sampled.json"):
        if os.path.exists(os.path.join(d, e)):
            m.update(json.load(open(os.path.join(d, e))))
    if os.path.exists(os.path.join(d, "seconds")):
        m["seconds"] = float(open(os.path.join(d, "seconds")).read())
    print(json.dumps(m))
EOF
  mv "$OUT/metrics.jsonl.tmp" "$OUT/metrics.jsonl"
}

mkdir -p "$OUT/iter0"
evaluate "$MODEL" "$OUT/iter0"
policy=$MODEL
for k in $(seq 1 "$ITERS"); do
  d=$OUT/iter$k
  mkdir -p "$d"
  t0=$(date +%s.%N)
  if [ ! -s "$d/gen.jsonl" ]; then
    echo "rest_prs: iteration $k: generate ($MODE, N=$N) with $policy" >&2
    "$BIN" prs --model "$policy" --prompts "$PROMPTS" --scorer "$SCORER" --mode "$MODE" --n "$N" \
        --seed $((SEED + k)) --out "$d/gen.tmp.jsonl" --summary "$d/gen.summary.json" --quiet \
        ${PRS_ARGS[@]+"${PRS_ARGS[@]}"}
    mv "$d/gen.tmp.jsonl" "$d/gen.jsonl"
  fi
  if [ ! -s "$d/sft.jsonl" ]; then
    "$PY" - "$d/gen.jsonl" "$d/gen.nonempty.tmp.jsonl" <<'EOF'
import json, sys
with open(sys.argv[2], "w") as f:
    for l in open(sys.argv[1]):
        r = json.loads(l)
        r["responses"] = [y for y in r["responses"] if y["text"]]
        if r["responses"]:
            f.write(json.dumps(r) + "\n")
EOF
    "$BIN" curate best --in "$d/gen.nonempty.tmp.jsonl" --out "$d/sft.tmp.jsonl" --top "$TOP" \
        --prompt-field filled_prompt 2>/dev/null
    rm -f "$d/gen.nonempty.tmp.jsonl"
    mv "$d/sft.tmp.jsonl" "$d/sft.jsonl"
  fi
  if [ ! -f "$d/run/DONE" ]; then
    rm -rf "$d/run"
    rows=$(wc -l < "$d/sft.jsonl")
    steps=$(( (rows * EPOCHS + BATCH - 1) / BATCH ))
    base=$policy
    [ "$FROM" = start ] && base=$MODEL
    echo "rest_prs: iteration $k: SFT on $rows responses, $steps steps from $base" >&2
    "$BIN" train "$CONFIG" --quiet --set model.path="$base" --set data.train="$d/sft.jsonl" \
        --set run.out_dir="$d/run" --set train.max_steps="$steps" --set train.batch_size="$BATCH" \
        --set run.seed="$SEED" ${SETS[@]+"${SETS[@]}"} > "$d/train.log" 2>&1 \
      || { echo "rest_prs.sh: iteration $k: SFT failed (log $d/train.log):" >&2; tail -3 "$d/train.log" >&2; exit 1; }
    touch "$d/run/DONE"
    echo "$(date +%s.%N) $t0" | awk '{printf "%.1f\n", $1 - $2}' > "$d/seconds"
  fi
  policy=$d/run
  evaluate "$policy" "$d"
  metrics
  tail -n 1 "$OUT/metrics.jsonl" >&2
done
metrics
