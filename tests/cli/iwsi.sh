#!/usr/bin/env bash
# iwsi.sh — `tinyalign curate vote` and `curate dsweight` end to end: the vote on a
# hand-made file (every output field), and against tools/ref_iwsi.py on generated texts;
# dsweight with a tiny random GPT-2 as the loss model against tools/ref_iwsi.py fed by the
# PyTorch log-probs of tools/ref_score.py (both loss scopes, two keep fractions: l, w, DS
# within 2e-5 and the kept set exactly), the kept-only output = the weight-1 rows of --all,
# the comparison filters (vote, groundtruth, entropy, random: counts, seeded determinism);
# bad input (a regex that does not compile or has no group, --keep outside (0, 1], an empty
# or malformed valid set, a tokenizer that differs from the loss model's, unvoted input,
# ds without a model) exits 2 with one message and writes nothing.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_iwsi)
REF="$PY tools/ref_iwsi.py"

out=$($BIN curate --help 2>&1)
{ grep -q "^  vote " <<<"$out" && grep -q "^  dsweight " <<<"$out"; } && pass listed_in_curate_help \
  || fail listed_in_curate_help "$out"
out=$($BIN curate vote --help 2>&1)
grep -qF "The answer is" <<<"$out" && pass vote_help_default_regex || fail vote_help_default_regex "$out"

# ---- vote on a hand-made file ----------------------------------------------------------------
cat > "$D/s.jsonl" <<'EOF'
{"prompt": "q1", "answer": "12", "responses": [{"text": "The answer is 7."}, {"text": "The answer is 12. no, the answer is 5."}, {"text": "The answer is 5", "k": 1}, {"text": "The answer is 7"}, {"text": "hmm"}]}
{"prompt": "q2", "responses": [{"text": "no idea"}, {"text": "none"}]}
{"prompt": "q3 ☃", "answer": -3, "responses": [{"text": "☃ The answer is -3."}, {"text": "The answer is 1,000"}], "id": 9}
EOF
want='{"prompt":"q1","answer":"12","responses":[{"text":"The answer is 7.","answer":"7","consistent":true,"correct":false},{"text":"The answer is 12. no, the answer is 5.","answer":"5","consistent":false,"correct":false},{"text":"The answer is 5","k":1,"answer":"5","consistent":false,"correct":false},{"text":"The answer is 7","answer":"7","consistent":true,"correct":false},{"text":"hmm","answer":null,"consistent":false,"correct":false}],"majority":"7","majority_count":2,"parsed":4,"vote_entropy":0.69314718055994529,"vote_entropy_norm":0.5}
{"prompt":"q3 ☃","answer":-3,"responses":[{"text":"☃ The answer is -3.","answer":"-3","consistent":true,"correct":true},{"text":"The answer is 1,000","answer":"1000","consistent":false,"correct":false}],"id":9,"majority":"-3","majority_count":1,"parsed":2,"vote_entropy":0.69314718055994529,"vote_entropy_norm":1}'
if $BIN curate vote --in "$D/s.jsonl" --out "$D/v.jsonl" 2>"$D/v.err"; then
  diff <(printf '%s\n' "$want") "$D/v.jsonl" >"$D/v.diff" && pass vote_hand_file_exact \
    || fail vote_hand_file_exact "$(cat "$D/v.diff")"
  grep -q "prompts dropped (no answer) 1" "$D/v.err" && pass vote_counts_dropped_prompts \
    || fail vote_counts_dropped_prompts "$(cat "$D/v.err")"
  # voting the vote's output again replaces its fields instead of repeating them
  $BIN curate vote --in "$D/v.jsonl" --out "$D/v2.jsonl" 2>/dev/null && cmp -s "$D/v.jsonl" "$D/v2.jsonl" \
    && pass vote_idempotent || fail vote_idempotent "second vote differs"
else
  fail vote_hand_file_exact "$(cat "$D/v.err")"
fi

# ---- vote vs the Python reference on generated texts ------------------------------------------
$PY - "$D" <<'EOF'
import json, random, sys
d = sys.argv[1]
random.seed(5)
def text():
    r = random.random()
    n = random.choice(["3", "-3", "12", "1,200", "1200", "7.50", "7.5", "0"])
    if r < 0.15: return "I am not sure."
    if r < 0.3: return f"The answer is 4. Then the answer is {n}."
    return random.choice(["", "x = 2. ", "é ☃ "]) + random.choice(["The", "the"]) + f" answer is {n}."
with open(f"{d}/gen.jsonl", "w") as f:
    for i in range(40):
        row = {"prompt": f"q{i}", "responses": [{"text": text()} for _ in range(random.randint(1, 7))]}
        if i % 3: row["answer"] = random.choice(["3", "1200", "7.5", "-3"])
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
EOF
if $BIN curate vote --in "$D/gen.jsonl" --out "$D/genv.jsonl" 2>"$D/genv.err" \
   && $REF vote --in "$D/gen.jsonl" --out "$D/genv.ref.jsonl"; then
  msg=$($PY - "$D/genv.jsonl" "$D/genv.ref.jsonl" <<'EOF'
import json, math, sys
got = [json.loads(l) for l in open(sys.argv[1])]
ref = [json.loads(l) for l in open(sys.argv[2])]
assert len(got) == len(ref) > 20, (len(got), len(ref))
for g, r in zip(got, ref):
    assert g["majority"] == r["majority"] and g["majority_count"] == r["majority_count"], (g, r)
    assert g["parsed"] == r["parsed"] and abs(g["vote_entropy"] - r["vote_entropy"]) < 1e-12
    assert [x["answer"] for x in g["responses"]] == r["answers"], (g, r)
    assert [x["consistent"] for x in g["responses"]] == r["consistent"]
    if r["correct"] is None: assert all("correct" not in x for x in g["responses"])
    else: assert [x["correct"] for x in g["responses"]] == r["correct"], (g, r)
EOF
  ) && pass vote_vs_reference || fail vote_vs_reference "$msg"
else
  fail vote_vs_reference "$(cat "$D/genv.err")"
fi
# a UTF-8 regex with its own group
printf '%s\n' '{"prompt": "p", "responses": [{"text": "答案是12"}, {"text": "答案是-4"}, {"text": "答案是12。"}]}' > "$D/zh.jsonl"
$BIN curate vote --in "$D/zh.jsonl" --out "$D/zh.v.jsonl" --answer-regex '答案是(-?[0-9]+)' 2>/dev/null \
  && grep -q '"majority":"12","majority_count":2' "$D/zh.v.jsonl" && pass vote_utf8_regex \
  || fail vote_utf8_regex "$(cat "$D/zh.v.jsonl" 2>&1)"

# ---- bad input: vote ---------------------------------------------------------------------------
vote_err() { # NAME WANT... -- ARGS
  local name=$1; shift
  local want=()
  while [ "$1" != "--" ]; do want+=("$1"); shift; done; shift
  rm -f "$D/bad.jsonl"
  expect_err "$name" "${want[@]}" -- $BIN curate vote --in "$D/s.jsonl" --out "$D/bad.jsonl" "$@"
  [ -e "$D/bad.jsonl" ] && fail "${name}_no_output" "output written"
}
vote_err vote_regex_does_not_compile "--answer-regex" "does not compile" -- --answer-regex 'The answer is ([0-9]+'
vote_err vote_regex_without_group "--answer-regex" "no capture group" -- --answer-regex 'answer is [0-9]+'
vote_err vote_no_answer_anywhere "no response has an answer" -- --answer-regex 'ZZZ([0-9]+)'
printf '{"prompt": "p", "responses": [{"text": 3}]}\n' > "$D/badrow.jsonl"
expect_err vote_bad_row "badrow.jsonl:1" -- $BIN curate vote --in "$D/badrow.jsonl" --out "$D/bad.jsonl"

# ---- dsweight with a tiny random loss model ------------------------------------------------------
$PY - "$D" <<'EOF'
import json, random, sys
d = sys.argv[1]
random.seed(2)
w = "the answer is one two three four five six seven plus times equals".split()
with open(f"{d}/tok.txt", "w") as f:
    for i in range(300):
        f.write(" ".join(random.choice(w) for _ in range(random.randint(3, 12))) + " 0 1 2 3 4 5 6 7 8 9\n")
with open(f"{d}/valid.jsonl", "w") as f:
    for i in range(5):
        f.write(json.dumps({"prompt": "two plus " + random.choice(w), "completion": " ".join(random.choice(w) for _ in range(random.randint(2, 8))) + " the answer is 5."}) + "\n")
with open(f"{d}/ds_in.jsonl", "w") as f:
    for i in range(12):
        rs = []
        for j in range(random.randint(2, 6)):
            rs.append({"text": " ".join(random.choice(w) for _ in range(random.randint(1, 9))) + f" the answer is {random.choice([3, 4, 4, 5])}."})
        if i == 1: rs.append(dict(rs[0]))
        f.write(json.dumps({"prompt": " ".join(random.choice(w) for _ in range(random.randint(2, 6))), "answer": "4", "responses": rs}) + "\n")
EOF
M=$D/model
if $BIN tokenizer train --input "$D/tok.txt" --vocab-size 300 --out "$D/spm" >/dev/null 2>"$D/tok.err" \
   && $PY tools/hf_gpt2.py create --out "$M" --n-layer 2 --n-head 2 --n-embd 32 --n-positions 48 \
        --vocab-size 300 --seed 4 --std 0.3 >/dev/null && cp "$D/spm.model" "$M/tokenizer.model" \
   && $BIN curate vote --in "$D/ds_in.jsonl" --out "$D/dsv.jsonl" 2>/dev/null; then
  # PyTorch log-probs of every voted response and every valid row
  $PY -c '
import json, sys
with open(sys.argv[2], "w") as o:
    for l in open(sys.argv[1]):
        r = json.loads(l)
        o.write(json.dumps({"prompt": r["prompt"], "responses": [{"text": r["completion"]}]}) + "\n")' \
    "$D/valid.jsonl" "$D/valid_multi.jsonl"
  $PY tools/ref_score.py logprob --in "$D/dsv.jsonl" --model "$M" --out "$D/lp.ref.jsonl" \
    && $PY tools/ref_score.py logprob --in "$D/valid_multi.jsonl" --model "$M" --out "$D/vlp.ref.jsonl" \
    || fail ds_reference "ref_score.py failed"
  for case in "full 0.79" "response 0.5" "full 1"; do
    read -r scope k <<<"$case"
    name=ds_vs_reference_${scope}_k$k
    if $BIN curate dsweight --in "$D/dsv.jsonl" --model "$M" --valid "$D/valid.jsonl" --keep "$k" \
         --loss-scope "$scope" --all --out "$D/ds_$scope$k.jsonl" 2>"$D/ds_$scope$k.err"; then
      $REF ds --voted "$D/dsv.jsonl" --lp "$D/lp.ref.jsonl" --valid-lp "$D/vlp.ref.jsonl" --keep "$k" \
        --scope "$scope" --out "$D/ds_$scope$k.ref.jsonl"
      msg=$($REF compare "$D/ds_$scope$k.jsonl" "$D/ds_$scope$k.ref.jsonl" --tol 2e-5 2>&1) \
        && pass "$name" || fail "$name" "$msg"
    else
      fail "$name" "$(cat "$D/ds_$scope$k.err")"
    fi
  done
  # the reference must not be vacuous: k 0.79 dropped some consistent samples, k 1 none
  $PY - "$D/ds_full0.79.jsonl" "$D/ds_full1.jsonl" <<'EOF' && pass ds_keep_drops_some || fail ds_keep_drops_some "see above"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
ca = [r for r in a if r["consistent"]]
kept = sum(r["weight"] for r in ca)
assert 0 < kept < len(ca), (kept, len(ca))
assert all(r["weight"] == 1 for r in b if r["consistent"]) and all(r["weight"] == 0 for r in b if not r["consistent"])
assert all(r["answer"] == "4" and "majority" in r for r in a)   # the row's fields pass through
EOF
  grep -q "threshold DS" "$D/ds_full0.79.err" && grep -q "DS of the" "$D/ds_full0.79.err" \
    && pass ds_prints_distribution || fail ds_prints_distribution "$(cat "$D/ds_full0.79.err")"
  # kept-only output = the weight-1 rows of --all
  $BIN curate dsweight --in "$D/dsv.jsonl" --model "$M" --valid "$D/valid.jsonl" --keep 0.79 \
    --out "$D/kept.jsonl" 2>/dev/null && grep '"weight":1,' "$D/ds_full0.79.jsonl" | cmp -s - "$D/kept.jsonl" \
    && pass ds_kept_only_equals_weight1_rows || fail ds_kept_only_equals_weight1_rows "differs"
  # tokenizer checks
  $BIN tokenizer train --input "$D/tok.txt" --vocab-size 296 --out "$D/spm2" >/dev/null 2>&1
  expect_err ds_tokenizer_differs "--tokenizer" "differs from the loss model's tokenizer" -- \
    $BIN curate dsweight --in "$D/dsv.jsonl" --model "$M" --valid "$D/valid.jsonl" \
      --tokenizer "$D/spm2.model" --out "$D/bad.jsonl"
  $BIN curate dsweight --in "$D/dsv.jsonl" --model "$M" --valid "$D/valid.jsonl" \
      --tokenizer "$D/spm.model" --keep 0.79 --out "$D/kept2.jsonl" 2>/dev/null \
    && cmp -s "$D/kept.jsonl" "$D/kept2.jsonl" && pass ds_same_tokenizer_accepted \
    || fail ds_same_tokenizer_accepted "differs"
  # bad valid sets
  : > "$D/empty.jsonl"
  expect_err ds_valid_empty "empty.jsonl" -- $BIN curate dsweight --in "$D/dsv.jsonl" --model "$M" \
    --valid "$D/empty.jsonl" --out "$D/bad.jsonl"
  printf '{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n' > "$D/nocomp.jsonl"
  expect_err ds_valid_no_completion "nocomp.jsonl:2" "completion" -- $BIN curate dsweight \
    --in "$D/dsv.jsonl" --model "$M" --valid "$D/nocomp.jsonl" --out "$D/bad.jsonl"
  [ -e "$D/bad.jsonl" ] && fail ds_bad_input_no_output "output written"
else
  fail ds_setup "$(cat "$D/tok.err")"
fi

# ---- the comparison filters (no model) -------------------------------------------------------------
if [ -f "$D/genv.jsonl" ]; then
  $BIN curate dsweight --in "$D/genv.jsonl" --filter vote --all --out "$D/f_vote.jsonl" 2>/dev/null
  # every row of dsv.jsonl has a gold answer (genv.jsonl's do not all)
  $BIN curate dsweight --in "$D/dsv.jsonl" --filter groundtruth --all --out "$D/f_gt.jsonl" 2>/dev/null
  $PY - "$D/genv.jsonl" "$D/f_vote.jsonl" "$D/dsv.jsonl" "$D/f_gt.jsonl" <<'EOF' 2>&1 && pass filters_vote_groundtruth || fail filters_vote_groundtruth "see above"
import json, sys
def check(voted, out, key):
    v = [json.loads(l) for l in open(voted)]
    resp = [(r, x) for r in v for x in r["responses"]]
    a = [json.loads(l) for l in open(out)]
    assert len(a) == len(resp)
    for (r, x), ra in zip(resp, a):
        assert ra["completion"] == x["text"] and ra["prompt"] == r["prompt"]
        assert ra["weight"] == (1 if x.get(key) else 0), (ra, x)
        assert "ds" not in ra and ra["extracted"] == x["answer"]
    return sum(r["weight"] for r in a), len(a)
k, n = check(sys.argv[1], sys.argv[2], "consistent")
assert 0 < k < n
k, n = check(sys.argv[3], sys.argv[4], "correct")
assert 0 < k < n
EOF
  # groundtruth needs gold on every row: genv has rows without it
  expect_err filter_groundtruth_needs_gold "no \"correct\" mark" -- $BIN curate dsweight \
    --in "$D/genv.jsonl" --filter groundtruth --out "$D/bad.jsonl"
  $BIN curate dsweight --in "$D/genv.jsonl" --filter entropy --max-entropy 0.5 --all --out "$D/f_ent.jsonl" 2>/dev/null
  $PY - "$D/genv.jsonl" "$D/f_ent.jsonl" <<'EOF' 2>&1 && pass filter_entropy || fail filter_entropy "see above"
import json, sys
v = [json.loads(l) for l in open(sys.argv[1])]
a = [json.loads(l) for l in open(sys.argv[2])]
want = [1 if x["consistent"] and r["vote_entropy_norm"] is not None and r["vote_entropy_norm"] <= 0.5 else 0
        for r in v for x in r["responses"]]
assert [r["weight"] for r in a] == want and 0 < sum(want) < sum(x["consistent"] for r in v for x in r["responses"])
EOF
  for s in 1 1 2; do
    $BIN curate dsweight --in "$D/genv.jsonl" --filter random --keep 0.6 --seed $s --all \
      --out "$D/f_rand$s.jsonl" 2>/dev/null; cp "$D/f_rand$s.jsonl" "$D/f_rand$s.b.jsonl.$RANDOM"
  done
  $PY - "$D" <<'EOF' 2>&1 && pass filter_random_seeded || fail filter_random_seeded "see above"
import glob, json, math, sys
d = sys.argv[1]
w1 = [[json.loads(l)["weight"] for l in open(p)] for p in sorted(glob.glob(f"{d}/f_rand1.b.jsonl.*"))]
w2 = [json.loads(l)["weight"] for l in open(f"{d}/f_rand2.jsonl")]
cons = [json.loads(l)["consistent"] for l in open(f"{d}/f_vote.jsonl")]
n = sum(cons)
assert len(w1) == 2 and w1[0] == w1[1], "same seed, same rows"
assert w1[0] != w2, "another seed, other rows"
for w in (w1[0], w2):
    assert sum(w) == math.floor(n * 0.6), (sum(w), n)
    assert all(c or not k for c, k in zip(cons, w)), "only consistent samples kept"
EOF
fi

# ---- bad input: dsweight ------------------------------------------------------------------------------
ds_err() { # NAME WANT... -- ARGS
  local name=$1; shift
  local want=()
  while [ "$1" != "--" ]; do want+=("$1"); shift; done; shift
  rm -f "$D/bad.jsonl"
  expect_err "$name" "${want[@]}" -- $BIN curate dsweight --out "$D/bad.jsonl" "$@"
  [ -e "$D/bad.jsonl" ] && fail "${name}_no_output" "output written"
}
ds_err ds_keep_zero "--keep" "(0, 1]" -- --in "$D/v.jsonl" --filter random --keep 0
ds_err ds_keep_above_one "--keep" "(0, 1]" -- --in "$D/v.jsonl" --filter random --keep 1.5
ds_err ds_needs_model "--filter ds needs --model" -- --in "$D/v.jsonl"
ds_err ds_model_without_valid "--model and --valid" -- --in "$D/v.jsonl" --filter vote --model "$D/model"
ds_err ds_entropy_needs_max "--max-entropy" -- --in "$D/v.jsonl" --filter entropy
ds_err ds_unvoted_input "s.jsonl:1" "run curate vote first" -- --in "$D/s.jsonl" --filter vote
ds_err ds_bad_model "--model" -- --in "$D/v.jsonl" --model "$D/nope" --valid "$D/valid.jsonl" --tokenizer "$D/spm.model"
[ "$FAILS" -eq 0 ]
