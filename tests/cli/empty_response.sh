#!/usr/bin/env bash
# empty_response.sh — an empty response ("": `sample` writes one when EOS comes first) is a
# response like any other downstream: sample -> score (logprob:, cmd:) -> curate (vote,
# pairs, diversity) on a file with empty responses. The model is a random GPT-2 whose
# next-token distribution does not depend on the input (ln_f scales to 0, its bias picks
# column 0 of wte): EOS and the pieces 5, 7, 9 at 1/4 each, the rest ~e^-20, so the texts
# are "" or digit strings and log p("") = log p(EOS first) is known in closed form.
source "$(dirname "$0")/../lib.sh"
D=$(scratch_dir cli_empty_response)

for i in $(seq 20); do printf '%s\n' "yes 12" "no 34" "the answer is 5" "the answer is 7" "maybe 9"; done \
  > "$D/corpus.txt"
printf '{"prompt": "the answer is", "answer": "5"}\n{"prompt": "maybe", "answer": "7"}\n' > "$D/prompts.jsonl"
if "$BIN" tokenizer train --input "$D/corpus.txt" --vocab-size 40 --model-type bpe --byte-fallback 0 \
     --character-coverage 1.0 --out "$D/spm" > "$D/setup.log" 2>&1 &&
   "$PY" - "$D/m" "$D/spm.model" >> "$D/setup.log" 2>&1 <<'EOF'
import shutil, sys
sys.path.insert(0, "tools")
import hf_gpt2
import sentencepiece as spm
d, spm_path = sys.argv[1], sys.argv[2]
sys.argv = ["hf_gpt2.py", "create", "--out", d, "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
            "--n-positions", "32", "--vocab-size", "40", "--seed", "1"]
hf_gpt2.main()
shutil.copy(spm_path, d + "/tokenizer.model")
t, meta, _ = hf_gpt2.st_read(d + "/model.safetensors")
sp = spm.SentencePieceProcessor(model_file=d + "/tokenizer.model")
t["transformer.ln_f.weight"][:] = 0          # logits = wte @ ln_f.bias = 10 wte[:, 0]
t["transformer.ln_f.bias"][:] = 0
t["transformer.ln_f.bias"][0] = 10
w = t["transformer.wte.weight"]
w[:, 0] = -2
for p in ("</s>", "5", "7", "9"):
    w[sp.piece_to_id(p), 0] = 0
hf_gpt2.st_write(d + "/model.safetensors", t, meta)
EOF
then
  pass setup_model
else
  fail setup_model "$(tail -n 3 "$D/setup.log")"; exit 1
fi

# sample: 16 responses, EOS first with p = 1/4: some empty, some not (seeded)
"$BIN" sample --model "$D/m" --prompts "$D/prompts.jsonl" --n 8 --seed 1 --max-new-tokens 4 \
  --quiet --out "$D/samples.jsonl" 2> "$D/sample.err"
n_empty=$(grep -o '"text":""' "$D/samples.jsonl" | wc -l)
[ "$n_empty" -ge 1 ] && [ "$n_empty" -lt 16 ] && pass sample_writes_empty_responses \
  || fail sample_writes_empty_responses "$n_empty of 16 responses empty: $(cat "$D/sample.err")"

# score: every response scored; logprob of "" = log p(EOS first) = -log(4 + 36 e^-20)
judge='cmd:'"$PY"' -c "import sys, json
for l in sys.stdin: print(json.dumps({\"score\": len(json.loads(l)[\"response\"])}), flush=True)"'
if "$BIN" score --in "$D/samples.jsonl" --scorer "logprob:$D/m" --out "$D/lp.jsonl" 2> "$D/score.err" &&
   "$BIN" score --in "$D/samples.jsonl" --scorer "$judge" --out "$D/len.jsonl" 2>> "$D/score.err"; then
  msg=$("$PY" - "$D/lp.jsonl" "$D/len.jsonl" <<'EOF'
import json, math, sys
lp = [json.loads(l) for l in open(sys.argv[1])]
ln = [json.loads(l) for l in open(sys.argv[2])]
want = -math.log(4 + 36 * math.exp(-20))
for a, b in zip(lp, ln):
    for x, y in zip(a["responses"], b["responses"]):
        assert y["score"] == len(x["text"]), (x, y)      # cmd: got the text, "" included
        if x["text"] == "":
            assert abs(x["score"] - want) < 1e-5 and x["tokens"] == 1, (x, want)
EOF
  ) && pass score_empty_responses || fail score_empty_responses "$msg"
else
  fail score_empty_responses "$(cat "$D/score.err")"
fi

# curate vote: "" has no answer; pairs: never two identical texts; diversity: "" is a text
if "$BIN" curate vote --in "$D/lp.jsonl" --out "$D/voted.jsonl" --answer-regex "([0-9]+)" 2> "$D/vote.err" &&
   "$BIN" curate pairs --in "$D/lp.jsonl" --out "$D/pairs.jsonl" --source none --gap 0 2> "$D/pairs.err" &&
   "$BIN" curate diversity --in "$D/lp.jsonl" > "$D/div.out" 2>&1; then
  msg=$("$PY" - "$D/voted.jsonl" "$D/pairs.jsonl" <<'EOF'
import json, sys
for r in map(json.loads, open(sys.argv[1])):
    for x in r["responses"]:
        assert x["answer"] == (x["text"] or None), x
for p in map(json.loads, open(sys.argv[2])):
    assert p["chosen"] != p["rejected"], p
EOF
  ) && pass curate_empty_responses || fail curate_empty_responses "$msg"
else
  fail curate_empty_responses "$(cat "$D/vote.err" "$D/pairs.err" "$D/div.out" 2>/dev/null | tail -n 3)"
fi
[ $FAILS -eq 0 ]
