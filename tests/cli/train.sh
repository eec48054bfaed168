#!/usr/bin/env bash
# train.sh — end-to-end tests of `tinyalign train` / `resume` on synthetic token shards:
# bit-exact resume after --stop-after, SIGINT and kill -9 in the middle of a checkpoint
# write; refusal of a math-changing resume; non-finite steps; early stopping / keep-best;
# keep_last_n; and every bad input of the trainer issue (exit 2, one clear message).
# A straight run is the reference: every interrupted-and-resumed run must end with a
# byte-identical model.safetensors and the same metrics lines (timing fields aside).
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_train)
"$PY" tools/synth_shards.py --out "$D/data" --tokens 60000 --val-tokens 6000 >/dev/null

cat > "$D/base.json" <<EOF2
{"run": {"name": "t", "out_dir": "$D/straight", "seed": 7},
 "model": {"n_layer": 2, "n_head": 2, "d_model": 32, "max_seq_len": 32},
 "tokenizer": {"type": "none"},
 "data": {"format": "tokens", "train": "$D/data/train.bin", "val": "$D/data/val.bin", "max_len": 32},
 "optim": {"lr": 3e-3, "warmup_steps": 5, "weight_decay": 0.1},
 "train": {"batch_size": 4, "grad_accum": 2, "max_steps": 40, "log_every": 5, "eval_every": 10,
           "eval_batches": 3, "save_every": 10}}
EOF2
train() { "$BIN" train "$D/base.json" --quiet "$@"; }
badtrain() { train --set run.out_dir="$D/bad" "$@"; }  # a fresh dir: only the input is wrong
strip_timing() { sed -E 's/, "tok_per_s": [^,}]*//; s/, "elapsed_s": [^,}]*//' "$1"; }
same_run() { # NAME RUN_DIR: final model and metrics identical to the straight run
  if ! cmp -s "$D/straight/checkpoints/step-00000040/model.safetensors" "$2/checkpoints/step-00000040/model.safetensors"; then
    fail "$1" "final model.safetensors differs from the straight run"; return; fi
  if ! diff <(strip_timing "$D/straight/metrics.jsonl") <(strip_timing "$2/metrics.jsonl") >/dev/null; then
    fail "$1" "metrics.jsonl differs: $(diff <(strip_timing "$D/straight/metrics.jsonl") <(strip_timing "$2/metrics.jsonl") | head -3)"; return; fi
  pass "$1"
}

# ---- the reference run ------------------------------------------------------------------
if train >"$D/straight.log" 2>&1; then pass "straight_run"; else fail "straight_run" "$(tail -3 "$D/straight.log")"; fi
if "$PY" -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$D/straight/metrics.jsonl"; then
  pass "metrics_jsonl_is_json"; else fail "metrics_jsonl_is_json" "unparseable line"; fi
first=$(grep '"kind": "eval"' "$D/straight/metrics.jsonl" | head -1 | sed -E 's/.*"loss": ([0-9.]+).*/\1/')
last=$(grep '"kind": "eval"' "$D/straight/metrics.jsonl" | tail -1 | sed -E 's/.*"loss": ([0-9.]+).*/\1/')
if "$PY" -c "import sys; sys.exit(0 if float(sys.argv[2]) < float(sys.argv[1]) - 0.2 else 1)" "$first" "$last"; then
  pass "val_loss_falls ($first -> $last)"; else fail "val_loss_falls" "$first -> $last"; fi
grep -q "ETA" "$D/straight.log" && grep -q "tok/s" "$D/straight.log" && pass "progress_line" || fail "progress_line" "no ETA/tok/s"
n=$(ls -d "$D/straight/checkpoints"/step-* | wc -l)
[ "$n" -eq 3 ] && pass "keep_last_n_3" || fail "keep_last_n_3" "$n checkpoints kept"
[ -s "$D/straight/config.json" ] && grep -q '"grad_clip"' "$D/straight/config.json" && pass "resolved_config_saved" || fail "resolved_config_saved" "no defaults in config.json"

# ---- --stop-after then resume -------------------------------------------------------------
R="$D/stop"
train --set run.out_dir="$R" --stop-after 15 >"$D/stop.log" 2>&1; rc=$?
if [ $rc -eq 0 ] && [ "$(cat "$R/checkpoints/latest")" = "step-00000015" ]; then pass "stop_after_saves_exit0"
else fail "stop_after_saves_exit0" "exit $rc, latest $(cat "$R/checkpoints/latest" 2>/dev/null)"; fi
"$BIN" resume "$R" >>"$D/stop.log" 2>&1 || fail "resume_runs" "exit $?"
same_run "resume_after_stop_after_bitexact" "$R"

# train --resume with the same config works too
R2="$D/stop2"
train --set run.out_dir="$R2" --stop-after 23 >/dev/null 2>&1
train --set run.out_dir="$R2" --resume >/dev/null 2>&1
same_run "train_resume_flag_bitexact" "$R2"

# ---- a changed math key is refused (exit 2, lists it), --force accepts ---------------------
R3="$D/changed"
train --set run.out_dir="$R3" --stop-after 10 >/dev/null 2>&1
err=$(train --set run.out_dir="$R3" --resume --set optim.lr=0.01 --set train.log_every=7 2>&1 >/dev/null); rc=$?
if [ $rc -eq 2 ] && grep -q "optim.lr: 0.003 -> 0.01" <<<"$err" && ! grep -q "log_every" <<<"$err"; then
  pass "resume_refuses_changed_math_key"; else fail "resume_refuses_changed_math_key" "exit $rc: $err"; fi
if train --set run.out_dir="$R3" --resume --set optim.lr=0.01 --force >/dev/null 2>&1; then
  pass "resume_force_accepts"; else fail "resume_force_accepts" "exit $?"; fi

# ---- SIGINT / SIGTERM: finish the step, save, exit 130 / 143, resume bit-exactly -----------
for sig in INT TERM; do
  R4="$D/sig$sig"
  want=$([ $sig = INT ] && echo 130 || echo 143)
  TINYALIGN_CKPT_DELAY_MS=0 "$BIN" train "$D/base.json" --quiet --set run.out_dir="$R4" \
      --set train.max_steps=40 >"$D/sig.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do grep -q '"step": 5' "$R4/metrics.jsonl" 2>/dev/null && break; sleep 0.01; done
  kill -$sig $pid; wait $pid; rc=$?
  if [ $rc -eq $want ] && [ -s "$R4/checkpoints/latest" ]; then pass "sig${sig}_saves_exit_$want"
  elif [ $rc -eq 0 ]; then pass "sig${sig}_saves_exit_$want (run finished before the signal)"
  else fail "sig${sig}_saves_exit_$want" "exit $rc: $(tail -2 "$D/sig.log")"; fi
  [ $rc -ne 0 ] && "$BIN" resume "$R4" >/dev/null 2>&1
  same_run "sig${sig}_resume_bitexact" "$R4"
done

# ---- kill -9 in the middle of a checkpoint write: the previous one stays intact -------------
R5="$D/kill9"
TINYALIGN_CKPT_DELAY_MS=400 "$BIN" train "$D/base.json" --quiet --set run.out_dir="$R5" >"$D/kill9.log" 2>&1 &
pid=$!
for _ in $(seq 500); do [ -d "$R5/checkpoints/step-00000020.tmp" ] && break; sleep 0.01; done
if [ -d "$R5/checkpoints/step-00000020.tmp" ]; then
  kill -9 $pid; wait $pid 2>/dev/null
  latest=$(cat "$R5/checkpoints/latest" 2>/dev/null)
  if [ "$latest" = "step-00000010" ]; then pass "kill9_latest_still_previous"; else fail "kill9_latest_still_previous" "latest=$latest"; fi
  if "$BIN" resume "$R5" >"$D/kill9r.log" 2>&1 && [ ! -d "$R5/checkpoints/step-00000020.tmp" ]; then
    pass "kill9_resumes_and_cleans_tmp"; else fail "kill9_resumes_and_cleans_tmp" "$(tail -2 "$D/kill9r.log")"; fi
  same_run "kill9_resume_bitexact" "$R5"
else
  kill -9 $pid 2>/dev/null; fail "kill9_latest_still_previous" "never saw step-00000020.tmp"
fi

# ---- non-finite steps are skipped, then the run stops (exit 1) ------------------------------
err=$(train --set run.out_dir="$D/nan" --set optim.lr=1e30 --set optim.grad_clip=0 --set train.max_bad_steps=3 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q "update skipped" <<<"$err" && grep -q "3 consecutive non-finite steps" <<<"$err"; then
  pass "nonfinite_skips_then_stops"; else fail "nonfinite_skips_then_stops" "exit $rc: $(tail -2 <<<"$err")"; fi

# ---- early stopping and keep-best ------------------------------------------------------------
err=$(train --set run.out_dir="$D/early" --set train.patience=1 --set train.min_delta=100 --set train.keep_best=true --set train.keep_last_n=1 2>&1); rc=$?
best=$(cat "$D/early/checkpoints/best" 2>/dev/null)
if [ $rc -eq 0 ] && grep -q "early stopping" <<<"$err" && [ "$best" = "step-00000010" ] && [ -d "$D/early/checkpoints/step-00000010" ] \
   && [ "$(cat "$D/early/checkpoints/latest")" = "step-00000020" ]; then
  pass "early_stopping_keeps_best"; else fail "early_stopping_keeps_best" "exit $rc best=$best latest=$(cat "$D/early/checkpoints/latest" 2>/dev/null)"; fi

# ---- several shards by glob; a validation fraction instead of a file -------------------------
"$PY" - "$D" <<'EOF2'
import struct, sys
d = sys.argv[1]
raw = open(d + "/data/train.bin", "rb").read()
n = struct.unpack_from("<Q", raw, 24)[0]
ids = struct.unpack_from("<%dH" % n, raw, 64)
for i, part in enumerate([ids[: n // 3], ids[n // 3:]]):
    hdr = b"TASHARD1" + struct.pack("<IIIIQ", 1, 2, 64, 0, len(part)); hdr += b"\0" * (64 - len(hdr))
    open(f"{d}/data/part-{i}.bin", "wb").write(hdr + struct.pack("<%dH" % len(part), *part))
EOF2
out=$(train --set run.out_dir="$D/glob" --set data.train="$D/data/part-*.bin" --set train.max_steps=5 2>&1)
# the two parts hold the same tokens as train.bin: same window count
want=$(grep -o '[0-9]* training windows' "$D/straight.log" | head -1)
if grep -q "part-\*.bin: 60000 tokens, $want" <<<"$out"; then pass "shards_by_glob"; else fail "shards_by_glob" "$(grep data: <<<"$out")"; fi
out=$(train --set run.out_dir="$D/valfrac" --set data.val='""' --set data.val_fraction=0.1 --set train.max_steps=10 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "validation windows" <<<"$out" && grep -q '"kind": "eval"' "$D/valfrac/metrics.jsonl"; then
  pass "val_fraction_split"; else fail "val_fraction_split" "exit $rc: $(grep -E 'data:|error' <<<"$out")"; fi
if grep -q '"kind": "data", "step": 0, "train_examples": ' "$D/valfrac/metrics.jsonl"; then pass "data_line_logged"; else fail "data_line_logged" "no data line"; fi

# ---- train.sample_every: samples logged, and sampling does not change the training math ------
"$PY" -c "
import random; r = random.Random(3)
open('$D/tok.txt','w').write('\n'.join(' '.join(r.choice(['abc','de','fgh','ij','k']) for _ in range(8)) for _ in range(300)))"
"$BIN" tokenizer train --input "$D/tok.txt" --vocab-size 30 --model-type bpe --byte-fallback 0 --out "$D/tok" >/dev/null 2>&1
err=$(train --set run.out_dir="$D/samp" --set tokenizer.type=sentencepiece --set tokenizer.model="$D/tok.model" --set model.vocab_size=64 \
      --set train.sample_every=20 --set 'train.sample_prompts=["abc de", "k"]' --set train.sample_max_new_tokens=8 2>&1); rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c '"kind": "sample"' "$D/samp/metrics.jsonl")" -eq 2 ] && grep -q "sample step 20 | abc de" <<<"$err" \
   && cmp -s "$D/straight/checkpoints/step-00000040/model.safetensors" "$D/samp/checkpoints/step-00000040/model.safetensors"; then
  pass "sample_every_logs_and_leaves_training_unchanged"
else fail "sample_every_logs_and_leaves_training_unchanged" "exit $rc: $(grep -E 'sample|error' <<<"$err" | head -3)"; fi
expect_err "bad/sample_every_without_tokenizer" "train.sample_every needs a tokenizer" -- \
  badtrain --set train.sample_every=5 --set 'train.sample_prompts=["x"]'

# ---- init from a checkpoint (fine-tuning) ------------------------------------------------------
if train --set run.out_dir="$D/ft" --set model.init=checkpoint --set model.path="$D/straight" --set train.max_steps=5 >/dev/null 2>&1; then
  pass "init_from_checkpoint"; else fail "init_from_checkpoint" "exit $?"; fi

# ---- bad input: exit 2, one message naming the file / key -------------------------------------
expect_err "bad/missing_config" "nope.json" -- "$BIN" train "$D/nope.json"
printf '{"run": {"name": "x",}\n}\n' > "$D/badjson.json"
expect_err "bad/invalid_json_line_col" "badjson.json:1:" -- "$BIN" train "$D/badjson.json"
expect_err "bad/wrong_type" "train.batch_size" "integer" -- badtrain --set train.batch_size='"eight"'
expect_err "bad/unknown_key_suggestion" "optim.learnig_rate" 'did you mean "optim.lr"' -- badtrain --set optim.learnig_rate=1
expect_err "bad/lr_not_positive" "optim.lr" -- badtrain --set optim.lr=0
expect_err "bad/batch_zero" "train.batch_size" -- badtrain --set train.batch_size=0
expect_err "bad/T_over_max_seq_len" "data.max_len" -- badtrain --set data.max_len=64
expect_err "bad/missing_data" "missing.bin" -- badtrain --set data.train="$D/missing.bin"
"$PY" - "$D" <<'EOF2'
import struct, sys
d = sys.argv[1]
def shard(path, ids, vocab, cut=0):
    hdr = b"TASHARD1" + struct.pack("<IIIIQ", 1, 2, vocab, 0, len(ids)); hdr += b"\0" * (64 - len(hdr))
    data = hdr + struct.pack("<%dH" % len(ids), *ids)
    open(path, "wb").write(data[:len(data) - cut])
shard(d + "/empty.bin", [], 64)
shard(d + "/trunc.bin", list(range(1, 60)) * 10, 64, cut=3)
shard(d + "/bigvocab.bin", [100] * 500, 200)
EOF2
expect_err "bad/empty_shard" "empty.bin" -- badtrain --set data.train="$D/empty.bin"
expect_err "bad/truncated_shard" "trunc.bin" -- badtrain --set data.train="$D/trunc.bin"
expect_err "bad/token_id_over_vocab" "bigvocab.bin" "vocab" -- badtrain --set data.train="$D/bigvocab.bin" --set model.vocab_size=64

cp -r "$D/stop" "$D/flip"
ck="$D/flip/checkpoints/step-00000040"
"$PY" -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)" "$ck/model.safetensors"
expect_err "bad/checkpoint_flipped_byte" "model.safetensors" "checksum mismatch" -- "$BIN" resume "$D/flip"
cp -r "$D/stop" "$D/missing"; rm "$D/missing/checkpoints/step-00000040/optim.safetensors"
expect_err "bad/checkpoint_missing_file" "optim.safetensors" "missing" -- "$BIN" resume "$D/missing"
cp -r "$D/stop" "$D/version"
# as another build wrote it (its own state.sum would match; a format-1 state has none)
"$PY" -c "import json,sys; p=sys.argv[1]; s=json.load(open(p)); s['engine_version']='0.0.1'; s['format_version']=1; json.dump(s,open(p,'w'))" "$D/version/checkpoints/step-00000040/state.json"
rm "$D/version/checkpoints/step-00000040/state.sum"
expect_err "bad/checkpoint_engine_version" "written by tinyalign 0.0.1" -- "$BIN" resume "$D/version"
err=$(train --set run.out_dir="$D/stop" --resume --force --set model.d_model=64 2>&1 >/dev/null); rc=$?
if [ $rc -eq 2 ] && grep -q 'model.safetensors: tensor "transformer.wte.weight" has shape \[64, 32\], expected \[64, 64\]' <<<"$err"; then
  pass "bad/checkpoint_wrong_shapes"; else fail "bad/checkpoint_wrong_shapes" "exit $rc: $err"; fi
expect_err "bad/no_checkpoint_to_resume" "no checkpoint" -- "$BIN" resume "$D/data"
expect_err "bad/huge_vocab" "model.vocab_size 2147483647 is too large" -- badtrain --set model.vocab_size=2147483647
expect_err "bad/fresh_run_into_existing_dir" "already holds a run" "--resume" -- train --set run.out_dir="$D/stop"

# ---- review fixes: resume where the run lies now; --stop-after at or below the step; --------
# ---- keep_best besides keep_last_n; a crash between the two renames of a re-save ----------
train --set run.out_dir="$D/orig" --stop-after 15 >/dev/null 2>&1
cp -r "$D/orig" "$D/copied"
touch -d '1 hour ago' "$D/orig/checkpoints/latest"; before=$(stat -c %Y "$D/orig/checkpoints/latest")
out=$("$BIN" resume "$D/copied" --stop-after 30 2>&1)
if [ "$(cat "$D/copied/checkpoints/latest")" = "step-00000030" ] && [ "$(stat -c %Y "$D/orig/checkpoints/latest")" = "$before" ]; then
  pass "resume_continues_the_copy_not_the_original"; else fail "resume_continues_the_copy_not_the_original" "$(tail -2 <<<"$out")"; fi
out=$("$BIN" resume "$D/copied" --stop-after 20 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "nothing to do" <<<"$out" && [ "$(cat "$D/copied/checkpoints/latest")" = "step-00000030" ]; then
  pass "stop_after_below_current_step"; else fail "stop_after_below_current_step" "exit $rc: $(tail -1 <<<"$out")"; fi
train --set run.out_dir="$D/kb" --set train.eval_every=10 --set train.keep_best=true --set train.keep_last_n=2 --set train.min_delta=100 >/dev/null 2>&1
ls_kb=$(ls "$D/kb/checkpoints" | grep step- | tr '\n' ' ')
[ "$ls_kb" = "step-00000010 step-00000030 step-00000040 " ] && pass "keep_best_does_not_take_a_keep_last_n_slot" \
  || fail "keep_best_does_not_take_a_keep_last_n_slot" "$ls_kb"
cp -r "$D/copied" "$D/crash"; mv "$D/crash/checkpoints/step-00000030" "$D/crash/checkpoints/step-00000030.old"
if "$BIN" resume "$D/crash" >/dev/null 2>&1 && [ -d "$D/crash/checkpoints/step-00000040" ]; then
  pass "crash_between_renames_recovers_old"; else fail "crash_between_renames_recovers_old" "resume failed"; fi

# nothing already saved was touched by the failed attempts
same_run "bad_input_left_checkpoints_intact" "$D/stop"

[ "$FAILS" -eq 0 ]
