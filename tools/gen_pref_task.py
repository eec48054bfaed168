#!/usr/bin/env python3
"""gen_pref_task.py — a small synthetic preference task with checkable answers, for the
SFT -> DPO / ORPO / DDPO / DORPO demo (configs/*-tiny.json) and tests/cli/objectives.sh.

The task: "reverse the word". A word is 3-6 letters over a small alphabet, written with
spaces between the letters so that a tiny SentencePiece model gives exactly one token per
letter ("▁k"):
    prompt   "reverse: k q z t ="
    correct  "t z q k"                     (the reversed word)
    wrong    "k q z t"                     (a verbatim copy of the word)    -- "copy"
             "t q z k"                     (the reversal with two letters swapped) -- "swap"
Palindromes are never drawn (their copy would be correct), and a "swap" always exchanges
two different letters, so every wrong answer really is wrong.

The preference "reverse rather than copy" is a rule, not a memorised list: the held-out
files use words that never occur in any training file, so held-out rewards/accuracies
measure whether the preference generalises.

Files written to --out DIR (deterministic for a given --seed and sizes):
  sft.jsonl, sft-val.jsonl     {"prompt", "completion"}: a MIX of correct and wrong
                               completions (default 40% correct, 45% copy, 15% swap), so
                               the SFT model leans towards copying and preference tuning
                               has something to fix
  prefs.jsonl, prefs-val.jsonl {"prompt", "chosen", "rejected"}: chosen = the reversal,
                               rejected = copy (75%) or swap (25%); val prompts held out
  prefs-weighted.jsonl         the prefs.jsonl pairs with a "weight" (DDPO / DORPO): a
                               deviation proxy, the chosen's normalised Hamming distance to
                               the rejected response (Chung et al. 2025 use the chosen's mean
                               embedding distance to the prompt's other responses; with two
                               responses per prompt that is this distance), rescaled to mean
                               1 over the file. Copies (far from the reversal) weigh ~1.2,
                               near-miss swaps ~0.5.
  prefs-val-weighted.jsonl     the same for the validation pairs
  prompts-val.jsonl            {"prompt", "answer"}: the held-out prompts (for sampling)
  tok_corpus.txt               text for the tokenizer: every line of the files above
  task.json                    the generation parameters and file sizes

Other modes:
  --check FILE.jsonl   scores generated outputs: rows {"prompt": ..., and one of
                       "completion" / "response" / "text" / "output" / "sample", or
                       "responses"/"samples": [str | {"text": str}]}; prints one JSON
                       object {"n", "correct", "copy", "swap", "other", "correct_frac", ...}.
  --greedy MODEL_DIR --prompts FILE.jsonl [--tokenizer SPM]
                       greedy decoding in PyTorch (tools/hf_gpt2.py, float64) of a tinyalign
                       checkpoint directory (or run directory: checkpoints/latest), then the
                       same scoring; for runs made before `tinyalign sample` exists. The
                       tokenizer defaults to MODEL_DIR/tokenizer.model.
  --check-tokenizer SPM  checks that every letter of the alphabet is one token.

score(prompt, output) -> "correct" | "copy" | "swap" | "other" is importable.
"""
import argparse
import json
import os
import random
import sys

PROMPT_PREFIX = "reverse: "
PROMPT_SUFFIX = " ="


def word_of_prompt(prompt):
    """The letters of a task prompt, or None when it is not one."""
    p = prompt.strip()
    if not (p.startswith(PROMPT_PREFIX.strip()) and p.endswith(PROMPT_SUFFIX.strip())):
        return None
    body = p[len(PROMPT_PREFIX.strip()):-len(PROMPT_SUFFIX.strip())]
    letters = body.split()
    return letters or None


def make_prompt(word):
    return PROMPT_PREFIX + " ".join(word) + PROMPT_SUFFIX


def render(letters):
    return " ".join(letters)


def reverse(word):
    return list(reversed(word))


def swapped(word, rng):
    """The reversal of word with two positions holding different letters exchanged (never
    the copy itself: for a 3-letter word, swapping the outer letters would give it back)."""
    r = reverse(word)
    cands = []
    for i in range(len(r)):
        for j in range(i + 1, len(r)):
            if r[i] != r[j]:
                s = list(r)
                s[i], s[j] = s[j], s[i]
                if s != word:
                    cands.append(s)
    return rng.choice(cands)


def score(prompt, output):
    """Classifies a generated output for a task prompt: correct / copy / swap / other."""
    word = word_of_prompt(prompt)
    if word is None:
        return "other"
    out = output.split()
    if out == reverse(word):
        return "correct"
    if out == word:
        return "copy"
    r = reverse(word)
    if len(out) == len(r) and sorted(out) == sorted(r):
        diff = [i for i in range(len(r)) if out[i] != r[i]]
        if len(diff) == 2:
            return "swap"
    return "other"


def draw_word(rng, alphabet, lo, hi):
    while True:
        w = [rng.choice(alphabet) for _ in range(rng.randint(lo, hi))]
        if w != w[::-1]:  # no palindromes: their copy is the correct answer
            return w


def hamming_frac(a, b):
    return sum(x != y for x, y in zip(a, b)) / max(len(a), len(b))


def write_jsonl(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, path)


def generate(a):
    rng = random.Random(a.seed)
    alphabet = list(a.alphabet)
    if len(set(alphabet)) != len(alphabet) or not all(c.isalpha() and c.islower() for c in alphabet):
        raise SystemExit("gen_pref_task: --alphabet must be distinct lower-case letters")
    # held-out words first: no training file ever contains them
    val_words = set()
    n_val = max(a.val, a.pref_val)
    while len(val_words) < n_val:
        val_words.add(tuple(draw_word(rng, alphabet, a.min_len, a.max_len)))
    val_list = sorted(val_words)
    rng.shuffle(val_list)

    def train_word():
        while True:
            w = draw_word(rng, alphabet, a.min_len, a.max_len)
            if tuple(w) not in val_words:
                return w

    def sft_row(w):
        u = rng.random()
        if u < a.sft_correct:
            c = reverse(w)
        elif u < a.sft_correct + (1 - a.sft_correct) * a.copy_share:
            c = w
        else:
            c = swapped(w, rng)
        return {"prompt": make_prompt(w), "completion": render(c)}

    def pref_row(w):
        rej = w if rng.random() < a.copy_share else swapped(w, rng)
        return {"prompt": make_prompt(w), "chosen": render(reverse(w)), "rejected": render(rej)}

    sft = [sft_row(train_word()) for _ in range(a.sft)]
    sft_val = [sft_row(list(w)) for w in val_list[:a.val]]
    prefs = [pref_row(train_word()) for _ in range(a.prefs)]
    prefs_val = [pref_row(list(w)) for w in val_list[:a.pref_val]]

    def weighted(rows):
        dev = [hamming_frac(r["chosen"].split(), r["rejected"].split()) for r in rows]
        mean = sum(dev) / len(dev)
        return [dict(r, weight=round(d / mean, 6)) for r, d in zip(rows, dev)]

    os.makedirs(a.out, exist_ok=True)
    files = {
        "sft.jsonl": sft, "sft-val.jsonl": sft_val, "prefs.jsonl": prefs,
        "prefs-val.jsonl": prefs_val, "prefs-weighted.jsonl": weighted(prefs),
        "prefs-val-weighted.jsonl": weighted(prefs_val),
        "prompts-val.jsonl": [{"prompt": make_prompt(list(w)), "answer": render(reverse(list(w)))}
                              for w in val_list[:a.pref_val]],
    }
    for name, rows in files.items():
        write_jsonl(os.path.join(a.out, name), rows)
    # tokenizer corpus: prompts and every response text, one per line
    lines = []
    for r in sft + prefs:
        lines.append(r["prompt"])
        for k in ("completion", "chosen", "rejected"):
            if k in r:
                lines.append(r[k])
    with open(os.path.join(a.out, "tok_corpus.txt.tmp"), "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(os.path.join(a.out, "tok_corpus.txt.tmp"), os.path.join(a.out, "tok_corpus.txt"))
    info = {"task": "reverse the word", "seed": a.seed, "alphabet": a.alphabet,
            "word_len": [a.min_len, a.max_len], "sft_correct": a.sft_correct,
            "copy_share": a.copy_share, "sizes": {k: len(v) for k, v in files.items()}}
    with open(os.path.join(a.out, "task.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    print("gen_pref_task: %s: %s" % (a.out, ", ".join("%s %d" % (k, len(v)) for k, v in files.items())))


# ---- scoring --------------------------------------------------------------------------

def outputs_of(row):
    for k in ("completion", "response", "text", "output", "sample", "generation"):
        if isinstance(row.get(k), str):
            return [row[k]]
    for k in ("responses", "samples", "outputs", "completions"):
        v = row.get(k)
        if isinstance(v, list):
            return [x if isinstance(x, str) else x.get("text", "") for x in v]
    return []


def summarize(pairs):
    """pairs: [(prompt, output)] -> dict of counts and fractions."""
    counts = {"correct": 0, "copy": 0, "swap": 0, "other": 0}
    for p, o in pairs:
        counts[score(p, o)] += 1
    n = len(pairs)
    out = {"n": n}
    out.update(counts)
    for k in counts:
        out[k + "_frac"] = round(counts[k] / n, 4) if n else 0.0
    return out


def cmd_check(path):
    pairs = []
    with open(path) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                for o in outputs_of(row):
                    pairs.append((row.get("prompt", ""), o))
    print(json.dumps(summarize(pairs)))


def resolve_model_dir(d):
    """A checkpoint directory, or a run / checkpoints directory with a `latest` pointer."""
    for cand in (d, os.path.join(d, "checkpoints")):
        latest = os.path.join(cand, "latest")
        if os.path.isfile(latest):
            return os.path.join(cand, open(latest).read().strip())
    return d


def cmd_greedy(a):
    import torch
    import sentencepiece as spm
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hf_gpt2
    mdir = resolve_model_dir(a.greedy)
    torch.set_num_threads(max(1, a.threads))
    model, cfg = hf_gpt2.load_dir(mdir, dtype=torch.float64)
    model.eval()
    sp = spm.SentencePieceProcessor(model_file=a.tokenizer or os.path.join(mdir, "tokenizer.model"))
    bos, eos = sp.bos_id(), sp.eos_id()
    prompts = []
    with open(a.prompts) as f:
        for line in f:
            if line.strip():
                prompts.append(json.loads(line)["prompt"])
    maxT = cfg["n_positions"]
    results = []
    rows = []
    # group prompts by token length: one batched greedy decode per group
    enc = [([bos] if bos >= 0 else []) + sp.encode(p) for p in prompts]
    by_len = {}
    for i, ids in enumerate(enc):
        by_len.setdefault(len(ids), []).append(i)
    outs = [None] * len(prompts)
    with torch.no_grad():
        for L, idxs in sorted(by_len.items()):
            x = torch.tensor([enc[i] for i in idxs], dtype=torch.long)
            done = torch.zeros(len(idxs), dtype=torch.bool)
            gen = [[] for _ in idxs]
            for _ in range(min(a.max_new_tokens, maxT - L)):
                logits = model(x)[:, -1, :]
                V = sp.get_piece_size()
                nxt = logits[:, :V].argmax(dim=-1)
                for k in range(len(idxs)):
                    if not done[k]:
                        if int(nxt[k]) == eos:
                            done[k] = True
                        else:
                            gen[k].append(int(nxt[k]))
                if bool(done.all()):
                    break
                x = torch.cat([x, nxt[:, None]], dim=1)
            for k, i in enumerate(idxs):
                outs[i] = sp.decode(gen[k])
    for p, o in zip(prompts, outs):
        results.append((p, o))
        rows.append({"prompt": p, "completion": o, "score": score(p, o)})
    if a.out:
        write_jsonl(a.out, rows)
    s = summarize(results)
    s["model"] = mdir
    print(json.dumps(s))


def cmd_check_tokenizer(a):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=a.check_tokenizer)
    bad = []
    for c in a.alphabet:
        ids = sp.encode(c)
        if len(ids) != 1 or sp.id_to_piece(ids[0]) != "\u2581" + c:
            bad.append("%s -> %s" % (c, [sp.id_to_piece(i) for i in ids]))
    w = list(a.alphabet[:4])
    ids = sp.encode(render(w))
    if len(ids) != len(w):
        bad.append("%r -> %s" % (render(w), [sp.id_to_piece(i) for i in ids]))
    if sp.unk_id() in sp.encode(make_prompt(w)):
        bad.append("prompt %r has unknown pieces" % make_prompt(w))
    if bad:
        raise SystemExit("gen_pref_task: tokenizer %s is not one token per letter: %s"
                         % (a.check_tokenizer, "; ".join(bad)))
    print("gen_pref_task: tokenizer %s: one token per letter, %d pieces" % (a.check_tokenizer, sp.get_piece_size()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the task files into this directory")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--alphabet", default="abcdefgh")
    ap.add_argument("--min-len", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=6)
    ap.add_argument("--sft", type=int, default=20000, help="SFT training examples")
    ap.add_argument("--val", type=int, default=256, help="SFT validation examples")
    ap.add_argument("--prefs", type=int, default=4000, help="preference training pairs")
    ap.add_argument("--pref-val", type=int, default=256, help="preference validation pairs")
    ap.add_argument("--sft-correct", type=float, default=0.4, help="share of correct SFT completions")
    ap.add_argument("--copy-share", type=float, default=0.75,
                    help="share of copies among wrong answers (the rest are swaps)")
    ap.add_argument("--check", metavar="FILE", help="score generated outputs in FILE.jsonl")
    ap.add_argument("--greedy", metavar="MODEL_DIR", help="greedy-decode --prompts with this model")
    ap.add_argument("--prompts", help="JSONL with \"prompt\" (for --greedy)")
    ap.add_argument("--tokenizer", help="SentencePiece model (for --greedy)")
    ap.add_argument("--max-new-tokens", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--check-tokenizer", metavar="SPM")
    a = ap.parse_args()
    if a.check:
        cmd_check(a.check)
    elif a.greedy:
        if not a.prompts:
            ap.error("--greedy needs --prompts")
        cmd_greedy(a)
    elif a.check_tokenizer:
        cmd_check_tokenizer(a)
    elif a.out:
        if not 3 <= a.min_len <= a.max_len:
            ap.error("need 3 <= --min-len <= --max-len")
        if sum(len(a.alphabet) ** n for n in range(a.min_len, a.max_len + 1)) < 4 * max(a.val, a.pref_val):
            ap.error("too few distinct words for the held-out set")
        generate(a)
    else:
        ap.error("one of --out, --check, --greedy, --check-tokenizer is required")


if __name__ == "__main__":
    main()
