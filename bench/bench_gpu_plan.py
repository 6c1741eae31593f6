"""Compare planner's memory and time model with llm-analysis on the same inputs, side by side.

Llama-2-7B shape (32 x 4096, 32 heads, vocab 32000, seq 4096) on 8 x H100 SXM, bf16, ZeRO-1,
selective recomputation, FlashAttention, micro-batch 1, global batch 1024 sequences (4M tokens),
2T tokens, MFU (llm-analysis: flops_efficiency) 0.40.

    pip install llm-analysis        # or: pip install -e '.[bench]'
    python bench/bench_gpu_plan.py
"""

from __future__ import annotations

import math
import time

from planner import profiles
from planner.gpu_plan import PlanOptions, plan_gpus, training_wall_clock_s
from planner.laws.batch import zhang_cbs_tokens
from planner.memory import training_memory
from planner.schemas.hardware import HardwareProfile
from planner.shapes import TransformerShape

N_GPUS, GLOBAL_BATCH, MICRO, SEQ, TOKENS, MFU = 8, 1024, 1, 4096, 2.0e12, 0.40
SHAPE = TransformerShape(n_layers=32, d_model=4096, n_heads=32, d_ff=11008, vocab_size=32000, seq_len=SEQ)


def ours() -> dict:
    hw = profiles.load("hardware", "h100-sxm5-80gb", HardwareProfile).profile
    t0 = time.perf_counter()
    plan = plan_gpus(
        SHAPE.total_params,
        TOKENS,
        SHAPE,
        hw,
        batch_tokens=GLOBAL_BATCH * SEQ,
        cbs_tokens=float(zhang_cbs_tokens(TOKENS)),
        mfu=MFU,
        options=PlanOptions(n_gpus=N_GPUS),
    )
    elapsed = time.perf_counter() - t0
    assert (plan.micro_batch_sequences, plan.batch_sequences) == (MICRO, GLOBAL_BATCH)
    m = training_memory(
        SHAPE.total_params,
        SHAPE.n_layers,
        SHAPE.d_model,
        SHAPE.n_heads,
        SHAPE.vocab_size,
        SEQ,
        MICRO,
        zero_stage=1,
        data_parallel=N_GPUS,
        in_flight_micro_batches=plan.grad_accumulation_steps,
    )
    attn_time = training_wall_clock_s(SHAPE.flops_per_token() / 6, TOKENS, N_GPUS, hw.peak_flops_per_s("bf16"), MFU)
    return {
        "params": SHAPE.total_params,
        "weights": m.weights,
        "gradients": m.gradients,
        "optimizer": m.optimizer,
        "activations": m.activations,
        "logits / output": m.logits,
        "total memory": m.total,
        "FLOPs per token": 6.0 * SHAPE.total_params,
        "wall-clock (days)": plan.wall_clock_s / 86400,
        "GPU-hours": plan.gpu_hours,
        "6N+attention wall-clock (days)": attn_time / 86400,
        "seconds to plan": elapsed,
    }


def theirs() -> dict:
    from llm_analysis.analysis import train  # optional peer, see pyproject [bench]

    t0 = time.perf_counter()
    # Its shipped Llama-2-7B config (ffn_embed_dim must be a multiple of hidden_dim, so 16384 non-gated,
    # 8h^2 per MLP like SwiGLU 3·h·11008 ≈ 8.06h^2).
    s = train(
        model_name="NousResearch_Llama-2-7b-hf",
        gpu_name="h100-sxm-80gb",
        dtype_name="w16a16e16",
        log_level="ERROR",
        batch_size_per_gpu=MICRO,
        global_batch_size=GLOBAL_BATCH,
        seq_len=SEQ,
        total_num_tokens=int(TOKENS),
        activation_recomputation=1,
        ds_zero=1,
        tp_size=1,
        pp_size=1,
        total_num_gpus=N_GPUS,
        flash_attn=True,
        flops_efficiency=MFU,
    )
    elapsed = time.perf_counter() - t0
    tokens_per_micro = MICRO * SEQ
    return {
        "params": s["num_params_total"],
        "weights": s["weight_memory_per_gpu"],
        "gradients": s["gradient_memory_per_gpu"],
        "optimizer": s["optimizer_state_memory_per_gpu"],
        "activations": s["activation_memory_per_gpu"] - s["activation_memory_embedding_output_per_gpu"],
        "logits / output": s["activation_memory_embedding_output_per_gpu"],
        "total memory": s["(weight+op_state+grad+act)_memory_per_gpu"],
        "FLOPs per token": s["num_flops_total_per_micro_batch"] / tokens_per_micro,
        "wall-clock (days)": s["total_training_latency"] / 86400,
        "GPU-hours": s["gpu_hours"],
        "6N+attention wall-clock (days)": float("nan"),
        "seconds to plan": elapsed,
    }


def fmt(key: str, value: float) -> str:
    if math.isnan(value):
        return "-"
    if key in ("weights", "gradients", "optimizer", "activations", "logits / output", "total memory"):
        return f"{value / 1e9:.2f} GB"
    if key in ("params", "FLOPs per token"):
        return f"{value:.4g}"
    if key == "GPU-hours":
        return f"{value:,.0f}"
    return f"{value:.3g}"


def main() -> None:
    a, b = ours(), theirs()
    print(
        f"Llama-2-7B shape, {N_GPUS} x H100 SXM, bf16, ZeRO-1, selective recompute, micro-batch {MICRO}, "
        f"batch {GLOBAL_BATCH} x {SEQ}, {TOKENS:.0e} tokens, MFU {MFU}"
    )
    print(f"| {'quantity':32} | {'planner':>14} | {'llm-analysis':>14} | {'ratio':>6} |")
    print(f"|{'-' * 34}|{'-' * 16}|{'-' * 16}|{'-' * 8}|")
    for key in a:
        ratio = a[key] / b[key] if not math.isnan(b[key]) and b[key] else float("nan")
        print(f"| {key:32} | {fmt(key, a[key]):>14} | {fmt(key, b[key]):>14} | {ratio:6.3f} |")


if __name__ == "__main__":
    main()
