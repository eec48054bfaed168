#!/usr/bin/env bash
# curate.sh — end-to-end tests of `tinyalign curate deviation|pairs|divpo|diversity` on the
# synthetic diversity task (tools/gen_diversity_task.py), every output cross-checked with
# tools/ref_curate.py, an independent numpy reimplementation of SEEDS 2.3 / 2.8 / 2.6:
# deviation fields and weights to 1e-9, pairs and DivPO picks exactly (the reference
# replays tinyalign's RNG), metrics to 1e-7; the model: source and the logprob criterion
# against a PyTorch GPT-2 (tools/hf_gpt2.py) on a random model; summaries on stderr;
# determinism per seed; a DDPO training run on the pairs; bad input exits 2 with one
# message naming FILE:LINE and leaves no output. Prints one PASS/FAIL line per case.
# Env: TA_BUILD (default build), PYTHON (default /usr/bin/python3), TA_REF (scratch).
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_curate)
REF="$PY tools/ref_curate.py"

# ---- help ------------------------------------------------------------------------------
ok=1
for s in deviation pairs divpo diversity; do
  out=$($BIN curate $s --help 2>&1); rc=$?
  { [ $rc -eq 0 ] && grep -q "usage: tinyalign curate $s" <<<"$out" && grep -q "field:NAME" <<<"$out"; } \
    || { ok=0; fail help "curate $s --help: rc $rc"; }
done
$BIN curate --help | grep -q "divpo" || { ok=0; fail help "curate --help lacks divpo"; }
[ $ok -eq 1 ] && pass help
$BIN --help | grep -q "curate " && pass listed_in_main_help || fail listed_in_main_help "no curate"

# ---- data -------------------------------------------------------------------------------
$PY tools/gen_diversity_task.py --out "$D/task.jsonl" --test-out "$D/test.jsonl" \
  --prompts-per-sum 3 --seed 1 >/dev/null || fail gen_task "gen_diversity_task.py failed"
n=$(wc -l < "$D/task.jsonl")
[ "$n" -eq 42 ] && [ "$(wc -l < "$D/test.jsonl")" -eq 8 ] && pass gen_diversity_task \
  || fail gen_diversity_task "$n prompts"

# compare NAME OUT REF TOL: the two JSONL files agree
compare() {
  local msg
  if msg=$($REF compare "$2" "$3" --tol "$4" 2>&1); then pass "$1"; else fail "$1" "$msg"; fi
}

# ---- deviation --------------------------------------------------------------------------
i=0
for args in "" "--source field:embedding --source field:style_embedding" "--source lexical" \
            "--source lexical --source field:style_embedding --source field:embedding"; do
  i=$((i + 1))
  $BIN curate deviation --in "$D/task.jsonl" --out "$D/dev$i.jsonl" $args 2>"$D/dev$i.err" \
    && $REF deviation --in "$D/task.jsonl" --out "$D/dev$i.ref.jsonl" $args \
    && compare "deviation_vs_python_$i" "$D/dev$i.jsonl" "$D/dev$i.ref.jsonl" 1e-9 \
    || fail "deviation_vs_python_$i" "$(cat "$D/dev$i.err")"
done
msg=$($PY - "$D/dev2.jsonl" <<'EOF'
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    w = [r["weight"] for r in d["responses"]]
    assert abs(sum(w) / len(w) - 1) < 1e-12 or sum(w) == 0, (d["prompt"], w)
    for r in d["responses"]:
        assert "deviation/field:embedding" in r and "deviation/field:style_embedding" in r
        assert "valid" in r and "rank" in r  # the user's fields are kept
print("ok")
EOF
) && pass deviation_weights_mean_one_fields_kept || fail deviation_weights_mean_one_fields_kept "$msg"
grep -q "curate deviation: 42 prompts, 504 responses" "$D/dev1.err" && pass deviation_summary \
  || fail deviation_summary "$(cat "$D/dev1.err")"

# ---- pairs ------------------------------------------------------------------------------
i=0
for args in "" "--source field:embedding --source field:style_embedding --gap 1" "--gap -1 --seed 3" \
            "--source lexical --gap 0 --max-pairs-per-prompt 2 --sort-with-score" \
            "--source none --gap 10" "--min-weight 0.2 --seed 9"; do
  i=$((i + 1))
  $BIN curate pairs --in "$D/task.jsonl" --out "$D/pairs$i.jsonl" $args 2>"$D/pairs$i.err" \
    && $REF pairs --in "$D/task.jsonl" --out "$D/pairs$i.ref.jsonl" $args \
    && compare "pairs_vs_python_$i" "$D/pairs$i.jsonl" "$D/pairs$i.ref.jsonl" 1e-9 \
    || fail "pairs_vs_python_$i" "$(cat "$D/pairs$i.err")"
done
# weights taken from curate deviation's "weight" fields
$BIN curate pairs --in "$D/dev1.jsonl" --out "$D/pairs_w.jsonl" 2>"$D/pairs_w.err" \
  && $REF pairs --in "$D/dev1.jsonl" --out "$D/pairs_w.ref.jsonl" \
  && compare pairs_own_weight_fields "$D/pairs_w.jsonl" "$D/pairs_w.ref.jsonl" 1e-12 \
  || fail pairs_own_weight_fields "$(cat "$D/pairs_w.err")"
grep -q "computed over ALL of a prompt's responses" "$D/pairs_w.err" && pass pairs_own_weights_noted \
  || fail pairs_own_weights_noted "$(cat "$D/pairs_w.err")"
e="$D/pairs1.err"
{ grep -q "pairs per prompt:" "$e" && grep -q "chosen weight:" "$e" && grep -q "curate pairs: 42 prompts" "$e"; } \
  && pass pairs_summary_histograms || fail pairs_summary_histograms "$(cat "$e")"
grep -q "floored at 0.2" "$D/pairs6.err" && pass pairs_summary_floor || fail pairs_summary_floor "$(cat "$D/pairs6.err")"
# the share of zero-weight chosen responses, as counted in the written pairs
for i in 1 2 6; do
  want=$($PY -c 'import json,sys; w=[json.loads(l)["weight"] for l in open(sys.argv[1])]; z=sum(x == 0 for x in w); print("chosen weight 0 in %d of %d pairs (%.1f%%)" % (z, len(w), 100.0 * z / len(w)))' "$D/pairs$i.jsonl")
  grep -qF "$want" "$D/pairs$i.err" && pass "pairs_summary_zero_weight_share_$i" \
    || fail "pairs_summary_zero_weight_share_$i" "want \"$want\" in: $(cat "$D/pairs$i.err")"
done
grep -q "chosen weight 0 in 0 of" "$D/pairs6.err" && pass pairs_floor_leaves_no_zero_weight \
  || fail pairs_floor_leaves_no_zero_weight "$(cat "$D/pairs6.err")"
$BIN curate pairs --in "$D/task.jsonl" --out "$D/again.jsonl" 2>/dev/null
$BIN curate pairs --in "$D/task.jsonl" --out "$D/seed2.jsonl" --seed 2 2>/dev/null
{ cmp -s "$D/again.jsonl" "$D/pairs1.jsonl" && ! cmp -s "$D/seed2.jsonl" "$D/pairs1.jsonl"; } \
  && pass pairs_deterministic_per_seed || fail pairs_deterministic_per_seed "same seed differs or other seed equal"
msg=$($PY - "$D/pairs1.jsonl" "$D/task.jsonl" <<'EOF'
import json, sys
data = {}
for l in open(sys.argv[2]):
    d = json.loads(l)
    data.setdefault(d["prompt"], []).append(d)
seen = {}
for l in open(sys.argv[1]):
    p = json.loads(l)
    assert p["chosen_score"] > p["rejected_score"] and p["chosen"] != p["rejected"]
    assert list(p) == ["prompt", "chosen", "rejected", "weight", "chosen_score", "rejected_score", "sum"]
    assert p["sum"] == data[p["prompt"]][0]["sum"]  # the prompt row's own field is kept
print("ok")
EOF
) && pass pairs_format || fail pairs_format "$msg"

# ---- divpo ------------------------------------------------------------------------------
i=0
for args in "" "--source field:embedding --source field:style_embedding" "--source lexical --rho 50 --max-pairs 3 --seed 5"; do
  i=$((i + 1))
  $BIN curate divpo --in "$D/task.jsonl" --out "$D/divpo$i.jsonl" $args 2>"$D/divpo$i.err" \
    && $REF divpo --in "$D/task.jsonl" --out "$D/divpo$i.ref.jsonl" $args \
    && compare "divpo_vs_python_$i" "$D/divpo$i.jsonl" "$D/divpo$i.ref.jsonl" 0 \
    || fail "divpo_vs_python_$i" "$(cat "$D/divpo$i.err")"
done
grep -q "curate divpo: 42 prompts -> 84 pairs (rho 25%, max 2" "$D/divpo1.err" && pass divpo_summary \
  || fail divpo_summary "$(cat "$D/divpo1.err")"

# ---- diversity --------------------------------------------------------------------------
for args in "" "--source field:style_embedding --source lexical"; do
  name=diversity_vs_python${args:+_sources}
  $BIN curate diversity --in "$D/task.jsonl" --json $args > "$D/div.json" 2>"$D/div.err" \
    && $REF diversity --in "$D/task.jsonl" $args > "$D/div.ref.json" \
    && compare "$name" "$D/div.json" "$D/div.ref.json" 1e-7 || fail "$name" "$(cat "$D/div.err")"
done
out=$($BIN curate diversity --in "$D/task.jsonl")
grep -q "compression ratio" <<<"$out" && grep -q "(lexical)" <<<"$out" && pass diversity_text_report \
  || fail diversity_text_report "$out"

# ---- the user's fields pass through every command that writes rows ---------------------------
"$PY" - "$D/task.jsonl" "$D/fields.jsonl" <<'EOF'
import json, sys
out = open(sys.argv[2], "w", encoding="utf-8")
for i, l in enumerate(open(sys.argv[1], encoding="utf-8")):
    if i >= 4: break
    d = json.loads(l)
    row = {"id": 12345678901234567890 + i, "prompt": d["prompt"],
           "meta": {"gold": [1, 2.5, None, True], "why": "東京 \"q\" 🙂\n", "e": {}},
           "responses": d["responses"], "neg": -0.0, "one": 1.0, "weight": 7, "label": ["a", []]}
    for j, r in enumerate(row["responses"]):
        r["critique"] = {"ok": j % 2 == 0, "notes": ["ü", 1e-7]}
        r["big"] = 2 ** 64 + j
    out.write(json.dumps(row, ensure_ascii=False) + "\n")
EOF
$BIN curate deviation --in "$D/fields.jsonl" --out "$D/fields.dev.jsonl" 2>/dev/null \
  && $BIN curate pairs --in "$D/fields.jsonl" --out "$D/fields.pairs.jsonl" --gap 1 2>/dev/null \
  && $BIN curate divpo --in "$D/fields.jsonl" --out "$D/fields.divpo.jsonl" 2>/dev/null \
  && msg=$($PY - "$D/fields.jsonl" "$D/fields.dev.jsonl" "$D/fields.pairs.jsonl" "$D/fields.divpo.jsonl" <<'EOF'
import json, sys
rd = lambda p: [json.loads(l) for l in open(p, encoding="utf-8")]
inp, dev, pairs, divpo = (rd(p) for p in sys.argv[1:5])
same = lambda a, b, k: a[k] == b[k] and repr(a[k]) == repr(b[k])  # 1.0 stays 1.0, -0.0 its sign
for x, y in zip(inp, dev):  # deviation: every row and response field kept, in order
    assert list(y)[0] == "prompt"  # written first; the other fields keep their order
    assert [k for k in x if k != "prompt"] == [k for k in y if k != "prompt"], (list(x), list(y))
    assert all(same(x, y, k) for k in x if k != "responses")
    for r, s in zip(x["responses"], y["responses"]):
        assert [k for k in s if k not in ("deviation", "weight")] == [k for k in r if k != "weight"]
        assert all(same(r, s, k) for k in r if k != "weight") and "deviation" in s
by_prompt = {x["prompt"]: x for x in inp}
for name, rows in (("pairs", pairs), ("divpo", divpo)):  # the prompt row's fields, but
    assert rows, name                                      # "weight" is the pair's own
    for p in rows:
        x = by_prompt[p["prompt"]]
        keep = [k for k in x if k not in ("prompt", "responses", "weight")]
        assert [k for k in p if k in x and k != "prompt" and k != "weight"] == keep, (name, list(p))
        assert all(same(x, p, k) for k in keep), name
        assert p.get("weight", 1) != 7, name
print("ok")
EOF
) && pass fields_pass_through_curate || fail fields_pass_through_curate "${msg:-a command failed}"

# ---- model: source and logprob criterion vs PyTorch ----------------------------------------
M=$D/model
$PY - "$D" <<'EOF'
import json, sys
d = sys.argv[1]
with open(f"{d}/tok.txt", "w") as f:
    for l in open(f"{d}/task.jsonl"):
        x = json.loads(l)
        f.write(x["prompt"] + "\n")
        for r in x["responses"]:
            f.write(r["text"] + "\n")
# a small file with a long prompt (cut to maxT / 2) and several responses
with open(f"{d}/small.jsonl", "w") as f:
    for i, l in enumerate(open(f"{d}/task.jsonl")):
        if i >= 6: break
        x = json.loads(l)
        if i == 0: x["prompt"] = " ".join([x["prompt"]] * 6)
        f.write(json.dumps(x) + "\n")
EOF
if $BIN tokenizer train --input "$D/tok.txt" --vocab-size 300 --out "$D/spm" >/dev/null 2>"$D/tok.err" \
   && $PY tools/hf_gpt2.py create --out "$M" --n-layer 2 --n-head 2 --n-embd 32 --n-positions 32 \
        --vocab-size 300 --seed 3 --std 0.3 >/dev/null && cp "$D/spm.model" "$M/tokenizer.model"; then
  $BIN curate deviation --in "$D/small.jsonl" --out "$D/mdev.jsonl" --source "model:$M" 2>"$D/mdev.err" \
    && $REF deviation --in "$D/small.jsonl" --out "$D/mdev.ref.jsonl" --source "model:$M" \
    && compare model_source_vs_pytorch "$D/mdev.jsonl" "$D/mdev.ref.jsonl" 2e-4 \
    || fail model_source_vs_pytorch "$(cat "$D/mdev.err")"
  $BIN curate divpo --in "$D/small.jsonl" --out "$D/mdiv.jsonl" --criterion logprob --model "$M" --rho 50 2>"$D/mdiv.err" \
    && $REF divpo --in "$D/small.jsonl" --out "$D/mdiv.ref.jsonl" --criterion logprob --model "$M" --rho 50 \
    && compare divpo_logprob_vs_pytorch "$D/mdiv.jsonl" "$D/mdiv.ref.jsonl" 0 \
    || fail divpo_logprob_vs_pytorch "$(cat "$D/mdiv.err")"
  mkdir -p "$D/notok" && cp "$M/config.json" "$M/model.safetensors" "$D/notok/"
  expect_err model_dir_without_tokenizer "model:$D/notok" "--tokenizer" -- \
    $BIN curate deviation --in "$D/small.jsonl" --out "$D/x.jsonl" --source "model:$D/notok"
  $BIN curate deviation --in "$D/small.jsonl" --out "$D/x.jsonl" --source "model:$D/notok" \
    --tokenizer "$D/spm.model" 2>/dev/null && cmp -s "$D/x.jsonl" "$D/mdev.jsonl" \
    && pass model_source_tokenizer_option || fail model_source_tokenizer_option "differs"
else
  fail model_setup "$(cat "$D/tok.err")"
fi

# ---- DDPO on the pairs (the walkthrough's last step) --------------------------------------
if [ -f "$D/spm.model" ]; then
  head -n 60 "$D/pairs1.jsonl" > "$D/train_pairs.jsonl"
  cat > "$D/ddpo.json" <<EOF
{"run": {"name": "ddpo", "out_dir": "$D/run", "seed": 1},
 "model": {"init": "scratch", "preset": "models/tiny.json", "n_layer": 1, "d_model": 32,
           "n_head": 2, "max_seq_len": 48},
 "tokenizer": {"type": "sentencepiece", "model": "$D/spm.model"},
 "data": {"format": "preference", "train": "$D/train_pairs.jsonl", "max_len": 48,
          "max_prompt_len": 32},
 "objective": {"type": "ddpo", "beta": 0.1},
 "optim": {"lr": 1e-3},
 "train": {"batch_size": 4, "max_steps": 3, "log_every": 1, "eval_every": 0, "save_every": 0}}
EOF
  if $BIN train "$D/ddpo.json" --quiet >"$D/train.out" 2>&1 && [ -s "$D/run/metrics.jsonl" ]; then
    pass ddpo_trains_on_curated_pairs
  else
    fail ddpo_trains_on_curated_pairs "$(tail -n 5 "$D/train.out")"
  fi
  # train reports the zero-weight share of the pairs it reads; warns when ddpo/dorpo = dpo/orpo
  want=$($PY -c 'import json,sys; w=[json.loads(l)["weight"] for l in open(sys.argv[1])]; print("chosen weight 0 in %d of %d pairs" % (sum(x == 0 for x in w), len(w)))' "$D/train_pairs.jsonl")
  { grep -qF "$want" "$D/train.out" && ! grep -q "^warning" "$D/train.out"; } \
    && pass train_prints_zero_weight_share || fail train_prints_zero_weight_share "want \"$want\": $(cat "$D/train.out")"
  head -n 20 "$D/pairs5.jsonl" > "$D/unweighted.jsonl"   # --source none: no "weight" field
  $PY -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l); r["weight"] = 0.5; print(json.dumps(r))' "$D/unweighted.jsonl" > "$D/equal.jsonl"
  trw() { # OBJECTIVE DATA -> the run's stdout + stderr
    rm -rf "$D/runw"
    $BIN train "$D/ddpo.json" --quiet --set objective.type=$1 --set data.train="$2" \
      --set run.out_dir="$D/runw" --set train.max_steps=1 2>&1
  }
  out=$(trw ddpo "$D/unweighted.jsonl")
  grep -q '^warning: .*unweighted.jsonl: no pair has a "weight" field.*this ddpo run equals dpo' <<<"$out" \
    && pass train_warns_ddpo_without_weights || fail train_warns_ddpo_without_weights "$out"
  out=$(trw dorpo "$D/equal.jsonl")
  grep -q '^warning: .*equal.jsonl: every pair has weight 0.5: .*this dorpo run equals orpo' <<<"$out" \
    && pass train_warns_dorpo_equal_weights || fail train_warns_dorpo_equal_weights "$out"
  out=$(trw dpo "$D/unweighted.jsonl")
  ! grep -q "chosen weight 0\|^warning" <<<"$out" && pass train_dpo_no_weight_report \
    || fail train_dpo_no_weight_report "$out"
fi

# ---- bad input: exit 2, one message naming FILE:LINE, no output -----------------------------
printf '{"prompt": "p", "responses": [{"text": "a", "score": 1, "embedding": [1, 0]}, {"text": "b", "embedding": [0, 1]}]}\n' > "$D/noscore.jsonl"
printf '{"prompt": "p", "responses": [{"text": "a", "embedding": [1, 0]}, {"text": "b", "embedding": [0, 1]}]}\n{"prompt": "q", "responses": [{"text": "a", "embedding": [1, 0]}, {"text": "b", "embedding": [0, 1, 2]}]}\n' > "$D/lens.jsonl"
printf '{"prompt": "p", "responses": [{"text": "a", "embedding": [NaN, 0]}, {"text": "b", "embedding": [0, 1]}]}\n' > "$D/nan.jsonl"
printf '{"prompt": "p", "responses": [{"text": "a", "embedding": [0, 0]}, {"text": "b", "embedding": [0, 1]}]}\n' > "$D/zero.jsonl"
: > "$D/empty.jsonl"
expect_err missing_score_names_line "$D/noscore.jsonl:1:" 'responses[1] has no "score"' -- \
  $BIN curate pairs --in "$D/noscore.jsonl" --out "$D/bad.jsonl"
expect_err embedding_lengths_differ "$D/lens.jsonl:2:" "has 3 numbers, but the first one (line 1" -- \
  $BIN curate deviation --in "$D/lens.jsonl" --out "$D/bad.jsonl"
expect_err nan_is_invalid_json "$D/nan.jsonl:1:" -- \
  $BIN curate deviation --in "$D/nan.jsonl" --out "$D/bad.jsonl"
expect_err zero_vector "$D/zero.jsonl:1:" "zero vector" -- \
  $BIN curate deviation --in "$D/zero.jsonl" --out "$D/bad.jsonl" --source field:embedding
expect_err empty_file "$D/empty.jsonl" "no examples" -- \
  $BIN curate diversity --in "$D/empty.jsonl"
expect_err missing_input_file "$D/nope.jsonl" "cannot open" -- \
  $BIN curate pairs --in "$D/nope.jsonl" --out "$D/bad.jsonl"
expect_err bad_gap "--gap" "-1 for all pairs" -- \
  $BIN curate pairs --in "$D/task.jsonl" --out "$D/bad.jsonl" --gap -2
expect_err bad_source "--source \"semantic\"" "field:NAME" -- \
  $BIN curate deviation --in "$D/task.jsonl" --out "$D/bad.jsonl" --source semantic
expect_err logprob_needs_model "--criterion logprob needs --model" -- \
  $BIN curate divpo --in "$D/task.jsonl" --out "$D/bad.jsonl" --criterion logprob
expect_err unknown_option 'unknown option "--frobnicate"' -- \
  $BIN curate pairs --in "$D/task.jsonl" --out "$D/bad.jsonl" --frobnicate
expect_err unknown_subcommand 'unknown subcommand "prss"' -- $BIN curate prss
expect_err missing_field_source 'has no field "semantic"' -- \
  $BIN curate deviation --in "$D/task.jsonl" --out "$D/bad.jsonl" --source field:semantic
[ ! -e "$D/bad.jsonl" ] && [ ! -e "$D/bad.jsonl.tmp" ] && pass failed_runs_leave_no_output \
  || fail failed_runs_leave_no_output "bad.jsonl exists"

# tinyalign eval --diversity gives the same numbers as curate diversity
a=$($BIN eval --diversity "$D/task.jsonl" --source lexical --no-per-prompt 2>/dev/null)
b=$($BIN curate diversity --in "$D/task.jsonl" --source lexical --json --no-per-prompt 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && pass eval_diversity_matches_curate || fail eval_diversity_matches_curate "eval: $a | curate: $b"

exit $((FAILS > 0))
