#!/usr/bin/env bash
# model_paths.sh — every command that takes a model accepts every form of a model path
# (checkpoint_resolve): a run directory, RUN/checkpoints, RUN/checkpoints/latest,
# RUN/checkpoints/best, a step directory and a plain model directory (a `convert --from
# hf` output). Each command's output for each form is compared with its output for the
# step directory the form stands for (bytes, or the final weights of a 1-step run):
#   sample --model, eval --checkpoint, convert --to hf --in, curate deviation --source
#   model:, curate divpo --model, train with model.path, train with
#   objective.reference.path, resume (the forms of a stopped run; a model directory is
#   refused: it holds no training state).
# A directory that is none of these is refused by each command with exit 2 and one
# message listing the accepted forms. Small task (tools/gen_pref_task.py), one thread.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_model_paths)
T="$D/task"
"$PY" tools/gen_pref_task.py --out "$T" --sft 256 --val 16 --prefs 32 --pref-val 16 >/dev/null
"$BIN" tokenizer train --input "$T/tok_corpus.txt" --vocab-size 32 --byte-fallback 0 \
    --character-coverage 1.0 --out "$T/spm" >/dev/null 2>&1
cat > "$D/sft.json" <<EOF2
{"run": {"name": "mp", "out_dir": "$D/run", "seed": 3, "threads": 1},
 "model": {"n_layer": 1, "n_head": 2, "d_model": 16, "max_seq_len": 24},
 "tokenizer": {"model": "$T/spm.model"},
 "data": {"format": "sft", "train": "$T/sft.jsonl", "val": "$T/sft-val.jsonl", "max_len": 24, "max_prompt_len": 16},
 "objective": {"type": "sft"},
 "train": {"batch_size": 8, "max_steps": 4, "log_every": 2, "eval_every": 2, "eval_batches": 1,
           "save_every": 2, "keep_best": true}}
EOF2
"$PY" - "$T" <<'EOF'
import json, sys
t = sys.argv[1]
with open(f"{t}/multi.jsonl", "w") as f:
    for l in list(open(f"{t}/prefs.jsonl"))[:6]:
        x = json.loads(l)
        f.write(json.dumps({"prompt": x["prompt"], "responses": [
            {"text": x["chosen"], "score": 1}, {"text": x["rejected"], "score": 0},
            {"text": x["chosen"] + " a", "score": 1}, {"text": x["rejected"] + " b", "score": 0}]}) + "\n")
EOF
R="$D/run"
if "$BIN" train "$D/sft.json" --quiet >"$D/setup.log" 2>&1 && [ -s "$R/checkpoints/best" ] &&
   "$BIN" convert --from hf --in "$R/checkpoints/step-00000004" --out "$D/plain" >>"$D/setup.log" 2>&1 &&
   cp "$T/spm.model" "$D/plain/tokenizer.model"; then
  pass "setup_run_and_model_directory"
else
  fail "setup_run_and_model_directory" "$(tail -3 "$D/setup.log")"; exit 1
fi
S="$R/checkpoints/$(cat "$R/checkpoints/latest")"
FORMS=("$R" "$R/checkpoints" "$R/checkpoints/latest" "$R/checkpoints/best" "$S" "$D/plain")
NAMES=(run checkpoints latest best step model_dir)

# each CMD_... FORM OUT: run one command with the model FORM, its comparable output in OUT
cmd_sample() { "$BIN" sample --model "$1" --prompt "reverse: a b c =" --max-new-tokens 4 --temperature 0 --quiet >"$2"; }
cmd_eval() { "$BIN" eval "$D/sft.json" --checkpoint "$1" >"$2" 2>/dev/null; }
cmd_convert() { rm -rf "$2.d"; "$BIN" convert --to hf --in "$1" --out "$2.d" >/dev/null && cp "$2.d/model.safetensors" "$2"; }
cmd_curate_source() { "$BIN" curate deviation --in "$T/multi.jsonl" --out "$2" --source "model:$1" 2>/dev/null; }
cmd_curate_divpo() { "$BIN" curate divpo --in "$T/multi.jsonl" --out "$2" --criterion logprob --model "$1" --rho 50 2>/dev/null; }
one_step() { # OUT CONFIG-OVERRIDES...: a 1-step run; its final weights in OUT
  local out=$1; shift
  rm -rf "$out.run"
  "$BIN" train "$D/sft.json" --quiet --set run.out_dir="$out.run" --set train.max_steps=1 \
      --set train.eval_every=0 --set train.keep_best=false "$@" >/dev/null 2>&1 &&
    cp "$out.run/checkpoints/step-00000001/model.safetensors" "$out"
}
cmd_train_init() { one_step "$2" --set model.init=checkpoint --set model.path="$1"; }
cmd_train_reference() {
  one_step "$2" --set model.init=checkpoint --set model.path="$S" --set objective.type=dpo \
    --set data.format=preference --set data.train="$T/prefs.jsonl" --set data.val="$T/prefs-val.jsonl" \
    --set objective.reference.path="$1"
}

for c in sample eval convert curate_source curate_divpo train_init train_reference; do
  if ! "cmd_$c" "$S" "$D/$c.want"; then fail "$c/every_form" "fails on the step directory itself"; continue; fi
  bad=""
  for i in "${!FORMS[@]}"; do
    if ! "cmd_$c" "${FORMS[$i]}" "$D/$c.${NAMES[$i]}" || ! cmp -s "$D/$c.want" "$D/$c.${NAMES[$i]}"; then
      bad="$bad ${NAMES[$i]}"; fi
  done
  [ -z "$bad" ] && pass "$c/every_form" || fail "$c/every_form" "differs or fails for:$bad"
done

# resume: a run stopped at step 2 continues from each form of its path, to the same end
"$BIN" train "$D/sft.json" --quiet --set run.out_dir="$D/stopped" --stop-after 2 >/dev/null 2>&1
bad=""
for form in run checkpoints latest best step; do
  rm -rf "$D/res_$form"; cp -r "$D/stopped" "$D/res_$form"
  case $form in
    run) p="$D/res_$form" ;; checkpoints) p="$D/res_$form/checkpoints" ;;
    latest|best) p="$D/res_$form/checkpoints/$form" ;; step) p="$D/res_$form/checkpoints/step-00000002" ;;
  esac
  if ! "$BIN" resume "$p" >/dev/null 2>&1 ||
     ! cmp -s "$R/checkpoints/step-00000004/model.safetensors" "$D/res_$form/checkpoints/step-00000004/model.safetensors"; then
    bad="$bad $form"; fi
done
[ -z "$bad" ] && pass "resume/every_form" || fail "resume/every_form" "fails or differs for:$bad"
expect_err "resume/model_dir_refused" "$D/plain" "no state.json" -- "$BIN" resume "$D/plain"

# a directory that is not a model: one message, naming it and listing the forms
mkdir -p "$D/notmodel"
N="$D/notmodel"
want=("not a model directory" "checkpoints/latest" "model.safetensors")
expect_err "sample/not_a_model" "$N" "${want[@]}" -- "$BIN" sample --model "$N" --prompt x
expect_err "eval/not_a_model" "$N" "${want[@]}" -- "$BIN" eval "$D/sft.json" --checkpoint "$N"
expect_err "convert/not_a_model" "$N" "${want[@]}" -- "$BIN" convert --to hf --in "$N" --out "$D/x"
expect_err "curate_source/not_a_model" "$N" "${want[@]}" -- "$BIN" curate deviation --in "$T/multi.jsonl" --out "$D/x.jsonl" --source "model:$N"
expect_err "curate_divpo/not_a_model" "$N" "${want[@]}" -- "$BIN" curate divpo --in "$T/multi.jsonl" --out "$D/x.jsonl" --criterion logprob --model "$N"
expect_err "train_init/not_a_model" "$N" "${want[@]}" -- "$BIN" train "$D/sft.json" --quiet --set run.out_dir="$D/x" --set model.init=checkpoint --set model.path="$N"
expect_err "train_reference/not_a_model" "$N" "${want[@]}" -- "$BIN" train "$D/sft.json" --quiet --set run.out_dir="$D/x" --set objective.type=dpo --set data.format=preference --set data.train="$T/prefs.jsonl" --set data.val="" --set objective.reference.path="$N"
expect_err "resume/not_a_model" "$N" "${want[@]}" -- "$BIN" resume "$N"
expect_err "missing_path" "$D/nope" "no such directory" "checkpoints/latest" -- "$BIN" sample --model "$D/nope" --prompt x

[ "$FAILS" -eq 0 ]
