#!/usr/bin/env bash
# prs.sh — `tinyalign prs` end to end on a tiny model fine-tuned on the "sort 6 digits"
# task (tools/gen_prs_task.py, reward tools/score_sort.py): the tree's bookkeeping checked
# in Python against the output (budget exactly N, the layer split, every parent = the first
# best of the earlier layers, every score = the checker's, the filled feedback / revise
# prompts rebuilt from the templates, the summary's numbers recomputed); identical output at
# 1 and 2 threads; --mode rand = `tinyalign sample` with the same seed on the same queries;
# one scorer call per layer and one critic call per feedback layer (counted by the
# programs); --feedback none never asks for feedback; scorer and critic failures exit 2
# with one message and no output; bad flags, templates and prompts with no room exit 2.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_prs)
T=$D/task

if "$PY" tools/gen_prs_task.py --out "$T" --direct 600 --feedback 200 --revise 400 --test 5 \
     --rest 1 >"$D/setup.log" 2>&1 &&
   "$BIN" tokenizer train --input "$T/tok_corpus.txt" --vocab-size 35 --model-type bpe \
     --byte-fallback 0 --character-coverage 1.0 --out "$T/spm" \
     --user-defined-symbols "<asc>,<desc>,DRAFT,FEEDBACK,REVISED,sort,ok,order,format,wrong" \
     >>"$D/setup.log" 2>&1 &&
   "$BIN" train configs/repro-prs-sft.json --quiet --set run.out_dir="$D/sft" \
     --set data.train="$T/sft.jsonl" --set tokenizer.model="$T/spm.model" \
     --set model.n_layer=1 --set model.d_model=32 --set train.max_steps=120 \
     --set optim.warmup_steps=10 >>"$D/setup.log" 2>&1; then
  pass setup_task_and_tiny_model
else
  fail setup_task_and_tiny_model "$(tail -3 "$D/setup.log")"; exit 1
fi
SCORE="cmd:$PY tools/score_sort.py"
TMPL=(--query-template "$T/query.txt" --feedback-template "$T/feedback.txt"
      --revise-template "$T/revise.txt")
prs() { "$BIN" prs --model "$D/sft" --prompts "$T/test.jsonl" --max-new-tokens 8 --quiet "$@"; }

# ---- the tree, checked from the output -----------------------------------------------------
# check_tree OUT SUMMARY SIZES FEEDBACK(model|cmd|none)
check_tree() {
  "$PY" - "$@" "$T" <<'EOF'
import json, sys
sys.path.insert(0, "tools")
from gen_prs_task import score, critique
out, summ, sizes, fb, T = sys.argv[1:6]
sizes = [int(x) for x in sizes.split(",")]
tm = {k: open(f"{T}/{k}.txt").read().rstrip("\n") for k in ("query", "feedback", "revise", "revise_nofb")}
rows = [json.loads(l) for l in open(out)]
S = json.load(open(summ))
N = sum(sizes)
bests, after = [], [0.0] * len(sizes)
for r in rows:
    rs = r["responses"]
    assert len(rs) == N, ("budget", len(rs), N)
    want_layers = [l for l, n in enumerate(sizes) for _ in range(n)]
    assert [x["layer"] for x in rs] == want_layers, [x["layer"] for x in rs]
    q = tm["query"].format(prompt=r["prompt"], preference=r["preference"])
    assert r["filled_prompt"] == q, (r["filled_prompt"], q)
    for j, x in enumerate(rs):
        s, ok = score(r["prompt"], r["preference"], x["text"])
        assert abs(x["score"] - round(s, 6)) < 1e-12 and x["correct"] == ok, ("score", x)
        l = x["layer"]
        if l == 0:
            assert x["parent"] is None and "feedback" not in x and x["input"] == q, x
            continue
        first = sum(sizes[:l])
        prev = [y["score"] for y in rs[:first]]
        p = prev.index(max(prev))                  # the first best of the earlier layers
        assert x["parent"] == p, ("parent", j, x["parent"], p)
        ans = rs[p]["text"]
        if fb == "none":
            assert "feedback" not in x and "feedback_input" not in x, x
            want = tm["revise_nofb"].format(question=q, answer=ans)
        else:
            f = x["feedback"]
            if fb == "cmd":
                assert f == critique(r["prompt"], r["preference"], ans), (f, ans)
                assert "feedback_input" not in x
            else:
                assert x["feedback_input"] == tm["feedback"].format(question=q, answer=ans), x
            want = tm["revise"].format(question=q, answer=ans, feedback=f)
        assert x["input"] == want, (x["input"], want)
        # every response of a layer shares its parent and feedback
        y = rs[first]
        assert y["parent"] == x["parent"] and y.get("feedback") == x.get("feedback")
    sc = [x["score"] for x in rs]
    bests.append(max(sc))
    pp = S["per_prompt"][len(bests) - 1]
    assert pp["best"] == sc.index(max(sc)) and pp["best_score"] == max(sc), pp
    k = 0
    for l, n in enumerate(sizes):
        assert abs(pp["best_per_layer"][l] - max(sc[k:k + n])) < 1e-12, pp
        k += n
        after[l] += max(sc[:k]) / len(rows)
assert S["layer_sizes"] == sizes and S["responses"] == N * len(rows), S
assert abs(S["mean_best"] - sum(bests) / len(bests)) < 1e-9, (S["mean_best"], bests)
assert all(abs(a - b) < 1e-9 for a, b in zip(S["mean_best_after_layer"], after)), S
nfb = (len(sizes) - 1) * len(rows) if fb == "model" else 0
assert S["feedbacks"] == nfb and S["critic_calls"] == (len(sizes) - 1 if fb == "cmd" else 0), S
assert S["scorer_calls"] == len(sizes), S
print(len(rows), "rows")
EOF
}

rm -f "$D/calls"
if prs --out "$D/t1.jsonl" --n 7 --n0 2 --depth 3 --seed 3 --threads 1 --keep-prompts "${TMPL[@]}" \
     --scorer "$SCORE --count $D/calls" 2>"$D/t1.err"; then
  msg=$(check_tree "$D/t1.jsonl" "$D/t1.summary.json" 2,3,2 model 2>&1) \
    && pass tree_budget_split_parents_templates_summary || fail tree_budget_split_parents_templates_summary "$msg"
  [ "$(wc -l <"$D/calls")" = 3 ] && pass one_scorer_call_per_layer \
    || fail one_scorer_call_per_layer "$(wc -l <"$D/calls") calls for 3 layers"
else
  fail tree_run "$(cat "$D/t1.err")"
fi
prs --out "$D/t2.jsonl" --n 7 --n0 2 --depth 3 --seed 3 --threads 2 --keep-prompts "${TMPL[@]}" \
  --scorer "$SCORE" 2>"$D/t2.err" && cmp -s "$D/t1.jsonl" "$D/t2.jsonl" \
  && pass same_output_1_and_2_threads || fail same_output_1_and_2_threads "$(cat "$D/t2.err"; cmp "$D/t1.jsonl" "$D/t2.jsonl")"
prs --out "$D/t3.jsonl" --n 7 --n0 2 --depth 3 --seed 4 --threads 1 "${TMPL[@]}" --scorer "$SCORE" \
  2>/dev/null && ! cmp -s <(sed 's/"input"[^}]*//g' "$D/t1.jsonl") "$D/t3.jsonl" \
  && pass other_seed_other_output || fail other_seed_other_output "seed 4 gave seed 3's output"

# a critic program: one call per feedback layer, its feedback is what the revisions see
rm -f "$D/ccalls"
if prs --out "$D/c.jsonl" --n 6 --n0 2 --depth 3 --keep-prompts "${TMPL[@]}" --scorer "$SCORE" \
     --feedback "cmd:$PY tools/score_sort.py --critic --count $D/ccalls" 2>"$D/c.err"; then
  msg=$(check_tree "$D/c.jsonl" "$D/c.summary.json" 2,2,2 cmd 2>&1) && [ "$(wc -l <"$D/ccalls")" = 2 ] \
    && pass critic_program_feedback || fail critic_program_feedback "$msg $(wc -l <"$D/ccalls") critic calls"
else
  fail critic_program_feedback "$(cat "$D/c.err")"
fi
# --feedback none: no feedback at all, the revise template without it
if prs --out "$D/nf.jsonl" --n 6 --keep-prompts --query-template "$T/query.txt" \
     --revise-template "$T/revise_nofb.txt" --scorer "$SCORE" --feedback none 2>"$D/nf.err"; then
  msg=$(check_tree "$D/nf.jsonl" "$D/nf.summary.json" 3,3 none 2>&1) \
    && pass feedback_none_never_asks || fail feedback_none_never_asks "$msg"
else
  fail feedback_none_never_asks "$(cat "$D/nf.err")"
fi

# ---- the baselines: rand = sample on the queries with the same seed ----------------------------
SAMP=(--temperature 0.8 --top-k 50 --presence-penalty 1.2 --max-new-tokens 8 --seed 11)
prs --mode rand --out "$D/rand.jsonl" --n 5 --query-template "$T/query.txt" --scorer "$SCORE" \
  --seed 11 2>"$D/rand.err" &&
"$BIN" sample --model "$D/sft" --prompts "$T/test.jsonl" --template "$T/query.txt" --n 5 \
  "${SAMP[@]}" --quiet --out "$D/samp.jsonl" 2>>"$D/rand.err" &&
msg=$("$PY" - "$D/rand.jsonl" "$D/samp.jsonl" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b)
for x, y in zip(a, b):
    assert [r["text"] for r in x["responses"]] == [r["text"] for r in y["responses"]], (x, y)
    assert x["filled_prompt"] == y["filled_prompt"]
    assert all(r["layer"] == 0 and r["parent"] is None for r in x["responses"])
EOF
) && pass rand_equals_sample_same_seed || fail rand_equals_sample_same_seed "$msg $(cat "$D/rand.err")"
"$BIN" sample --model "$D/sft" --prompts "$T/test.jsonl" --n 4 "${SAMP[@]}" --quiet \
  --out "$D/samp_np.jsonl" 2>/dev/null &&
prs --mode rand-no-pref --out "$D/np.jsonl" --n 4 --scorer "$SCORE" --seed 11 2>/dev/null &&
"$PY" -c "
import json, sys
a = [json.loads(l) for l in open('$D/np.jsonl')]; b = [json.loads(l) for l in open('$D/samp_np.jsonl')]
assert all([r['text'] for r in x['responses']] == [r['text'] for r in y['responses']] and x['filled_prompt'] == x['prompt'] for x, y in zip(a, b))
" && pass rand_no_pref_is_the_bare_prompt || fail rand_no_pref_is_the_bare_prompt "differs from sample"

# ---- failures and bad input: exit 2, one message, no output ------------------------------------
prs_err() { # NAME WANT... -- ARGS
  local name=$1; shift
  local want=()
  while [ "$1" != "--" ]; do want+=("$1"); shift; done; shift
  rm -f "$D/bad.jsonl"
  expect_err "$name" "${want[@]}" -- "$BIN" prs --model "$D/sft" --prompts "$T/test.jsonl" \
    --max-new-tokens 8 --quiet --out "$D/bad.jsonl" "$@"
  [ -e "$D/bad.jsonl" ] && fail "${name}_no_output" "output written"
}
prs_err scorer_fails "scorer" "exit" -- --scorer "cmd:sh -c 'cat >/dev/null; exit 3'" "${TMPL[@]}"
prs_err scorer_bad_answer "scorer" "score" -- --scorer "cmd:sh -c 'cat >/dev/null; echo {\\\"x\\\": 1}'" "${TMPL[@]}"
prs_err critic_without_feedback "critic" "no \"feedback\"" -- --scorer "$SCORE" "${TMPL[@]}" \
  --feedback "cmd:$PY tools/score_sort.py"
prs_err n_below_2 "--n must be >= 2" -- --scorer "$SCORE" --n 1
prs_err n0_too_big "--n0 must be in [1, N-1] = [1, 5]" -- --scorer "$SCORE" --n 6 --n0 6
prs_err n0_zero "--n0 must be in [1, N-1]" -- --scorer "$SCORE" --n 6 --n0 0
prs_err n0_negative "--n0 must be in [1, N-1]" -- --scorer "$SCORE" --n 6 --n0 -3
prs_err depth_too_deep "--depth 5 needs at least one refinement per layer" -- --scorer "$SCORE" \
  --n 4 --n0 2 --depth 5
prs_err revise_without_feedback_placeholder "--revise-template" "{feedback}" -- --scorer "$SCORE" \
  --revise-template "{question} DRAFT {answer} REVISED"
prs_err feedback_template_without_answer "--feedback-template" "{answer}" -- --scorer "$SCORE" \
  --feedback-template "{question} FEEDBACK"
prs_err nofb_template_with_feedback "--feedback none" "{feedback}" -- --scorer "$SCORE" \
  --feedback none --revise-template "$T/revise.txt"
prs_err template_unknown_field "$T/test.jsonl:1" "no such field" -- --scorer "$SCORE" \
  --query-template "{prompt} {nope}"
prs_err no_room "$T/test.jsonl:1" "no room left" "max_seq_len 48" "the --revise-template" \
  "4 tokens too many" -- --scorer "$SCORE" "${TMPL[@]}" --max-new-tokens 20
# the default (paper's) templates are far longer than this model's 48 tokens: named, with the count
prs_err no_room_default_template "$T/test.jsonl:1" "default feedback template" "--feedback-template" \
  "tokens too many" -- --scorer "$SCORE" --query-template "$T/query.txt"
prs_err feedback_bad "--feedback must be model, none or cmd:PROGRAM" -- --scorer "$SCORE" --feedback critic
prs_err n0_with_rand "--n0 only applies to --mode prs" -- --scorer "$SCORE" --mode rand --n0 2
prs_err bad_scorer_spec "judge:x" -- --scorer "judge:x" "${TMPL[@]}"

# ---- the ReST driver: one metrics line per iteration, resumable at stage granularity -------------
rest() {
  tools/rest_prs.sh --model "$D/sft" --prompts "$T/test.jsonl" --test "$T/test.jsonl" \
    --scorer "$SCORE" --config configs/repro-prs-rest.json --set tokenizer.model="$T/spm.model" \
    --out "$D/rest" --n 4 --batch 4 --query-template "$T/query.txt" --eval-max-new-tokens 8 \
    --eval-samples 2 --build "${TA_BUILD:-build}" "$@" -- "${TMPL[@]}" --max-new-tokens 8
}
if rest --iters 1 2>"$D/rest.err" && [ "$(wc -l <"$D/rest/metrics.jsonl")" = 2 ]; then
  touch -d '2000-01-01' "$D/rest/iter1/gen.jsonl" "$D/rest/iter1/eval.json"
  rm -f "$D/rest/iter1/run/DONE"          # an SFT stage interrupted: redone from scratch
  cp "$D/rest/iter1/eval.json" "$D/eval1.json"
  # iteration 2's generation given: iteration 1's, with an empty response scored best (the
  # model may answer with nothing): left out of the selection, not a failure
  mkdir -p "$D/rest/iter2"
  cp "$D/rest/iter1/gen.summary.json" "$D/rest/iter2/"
  "$PY" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows[0]["responses"][1].update(text="", score=99.0)
open(sys.argv[2], "w").writelines(json.dumps(r) + "\n" for r in rows)' "$D/rest/iter1/gen.jsonl" "$D/rest/iter2/gen.jsonl"
  if rest --iters 2 2>>"$D/rest.err"; then
    msg=$("$PY" - "$D/rest" <<'EOF2'
import json, os, sys
d = sys.argv[1]
m = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
assert [x["iter"] for x in m] == [0, 1, 2], m
for x in m[1:]:
    assert x["kept"] == 5 and 0 <= x["test_rates"]["correct"] <= 1 and "gen_mean_best" in x, x
    g = [json.loads(l) for l in open(f"{d}/iter{x['iter']}/gen.jsonl")]
    best = [max([y for y in r["responses"] if y["text"]], key=lambda y: y["score"]) for r in g]
    assert x["iter"] == 1 or g[0]["responses"][1]["text"] == "", "the empty response given"
    s = [json.loads(l) for l in open(f"{d}/iter{x['iter']}/sft.jsonl")]
    assert [y["prompt"] for y in s] == [r["filled_prompt"] for r in g], "trained on the queries"
    assert [y["completion"] for y in s] == [b["text"] for b in best], "top-1 kept"
for x in m:  # the sampled evaluation: 2 responses per test prompt, their mean score
    rs = [y for l in open(f"{d}/iter{x['iter']}/sampled.scored.jsonl") for y in json.loads(l)["responses"]]
    assert len(rs) == 10 and abs(x["sampled_score"] - sum(y["score"] for y in rs) / 10) < 1e-9, x
    assert x["sampled_rates"]["correct"] == sum(y["correct"] for y in rs) / 10, x
assert os.path.getmtime(f"{d}/iter1/gen.jsonl") < 1e9, "a finished stage was redone"
assert os.path.exists(f"{d}/iter1/run/DONE"), "the interrupted SFT was not redone"
EOF2
    ) && pass rest_prs_metrics_and_resume || fail rest_prs_metrics_and_resume "$msg"
  else
    fail rest_prs_metrics_and_resume "$(tail -3 "$D/rest.err")"
  fi
else
  fail rest_prs_metrics_and_resume "$(tail -3 "$D/rest.err")"
fi
exit 0
