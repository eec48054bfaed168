#!/usr/bin/env bash
# eval_generate.sh — train.eval_generate on the "reverse the word" task (tools/gen_pref_task.py,
# checker tools/score_reverse.py): eval_generate lines with eval/score_mean, score_max@n,
# the checker's boolean field as a rate and the greedy variants appear at every eval; the
# final greedy metric (to the 9 digits metrics.jsonl keeps) equals what `tinyalign sample
# --temperature 0` + `tinyalign score` give on the final checkpoint (an independent path
# through the CLI); the weights are
# byte-identical to a run without eval_generate; a stopped and resumed run is bit-exact
# (model and metrics, timing aside); prompts from the validation data (its fields reach
# the scorer) or a prompt file with a template; bad keys exit 2 with one message.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_eval_generate)

if PREF_TASK_DIR="$D/task" bash tools/prepare_pref_task.sh "${TA_BUILD:-build}" --sft 600 --val 40 \
     --prefs 50 --pref-val 20 >"$D/setup.log" 2>&1; then
  pass setup_task
else
  fail setup_task "$(tail -3 "$D/setup.log")"; exit 1
fi
T=$D/task
CHECK="cmd:$PY tools/score_reverse.py --partial"  # partial credit: scores that vary early on
cat > "$D/base.json" <<EOF
{"run": {"name": "eg", "out_dir": "$D/straight", "seed": 5, "threads": 1},
 "model": {"n_layer": 1, "n_head": 2, "d_model": 32, "max_seq_len": 32},
 "tokenizer": {"type": "sentencepiece", "model": "$T/spm.model"},
 "data": {"format": "sft", "train": "$T/sft.jsonl", "val": "$T/sft-val.jsonl", "max_len": 24,
          "max_prompt_len": 16},
 "objective": {"type": "sft"},
 "optim": {"lr": 1e-2, "warmup_steps": 5},
 "train": {"batch_size": 16, "max_steps": 30, "log_every": 10, "eval_every": 10, "eval_batches": 2,
           "save_every": 10,
           "eval_generate": {"scorer": "$CHECK", "n": 3, "temperature": 1.0, "greedy": true,
                             "max_new_tokens": 8, "max_prompts": 12,
                             "prompts": "$T/prompts-val.jsonl"}}}
EOF
train() { "$BIN" train "$D/base.json" --quiet "$@"; }
strip_timing() { sed -E 's/, "tok_per_s": [^,}]*//; s/, "elapsed_s": [^,}]*//' "$1"; }

# ---- a run with eval_generate -----------------------------------------------------------------
if train >"$D/straight.log" 2>&1; then pass run_with_eval_generate; else
  fail run_with_eval_generate "$(tail -3 "$D/straight.log")"; exit 1; fi
msg=$($PY - "$D/straight/metrics.jsonl" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
eg = [l for l in lines if l["kind"] == "eval_generate"]
assert [l["step"] for l in eg] == [10, 20, 30], [l["step"] for l in eg]
for l in eg:
    for k in ("eval/score_mean", "eval/score_max@3", "eval/correct", "eval/matches_answer",
              "eval/greedy/score_mean", "eval/greedy/correct"):
        assert 0 <= l[k] <= 1, (k, l)
    assert l["eval/score_max@3"] >= l["eval/score_mean"], l
    assert l["eval/correct"] <= l["eval/score_mean"] and l["eval/greedy/correct"] <= l["eval/greedy/score_mean"], l
assert eg[-1]["eval/score_mean"] > 0 and eg[-1]["eval/greedy/score_mean"] > 0, eg[-1]
print(eg[-1]["eval/greedy/score_mean"])
EOF
) && pass metrics_lines_and_keys || fail metrics_lines_and_keys "$msg"
grep -q "eval_generate step 30: 12 prompts x 3 at T=1 | score_mean" "$D/straight.log" \
  && pass progress_line || fail progress_line "$(grep eval_generate "$D/straight.log" | head -2)"

# ---- the greedy metric equals sample + score on the final checkpoint ------------------------
head -n 12 "$T/prompts-val.jsonl" > "$D/p12.jsonl"
if "$BIN" sample --model "$D/straight" --prompts "$D/p12.jsonl" --temperature 0 --max-new-tokens 8 \
     --quiet --out "$D/greedy.jsonl" \
   && "$BIN" score --in "$D/greedy.jsonl" --scorer "$CHECK" --out "$D/greedy.scored.jsonl" --quiet; then
  msg=$($PY - "$D/greedy.scored.jsonl" "$D/straight/metrics.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mean = sum(r["responses"][0]["score"] for r in rows) / len(rows)
eg = [json.loads(l) for l in open(sys.argv[2]) if '"eval_generate"' in l][-1]
assert abs(mean - eg["eval/greedy/score_mean"]) <= 1e-8 * max(1, abs(mean)), (mean, eg["eval/greedy/score_mean"])  # %.9g in metrics.jsonl
print(mean)
EOF
) && pass greedy_metric_equals_sample_and_score || fail greedy_metric_equals_sample_and_score "$msg"
else
  fail greedy_metric_equals_sample_and_score "sample or score failed"
fi

# ---- eval_generate does not change the training ----------------------------------------------
train --set run.out_dir="$D/plain" --set train.eval_generate.scorer= >/dev/null 2>&1 \
  && cmp -s "$D/plain/checkpoints/step-00000030/model.safetensors" "$D/straight/checkpoints/step-00000030/model.safetensors" \
  && pass weights_unchanged_by_eval_generate || fail weights_unchanged_by_eval_generate "differs"

# ---- stop and resume: bit-exact -------------------------------------------------------------
train --set run.out_dir="$D/resumed" --stop-after 20 >/dev/null 2>&1 \
  && "$BIN" resume "$D/resumed" >/dev/null 2>&1 \
  && cmp -s "$D/resumed/checkpoints/step-00000030/model.safetensors" "$D/straight/checkpoints/step-00000030/model.safetensors" \
  && diff <(strip_timing "$D/straight/metrics.jsonl") <(strip_timing "$D/resumed/metrics.jsonl") >"$D/resume.diff" \
  && pass resume_bitexact_with_eval_generate || fail resume_bitexact_with_eval_generate "$(head -4 "$D/resume.diff")"

# ---- default prompts (the validation data, its "completion" a field) and a template ---------
cat > "$D/judge.sh" <<'EOF'
#!/bin/sh
# counts requests whose prompt is the row's original and that carry the "completion" field
exec /usr/bin/python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    ok = "completion" in r and r["prompt"].startswith("reverse:")
    print(json.dumps({"score": 1 if ok else 0, "fields_ok": ok}))'
EOF
chmod +x "$D/judge.sh"
train --set run.out_dir="$D/valp" --set train.eval_generate.prompts= --set train.max_steps=10 \
  --set "train.eval_generate.scorer=cmd:$D/judge.sh" --set train.eval_generate.n=0 \
  --set "train.eval_generate.template=Q {prompt}" >"$D/valp.log" 2>&1 \
  && grep '"eval_generate"' "$D/valp/metrics.jsonl" | grep -q '"eval/greedy/fields_ok": 1' \
  && pass default_prompts_are_val_rows_template || fail default_prompts_are_val_rows_template "$(tail -2 "$D/valp.log"; grep eval_generate "$D/valp/metrics.jsonl")"
# val_fraction: the held-out tail of data.train
train --set run.out_dir="$D/frac" --set data.val= --set data.val_fraction=0.05 --set train.max_steps=10 \
  --set train.eval_generate.prompts= --set "train.eval_generate.scorer=cmd:$D/judge.sh" \
  --set train.eval_generate.max_prompts=0 >"$D/frac.log" 2>&1 \
  && grep -q "eval_generate step 10: 30 prompts x 3" "$D/frac.log" \
  && pass val_fraction_tail_prompts || fail val_fraction_tail_prompts "$(grep -E "eval_generate|error" "$D/frac.log" | tail -2)"

# ---- bad keys: exit 2, one message ----------------------------------------------------------
bad() { train --set run.out_dir="$D/bad" "$@"; }
expect_err bad_spec "train.eval_generate.scorer" "unknown kind \"cmdx\"" -- bad --set "train.eval_generate.scorer=cmdx:y"
expect_err needs_eval_every "train.eval_every" -- bad --set train.eval_every=0
expect_err nothing_to_sample "nothing to sample" -- bad --set train.eval_generate.n=0 --set train.eval_generate.greedy=false
expect_err template_missing_field "$T/prompts-val.jsonl:1" "template field \"label\"" -- \
  bad --set "train.eval_generate.template={prompt} {label}"
expect_err missing_prompts_file "$D/none.jsonl" -- bad --set "train.eval_generate.prompts=$D/none.jsonl"
expect_err logprob_bad_model "train.eval_generate.scorer" "logprob:$D/none" -- \
  bad --set "train.eval_generate.scorer=logprob:$D/none"
[ ! -e "$D/bad" ] && pass no_run_dir_after_bad_config || fail no_run_dir_after_bad_config "created"

[ $FAILS -eq 0 ]
