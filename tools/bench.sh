#!/usr/bin/env bash
# bench.sh BUILD — `make bench`: speed, never pass/fail. Every tinyalign number is put next
# to PyTorch (Debian's python3-torch, same model, batch and threads; tools/torch_gpt2.py's
# idiomatic nn.Module GPT-2, AdamW foreach) measured in the same run, interleaved, and the
# ratio printed. Each shape runs in fp32 and in bf16 (tinyalign model.precision bf16 vs
# PyTorch torch.autocast("cpu", dtype=torch.bfloat16)).
#   1. training step: GPT-2 124M (B=4 T=64) and small (L=6 C=384 V=8192, B=8 T=256)
#   2. loss-head cost: SFT vs DPO (snapshot reference / cached log-probs) on the same tokens;
#      SFT vs SFT + the attribute KL with a guide of the same size, and a NADO training
#      step (interleaved, best of 3), with peak RSS
#   3. decoding tokens/s at batch 1 and 8, fp32 and bf16 (tools/bench_decode.py)
#   4. scoring (logprob:, model:) tokens/s vs the forward pass of the same shape
#      (bench --forward-only [--reward])
#   5. PRS generation tokens/s vs random sampling (`sample`'s path) at the same N and model
#   6. (BENCH_MEMORY=1, minutes) peak RSS of a GPT-2 124M step at B=8 T=1024, whole-batch
#      logits vs the LM head in chunks of 1024 rows (model.lm_head_chunk)
# Env: THREADS (default 2), STEPS (default 5), BENCH_MEMORY (default 0),
#      BENCH_SECTIONS (default "1 2 3 4 5", plus 6 with BENCH_MEMORY=1): the sections to run,
#      e.g. BENCH_SECTIONS="1 4" make bench (2 includes 2b).
# glibc is told to keep freed memory (no mmap for large blocks, no trimming): PyTorch
# allocates its activations and AdamW temporaries afresh every step, and returning them to
# the OS means page faults on every step (2.5x slower at 124M on this VM) — what jemalloc
# or tcmalloc, which PyTorch's CPU tuning guides recommend, also avoid. tinyalign
# allocates once, so this changes nothing for it.
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 MALLOC_TOP_PAD_=1000000000
set -uo pipefail
BUILD=${1:-build}
BIN=$BUILD/tinyalign
PY=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-2}
STEPS=${STEPS:-5}
echo "== tinyalign bench, $(date -u +%Y-%m-%d) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
$BIN info
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset: OpenBLAS picks the kernel>}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other processes slow every number; ratios are measured interleaved)"

# sections 4 and 5: bench_corpus DIR CODE writes DIR/corpus.txt (2000 lines of 20 random
# words of a 300-word vocabulary, seeded) and trains DIR/spm.model (600 pieces) on it; CODE
# (Python, with d = DIR, the generator r and words) then writes the section's inputs from
# the same stream. bench_model DIR N_POSITIONS [--reward]: a random GPT-2 L4 C256 V8192
# (hf_gpt2.py create, seed 1) with DIR/tokenizer.model.
bench_corpus() {
  $PY - "$1" "$2" <<'PYEOF' && $BIN tokenizer train --input "$1/corpus.txt" --vocab-size 600 --out "$1/spm" >/dev/null 2>&1
import json, random, sys
d = sys.argv[1]
r = random.Random(0)
words = [("".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 7)))) for _ in range(300)]
with open(f"{d}/corpus.txt", "w") as f:
    for _ in range(2000):
        f.write(" ".join(r.choice(words) for _ in range(20)) + "\n")
exec(sys.argv[2])
PYEOF
}
bench_model() {
  local dir=$1 npos=$2; shift 2
  $PY tools/hf_gpt2.py create --out "$dir" --n-layer 4 --n-head 4 --n-embd 256 --n-positions "$npos" \
      --vocab-size 8192 --seed 1 "$@" >/dev/null && cp "$(dirname "$dir")/spm.model" "$dir/tokenizer.model"
}

SECTIONS=${BENCH_SECTIONS:-"1 2 3 4 5"}
[ "${BENCH_MEMORY:-0}" = 1 ] && [ -z "${BENCH_SECTIONS:-}" ] && SECTIONS="$SECTIONS 6"
want() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

field() { sed -E "s/.*\"$1\": ([0-9.e+-]+).*/\1/" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a > 0) printf "%.2f", a / b; else printf "n/a" }'; }

train_row() { # NAME ARGS...: ours and PyTorch's tokens/s for one shape, fp32 then bf16
  local name=$1; shift
  local o32 t32 o16 t16 a32 b32 a16 b16
  o32=$($BIN bench "$@" --threads "$THREADS" --steps "$STEPS" --json)
  t32=$($PY tools/bench_torch.py "$@" --threads "$THREADS" --steps "$STEPS" | tail -1)
  if o16=$($BIN bench "$@" --precision bf16 --threads "$THREADS" --steps "$STEPS" --json 2>/tmp/ta-bench-bf16.$$); then
    a16=$(field tokens_per_s "$o16")
  else
    a16=0; echo "  (tinyalign bf16: $(cat /tmp/ta-bench-bf16.$$))"
  fi
  rm -f /tmp/ta-bench-bf16.$$
  t16=$($PY tools/bench_torch.py "$@" --precision bf16 --threads "$THREADS" --steps "$STEPS" | tail -1)
  a32=$(field tokens_per_s "$o32"); b32=$(field tokens_per_s "$t32"); b16=$(field tokens_per_s "$t16")
  printf "%-34s fp32: tinyalign %7.0f tok/s %7.1f ms/step %6.1f GFLOP/s MFU %4.1f%% | PyTorch %7.0f tok/s | %sx\n" \
    "$name" "$a32" "$(field ms_per_step "$o32")" "$(field gflops "$o32")" \
    "$(awk -v m="$(field mfu "$o32")" 'BEGIN{print 100*m}')" "$b32" "$(ratio "$a32" "$b32")"
  printf "%-34s bf16: tinyalign %7.0f tok/s | PyTorch autocast %7.0f tok/s | %sx (goal >= 1.25x) | tinyalign bf16/fp32 %sx\n" \
    "" "$a16" "$b16" "$(ratio "$a16" "$b16")" "$(ratio "$a16" "$a32")"
  printf "%-34s peak RSS fp32 %.0f MiB vs params+grads+AdamW+activations %.0f MiB (%sx)\n" "" \
    "$(field peak_rss_mib "$o32")" "$(field arith_mib "$o32")" "$(ratio "$(field peak_rss_mib "$o32")" "$(field arith_mib "$o32")")"
}

if want 1; then
echo; echo "== 1. training step (forward + backward + clip + AdamW), $THREADS threads"
train_row "gpt2-124m (L12 C768 V50257 B4 T64)" --layers 12 --heads 12 --dim 768 --vocab 50257 --batch 4 --seq 64
echo "   (goals: bf16 >= 1.25x PyTorch autocast and >= 1.5x tinyalign fp32)"
train_row "small (L6 C384 V8192 B8 T256)" --layers 6 --heads 6 --dim 384 --vocab 8192 --batch 8 --seq 256
echo "   (goals: bf16 >= 1.25x PyTorch autocast and >= 1.6x tinyalign fp32)"

for prec in fp32 bf16; do
  echo; echo "== per-kernel breakdown, small model, $prec"
  $BIN bench --layers 6 --heads 6 --dim 384 --vocab 8192 --batch 8 --seq 256 --precision "$prec" \
    --threads "$THREADS" --steps "$STEPS" | sed -n '/where the time goes/,$p'
done

fi
if want 2; then
echo; echo "== 2. loss-head cost on the same B x T tokens (small model, B=8 T=256)"
sft=$($BIN bench --objective sft --threads "$THREADS" --steps "$STEPS" --json)
snap=$($BIN bench --objective dpo --reference snapshot --threads "$THREADS" --steps "$STEPS" --json)
cach=$($BIN bench --objective dpo --reference cached --threads "$THREADS" --steps "$STEPS" --json)
s=$(field ms_per_step "$sft")
printf "SFT %.1f ms/step | DPO, snapshot reference %.1f ms (%sx, goal <= 2.2x) | DPO, cached log-probs %.1f ms (%sx, goal <= 2.05x)\n" \
  "$s" "$(field ms_per_step "$snap")" "$(ratio "$(field ms_per_step "$snap")" "$s")" \
  "$(field ms_per_step "$cach")" "$(ratio "$(field ms_per_step "$cach")" "$s")"
printf "peak RSS: SFT %.0f MiB, DPO snapshot %.0f MiB (+%.0f MiB: one parameter copy; activations are shared)\n" \
  "$(field peak_rss_mib "$sft")" "$(field peak_rss_mib "$snap")" \
  "$(awk -v a="$(field peak_rss_mib "$snap")" -v b="$(field peak_rss_mib "$sft")" 'BEGIN{print a-b}')"

echo; echo "== 2b. attribute-control KL (Meng et al. 2024): SFT + lambda KL toward a guide of the same size"
echo "   (small model, B=8 T=256; runs interleaved sft / attribute / sft / ..., best of 3 each:"
echo "    the CPU may be shared, and a neighbour only ever slows a run down)"
best_sft=""; best_att=""; best_nado=""
for rep in 1 2 3; do
  for o in sft attribute nado; do
    j=$($BIN bench --objective $o --threads "$THREADS" --steps "$STEPS" --json)
    v=$(field ms_per_step "$j")
    case $o in
      sft) [ -z "$best_sft" ] || awk -v a="$v" -v b="$best_sft" 'BEGIN{exit !(a < b)}' && { best_sft=$v; rss_sft=$(field peak_rss_mib "$j"); } ;;
      attribute) [ -z "$best_att" ] || awk -v a="$v" -v b="$best_att" 'BEGIN{exit !(a < b)}' && { best_att=$v; rss_att=$(field peak_rss_mib "$j"); } ;;
      nado) [ -z "$best_nado" ] || awk -v a="$v" -v b="$best_nado" 'BEGIN{exit !(a < b)}' && { best_nado=$v; rss_nado=$(field peak_rss_mib "$j"); } ;;
    esac
  done
done
printf "SFT %.1f ms/step | SFT + attribute KL %.1f ms (%sx, goal <= 1.6x) | NADO training step %.1f ms (%sx)\n" \
  "$best_sft" "$best_att" "$(ratio "$best_att" "$best_sft")" "$best_nado" "$(ratio "$best_nado" "$best_sft")"
printf "peak RSS: SFT %.0f MiB, attribute %.0f MiB (+%.0f MiB: the guide's weights and its (B,T,Vp) logits), NADO %.0f MiB\n" \
  "$rss_sft" "$rss_att" "$(awk -v a="$rss_att" -v b="$rss_sft" 'BEGIN{print a-b}')" "$rss_nado"

fi
if want 3; then
echo; echo "== 3. decoding with the KV cache vs PyTorch (greedy, 16-token prompts, best of 3; goal: bf16 >= 1.3x fp32 at batch 8)"
$PY tools/bench_decode.py --build "$BUILD"

fi
if want 4; then
echo; echo "== 4. scoring: logprob: / model: vs the forward pass of the same shape (L4 C256 V8192, B=16, rows of T=256)"
# Every row is cut to exactly max_len = maxT + 1 tokens (long responses), so the scorer's
# batches carry no padding and both numbers count the same positions. The scorer's time
# includes tokenising the rows, allocating its activations and the per-row reads (128 rows, 8
# forwards); the forward-only number is steady state. logprob: is compared with the language
# model's forward (LM head + log-softmax), model: (a reward model) with the reward model's
# forward (final LayerNorm + scalar head, bench --forward-only --reward). Measured
# interleaved (forward, score, three rounds), best of each: on a shared CPU single runs vary
# by 2x.
SD=$(mktemp -d)
if bench_corpus "$SD" '
with open(f"{d}/rows.jsonl", "w") as f:
    for i in range(32):
        resp = [{"text": " ".join(r.choice(words) for _ in range(300))} for _ in range(4)]
        f.write(json.dumps({"prompt": " ".join(r.choice(words) for _ in range(8)), "responses": resp}) + "\n")
' && bench_model "$SD/m" 256 && bench_model "$SD/rm" 256 --reward; then
  for kind in logprob model; do
    if [ $kind = logprob ]; then dir=$SD/m; flag=; else dir=$SD/rm; flag=--reward; fi
    best_fwd=0; best_score=0
    for round in 1 2 3; do
      f=$($BIN bench --forward-only $flag --layers 4 --heads 4 --dim 256 --vocab 8192 --batch 16 --seq 256 \
            --threads "$THREADS" --steps 4 --warmup 1 --json)
      s=$($BIN score --in "$SD/rows.jsonl" --scorer "$kind:$dir" --out "$SD/scored.jsonl" \
            --batch-size 16 --threads "$THREADS" 2>&1 | sed -nE 's/.* ([0-9.]+) tokens\/s.*/\1/p')
      fv=$(field tokens_per_s "$f")
      best_fwd=$(awk -v a="$best_fwd" -v b="$fv" 'BEGIN{print (b > a) ? b : a}')
      best_score=$(awk -v a="$best_score" -v b="${s:-0}" 'BEGIN{print (b > a) ? b : a}')
      printf "%-8s round %d: forward only %8.0f tok/s | %s: scoring %8.0f tok/s\n" "$kind:" "$round" "$fv" "$kind" "${s:-0}"
    done
    printf "%-8s best: forward only %.0f tok/s, %s: scoring %.0f tok/s: ratio %s (goal >= 0.80)\n" \
      "$kind:" "$best_fwd" "$kind" "$best_score" "$(ratio "$best_score" "$best_fwd")"
  done
else
  echo "scoring bench: setup failed"
fi
rm -rf "$SD"

fi
if want 5; then
echo; echo "== 5. PRS vs sample: generation tokens/s (L4 C256 V8192, 8 prompts, N=8, 32 new tokens)"
# (a) the same work: `tinyalign sample` run on exactly the prompts PRS decoded (its layer-0
#     queries with n = N0, its feedback prompts with n = 1, its revise prompts with n = N1,
#     read back from `prs --keep-prompts`), so the ratio measures PRS's own overhead;
# (b) the user's view at the same budget N: PRS vs `prs --mode rand` (= `sample --n N` on
#     the queries, the same call and responses: tests/cli/prs.sh). PRS's revise prompts
#     carry the question, the answer and the feedback (the paper's default templates:
#     ~150-300 tokens to prefill per prompt), so (b) is below (a) by the prefill.
# tokens/s = generated tokens / seconds from the first prefill to the last token (model
# loading and scoring excluded); best of three rounds, interleaved.
SD=$(mktemp -d)
# splits a --keep-prompts output into sample's prompt files: layer-0 queries, feedback
# prompts, revise prompts (one line per prompt each)
split_prompts() {
  $PY - "$1" "$SD" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out = {k: open(f"{sys.argv[2]}/{k}.jsonl", "w") for k in ("q", "fb", "rev")}
for r in rows:
    x = r["responses"]
    out["q"].write(json.dumps({"prompt": x[0]["input"]}) + "\n")
    last = x[-1]
    out["fb"].write(json.dumps({"prompt": last["feedback_input"]}) + "\n")
    out["rev"].write(json.dumps({"prompt": last["input"]}) + "\n")
PYEOF
}
# sample_tps FILE N: "tokens seconds" from sample's final progress line
sample_tps() {
  $BIN sample --model "$SD/m" --prompts "$1" --n "$2" --max-new-tokens 32 --temperature 0.8 \
    --top-k 50 --presence-penalty 1.2 --threads "$THREADS" --out "$SD/s.jsonl" 2>&1 \
    | tr '\r' '\n' | grep -E '^sample: [0-9]+/[0-9]+ prompts' | tail -n 1 \
    | sed -E 's/.* ([0-9]+) tokens \| ([0-9.]+) tok\/s .*/\1 \2/' | awk '{printf "%s %.6f\n", $1, $1 / $2}'
}
tps() { sed -E 's/.*"tokens_per_s":([0-9.e+-]+).*/\1/' "$1"; }
if bench_corpus "$SD" '
with open(f"{d}/prompts.jsonl", "w") as f:
    for i in range(8):
        f.write(json.dumps({"prompt": " ".join(r.choice(words) for _ in range(12))}) + "\n")
with open(f"{d}/words.txt", "w") as f:
    f.write("zzzz\n")
' && bench_model "$SD/m" 512; then
  best_s=0; best_p=0; best_r=0
  for round in 1 2 3; do
    for mode in rand prs; do
      $BIN prs --model "$SD/m" --prompts "$SD/prompts.jsonl" --scorer "banned:$SD/words.txt" --n 8 \
        --mode $mode --max-new-tokens 32 --preference "short answers" --threads "$THREADS" --quiet \
        --keep-prompts --out "$SD/$mode.jsonl" --summary "$SD/$mode.json"
    done
    split_prompts "$SD/prs.jsonl"
    s=$( { sample_tps "$SD/q.jsonl" 4; sample_tps "$SD/fb.jsonl" 1; sample_tps "$SD/rev.jsonl" 4; } \
         | awk '{t += $1; s += $2} END {printf "%.1f", (s > 0 ? t / s : 0)}')
    p=$(tps "$SD/prs.json"); r=$(tps "$SD/rand.json")
    best_s=$(awk -v a="$best_s" -v b="$s" 'BEGIN{print (b > a) ? b : a}')
    best_p=$(awk -v a="$best_p" -v b="$p" 'BEGIN{print (b > a) ? b : a}')
    best_r=$(awk -v a="$best_r" -v b="$r" 'BEGIN{print (b > a) ? b : a}')
    printf "round %d: prs %7.1f tok/s | sample on PRS's prompts %7.1f tok/s | prs --mode rand (sample --n 8) %7.1f tok/s\n" \
      "$round" "$p" "$s" "$r"
  done
  printf "best: (a) prs / sample on the same prompts = %s (goal >= 0.85) | (b) prs / rand at N=8 = %s\n" \
    "$(ratio "$best_p" "$best_s")" "$(ratio "$best_p" "$best_r")"
else
  echo "PRS bench: setup failed"
fi
rm -rf "$SD"
fi
if want 6; then
  echo; echo "== 6. memory: GPT-2 124M, B=8 T=1024, one fp32 training step: whole-batch logits vs chunks of 1024 rows"
  for c in 0 1024; do
    o=$($BIN bench --layers 12 --heads 12 --dim 768 --vocab 50257 --batch 8 --seq 1024 --steps 1 \
          --warmup 0 --threads "$THREADS" --lm-chunk "$c" --json)
    printf "lm_head_chunk %4d: peak RSS %6.0f MiB, logits + dlogits %6.0f MiB (%s of peak), %.0f ms/step\n" "$c" \
      "$(field peak_rss_mib "$o")" "$(field logits_mib "$o")" \
      "$(awk -v a="$(field logits_mib "$o")" -v b="$(field peak_rss_mib "$o")" 'BEGIN{printf "%.1f%%", 100*a/b}')" \
      "$(field ms_per_step "$o")"
  done
fi
