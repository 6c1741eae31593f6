"""Transformer shapes: parameter counts (total and non-embedding) and FLOPs per token. Pure.

Total vs non-embedding matters because the laws count differently: Chinchilla (Hoffmann et al.
2022) fits TOTAL parameters, while Zhang et al. 2024, Step Law 2025 and DeepSeek 2024 use
NON-EMBEDDING parameters (or FLOPs). Convert with :func:`non_embedding_params` and
:func:`total_params`, which go through a plausible shape from :func:`shape_for_params`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

HEAD_DIM = 128  # Llama 2 7B/13B/70B all use 128-dim heads (Touvron et al. 2023, arXiv:2307.09288)
ASPECT_RATIO = 128  # d_model / n_layers of Llama 2 7B (4096/32) and 13B (5120/40)
FFN_MULTIPLE = 256  # Llama rounds the SwiGLU width up to a multiple of 256 (meta-llama/llama model.py)


@dataclass(frozen=True)
class TransformerShape:
    """A decoder-only transformer. Llama-style by default: SwiGLU MLP (3 matrices), RMSNorm, untied head."""

    n_layers: int
    d_model: int
    n_heads: int
    d_ff: int
    vocab_size: int
    seq_len: int
    n_kv_heads: int | None = None  # GQA; None = multi-head attention (n_kv_heads = n_heads)
    gated_mlp: bool = True  # SwiGLU (3·d·d_ff) vs GeLU MLP (2·d·d_ff)
    tied_embeddings: bool = False

    def __post_init__(self) -> None:
        assert self.d_model % self.n_heads == 0, "d_model must be a multiple of n_heads"
        assert self.kv_heads >= 1 and self.n_heads % self.kv_heads == 0, "n_heads must be a multiple of n_kv_heads"

    @property
    def kv_heads(self) -> int:
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def params_per_layer(self) -> int:
        """Attention Q and O (2d²) + K and V (2·d·kv_heads·head_dim) + MLP + two norm gains (2d)."""
        d = self.d_model
        attention = 2 * d * d + 2 * d * self.kv_heads * self.head_dim
        mlp = (3 if self.gated_mlp else 2) * d * self.d_ff
        return attention + mlp + 2 * d

    @property
    def non_embedding_params(self) -> int:
        """All layers plus the final norm; excludes token embedding and output head (Kaplan et al. 2020 §2.1)."""
        return self.n_layers * self.params_per_layer + self.d_model

    @property
    def embedding_params(self) -> int:
        """Token embedding V·d, plus the output head V·d unless tied."""
        return self.vocab_size * self.d_model * (1 if self.tied_embeddings else 2)

    @property
    def total_params(self) -> int:
        return self.non_embedding_params + self.embedding_params

    def flops_per_token(self, include_attention: bool = True) -> float:
        """Training FLOPs per token: 6·N + 12·L·d·T (PaLM, Chowdhery et al. 2022, App. B).

        N counts every matmul weight, i.e. total parameters minus the input embedding (a lookup);
        the attention term 12·n_layers·d_model·seq_len is the score and value matmuls (PaLM's 12·L·H·Q·T).
        """
        n_matmul = self.total_params - self.vocab_size * self.d_model * (0 if self.tied_embeddings else 1)
        attention = 12.0 * self.n_layers * self.d_model * self.seq_len if include_attention else 0.0
        return 6.0 * n_matmul + attention

    def deepseek_flops_per_token(self) -> float:
        """DeepSeek's M = 72·n_layer·d² + 12·n_layer·d·l_seq: non-embedding FLOPs/token incl. attention.

        DeepSeek LLM §3.2 (assumes a 4d MLP-equivalent block, 12d² per layer); C = M·D feeds its B_opt and η laws.
        """
        L, d = self.n_layers, self.d_model
        return 72.0 * L * d * d + 12.0 * L * d * self.seq_len


def llama_ffn_width(d_model: int) -> int:
    """SwiGLU width int(2·4d/3) rounded up to a multiple of 256: 11008 at d = 4096 (Llama 2 7B)."""
    hidden = int(2 * 4 * d_model / 3)
    return FFN_MULTIPLE * math.ceil(hidden / FFN_MULTIPLE)


def llama_shape(
    n_layers: int, vocab_size: int = 32000, seq_len: int = 4096, n_heads: int | None = None
) -> TransformerShape:
    """Llama-like shape with 128-dim heads and d_model ≈ 128·n_layers (the rule of :func:`shape_for_params`).

    From 16 heads on (d_model 2048, past ~1B parameters, where tensor parallelism starts to matter),
    the head count is rounded to a multiple of 8 so that tensor parallelism over an 8-GPU node divides
    the heads (Megatron requires n_heads % TP == 0); Llama 2 7B/13B (32, 40 heads) obey it. Smaller
    models keep d_model = 128·n_layers exactly: rounding 9-15 heads to 8 or 16 would leave no shape
    between 0.21B and 0.75B parameters. `n_heads` overrides the rule.
    """
    if n_heads is None:
        n_heads = n_layers * ASPECT_RATIO // HEAD_DIM
        if n_heads >= 16:
            n_heads = 8 * round(n_heads / 8)
    d_model = HEAD_DIM * n_heads
    return TransformerShape(
        n_layers=n_layers,
        d_model=d_model,
        n_heads=n_heads,
        d_ff=llama_ffn_width(d_model),
        vocab_size=vocab_size,
        seq_len=seq_len,
    )


@functools.lru_cache(maxsize=32)
def _candidates(vocab_size: int, seq_len: int, max_layers: int = 256) -> tuple[TransformerShape, ...]:
    return tuple(_generate_candidates(vocab_size, seq_len, max_layers))


def _generate_candidates(vocab_size: int, seq_len: int, max_layers: int):
    """Each n_layers with the rule's head count, and from 16 heads also the multiples of 8 either side
    (aspect ratios within ~0.75-1.5x of 128, where Kaplan et al. 2020 Fig. 5 find the loss unchanged):
    neighbouring candidates then differ by at most ~20% in parameters above ~1e8."""
    for n_layers in range(1, max_layers + 1):
        exact = n_layers * ASPECT_RATIO // HEAD_DIM
        if exact < 16:
            yield llama_shape(n_layers, vocab_size, seq_len)
            continue
        for heads in sorted({8 * (exact // 8), 8 * -(-exact // 8), 8 * round(exact / 8)}):
            yield llama_shape(n_layers, vocab_size, seq_len, n_heads=heads)


def shape_for_params(
    n_params: float, vocab_size: int = 32000, seq_len: int = 4096, max_layers: int = 256
) -> TransformerShape:
    """The Llama-like shape whose TOTAL parameter count is closest to n_params.

    Rule: aspect ratio d_model/n_layers ≈ 128 and head_dim = 128, as in Llama 2 7B (32 × 4096) and 13B
    (40 × 5120) (Touvron et al. 2023); SwiGLU width 8d/3 rounded to 256; untied embeddings. Kaplan et
    al. 2020 (Fig. 5) find loss within a few percent for aspect ratios 20-200, so the rule costs little.
    At 6.74e9 it returns Llama 2 7B's shape exactly. Larger Llamas use a lower ratio (70B: 102), so
    treat shapes far above 13B as indicative. Ties go to the aspect ratio nearer 128.
    """
    if not n_params > 0:
        raise ValueError("n_params must be positive")
    return min(
        _candidates(vocab_size, seq_len, max_layers),
        key=lambda s: (abs(math.log(s.total_params / n_params)), abs(s.d_model / s.n_layers - ASPECT_RATIO)),
    )


def non_embedding_params(n_params_total: float, vocab_size: int = 32000, seq_len: int = 4096) -> float:
    """Non-embedding count for a TOTAL count: n_params_total − embeddings of :func:`shape_for_params`'s shape."""
    shape = shape_for_params(n_params_total, vocab_size, seq_len)
    return float(n_params_total - shape.embedding_params)


def total_params(n_params_non_embedding: float, vocab_size: int = 32000, seq_len: int = 4096) -> float:
    """TOTAL count for a non-embedding count: adds the embeddings of the closest Llama-like shape."""
    shape = min(
        _candidates(vocab_size, seq_len),
        key=lambda s: abs(math.log(s.non_embedding_params / n_params_non_embedding)),
    )
    return float(n_params_non_embedding + shape.embedding_params)
