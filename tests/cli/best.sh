#!/usr/bin/env bash
# best.sh — `tinyalign curate best` on hand-made scored files, every output line compared
# exactly with the expected one: top-K with ties in file order, threshold, both, an
# alternative score field, weights from the response or the row, a prompt field, --unique,
# empty responses passed over, the summary; bad input exits 2 with one message naming
# FILE:LINE and responses[J], and writes nothing.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_best)

cat > "$D/scored.jsonl" <<'EOF2'
{"prompt": "p1", "answer": "a", "responses": [{"text": "x", "score": 1, "w": 0.5}, {"text": "y", "score": 3, "w": 2}, {"text": "z", "score": 3, "w": 1}], "filled_prompt": "P1!"}
{"prompt": "p2", "responses": [{"text": "u", "score": -1, "judge": 5}, {"text": "v", "score": -2, "judge": 7}], "w": 0.25, "filled_prompt": "P2!"}
{"prompt": "p3", "responses": [{"text": "k", "score": 2, "judge": 1, "w": 0}, {"text": "k", "score": 2, "judge": 1}, {"text": "m", "score": 0.5, "judge": 0}], "filled_prompt": "P3!"}
EOF2

check() { # NAME EXPECTED_FILE ARGS...: curate best output equals the expected lines exactly
  local name=$1 want=$2; shift 2
  if $BIN curate best --in "$D/scored.jsonl" --out "$D/$name.jsonl" "$@" 2>"$D/$name.err"; then
    if diff <(printf '%s\n' "$want") "$D/$name.jsonl" >"$D/$name.diff"; then pass "$name"
    else fail "$name" "$(cat "$D/$name.diff")"; fi
  else
    fail "$name" "$(cat "$D/$name.err")"
  fi
}
# top 1: y and z tie at 3 -> y (earlier in the file)
check top1_ties_file_order '{"prompt":"p1","completion":"y","score":3,"answer":"a","filled_prompt":"P1!"}
{"prompt":"p2","completion":"u","score":-1,"w":0.25,"filled_prompt":"P2!"}
{"prompt":"p3","completion":"k","score":2,"filled_prompt":"P3!"}'
check top2 '{"prompt":"p1","completion":"y","score":3,"answer":"a","filled_prompt":"P1!"}
{"prompt":"p1","completion":"z","score":3,"answer":"a","filled_prompt":"P1!"}
{"prompt":"p2","completion":"u","score":-1,"w":0.25,"filled_prompt":"P2!"}
{"prompt":"p2","completion":"v","score":-2,"w":0.25,"filled_prompt":"P2!"}
{"prompt":"p3","completion":"k","score":2,"filled_prompt":"P3!"}
{"prompt":"p3","completion":"k","score":2,"filled_prompt":"P3!"}' --top 2
check top2_unique '{"prompt":"p1","completion":"y","score":3,"answer":"a","filled_prompt":"P1!"}
{"prompt":"p1","completion":"z","score":3,"answer":"a","filled_prompt":"P1!"}
{"prompt":"p2","completion":"u","score":-1,"w":0.25,"filled_prompt":"P2!"}
{"prompt":"p2","completion":"v","score":-2,"w":0.25,"filled_prompt":"P2!"}
{"prompt":"p3","completion":"k","score":2,"filled_prompt":"P3!"}
{"prompt":"p3","completion":"m","score":0.5,"filled_prompt":"P3!"}' --top 2 --unique
check threshold_all_above '{"prompt":"p1","completion":"y","score":3,"answer":"a","filled_prompt":"P1!"}
{"prompt":"p1","completion":"z","score":3,"answer":"a","filled_prompt":"P1!"}
{"prompt":"p3","completion":"k","score":2,"filled_prompt":"P3!"}
{"prompt":"p3","completion":"k","score":2,"filled_prompt":"P3!"}' --top 0 --threshold 2
grep -q "prompts kept 2, dropped 1 (1 with no response >= 2)" "$D/threshold_all_above.err" \
  && pass best_summary || fail best_summary "$(cat "$D/threshold_all_above.err")"
check threshold_and_top '{"prompt":"p1","completion":"y","score":3,"answer":"a","filled_prompt":"P1!"}
{"prompt":"p3","completion":"k","score":2,"filled_prompt":"P3!"}' --threshold 1.5
# rows 2-3 (p1's responses have no "judge"): rank by judge, weight from the row, filled prompt
sed -n '2,3p' "$D/scored.jsonl" > "$D/scored23.jsonl"
$BIN curate best --in "$D/scored23.jsonl" --out "$D/sw.jsonl" --score-field judge --weight-field w \
  --prompt-field filled_prompt --threshold 1 2>"$D/sw.err" \
  && diff <(printf '%s\n' '{"prompt":"P2!","completion":"v","weight":0.25,"judge":7,"w":0.25,"filled_prompt":"P2!"}' \
               '{"prompt":"P3!","completion":"k","weight":0,"judge":1,"filled_prompt":"P3!"}') "$D/sw.jsonl" >/dev/null \
  && pass weight_from_row_prompt_field || fail weight_from_row_prompt_field "$(cat "$D/sw.err" "$D/sw.jsonl")"
check weight_from_response '{"prompt":"p1","completion":"y","weight":2,"score":3,"answer":"a","filled_prompt":"P1!"}' \
  --weight-field w --threshold 3

# ---- bad input -------------------------------------------------------------------------------
best_err() { # NAME WANT... -- ARGS: exit 2, one line, nothing written
  local name=$1; shift
  local want=()
  while [ "$1" != "--" ]; do want+=("$1"); shift; done; shift
  rm -f "$D/bad.jsonl"
  expect_err "$name" "${want[@]}" -- $BIN curate best --out "$D/bad.jsonl" "$@"
  [ -e "$D/bad.jsonl" ] && fail "${name}_no_output" "output written"
}
best_err missing_score_field "$D/scored.jsonl:1" "responses[0] has no \"judge\"" -- \
  --in "$D/scored.jsonl" --score-field judge
printf '{"prompt": "q", "responses": [{"text": "a", "score": 1}, {"text": "b"}]}\n' > "$D/noscore.jsonl"
best_err missing_score "$D/noscore.jsonl:1" "responses[1] has no \"score\"" -- --in "$D/noscore.jsonl"
printf '{"prompt": "q", "responses": [{"text": "a", "s": "high"}]}\n' > "$D/strscore.jsonl"
best_err score_not_number "$D/strscore.jsonl:1" "responses[0]" "\"s\" must be a finite number" -- \
  --in "$D/strscore.jsonl" --score-field s
best_err negative_weight "$D/scored.jsonl:2" "weights must be >= 0" -- \
  --in "$D/scored.jsonl" --weight-field score --top 1
best_err nothing_selected "no response selected" "nothing written" -- \
  --in "$D/scored.jsonl" --threshold 100
best_err top0_needs_threshold "--top 0" "--threshold" -- --in "$D/scored.jsonl" --top 0
best_err prompt_field_missing "$D/scored.jsonl:1" "--prompt-field nope" -- \
  --in "$D/scored.jsonl" --prompt-field nope
best_err missing_input "$D/nonexistent.jsonl" -- --in "$D/nonexistent.jsonl"
printf '{"prompt": "q", "responses": [{"text": "a", "score": 1, "w": -1}]}\n' > "$D/negw.jsonl"
best_err negative_weight_field "$D/negw.jsonl:1" "--weight-field w = -1" -- --in "$D/negw.jsonl" --weight-field w
printf '{"prompt": "q", "responses": [{"text": "a", "score": 1}], "w": "x"}\n' > "$D/strw.jsonl"
best_err weight_not_number "$D/strw.jsonl:1" "\"w\" must be a finite number" -- --in "$D/strw.jsonl" --weight-field w

[ $FAILS -eq 0 ]
