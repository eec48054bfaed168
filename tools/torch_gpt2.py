#!/usr/bin/env python3
"""torch_gpt2.py — GPT-2 written the way a PyTorch user writes it, for the benchmarks.

tools/ref_gpt2.py is the clarity-first model the parity tests check tinyalign against
(explicit tensors, every step spelled out); timing it would flatter us. This is the peer
at its best on a CPU with PyTorch 1.13: nn.Linear / nn.LayerNorm / nn.Embedding modules,
F.gelu(approximate="tanh"), F.scaled_dot_product_attention when the installed PyTorch has
it (2.0+) and otherwise the matmul + masked softmax that nanoGPT falls back to, the LM
head tied to the token embedding, and (in bench_torch.py) AdamW with foreach=True.
The same shapes as tinyalign: the vocabulary padded to a multiple of 64 (Vp) for the LM
head, the loss over the real vocabulary V only, GELU-tanh, LayerNorm eps 1e-5.

The forward also serves decoding (bench_decode.py): with a KVCache it appends the new
keys/values at their positions and attends to everything cached, nothing recomputed.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


class KVCache:
    """Preallocated keys and values (L, B, NH, maxT, hs) and the filled length."""

    def __init__(self, L, B, NH, maxT, hs, dtype):
        self.k = torch.zeros(L, B, NH, maxT, hs, dtype=dtype)
        self.v = torch.zeros(L, B, NH, maxT, hs, dtype=dtype)
        self.pos = 0


class CausalSelfAttention(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.NH = NH
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)

    def forward(self, x, cache=None, layer=0):
        B, T, C = x.shape
        NH, hs = self.NH, C // self.NH
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, NH, hs).transpose(1, 2) for t in (q, k, v))
        p0 = 0
        if cache is not None:  # append to the cache, attend to all of it
            p0 = cache.pos
            cache.k[layer, :B, :, p0:p0 + T] = k
            cache.v[layer, :B, :, p0:p0 + T] = v
            k, v = cache.k[layer, :B, :, :p0 + T], cache.v[layer, :B, :, :p0 + T]
        if HAS_SDPA and p0 == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif HAS_SDPA and T == 1:
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
            if T > 1:  # causal mask of the new rows (row t sees positions <= p0 + t)
                mask = torch.ones(T, p0 + T, dtype=torch.bool).tril(diagonal=p0)
                att = att.masked_fill(~mask, float("-inf"))
            y = F.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.c_fc = nn.Linear(C, 4 * C)
        self.c_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = CausalSelfAttention(C, NH)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.mlp = MLP(C)

    def forward(self, x, cache=None, layer=0):
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, L, NH, C, V, maxT):
        super().__init__()
        self.V, self.Vp = V, (V + 63) // 64 * 64
        self.wte = nn.Embedding(self.Vp, C)
        self.wpe = nn.Embedding(maxT, C)
        self.h = nn.ModuleList([Block(C, NH) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        self.lm_head = nn.Linear(C, self.Vp, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx, cache=None, last_only=False):
        """idx (B, T) -> logits (B, T, Vp); with a cache, positions continue from it."""
        B, T = idx.shape
        p0 = cache.pos if cache is not None else 0
        x = self.wte(idx) + self.wpe(torch.arange(p0, p0 + T))
        for i, blk in enumerate(self.h):
            x = blk(x, cache, i)
        if cache is not None:
            cache.pos += T
        if last_only:
            x = x[:, -1:]
        return self.lm_head(self.ln_f(x))

    def loss(self, logits, targets):
        """Mean cross-entropy over the real vocabulary (padded columns never count)."""
        return F.cross_entropy(logits[..., :self.V].reshape(-1, self.V), targets.reshape(-1))

    def param_groups(self, weight_decay):
        """Decay on the 2-D matmul weights of the blocks only (as tinyalign: not the
        embeddings / tied head, biases or LayerNorms)."""
        decay = [p for n, p in self.named_parameters() if n.startswith("h.") and p.dim() == 2]
        ids = {id(p) for p in decay}
        rest = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": decay, "weight_decay": weight_decay},
                {"params": rest, "weight_decay": 0.0}]

    def load_hf(self, tensors):
        """Weights from an HF-layout dict (Conv1D weights stored (in, out)), as numpy."""
        sd = {}
        for name, a in tensors.items():
            t = torch.from_numpy(a.copy())
            name = name.removeprefix("transformer.")
            if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
                t = t.t().contiguous()
            if name == "wte.weight" and t.shape[0] < self.Vp:
                t = torch.cat([t, t.new_zeros(self.Vp - t.shape[0], t.shape[1])])
            sd[name] = t
        sd["lm_head.weight"] = sd["wte.weight"]
        self.load_state_dict(sd, strict=True)
