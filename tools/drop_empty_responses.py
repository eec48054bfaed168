#!/usr/bin/env python3
"""drop_empty_responses.py IN OUT — copies a `tinyalign sample` output, leaving out the
responses whose text is empty (a sampled token can decode to nothing, e.g. a lone
whitespace piece, even with --min-new-tokens 1) and the rows left with none. The readers
of `score`, `curate` and `train` accept an empty text (an EOS-only response); the NADO
drivers keep dropping them so that they reproduce the study in docs/repro_nado.md, run
when the readers still refused them. Prints how many it dropped.
Writes OUT through a temporary file and a rename."""
import json
import os
import sys

if len(sys.argv) != 3:
    sys.exit("usage: drop_empty_responses.py IN OUT")
src, dst = sys.argv[1], sys.argv[2]
kept = dropped = 0
with open(src) as f, open(dst + ".tmp", "w") as g:
    for line in f:
        if not line.strip():
            continue
        row = json.loads(line)
        resp = [r for r in row["responses"] if r["text"].strip()]
        dropped += len(row["responses"]) - len(resp)
        kept += len(resp)
        if resp:
            row["responses"] = resp
            g.write(json.dumps(row) + "\n")
os.replace(dst + ".tmp", dst)
print(f"drop_empty_responses.py: {src}: kept {kept} responses, dropped {dropped} empty")
