#!/usr/bin/env bash
# anchors.sh — `tinyalign curate anchors` (AnchorAlign pairs): on a hand-made judged file,
# every rule's output compared line by line with the expected pairs (CC best vs worst with
# ties to the earlier response, V best correct vs highest / lowest incorrect, CI anchor vs
# highest / lowest incorrect, anchors filtered by score and label, --ci skip, a CC prompt with
# all scores equal, a prompt whose responses are all unparseable, judge-only, row fields kept
# and output names replaced); the summary JSON and the stderr table; a random file against
# tools/ref_anchors.py (an independent Python reimplementation) for every rules / pick
# combination; determinism under a seed; the pairs load as DPO data; bad input (missing or
# mistyped score / correct, K = 1, anchors without a minimum score, no pairs) exits 2 with
# one message naming FILE:LINE and writes neither the pairs nor the summary.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_anchors)

# p1 CC (5 ties: the earlier b1), p2 V, p3 CI with anchors, p4 CI all unparseable (no
# anchor), p5 CC all equal; p2 has a row field named like an output field.
cat > "$D/in.jsonl" <<'EOF'
{"prompt": "p1", "label": "yes", "responses": [{"text": "a1", "score": 3, "correct": true}, {"text": "b1", "score": 5, "correct": true}, {"text": "c1", "score": 1, "correct": true}, {"text": "d1", "score": 5, "correct": true}]}
{"prompt": "p2", "label": "no", "responses": [{"text": "a", "score": 4, "correct": false}, {"text": "b", "score": 2, "correct": true}, {"text": "c", "score": 5, "correct": false}, {"text": "d", "score": 3, "correct": true}, {"text": "e", "score": 1, "correct": false}], "category": "user"}
{"prompt": "p3", "label": "yes", "responses": [{"text": "x", "score": 1, "correct": false}, {"text": "y", "score": 2, "correct": false}]}
{"prompt": "p4", "responses": [{"text": "??", "score": 0, "correct": false}, {"text": "!!", "score": 0, "correct": false}]}
{"prompt": "p5", "responses": [{"text": "t1", "score": 2, "correct": true}, {"text": "t2", "score": 2, "correct": true}]}
EOF
# p3's anchors: ax and aw tie at 4 (ax is earlier), ay has the wrong label, az is below 3;
# p9 is in no input row.
cat > "$D/anc.jsonl" <<'EOF'
{"prompt": "p3", "filled_prompt": "the answer is yes: p3", "responses": [{"text": "ax", "score": 4, "correct": true}, {"text": "ay", "score": 5, "correct": false}, {"text": "az", "score": 2, "correct": true}, {"text": "aw", "score": 4, "correct": true}]}
{"prompt": "p9", "responses": [{"text": "q", "score": 4, "correct": true}]}
EOF

P1='{"prompt":"p1","chosen":"b1","rejected":"c1","chosen_score":5,"rejected_score":1,"category":"CC","chosen_correct":true,"rejected_correct":true,"chosen_from":"sample","label":"yes"}'
P2='{"prompt":"p2","chosen":"d","rejected":"c","chosen_score":3,"rejected_score":5,"category":"V","chosen_correct":true,"rejected_correct":false,"chosen_from":"sample","label":"no"}'
P2_LOW='{"prompt":"p2","chosen":"d","rejected":"e","chosen_score":3,"rejected_score":1,"category":"V","chosen_correct":true,"rejected_correct":false,"chosen_from":"sample","label":"no"}'
P3='{"prompt":"p3","chosen":"ax","rejected":"y","chosen_score":4,"rejected_score":2,"category":"CI","chosen_correct":true,"rejected_correct":false,"chosen_from":"anchor","label":"yes"}'
P3_LOW='{"prompt":"p3","chosen":"ax","rejected":"x","chosen_score":4,"rejected_score":1,"category":"CI","chosen_correct":true,"rejected_correct":false,"chosen_from":"anchor","label":"yes"}'
P3_ANY='{"prompt":"p3","chosen":"ay","rejected":"y","chosen_score":5,"rejected_score":2,"category":"CI","chosen_correct":false,"rejected_correct":false,"chosen_from":"anchor","label":"yes"}'
ANC=(--anchors "$D/anc.jsonl" --anchor-min-score 3)

check() { # NAME EXPECTED ARGS...: the pairs equal the expected lines exactly
  local name=$1 want=$2; shift 2
  if $BIN curate anchors --in "$D/in.jsonl" --out "$D/$name.jsonl" "$@" 2>"$D/$name.err"; then
    if diff <(printf '%s\n' "$want") "$D/$name.jsonl" >"$D/$name.diff"; then pass "$name"
    else fail "$name" "$(cat "$D/$name.diff")"; fi
  else
    fail "$name" "$(cat "$D/$name.err")"
  fi
}
check default_rules "$P1
$P2
$P3" "${ANC[@]}"
check v_rejected_lowest "$P1
$P2_LOW
$P3" "${ANC[@]}" --v-rejected lowest
check ci_rejected_lowest "$P1
$P2
$P3_LOW" "${ANC[@]}" --ci-rejected lowest
check anchor_any_label "$P1
$P2
$P3_ANY" "${ANC[@]}" --anchor-any-label
check anchor_min_score_filters "$P1
$P2" --anchors "$D/anc.jsonl" --anchor-min-score 4.5
check ci_skip "$P1
$P2" --ci skip
check no_anchor_file "$P1
$P2"
check judge_only "$P1
"'{"prompt":"p2","chosen":"c","rejected":"e","chosen_score":5,"rejected_score":1,"category":"V","chosen_correct":false,"rejected_correct":false,"chosen_from":"sample","label":"no"}
{"prompt":"p3","chosen":"y","rejected":"x","chosen_score":2,"rejected_score":1,"category":"CI","chosen_correct":false,"rejected_correct":false,"chosen_from":"sample","label":"yes"}' \
  --rules judge-only
# correctness-only: only p2 (V) has a pair; which one is the seeded draw (checked against the
# reference below); here: a correct chosen, an incorrect rejected
$BIN curate anchors --in "$D/in.jsonl" --out "$D/co.jsonl" --rules correctness-only 2>"$D/co.err" \
  && [ "$(wc -l <"$D/co.jsonl")" = 1 ] && grep -q '"prompt":"p2".*"chosen_correct":true,"rejected_correct":false' "$D/co.jsonl" \
  && pass correctness_only_v_only || fail correctness_only_v_only "$(cat "$D/co.err" "$D/co.jsonl")"

# the summary JSON and the table on stderr
$PY - "$D/default_rules.summary.json" <<'EOF' && pass summary_json || fail summary_json "$(cat "$D/default_rules.summary.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["categories"] == {"CC": 2, "V": 1, "CI": 2}, s["categories"]
assert s["pairs"] == {"CC": 1, "V": 1, "CI": 1, "total": 3}, s["pairs"]
assert s["proportions"] == {"CC": 0.4, "V": 0.2, "CI": 0.4}
assert s["skipped"] == {"tie": 1, "identical": 0, "ci_skip": 0, "ci_no_anchor": 1, "one_sided": 0}
assert s["anchor_file"] == {"rows": 2, "responses": 5, "kept": 3, "below_min_score": 1,
                            "wrong_label": 1, "kept_unmatched": 1}, s["anchor_file"]
assert (s["k_min"], s["k_max"], s["prompts"], s["responses"]) == (2, 5, 5, 15)
assert s["rules"] == "anchor" and s["options"]["v_rejected"] == "highest"
assert s["options"]["anchor_min_score"] == 3 and s["mean_chosen_score"] == 4
EOF
err=$(cat "$D/default_rules.err")
grep -qE '^  CC +2 +40\.0% +1$' <<<"$err" && grep -qE '^  V +1 +20\.0% +1$' <<<"$err" \
  && grep -qE '^  CI +2 +40\.0% +1  \(1 without a kept anchor\)$' <<<"$err" \
  && grep -q "1 prompts with all scores equal" <<<"$err" && grep -q "kept 3 (score >= 3, correct)" <<<"$err" \
  && pass stderr_table || fail stderr_table "$err"
$BIN curate anchors --in "$D/in.jsonl" --out "$D/s.jsonl" --summary "$D/elsewhere.json" 2>/dev/null \
  && [ -s "$D/elsewhere.json" ] && [ ! -e "$D/s.summary.json" ] && pass summary_path_option \
  || fail summary_path_option "no $D/elsewhere.json"

# ---- a random file against the Python reference, every combination --------------------------
$PY - "$D" <<'EOF'
import json, random, sys
d = sys.argv[1]
rng = random.Random(7)
rows, anc = [], []
for i in range(300):
    k = rng.randint(2, 8) if i % 100 else 70  # a few prompts beyond the rule's stack buffer
    mode = rng.random()
    rs = []
    for j in range(k):
        ok = rng.random() < (0.9 if mode < 0.3 else 0.1 if mode > 0.7 else 0.5)
        t = rng.choice(["same", f"t{i}-{j}"]) if rng.random() < 0.2 else f"t{i}-{j}"
        rs.append({"text": t, "score": rng.randint(0, 5) + rng.choice([0, 0.5]), "correct": ok})
    rows.append({"prompt": f"q{i % 280}", "id": i, "responses": rs})
    if rng.random() < 0.6:
        anc.append({"prompt": f"q{i % 280}", "responses": [
            {"text": rng.choice(["same", f"a{i}-{j}"]), "score": rng.randint(0, 5),
             "correct": rng.random() < 0.8} for j in range(rng.randint(1, 4))]})
with open(f"{d}/rand.jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
with open(f"{d}/rand_anc.jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in anc)
EOF
bad=""
combo() { # ARGS...: C and the reference agree exactly
  $BIN curate anchors --in "$D/rand.jsonl" --out "$D/rc.jsonl" "$@" 2>"$D/rc.err" \
    && $PY tools/ref_anchors.py --in "$D/rand.jsonl" --out "$D/rp.jsonl" "$@" >/dev/null \
    && $PY tools/ref_curate.py compare "$D/rc.jsonl" "$D/rp.jsonl" --tol 0 >/dev/null 2>&1 \
    || bad="$bad [$*]"
}
for v in highest lowest random; do
  for c in highest lowest random; do
    combo --anchors "$D/rand_anc.jsonl" --anchor-min-score 3 --v-rejected $v --ci-rejected $c --seed 3
  done
done
combo --anchors "$D/rand_anc.jsonl" --anchor-min-score 2 --anchor-any-label
combo --ci skip
combo --rules judge-only
combo --rules correctness-only
combo --rules correctness-only --seed 12345
[ -z "$bad" ] && pass random_file_equals_reference || fail random_file_equals_reference "differ:$bad"

# determinism: the same seed gives the same bytes; another seed other random picks
args=(--in "$D/rand.jsonl" --rules correctness-only)
$BIN curate anchors "${args[@]}" --out "$D/s1.jsonl" --seed 9 2>/dev/null
$BIN curate anchors "${args[@]}" --out "$D/s2.jsonl" --seed 9 2>/dev/null
$BIN curate anchors "${args[@]}" --out "$D/s3.jsonl" --seed 10 2>/dev/null
cmp -s "$D/s1.jsonl" "$D/s2.jsonl" && ! cmp -s "$D/s1.jsonl" "$D/s3.jsonl" \
  && pass deterministic_under_seed || fail deterministic_under_seed "seed 9 twice differs, or seed 10 equals it"

# the pairs are DPO data: the preference loader reads them (extra fields ignored)
for i in $(seq 40); do echo "p$i a b c d e x y ax aw t1 t2 yes no ?? !!"; done > "$D/corpus.txt"
if $BIN tokenizer train --input "$D/corpus.txt" --out "$D/spm" --vocab-size 40 --byte-fallback 0 \
     >"$D/spm.log" 2>&1; then
  cat > "$D/dpo.json" <<EOF
{"run": {"name": "a", "out_dir": "$D/dpo", "seed": 1, "threads": 1},
 "model": {"n_layer": 1, "n_head": 2, "d_model": 16, "max_seq_len": 32},
 "tokenizer": {"type": "sentencepiece", "model": "$D/spm.model"},
 "data": {"format": "preference", "train": "$D/default_rules.jsonl", "max_len": 16, "max_prompt_len": 8},
 "objective": {"type": "dpo"},
 "train": {"batch_size": 2, "max_steps": 2, "log_every": 1}}
EOF
  $BIN train "$D/dpo.json" --quiet >"$D/dpo.log" 2>&1 && grep -q '"kind": "train"' "$D/dpo/metrics.jsonl" \
    && pass pairs_load_as_dpo_data || fail pairs_load_as_dpo_data "$(tail -3 "$D/dpo.log")"
else
  fail pairs_load_as_dpo_data "tokenizer training failed: $(tail -2 "$D/spm.log")"
fi

# ---- bad input -------------------------------------------------------------------------------
anc_err() { # NAME WANT... -- ARGS: exit 2, one line, neither pairs nor summary written
  local name=$1; shift
  local want=()
  while [ "$1" != "--" ]; do want+=("$1"); shift; done; shift
  rm -f "$D/bad.jsonl" "$D/bad.summary.json"
  expect_err "$name" "${want[@]}" -- $BIN curate anchors --out "$D/bad.jsonl" "$@"
  [ -e "$D/bad.jsonl" ] || [ -e "$D/bad.summary.json" ] && fail "${name}_no_output" "output written"
}
printf '{"prompt": "q", "responses": [{"text": "a", "score": 1, "correct": true}, {"text": "b", "correct": false}]}\n' > "$D/noscore.jsonl"
anc_err missing_score "$D/noscore.jsonl:1" "responses[1] has no \"score\"" -- --in "$D/noscore.jsonl"
printf '{"prompt": "q", "responses": [{"text": "a", "score": 1, "correct": true}, {"text": "b", "score": 2}]}\n' > "$D/nocorrect.jsonl"
anc_err missing_correct "$D/nocorrect.jsonl:1" "responses[1] has no \"correct\"" -- --in "$D/nocorrect.jsonl"
printf '{"prompt": "q", "responses": [{"text": "a", "score": 1, "correct": "yes"}, {"text": "b", "score": 2, "correct": false}]}\n' > "$D/strcorrect.jsonl"
anc_err correct_not_boolean "$D/strcorrect.jsonl:1" "responses[0]" "\"correct\" must be a boolean" "found a string" -- \
  --in "$D/strcorrect.jsonl"
printf '{"prompt": "q", "responses": [{"text": "a", "score": "5", "correct": true}, {"text": "b", "score": 2, "correct": false}]}\n' > "$D/strscore.jsonl"
anc_err score_not_number "$D/strscore.jsonl:1" "score" "must be a number, found a string" -- --in "$D/strscore.jsonl"
{ head -1 "$D/in.jsonl"; printf '{"prompt": "q", "responses": [{"text": "a", "score": 1, "correct": true}]}\n'; } > "$D/k1.jsonl"
anc_err k_equals_1 "$D/k1.jsonl:2" "1 response" "K >= 2" -- --in "$D/k1.jsonl"
anc_err anchors_need_min_score "--anchors needs --anchor-min-score" -- --in "$D/in.jsonl" --anchors "$D/anc.jsonl"
anc_err anchors_with_baseline "--anchors applies to --rules anchor" -- --in "$D/in.jsonl" "${ANC[@]}" --rules judge-only
printf '{"prompt": "p3", "responses": [{"text": "ax", "score": 4}]}\n' > "$D/anc_nocorrect.jsonl"
anc_err anchor_missing_correct "$D/anc_nocorrect.jsonl:1" "responses[0] has no \"correct\"" -- \
  --in "$D/in.jsonl" --anchors "$D/anc_nocorrect.jsonl" --anchor-min-score 3
anc_err correct_field_missing "$D/in.jsonl:1" "responses[0] has no \"ok\"" -- --in "$D/in.jsonl" --correct-field ok
sed -n '4,5p' "$D/in.jsonl" > "$D/nopairs.jsonl"
anc_err no_pairs "no pairs" "CC 1, V 0, CI 1" "nothing written" -- --in "$D/nopairs.jsonl"
anc_err bad_rules "--rules \"judge\"" "anchor, judge-only or correctness-only" -- --in "$D/in.jsonl" --rules judge
anc_err summary_is_input "--summary must differ" -- --in "$D/in.jsonl" --summary "$D/in.jsonl"
anc_err missing_input "$D/nonexistent.jsonl" -- --in "$D/nonexistent.jsonl"

[ $FAILS -eq 0 ]
