"""Training memory per accelerator: model states (ZeRO), activations (Korthikanti), logits. Pure.

Sources (shared reference hardware.md §7):
* Model states: Rajbhandari et al. 2020 (ZeRO, arXiv:1910.02054) §3-5: mixed-precision Adam holds
  2Ψ (16-bit weights) + 2Ψ (16-bit grads) + KΨ optimizer states, K = 12 (fp32 master weights, Adam m
  and v): 16 bytes/param. Megatron-LM's distributed-optimizer table gives 18 bytes/param for bf16
  weights with fp32 main gradients (2 + 4 + 12); that is our DEFAULT ("megatron-bf16"), because
  bf16 training with fp32 gradient accumulation is the common setting and the larger number plans
  conservatively. "zero-paper" reproduces the ZeRO paper's 16 bytes.
* ZeRO stage s over data-parallel degree Nd partitions optimizer states (1), + gradients (2),
  + parameters (3); tensor (t) and pipeline (p) parallelism divide Ψ by t·p first.
* Activations per layer: Korthikanti et al. 2022 (arXiv:2205.05198) Table 2 / Eq. 1-5, GPT-style block,
  16-bit activations, 1-byte dropout masks. The busiest 1F1B pipeline stage holds ≈ L layers' worth
  of one micro-batch regardless of p (their §4.2.3).
* Logits: cross-entropy in fp32 keeps 4·b·s·V bytes (hardware.md §7.3 note).

Sizes are bytes (floats); GB = 1e9 bytes, GiB = 2^30 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Recompute = Literal["none", "selective", "full"]
StateRecipe = Literal["megatron-bf16", "zero-paper"]

# bytes per parameter: (weights, gradients, optimizer states)
STATE_BYTES: dict[str, tuple[float, float, float]] = {
    "megatron-bf16": (2.0, 4.0, 12.0),  # Megatron-LM README "Distributed Optimizer": bf16 param, fp32 grads = 18
    "zero-paper": (2.0, 2.0, 12.0),  # ZeRO paper: fp16 weights + fp16 grads + K = 12
}


@dataclass(frozen=True)
class ModelStateBytes:
    weights: float
    gradients: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer


def model_state_bytes(
    n_params: float,
    zero_stage: int = 0,
    data_parallel: int = 1,
    tensor_parallel: int = 1,
    pipeline_parallel: int = 1,
    recipe: StateRecipe = "megatron-bf16",
) -> ModelStateBytes:
    """Bytes per accelerator of weights, gradients and Adam states under ZeRO stage 0-3.

    Ψ' = n_params/(t·p); stage 1 divides the optimizer states by Nd, stage 2 also the gradients,
    stage 3 also the weights (Rajbhandari et al. 2020, Fig. 1: 7.5B, Nd = 64 → 120/31.4/16.6/1.9 GB
    with the "zero-paper" recipe).
    """
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, not {zero_stage}")
    if recipe not in STATE_BYTES:
        raise ValueError(f"unknown recipe {recipe!r} (known: {', '.join(STATE_BYTES)})")
    w, g, o = STATE_BYTES[recipe]
    psi = n_params / (tensor_parallel * pipeline_parallel)
    nd = float(data_parallel)
    return ModelStateBytes(
        weights=w * psi / (nd if zero_stage >= 3 else 1.0),
        gradients=g * psi / (nd if zero_stage >= 2 else 1.0),
        optimizer=o * psi / (nd if zero_stage >= 1 else 1.0),
    )


def activation_bytes_per_layer(
    seq_len: int,
    micro_batch: int,
    d_model: int,
    n_heads: int,
    tensor_parallel: int = 1,
    sequence_parallel: bool = True,
    recompute: Recompute = "none",
    flash_attention: bool = False,
) -> float:
    """Activation bytes one transformer layer keeps for the backward pass (Korthikanti et al. 2022, Table 2).

    s = seq_len, b = micro_batch, h = d_model, a = n_heads, t = tensor_parallel:
      no parallelism, no recompute   sbh(34 + 5as/h)
      tensor parallel                sbh(10 + 24/t + 5as/(ht))
      tensor + sequence parallel     (sbh/t)(34 + 5as/h)
      selective recompute            34·sbh/t with SP (sbh(10 + 24/t) without)
      full recompute                 2·sbh (only each layer's input)
    FlashAttention never stores the s×s scores, so it removes the 5as/h term like selective
    recomputation does (hardware.md §7.3, planner note). Sequence parallelism only applies when t > 1.
    """
    s, b, h, a, t = float(seq_len), float(micro_batch), float(d_model), float(n_heads), float(tensor_parallel)
    sbh = s * b * h
    if recompute == "full":
        return 2.0 * sbh
    if recompute not in ("none", "selective"):
        raise ValueError(f"recompute must be none, selective or full, not {recompute!r}")
    scores = 0.0 if (recompute == "selective" or flash_attention) else 5.0 * a * s / h
    if t == 1 or sequence_parallel:
        return sbh / t * (34.0 + scores)
    return sbh * (10.0 + 24.0 / t + scores / t)


def logits_bytes(seq_len: int, micro_batch: int, vocab_size: int, tensor_parallel: int = 1) -> float:
    """fp32 logits for cross-entropy: 4·b·s·V bytes, split over t with a vocab-parallel head."""
    return 4.0 * micro_batch * seq_len * vocab_size / tensor_parallel


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per accelerator on the busiest pipeline stage."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    logits: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.logits


def training_memory(
    n_params: float,
    n_layers: int,
    d_model: int,
    n_heads: int,
    vocab_size: int,
    seq_len: int,
    micro_batch: int,
    zero_stage: int = 1,
    data_parallel: int = 1,
    tensor_parallel: int = 1,
    pipeline_parallel: int = 1,
    recompute: Recompute = "selective",
    flash_attention: bool = True,
    in_flight_micro_batches: int | None = None,
    recipe: StateRecipe = "megatron-bf16",
) -> MemoryBreakdown:
    """Memory per accelerator: model states + activations + logits.

    Activations: the first 1F1B stage holds L/p layers for min(p, in-flight) micro-batches, i.e. ≈ L
    layers of one micro-batch when enough micro-batches are in flight (Korthikanti §4.2.3); sequence
    parallelism is assumed on whenever t > 1 (Megatron's default with TP). Logits are counted once,
    conservatively on the same stage. Excludes framework buffers and fragmentation (add a margin).
    """
    states = model_state_bytes(n_params, zero_stage, data_parallel, tensor_parallel, pipeline_parallel, recipe)
    layers_per_stage = n_layers / pipeline_parallel
    in_flight = (
        pipeline_parallel if in_flight_micro_batches is None else min(pipeline_parallel, in_flight_micro_batches)
    )
    per_layer = activation_bytes_per_layer(
        seq_len, micro_batch, d_model, n_heads, tensor_parallel, True, recompute, flash_attention
    )
    return MemoryBreakdown(
        weights=states.weights,
        gradients=states.gradients,
        optimizer=states.optimizer,
        activations=per_layer * layers_per_stage * in_flight,
        logits=logits_bytes(seq_len, micro_batch, vocab_size, tensor_parallel),
    )
