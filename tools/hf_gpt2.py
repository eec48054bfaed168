#!/usr/bin/env python3
"""hf_gpt2.py — a self-contained PyTorch GPT-2 in the Hugging Face layout, for checking
tinyalign's safetensors import/export (tests/cli/convert.sh) without `transformers` or
`safetensors` installed.

The model is written from scratch: pre-LN blocks, GELU (tanh approximation, HF's
"gelu_new"), learned positions, causal attention, LM head tied to wte, and Conv1D layers
that store weights (in, out) and compute y = x @ W + b exactly like HF's Conv1D, so the
state_dict names and shapes are HF GPT2LMHeadModel's ("transformer.h.0.attn.c_attn.weight"
(C, 3C), ...). safetensors files are read and written by hand (8-byte little-endian header
length, JSON header, raw data).

Commands:
  create  --out DIR [--n-layer 2 --n-head 4 --n-embd 64 --n-positions 32 --vocab-size 100]
          [--seed 0] [--std 0.1] [--style transformers|hub] [--dtype F32|F16|BF16]
          [--untied] [--bin] [--reward]
      a random model as an HF directory (config.json + model.safetensors). --style hub
      writes names without "transformer." plus the attn.bias / attn.masked_bias buffers
      and lm_head.weight (like the Hub's gpt2 file); --untied makes lm_head differ from
      wte; --bin writes pytorch_model.bin instead of model.safetensors; --reward makes a
      reward model (GPT2ForSequenceClassification, one label: + score.weight (1, C)).
  logits  --model DIR --tokens "1,2,3;4,5,6" --out FILE (.npy, or raw little-endian
          float32 (B, T, V) otherwise) — the forward pass in float64, saved as float32.
  compare A B   bit-exact equality of two model directories' tensors (names compared
          without the "transformer." prefix; mask buffers and a tied lm_head ignored);
          also checks config.json dimensions. Exit 1 on any difference.
  bin2st  --model DIR [--out DIR]   pytorch_model.bin -> model.safetensors (+ config.json)
  reward  --model DIR --tokenizer SPM --pairs PREFS.jsonl [--max-len N] [--center C]
          a reward model directory (GPT2ForSequenceClassification, num_labels 1: the
          top-level score.weight (1, C), no bias) in float64: each row [BOS] prompt response
          [EOS] scored at its last token (HF reads the last non-padding position), and TRL
          RewardTrainer's loss over the pairs (-log sigmoid(r_c - r_r - margin) + C *
          (r_c + r_r)^2, means) with the metrics, and "pairs": [[r_c, r_r], ...] in file
          order, as one JSON object.
"""
import argparse
import json
import math
import os
import re
import shutil
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

# ---- safetensors by hand ---------------------------------------------------------------

NP_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
             "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?", "BF16": "<u2"}


def st_read(path):
    """Returns (dict name -> np.ndarray (BF16 as float32), metadata dict, raw dtypes)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    out, dtypes = {}, {}
    for name, e in header.items():
        b, en = e["data_offsets"]
        a = np.frombuffer(data[b:en], dtype=NP_DTYPES[e["dtype"]]).reshape(e["shape"])
        if e["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.copy()
        dtypes[name] = e["dtype"]
    return out, meta, dtypes


def st_write(path, tensors, metadata=None, dtype="F32"):
    """tensors: dict name -> array (written in insertion order as dtype F32/F16/BF16)."""
    header, chunks, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, a in tensors.items():
        a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
        if dtype == "F32":
            buf = a.astype("<f4").tobytes()
        elif dtype == "F16":
            buf = a.astype("<f2").tobytes()
        elif dtype == "BF16":  # round to nearest even
            u = a.view(np.uint32).astype(np.uint64)
            u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
            buf = u.astype("<u2").tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [off, off + len(buf)]}
        chunks.append(buf)
        off += len(buf)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


# ---- the model ---------------------------------------------------------------------------

class Conv1D(nn.Module):
    """HF's Conv1D: weight stored (in, out); y = x @ W + b."""

    def __init__(self, nin, nout):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(nin, nout))
        self.bias = nn.Parameter(torch.zeros(nout))

    def forward(self, x):
        return x @ self.weight + self.bias


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


class Attention(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.NH = NH
        self.c_attn = Conv1D(C, 3 * C)
        self.c_proj = Conv1D(C, C)

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.NH
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.NH, hs).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.c_fc = Conv1D(C, 4 * C)
        self.c_proj = Conv1D(4 * C, C)

    def forward(self, x):
        return self.c_proj(gelu_tanh(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = Attention(C, NH)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.mlp = MLP(C)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, V, T = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(V, C), wpe=nn.Embedding(T, C),
            h=nn.ModuleList([Block(C, cfg["n_head"]) for _ in range(cfg["n_layer"])]),
            ln_f=nn.LayerNorm(C, eps=1e-5)))
        if "GPT2ForSequenceClassification" in cfg.get("architectures", []):
            self.score = nn.Linear(C, cfg.get("num_labels", 2), bias=False)

    def hidden(self, idx):
        tr = self.transformer
        pos = torch.arange(idx.shape[1])
        x = tr.wte(idx) + tr.wpe(pos)
        for blk in tr.h:
            x = blk(x)
        return tr.ln_f(x)

    def forward(self, idx):
        return self.hidden(idx) @ self.transformer.wte.weight.T  # tied LM head


def hf_config(L, NH, C, T, V):
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": V,
            "n_positions": T, "n_ctx": T, "n_embd": C, "n_layer": L, "n_head": NH,
            "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
            "tie_word_embeddings": True, "torch_dtype": "float32"}


MASK_RE = re.compile(r"^h\.\d+\.attn\.(bias|masked_bias)$")


def canonical(tensors):
    """name -> array with "transformer." stripped, mask buffers dropped, and a tied
    lm_head checked and dropped. Raises on an untied head."""
    out = {}
    for name, a in tensors.items():
        bare = name[len("transformer."):] if name.startswith("transformer.") else name
        if MASK_RE.match(bare):
            continue
        if name == "lm_head.weight":
            continue
        if bare in out:
            raise SystemExit(f"tensor {bare} appears twice")
        out[bare] = a
    if "lm_head.weight" in tensors and not np.array_equal(tensors["lm_head.weight"],
                                                         out["wte.weight"]):
        raise SystemExit("lm_head.weight differs from wte.weight (untied head)")
    return out


def load_dir(d, dtype=torch.float64):
    cfg = json.load(open(os.path.join(d, "config.json")))
    cfg.setdefault("n_positions", cfg.get("n_ctx"))
    tensors, _, _ = st_read(os.path.join(d, "model.safetensors"))
    sd = {(k if k == "score.weight" else "transformer." + k):
          torch.from_numpy(np.asarray(v, dtype=np.float32)).to(dtype)
          for k, v in canonical(tensors).items()}
    model = GPT2(cfg).to(dtype)
    model.load_state_dict(sd, strict=True)
    return model, cfg


# ---- commands ----------------------------------------------------------------------------

def cmd_create(a):
    torch.manual_seed(a.seed)
    cfg = hf_config(a.n_layer, a.n_head, a.n_embd, a.n_positions, a.vocab_size)
    if a.reward:  # a reward model: GPT2ForSequenceClassification with one label
        cfg.update(architectures=["GPT2ForSequenceClassification"], num_labels=1)
    model = GPT2(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or \
                    name.endswith("ln_f.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))  # away from 1 to exercise the path
            else:
                p.copy_(a.std * torch.randn_like(p))
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    os.makedirs(a.out, exist_ok=True)
    if a.style == "hub":  # like the Hub's gpt2 file: no prefix, mask buffers, lm_head
        hub = {}
        T = a.n_positions
        for k, v in sd.items():
            bare = k[len("transformer."):]
            hub[bare] = v
            m = re.match(r"^h\.(\d+)\.attn\.c_proj\.bias$", bare)
            if m:
                hub[f"h.{m.group(1)}.attn.bias"] = np.tril(np.ones((T, T), np.float32))[None, None]
                hub[f"h.{m.group(1)}.attn.masked_bias"] = np.array(-1e4, np.float32)
        hub["lm_head.weight"] = sd["transformer.wte.weight"].copy()
        sd = hub
    if a.untied:
        head = sd.get("transformer.wte.weight", sd.get("wte.weight")).copy()
        head[0, 0] += 1.0
        sd["lm_head.weight"] = head
    if a.bin:
        torch.save({k: torch.from_numpy(np.array(v)) for k, v in sd.items()},
                   os.path.join(a.out, "pytorch_model.bin"))
    else:
        st_write(os.path.join(a.out, "model.safetensors"), sd, {"format": "pt"}, a.dtype)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    print(f"wrote {a.out}: GPT-2 L={a.n_layer} NH={a.n_head} C={a.n_embd} "
          f"T={a.n_positions} V={a.vocab_size} ({a.style}, {a.dtype}{', bin' if a.bin else ''})")


def parse_tokens(s):
    rows = [[int(t) for t in r.split(",")] for r in s.split(";")]
    if len({len(r) for r in rows}) != 1:
        raise SystemExit("--tokens: all rows must have the same length")
    return torch.tensor(rows, dtype=torch.long)


def cmd_logits(a):
    model, cfg = load_dir(a.model)
    idx = parse_tokens(a.tokens)
    with torch.no_grad():
        logits = model(idx).float().numpy()
    if a.out.endswith(".npy"):
        np.save(a.out, logits)
    else:
        logits.astype("<f4").tofile(a.out)
    print(f"logits {tuple(logits.shape)} -> {a.out}; first row: "
          f"{np.array2string(logits[0, 0, :4], precision=5)}")


def cmd_compare(a):
    ca = json.load(open(os.path.join(a.a, "config.json")))
    cb = json.load(open(os.path.join(a.b, "config.json")))
    bad = []
    for k in ("n_layer", "n_head", "n_embd", "vocab_size"):
        if ca.get(k) != cb.get(k):
            bad.append(f"config {k}: {ca.get(k)} vs {cb.get(k)}")
    if ca.get("n_positions", ca.get("n_ctx")) != cb.get("n_positions", cb.get("n_ctx")):
        bad.append("config n_positions differs")
    ta, _, da = st_read(os.path.join(a.a, "model.safetensors"))
    tb, mb, db = st_read(os.path.join(a.b, "model.safetensors"))
    xa, xb = canonical(ta), canonical(tb)
    if set(xa) != set(xb):
        bad.append(f"names differ: only in A {sorted(set(xa) - set(xb))[:4]}, "
                   f"only in B {sorted(set(xb) - set(xa))[:4]}")
    for k in sorted(set(xa) & set(xb)):
        va, vb = np.asarray(xa[k], np.float32), np.asarray(xb[k], np.float32)
        if va.shape != vb.shape:
            bad.append(f"{k}: shape {va.shape} vs {vb.shape}")
        elif va.tobytes() != vb.tobytes():
            bad.append(f"{k}: values differ (max |diff| {np.abs(va - vb).max():.3g})")
    # the B model must also load into the PyTorch module (names/shapes HF-compatible)
    load_dir(a.b)
    if bad:
        print("DIFFERENT:\n  " + "\n  ".join(bad))
        sys.exit(1)
    print(f"identical: {len(xa)} tensors bit-exact; B metadata {mb}")


def cmd_reward(a):
    import sentencepiece as spm
    model, cfg = load_dir(a.model)
    if not hasattr(model, "score") or model.score.weight.shape[0] != 1:
        raise SystemExit(f"{a.model}: not a reward model (GPT2ForSequenceClassification, one label)")
    sp = spm.SentencePieceProcessor(model_file=a.tokenizer)
    bos, eos = sp.bos_id(), sp.eos_id()
    rc, rr, margins = [], [], []
    with torch.no_grad():
        for line in open(a.pairs):
            if not line.strip():
                continue
            ex = json.loads(line)
            head = ([bos] if bos >= 0 else []) + sp.encode(ex["prompt"])
            rs = []
            for key in ("chosen", "rejected"):
                seq = head + sp.encode(ex[key]) + [eos]
                if len(seq) > a.max_len:
                    raise SystemExit(f"{a.pairs}: a row of {len(seq)} tokens > --max-len {a.max_len}")
                h = model.hidden(torch.tensor([seq]))
                rs.append(float(model.score(h[0, -1])[0]))  # the last real token
            rc.append(rs[0])
            rr.append(rs[1])
            margins.append(float(ex.get("margin", 0.0)))
    per_pair = [[c, r] for c, r in zip(rc, rr)]
    rc, rr, m = (torch.tensor(x, dtype=torch.float64) for x in (rc, rr, margins))
    loss = -torch.nn.functional.logsigmoid(rc - rr - m).mean() + a.center * ((rc + rr) ** 2).mean()
    print(json.dumps({"examples": len(rc), "loss": loss.item(), "rewards/chosen": rc.mean().item(),
                      "rewards/rejected": rr.mean().item(),
                      "rewards/margins": (rc - rr).mean().item(),
                      "accuracy": (rc > rr).double().mean().item(), "pairs": per_pair}))


def cmd_bin2st(a):
    out = a.out or a.model
    sd = torch.load(os.path.join(a.model, "pytorch_model.bin"), map_location="cpu")
    tensors = {k: v.float().numpy() for k, v in sd.items()}
    os.makedirs(out, exist_ok=True)
    st_write(os.path.join(out, "model.safetensors"), tensors, {"format": "pt"})
    if os.path.abspath(out) != os.path.abspath(a.model):
        shutil.copy(os.path.join(a.model, "config.json"), os.path.join(out, "config.json"))
    print(f"wrote {os.path.join(out, 'model.safetensors')}: {len(tensors)} tensors")


def cmd_llmc(a):
    """Writes an HF-layout model dir as llm.c's model file (train_gpt2.py write_model,
    version 3: vocab padded to a multiple of 128), written here from the format's spec."""
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    t = canonical(st_read(os.path.join(a.model, "model.safetensors"))[0])
    L, NH, C, V = cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["vocab_size"]
    T = cfg.get("n_positions", cfg.get("n_ctx"))
    Vp = (V + 127) // 128 * 128
    f32 = lambda x: np.asarray(x, dtype=np.float32)
    wte = np.zeros((Vp, C), np.float32)
    wte[:V] = f32(t["wte.weight"])
    per = lambda fmt, tr=False: np.stack([f32(t[fmt % i]).T if tr else f32(t[fmt % i]) for i in range(L)])
    parts = [wte, f32(t["wpe.weight"]),
             per("h.%d.ln_1.weight"), per("h.%d.ln_1.bias"),
             per("h.%d.attn.c_attn.weight", True), per("h.%d.attn.c_attn.bias"),
             per("h.%d.attn.c_proj.weight", True), per("h.%d.attn.c_proj.bias"),
             per("h.%d.ln_2.weight"), per("h.%d.ln_2.bias"),
             per("h.%d.mlp.c_fc.weight", True), per("h.%d.mlp.c_fc.bias"),
             per("h.%d.mlp.c_proj.weight", True), per("h.%d.mlp.c_proj.bias"),
             f32(t["ln_f.weight"]), f32(t["ln_f.bias"])]
    header = np.zeros(256, np.int32)
    header[:8] = [20240326, 3, T, V, L, NH, C, Vp]
    with open(a.out, "wb") as f:
        f.write(header.tobytes())
        for p in parts:
            f.write(np.ascontiguousarray(p).tobytes())
    print(f"wrote {a.out}: llm.c format v3, L={L} NH={NH} C={C} V={V} Vp={Vp} T={T}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--out", required=True)
    c.add_argument("--n-layer", type=int, default=2)
    c.add_argument("--n-head", type=int, default=4)
    c.add_argument("--n-embd", type=int, default=64)
    c.add_argument("--n-positions", type=int, default=32)
    c.add_argument("--vocab-size", type=int, default=100)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--std", type=float, default=0.1)
    c.add_argument("--style", choices=["transformers", "hub"], default="transformers")
    c.add_argument("--dtype", choices=["F32", "F16", "BF16"], default="F32")
    c.add_argument("--untied", action="store_true")
    c.add_argument("--bin", action="store_true")
    c.add_argument("--reward", action="store_true")
    lg = sub.add_parser("logits")
    lg.add_argument("--model", required=True)
    lg.add_argument("--tokens", required=True)
    lg.add_argument("--out", required=True)
    cp = sub.add_parser("compare")
    cp.add_argument("a")
    cp.add_argument("b")
    b2 = sub.add_parser("bin2st")
    b2.add_argument("--model", required=True)
    b2.add_argument("--out")
    lc = sub.add_parser("llmc")
    lc.add_argument("--model", required=True)
    lc.add_argument("--out", required=True)
    rw = sub.add_parser("reward")
    rw.add_argument("--model", required=True)
    rw.add_argument("--tokenizer", required=True)
    rw.add_argument("--pairs", required=True)
    rw.add_argument("--max-len", type=int, default=1 << 30)
    rw.add_argument("--max-prompt-len", type=int, default=1 << 30)
    rw.add_argument("--center", type=float, default=0.0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    {"create": cmd_create, "logits": cmd_logits, "compare": cmd_compare,
     "bin2st": cmd_bin2st, "llmc": cmd_llmc, "reward": cmd_reward}[a.cmd](a)


if __name__ == "__main__":
    main()
