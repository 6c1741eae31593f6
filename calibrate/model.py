"""A nanoGPT-shaped GPT for calibration probes, in one file.

Follows karpathy/nanoGPT model.py: pre-LayerNorm blocks without biases, learned positions, a 4d GELU
MLP, causal attention through F.scaled_dot_product_attention (FlashAttention kernels on H100), the
token embedding tied to the output head, init std 0.02 with residual projections scaled by
1/sqrt(2L) (GPT-2 paper §2.3).

Legend: B batch, T sequence length, C = d = n_embd, L = n_layer, V = vocab_size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GPTConfig:
    n_layer: int = 2
    n_embd: int = 48
    n_head: int = 3
    vocab_size: int = 257  # 256 bytes + EOS
    seq_len: int = 128


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=False)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=False)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.seq_len, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=False)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017), counted once
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by 1/sqrt(2L)
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        T = idx.size(1)
        pos = torch.arange(T, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        # loss in fp32 even under autocast: the probe's whole output is this number
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))

    def param_groups(self, weight_decay: float):
        """AdamW groups: decay the matrices, not embeddings or norms (OLMo ladder, calibration.md §3.5)."""
        decay = [p for n, p in self.named_parameters() if p.dim() >= 2 and not n.startswith(("wte", "wpe"))]
        no_decay = [p for n, p in self.named_parameters() if p.dim() < 2 or n.startswith(("wte", "wpe"))]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def n_params(cfg: GPTConfig) -> tuple[int, int]:
    """(total, non-embedding) parameters; the tied head counts once, learned positions are embeddings.

    Same closed form as planner.probe_plan.shape_params (tested equal to the module's count).
    """
    d, L = cfg.n_embd, cfg.n_layer
    embedding = cfg.vocab_size * d + cfg.seq_len * d
    body = L * (12 * d * d + 2 * d) + d  # qkv + proj + 2 MLP matrices, two LayerNorm weights; ln_f
    return embedding + body, body


def flops_per_token(cfg: GPTConfig) -> float:
    """Training FLOPs per token: 6N + 12·L·d·T (PaLM App. B, as in nanoGPT estimate_mfu); N total."""
    N, _ = n_params(cfg)
    return 6.0 * N + 12.0 * cfg.n_layer * cfg.n_embd * cfg.seq_len
