#!/usr/bin/env python3
"""make_seeds.py BUILD — (re)writes the seed corpora of the fuzz targets under
tests/fuzz/corpus/<target>/: small valid inputs of each format (and a few near misses),
so the fuzzer starts deep inside each parser. The committed files are its output;
rerun it only to change the seeds. Needs BUILD/tinyalign (tokenizer models, a checkpoint).

  config        the repository's configs/*.json and models/*.json presets, and a few
                minimal configs (every data format and objective, a --set-like nesting)
  jsonl         SFT / preference / multi-response / prompt lines: unicode, escapes, kept
                fields, blank and CRLF lines, a BOM, long prompts that get cut
  safetensors   model.safetensors and optim.safetensors of the fuzz model (L1 NH1 C4 V8
                T4, written by the engine), a Hub-style file without the "transformer."
                prefix, F16 / BF16 / F64 tensors, metadata
  shard         token shards with 2- and 4-byte ids, empty, one token
  tokenizer     two SentencePiece models (BPE 300 pieces with byte fallback; BPE 30 without)
  model_config  config.json of the fuzz model, HF-style variants (n_ctx, extra keys)
  state         a mode byte + state.json (or state.sum) of the fuzz model's checkpoint, which
                is also copied whole to tests/fuzz/checkpoint/ (fuzz_state runs in a copy)
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, sys.argv[1] if len(sys.argv) > 1 else "build", "tinyalign")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
CKPT = os.path.join(ROOT, "tests", "fuzz", "checkpoint")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def run(*args):
    subprocess.run([BIN, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def safetensors(tensors, meta=None):
    """tensors: [(name, dtype, shape, raw bytes)] -> file bytes (offsets in order)."""
    hdr, off, data = {}, 0, b""
    if meta:
        hdr["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def shard(ids, vocab, width=2):
    fmt = "<%d%s" % (len(ids), "H" if width == 2 else "I")
    hdr = b"TASHARD1" + struct.pack("<IIIIQ", 1, width, vocab, 0, len(ids))
    return hdr + b"\0" * (64 - len(hdr)) + struct.pack(fmt, *ids)


def main():
    if os.path.isdir(OUT):
        for t in os.listdir(OUT):
            shutil.rmtree(os.path.join(OUT, t))
    tmp = tempfile.mkdtemp()
    try:
        # ---- tokenizer ----------------------------------------------------------------
        words = ["the", "cat", "café", "東京", "naïve", "🙂", "a1b2", "\"q\"", "x\\y", "tab\t"]
        with open(f"{tmp}/corpus.txt", "w", encoding="utf-8") as f:
            for i in range(400):
                f.write(" ".join(words[(i * 7 + k * 3) % len(words)] for k in range(5)) + "\n")
        run("tokenizer", "train", "--input", f"{tmp}/corpus.txt", "--vocab-size", "300",
            "--out", f"{tmp}/bpe300_bytes")
        run("tokenizer", "train", "--input", f"{tmp}/corpus.txt", "--vocab-size", "30",
            "--byte-fallback", "0", "--out", f"{tmp}/bpe30")
        for n in ("bpe300_bytes", "bpe30"):
            put("tokenizer", n + ".model", open(f"{tmp}/{n}.model", "rb").read())

        # ---- config --------------------------------------------------------------------
        for d in ("configs", "models"):
            for n in sorted(os.listdir(os.path.join(ROOT, d))):
                if n.endswith(".json"):
                    put("config", f"{d}_{n}", open(os.path.join(ROOT, d, n), "rb").read())
        put("config", "min_tokens.json", '{"data": {"train": "x.bin"}}')
        put("config", "dpo_sync.json", json.dumps({
            "run": {"name": "ünï 🙂", "seed": 3},
            "model": {"init": "checkpoint", "path": "runs/x"},
            "data": {"format": "preference", "train": "p.jsonl", "max_len": 64, "max_prompt_len": 32,
                     "truncation_mode": "keep_start"},
            "objective": {"type": "dpo", "beta": 0.1, "loss_type": "ipo",
                          "reference": {"mode": "sync", "sync_steps": 10, "sync_alpha": 0.5}},
            "optim": {"lr": 1e-4, "betas": [0.9, 0.95], "schedule": "linear"},
            "train": {"batch_size": 2, "grad_accum": 2, "max_steps": 10, "sample_every": 5,
                      "sample_prompts": ["a", "é"]}}, ensure_ascii=False))
        put("config", "multi_ddpo.json", json.dumps({
            "data": {"format": "multi", "train": "m.jsonl", "val_fraction": 0.1},
            "objective": {"type": "ddpo"}, "train": {"patience": 2, "keep_best": True}}))

        # ---- jsonl ---------------------------------------------------------------------
        put("jsonl", "sft.jsonl", '{"prompt": "the cat", "completion": " café 東京"}\n'
            '\n{"prompt": "a\\nb\\t\\"c\\"", "completion": "🙂", "extra": [1, {"x": null}]}\r\n')
        put("jsonl", "preference.jsonl",
            '\ufeff{"prompt": "q", "chosen": "yes", "rejected": "no", "weight": 0.5}\n'
            '{"prompt": "long long long long long long prompt", "chosen": "a b c d e f g h", '
            '"rejected": "z", "weight": 2}\n')
        put("jsonl", "multi.jsonl", json.dumps({
            "prompt": "naïve", "id": 12345678901234567890, "gold": -0.0,
            "responses": [{"text": "x", "score": 1.5, "embedding": [0.1, -2, 3e5]},
                          {"text": "y\u2028z", "score": -1, "embedding": [1, 2, 3], "note": {"k": [1.0]}}],
            "tail": "after"}, ensure_ascii=False) + "\n")
        put("jsonl", "prompts.jsonl", '{"prompt": ""}\n{"prompt": "a", "meta": {"tags": ["t"]}}\n')
        put("jsonl", "mixed.jsonl", '{"prompt": "p", "completion": "c", "chosen": "a", "rejected": "b", '
            '"responses": [{"text": "r"}]}\n[1]\n')

        # ---- safetensors and model_config: the fuzz model (L1 NH1 C4 V8 T4) --------------
        cfg = {"run": {"out_dir": f"{tmp}/run", "threads": 1},
               "model": {"n_layer": 1, "n_head": 1, "d_model": 4, "max_seq_len": 4, "vocab_size": 8},
               "tokenizer": {"type": "none"},
               "data": {"format": "tokens", "train": f"{tmp}/t.bin", "max_len": 4},
               "train": {"batch_size": 2, "max_steps": 2, "save_every": 2, "log_every": 1}}
        with open(f"{tmp}/t.bin", "wb") as f:
            f.write(shard([i % 8 for i in range(200)], 8))
        with open(f"{tmp}/cfg.json", "w") as f:
            json.dump(cfg, f)
        run("train", f"{tmp}/cfg.json", "--quiet")
        ck = f"{tmp}/run/checkpoints/step-00000002"
        put("safetensors", "model.safetensors", open(f"{ck}/model.safetensors", "rb").read())
        put("safetensors", "optim.safetensors", open(f"{ck}/optim.safetensors", "rb").read())
        put("model_config", "config.json", open(f"{ck}/config.json", "rb").read())
        # the seed checkpoint fuzz_state runs in (its files verify), and the state seeds:
        # a mode byte (0 no state.sum, 1 the seed's sum, 2 a recomputed sum, 3 a sum), then
        # state.json or state.sum
        os.makedirs(CKPT, exist_ok=True)
        for f in ("model.safetensors", "optim.safetensors", "config.json", "state.json", "state.sum"):
            shutil.copy(f"{ck}/{f}", f"{CKPT}/{f}")
        state = open(f"{ck}/state.json", "rb").read()
        for mode in range(3):
            put("state", f"mode{mode}_state.json", bytes([mode]) + state)
        put("state", "mode3_state.sum", b"\x03" + open(f"{ck}/state.sum", "rb").read())
        old = json.loads(state)  # what an earlier build wrote: format 1, no train_examples
        old["format_version"] = 1
        del old["train_state"]["train_examples"]
        put("state", "mode0_format1.json", b"\x00" + json.dumps(old, indent=2).encode())
        # the Hub's naming (no "transformer." prefix), a tied lm_head, a mask buffer
        m = open(f"{ck}/model.safetensors", "rb").read()
        n = struct.unpack("<Q", m[:8])[0]
        h = json.loads(m[8:8 + n])
        ts = []
        for name, e in h.items():
            if name == "__metadata__":
                continue
            a, b = e["data_offsets"]
            ts.append((name.replace("transformer.", ""), e["dtype"], e["shape"], m[8 + n + a:8 + n + b]))
        wte = [t for t in ts if t[0] == "wte.weight"][0]
        ts.append(("lm_head.weight", "F32", wte[2], wte[3]))
        ts.append(("h.0.attn.bias", "F32", [1, 1, 4, 4], struct.pack("<16f", *([1.0] * 16))))
        put("safetensors", "hub_style.safetensors", safetensors(ts, {"format": "pt"}))
        put("safetensors", "dtypes.safetensors", safetensors([
            ("f16", "F16", [2, 2], struct.pack("<4e", 1.0, -2.0, 65504.0, 6e-8)),
            ("bf16", "BF16", [3], b"\x80\x3f\x00\xc0\x80\x7f"),
            ("f64", "F64", [1], struct.pack("<d", 1e300)),
            ("i32", "I32", [], struct.pack("<i", 7)),
            ("empty", "F32", [0, 5], b"")], {"k": "v", "ünï": "🙂"}))
        put("model_config", "hf_style.json", json.dumps({
            "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 50257,
            "n_ctx": 1024, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12,
            "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "n_inner": None,
            "tie_word_embeddings": True}))
        put("model_config", "minimal.json", '{"vocab_size": 8, "n_positions": 4, "n_layer": 1, '
            '"n_head": 1, "n_embd": 4}')

        # ---- shard ---------------------------------------------------------------------
        put("shard", "u16.bin", shard([i % 50 for i in range(40)], 50))
        put("shard", "u32.bin", shard([i * 7919 % 70000 for i in range(24)], 70000, 4))
        put("shard", "empty.bin", shard([], 8))
        put("shard", "one.bin", shard([3], 4))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
