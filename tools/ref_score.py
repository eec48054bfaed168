#!/usr/bin/env python3
"""ref_score.py — independent reference implementations of tinyalign's built-in scorers, for
tests/cli/score.sh. Written from the documented rules, not from the C code.

Commands:
  logprob --in MULTI.jsonl --model DIR [--tokenizer SPM] --out OUT.jsonl [--eos-input]
      For every response: the row [BOS] prompt response [EOS] (prompt cut to maxT // 2 tokens,
      BOS included, keeping its end; the row cut to maxT + 1 tokens), run through a PyTorch
      GPT-2 (tools/hf_gpt2.py) in float64, and writes one JSON object per response:
      {"logprob", "logprob_mean", "tokens", "logprob_full", "logprob_full_mean",
       "tokens_full", "truncated"}.
  banned --in MULTI.jsonl --words FILE --out OUT.jsonl
      {"score": 1|0, "banned_count": n} per response: whole-word, ASCII case-insensitive
      matches of every listed word (a regex with explicit word-character look-arounds).
  compare A B [--tol T] [--fields f1,f2,...]
      A is tinyalign's scored multi-response file, B a file of one object per response (the
      commands above): every listed field (default: all of B's) agrees within T (absolute,
      relative for |x| > 1); booleans and integers exactly. Exit 1 on any difference.
"""
import argparse
import json
import math
import os
import re
import sys


def responses(path):
    for line in open(path, encoding="utf-8"):
        if line.strip():
            row = json.loads(line)
            for r in row["responses"]:
                yield row, r


def cmd_logprob(a):
    import sentencepiece as spm
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hf_gpt2
    model, cfg = hf_gpt2.load_dir(a.model)
    model.eval()
    sp = spm.SentencePieceProcessor(model_file=a.tokenizer or os.path.join(a.model, "tokenizer.model"))
    bos, eos = sp.bos_id(), sp.eos_id()
    maxT = cfg["n_positions"]
    max_len, max_prompt = maxT + 1, max(1, maxT // 2)
    nb = 1 if bos >= 0 else 0
    tr = model.transformer
    out = open(a.out, "w")
    for row, r in responses(a.inp):
        p, y = sp.encode(row["prompt"]), sp.encode(r["text"])
        cut_p = nb + len(p) > max_prompt
        if cut_p:
            p = p[len(p) - (max_prompt - nb):] if max_prompt - nb > 0 else []
        P = nb + len(p)
        seq = ([bos] if nb else []) + p + y + [eos]
        cut_r = len(seq) > max_len
        seq = seq[:max_len]
        L = len(seq)
        with torch.no_grad():
            idx = torch.tensor([seq[:L - 1]])
            x = tr.wte(idx) + tr.wpe(torch.arange(L - 1))
            for blk in tr.h:
                x = blk(x)
            logits = tr.ln_f(x)[0] @ tr.wte.weight.T
            lp = torch.log_softmax(logits, dim=-1)
            tok = lp.gather(1, torch.tensor(seq[1:])[:, None])[:, 0]
        resp = float(tok[P - 1:].sum())
        full = float(tok.sum())
        nr, nf = L - P, L - 1
        out.write(json.dumps({"logprob": resp, "logprob_mean": resp / nr, "tokens": nr,
                              "logprob_full": full, "logprob_full_mean": full / nf,
                              "tokens_full": nf, "truncated": bool(cut_p or cut_r)}) + "\n")


def cmd_banned(a):
    words = []
    for line in open(a.words, encoding="utf-8"):
        w = line.strip(" \t\r\n")
        if w and not w.startswith("#"):
            words.append(w)
    out = open(a.out, "w")
    for _, r in responses(a.inp):
        # a word character: ASCII letter, digit, '_' or any non-ASCII character
        text = r["text"]
        n = 0
        for w in words:
            pat = r"(?<![A-Za-z0-9_\u0080-\U0010FFFF])" + re.escape(w) + r"(?![A-Za-z0-9_\u0080-\U0010FFFF])"
            n += len(re.findall(pat, text, flags=re.IGNORECASE | re.ASCII))
        out.write(json.dumps({"score": 0 if n else 1, "banned_count": n}) + "\n")


def cmd_compare(a):
    got = [r for _, r in responses(a.a)]
    want = [json.loads(l) for l in open(a.b) if l.strip()]
    if len(got) != len(want):
        print(f"{len(got)} responses vs {len(want)} expected")
        return 1
    fields = a.fields.split(",") if a.fields else None
    bad = 0
    for i, (g, w) in enumerate(zip(got, want)):
        for k in fields or w.keys():
            if k not in g:
                print(f"response {i}: no field {k!r}")
                bad += 1
                continue
            x, y = g[k], w[k]
            if isinstance(y, bool) or isinstance(y, int) and not isinstance(y, bool):
                ok = x == y and type(x) == type(y)
            else:
                ok = math.isfinite(x) and abs(x - y) <= a.tol * max(1.0, abs(y))
            if not ok:
                if bad < 10:
                    print(f"response {i}: {k} = {x!r}, expected {y!r}")
                bad += 1
    if bad:
        print(f"{bad} differences")
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("logprob")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--tokenizer")
    p.add_argument("--out", required=True)
    p = sub.add_parser("banned")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--words", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("compare")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--tol", type=float, default=0.0)
    p.add_argument("--fields")
    a = ap.parse_args()
    return {"logprob": cmd_logprob, "banned": cmd_banned, "compare": cmd_compare}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
