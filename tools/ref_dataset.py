#!/usr/bin/python3
"""ref_dataset.py — an independent Python reimplementation of tinyalign's JSONL dataset
convention (src/data/jsonl_dataset.c), used by tests/test_dataset.c to check the C loader
token for token. Uses Debian's python3-sentencepiece (run it with /usr/bin/python3).

  ref_dataset.py MODEL DATA.jsonl KIND MAX_LEN MAX_PROMPT_LEN MODE IDS OUT
      KIND sft | preference | multi; MODE keep_end | keep_start; IDS comma-separated
      example indices (or "all"). Writes to OUT the batch those examples make:
        line 1: "B T n_pairs n_examples n_truncated"
        then per row, 4 lines: "length weight example_id", tokens, targets, loss_mask
        (each T space-separated integers); last line "hash HEX", the dataset hash
        (dataset_hash: FNV-1a 64 over little-endian fields, recomputed here from scratch).

The convention (TRL-style, as documented in the C file):
  seq = [bos] + encode(prompt) + encode(response) + [eos]  (bos only if the model has one)
  prompt cut: [bos] + prompt longer than max_prompt_len -> the prompt keeps its last
  (keep_end) or first (keep_start) max_prompt_len - (1 if bos) tokens, bos stays;
  response cut: a row longer than max_len is cut at its end to max_len (eos then absent).
  tokens[t] = seq[t], targets[t] = seq[t+1] for t < len-1, else pad (pad id or eos) / -1;
  loss_mask[t] = 1 iff targets[t] is a response token or eos; T = max(len - 1).
  Preference batches: chosen rows first, then rejected rows; weight on both.
"""
import json
import struct
import sys

import sentencepiece as spm


def build_rows(sp, path, kind, max_len, max_prompt_len, mode):
    """Returns (rows, examples, truncated): rows[i] = (seq, prompt_len); examples[e] = list
    of row indices and the weight."""
    bos, eos = sp.bos_id(), sp.eos_id()
    assert eos >= 0
    head = [bos] if bos >= 0 else []
    rows, examples, truncated = [], [], 0
    weighted, margined, margins = 0, 0, []
    multi = []  # (prompt, [(text, score or None, embedding or None)])
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            ex = json.loads(line)
            prompt = sp.encode(ex["prompt"])
            allowed = max_prompt_len - len(head)
            pcut = len(prompt) > allowed
            if pcut:
                prompt = prompt[len(prompt) - allowed:] if mode == "keep_end" else prompt[:allowed]
            if kind == "sft":
                responses, weight = [ex["completion"]], float(ex.get("weight", 1.0))
                weighted += "weight" in ex
            elif kind == "preference":
                responses, weight = [ex["chosen"], ex["rejected"]], float(ex.get("weight", 1.0))
                margins.append(float(ex.get("margin", 0.0)))
                margined += "margin" in ex
            else:
                responses, weight = [r["text"] for r in ex["responses"]], 1.0
                multi.append((ex["prompt"], [(r["text"], r.get("score"), r.get("embedding"))
                                             for r in ex["responses"]]))
            made = []
            for text in responses:
                seq = head + prompt + sp.encode(text) + [eos]
                rcut = len(seq) > max_len
                seq = seq[:max_len]
                made.append((seq, len(head) + len(prompt), rcut))
            if kind == "multi":  # every response is its own example
                for seq, plen, rcut in made:
                    examples.append(([len(rows)], 1.0))
                    rows.append((seq, plen))
                    truncated += pcut or rcut
            else:
                idx = []
                for seq, plen, _ in made:
                    idx.append(len(rows))
                    rows.append((seq, plen))
                examples.append((idx, weight))
                truncated += pcut or any(m[2] for m in made)
    extra = {"weighted": weighted, "margins": margins if margined else None}
    return rows, examples, truncated, multi, extra


FNV_OFFSET, FNV_PRIME, MASK = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


def fnv(h, data):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h


def u64(h, v):
    return fnv(h, struct.pack("<Q", v & MASK))


def f32(h, x):
    return u64(h, struct.unpack("<I", struct.pack("<f", x))[0])


def dataset_hash(sp, kind, max_len, max_prompt_len, mode, rows, examples, multi, extra):
    """dataset_hash() of the C loader, field by field."""
    kinds = {"sft": 0, "preference": 1, "multi": 2}
    h = fnv(FNV_OFFSET, b"tinyalign-jsonl-dataset-v1")
    h = u64(h, kinds[kind])
    h = u64(h, 1)  # tokenized
    pad = sp.pad_id() if sp.pad_id() >= 0 else sp.eos_id()
    for v in (max_len, max_prompt_len, 0 if mode == "keep_end" else 1, sp.bos_id(),
              sp.eos_id(), pad, sp.vocab_size()):
        h = u64(h, v)
    h = u64(h, len(examples))
    h = u64(h, len(rows))
    for seq, plen in rows:
        h = u64(h, len(seq))
        h = u64(h, plen)
        for t in seq:
            h = u64(h, t)
    if kind == "preference" or (kind == "sft" and extra["weighted"]):
        for _, w in examples:  # sft: only files with a "weight" field (older keys unchanged)
            h = f32(h, w)
    if extra["margins"] is not None:  # preference files with a "margin" field
        for m in extra["margins"]:
            h = f32(h, m)
    if kind == "multi":
        h = u64(h, len(multi))
        for prompt, resps in multi:  # the text arena: prompt, then its responses, each + NUL
            h = fnv(h, prompt.encode("utf-8") + b"\0")
            for text, _, _ in resps:
                h = fnv(h, text.encode("utf-8") + b"\0")
        for _, resps in multi:
            h = u64(h, len(resps))
        for _, resps in multi:
            for _, score, emb in resps:
                h = u64(h, 0 if score is None else 1)
                h = u64(h, 0 if score is None else struct.unpack("<Q", struct.pack("<d", score))[0])
                h = u64(h, len(emb) if emb else 0)
                for x in emb or []:
                    h = f32(h, x)
    return h


def main():
    model, path, kind, max_len, max_prompt_len, mode, ids, out = sys.argv[1:9]
    sp = spm.SentencePieceProcessor(model_file=model)
    rows, examples, truncated, multi, extra = build_rows(sp, path, kind, int(max_len),
                                                  int(max_prompt_len), mode)
    ids = list(range(len(examples))) if ids == "all" else [int(x) for x in ids.split(",")]
    pad = sp.pad_id() if sp.pad_id() >= 0 else sp.eos_id()
    nrow = len(examples[0][0])
    # row layout: slot k of every example first (chosen block, then rejected block)
    batch = [(examples[e][0][k], examples[e][1], e) for k in range(nrow) for e in ids]
    T = max(len(rows[r][0]) - 1 for r, _, _ in batch)
    with open(out, "w") as f:
        f.write("%d %d %d %d %d\n" % (len(batch), T, len(ids) if kind == "preference" else 0,
                                      len(examples), truncated))
        for r, w, e in batch:
            seq, plen = rows[r]
            n = len(seq) - 1
            tokens = seq[:n] + [pad] * (T - n)
            targets = seq[1:] + [-1] * (T - n)
            mask = [1 if plen - 1 <= t < n else 0 for t in range(T)]
            f.write("%d %r %d\n" % (n, w, e))
            for a in (tokens, targets, mask):
                f.write(" ".join(map(str, a)) + "\n")
        f.write("hash %016x\n" % dataset_hash(sp, kind, int(max_len), int(max_prompt_len), mode,
                                               rows, examples, multi, extra))


if __name__ == "__main__":
    main()
