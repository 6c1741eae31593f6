"""GPU plan: published runs' GPU-hours, modes, trade-off table and errors."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pytest

from planner import profiles
from planner.errors import ConfigError, InfeasibleError, UsageError
from planner.gpu_plan import GpuPlan, PlanOptions, plan_gpus, token_overhead, training_wall_clock_s
from planner.laws.batch import bcrit_from_cbs, tokens_needed_factor, zhang_cbs_tokens
from planner.schemas.hardware import HardwareProfile
from planner.shapes import shape_for_params

HW_DIR = Path(__file__).resolve().parents[1] / "profiles" / "hardware"


def hw(name: str) -> HardwareProfile:
    return profiles.load("hardware", str(HW_DIR / f"{name}.yaml"), HardwareProfile).profile


# Tier-A golden runs of the shared reference hardware.yaml (golden_runs) whose accelerator has a profile:
# (id, params, tokens, accelerator, n_accel or None, accel_hours, implied_mfu as printed)
GOLDEN_RUNS = [
    ("llama31-405b", 405850000000, 15.6e12, "h100-sxm5-80gb", 16384, 30840000, 0.346),
    ("llama2-70b", 68980000000, 2.0e12, "a100-sxm4-80gb", None, 1720320, 0.428),
    ("llama2-34b", 34000000000, 2.0e12, "a100-sxm4-80gb", None, 1038336, 0.350),
    ("llama2-13b", 13020000000, 2.0e12, "a100-sxm4-80gb", None, 368640, 0.377),
    ("llama2-7b", 6740000000, 2.0e12, "a100-sxm4-80gb", None, 184320, 0.391),
    ("llama1-65b", 65200000000, 1.4e12, "a100-sxm4-80gb", 2048, 1022362, 0.477),
    ("bloom-176b", 176250000000, 366e9, "a100-sxm4-80gb", 384, 1082990, 0.318),
    ("palm-540b", 540350000000, 780e9, "tpu-v4", 6144, 8404992, 0.304),
    ("gopher-280b", 280000000000, 300e9, "tpu-v3", 4096, 3768320, 0.302),
    ("mpt-7b", 6700000000, 1.0e12, "a100-sxm4-40gb", 440, 100320, 0.357),
    ("megascale-175b", 175000000000, 300e9, "a100-sxm4-80gb", 12288, 516096, 0.543),
    ("starcoderbase-15b", 15500000000, 1.0e12, "a100-sxm4-80gb", 512, 320256, 0.259),
    ("bloomberggpt-50b", 50600000000, 569e9, "a100-sxm4-40gb", 512, 651264, 0.236),
    ("pythia-12b", 11846000000, 299.9e9, "a100-sxm4-40gb", 256, 72300, 0.262),
    ("smollm3-3b", 3075000000, 11.2e12, "h100-sxm5-80gb", 384, 221184, 0.262),
]


@pytest.mark.parametrize(
    ("run", "n", "d", "accel", "n_accel", "hours", "mfu"), GOLDEN_RUNS, ids=[r[0] for r in GOLDEN_RUNS]
)
def test_golden_run_gpu_hours(run, n, d, accel, n_accel, hours, mfu):
    """6·N·D at the run's implied MFU on its profile's dense bf16 peak gives back its GPU-hours.

    Tolerance = the printed precision of implied_mfu (3 decimals): |Δh/h| <= 0.0005/mfu.
    """
    peak = hw(accel).peak_flops_per_s("bf16")
    n_gpus = n_accel or 2048
    gpu_hours = training_wall_clock_s(n, d, n_gpus, peak, mfu) * n_gpus / 3600
    assert abs(gpu_hours / hours - 1) <= 0.0005 / mfu + 1e-12


@pytest.mark.parametrize("run", ["llama2-70b", "llama1-65b", "palm-540b", "llama31-405b"])
def test_golden_run_through_plan(run):
    """The full plan (memory split, fixed GPU count, batch ≤ CBS) reproduces the same GPU-hours."""
    _, n, d, accel, n_accel, hours, mfu = next(r for r in GOLDEN_RUNS if r[0] == run)
    n_gpus = n_accel or 2048
    shape = shape_for_params(n, seq_len=2048)
    batch = float(4 * n_gpus * shape.seq_len)  # enough sequences to feed every GPU
    plan = plan_gpus(
        n, d, shape, hw(accel), batch_tokens=batch, cbs_tokens=batch, mfu=mfu, options=PlanOptions(n_gpus=n_gpus)
    )
    assert plan.n_gpus == n_gpus and plan.token_overhead_fraction == 0.0
    assert abs(plan.gpu_hours / hours - 1) <= 0.0005 / mfu + 1e-12
    assert plan.memory.total_gib <= plan.memory.usable_gib


LLAMA7B = shape_for_params(6.74e9)  # Llama 2 7B shape, seq 4096
D = 2.0e12
CBS = float(zhang_cbs_tokens(D))  # ~1.04e7 tokens
BATCH = 4.0 * 2**20  # 4M tokens = 1024 sequences


def plan(**options) -> GpuPlan:
    return plan_gpus(
        6.74e9, D, LLAMA7B, hw("h100-sxm5-80gb"), batch_tokens=BATCH, cbs_tokens=CBS, options=PlanOptions(**options)
    )


def test_fixed_8_h100_llama7b():
    p = plan(n_gpus=8)
    assert (p.tensor_parallel, p.pipeline_parallel, p.data_parallel) == (1, 1, 8)
    assert p.batch_sequences == 1024 and p.micro_batch_sequences * p.grad_accumulation_steps * 8 == 1024
    assert p.mfu == 0.40 and p.price_usd_per_hour == 3.78  # profile defaults
    assert p.wall_clock_s == pytest.approx(6 * 6.74e9 * D / (8 * 989.4e12 * 0.40))
    assert p.gpu_hours == pytest.approx(8 * p.wall_clock_s / 3600)
    assert p.cost_usd == pytest.approx(p.gpu_hours * 3.78)
    assert p.n_steps == math.ceil(D / BATCH) and p.token_overhead_fraction == 0.0
    assert p.memory.total_gib <= p.memory.usable_gib < p.memory.capacity_gib


def test_max_parallel_feeds_one_sequence_per_gpu_and_respects_cap():
    p = plan()
    assert p.mode == "max-parallel" and p.n_gpus == 1024 and p.grad_accumulation_steps == 1
    capped = plan(max_gpus=300)
    assert capped.n_gpus <= 300 and capped.batch_sequences == 1024


def test_fixed_gpus_beyond_the_batch_pays_tokens():
    p = plan(n_gpus=8192)
    assert p.batch_tokens == 8192 * 4096 > CBS
    bcrit = float(bcrit_from_cbs(CBS, 256 * 512))
    assert p.bcrit_tokens == pytest.approx(bcrit)
    expected = float(tokens_needed_factor(p.batch_tokens, bcrit, CBS)) - 1
    assert p.token_overhead_fraction == pytest.approx(expected) and expected > 0.3
    assert p.n_tokens_needed == pytest.approx(D * (1 + expected))
    assert any("exceeds the CBS" in w for w in p.warnings)
    # the one penalty formula, which `planner check` inverts: zero up to the CBS, None without a B_crit
    assert token_overhead(p.batch_tokens, CBS, bcrit) == pytest.approx(expected)
    assert token_overhead(CBS, CBS, bcrit) == 0.0 and token_overhead(2 * CBS, CBS, None) is None


def test_deadline_mode_is_minimal():
    deadline = 30 * 86400.0
    p = plan(deadline_s=deadline)
    assert p.mode == "deadline" and p.wall_clock_s <= deadline
    fewer = plan(n_gpus=p.n_gpus - p.tensor_parallel * p.pipeline_parallel)
    assert fewer.wall_clock_s > deadline


def test_tight_deadline_uses_model_parallelism_before_passing_the_cbs():
    """Fewest GPUs for 8 h: splitting the model (TP) feeds more GPUs per sequence, cheaper than B > CBS."""
    p = plan(deadline_s=8 * 3600.0)
    assert p.wall_clock_s <= 8 * 3600 and p.tensor_parallel * p.pipeline_parallel > 1
    assert p.batch_tokens <= CBS and p.token_overhead_fraction == 0


def test_deadline_with_capped_split_pays_tokens():
    """A 120M model (6 heads: TP <= 2) with a sub-second deadline needs more GPUs than CBS x TP x PP can feed."""
    shape = shape_for_params(1.2e8, seq_len=512)
    cbs = float(zhang_cbs_tokens(2.4e9))
    p = plan_gpus(
        1.2e8,
        2.4e9,
        shape,
        hw("h100-sxm5-80gb"),
        batch_tokens=cbs / 2,
        cbs_tokens=cbs,
        options=PlanOptions(deadline_s=0.3),
    )
    assert p.wall_clock_s <= 0.3
    assert p.batch_tokens > cbs and p.token_overhead_fraction > 0
    assert p.cost_usd == pytest.approx(p.gpu_hours * 3.78)


def test_impossible_deadline():
    with pytest.raises(InfeasibleError, match="fastest plan"):
        plan(deadline_s=600.0, max_gpus=64)


def test_tradeoff_table_shows_where_gpus_stop_paying():
    rows = plan().tradeoff
    assert len(rows) >= 5 and [r.n_gpus for r in rows] == sorted(r.n_gpus for r in rows)
    assert all(a.wall_clock_s > b.wall_clock_s for a, b in itertools.pairwise(rows))
    free = [r for r in rows if r.batch_tokens <= CBS]
    paid = [r for r in rows if r.batch_tokens > CBS]
    assert free and paid
    assert all(r.token_overhead_fraction == 0 and r.gpu_hours == pytest.approx(free[0].gpu_hours) for r in free)
    assert all(r.gpu_hours > free[0].gpu_hours for r in paid)


def test_unknown_dtype_lists_what_exists():
    with pytest.raises(ConfigError, match="fp8") as info:
        plan_gpus(6.74e9, D, LLAMA7B, hw("a100-sxm4-80gb"), batch_tokens=BATCH, cbs_tokens=CBS, dtype="fp8")
    assert "bf16" in info.value.hint and "int8" in info.value.hint


def test_does_not_fit_even_at_max_split():
    shape = shape_for_params(1e12)
    with pytest.raises(InfeasibleError, match="does not fit"):
        plan_gpus(
            1e12,
            1e12,
            shape,
            hw("rtx-4090"),
            batch_tokens=BATCH,
            cbs_tokens=CBS,
            options=PlanOptions(n_gpus=8, zero_stage=0),
        )


def test_big_model_needs_tensor_then_pipeline():
    shape = shape_for_params(7e10)
    p = plan_gpus(
        7e10,
        1.4e12,
        shape,
        hw("a100-sxm4-80gb"),
        batch_tokens=BATCH,
        cbs_tokens=CBS,
        options=PlanOptions(n_gpus=64, zero_stage=0),
    )
    assert p.tensor_parallel == 8 and p.pipeline_parallel >= 2


def test_usage_errors():
    with pytest.raises(UsageError):
        plan(n_gpus=8, deadline_s=1.0)
    with pytest.raises(UsageError):
        plan_gpus(6.74e9, D, LLAMA7B, hw("h100-sxm5-80gb"), batch_tokens=BATCH, cbs_tokens=CBS, mfu=1.5)


def test_results_are_frozen_plain_numbers():
    p = plan(n_gpus=16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.n_gpus = 1  # type: ignore[misc]
    for field in dataclasses.fields(p):
        value = getattr(p, field.name)
        assert type(value) in (int, float, str, tuple, type(None)) or dataclasses.is_dataclass(value), field.name
    assert all(type(getattr(p.memory, f.name)) is float for f in dataclasses.fields(p.memory))


@pytest.mark.parametrize("n_gpus, split", [(8, "TP=8 x PP=1"), (12, "TP=4 x PP=1"), (1, "TP=1 x PP=1")])
def test_does_not_fit_names_a_split_the_gpu_count_allows(n_gpus, split):
    """--gpus 8 once read "even at TP=8 x PP=64" (512 GPUs); the hint gives a count that does fit."""
    shape = shape_for_params(7e10)
    kw = dict(batch_tokens=BATCH, cbs_tokens=CBS)  # noqa: C408
    with pytest.raises(InfeasibleError) as info:
        plan_gpus(7e10, 1.4e12, shape, hw("h100-sxm5-80gb"), **kw, options=PlanOptions(n_gpus=n_gpus))
    assert split in info.value.message and f"{n_gpus} GPU" in info.value.message
    suggested = int(info.value.hint.split("--gpus ")[1].split()[0])
    assert suggested > n_gpus
    ok = plan_gpus(7e10, 1.4e12, shape, hw("h100-sxm5-80gb"), **kw, options=PlanOptions(n_gpus=suggested))
    assert ok.n_gpus == suggested


def test_does_not_fit_under_a_cap_suggests_a_cap_that_fits():
    shape = shape_for_params(7e10)
    kw = dict(batch_tokens=BATCH, cbs_tokens=CBS)  # noqa: C408
    with pytest.raises(InfeasibleError) as info:
        plan_gpus(7e10, 1.4e12, shape, hw("h100-sxm5-80gb"), **kw, options=PlanOptions(max_gpus=8))
    assert "at most 8 GPUs" in info.value.message and "PP=64" not in info.value.message
    cap = int(info.value.hint.split("--max-gpus ")[1].split()[0])
    ok = plan_gpus(7e10, 1.4e12, shape, hw("h100-sxm5-80gb"), **kw, options=PlanOptions(max_gpus=cap))
    assert ok.n_gpus <= cap


@pytest.mark.parametrize("n, seq_len, factor", [(1e9, 2048, 1.14), (1e9, 4096, 1.29), (1e9, 8192, 1.57),
                                                (7e9, 8192, 1.32), (70e9, 4096, 1.07)])
def test_attention_flops_factor_and_its_warning(n, seq_len, factor):
    """(6N + 12·L·d·T)/6N with the planner's stand-in shape; past 10% of 6N the plan warns and states the factor,
    and its wall-clock stays 6·N·D/(GPUs·peak·MFU)."""
    from planner.gpu_plan import attention_flops_factor

    shape = shape_for_params(n, 32000, seq_len)
    assert round(attention_flops_factor(shape, n), 2) == factor
    d = 20 * n
    plan = plan_gpus(n, d, shape, hw("h100-sxm5-80gb"), batch_tokens=4e6, cbs_tokens=8e6,
                     options=PlanOptions(n_gpus=1024, zero_stage=3))
    warned = [w for w in plan.warnings if w.startswith("attention FLOPs")]
    assert bool(warned) == (factor > 1.10)
    if warned:
        assert f"~{factor:.2f}x higher" in warned[0]
    assert plan.wall_clock_s == pytest.approx(training_wall_clock_s(n, plan.n_tokens_needed, 1024, plan.peak_flops_per_s,
                                                                    plan.mfu))


def test_max_gpus_under_a_power_of_two_batch_explains_itself():
    shape = shape_for_params(1e9, 32000, 4096)
    plan = plan_gpus(1e9, 2e10, shape, hw("h100-sxm5-80gb"), batch_tokens=64 * 4096, cbs_tokens=1e7,
                     options=PlanOptions(max_gpus=7))
    assert plan.n_gpus == 4 and plan.batch_sequences == 64
    assert any(w.startswith("--max-gpus 7: planned on 4 GPUs") for w in plan.warnings)
    roomy = plan_gpus(1e9, 2e10, shape, hw("h100-sxm5-80gb"), batch_tokens=64 * 4096, cbs_tokens=1e7,
                      options=PlanOptions(max_gpus=100))
    assert roomy.n_gpus == 64 and not any("--max-gpus" in w for w in roomy.warnings)
