#!/usr/bin/env bash
# inputs.sh — text in, JSON out. Every text input is checked for valid UTF-8 once, where
# it comes in (JSONL lines with the fields they keep, config files and --set values,
# command-line text, tokenizer input), and refused with exit 2 and one message naming
# FILE:LINE:COL (and the field); every JSON / JSONL file the engine writes reads back
# with a strict parser (tests/strict_json.py: UTF-8 decoded strictly, no NaN/Infinity,
# no raw control characters, no duplicate keys): sample output, curate deviation / pairs /
# divpo, curate diversity --json, eval, metrics.jsonl, the run's config.json and a
# checkpoint's state.json and config.json. Also the small items of the hardening issue:
# a `latest` holding garbage, --set with an unknown section, a tensor deleted from a
# safetensors header.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_inputs)
STRICT="$PY tests/strict_json.py"

# ---- a tiny model with a byte-fallback tokenizer (non-ASCII text, random bytes) --------
"$PY" - "$D" <<'EOF'
import json, random, sys
d = sys.argv[1]
r = random.Random(5)
W = ["café", "東京", "naïve", "🙂", "zebra", "apples", "and", "the", "\"quoted\"", "back\\slash"]
with open(f"{d}/corpus.txt", "w", encoding="utf-8") as f:
    for _ in range(600):
        f.write(" ".join(r.choice(W) for _ in range(6)) + "\n")
prompts = [{"prompt": "café 東京", "id": 1, "meta": {"tags": ["naïve", "🙂"], "n": 1.0}},
           {"prompt": "", "id": "x\u2028y", "note": "tab\tand \"quote\""},
           {"prompt": "zebra", "gold": -0.0}]
with open(f"{d}/prompts.jsonl", "w", encoding="utf-8") as f:
    for p in prompts:
        f.write(json.dumps(p, ensure_ascii=False) + "\n")
EOF
cat > "$D/cfg.json" <<EOF2
{"run": {"name": "ünï-códe 🙂", "out_dir": "$D/run", "seed": 3, "threads": 1},
 "model": {"n_layer": 1, "n_head": 2, "d_model": 32, "max_seq_len": 32},
 "tokenizer": {"type": "sentencepiece", "model": "$D/spm.model"},
 "data": {"format": "tokens", "train": "$D/train.bin", "val_fraction": 0.1, "max_len": 32},
 "optim": {"lr": 1e-2, "warmup_steps": 2},
 "train": {"batch_size": 4, "max_steps": 6, "log_every": 3, "eval_every": 6, "eval_batches": 1,
           "save_every": 6, "sample_every": 6, "sample_prompts": ["café \"東京\"\n", "🙂"],
           "sample_max_new_tokens": 6}}
EOF2
if "$BIN" tokenizer train --input "$D/corpus.txt" --vocab-size 300 --out "$D/spm" >"$D/setup.log" 2>&1 &&
   "$BIN" tokenize --tokenizer "$D/spm.model" --in "$D/corpus.txt" --out "$D/train.bin" --quiet >>"$D/setup.log" 2>&1 &&
   "$BIN" train "$D/cfg.json" --quiet >>"$D/setup.log" 2>&1; then
  pass "setup_tiny_model"
else
  fail "setup_tiny_model" "$(tail -3 "$D/setup.log")"; echo "(cannot continue)"; exit 1
fi
RUN="$D/run"
STEP="$RUN/checkpoints/$(cut -d' ' -f1 "$RUN/checkpoints/latest")"

# ---- every output kind reads back with a strict parser ------------------------------------
"$BIN" sample --quiet --model "$RUN" --prompts "$D/prompts.jsonl" --n 3 --max-new-tokens 12 \
  --temperature 1.5 --seed 1 --out "$D/multi.jsonl" 2>"$D/sample.err" || fail sample_runs "$(cat "$D/sample.err")"
# random bytes: an untrained model at a high temperature emits byte-fallback pieces that
# do not form UTF-8 (the decoder turns them into U+FFFD)
"$BIN" sample --quiet --model "$STEP" --prompts "$D/prompts.jsonl" --n 8 --max-new-tokens 24 \
  --temperature 8 --seed 2 --out "$D/multi_hot.jsonl" 2>>"$D/sample.err"
"$PY" - "$D/multi.jsonl" "$D/scored.jsonl" <<'EOF'
import json, sys
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for l in open(sys.argv[1], encoding="utf-8"):
        d = json.loads(l)
        if not d["prompt"]:
            continue  # curate wants a prompt; sample allows an empty one
        for j, r in enumerate(d["responses"]):
            r["score"] = float(j)
        f.write(json.dumps(d, ensure_ascii=False) + "\n")
EOF
"$BIN" curate deviation --in "$D/scored.jsonl" --out "$D/dev.jsonl" --source lexical 2>/dev/null
"$BIN" curate pairs --in "$D/scored.jsonl" --out "$D/pairs.jsonl" --source lexical --gap 1 2>/dev/null
"$BIN" curate divpo --in "$D/scored.jsonl" --out "$D/divpo.jsonl" --source lexical 2>/dev/null
"$BIN" curate diversity --in "$D/scored.jsonl" --json >"$D/diversity.json" 2>/dev/null
"$BIN" eval "$D/cfg.json" --checkpoint "$RUN" >"$D/eval.json" 2>/dev/null
for f in multi.jsonl multi_hot.jsonl dev.jsonl pairs.jsonl divpo.jsonl diversity.json eval.json \
         run/metrics.jsonl run/config.json; do
  if msg=$($STRICT "$D/$f" 2>&1); then pass "strict_json/$f ($msg)"; else fail "strict_json/$f" "$msg"; fi
done
for f in state.json config.json; do
  if msg=$($STRICT "$STEP/$f" 2>&1); then pass "strict_json/checkpoint_$f ($msg)"; else fail "strict_json/checkpoint_$f" "$msg"; fi
done
grep -q '\\ufffd\|�' "$D/multi_hot.jsonl" && pass "random_bytes_generated_became_U+FFFD" \
  || fail "random_bytes_generated_became_U+FFFD" "no replacement character: the case was not exercised"
# the kept fields came through unchanged (value and type), unicode included
if "$PY" - "$D/prompts.jsonl" "$D/multi.jsonl" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
b = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
for x, y in zip(a, b):
    for k, v in x.items():
        assert json.dumps(y[k]) == json.dumps(v), (k, v, y[k])
EOF
then pass "kept_unicode_fields_unchanged"; else fail "kept_unicode_fields_unchanged" "differs"; fi

# ---- invalid UTF-8 is refused where it comes in (exit 2, one message, no output) -----------
printf '{"prompt": "a\xff\xfe"}\n' > "$D/bad_prompt.jsonl"
printf '{"prompt": "ok"}\n{"prompt": "b", "id": "c\xc3"}\n' > "$D/bad_field.jsonl"
printf '{"prompt": "p", "responses": [{"text": "a", "score": 1, "why": "\xed\xa0\x80"}]}\n' > "$D/bad_multi.jsonl"
rm -f "$D/out.jsonl"
expect_err "utf8/sample_prompts_prompt" "bad_prompt.jsonl:1:" 'field "prompt" (byte 2 of the string)' "0xFF" -- \
  "$BIN" sample --model "$RUN" --prompts "$D/bad_prompt.jsonl" --out "$D/out.jsonl"
expect_err "utf8/sample_prompts_kept_field" "bad_field.jsonl:2:" 'field "id"' "not valid UTF-8" -- \
  "$BIN" sample --model "$RUN" --prompts "$D/bad_field.jsonl" --out "$D/out.jsonl"
[ ! -e "$D/out.jsonl" ] && [ ! -e "$D/out.jsonl.tmp" ] && pass "utf8/no_output_file" || fail "utf8/no_output_file" "out.jsonl written"
expect_err "utf8/sample_prompt_arg" "--prompt" '"a\xFF"' "valid UTF-8" -- "$BIN" sample --model "$RUN" --prompt $'a\xff'
expect_err "utf8/sample_stop_arg" "--stop" "valid UTF-8" -- "$BIN" sample --model "$RUN" --prompt a --stop $'\xc3'
expect_err "utf8/curate_kept_response_field" "bad_multi.jsonl:1:" 'field "responses[0].why"' -- \
  "$BIN" curate deviation --in "$D/bad_multi.jsonl" --out "$D/out.jsonl" --source lexical
printf '{"prompt": "a", "completion": "b\xff"}\n' > "$D/bad_sft.jsonl"
expect_err "utf8/train_sft_completion" "bad_sft.jsonl:1:" 'field "completion"' -- \
  "$BIN" train "$D/cfg.json" --quiet --set run.out_dir="$D/x" --set data.format=sft --set data.train="$D/bad_sft.jsonl" \
  --set data.max_prompt_len=16
printf '{"run": {"name": "caf\xe9"}}\n' > "$D/bad_cfg.json"
expect_err "utf8/config_file" "bad_cfg.json:1:22:" "not valid UTF-8 (byte 0xE9)" -- "$BIN" train "$D/bad_cfg.json"
expect_err "utf8/config_set" '--set "run.name=\xFF"' "not valid UTF-8" -- "$BIN" train "$D/cfg.json" --set $'run.name=\xff'
printf 'good line\nbad \xc0\xaf line\n' > "$D/bad.txt"
expect_err "utf8/tokenize_txt" "bad.txt:2:5:" "not valid UTF-8 (byte 0xC0)" -- \
  "$BIN" tokenize --tokenizer "$D/spm.model" --in "$D/bad.txt" --out "$D/bad.bin"
[ ! -e "$D/bad.bin" ] && [ ! -e "$D/bad.bin.tmp" ] && pass "utf8/tokenize_no_shard" || fail "utf8/tokenize_no_shard" "shard left"
printf '{"text": "x\xf5"}\n' > "$D/bad_text.jsonl"
expect_err "utf8/tokenize_jsonl" "bad_text.jsonl:1:" 'field "text"' -- \
  "$BIN" tokenize --tokenizer "$D/spm.model" --in "$D/bad_text.jsonl" --out "$D/bad.bin"
expect_err "utf8/tokenizer_encode_text" "--text" "valid UTF-8" -- "$BIN" tokenizer encode --model "$D/spm.model" --text $'\xff'
expect_err "utf8/tokenizer_encode_file" "bad.txt:2:5:" "not valid UTF-8" -- "$BIN" tokenizer encode --model "$D/spm.model" --in "$D/bad.txt"
expect_err "utf8/tokenizer_train_input" "bad.txt:2:5:" "not valid UTF-8" -- "$BIN" tokenizer train --input "$D/bad.txt" --vocab-size 300 --out "$D/bad_spm"

# ---- the small items ------------------------------------------------------------------------
cp -r "$RUN" "$D/garbage"
head -c 300 /dev/urandom > "$D/garbage/checkpoints/latest"
err=$("$BIN" resume "$D/garbage" 2>&1); rc=$?
if [ $rc -eq 2 ] && grep -q "checkpoints/latest: not a checkpoint pointer" <<<"$err" && grep -q "(300 bytes)" <<<"$err" \
   && [ ${#err} -lt 400 ] && "$PY" -c 'import sys; t = sys.stdin.buffer.read().rstrip(b"\n"); t.decode("utf-8"); sys.exit(any(c < 32 or c == 127 for c in t))' <<<"$err"; then
  pass "latest_garbage_short_escaped_excerpt"; else fail "latest_garbage_short_escaped_excerpt" "exit $rc, ${#err} chars: $(head -c 300 <<<"$err" | cat -v)"; fi
expect_err "set_unknown_section_lists_sections" 'unknown section "nope" in "nope.key"' "run, model, tokenizer" -- \
  "$BIN" train "$D/cfg.json" --set nope.key=1
cp -r "$STEP" "$D/missing_tensor"
"$PY" - "$D/missing_tensor/model.safetensors" <<'EOF'
import json, struct, sys
p = sys.argv[1]
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
del h["transformer.wpe.weight"]
t = json.dumps(h, separators=(",", ":")).encode()
open(p, "wb").write(b[:8] + t + b" " * (n - len(t)) + b[8 + n:])
EOF
expect_err "missing_tensor_by_name" 'missing tensor "transformer.wpe.weight"' "expected shape [32, 32]" -- \
  "$BIN" sample --model "$D/missing_tensor" --prompt a

[ "$FAILS" -eq 0 ]
