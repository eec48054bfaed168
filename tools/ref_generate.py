#!/usr/bin/env python3
"""ref_generate.py — greedy generation in PyTorch, the reference for `tinyalign sample
--temperature 0` (tests/cli/sample.sh compares ids and text byte for byte).

The model is tools/hf_gpt2.py's GPT2 (written independently of the C engine) loaded from
a model directory (config.json + model.safetensors), in float64 so its argmax is the exact
one; the tokenizer is python3-sentencepiece. For each {"prompt": ...} line of the prompts
file: ids = [BOS] + encode(prompt) (BOS when the model has one), then repeatedly the full
forward over all ids so far (no cache: an independent path) and the argmax over the real
vocabulary (numpy: lowest id on ties), until EOS (kept in the ids, not in the text),
--max-new-tokens, or the sequence filling n_positions. text = decode(generated ids without
the EOS). Writes the multi-response JSONL `tinyalign sample --ids` writes:
  {"prompt": ..., "responses": [{"text", "num_tokens", "finish_reason", "ids"}]}
and prints the smallest gap between the best and second-best logit met on the way (the
float32 engine can only disagree where that gap is ~1e-5 of the logits).

With --guide DIR (NADO-guided decoding, `tinyalign sample --guide`): the argmax is taken
over log_softmax(model logits) + logsigmoid(guide logits), the guide being a second model
directory run the same way (float64, full forward).

usage: ref_generate.py --model DIR --tokenizer SPM.model --prompts FILE.jsonl
                       --max-new-tokens N --out FILE.jsonl [--guide DIR]
"""
import argparse
import json
import os
import sys

import numpy as np
import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_gpt2  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--max-new-tokens", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--guide", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, cfg = hf_gpt2.load_dir(a.model, dtype=torch.float64)
    model.eval()
    guide = hf_gpt2.load_dir(a.guide, dtype=torch.float64)[0].eval() if a.guide else None
    V, maxT = cfg["vocab_size"], cfg["n_positions"]
    sp = spm.SentencePieceProcessor(model_file=a.tokenizer)
    bos, eos = sp.bos_id(), sp.eos_id()
    min_gap, lines = float("inf"), []
    with open(a.prompts, encoding="utf-8") as f:
        prompts = [json.loads(l)["prompt"] for l in f if l.strip()]
    with torch.no_grad():
        for prompt in prompts:
            ids = ([bos] if bos >= 0 else []) + sp.encode(prompt)
            gen, finish = [], None
            while finish is None:
                x = torch.tensor([ids + gen])
                logits = model(x)[0, -1, :V]
                if guide is not None:
                    logits = (torch.log_softmax(logits, -1)
                              + torch.nn.functional.logsigmoid(guide(x)[0, -1, :V]))
                logits = logits.numpy()
                t = int(np.argmax(logits))
                top2 = np.partition(logits, -2)[-2:]
                min_gap = min(min_gap, float(top2[1] - top2[0]))
                gen.append(t)
                if t == eos:
                    finish = "eos"
                elif len(gen) >= a.max_new_tokens or len(ids) + len(gen) >= maxT:
                    finish = "length"
            text = sp.decode(gen[:-1] if finish == "eos" else gen)
            lines.append({"prompt": prompt, "responses": [
                {"text": text, "num_tokens": len(gen), "finish_reason": finish, "ids": gen}]})
    with open(a.out, "w", encoding="utf-8") as f:
        for l in lines:
            f.write(json.dumps(l, ensure_ascii=False) + "\n")
    print(f"{len(lines)} prompts, greedy, smallest top-1/top-2 logit gap {min_gap:.3g}")


if __name__ == "__main__":
    main()
