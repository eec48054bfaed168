#!/usr/bin/env bash
# nado.sh — end-to-end tests of attribute control with a NADO guide on a small copy of the
# banned-word task (tools/gen_banned_task.py; every run uses one thread):
#   objective nado trains on samples labelled by the banned: oracle (`tinyalign score`):
#   metrics bce / consistency / accuracy with loss = bce + alpha consistency; the trained
#   guide tells held-out sentences with a banned word from clean ones (eval accuracy on a
#   balanced labelled file); stop + resume bit-exact, the base's CRC in the state;
#   labels that are not 0/1 (a cmd: oracle answering 0.5), missing labels: exit 2 naming
#   FILE:LINE; all-equal labels: a warning;
#   sample --guide: greedy ids and text byte-identical to PyTorch's argmax of
#   log_softmax(p) + logsigmoid(r) (tools/ref_generate.py --guide); a guide of another
#   vocabulary or context: exit 2 naming --guide;
#   objective.attribute with q_base base: runs, kl reported;
#   tools/nado_rounds.sh smoke (sequential and parallel, 2 rounds): outputs, wall-clock,
#   a second invocation skips every stage, a removed NADO is redone with what used it.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_nado)
T=$D/task

"$PY" tools/gen_banned_task.py --out "$T" --train 1500 --sample-prompts 60 --heldout-prompts 12 \
    --heldout 40 --judge-heldout 8 > "$D/setup.log" 2>&1 &&
  "$BIN" tokenizer train --input "$T/tok_corpus.txt" --vocab-size 300 --byte-fallback 0 \
    --character-coverage 1.0 --out "$T/spm" >> "$D/setup.log" 2>&1 || {
  fail "setup_task" "$(tail -3 "$D/setup.log")"; exit 1; }
cat > "$D/base.json" <<EOF2
{"run": {"name": "base", "out_dir": "$D/base", "seed": 3, "threads": 1},
 "model": {"n_layer": 2, "n_head": 2, "d_model": 32, "max_seq_len": 40},
 "tokenizer": {"model": "$T/spm.model"},
 "data": {"format": "sft", "train": "$T/corpus.jsonl", "max_len": 40, "max_prompt_len": 24},
 "objective": {"type": "sft"},
 "optim": {"lr": 5e-3, "warmup_steps": 10},
 "train": {"batch_size": 16, "max_steps": 150, "log_every": 50, "eval_every": 0, "save_every": 0}}
EOF2
if "$BIN" train "$D/base.json" --quiet >> "$D/setup.log" 2>&1 &&
   "$BIN" sample --model "$D/base" --prompts "$T/sample_prompts.jsonl" --n 4 --min-new-tokens 1 \
     --max-new-tokens 24 --seed 1 --threads 1 --quiet --out "$D/samples.jsonl" >> "$D/setup.log" 2>&1 &&
   "$BIN" score --in "$D/samples.jsonl" --scorer "banned:$T/banned.txt" --out "$D/labels.jsonl" \
     --quiet >> "$D/setup.log" 2>&1; then
  pass "setup_base_samples_labels"
else
  fail "setup_base_samples_labels" "$(tail -3 "$D/setup.log")"; exit 1
fi
# a balanced labelled file of held-out sentences: clean ones labelled 1, banned ones 0; and
# the first corpus sentences as one-response rows (the tiny base model rarely writes a
# banned word, so its samples hold too few negatives to learn from), labelled by the oracle
"$PY" - "$T" "$D/heldout_labelled.jsonl" "$D/corpus_multi.jsonl" <<'EOF'
import json, sys
t, out, multi = sys.argv[1], sys.argv[2], sys.argv[3]
with open(out, "w") as f:
    for name, score in (("heldout_clean.jsonl", 1), ("heldout_banned.jsonl", 0)):
        for line in open(f"{t}/{name}"):
            r = json.loads(line)
            f.write(json.dumps({"prompt": r["prompt"],
                                "responses": [{"text": r["completion"], "score": score}]}) + "\n")
with open(multi, "w") as f:
    for line in list(open(f"{t}/corpus.jsonl"))[:1000]:
        r = json.loads(line)
        if not r["prompt"].startswith("check:"):
            f.write(json.dumps({"prompt": r["prompt"], "responses": [{"text": r["completion"]}]}) + "\n")
EOF
"$BIN" score --in "$D/corpus_multi.jsonl" --scorer "banned:$T/banned.txt" --out "$D/corpus_labels.jsonl" \
    --quiet >> "$D/setup.log" 2>&1 || fail "setup_corpus_labels" "$(tail -2 "$D/setup.log")"

cat > "$D/nado.json" <<EOF2
{"run": {"name": "nado", "out_dir": "$D/nado", "seed": 5, "threads": 1},
 "model": {"init": "checkpoint", "path": "$D/base"},
 "data": {"format": "multi", "train": "$D/corpus_labels.jsonl", "max_len": 40, "max_prompt_len": 24},
 "objective": {"type": "nado", "nado": {"alpha_reg": 0.7}},
 "optim": {"lr": 3e-3, "warmup_steps": 5},
 "train": {"batch_size": 16, "max_steps": 300, "log_every": 1, "eval_every": 0, "save_every": 0}}
EOF2
nado() { "$BIN" train "$D/nado.json" --quiet "$@"; }
if nado > "$D/nado.log" 2>&1; then
  why=$("$PY" - "$D/nado/metrics.jsonl" <<'EOF'
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if r.get("kind") == "train"]
for r in rows:
    for k in ("bce", "consistency", "accuracy"):
        if k not in r: sys.exit(f"step {r['step']}: no {k}")
    if abs(r["loss"] - (r["bce"] + 0.7 * r["consistency"])) > 1e-5 * max(1, abs(r["loss"])):
        sys.exit(f"step {r['step']}: loss {r['loss']} != bce + 0.7 consistency")
    if "nll_loss" in r or "kl" in r: sys.exit("nado reports nll_loss / kl")
EOF
  )
  [ -z "$why" ] && pass "nado_metrics_loss_is_bce_plus_alpha_consistency" || fail "nado_metrics_loss_is_bce_plus_alpha_consistency" "$why"
  grep -q "satisfy the constraint" "$D/nado.log" && pass "nado_label_summary" \
    || fail "nado_label_summary" "no label summary line: $(head -3 "$D/nado.log")"
else
  fail "nado_run" "$(tail -3 "$D/nado.log")"
fi
# the guide separates held-out banned sentences from clean ones (balanced: chance is 0.5)
cat > "$D/nado_eval.json" <<EOF2
{"run": {"name": "nado-eval", "out_dir": "$D/nado_eval", "threads": 1},
 "model": {"init": "checkpoint", "path": "$D/base"},
 "data": {"format": "multi", "train": "$D/heldout_labelled.jsonl", "max_len": 40, "max_prompt_len": 24},
 "objective": {"type": "nado"},
 "train": {"batch_size": 16, "eval_batches": 100}}
EOF2
acc=$("$BIN" eval "$D/nado_eval.json" --checkpoint "$D/nado" 2>/dev/null | "$PY" -c "import json,sys; print(json.load(sys.stdin)['accuracy'])")
acc0=$("$BIN" eval "$D/nado_eval.json" 2>/dev/null | "$PY" -c "import json,sys; print(json.load(sys.stdin)['accuracy'])")
if "$PY" -c "import sys; sys.exit(0 if float('$acc') >= 0.75 else 1)" 2>/dev/null; then
  pass "nado_guide_detects_banned_heldout (accuracy $acc, untrained $acc0)"
else
  fail "nado_guide_detects_banned_heldout" "accuracy $acc (untrained $acc0), want >= 0.75"
fi
# stop + resume == straight; the base's identity is in the state
nado --set run.out_dir="$D/nado_r" --set train.max_steps=6 --stop-after 3 >/dev/null 2>&1
nado --set run.out_dir="$D/nado_r" --set train.max_steps=6 --resume >/dev/null 2>&1
nado --set run.out_dir="$D/nado_s" --set train.max_steps=6 >/dev/null 2>&1
if cmp -s "$D/nado_r/checkpoints/step-00000006/model.safetensors" "$D/nado_s/checkpoints/step-00000006/model.safetensors" &&
   grep -q '"base"' "$D/nado_r/checkpoints/step-00000006/state.json"; then
  pass "nado_resume_bitexact"; else fail "nado_resume_bitexact" "resumed weights differ (or no base CRC in state.json)"; fi

# bad labels: a cmd: oracle that answers 0.5, missing scores, every label equal
printf '#!/bin/sh\nwhile read -r l; do echo '"'"'{"score": 0.5}'"'"'; done\n' > "$D/half.sh"
chmod +x "$D/half.sh"
"$BIN" score --in "$D/samples.jsonl" --scorer "cmd:$D/half.sh" --out "$D/half.jsonl" --quiet >/dev/null 2>&1
expect_err "bad/nado_label_not_0_or_1" "$D/half.jsonl:1: responses[0].score is 0.5" "labels 0 or 1" -- \
  nado --set run.out_dir="$D/bad" --set data.train="$D/half.jsonl"
expect_err "bad/nado_label_missing" "$D/samples.jsonl:1: responses[0] has no \"score\"" -- \
  nado --set run.out_dir="$D/bad" --set data.train="$D/samples.jsonl"
"$PY" - "$D/labels.jsonl" "$D/ones.jsonl" <<'EOF'
import json, sys
with open(sys.argv[2], "w") as f:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        for x in r["responses"]: x["score"] = 1
        f.write(json.dumps(r) + "\n")
EOF
if nado --set run.out_dir="$D/ones" --set data.train="$D/ones.jsonl" --set train.max_steps=2 2>&1 >/dev/null \
     | grep -q "every label is 1: the NADO head learns nothing"; then
  pass "nado_all_equal_labels_warn"; else fail "nado_all_equal_labels_warn" "no warning"; fi

# ---- guided decoding -------------------------------------------------------------------------
BASE_CK="$D/base/checkpoints/$(cat "$D/base/checkpoints/latest")"
NADO_CK="$D/nado/checkpoints/$(cat "$D/nado/checkpoints/latest")"
"$BIN" sample --model "$D/base" --guide "$D/nado" --prompts "$T/heldout_prompts.jsonl" --temperature 0 \
    --max-new-tokens 16 --ids --threads 1 --quiet --out "$D/guided.jsonl" 2>"$D/guided.err"
"$PY" tools/ref_generate.py --model "$BASE_CK" --guide "$NADO_CK" --tokenizer "$BASE_CK/tokenizer.model" \
    --prompts "$T/heldout_prompts.jsonl" --max-new-tokens 16 --out "$D/guided_ref.jsonl" > "$D/guided_ref.log" 2>&1
if why=$("$PY" - "$D/guided.jsonl" "$D/guided_ref.jsonl" 2>&1 <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
if len(a) != len(b) or not a: sys.exit(f"{len(a)} lines vs {len(b)}")
for i, (x, y) in enumerate(zip(a, b)):
    r, s = x["responses"][0], y["responses"][0]
    for k in ("ids", "text", "finish_reason"):
        if r[k] != s[k]: sys.exit(f"line {i + 1}: {k} {r[k]!r} vs PyTorch {s[k]!r}")
EOF
); then
  pass "guided_greedy_equals_pytorch ($(tail -1 "$D/guided_ref.log"))"
else
  fail "guided_greedy_equals_pytorch" "$why $(tail -2 "$D/guided.err" "$D/guided_ref.log")"
fi
# the guide changes what is generated (else the comparison above proves little)
"$BIN" sample --model "$D/base" --prompts "$T/heldout_prompts.jsonl" --temperature 0 \
    --max-new-tokens 16 --ids --threads 1 --quiet --out "$D/plain.jsonl" 2>/dev/null
cmp -s "$D/guided.jsonl" "$D/plain.jsonl" && fail "guided_differs_from_plain" "same output with and without --guide" \
  || pass "guided_differs_from_plain"
# guides of another vocabulary / context
"$PY" tools/hf_gpt2.py create --out "$D/g_v40" --n-layer 1 --n-head 2 --n-embd 16 --n-positions 40 --vocab-size 40 >/dev/null
"$PY" tools/hf_gpt2.py create --out "$D/g_t32" --n-layer 1 --n-head 2 --n-embd 16 --n-positions 32 --vocab-size 300 >/dev/null
"$BIN" convert --from hf --in "$D/g_v40" --out "$D/g_v40c" >/dev/null 2>&1
"$BIN" convert --from hf --in "$D/g_t32" --out "$D/g_t32c" >/dev/null 2>&1
expect_err "bad/guide_other_vocab" "--guide $D/g_v40c" "vocab_size 40" "must be equal" -- \
  "$BIN" sample --model "$D/base" --guide "$D/g_v40c" --prompt "anna saw" --quiet
expect_err "bad/guide_other_context" "--guide $D/g_t32c" "max_seq_len 32" -- \
  "$BIN" sample --model "$D/base" --guide "$D/g_t32c" --prompt "anna saw" --quiet
expect_err "bad/guide_missing" "--guide $D/nope" -- \
  "$BIN" sample --model "$D/base" --guide "$D/nope" --prompt "anna saw" --quiet

# ---- the attribute KL with q_base base --------------------------------------------------------
cat > "$D/ft.json" <<EOF2
{"run": {"name": "ft", "out_dir": "$D/ft", "seed": 7, "threads": 1},
 "model": {"init": "checkpoint", "path": "$D/base"},
 "data": {"format": "sft", "train": "$T/corpus.jsonl", "max_len": 40, "max_prompt_len": 24},
 "objective": {"type": "sft", "attribute": {"guide": "$D/nado", "lambda": 1.0, "q_base": "base"}},
 "optim": {"lr": 1e-3, "warmup_steps": 2},
 "train": {"batch_size": 16, "max_steps": 4, "log_every": 1, "eval_every": 0, "save_every": 0}}
EOF2
if "$BIN" train "$D/ft.json" --quiet > "$D/ft.log" 2>&1 && grep -q '"kl"' "$D/ft/metrics.jsonl" &&
   grep -q '"base"' "$D/ft/checkpoints/step-00000004/state.json"; then
  pass "attribute_q_base_base_runs"; else fail "attribute_q_base_base_runs" "$(tail -2 "$D/ft.log")"; fi
expect_err "bad/attribute_base_other_vocab" "objective.attribute.base" "vocab_size 40" -- \
  "$BIN" train "$D/ft.json" --quiet --set run.out_dir="$D/bad2" --set objective.attribute.base="$D/g_v40c"

# ---- the rounds driver ---------------------------------------------------------------------------
head -20 "$T/sample_prompts.jsonl" > "$D/p20.jsonl"
for sch in sequential parallel; do
  R=$D/rounds_$sch
  if tools/nado_rounds.sh --base "$D/base" --corpus "$T/corpus.jsonl" --prompts "$D/p20.jsonl" \
       --oracle "banned:$T/banned.txt" --out "$R" --rounds 2 --schedule "$sch" --n 2 --smoke \
       --build "$(dirname "$BIN")" > "$D/rounds_$sch.log" 2>&1 &&
     [ -f "$R/round2/model/DONE" ] && [ -f "$R/round1/nado/DONE" ] && grep -q "^total: .* ($sch)" "$R/wallclock.txt"; then
    pass "rounds_${sch}_smoke"
  else
    fail "rounds_${sch}_smoke" "$(tail -3 "$D/rounds_$sch.log")"
  fi
done
R=$D/rounds_sequential
[ -f "$R/round2/nado/DONE" ] && pass "rounds_sequential_trains_nado_each_round" \
  || fail "rounds_sequential_trains_nado_each_round" "no round-2 NADO"
# parallel: round 2 is fine-tuned with NADO_1 (one round of lag) and, the last round, trains
# no NADO
if grep -q "rounds_parallel/round1/nado" "$D/rounds_parallel/round2/model/config.json" 2>/dev/null &&
   [ ! -d "$D/rounds_parallel/round2/nado" ]; then
  pass "rounds_parallel_one_round_lag"; else fail "rounds_parallel_one_round_lag" "round 2 not guided by NADO_1"; fi
# resumable: everything exists -> nothing is redone; a removed NADO is redone with its user
m1=$(md5sum < "$R/round2/model/checkpoints/step-00000006/model.safetensors")
cp "$R/timings.tsv" "$D/timings_before.tsv"
tools/nado_rounds.sh --base "$D/base" --corpus "$T/corpus.jsonl" --prompts "$D/p20.jsonl" \
    --oracle "banned:$T/banned.txt" --out "$R" --rounds 2 --n 2 --smoke --build "$(dirname "$BIN")" > "$D/resume.log" 2>&1
[ "$(md5sum < "$R/round2/model/checkpoints/step-00000006/model.safetensors")" = "$m1" ] &&
  cmp -s "$R/timings.tsv" "$D/timings_before.tsv" \
  && pass "rounds_resume_skips_done_stages" || fail "rounds_resume_skips_done_stages" "$(tail -2 "$D/resume.log")"
touch -d '2000-01-01' "$R/round2/model/DONE"
rm -rf "$R/round2/nado"
tools/nado_rounds.sh --base "$D/base" --corpus "$T/corpus.jsonl" --prompts "$D/p20.jsonl" \
    --oracle "banned:$T/banned.txt" --out "$R" --rounds 2 --n 2 --smoke --build "$(dirname "$BIN")" > "$D/resume2.log" 2>&1
[ -f "$R/round2/nado/DONE" ] && [ "$R/round2/model/DONE" -nt "$R/round2/nado/DONE" ] \
  && pass "rounds_redone_nado_redoes_its_model" || fail "rounds_redone_nado_redoes_its_model" "$(tail -2 "$D/resume2.log")"
expect_err "bad/rounds_missing_oracle" "--oracle is required" -- \
  tools/nado_rounds.sh --base "$D/base" --corpus "$T/corpus.jsonl" --prompts "$D/p20.jsonl" --out "$D/r0"
exit $((FAILS > 0))
