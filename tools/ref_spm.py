#!/usr/bin/python3
"""ref_spm.py — the independent reference for tinyalign's tokenizer shim (tests only).

Uses Debian's python3-sentencepiece (run it with /usr/bin/python3):

  ref_spm.py encode MODEL IN OUT
      IN holds one hex-encoded UTF-8 string per line (hex keeps tabs, newlines and
      invalid bytes intact); OUT gets one line per string:
      "<ids space-separated>\t<hex of decode(ids)>".
  ref_spm.py info MODEL
      prints "vocab_size bos eos pad unk" on one line.
  ref_spm.py train key=value ...
      trains with SentencePieceTrainer and the given options (same names as spm_train,
      e.g. input=a.txt model_prefix=m vocab_size=500 model_type=bpe); seed=N sets the
      random generator seed. Used to check that `tokenizer_train` builds the same model.
"""
import sys

import sentencepiece as spm


def encode(model, path_in, path_out):
    sp = spm.SentencePieceProcessor(model_file=model)
    with open(path_in) as f, open(path_out, "w") as out:
        for line in f:
            text = bytes.fromhex(line.strip())
            ids = sp.encode(text)
            dec = sp.decode(ids).encode("utf-8", "surrogateescape")
            out.write(" ".join(map(str, ids)) + "\t" + dec.hex() + "\n")


def info(model):
    sp = spm.SentencePieceProcessor(model_file=model)
    print(sp.vocab_size(), sp.bos_id(), sp.eos_id(), sp.pad_id(), sp.unk_id())


def train(args):
    kw = dict(a.split("=", 1) for a in args)
    seed = int(kw.pop("seed", "1"))
    spm.set_random_generator_seed(seed)
    kw.setdefault("minloglevel", "2")
    spm.SentencePieceTrainer.train(**kw)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "encode" and len(sys.argv) == 5:
        encode(*sys.argv[2:])
    elif cmd == "info" and len(sys.argv) == 3:
        info(sys.argv[2])
    elif cmd == "train":
        train(sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
