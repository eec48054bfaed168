#!/usr/bin/env bash
# sample.sh — end-to-end tests of `tinyalign sample` on a tiny trained model:
# greedy ids and text byte-identical to an independent PyTorch generator
# (tools/ref_generate.py, float64, full forward per token, python3-sentencepiece); run,
# checkpoint and plain model directories give the same output; --prompt prints the text;
# EOS, max-new-tokens and stop strings end a response with the right finish_reason, text
# and token count; seeded sampling is reproducible and independent of --batch and
# --threads; n responses per prompt in the multi-response format; --template (the fill is
# what is encoded, "prompt" kept, "filled_prompt" added, errors); --bench; and every bad
# input exits 2 with one message naming the option or file:line, leaving no output file.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_sample)

# ---- a tiny model that has learned something (peaked logits: greedy is non-trivial) ----
"$PY" - "$D" <<'EOF'
import json, random, sys
d = sys.argv[1]
r = random.Random(1)
W = [["alice", "bob", "carol", "dave", "erin"], ["likes", "eats", "sells", "paints", "finds"],
     ["red", "green", "ripe", "small", "sweet"], ["apples", "pears", "plums", "grapes", "lemons"]]
def sent():
    s = " ".join(r.choice(w) for w in W)
    if r.random() < 0.5:
        s += f" and {r.choice(W[2])} {r.choice(W[3])}"
    return s + "."
for name, n in (("corpus.txt", 3000), ("val.txt", 300)):
    with open(f"{d}/{name}", "w") as f:
        f.writelines(sent() + "\n" for _ in range(n))
prompts = ["alice likes", "bob", "", "carol sells ripe", "erin paints small lemons and",
           "zebra xylophone", "dave finds café 東京", "green", "sweet plums and", "eats"]
with open(f"{d}/prompts.jsonl", "w") as f:
    for i, p in enumerate(prompts):
        f.write(json.dumps({"prompt": p, "id": i}, ensure_ascii=False) + "\n")
EOF
cat > "$D/cfg.json" <<EOF2
{"run": {"name": "s", "out_dir": "$D/run", "seed": 3},
 "model": {"n_layer": 2, "n_head": 2, "d_model": 64, "max_seq_len": 48},
 "tokenizer": {"type": "sentencepiece", "model": "$D/spm.model"},
 "data": {"format": "tokens", "train": "$D/train.bin", "val": "$D/val.bin", "max_len": 48},
 "optim": {"lr": 1e-2, "warmup_steps": 10, "weight_decay": 0.0},
 "train": {"batch_size": 16, "max_steps": 120, "log_every": 40, "eval_every": 120,
           "eval_batches": 2, "save_every": 120}}
EOF2
if "$BIN" tokenizer train --input "$D/corpus.txt" --vocab-size 360 --out "$D/spm" >"$D/setup.log" 2>&1 &&
   "$BIN" tokenize --tokenizer "$D/spm.model" --in "$D/corpus.txt" --out "$D/train.bin" --quiet >>"$D/setup.log" 2>&1 &&
   "$BIN" tokenize --tokenizer "$D/spm.model" --in "$D/val.txt" --out "$D/val.bin" --quiet >>"$D/setup.log" 2>&1 &&
   "$BIN" train "$D/cfg.json" --quiet >>"$D/setup.log" 2>&1; then
  pass "setup_tokenizer_and_tiny_model"
else
  fail "setup_tokenizer_and_tiny_model" "$(tail -3 "$D/setup.log")"; echo "(cannot continue)"; exit 1
fi
STEP="$D/run/checkpoints/$(cat "$D/run/checkpoints/latest")"
P="$D/prompts.jsonl"
sample() { "$BIN" sample --quiet "$@"; }

# same_jsonl NAME A B [KEYS]: the two multi-response files agree line by line on prompt
# and on each response's text, num_tokens, finish_reason (and ids when both have them)
same_jsonl() {
  local out
  if out=$("$PY" - "$2" "$3" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
b = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
if len(a) != len(b): sys.exit(f"{len(a)} lines vs {len(b)}")
for i, (x, y) in enumerate(zip(a, b)):
    if x["prompt"] != y["prompt"]: sys.exit(f"line {i+1}: prompt {x['prompt']!r} vs {y['prompt']!r}")
    if len(x["responses"]) != len(y["responses"]): sys.exit(f"line {i+1}: response counts differ")
    for j, (r, s) in enumerate(zip(x["responses"], y["responses"])):
        for k in ("text", "num_tokens", "finish_reason", "ids"):
            if (k in r and k in s or k != "ids") and r.get(k) != s.get(k):
                sys.exit(f"line {i+1} response {j}: {k} {r.get(k)!r} vs {s.get(k)!r}")
EOF
  ); then pass "$1"; else fail "$1" "$out"; fi
}

# ---- greedy == PyTorch, byte for byte -------------------------------------------------------
if sample --model "$D/run" --prompts "$P" --temperature 0 --max-new-tokens 24 --ids \
     --out "$D/greedy.jsonl" 2>"$D/err" &&
   "$PY" tools/ref_generate.py --model "$STEP" --tokenizer "$STEP/tokenizer.model" --prompts "$P" \
     --max-new-tokens 24 --out "$D/ref.jsonl" >"$D/ref.log" 2>&1; then
  same_jsonl "greedy_ids_and_text_equal_pytorch ($(tail -1 "$D/ref.log"))" "$D/greedy.jsonl" "$D/ref.jsonl"
else
  fail "greedy_ids_and_text_equal_pytorch" "$(cat "$D/err" "$D/ref.log" | tail -3)"
fi
# the greedy run must be non-trivial: several tokens per response, EOS and length both seen
"$PY" - "$D/greedy.jsonl" <<'EOF' && pass "greedy_nontrivial_with_eos" || fail "greedy_nontrivial_with_eos" "see above"
import json, sys
rs = [r for l in open(sys.argv[1]) for r in json.loads(l)["responses"]]
fin = {r["finish_reason"] for r in rs}
tot = sum(r["num_tokens"] for r in rs)
eos_ok = all(r["ids"][-1] == 2 and r["num_tokens"] == len(r["ids"]) for r in rs if r["finish_reason"] == "eos")
ok = "eos" in fin and tot >= 40 and eos_ok and not any("</s>" in r["text"] for r in rs)
print(f"  finish reasons {sorted(fin)}, {tot} tokens in {len(rs)} responses")
sys.exit(0 if ok else 1)
EOF
# ---- the prompt rows' own fields are copied onto their output lines unchanged -------------
"$PY" - "$D/fields.jsonl" <<'EOF'
import json, sys
rows = [{"prompt": "alice likes", "answer": {"gold": [1, 2.5, None, True], "why": "東京 \"q\" 🙂\n"},
         "id": 12345678901234567890, "f": 1e-7, "neg": -0.0, "one": 1.0, "label": "yes"},
        {"label": [], "prompt": "", "responses": "replaced", "x": {}}]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
EOF
if sample --model "$D/run" --prompts "$D/fields.jsonl" --temperature 0 --max-new-tokens 4 --n 2 \
     --out "$D/fields.out.jsonl" 2>"$D/err"; then
  msg=$("$PY" - "$D/fields.jsonl" "$D/fields.out.jsonl" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
b = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert len(a) == len(b), (len(a), len(b))
for x, y in zip(a, b):
    keep = [k for k in x if k not in ("prompt", "responses")]
    assert [k for k in y if k not in ("prompt", "responses")] == keep, (list(x), list(y))
    for k in keep:   # same value and type (1.0 stays a float, -0.0 keeps its sign)
        assert y[k] == x[k] and repr(y[k]) == repr(x[k]), (k, x[k], y[k])
    assert y["prompt"] == x["prompt"] and len(y["responses"]) == 2
    assert all(isinstance(r["text"], str) and r["finish_reason"] for r in y["responses"])
print("ok")
EOF
  ) && pass "prompt_fields_pass_through" || fail "prompt_fields_pass_through" "$msg"
else
  fail "prompt_fields_pass_through" "$(cat "$D/err")"
fi

sample --model "$D/run" --prompts "$P" --temperature 0 --max-new-tokens 3 --ids --out "$D/short.jsonl" 2>/dev/null
"$PY" - "$D/short.jsonl" <<'EOF' && pass "max_new_tokens_gives_length" || fail "max_new_tokens_gives_length" "see above"
import json, sys
rs = [r for l in open(sys.argv[1]) for r in json.loads(l)["responses"]]
bad = [r for r in rs if r["num_tokens"] > 3 or (r["num_tokens"] == 3 and r["finish_reason"] != "length"
       and r["ids"][-1] != 2) or (r["finish_reason"] == "length" and r["num_tokens"] != 3)]
print(f"  {sum(r['finish_reason'] == 'length' for r in rs)} of {len(rs)} stopped by length")
sys.exit(1 if bad or not any(r["finish_reason"] == "length" for r in rs) else 0)
EOF

sample --model "$D/run" --prompts "$P" --temperature 0 --max-new-tokens 24 --min-new-tokens 6 --ids --out "$D/min.jsonl" 2>/dev/null
"$PY" - "$D/min.jsonl" "$D/greedy.jsonl" <<'EOF' && pass "min_new_tokens_masks_eos" || fail "min_new_tokens_masks_eos" "see above"
import json, sys
rs = [r for l in open(sys.argv[1]) for r in json.loads(l)["responses"]]
g = [r for l in open(sys.argv[2]) for r in json.loads(l)["responses"]]
bad = [r for r in rs if r["num_tokens"] < 6 or 2 in r["ids"][:6] or not r["text"]]
# up to the plain greedy run's EOS, the ids are the plain greedy ones
same = all(r["ids"][:len(x["ids"]) - 1] == x["ids"][:-1] for r, x in zip(rs, g))
print(f"  shortest response {min(r['num_tokens'] for r in rs)} tokens")
sys.exit(1 if bad or not same else 0)
EOF

# ---- model directory forms: run dir, step dir, plain model dir + --tokenizer --------------
mkdir -p "$D/plain"
cp "$STEP/config.json" "$STEP/model.safetensors" "$D/plain/"
sample --model "$STEP" --prompts "$P" --temperature 0 --max-new-tokens 24 --ids --out "$D/g_step.jsonl" 2>/dev/null
sample --model "$D/plain" --tokenizer "$D/spm.model" --prompts "$P" --temperature 0 \
  --max-new-tokens 24 --ids --out "$D/g_plain.jsonl" 2>/dev/null
same_jsonl "checkpoint_dir_same_as_run_dir" "$D/greedy.jsonl" "$D/g_step.jsonl"
same_jsonl "plain_model_dir_with_tokenizer_same" "$D/greedy.jsonl" "$D/g_plain.jsonl"

# ---- --prompt prints the completion ----------------------------------------------------------
got=$(sample --model "$D/run" --prompt "bob" --temperature 0 --max-new-tokens 24 2>/dev/null)
want=$("$PY" -c "import json,sys; print(json.loads(open(sys.argv[1]).readlines()[1])['responses'][0]['text'])" "$D/greedy.jsonl")
[ "$got" = "$want" ] && [ -n "$got" ] && pass "prompt_prints_completion" || fail "prompt_prints_completion" "\"$got\" vs \"$want\""

# ---- stop strings: cut before the earliest match, finish "stop", tokens up to the match ----
"$PY" - "$D" "$D/greedy.jsonl" "$D/spm.model" <<'EOF' > "$D/stop.args"
import json, sys
rs = [json.loads(l)["responses"][0] for l in open(sys.argv[2])]
r = max(rs, key=lambda r: len(r["text"]))          # the longest greedy text
t = r["text"]
print(t[4:7])                                         # a stop string inside it
print(t[len(t) // 2: len(t) // 2 + 2])               # and a second one
EOF
S1=$(sed -n 1p "$D/stop.args"); S2=$(sed -n 2p "$D/stop.args")
sample --model "$D/run" --prompts "$P" --temperature 0 --max-new-tokens 24 --ids --stop "$S1" \
  --stop "$S2" --out "$D/stop.jsonl" 2>/dev/null
"$PY" - "$D/greedy.jsonl" "$D/stop.jsonl" "$D/spm.model" "$S1" "$S2" <<'EOF' && pass "stop_strings_cut_earliest_match" || fail "stop_strings_cut_earliest_match" "see above"
import json, sys
import sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[3])
stops = sys.argv[4:6]
full = [json.loads(l)["responses"][0] for l in open(sys.argv[1])]
cut = [json.loads(l)["responses"][0] for l in open(sys.argv[2])]
n_stop = 0
for f, c in zip(full, cut):
    ids = f["ids"][:-1] if f["finish_reason"] == "eos" else f["ids"]
    want = None  # the first prefix of the greedy ids whose text contains a stop string
    for k in range(1, len(ids) + 1):
        txt = sp.decode(ids[:k])
        hits = [txt.find(s) for s in stops if s in txt]
        if hits:
            want = {"text": txt[:min(hits)], "num_tokens": k, "finish_reason": "stop", "ids": ids[:k]}
            break
    if want is None:
        want = f
    n_stop += want["finish_reason"] == "stop"
    for key in ("text", "num_tokens", "finish_reason", "ids"):
        if c[key] != want[key]:
            sys.exit(f"{key}: {c[key]!r}, expected {want[key]!r} (stops {stops!r})")
print(f"  {n_stop} responses stopped by {stops!r}")
sys.exit(0 if n_stop >= 2 else 1)
EOF

# ---- seeded sampling: reproducible, independent of --batch / --threads, n responses --------
SAMP=(--model "$D/run" --prompts "$P" --temperature 1.3 --top-k 40 --top-p 0.95 --min-p 0.01
      --repetition-penalty 1.2 --presence-penalty 0.3 --n 3 --max-new-tokens 16 --ids)
sample "${SAMP[@]}" --seed 5 --out "$D/s1.jsonl" 2>/dev/null
sample "${SAMP[@]}" --seed 5 --out "$D/s2.jsonl" 2>/dev/null
sample "${SAMP[@]}" --seed 5 --batch 1 --threads 1 --out "$D/s3.jsonl" 2>/dev/null
sample "${SAMP[@]}" --seed 5 --batch 7 --threads 2 --out "$D/s4.jsonl" 2>/dev/null
sample "${SAMP[@]}" --seed 6 --out "$D/s5.jsonl" 2>/dev/null
same_jsonl "same_seed_same_responses" "$D/s1.jsonl" "$D/s2.jsonl"
same_jsonl "batch1_threads1_same_as_batch8_threads2" "$D/s1.jsonl" "$D/s3.jsonl"
same_jsonl "batch7_same_as_batch8" "$D/s1.jsonl" "$D/s4.jsonl"
if cmp -s "$D/s1.jsonl" "$D/s5.jsonl"; then fail "other_seed_differs" "identical output"; else pass "other_seed_differs"; fi
"$PY" - "$D/s1.jsonl" "$P" <<'EOF' && pass "n_responses_multi_format" || fail "n_responses_multi_format" "see above"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
rows = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert [l["prompt"] for l in lines] == [r["prompt"] for r in rows], "prompts not echoed in order"
distinct = 0
for l, row in zip(lines, rows):  # the prompt row's "id" is kept
    assert list(l) == ["prompt", "id", "responses"] and l["id"] == row["id"], l
    assert len(l["responses"]) == 3, l
    for r in l["responses"]:
        assert set(r) == {"text", "num_tokens", "finish_reason", "ids"}, r
        assert r["finish_reason"] in ("eos", "length", "stop") and 1 <= r["num_tokens"] <= 16
    distinct += len({r["text"] for r in l["responses"]}) > 1
assert distinct >= 5, f"only {distinct} prompts got differing samples"
print(f"  {distinct}/{len(lines)} prompts with differing samples")
EOF

# ---- progress line, --bench ------------------------------------------------------------------
"$BIN" sample --model "$D/run" --prompts "$P" --n 2 --max-new-tokens 8 --out "$D/p.jsonl" 2>"$D/progress.log"
grep -q "tok/s" "$D/progress.log" && grep -q "10/10 prompts" "$D/progress.log" && pass "progress_line_on_stderr" ||
  fail "progress_line_on_stderr" "$(tail -2 "$D/progress.log")"
if "$BIN" sample --model "$D/run" --bench --batch 3 --prompt-len 5 --max-new-tokens 8 --bench-reps 1 >"$D/bench.json" 2>&1 &&
   "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d['batch']==3 and d['decode_tok_per_s']>0 else 1)" "$D/bench.json"; then
  pass "bench_mode_json"; else fail "bench_mode_json" "$(head -c 300 "$D/bench.json")"; fi

# ---- --template: the filled prompt is what is encoded; "prompt" kept, "filled_prompt" added --
"$PY" - "$D" <<'EOF'
import json, sys
d = sys.argv[1]
rows = [{"prompt": "likes", "who": "alice", "n": 2.50}, {"prompt": "sells", "who": "carol", "n": 1}]
with open(f"{d}/tprompts.jsonl", "w") as f:
    for r in rows: f.write(json.dumps(r) + "\n")
with open(f"{d}/tfilled.jsonl", "w") as f:  # the same prompts filled by hand
    for r in rows: f.write(json.dumps({"prompt": f"{r['who']} {r['prompt']} {{{r['n']}}}"}) + "\n")
with open(f"{d}/tmpl.txt", "w") as f:
    f.write("{who} {prompt} {{{n}}}\n")
EOF
sample --model "$D/run" --prompts "$D/tprompts.jsonl" --template "$D/tmpl.txt" --temperature 0 \
  --max-new-tokens 6 --out "$D/tmpl.jsonl" \
  && sample --model "$D/run" --prompts "$D/tfilled.jsonl" --temperature 0 --max-new-tokens 6 --out "$D/tmpl_ref.jsonl" \
  && "$PY" - "$D/tmpl.jsonl" "$D/tmpl_ref.jsonl" <<'EOF' && pass template_fill_is_encoded || fail template_fill_is_encoded "see above"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert [x["prompt"] for x in a] == ["likes", "sells"], a
assert [x["filled_prompt"] for x in a] == ["alice likes {2.5}", "carol sells {1}"], a
assert [x["who"] for x in a] == ["alice", "carol"] and list(a[0])[-1] == "filled_prompt", a
assert [x["responses"][0]["text"] for x in a] == [x["responses"][0]["text"] for x in b], (a, b)
EOF
[ "$(sample --model "$D/run" --prompt "alice" --template "{prompt} likes" --temperature 0 --max-new-tokens 6)" = \
  "$(sample --model "$D/run" --prompt "alice likes" --temperature 0 --max-new-tokens 6)" ] \
  && pass template_text_with_prompt || fail template_text_with_prompt "differs"
expect_err "template_missing_field" "$D/tprompts.jsonl:1: template field \"label\": the row has no such field" -- \
  "$BIN" sample --model "$D/run" --prompts "$D/tprompts.jsonl" --template "{prompt} {label}" --out "$D/bad.out"
expect_err "template_syntax" "--template" "no closing '}'" -- \
  "$BIN" sample --model "$D/run" --prompts "$D/tprompts.jsonl" --template "{prompt" --out "$D/bad.out"
expect_err "template_missing_file" "--template \"$D/none.txt\": no such file" -- \
  "$BIN" sample --model "$D/run" --prompts "$D/tprompts.jsonl" --template "$D/none.txt" --out "$D/bad.out"
expect_err "template_field_with_prompt_flag" "--prompt: template field \"who\"" "use --prompts" -- \
  "$BIN" sample --model "$D/run" --prompt x --template "{who}"

# ---- bad input: exit 2, one message ---------------------------------------------------------
M=(--model "$D/run")
expect_err "bad_n_0" "--n" -- "$BIN" sample "${M[@]}" --prompt x --n 0
expect_err "bad_temperature_negative" "temperature must be >= 0" -- "$BIN" sample "${M[@]}" --prompt x --temperature -1
expect_err "bad_top_p_0" "top_p must be in (0, 1]" -- "$BIN" sample "${M[@]}" --prompt x --top-p 0
expect_err "bad_top_p_above_1" "top_p must be in (0, 1]" -- "$BIN" sample "${M[@]}" --prompt x --top-p 1.5
expect_err "bad_min_p_1" "min_p must be in [0, 1)" -- "$BIN" sample "${M[@]}" --prompt x --min-p 1
expect_err "bad_top_k_negative" "top_k must be >= 0" -- "$BIN" sample "${M[@]}" --prompt x --top-k -1
expect_err "bad_min_new_tokens_above_max" "min_new_tokens must be in [0, max_new_tokens = 4]" -- "$BIN" sample "${M[@]}" --prompt x --max-new-tokens 4 --min-new-tokens 5
expect_err "bad_repetition_penalty_0" "repetition_penalty must be > 0" -- "$BIN" sample "${M[@]}" --prompt x --repetition-penalty 0
expect_err "bad_number" "--top-p \"abc\": expected a number" -- "$BIN" sample "${M[@]}" --prompt x --top-p abc
expect_err "bad_model_dir" "not a model directory" -- "$BIN" sample --model "$D" --prompt x
expect_err "bad_model_missing" "no such directory" -- "$BIN" sample --model "$D/nope" --prompt x
expect_err "missing_tokenizer" "no tokenizer" "$D/plain/tokenizer.model" -- "$BIN" sample --model "$D/plain" --prompt x
expect_err "prompt_and_prompts" "exactly one of" -- "$BIN" sample "${M[@]}" --prompt x --prompts "$P"
expect_err "no_prompt" "exactly one of" -- "$BIN" sample "${M[@]}"
expect_err "unknown_option" "unknown option \"--topk\"" -- "$BIN" sample "${M[@]}" --prompt x --topk 3
long=$(printf 'alice likes red apples and green pears %.0s' $(seq 20))
expect_err "prompt_longer_than_max_seq_len" "--prompt: the prompt has" "max_seq_len is 48" -- "$BIN" sample "${M[@]}" --prompt "$long"
printf '{"prompt": "a"}\n\n{"prompt": "b"\n' > "$D/bad1.jsonl"
expect_err "prompts_bad_json_file_line" "$D/bad1.jsonl:3:" "invalid JSON" -- "$BIN" sample "${M[@]}" --prompts "$D/bad1.jsonl" --out "$D/bad.out"
printf '{"prompt": "a"}\n{"text": "b"}\n' > "$D/bad2.jsonl"
expect_err "prompts_missing_field" "$D/bad2.jsonl:2: missing field \"prompt\"" -- "$BIN" sample "${M[@]}" --prompts "$D/bad2.jsonl"
printf '{"prompt": 3}\n' > "$D/bad3.jsonl"
expect_err "prompts_not_a_string" "bad3.jsonl:1: field \"prompt\" must be a string, found a number" -- "$BIN" sample "${M[@]}" --prompts "$D/bad3.jsonl"
printf '{"prompt": "a"}\n{"prompt": "%s"}\n' "$long" > "$D/bad4.jsonl"
expect_err "prompts_too_long_file_line" "bad4.jsonl:2: the prompt has" -- "$BIN" sample "${M[@]}" --prompts "$D/bad4.jsonl" --out "$D/bad.out"
: > "$D/empty.jsonl"
expect_err "prompts_empty_file" "no prompts" -- "$BIN" sample "${M[@]}" --prompts "$D/empty.jsonl"
[ ! -e "$D/bad.out" ] && [ ! -e "$D/bad.out.tmp" ] && pass "no_output_file_after_errors" || fail "no_output_file_after_errors" "$(ls "$D"/bad.out*)"

[ "$FAILS" -eq 0 ]
