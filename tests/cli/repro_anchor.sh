#!/usr/bin/env bash
# repro_anchor.sh — the AnchorAlign reproduction driver (tools/repro_anchor.sh) in its smoke
# form (tiny sizes, 1 seed): the end-to-end run on a tiny model. sample -> score with a cmd:
# judge -> anchors sampled with a gold-label template -> curate anchors (four rule sets) ->
# DPO -> held-out evaluation -> report. Checks every stage's outputs, that the anchors
# keep the original prompt and record the filled one, that the pair files carry their
# categories and summaries agree with them, that the report has a row per model and a
# figure, and that a second run skips the finished stages. Not the scientific result
# (tools/repro_anchor.sh without --smoke; docs/repro_anchor.md).
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_repro_anchor)
OUT=$D/study
MODELS="explain label anchor anchor-noci judge-only correctness-only"

if tools/repro_anchor.sh --smoke --seeds 1 --jobs 1 --build "${TA_BUILD:-build}" --out "$OUT" \
     >"$D/run1.out" 2>&1; then
  pass smoke_runs
else
  fail smoke_runs "exit $?: $(tail -n 8 "$D/run1.out")"
fi

miss=""
for f in data/explain.jsonl data/label.jsonl data/train.jsonl data/test.jsonl data/spm.model \
         seed1/samples.jsonl seed1/anchors.jsonl report.md results.json anchor.png; do
  [ -s "$OUT/$f" ] || miss="$miss $f"
done
for m in $MODELS; do
  [ -f "$OUT/seed1/$m/DONE" ] && [ -s "$OUT/seed1/$m/test-greedy.jsonl" ] \
    && [ -s "$OUT/seed1/$m/test-t1.jsonl" ] || miss="$miss seed1/$m"
done
[ -z "$miss" ] && pass every_stage_output || fail every_stage_output "missing:$miss"

# anchors: the original prompt (what curate matches on) plus the filled one; judged
$PY - "$OUT/seed1" <<'EOF' && pass anchors_and_pairs || fail anchors_and_pairs "see above"
import json, sys
S = sys.argv[1]
for line in open(f"{S}/anchors.jsonl"):
    r = json.loads(line)
    assert r["filled_prompt"] == f"hint {r['label']}. {r['prompt']}", r
    assert all("score" in x and isinstance(x["correct"], bool) for x in r["responses"])
for arm in ("anchor", "anchor-noci", "judge-only", "correctness-only"):
    pairs = [json.loads(l) for l in open(f"{S}/pairs/{arm}.jsonl")]
    summ = json.load(open(f"{S}/pairs/{arm}.summary.json"))
    for c in ("CC", "V", "CI"):
        assert summ["pairs"][c] == sum(p["category"] == c for p in pairs), (arm, c)
    if arm == "anchor-noci":
        assert not any(p["category"] == "CI" for p in pairs)
    if arm == "correctness-only":
        assert all(p["category"] == "V" and p["chosen_correct"] and not p["rejected_correct"]
                   for p in pairs)
    if arm == "anchor":
        assert all(p["chosen_from"] == "anchor" for p in pairs if p["category"] == "CI")
EOF

rows=$(grep -c '^| ' "$OUT/report.md")
[ "$rows" -ge 16 ] && grep -q "AnchorAlign (DPO)" "$OUT/report.md" && pass report_rows \
  || fail report_rows "$rows table rows in $OUT/report.md"

# a second run finds everything done
if tools/repro_anchor.sh --smoke --seeds 1 --jobs 1 --build "${TA_BUILD:-build}" --out "$OUT" \
     >"$D/run2.out" 2>&1 && ! grep -q "step " "$OUT/logs/seed1.log.2" 2>/dev/null; then
  n1=$(grep -c "^done: " "$OUT/logs/seed1.log")
  [ "$n1" = 6 ] && pass second_run_skips_done_stages \
    || fail second_run_skips_done_stages "$n1 training runs logged (expected 6: no rerun)"
else
  fail second_run_skips_done_stages "$(tail -n 5 "$D/run2.out")"
fi

[ $FAILS -eq 0 ]
