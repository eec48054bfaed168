#!/usr/bin/env python3
"""prepare_fortunes.py — turns Debian's `fortunes` package (a small real English corpus,
installed by `make deps`) into plain-text training data for the quickstart.

Reads every plain fortune file under /usr/share/games/fortunes (the % separated ones;
not the .dat indexes or .u8 links), one document per fortune, drops empty and very long
ones, shuffles them with a fixed seed and writes
  OUT/train.txt, OUT/val.txt   documents separated by one blank line (internal blank
                               lines collapsed), for `tinyalign tokenize --doc-sep blank`
  OUT/spm_input.txt            the training documents one per line, for the tokenizer
The data is prepared on the machine, never committed.
"""
import argparse
import glob
import os
import random
import re


def fortunes(root):
    docs = []
    for path in sorted(glob.glob(os.path.join(root, "*"))):
        if path.endswith((".dat", ".u8")) or os.path.isdir(path) or os.path.islink(path):
            continue
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
        for doc in re.split(r"\n%\n", text):
            doc = re.sub(r"\n\s*\n+", "\n", doc.strip().replace("\t", "    "))
            if 20 <= len(doc) <= 1500:
                docs.append(doc)
    return docs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--root", default="/usr/share/games/fortunes")
    ap.add_argument("--val-fraction", type=float, default=0.05)
    a = ap.parse_args()
    docs = fortunes(a.root)
    if len(docs) < 100:
        raise SystemExit(f"prepare_fortunes: only {len(docs)} fortunes under {a.root}; "
                         "is the Debian package `fortunes` installed? (make deps)")
    random.Random(1234).shuffle(docs)
    nval = max(1, int(len(docs) * a.val_fraction))
    val, train = docs[:nval], docs[nval:]
    os.makedirs(a.out, exist_ok=True)
    for name, part in [("train.txt", train), ("val.txt", val)]:
        with open(os.path.join(a.out, name), "w") as f:
            f.write("\n\n".join(part) + "\n")
    with open(os.path.join(a.out, "spm_input.txt"), "w") as f:
        f.write("\n".join(d.replace("\n", " ") for d in train) + "\n")
    chars = sum(len(d) for d in docs)
    print(f"prepare_fortunes: {len(train)} train / {len(val)} val fortunes ({chars/1e6:.1f}M chars) in {a.out}")


if __name__ == "__main__":
    main()
