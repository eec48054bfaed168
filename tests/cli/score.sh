#!/usr/bin/env bash
# score.sh — end-to-end tests of `tinyalign score`: the cmd: protocol (the requests a
# program sees, fields stored on the responses in order, every other field kept, --field,
# program calls counted per batch), every failure of a program (non-zero exit, timeout,
# wrong line count, non-JSON, missing / non-numeric / non-finite score, a reserved field)
# exiting 2 with one message naming the request and no output file; bad specs and files;
# logprob: against a PyTorch GPT-2 (tools/ref_score.py, float64) with cut prompts and
# responses; banned: against a regular-expression reimplementation.
# Env: TA_BUILD (default build), PYTHON (default /usr/bin/python3), TA_REF (scratch).
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_score)
REF="$PY tools/ref_score.py"

# ---- help -----------------------------------------------------------------------------------
out=$($BIN score --help 2>&1)
{ grep -q "usage: tinyalign score" <<<"$out" && grep -q "cmd:PROGRAM" <<<"$out" \
  && grep -q "logprob:MODEL" <<<"$out" && grep -q "banned:FILE" <<<"$out"; } \
  && pass help || fail help "$out"
$BIN --help | grep -q "^  score " && pass listed_in_main_help || fail listed_in_main_help "no score"

# ---- data ------------------------------------------------------------------------------------
cat > "$D/multi.jsonl" <<'EOF'
{"prompt": "reverse abc", "answer": "cba", "id": 1, "responses": [{"text": "cba", "num_tokens": 3, "finish_reason": "eos"}, {"text": "abc", "score": 9, "correct": "old"}, {"text": "cb"}]}

{"prompt": "reverse xy", "answer": "yx", "responses": [{"text": "yx"}], "note": {"nested": [1, 2.50]}}
{"prompt": "reverse é☃", "answer": "☃é", "responses": [{"text": "☃é"}, {"text": "é☃"}, {"text": "x"}, {"text": "☃é"}]}
EOF
# the checker: exact match against the row's "answer"; counts its calls in calls.txt
cat > "$D/check.py" <<'EOF'
import json, sys
with open(sys.argv[1], "a") as f:
    f.write("call\n")
reqs = [json.loads(l) for l in sys.stdin]
for r in reqs:
    ok = r["response"] == r["answer"]
    print(json.dumps({"score": 1.0 if ok else 0.0, "correct": ok, "seen_keys": sorted(r),
                      "critique": "" if ok else "expected " + r["answer"]}, ensure_ascii=False))
EOF
CHECK="cmd:$PY $D/check.py $D/calls.txt"

# ---- protocol ----------------------------------------------------------------------------------
rm -f "$D/calls.txt"
if $BIN score --in "$D/multi.jsonl" --scorer "$CHECK" --out "$D/s1.jsonl" 2>"$D/s1.err"; then
  msg=$($PY - "$D/multi.jsonl" "$D/s1.jsonl" <<'EOF'
import json, sys
src = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out = [json.loads(l) for l in open(sys.argv[2])]
assert len(src) == len(out) == 3, len(out)
for a, b in zip(src, out):
    assert list(b) == list(a), (list(a), list(b))          # row keys kept, in order
    for k in a:
        if k != "responses": assert a[k] == b[k], k
    assert [r["text"] for r in a["responses"]] == [r["text"] for r in b["responses"]]
    for ra, rb in zip(a["responses"], b["responses"]):
        ok = ra["text"] == a["answer"]
        assert rb["score"] == (1 if ok else 0) and rb["correct"] is ok, rb
        assert rb["seen_keys"] == sorted(["prompt", "response"] + [k for k in a if k not in ("prompt", "responses")]), rb
        for k in ra:
            if k not in ("score", "correct"): assert rb[k] == ra[k], k  # response fields kept
        # the scorer's fields replace old ones and follow the score, in the program's order
        keys = list(rb)
        assert keys[-4:] == ["score", "correct", "seen_keys", "critique"], keys
print("ok")
EOF
) && pass protocol_fields_order_kept || fail protocol_fields_order_kept "$msg"
  [ "$(wc -l < "$D/calls.txt")" -eq 1 ] && pass one_call_per_batch_default \
    || fail one_call_per_batch_default "$(wc -l < "$D/calls.txt") calls"
  grep -q "score: 8 responses | score mean 0.5 min 0 max 1 | correct 0.5000" "$D/s1.err" \
    && pass summary_with_rates || fail summary_with_rates "$(cat "$D/s1.err")"
else
  fail protocol_fields_order_kept "$(cat "$D/s1.err")"
fi
rm -f "$D/calls.txt"
$BIN score --in "$D/multi.jsonl" --scorer "$CHECK" --out "$D/s3.jsonl" --batch-size 3 --quiet \
  && [ "$(wc -l < "$D/calls.txt")" -eq 3 ] && cmp -s "$D/s1.jsonl" "$D/s3.jsonl" \
  && pass batch_size_calls_counted || fail batch_size_calls_counted "$(cat "$D/calls.txt" 2>&1 | wc -l) calls"
# a second scorer in turn under another name keeps the first one's fields
$BIN score --in "$D/s1.jsonl" --scorer "cmd:$PY -c 'import sys; [print(\"{\\\"score\\\": %d}\" % len(l)) for l in sys.stdin]'" \
  --field len --out "$D/s2.jsonl" --quiet \
  && $PY - "$D/s2.jsonl" <<'EOF' && pass field_option_second_scorer || fail field_option_second_scorer "see above"
import json, sys
for l in open(sys.argv[1]):
    for r in json.loads(l)["responses"]:
        assert "score" in r and "correct" in r and r["len"] > 20, r
EOF
# in place (--out = --in) is atomic
cp "$D/multi.jsonl" "$D/inplace.jsonl"
$BIN score --in "$D/inplace.jsonl" --scorer "$CHECK" --out "$D/inplace.jsonl" --quiet \
  && cmp -s "$D/inplace.jsonl" "$D/s1.jsonl" && pass in_place || fail in_place "differs"

# ---- a failing program: exit 2, one message naming the request, no output --------------------
# (shell one-liners: the spec runs under /bin/sh -c)
score_err() { # NAME WANT... -- SPEC [args]: exit 2, one line, no OUT and no OUT.tmp
  local name=$1; shift
  local want=()
  while [ "$1" != "--" ]; do want+=("$1"); shift; done; shift
  rm -f "$D/bad.jsonl" "$D/bad.jsonl.tmp"
  expect_err "$name" "${want[@]}" -- $BIN score --in "$D/multi.jsonl" --out "$D/bad.jsonl" --quiet --scorer "$@"
  if [ -e "$D/bad.jsonl" ] || [ -e "$D/bad.jsonl.tmp" ]; then fail "${name}_no_output" "output left behind"; fi
}
answers() { echo "cat >/dev/null; yes '$1' | head -n $2"; } # N copies of one answer line
score_err exit_status "exited with status 3" "requests 1-8" "$D/multi.jsonl:1 responses[0]" "stderr: oops" -- \
  "cmd:cat >/dev/null; echo oops >&2; exit 3"
rm -f "$D/once"
score_err exit_status_second_batch "status 3" "requests 4-6" "$D/multi.jsonl:3 responses[0]" -- \
  "cmd:cat >/dev/null; if [ -e $D/once ]; then exit 3; fi; touch $D/once; $(answers '{"score": 1}' 3 | sed 's/cat >\/dev\/null; //')" --batch-size 3
score_err timeout "timeout of 1s" "killed" -- "cmd:sleep 30" --timeout 1
score_err too_few_lines "printed 1 JSON line for 8 requests" -- "cmd:echo '{\"score\": 1}'"
score_err too_many_lines "printed 9 JSON lines for 8 requests" -- "cmd:$(answers '{"score": 1}' 9)"
score_err not_json "output line 2" "the answer to $D/multi.jsonl:1 responses[1]" "invalid JSON" -- \
  "cmd:cat >/dev/null; echo '{\"score\": 1}'; echo 'score=1'; yes '{\"score\": 1}' | head -n 6"
score_err missing_score "output line 1" "has no \"score\"" -- "cmd:$(answers '{"correct": true}' 8)"
score_err string_score "\"score\" must be a number, found a string" -- "cmd:$(answers '{"score": "1"}' 8)"
score_err nonfinite_score "\"score\" is not finite" "$D/multi.jsonl:4 responses[3]" -- \
  "cmd:$(answers '{"score": 1}' 7); echo '{\"score\": 1e999}'"
score_err reserved_text_field "field \"text\"" "$D/multi.jsonl:1 responses[0]" -- \
  "cmd:$(answers '{"score": 1, "text": "x"}' 8)"
score_err program_not_found "program \"no-such-program\" not found" -- "cmd:no-such-program --x"
score_err killed_by_signal "killed by signal 9" -- "cmd:kill -9 \$\$"

# ---- bad specs and files ---------------------------------------------------------------------
score_err spec_unknown_kind "unknown kind \"cmdd\"" "did you mean \"cmd\"" -- "cmdd:x"
score_err spec_no_colon "expected logprob:MODEL" -- "logprob"
score_err spec_empty_arg "nothing after \"logprob:\"" -- "logprob:  "
score_err model_bad_dir "scorer model:$D/nope" -- "model:$D/nope"
score_err logprob_bad_dir "scorer logprob:$D/nope" -- "logprob:$D/nope"
echo '{"prompt": "p", "completion": "c"}' > "$D/sft.jsonl"
expect_err rows_without_responses "$D/sft.jsonl:1" "\"responses\"" -- \
  $BIN score --in "$D/sft.jsonl" --scorer "$CHECK" --out "$D/bad.jsonl"
printf '{"prompt": "p", "responses": [{"text": "a"}]}\n{"prompt": "q", "responses": [{"text": 3}]}\n' > "$D/badresp.jsonl"
expect_err response_not_string "$D/badresp.jsonl:2" "responses[0].text" -- \
  $BIN score --in "$D/badresp.jsonl" --scorer "$CHECK" --out "$D/bad.jsonl"
expect_err missing_scorer_flag "--scorer SPEC is required" -- \
  $BIN score --in "$D/multi.jsonl" --out "$D/bad.jsonl"
expect_err field_text "--field text" -- \
  $BIN score --in "$D/multi.jsonl" --scorer "$CHECK" --out "$D/bad.jsonl" --field text

# ---- banned: --------------------------------------------------------------------------------
printf '# words\nDarn\n  heck \n\nbad word\ncafé\n' > "$D/words.txt"
cat > "$D/banned.jsonl" <<'EOF'
{"prompt": "p", "responses": [{"text": "darn it"}, {"text": "DARN, heck! darned hecks"}, {"text": "a bad word and a bad  word"}, {"text": "cafés café café_x xcafé (café)"}, {"text": "clean text"}, {"text": "darn_it darn-it 1darn darn1 ädarn darnä"}, {"text": "heckheck heck.heck"}]}
EOF
if $BIN score --in "$D/banned.jsonl" --scorer "banned:$D/words.txt" --out "$D/banned.out.jsonl" --quiet \
   && $REF banned --in "$D/banned.jsonl" --words "$D/words.txt" --out "$D/banned.ref.jsonl"; then
  msg=$($REF compare "$D/banned.out.jsonl" "$D/banned.ref.jsonl") && pass banned_vs_regex_reference \
    || fail banned_vs_regex_reference "$msg"
  [ "$(tr -d '\n' < "$D/banned.ref.jsonl" | grep -o '"banned_count": [0-9]*' | tr -d 'a-z_": ' | tr -d '\n')" = "1212012" ] \
    && pass banned_hand_counts || fail banned_hand_counts "$(cat "$D/banned.ref.jsonl")"
else
  fail banned_vs_regex_reference "score or reference failed"
fi
printf '# only comments\n\n' > "$D/nowords.txt"
score_err banned_empty_list "lists no word" -- "banned:$D/nowords.txt"
score_err banned_missing_file "banned:$D/nofile.txt" -- "banned:$D/nofile.txt"

# ---- logprob: vs PyTorch --------------------------------------------------------------------
$PY - "$D" <<'EOF'
import json, random, sys
d = sys.argv[1]
random.seed(1)
w = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau".split()
with open(f"{d}/tok.txt", "w") as f:
    for i in range(400):
        f.write(" ".join(random.choice(w) for _ in range(random.randint(3, 12))) + "\n")
with open(f"{d}/lp.jsonl", "w") as f:
    for i in range(7):
        # row 0: a prompt cut to maxT/2; row 1: responses cut at max_len; row 2: a copy
        pr = " ".join(random.choice(w) for _ in range(random.randint(2, 30 if i == 0 else 8)))
        rs = [{"text": " ".join(random.choice(w) for _ in range(random.randint(1, 20 if i == 1 else 6)))}
              for _ in range(3)]
        if i == 2: rs.append(dict(rs[0]))
        f.write(json.dumps({"prompt": pr, "answer": "x", "responses": rs}) + "\n")
EOF
M=$D/model
if $BIN tokenizer train --input "$D/tok.txt" --vocab-size 320 --out "$D/spm" >/dev/null 2>"$D/tok.err" \
   && $PY tools/hf_gpt2.py create --out "$M" --n-layer 2 --n-head 2 --n-embd 32 --n-positions 32 \
        --vocab-size 320 --seed 3 --std 0.3 >/dev/null && cp "$D/spm.model" "$M/tokenizer.model"; then
  $REF logprob --in "$D/lp.jsonl" --model "$M" --out "$D/lp.ref.jsonl" || fail logprob_reference "ref_score.py failed"
  for bs in 0 3; do
    if $BIN score --in "$D/lp.jsonl" --scorer "logprob:$M" --out "$D/lp$bs.jsonl" --batch-size $bs \
         --threads 1 2>"$D/lp$bs.err"; then
      msg=$($REF compare "$D/lp$bs.jsonl" "$D/lp.ref.jsonl" --tol 2e-5) && pass "logprob_vs_pytorch_batch$bs" \
        || fail "logprob_vs_pytorch_batch$bs" "$msg"
    else
      fail "logprob_vs_pytorch_batch$bs" "$(cat "$D/lp$bs.err")"
    fi
  done
  $PY - "$D/lp0.jsonl" <<'EOF' && pass logprob_score_is_logprob_copies_tie || fail logprob_score_is_logprob_copies_tie "see above"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    for x in r["responses"]:
        assert x["score"] == x["logprob"], x
assert any(x["truncated"] for x in rows[0]["responses"]) and any(x["truncated"] for x in rows[1]["responses"])
a, b = rows[2]["responses"][0], rows[2]["responses"][3]
assert a == b, (a, b)
EOF
  grep -q "identical responses scored once" "$D/lp0.err" && pass logprob_dedupe_reported \
    || fail logprob_dedupe_reported "$(cat "$D/lp0.err")"
  mkdir -p "$D/notok" && cp "$M/config.json" "$M/model.safetensors" "$D/notok/"
  score_err logprob_no_tokenizer "has no tokenizer.model" "--tokenizer" -- "logprob:$D/notok"
  $BIN score --in "$D/lp.jsonl" --scorer "logprob:$D/notok" --tokenizer "$D/spm.model" \
    --out "$D/lpt.jsonl" --quiet --threads 1 && cmp -s "$D/lpt.jsonl" "$D/lp0.jsonl" \
    && pass logprob_tokenizer_option || fail logprob_tokenizer_option "differs"
else
  fail logprob_setup "$(cat "$D/tok.err")"
fi

[ $FAILS -eq 0 ]
