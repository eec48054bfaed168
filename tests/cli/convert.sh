#!/usr/bin/env bash
# convert.sh — `tinyalign convert` against an independent PyTorch GPT-2 (tools/hf_gpt2.py):
# HF dir -> ours -> logits match PyTorch (max |diff| <= 1e-4); ours -> HF -> tensors
# bit-identical to the original and loadable by the PyTorch module; Hub-style files
# (no "transformer." prefix, mask buffers, tied lm_head), BF16/F16 files and
# pytorch_model.bin dirs; and bad input exits 2 with a message naming the file.
# One PASS/FAIL line per case. Env: TA_BUILD (build), PYTHON (/usr/bin/python3), TA_REF.
set -u
source "$(dirname "$0")/../lib.sh"
BUILD=${TA_BUILD:-build}
TA=$BUILD/tinyalign
LOGITS=$BUILD/tests/test_hf_logits
HF="$PY tools/hf_gpt2.py"
W=${TA_REF:-build/ref}/convert
TOL=1e-4
TOKENS="0,5,17,99,42,3,3,8,1,64,65,12,77,31,2,9;7,7,7,98,60,61,62,63,0,1,2,3,4,5,6,50"
rm -rf "$W"
mkdir -p "$W"

# ok NAME CMD... : PASS when CMD exits 0; otherwise FAIL with its last lines
ok() {
  local name=$1; shift
  if "$@" >"$W/out" 2>&1; then pass "$name"
  else fail "$name" "exit $?: $(tail -n 3 "$W/out" | tr '\n' ' ')"; fi
}
# bad NAME NEEDLE CMD... : PASS when CMD exits 2 and its stderr contains NEEDLE
bad() {
  local name=$1 needle=$2; shift 2
  "$@" >"$W/out" 2>"$W/err"; local rc=$?
  if [ "$rc" -eq 2 ] && grep -qF -- "$needle" "$W/err"; then pass "$name"
  else fail "$name" "exit $rc (want 2), stderr: $(head -c 400 "$W/err") (want \"$needle\")"; fi
}
# logits NAME DIR REFDIR : our logits on DIR vs PyTorch's on REFDIR
logits() {
  local name=$1 dir=$2 refdir=$3
  if ! $HF logits --model "$refdir" --tokens "$TOKENS" --out "$W/$name.f32" >"$W/out" 2>&1; then
    fail "$name logits" "hf_gpt2.py logits: $(tail -n 3 "$W/out" | tr '\n' ' ')"; return
  fi
  # the binary prints its own PASS/FAIL lines
  "$LOGITS" "$dir" "$TOKENS" "$W/$name.f32" "$TOL" 2>&1 | sed "s/^\(PASS\|FAIL\) /\1 $name: /"
  [ "${PIPESTATUS[0]}" -eq 0 ] || FAILS=$((FAILS + 1))
}

for f in "$TA" "$LOGITS"; do
  [ -x "$f" ] || { echo "FAIL setup: $f not built (make tests)"; exit 1; }
done

# --help and usage errors
if "$TA" convert --help >"$W/help" 2>&1 && grep -q -- "--from hf" "$W/help" && grep -q -- "--to hf" "$W/help"
then pass "convert --help"; else fail "convert --help" "$(head -c 300 "$W/help")"; fi
bad "usage: no --in" "--in and --out are required" "$TA" convert --from hf --out "$W/x"
bad "usage: both directions" "exactly one of" "$TA" convert --from hf --to hf --in a --out b
bad "usage: unknown format" "unknown format \"onnx\"" "$TA" convert --from onnx --in a --out b

# 1. HF (transformers naming) -> ours; logits vs PyTorch; ours -> HF bit-exact
ok "create hf model (python)" $HF create --out "$W/hf" --seed 1
ok "convert --from hf" "$TA" convert --from hf --in "$W/hf" --out "$W/ours"
logits "from-hf" "$W/ours" "$W/hf"
ok "ours loads in PyTorch, tensors bit-exact" $HF compare "$W/hf" "$W/ours"
ok "convert --to hf" "$TA" convert --to hf --in "$W/ours" --out "$W/hf2"
ok "to-hf tensors bit-exact vs original" $HF compare "$W/hf" "$W/hf2"
logits "to-hf" "$W/hf2" "$W/hf2"
if cmp -s "$W/ours/model.safetensors" "$W/hf2/model.safetensors"; then pass "ours -> hf -> byte-identical file"
else fail "ours -> hf -> byte-identical file" "model.safetensors differs"; fi

# 1b. llm.c's model file (written by tools/hf_gpt2.py llmc from the format's spec) -> ours
ok "write llm.c model file (python)" $HF llmc --model "$W/hf" --out "$W/gpt2_llmc.bin"
ok "convert --from llmc" "$TA" convert --from llmc --in "$W/gpt2_llmc.bin" --out "$W/from-llmc"
logits "from-llmc" "$W/from-llmc" "$W/hf"
ok "from-llmc tensors bit-exact vs original" $HF compare "$W/hf" "$W/from-llmc"
head -c 2000 "$W/gpt2_llmc.bin" > "$W/llmc_trunc.bin"
bad "llmc truncated file" "llmc_trunc.bin" "$TA" convert --from llmc --in "$W/llmc_trunc.bin" --out "$W/x"
head -c 4096 "$W/hf/model.safetensors" > "$W/not_llmc.bin"
bad "llmc not an llm.c file" "not an llm.c model file" "$TA" convert --from llmc --in "$W/not_llmc.bin" --out "$W/x"

# 2. Hub-style file: no prefix, attn.bias/masked_bias buffers, tied lm_head; odd sizes
ok "create hub-style model (python)" $HF create --out "$W/hub" --style hub --seed 2 \
   --n-layer 3 --n-head 2 --n-embd 48 --n-positions 20 --vocab-size 130
ok "convert --from hf (hub style)" "$TA" convert --from hf --in "$W/hub" --out "$W/hub-ours"
logits "hub" "$W/hub-ours" "$W/hub"
TOKENS_SHORT="1,129,64,0,2"
TOKENS_SAVE=$TOKENS; TOKENS=$TOKENS_SHORT
logits "hub T=5" "$W/hub-ours" "$W/hub"
TOKENS=$TOKENS_SAVE

# 3. BF16 and F16 files are upcast exactly
for dt in BF16 F16; do
  ok "create $dt model (python)" $HF create --out "$W/$dt" --dtype "$dt" --seed 3
  ok "convert --from hf ($dt)" "$TA" convert --from hf --in "$W/$dt" --out "$W/$dt-ours"
  logits "$dt" "$W/$dt-ours" "$W/$dt"
  ok "$dt upcast bit-exact" $HF compare "$W/$dt" "$W/$dt-ours"
done

# 4. pytorch_model.bin only: a hint, then tools/hf_gpt2.py bin2st fixes it
ok "create pytorch_model.bin dir (python)" $HF create --out "$W/bin" --bin --seed 4
bad "bin-only dir hints at bin2st" "bin2st" "$TA" convert --from hf --in "$W/bin" --out "$W/x"
ok "bin2st" $HF bin2st --model "$W/bin"
ok "convert --from hf after bin2st" "$TA" convert --from hf --in "$W/bin" --out "$W/bin-ours"
logits "bin" "$W/bin-ours" "$W/bin"

# 4b. the tokenizer travels with the weights: tokenizer.model next to them and its ids in
# config.json (checked with python3-sentencepiece); --from hf reads them back and refuses ids
# that disagree with the tokenizer; PyTorch greedy decoding of the exported directory (its own
# tokenizer and ids) prints what `tinyalign sample` prints
$PY -c "
import random; r = random.Random(5)
words = ['moon', 'river', 'stone', 'quiet', 'amber', 'falls', 'over', 'the', 'a', 'night']
open('$W/corpus.txt', 'w').write('\\n'.join(' '.join(r.choice(words) for _ in range(9)) for _ in range(400)))"
ok "train a tokenizer" "$TA" tokenizer train --input "$W/corpus.txt" --vocab-size 300 --out "$W/spm"
ok "create hf model with the tokenizer's vocabulary (python)" $HF create --out "$W/hft" --seed 6 \
   --vocab-size 300 --std 0.5 --n-positions 40
ok "convert --from hf --tokenizer" "$TA" convert --from hf --in "$W/hft" --tokenizer "$W/spm.model" --out "$W/tok-ours"
ok "convert --to hf (tokenizer from the model dir)" "$TA" convert --to hf --in "$W/tok-ours" --out "$W/tok-hf"
ids_ok() { # NAME DIR: DIR/tokenizer.model == spm.model, config ids == python3-sentencepiece's
  local why
  why=$($PY - "$2" "$W/spm.model" <<'EOF2'
import json, sys
import sentencepiece as spm
d = sys.argv[1]
sp = spm.SentencePieceProcessor(model_file=sys.argv[2])
c = json.load(open(d + "/config.json"))
if open(d + "/tokenizer.model", "rb").read() != open(sys.argv[2], "rb").read():
    print("tokenizer.model differs from the one given")
want = {"bos_token_id": sp.bos_id(), "eos_token_id": sp.eos_id(), "pad_token_id": sp.pad_id(),
        "vocab_size": sp.get_piece_size()}
got = {k: c.get(k) for k in want}
if got != want:
    print("config.json %s, tokenizer %s" % (got, want))
EOF2
)
  [ -z "$why" ] && pass "$1" || fail "$1" "$why"
}
ids_ok "to-hf config ids equal the tokenizer's" "$W/tok-hf"
ids_ok "from-hf --tokenizer config ids equal the tokenizer's" "$W/tok-ours"
ok "convert --from hf (tokenizer.model in the HF dir)" "$TA" convert --from hf --in "$W/tok-hf" --out "$W/tok-back"
ids_ok "hf -> ours keeps the tokenizer and its ids" "$W/tok-back"
for p in "the moon" "quiet river falls"; do
  want=$($HF generate --model "$W/tok-hf" --prompt "$p" --max-new-tokens 8 2>&1)
  got=$("$TA" sample --model "$W/tok-back" --prompt "$p" --temperature 0 --max-new-tokens 8 --quiet 2>&1)
  [ "$got" = "$want" ] && [ -n "$got" ] && pass "pytorch greedy on the export == tinyalign sample ($p)" \
    || fail "pytorch greedy on the export == tinyalign sample ($p)" "\"$got\" vs \"$want\""
done
mkdir -p "$W/badids" && cp "$W/tok-hf/model.safetensors" "$W/tok-hf/tokenizer.model" "$W/badids/"
sed 's/"eos_token_id":[[:space:]]*2/"eos_token_id": 7/' "$W/tok-hf/config.json" > "$W/badids/config.json"
bad "config ids that disagree with tokenizer.model" "\"eos_token_id\" is 7" \
    "$TA" convert --from hf --in "$W/badids" --out "$W/x"
bad "a tokenizer larger than the model's vocabulary" "not this model's tokenizer" \
    "$TA" convert --from hf --in "$W/hf" --tokenizer "$W/spm.model" --out "$W/x"

# 5. bad input: exit 2, message names the file (and the tensor / key)
bad "missing input dir" "$W/nope" "$TA" convert --from hf --in "$W/nope" --out "$W/x"
mkdir -p "$W/trunc" && cp "$W/hf/config.json" "$W/trunc/"
head -c 20000 "$W/hf/model.safetensors" > "$W/trunc/model.safetensors"
bad "truncated model.safetensors" "$W/trunc/model.safetensors: tensor" \
    "$TA" convert --from hf --in "$W/trunc" --out "$W/x"
grep -q "truncated" "$W/err" && pass "truncated: message says truncated" \
  || fail "truncated: message says truncated" "$(cat "$W/err")"
mkdir -p "$W/hdr" && cp "$W/hf/config.json" "$W/hdr/"
$PY - "$W/hf/model.safetensors" "$W/hdr/model.safetensors" <<'EOF'
import sys
raw = bytearray(open(sys.argv[1], "rb").read())
raw[8 + 1] = ord("#")  # break the JSON header
open(sys.argv[2], "wb").write(raw)
EOF
bad "corrupt header JSON" "$W/hdr/model.safetensors: header is not valid JSON" \
    "$TA" convert --from hf --in "$W/hdr" --out "$W/x"
mkdir -p "$W/shape" && cp "$W/hf/model.safetensors" "$W/shape/"
sed 's/"n_embd": 64/"n_embd": 32/' "$W/hf/config.json" > "$W/shape/config.json"
bad "config/weights shape mismatch names the tensor" \
    "$W/shape/model.safetensors: tensor \"transformer.wte.weight\" has shape [100, 64], expected [100, 32]" \
    "$TA" convert --from hf --in "$W/shape" --out "$W/x"
sed 's/"n_layer": 2/"n_layer": 3/' "$W/hf/config.json" > "$W/shape/config.json"
bad "n_layer too big: missing tensor" "missing tensor \"transformer.h.2.ln_1.weight\"" \
    "$TA" convert --from hf --in "$W/shape" --out "$W/x"
sed 's/"n_layer": 2/"n_layer": 1/' "$W/hf/config.json" > "$W/shape/config.json"
bad "n_layer too small: unexpected tensors" "12 unexpected tensors" \
    "$TA" convert --from hf --in "$W/shape" --out "$W/x"
echo '{"n_layer": 2, "n_head": 4,' > "$W/shape/config.json"
bad "bad config.json" "$W/shape/config.json: not a JSON object: invalid JSON" \
    "$TA" convert --from hf --in "$W/shape" --out "$W/x"
sed 's/"gelu_new"/"relu"/' "$W/hf/config.json" > "$W/shape/config.json"
bad "unsupported activation" "$W/shape/config.json: \"activation_function\" is relu" \
    "$TA" convert --from hf --in "$W/shape" --out "$W/x"
ok "create untied-head model (python)" $HF create --out "$W/untied" --untied --seed 5
bad "untied lm_head rejected" "untied LM head" "$TA" convert --from hf --in "$W/untied" --out "$W/x"
[ ! -e "$W/x" ] && pass "failed conversions write nothing" || fail "failed conversions write nothing" "$W/x exists"
[ "$FAILS" -eq 0 ]
