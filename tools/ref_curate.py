#!/usr/bin/env python3
"""ref_curate.py — an independent numpy reimplementation of tinyalign's diversity curation
(Chung et al. 2025, arXiv 2503.17126: pairs with a gap, deviation weights, metrics; DivPO,
Lanchantin et al. 2025, arXiv 2501.18101), for cross-checking `tinyalign curate` in
tests/cli/curate.sh and tests/test_curate.c. Written from the papers, the authors' released
scripts and the documented conventions in include/tinyalign/curate.h / diversity.h, not from
the C code:

  deviation  d_i = mean_{j != i} (1 - cos(e_i, e_j)) over a multiset (summed in index order,
             identical vectors exactly 0 apart, rounded to 1e-12); s = per-prompt min-max
             to [-1, 1] (0 when max - min <= 1e-6); u = geometric mean of (s + 1) / 2 over
             sources; s = 2u - 1; score = (N s - sum s) / (N + sum s) unless all s equal;
             weight = score + 1.
  pairs      sample_pairs_with_gap (disjoint, gap, fallback, gap -1 = all pairs <= 100,
             gap auto = 0.2 x the file's score range), texts that are identical never
             paired; weights over the paired multiset.
  divpo      k = int(min(max(M, n rho / 100), n / 2)), m = min(M, k); High / Low pools,
             criterion recomputed inside each pool; shuffled and zipped.
  metrics    distinct-n (n-grams inside each response, pooled; null without n-grams),
             n-gram diversity (the same n-grams, summed over n = 1..4) and its joined form
             (n-grams of the space-joined texts), gzip compression ratio
             (Python's gzip, level 9).
The random draws replay tinyalign's xoshiro256** / splitmix64 (src/core/common.c's
documented algorithm) so pairs can be compared exactly.

Commands (outputs mirror the C commands' files):
  deviation --in F --out O [--source S ...]
  pairs     --in F --out O [--source S ... | --source none] [--gap G] [--seed S]
            [--max-pairs-per-prompt N] [--sort-with-score] [--min-weight W]
  divpo     --in F --out O [--source S ...] [--criterion deviation|logprob] [--model DIR]
            [--rho R] [--max-pairs M] [--seed S]
  diversity --in F [--source S ...]         one JSON object on stdout
  lexical   --in TEXTS.json --out VECS.json  (list of strings -> list of vectors)
  gzip      --in FILE --out FILE.gz          gzip.compress(data, 9, mtime=0)
  compare   A.jsonl B.jsonl [--tol T]        same JSON structure, numbers within T
                                             (relative to max(1, |x|)); exit 1 on difference
Sources: field:NAME, lexical, model:DIR (PyTorch GPT-2 of tools/hf_gpt2.py in float64 with
python3-sentencepiece; tokenizer from DIR/tokenizer.model or --tokenizer).
"""
import argparse
import gzip
import json
import math
import os
import re
import sys

import numpy as np

M64 = (1 << 64) - 1
TIE_EPS = 1e-6
LEX_DIM = 1024
ALL_PAIRS_MAX = 100
NEAR_TIE = 1e-3  # |S_a - S_b| below this is a near tie (round-off between implementations ~1e-5)


# ---- RNG: splitmix64-seeded xoshiro256** -----------------------------------------------------
class Rng:
    def __init__(self, seed):
        x = seed & M64
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & M64

    def u64(self):
        s = self.s
        result = (self._rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def below(self, n):
        limit = M64 - (M64 % n)
        while True:
            x = self.u64()
            if x < limit:
                return x % n

    def shuffle(self, a):
        for i in range(len(a), 1, -1):
            j = self.below(i)
            a[i - 1], a[j] = a[j], a[i - 1]


def prompt_seed(seed, i):
    return (seed + 0x9E3779B97F4A7C15 * (i + 1)) & M64


# ---- embeddings ---------------------------------------------------------------------------------
def fnv1a(data, h=0xCBF29CE484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


WS = re.compile(r"[ \t\n\v\f\r]+")


def words(text):
    return [w for w in WS.split(text) if w]


def lexical(text):
    groups = [np.zeros(LEX_DIM), np.zeros(LEX_DIM), np.zeros(LEX_DIM)]
    p = " " + text + " "
    for i in range(len(p) - 2):
        groups[0][fnv1a(b"c" + p[i:i + 3].encode("utf-8")) % LEX_DIM] += 1
    if len(p) < 3:  # "": no 3-gram, no word; the padded text itself is its one feature
        groups[0][fnv1a(b"c" + p.encode("utf-8")) % LEX_DIM] += 1
    ws = [w.encode("utf-8") for w in words(text)]
    for i, w in enumerate(ws):
        groups[1][fnv1a(b"w" + w) % LEX_DIM] += 1
        if i:
            groups[2][fnv1a(b"b" + ws[i - 1] + b"\x1f" + w) % LEX_DIM] += 1
    acc = np.zeros(LEX_DIM)
    for g in groups:
        n = np.linalg.norm(g)
        if n > 0:
            acc += g / n
    return (acc / np.linalg.norm(acc)).astype(np.float32)


def model_features(rows, model_dir, tokenizer):
    """rows: list of (prompt, response). Returns (embeddings (R, C), logps (R,))."""
    import sentencepiece as spm
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hf_gpt2
    model, cfg = hf_gpt2.load_dir(model_dir)
    model.eval()
    sp = spm.SentencePieceProcessor(model_file=tokenizer or os.path.join(model_dir, "tokenizer.model"))
    bos, eos = sp.bos_id(), sp.eos_id()
    maxT = cfg["n_positions"]
    max_len, max_prompt = maxT + 1, max(1, maxT // 2)
    nb, ne = (1 if bos >= 0 else 0), (1 if eos >= 0 else 0)
    embs, logps = [], []
    tr = model.transformer
    for prompt, resp in rows:
        p, r = sp.encode(prompt), sp.encode(resp)
        keep = len(p)
        if nb + len(p) > max_prompt:
            keep = max_prompt - nb
        p = p[len(p) - keep:] if keep > 0 else []
        P = nb + len(p)
        seq = ([bos] if nb else []) + p + r + ([eos] if ne else [])
        seq = seq[:max_len]
        L = len(seq)
        idx = torch.tensor([seq[:L - 1]])
        with torch.no_grad():
            x = tr.wte(idx) + tr.wpe(torch.arange(L - 1))
            for blk in tr.h:
                x = blk(x)
            h = tr.ln_f(x)[0]
            logits = h @ tr.wte.weight.T
            lp = torch.log_softmax(logits, dim=-1)
        lo, hi = P, L - 1
        if lo >= hi:
            lo, hi = L - 2, L - 1
        embs.append(h[lo:hi].mean(0).numpy())
        logps.append(float(sum(lp[t, seq[t + 1]] for t in range(max(P - 1, 0), L - 1))))
    return np.array(embs), np.array(logps)


def embed(data, spec, tokenizer=None):
    """(R, D) float64 matrix for all responses of data (list of line dicts), in order."""
    resps = [(d["prompt"], r) for d in data for r in d["responses"]]
    if spec == "lexical":
        return np.array([lexical(r["text"]) for _, r in resps], dtype=np.float64)
    if spec.startswith("field:"):
        name = spec[6:]
        return np.array([np.array(r[name], dtype=np.float32) for _, r in resps], dtype=np.float64)
    if spec.startswith("model:"):
        e, _ = model_features([(p, r["text"]) for p, r in resps], spec[6:], tokenizer)
        return e.astype(np.float32).astype(np.float64)
    raise SystemExit(f"bad source {spec}")


# ---- the math -------------------------------------------------------------------------------------
def deviation(E, idx):
    """Sums in index order; identical vectors are exactly 0 apart (copies of a response
    tie exactly, as documented for the C code)."""
    X = E[idx]
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    n = len(idx)
    dev = [0.0] * n
    for a in range(n):
        for b in range(n):
            if a != b and not np.array_equal(X[a], X[b]):
                dev[a] += 1.0 - float(np.dot(U[a], U[b]))
    # rounded to a 1e-12 grid, as documented: mathematically equal deviations tie exactly
    return np.array([math.floor(d / (n - 1) * 1e12 + 0.5) / 1e12 for d in dev])


def weights(devs):
    """devs: list of K arrays (n,). Returns (w, u)."""
    K, n = len(devs), len(devs[0])
    u = np.ones(n)
    for d in devs:
        lo, hi = d.min(), d.max()
        s = np.zeros(n) if hi - lo <= TIE_EPS else 2 * (d - lo) / (hi - lo) - 1
        u = u * ((s + 1) / 2) ** (1.0 / K)
    s = 2 * u - 1
    if np.all(s == s[0]):
        score = s
    else:
        score = (n * s - s.sum()) / (n + s.sum())
    return score + 1, u


def sample_pairs(scores, texts, gap, rng):
    n = len(scores)
    ok = lambda i, j: scores[i] != scores[j] and texts[i] != texts[j]
    if gap == -1:
        cand = [(i, j) for i in range(n) for j in range(i + 1, n) if ok(i, j)]
        if len(cand) > ALL_PAIRS_MAX:
            for t in range(ALL_PAIRS_MAX):
                k = t + rng.below(len(cand) - t)
                cand[t], cand[k] = cand[k], cand[t]
            cand = cand[:ALL_PAIRS_MAX]
        return [(i, j) if scores[i] > scores[j] else (j, i) for i, j in cand], False
    avail = list(range(n))
    out, fb = [], False
    while len(avail) >= 2:
        cand = [(i, j) for a, i in enumerate(avail) for j in avail[a + 1:]
                if ok(i, j) and abs(scores[i] - scores[j]) >= gap]
        if not cand:
            cand = [(i, j) for a, i in enumerate(avail) for j in avail[a + 1:] if ok(i, j)]
            if not cand:
                break
            fb = True
        i, j = cand[rng.below(len(cand))]
        out.append((i, j) if scores[i] > scores[j] else (j, i))
        avail.remove(i)
        avail.remove(j)
    return out, fb


def divpo_select(scores, rho, max_pairs, div, rng):
    n = len(scores)
    if n < 2:
        return []
    k = int(min(max(max_pairs, n * rho / 100), n / 2))
    m = min(max_pairs, k)
    if m < 1:
        return []
    order = sorted(range(n), key=lambda i: -scores[i])  # stable: ties by index
    high = order[:k]
    low = order[n - k:][::-1]
    dh, dl = div(high), div(low)
    ch = [high[t] for t in sorted(range(k), key=lambda t: -dh[t])[:m]]
    rj = [low[t] for t in sorted(range(k), key=lambda t: dl[t])[:m]]
    rng.shuffle(ch)
    rng.shuffle(rj)
    return list(zip(ch, rj))


def ngrams(toks, n):
    return [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]


def distinct_n(texts, n):
    """n-grams inside each text, pooled; None (undefined) when no text has n words."""
    g = [x for t in texts for x in ngrams(words(t), n)]
    return len(set(g)) / len(g) if g else None


def ngram_diversity(texts):
    """sum over n = 1..4 of unique/total n-grams taken inside each text (none: 0)."""
    total = 0.0
    for n in range(1, 5):
        g = [x for t in texts for x in ngrams(words(t), n)]
        total += len(set(g)) / len(g) if g else 0.0
    return total


def ngram_diversity_joined(texts):
    """The DDPO authors' form: the same over the space-joined texts."""
    toks = words(" ".join(texts))
    total = 0.0
    for n in range(1, 5):
        g = ngrams(toks, n)
        total += len(set(g)) / len(g) if g else 0.0
    return total


def compression_ratio(texts):
    s = " ".join(texts).encode("utf-8")
    return len(s) / len(gzip.compress(s, 9, mtime=0))


# ---- commands ---------------------------------------------------------------------------------
def load(path):
    return [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]


def offsets(data):
    off, o = [], 0
    for d in data:
        off.append(o)
        o += len(d["responses"])
    return off


PAIR_KEYS = ("chosen", "rejected", "weight", "chosen_score", "rejected_score")


def row_fields(d):
    """The prompt row's own fields, which every output row keeps (those a pair sets itself,
    and prompt / responses, excepted)."""
    return {k: v for k, v in d.items() if k not in ("prompt", "responses") + PAIR_KEYS}


def sources_of(a, default="field:embedding"):
    return a.source or [default]


def cmd_deviation(a):
    data = load(a.inp)
    srcs = sources_of(a)
    E = [embed(data, s, a.tokenizer) for s in srcs]
    off = offsets(data)
    with open(a.out, "w") as f:
        for p, d in enumerate(data):
            n = len(d["responses"])
            if n >= 2:
                idx = list(range(off[p], off[p] + n))
                devs = [deviation(e, idx) for e in E]
                w, _ = weights(devs)
                for j, r in enumerate(d["responses"]):
                    for k in [k for k in r if k == "deviation" or k.startswith("deviation/") or k == "weight"]:
                        del r[k]
                    for s, dv in zip(srcs, devs):
                        r["deviation" if len(srcs) == 1 else "deviation/" + s] = float(dv[j])
                    r["weight"] = float(w[j])
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


def cmd_pairs(a):
    data = load(a.inp)
    none = a.source == ["none"]
    srcs = sources_of(a) if not none else []
    if not none and not a.source and all("weight" in r for d in data if len(d["responses"]) >= 2
                                         for r in d["responses"]):
        srcs = None  # the responses' own weights
    E = [embed(data, s, a.tokenizer) for s in srcs] if srcs else []
    off = offsets(data)
    gap = a.gap
    if gap == "auto":  # 0.2 x the score range of the prompts paired
        sc = [r["score"] for d in data if len(d["responses"]) >= 2 for r in d["responses"]]
        gap = 0.2 * (max(sc) - min(sc)) if sc and max(sc) > min(sc) else 0.0
    gap = float(gap)
    with open(a.out, "w") as f:
        for p, d in enumerate(data):
            rs = d["responses"]
            if len(rs) < 2:
                continue
            scores = [r["score"] for r in rs]
            texts = [r["text"] for r in rs]
            pairs, _ = sample_pairs(scores, texts, gap, Rng(prompt_seed(a.seed, p)))
            if not pairs:
                continue
            if a.max_pairs_per_prompt and len(pairs) > a.max_pairs_per_prompt:
                if a.sort_with_score:
                    pairs = sorted(pairs, key=lambda q: -scores[q[0]])
                pairs = pairs[:a.max_pairs_per_prompt]
            if srcs:
                idx = [off[p] + x for q in pairs for x in q]
                w, _ = weights([deviation(e, idx) for e in E])
                wc = [w[2 * t] for t in range(len(pairs))]
            elif srcs is None:
                wc = [rs[c]["weight"] for c, _ in pairs]
            else:
                wc = [1.0] * len(pairs)
            for (c, r), w in zip(pairs, wc):
                if a.min_weight is not None and w < a.min_weight:
                    w = a.min_weight
                o = {"prompt": d["prompt"], "chosen": texts[c], "rejected": texts[r]}
                if not none:
                    o["weight"] = float(w)
                o["chosen_score"] = scores[c]
                o["rejected_score"] = scores[r]
                o.update(row_fields(d))
                f.write(json.dumps(o, ensure_ascii=False) + "\n")


def cmd_divpo(a):
    data = load(a.inp)
    off = offsets(data)
    if a.criterion == "logprob":
        rows = [(d["prompt"], r["text"]) for d in data for r in d["responses"]]
        _, logp = model_features(rows, a.model, a.tokenizer)
        # S(y) as the engine stores it (objective_sequence_logps: summed in double, kept as
        # a float); copies of a response tie exactly on both sides. Two DIFFERENT responses
        # whose S differ by less than float32 round-off between two implementations could
        # be ordered differently by the engine and by PyTorch, so the test data must have
        # none: refuse it rather than compare a coin flip.
        logp = [float(np.float32(x)) for x in logp]
        off = offsets(data)
        for p, d in enumerate(data):
            seen = {}
            for j, r in enumerate(d["responses"]):
                seen.setdefault(r["text"], logp[off[p] + j])
            v = sorted(seen.values())
            for x, y in zip(v, v[1:]):
                if y - x < NEAR_TIE:
                    raise SystemExit(f"{a.inp}: prompt {p + 1}: two different responses have "
                                     f"log-probs {x!r} and {y!r} (closer than {NEAR_TIE}): a near "
                                     "tie the selection would hinge on; pick other test data")
    else:
        E = [embed(data, s, a.tokenizer) for s in sources_of(a)]
    with open(a.out, "w") as f:
        for p, d in enumerate(data):
            rs = d["responses"]
            if len(rs) < 2:
                continue
            scores = [r["score"] for r in rs]

            def div(pool):
                if a.criterion == "logprob":
                    return [-logp[off[p] + i] for i in pool]
                if len(pool) < 2:
                    return [0.0] * len(pool)
                _, u = weights([deviation(e, [off[p] + i for i in pool]) for e in E])
                return list(u)

            for c, r in divpo_select(scores, a.rho, a.max_pairs, div, Rng(prompt_seed(a.seed, p))):
                if scores[c] == scores[r] or rs[c]["text"] == rs[r]["text"]:
                    continue
                o = {"prompt": d["prompt"], "chosen": rs[c]["text"], "rejected": rs[r]["text"],
                     "chosen_score": scores[c], "rejected_score": scores[r]}
                o.update(row_fields(d))
                f.write(json.dumps(o, ensure_ascii=False) + "\n")


def cmd_diversity(a):
    data = load(a.inp)
    lines = [i + 1 for i, l in enumerate(open(a.inp, encoding="utf-8")) if l.strip()]
    srcs = a.source or (["lexical"] + (["field:embedding"] if all(
        "embedding" in r for d in data for r in d["responses"]) else []))
    E = [embed(data, s, a.tokenizer) for s in srcs]
    off = offsets(data)
    per = []
    for p, d in enumerate(data):
        texts = [r["text"] for r in d["responses"]]
        n = len(texts)
        if n < 2:
            continue
        m = {"index": p, "line": lines[p], "n_responses": n}
        for k in range(1, 5):
            m[f"distinct_{k}"] = distinct_n(texts, k)
        m["ngram_diversity"] = ngram_diversity(texts)
        m["ngram_diversity_joined"] = ngram_diversity_joined(texts)
        m["compression_ratio"] = compression_ratio(texts)
        for s, e in zip(srcs, E):
            m["embedding_distance/" + s] = float(deviation(e, list(range(off[p], off[p] + n))).mean())
        per.append(m)
    keys = [k for k in per[0] if k not in ("index", "line", "n_responses")] if per else []
    # the mean over the prompts where a metric is defined (distinct-n: null without n-grams)
    overall = {k: (float(np.mean(v)) if v else None)
               for k in keys for v in [[m[k] for m in per if m[k] is not None]]}
    print(json.dumps({"prompts": len(data), "scored_prompts": len(per),
                      "responses": sum(m["n_responses"] for m in per),
                      "skipped_single_response": len(data) - len(per), "sources": srcs,
                      "overall": overall, "per_prompt": per}))


def cmd_lexical(a):
    texts = json.load(open(a.inp, encoding="utf-8"))
    json.dump([[float(x) for x in lexical(t)] for t in texts], open(a.out, "w"))


def cmd_gzip(a):
    open(a.out, "wb").write(gzip.compress(open(a.inp, "rb").read(), 9, mtime=0))


def close(x, y, tol, where):
    if isinstance(x, bool) or isinstance(y, bool):
        if x != y:
            raise SystemExit(f"{where}: {x!r} != {y!r}")
    elif isinstance(x, (int, float)) and isinstance(y, (int, float)):
        if abs(x - y) > tol * max(1.0, abs(x), abs(y)):
            raise SystemExit(f"{where}: {x!r} != {y!r} (tol {tol})")
    elif isinstance(x, dict) and isinstance(y, dict):
        if set(x) != set(y):
            raise SystemExit(f"{where}: keys differ: {sorted(set(x) ^ set(y))}")
        for k in x:
            close(x[k], y[k], tol, f"{where}.{k}")
    elif isinstance(x, list) and isinstance(y, list):
        if len(x) != len(y):
            raise SystemExit(f"{where}: lengths {len(x)} != {len(y)}")
        for i, (u, v) in enumerate(zip(x, y)):
            close(u, v, tol, f"{where}[{i}]")
    elif x != y:
        raise SystemExit(f"{where}: {x!r} != {y!r}")


def cmd_compare(a):
    A, B = load(a.a), load(a.b)
    if len(A) != len(B):
        raise SystemExit(f"{a.a} has {len(A)} lines, {a.b} has {len(B)}")
    for i, (x, y) in enumerate(zip(A, B)):
        close(x, y, a.tol, f"line {i + 1}")
    print(f"{len(A)} lines agree")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, out=True):
        p.add_argument("--in", dest="inp", required=True)
        if out:
            p.add_argument("--out", required=True)
        p.add_argument("--source", action="append")
        p.add_argument("--tokenizer")
        return p

    common(sub.add_parser("deviation"))
    p = common(sub.add_parser("pairs"))
    p.add_argument("--gap", default="auto")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-pairs-per-prompt", type=int, default=0)
    p.add_argument("--sort-with-score", action="store_true")
    p.add_argument("--min-weight", type=float)
    p = common(sub.add_parser("divpo"))
    p.add_argument("--criterion", default="deviation")
    p.add_argument("--model")
    p.add_argument("--rho", type=float, default=25)
    p.add_argument("--max-pairs", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    common(sub.add_parser("diversity"), out=False)
    p = sub.add_parser("lexical")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("gzip")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("compare")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--tol", type=float, default=1e-9)
    a = ap.parse_args()
    {"deviation": cmd_deviation, "pairs": cmd_pairs, "divpo": cmd_divpo,
     "diversity": cmd_diversity, "lexical": cmd_lexical, "gzip": cmd_gzip,
     "compare": cmd_compare}[a.cmd](a)


if __name__ == "__main__":
    main()
