#!/usr/bin/env bash
# repro_ddpo.sh — the DDPO / DORPO reproduction driver (tools/repro_ddpo.sh) in its smoke
# form (tiny sizes, 1 seed), so the pipeline cannot rot silently: every stage runs and
# leaves its outputs, DPO and DDPO get identical pairs, the DDPO runs report their
# zero-weight share, the report has a row for every arm and a figure, and a second run
# skips every finished stage but redoes one whose marker is gone. Not the scientific
# result (tools/repro_ddpo.sh without --smoke; docs/repro_ddpo.md).
# Env: TA_BUILD (default build), PYTHON, TA_REF (scratch).
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_repro_ddpo)
OUT=$D/study
ARMS="sft dpo ddpo-sem ddpo-sty ddpo-both orpo dorpo-both divpo dpo-few ddpo-few ddpo-few-floor"

if tools/repro_ddpo.sh --smoke --seeds 1 --jobs 2 --build "${TA_BUILD:-build}" --out "$OUT" \
     >"$D/run1.out" 2>&1; then
  pass smoke_runs
else
  fail smoke_runs "exit $?: $(tail -n 8 "$D/run1.out")"
fi

miss=""
for f in data/train.jsonl data/heldout.jsonl data/gold.jsonl data/sft.jsonl data/spm.model \
         data/gold_metrics.json seed1/sft/DONE report.md results.json scatter.png; do
  [ -s "$OUT/$f" ] || [ -f "$OUT/$f" -a "${f##*/}" = DONE ] || miss="$miss $f"
done
for p in sem sty both few few-floor divpo; do [ -s "$OUT/seed1/pairs/$p.jsonl" ] || miss="$miss pairs/$p"; done
for a in $ARMS; do
  [ -f "$OUT/seed1/$a/DONE" ] && [ -s "$OUT/seed1/$a/heldout.jsonl" ] \
    && [ -s "$OUT/seed1/$a/metrics.json" ] || miss="$miss seed1/$a"
done
[ -z "$miss" ] && pass every_stage_output || fail every_stage_output "missing:$miss"

grep -q "identical pairs: [0-9]* in both/sem/sty, [0-9]* in few/few-floor" "$OUT/logs/pairs-s1.log" \
  && pass dpo_ddpo_identical_pairs || fail dpo_ddpo_identical_pairs "$(cat "$OUT/logs/pairs-s1.log")"
ok=1
for a in ddpo-sem ddpo-sty ddpo-both dorpo-both ddpo-few ddpo-few-floor; do
  grep -q "chosen weight 0 in [0-9]* of [0-9]* pairs" "$OUT/logs/train-s1-$a.log" || ok=0
done
grep -q "chosen weight 0 in 0 of" "$OUT/logs/train-s1-ddpo-few-floor.log" || ok=0
[ $ok = 1 ] && pass ddpo_runs_report_zero_weight_share \
  || fail ddpo_runs_report_zero_weight_share "see $OUT/logs/train-s1-*.log"

# the report: one table row per arm (and the gold row), with numbers
msg=$($PY - "$OUT/report.md" "$ARMS" <<'PYEOF'
import sys
sys.path.insert(0, "tools")
from report_ddpo import LABELS
rep = open(sys.argv[1]).read()
bad = []
for a in ["gold"] + sys.argv[2].split():
    rows = [l for l in rep.splitlines() if l.startswith("| " + LABELS[a] + " |")]
    if not rows or "-" == rows[0].split("|")[4].strip():
        bad.append(a)
print(" ".join(bad))
PYEOF
)
[ -z "$msg" ] && pass report_has_every_arm || fail report_has_every_arm "no row for: $msg"
grep -q "Smoke run" "$OUT/report.md" && pass report_marks_smoke || fail report_marks_smoke "no note"

# resume: finished stages are skipped; a stage without its marker is redone cleanly
before=$(stat -c %Y "$OUT/seed1/sft/DONE" "$OUT/seed1/ddpo-both/DONE")
rm "$OUT/seed1/dpo/DONE"
echo stale > "$OUT/seed1/dpo/leftover"
if tools/repro_ddpo.sh --smoke --seeds 1 --jobs 2 --build "${TA_BUILD:-build}" --out "$OUT" \
     >"$D/run2.out" 2>&1; then
  after=$(stat -c %Y "$OUT/seed1/sft/DONE" "$OUT/seed1/ddpo-both/DONE")
  if [ "$before" = "$after" ] && [ -f "$OUT/seed1/dpo/DONE" ] && [ ! -e "$OUT/seed1/dpo/leftover" ]; then
    pass resume_skips_done_redoes_interrupted
  else
    fail resume_skips_done_redoes_interrupted "markers $before -> $after, dpo: $(ls "$OUT/seed1/dpo")"
  fi
else
  fail resume_skips_done_redoes_interrupted "exit $?: $(tail -n 8 "$D/run2.out")"
fi
exit 0
