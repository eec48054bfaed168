#!/usr/bin/env bash
# tokenize.sh — end-to-end tests of `tinyalign tokenizer train|encode|decode` and
# `tinyalign tokenize`, checked against python3-sentencepiece: ids must be exactly
# python's, shards must hold exactly the concatenated encodings + one EOS per document,
# and bad input must exit 2 with a message naming the file (and line for JSONL) without
# leaving a shard behind. Prints one PASS/FAIL line per case.
# Env: TA_BUILD (default build), PYTHON (default /usr/bin/python3), TA_REF (scratch).
set -u
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_tokenize)

# ---- training text (deterministic, multilingual) -----------------------------------
"$PY" - "$D" <<'EOF'
import random, sys
d = sys.argv[1]
r = random.Random(5)
cons, vow = "bcdfghklmnprstvwz", "aeiou"
extra = ["café", "naïve", "über", "東京", "日本語", "привет", "мир", "🙂", "42", "3.14"]
def word():
    if r.random() < 0.7:
        return "".join(r.choice(cons) + r.choice(vow) for _ in range(r.randint(1, 3)))
    return r.choice(extra)
def sent():
    return " ".join(word() for _ in range(r.randint(3, 12)))
with open(f"{d}/train.txt", "w") as f:
    for _ in range(2000):
        f.write(sent() + "\n")
with open(f"{d}/lines.txt", "w") as f:   # the encode/decode round trip input
    for s in ["hello world", "  two  spaces\tand a tab", "café 東京 🙂 мир", "", "12345 x"]:
        f.write(s + "\n")
    for _ in range(20):
        f.write(sent() + "\n")
with open(f"{d}/docs.txt", "w") as f:    # one document per non-blank line
    for i in range(200):
        f.write(sent() + "\n")
        if i % 17 == 0:
            f.write("\n   \n")
with open(f"{d}/paras.txt", "w") as f:   # paragraphs
    for i in range(50):
        for _ in range(r.randint(1, 4)):
            f.write(sent() + "\n")
        f.write("\n" * r.randint(1, 2))
import json
with open(f"{d}/docs.jsonl", "w") as f:
    for i in range(100):
        f.write(json.dumps({"id": i, "text": sent() + ("\n" + sent() if i % 3 == 0 else "")},
                           ensure_ascii=(i % 2 == 0)) + "\n")
        if i == 50:
            f.write("\n")
with open(f"{d}/content.jsonl", "w") as f:
    for i in range(20):
        f.write(json.dumps({"content": sent(), "text": 5}) + "\n")
with open(f"{d}/big.txt", "w") as f:      # > 1 MB: shows the progress line
    while f.tell() < 1_300_000:
        f.write(sent() + "\n")
EOF

# ---- help --------------------------------------------------------------------------
ok=1
for args in "tokenizer --help" "tokenizer train --help" "tokenizer encode --help" \
            "tokenizer decode --help" "tokenize --help"; do
  out=$($BIN $args 2>&1); rc=$?
  [ $rc -eq 0 ] && grep -q "usage: tinyalign" <<<"$out" || { ok=0; fail help "$args: rc $rc"; }
done
[ $ok -eq 1 ] && pass help
$BIN --help | grep -q "tokenize " && $BIN --help | grep -q "tokenizer " && pass listed_in_main_help \
  || fail listed_in_main_help "tokenize/tokenizer missing from tinyalign --help"

# ---- train -------------------------------------------------------------------------
M=$D/spm.model
err=$($BIN tokenizer train --input "$D/train.txt" --vocab-size 600 --model-type bpe \
      --out "$D/spm" 2>&1 >/dev/null); rc=$?
if [ $rc -eq 0 ] && [ -s "$M" ] && [ -s "$D/spm.vocab" ] && [ -z "$err" ]; then pass train_bpe
else fail train_bpe "rc $rc, stderr: $err"; fi
$BIN tokenizer train --input "$D/train.txt" --vocab-size 600 --model-type unigram \
  --byte-fallback 1 --character-coverage 1.0 --out "$D/uni" >/dev/null 2>"$D/uni.err" \
  && [ -s "$D/uni.model" ] && [ ! -s "$D/uni.err" ] && pass train_unigram \
  || fail train_unigram "$(cat "$D/uni.err")"

# ---- encode / decode ---------------------------------------------------------------
for m in spm uni; do
  $BIN tokenizer encode --model "$D/$m.model" --in "$D/lines.txt" > "$D/$m.ids"
  rc=$?
  "$PY" - "$D/$m.model" "$D/lines.txt" > "$D/$m.ref.ids" <<'EOF'
import sys, sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
for line in open(sys.argv[2], encoding="utf-8"):
    print(" ".join(map(str, sp.encode(line.rstrip("\n")))))
EOF
  if [ $rc -eq 0 ] && cmp -s "$D/$m.ids" "$D/$m.ref.ids"; then pass "encode_matches_python_$m"
  else fail "encode_matches_python_$m" "rc $rc; $(diff "$D/$m.ids" "$D/$m.ref.ids" | head -3)"; fi
  $BIN tokenizer decode --model "$D/$m.model" --in "$D/$m.ids" > "$D/$m.dec"; rc=$?
  if [ $rc -eq 0 ] && cmp -s "$D/$m.dec" "$D/lines.txt"; then pass "decode_round_trip_$m"
  else fail "decode_round_trip_$m" "rc $rc; $(diff "$D/$m.dec" "$D/lines.txt" | head -3)"; fi
done
ids=$($BIN tokenizer encode --model "$M" --text "café 東京 🙂")
txt=$($BIN tokenizer decode --model "$M" --ids "$ids")
[ "$txt" = "café 東京 🙂" ] && pass text_ids_round_trip || fail text_ids_round_trip "got \"$txt\" from \"$ids\""
pieces=$($BIN tokenizer encode --model "$M" --text "🦀" --pieces)  # not in the training text
grep -q "<0xF0>" <<<"$pieces" && pass encode_pieces_byte_fallback || fail encode_pieces_byte_fallback "$pieces"

# ---- tokenize ----------------------------------------------------------------------
# check_shard NAME SHARD INPUT MODE: the shard holds exactly python's encodings + EOS.
check_shard() {
  local name=$1 shard=$2 input=$3 mode=$4 field=${5:-text}
  local msg
  msg=$("$PY" - "$M" "$shard" "$input" "$mode" "$field" 2>&1 <<'EOF'
import json, struct, sys, sentencepiece as spm
model, shard, inp, mode, field = sys.argv[1:]
sp = spm.SentencePieceProcessor(model_file=model)
lines = [l.rstrip("\n").rstrip("\r") for l in open(inp, encoding="utf-8")]
blank = lambda l: l.strip(" \t\r") == ""
if mode == "line":
    docs = [l for l in lines if not blank(l)]
elif mode == "blank":
    docs, cur = [], []
    for l in lines + [""]:
        if blank(l):
            if cur: docs.append("\n".join(cur)); cur = []
        else:
            cur.append(l)
else:
    docs = [json.loads(l)[field] for l in lines if not blank(l)]
want = []
for d in docs:
    want += sp.encode(d) + [sp.eos_id()]
data = open(shard, "rb").read()
magic, ver, tb, vocab, res, n = struct.unpack("<8sIIIIQ", data[:32])
assert magic == b"TASHARD1" and ver == 1 and tb == 2 and res == 0, (magic, ver, tb, res)
assert vocab == sp.vocab_size(), vocab
assert len(data) == 64 + 2 * n, (len(data), n)
got = list(struct.unpack(f"<{n}H", data[64:]))
assert n == len(want), f"{n} tokens, expected {len(want)} ({len(docs)} documents)"
assert got == want, "token ids differ from python's encodings + EOS"
print(len(docs), n)
EOF
  )
  if [ $? -eq 0 ]; then pass "$name"; else fail "$name" "$(tail -n 1 <<<"$msg")"; fi
}

out=$($BIN tokenize --tokenizer "$M" --in "$D/docs.txt" --out "$D/docs.bin" 2>"$D/t.err"); rc=$?
[ $rc -eq 0 ] && check_shard tokenize_txt_lines "$D/docs.bin" "$D/docs.txt" line \
  || fail tokenize_txt_lines "rc $rc: $(cat "$D/t.err")"
[ ! -e "$D/docs.bin.tmp" ] && grep -q "200 documents" <<<"$out" && pass tokenize_summary_no_tmp \
  || fail tokenize_summary_no_tmp "summary: $out"
$BIN tokenize --tokenizer "$M" --in "$D/paras.txt" --out "$D/paras.bin" --doc-sep blank >/dev/null \
  && check_shard tokenize_txt_paragraphs "$D/paras.bin" "$D/paras.txt" blank \
  || fail tokenize_txt_paragraphs "tokenize failed"
$BIN tokenize --tokenizer "$M" --in "$D/docs.jsonl" --out "$D/jsonl.bin" >/dev/null \
  && check_shard tokenize_jsonl "$D/jsonl.bin" "$D/docs.jsonl" jsonl \
  || fail tokenize_jsonl "tokenize failed"
$BIN tokenize --tokenizer "$M" --in "$D/content.jsonl" --out "$D/content.bin" --field content >/dev/null \
  && check_shard tokenize_jsonl_field "$D/content.bin" "$D/content.jsonl" jsonl content \
  || fail tokenize_jsonl_field "tokenize --field content failed"
cp "$D/docs.jsonl" "$D/docs.data"
$BIN tokenize --tokenizer "$M" --in "$D/docs.data" --format jsonl --out "$D/fmt.bin" >/dev/null \
  && cmp -s "$D/fmt.bin" "$D/jsonl.bin" && pass tokenize_format_flag || fail tokenize_format_flag "differs"
$BIN tokenize --tokenizer "$M" --in "$D/big.txt" --out "$D/big.bin" >/dev/null 2>"$D/big.err"; rc=$?
[ $rc -eq 0 ] && grep -q "MB/s" "$D/big.err" && grep -q "1.3 MB" "$D/big.err" \
  && pass tokenize_progress_large_input || fail tokenize_progress_large_input "rc $rc: $(cat "$D/big.err")"
$BIN tokenize --tokenizer "$M" --in "$D/docs.txt" --out "$D/q.bin" 2>"$D/q.err" >/dev/null
[ ! -s "$D/q.err" ] && pass tokenize_small_input_quiet || fail tokenize_small_input_quiet "$(cat "$D/q.err")"

# ---- bad input: exit 2, one message naming the file (and line), no shard left ------
printf '{"text": "fine"}\n{"text": "also fine"}\n{"text": "broken\n' > "$D/badjson.jsonl"
printf '{"text": "fine"}\n{"txt": "typo"}\n' > "$D/nofield.jsonl"
printf '{"text": "fine"}\n\n{"text": 42}\n' > "$D/notstring.jsonl"
printf '{"text": "fine"}\n["text"]\n' > "$D/notobject.jsonl"
printf '{"text": "a"} {"text": "b"}\n' > "$D/twoobjects.jsonl"
head -c 200 "$M" > "$D/corrupt.model"
expect_err bad_json_names_file_line_col "$D/badjson.jsonl:3:" "invalid JSON" -- \
  $BIN tokenize --tokenizer "$M" --in "$D/badjson.jsonl" --out "$D/bad.bin"
[ ! -e "$D/bad.bin" ] && [ ! -e "$D/bad.bin.tmp" ] && pass failed_tokenize_leaves_no_shard \
  || fail failed_tokenize_leaves_no_shard "bad.bin or bad.bin.tmp exists"
expect_err missing_field_names_file_line "$D/nofield.jsonl:2:" 'missing "text" field' -- \
  $BIN tokenize --tokenizer "$M" --in "$D/nofield.jsonl" --out "$D/bad.bin"
expect_err non_string_field_names_line "$D/notstring.jsonl:3:" "must be a string, found a number" -- \
  $BIN tokenize --tokenizer "$M" --in "$D/notstring.jsonl" --out "$D/bad.bin"
expect_err non_object_names_line "$D/notobject.jsonl:2:" "found an array" -- \
  $BIN tokenize --tokenizer "$M" --in "$D/notobject.jsonl" --out "$D/bad.bin"
expect_err trailing_json_names_column "$D/twoobjects.jsonl:1:15:" "unexpected text" -- \
  $BIN tokenize --tokenizer "$M" --in "$D/twoobjects.jsonl" --out "$D/bad.bin"
expect_err tokenize_missing_input_names_file "$D/nope.txt" "cannot open" -- \
  $BIN tokenize --tokenizer "$M" --in "$D/nope.txt" --out "$D/bad.bin"
expect_err tokenize_missing_model_names_file "$D/nope.model" -- \
  $BIN tokenize --tokenizer "$D/nope.model" --in "$D/docs.txt" --out "$D/bad.bin"
expect_err tokenize_corrupt_model_names_file "$D/corrupt.model" "not a SentencePiece model" -- \
  $BIN tokenize --tokenizer "$D/corrupt.model" --in "$D/docs.txt" --out "$D/bad.bin"
expect_err tokenize_unknown_option "--bogus" -- \
  $BIN tokenize --tokenizer "$M" --in "$D/docs.txt" --out "$D/bad.bin" --bogus 1
expect_err tokenize_missing_args "required" -- $BIN tokenize --in "$D/docs.txt"
expect_err tokenize_bad_doc_sep "--doc-sep" -- \
  $BIN tokenize --tokenizer "$M" --in "$D/docs.txt" --out "$D/bad.bin" --doc-sep para
[ ! -e "$D/bad.bin" ] && [ ! -e "$D/bad.bin.tmp" ] && pass no_shard_after_any_failure \
  || fail no_shard_after_any_failure "bad.bin or bad.bin.tmp exists"
expect_err encode_corrupt_model_names_file "$D/corrupt.model" -- \
  $BIN tokenizer encode --model "$D/corrupt.model" --text hi
expect_err encode_missing_input_names_file "$D/nope.txt" -- \
  $BIN tokenizer encode --model "$M" --in "$D/nope.txt"
printf '5 6 7\n8 x 9\n' > "$D/badids.txt"
expect_err decode_bad_id_names_file_line "$D/badids.txt:2:" '"x"' -- \
  $BIN tokenizer decode --model "$M" --in "$D/badids.txt"
expect_err decode_out_of_range_id "outside [0, 600)" -- $BIN tokenizer decode --model "$M" --ids "5 600"
expect_err train_missing_input_names_file "$D/nope.txt" -- \
  $BIN tokenizer train --input "$D/nope.txt" --vocab-size 600 --out "$D/x"
expect_err train_bad_model_type "word" "bpe or unigram" -- \
  $BIN tokenizer train --input "$D/train.txt" --vocab-size 600 --model-type word --out "$D/x"
expect_err train_vocab_too_large_names_file "$D/lines.txt" "Vocabulary size" -- \
  $BIN tokenizer train --input "$D/lines.txt" --vocab-size 5000 --out "$D/x"
expect_err train_bad_vocab_size "--vocab-size" -- \
  $BIN tokenizer train --input "$D/train.txt" --vocab-size ten --out "$D/x"
expect_err tokenizer_unknown_subcommand "frobnicate" -- $BIN tokenizer frobnicate

exit $((FAILS > 0))
