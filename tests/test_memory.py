"""Memory model against the ZeRO paper and the Korthikanti examples (hardware.md §7.2-7.3)."""

from __future__ import annotations

import pytest

from planner.memory import activation_bytes_per_layer, logits_bytes, model_state_bytes, training_memory


def matches_printed(value: float, printed: str) -> bool:
    """value rounds to the printed number at its printed significant figures ("1900" has 2, "1.9" has 2)."""
    digits = printed.replace(".", "").lstrip("0")
    sig = len(digits if "." in printed else digits.rstrip("0"))
    return float(f"{value:.{sig}g}") == float(printed)


@pytest.mark.parametrize(("stage", "gb"), [(0, "120."), (1, "31.4"), (2, "16.6"), (3, "1.9")])
def test_zero_paper_example(stage, gb):
    """Rajbhandari et al. 2020 Fig. 1: Ψ = 7.5B, Nd = 64, K = 12 -> 120 / 31.4 / 16.6 / 1.9 GB."""
    total = model_state_bytes(7.5e9, stage, 64, recipe="zero-paper").total / 1e9
    assert matches_printed(total, gb)


def test_megatron_bf16_recipe_is_18_bytes_and_distributed_optimizer():
    """Megatron-LM README: bf16 param + fp32 grads = 18 bytes; distributed optimizer 6 + 12/d."""
    assert model_state_bytes(1.0).total == 18.0
    assert model_state_bytes(1.0, zero_stage=1, data_parallel=8).total == pytest.approx(6 + 12 / 8)


def test_tensor_pipeline_divide_before_zero():
    assert model_state_bytes(8e9, 3, 4, 2, 2).total == pytest.approx(18 * 8e9 / 4 / 4)


GPT3 = {"seq_len": 2048, "d_model": 12288, "n_heads": 96, "layers": 96}
LLAMA3_70B = {"seq_len": 8192, "d_model": 8192, "n_heads": 64, "layers": 80}
SETTINGS = {
    "none": {"tensor_parallel": 1},
    "tp8": {"tensor_parallel": 8, "sequence_parallel": False},
    "tp8_sp": {"tensor_parallel": 8, "sequence_parallel": True},
    "tp8_sp_selective": {"tensor_parallel": 8, "recompute": "selective"},
    "full": {"recompute": "full"},
}


@pytest.mark.parametrize(
    ("shape", "setting", "gb"),
    [
        (GPT3, "none", "275"),
        (GPT3, "tp8", "55.6"),
        (GPT3, "tp8_sp", "34.4"),
        (GPT3, "tp8_sp_selective", "10.3"),
        (GPT3, "full", "4.8"),
        (LLAMA3_70B, "none", "1900"),
        (LLAMA3_70B, "tp8", "285"),
        (LLAMA3_70B, "tp8_sp", "238"),
        (LLAMA3_70B, "tp8_sp_selective", "22.8"),
        (LLAMA3_70B, "full", "10.7"),
    ],
)
def test_korthikanti_examples(shape, setting, gb):
    """hardware.md §7.3 worked examples (b = 1), at their printed precision."""
    per_layer = activation_bytes_per_layer(shape["seq_len"], 1, shape["d_model"], shape["n_heads"], **SETTINGS[setting])
    assert matches_printed(per_layer * shape["layers"] / 1e9, gb)


def test_gpt3_score_term_is_80():
    """5as/h = 80 for GPT-3 175B, as in the paper's example: sbh(34 + 80)."""
    sbh = 2048 * 12288
    assert activation_bytes_per_layer(2048, 1, 12288, 96) == pytest.approx(sbh * 114)


def test_flash_attention_removes_score_term():
    assert activation_bytes_per_layer(2048, 1, 4096, 32, flash_attention=True) == 34 * 2048 * 4096


def test_logits():
    """4·b·s·V bytes: V = 128k, s = 8k is ~4 GB per sequence (hardware.md §7.3)."""
    assert logits_bytes(8192, 1, 128256) / 1e9 == pytest.approx(4.2, abs=0.05)


def test_training_memory_pipeline_holds_l_layers_of_one_micro_batch():
    kw = {
        "n_params": 7e9,
        "n_layers": 32,
        "d_model": 4096,
        "n_heads": 32,
        "vocab_size": 32000,
        "seq_len": 4096,
        "micro_batch": 1,
    }
    pp1 = training_memory(**kw, pipeline_parallel=1)
    pp4 = training_memory(**kw, pipeline_parallel=4)
    assert pp4.activations == pytest.approx(pp1.activations)
    few = training_memory(**kw, pipeline_parallel=4, in_flight_micro_batches=1)
    assert few.activations == pytest.approx(pp1.activations / 4)


def test_bad_inputs():
    with pytest.raises(ValueError):
        model_state_bytes(1.0, zero_stage=4)
    with pytest.raises(ValueError):
        activation_bytes_per_layer(1, 1, 8, 1, recompute="some")
