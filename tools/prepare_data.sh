#!/usr/bin/env bash
# prepare_data.sh BUILD — the quickstart corpus: Debian's fortunes -> data/fortunes/
#   train.txt / val.txt (tools/prepare_fortunes.py), spm.model (a 2048-piece BPE
#   SentencePiece tokenizer trained by tinyalign), train.bin / val.bin (token shards).
# Skips every step whose output exists. Nothing here is committed (data/ is ignored).
set -euo pipefail
BUILD=${1:-build}
PY=${PYTHON:-/usr/bin/python3}
D=data/fortunes
mkdir -p "$D"
[ -s "$D/train.txt" ] || "$PY" tools/prepare_fortunes.py --out "$D"
[ -s "$D/spm.model" ] || "$BUILD/tinyalign" tokenizer train --input "$D/spm_input.txt" \
    --vocab-size 2048 --model-type bpe --out "$D/spm"
[ -s "$D/train.bin" ] || "$BUILD/tinyalign" tokenize --tokenizer "$D/spm.model" \
    --in "$D/train.txt" --out "$D/train.bin" --doc-sep blank
[ -s "$D/val.bin" ] || "$BUILD/tinyalign" tokenize --tokenizer "$D/spm.model" \
    --in "$D/val.txt" --out "$D/val.bin" --doc-sep blank
echo "data: $D ready"
