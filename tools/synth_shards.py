#!/usr/bin/env python3
"""synth_shards.py — writes small token shards (TASHARD1 format, see include/tinyalign/shard.h)
of a learnable synthetic language, for trainer tests and demos that need no tokenizer:
runs of counting sequences a, a+k, a+2k, ... (mod V) with a random start and stride,
separated by an end-of-document id 0, plus 5% noise tokens. A tiny GPT-2 drives the loss
well below log(V) within a few hundred steps.

usage: synth_shards.py --out DIR [--vocab 64] [--tokens 200000] [--val-tokens 20000] [--seed 0]
writes DIR/train.bin and DIR/val.bin
"""
import argparse
import os
import random
import struct


def write_shard(path, ids, vocab):
    tb = 2 if vocab <= 65536 else 4
    hdr = b"TASHARD1" + struct.pack("<IIIIQ", 1, tb, vocab, 0, len(ids))
    hdr += b"\0" * (64 - len(hdr))
    fmt = "<%d%s" % (len(ids), "H" if tb == 2 else "I")
    with open(path + ".tmp", "wb") as f:
        f.write(hdr)
        f.write(struct.pack(fmt, *ids))
    os.replace(path + ".tmp", path)


def make(n, vocab, rng):
    ids = []
    while len(ids) < n:
        a, k = rng.randrange(1, vocab), rng.randrange(1, 4)
        for i in range(rng.randrange(8, 40)):
            ids.append(rng.randrange(1, vocab) if rng.random() < 0.05 else 1 + (a - 1 + i * k) % (vocab - 1))
        ids.append(0)
    return ids[:n]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=200000)
    ap.add_argument("--val-tokens", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    write_shard(os.path.join(a.out, "train.bin"), make(a.tokens, a.vocab, rng), a.vocab)
    write_shard(os.path.join(a.out, "val.bin"), make(a.val_tokens, a.vocab, rng), a.vocab)
    print(f"synth_shards: {a.out}/train.bin ({a.tokens} tokens), {a.out}/val.bin ({a.val_tokens})")


if __name__ == "__main__":
    main()
