#!/usr/bin/env bash
# prepare_pref_task.sh [BUILD] — the "reverse the word" preference task for the tiny
# SFT -> DPO / ORPO / DDPO / DORPO demo (configs/{sft,dpo,orpo,ddpo,dorpo}-tiny.json):
#   data/pref_task/{sft,sft-val,prefs,prefs-val,prefs-weighted,...}.jsonl
#                                   tools/gen_pref_task.py (seeded, deterministic)
#   data/pref_task/spm.model        a 32-piece BPE SentencePiece tokenizer, one token per
#                                   letter (checked), trained by tinyalign
# Skips every step whose output exists (delete data/pref_task to regenerate). Nothing here
# is committed (data/ is ignored). Extra arguments after BUILD go to gen_pref_task.py.
set -euo pipefail
BUILD=${1:-build}
[ $# -gt 0 ] && shift
PY=${PYTHON:-/usr/bin/python3}
D=${PREF_TASK_DIR:-data/pref_task}
mkdir -p "$D"
[ -s "$D/prefs-weighted.jsonl" ] && [ -s "$D/tok_corpus.txt" ] || "$PY" tools/gen_pref_task.py --out "$D" "$@"
if [ ! -s "$D/spm.model" ]; then
  # 32 pieces: 4 specials, the characters, "▁a".."▁h" and a few merges of "reverse"
  # (SentencePiece refuses more than ~42 on this corpus); no byte fallback (it would need
  # > 260 pieces) and full character coverage, so nothing is <unk>
  "$BUILD/tinyalign" tokenizer train --input "$D/tok_corpus.txt" --vocab-size 32 \
      --model-type bpe --byte-fallback 0 --character-coverage 1.0 --out "$D/spm" >/dev/null
fi
"$PY" tools/gen_pref_task.py --check-tokenizer "$D/spm.model" >/dev/null
echo "data: $D ready"
