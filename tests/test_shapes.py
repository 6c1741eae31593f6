"""Transformer shapes, parameter counts and FLOPs per token."""

from __future__ import annotations

import pytest

from planner.shapes import TransformerShape, llama_ffn_width, non_embedding_params, shape_for_params, total_params

LLAMA2_7B = TransformerShape(n_layers=32, d_model=4096, n_heads=32, d_ff=11008, vocab_size=32000, seq_len=4096)


def test_llama2_7b_counts():
    """Llama 2 7B: 6,738,415,616 parameters (HF config; model card 6.74B)."""
    assert LLAMA2_7B.total_params == 6_738_415_616
    assert LLAMA2_7B.embedding_params == 2 * 32000 * 4096
    assert LLAMA2_7B.non_embedding_params == 6_738_415_616 - 262_144_000


def test_llama2_70b_gqa_counts():
    """Llama 2 70B with GQA (8 KV heads): 68,976,648,192 parameters (68.98B in the golden runs)."""
    shape = TransformerShape(
        n_layers=80, d_model=8192, n_heads=64, d_ff=28672, vocab_size=32000, seq_len=4096, n_kv_heads=8
    )
    assert shape.total_params == 68_976_648_192


def test_zhang_non_embedding_count_is_12_l_d2_for_gpt_block():
    """Zhang's 151M = 12·12·1024² (GeLU MLP 4d, no norms counted): our count adds only the norm gains."""
    shape = TransformerShape(
        n_layers=12, d_model=1024, n_heads=16, d_ff=4096, vocab_size=50277, seq_len=512, gated_mlp=False
    )
    assert shape.non_embedding_params - (2 * 12 + 1) * 1024 == 12 * 12 * 1024**2


def test_shape_for_params_picks_llama2_7b():
    assert shape_for_params(6.74e9) == LLAMA2_7B
    assert llama_ffn_width(4096) == 11008 and llama_ffn_width(5120) == 13824  # Llama 2 13B


@pytest.mark.parametrize("n_params", [1e8, 1e9, 1.3e10, 7e10, 4e11])
def test_shape_for_params_is_close_and_llama_like(n_params):
    shape = shape_for_params(n_params)
    assert abs(shape.total_params / n_params - 1) < 0.25
    assert shape.head_dim == 128 and 96 <= shape.d_model / shape.n_layers <= 160
    if shape.n_layers >= 8:
        assert shape.n_heads % 8 == 0  # tensor parallel over an 8-GPU node divides the heads


def test_total_and_non_embedding_round_trip():
    assert non_embedding_params(6.74e9) == pytest.approx(6.74e9 - 262_144_000)
    assert total_params(non_embedding_params(6.74e9)) == pytest.approx(6.74e9)


def test_flops_per_token_palm_appendix_b():
    """6N (matmul weights: all but the input embedding) + 12·L·d·T."""
    n_matmul = LLAMA2_7B.total_params - 32000 * 4096
    assert LLAMA2_7B.flops_per_token() == 6 * n_matmul + 12 * 32 * 4096 * 4096
    assert LLAMA2_7B.flops_per_token(include_attention=False) == 6 * n_matmul


def test_deepseek_m():
    """M = 72·n_layer·d² + 12·n_layer·d·l_seq (DeepSeek LLM §3.2)."""
    assert LLAMA2_7B.deepseek_flops_per_token() == 72 * 32 * 4096**2 + 12 * 32 * 4096 * 4096


def test_bad_shapes():
    with pytest.raises(AssertionError):
        TransformerShape(n_layers=1, d_model=100, n_heads=3, d_ff=4, vocab_size=1, seq_len=1)
    with pytest.raises(ValueError):
        shape_for_params(0)


def test_stand_in_shapes_track_the_size_asked_for():
    """No gap in the candidate shapes: from 1e8 to 1e12 parameters the stand-in is within 25% (it was
    1.9x off near 4e8 when 9-15 heads were rounded to 8 or 16)."""
    for i in range(41):
        n = 10 ** (8 + i / 10)
        shape = shape_for_params(n)
        assert 0.8 < shape.total_params / n < 1.25, (n, shape)
        assert shape.d_model % shape.n_heads == 0 and (shape.n_heads < 16 or shape.n_heads % 8 == 0)
