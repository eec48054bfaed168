#!/usr/bin/env bash
# repro_nado.sh — the NADO reproduction driver (tools/repro_nado.sh) in its smoke form (tiny
# sizes, 1 seed, one lambda in both schedules and with prefixes from samples), so the
# pipeline cannot rot silently: every arm is trained and evaluated, the report has a row per
# arm and both figures, the samples arm fine-tunes on the corpus ("loss": "nll") mixed with
# the samples its guide learned from ("loss": "kl"), and a second invocation redoes nothing.
# Not the scientific result (docs/repro_nado.md).
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_repro_nado)
OUT=$D/study
ARMS="sft_full sft_filtered sft_cont guided seq_2 par_2 seqsamp_2"
run() { tools/repro_nado.sh --smoke --seeds 1 --jobs 1 --lambdas 2 --parallel-lambdas 2 --sample-lambdas 2 \
          --build "${TA_BUILD:-build}" --out "$OUT"; }
if run > "$D/run1.out" 2>&1; then pass smoke_runs; else fail smoke_runs "$(tail -n 5 "$D/run1.out")"; fi
miss=""
for a in $ARMS; do
  for f in DONE violations.jsonl judge.jsonl ppl_clean.json ppl_banned.json; do
    [ -f "$OUT/seed1/$a/eval/$f" ] || miss="$miss $a/eval/$f"
  done
  grep -q "^| $a |" "$OUT/report.md" 2>/dev/null || miss="$miss report:$a"
done
for f in report.md results.json tradeoff.png bars.png seed1/nado1_eval.json seed1/par_2/wallclock.txt; do
  [ -s "$OUT/$f" ] || miss="$miss $f"
done
[ -z "$miss" ] && pass smoke_outputs || fail smoke_outputs "missing:$miss"
# par_2's round 2 is fine-tuned with NADO_1 (one round of lag), seq_2's with its own NADO_2
grep -q "seed1/nado1" "$OUT/seed1/par_2/round2/model/config.json" 2>/dev/null &&
  grep -q "seq_2/round2/nado" "$OUT/seed1/seq_2/round2/model/config.json" 2>/dev/null \
  && pass smoke_schedules_use_their_guides || fail smoke_schedules_use_their_guides "round-2 guides"
# prefixes from samples: round 1 takes NADO_1's samples (--first-samples), round 2 the samples
# NADO_2 learned from, each as prompt/completion rows feeding the KL only
S=$OUT/seed1/seqsamp_2
why=$("${PYTHON:-/usr/bin/python3}" - "$S" "$OUT/seed1/nado1_samples.jsonl" <<'EOF' 2>&1
import json, sys
S, first = sys.argv[1], sys.argv[2]
for k in (1, 2):
    src = json.load(open(f"{S}/round{k}/model/config.json"))["data"]["train"]
    want = [("corpus.jsonl", "nll"), (f"seqsamp_2/round{k}/prefixes.jsonl", "kl")]
    got = [(x["path"], x.get("loss", "all"), x["weight"]) for x in src]
    if len(got) != 2 or any(not p.endswith(e) or l != wl or w != 0.5
                            for (p, l, w), (e, wl) in zip(got, want)):
        print(f"round {k}: data.train {got}")
n = sum(len(json.loads(l)["responses"]) for l in open(first) if l.strip())
m = sum(1 for l in open(f"{S}/round1/prefixes.jsonl") if l.strip())
if m != n:
    print(f"round 1: {m} prefix rows, NADO_1 learned from {n} samples")
EOF
)
[ -z "$why" ] && pass smoke_prefixes_from_samples || fail smoke_prefixes_from_samples "$why"
n=$(grep -c . "$OUT/timings.txt")
run > "$D/run2.out" 2>&1
# the second invocation adds its header and total lines only
[ "$(grep -c . "$OUT/timings.txt")" -eq $((n + 2)) ] && pass smoke_resume_skips \
  || fail smoke_resume_skips "stages were redone: $(tail -n 4 "$OUT/timings.txt")"
exit $((FAILS > 0))
