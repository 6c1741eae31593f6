"""After N and D: the batch, optimizer settings and GPU plan of `planner recommend`. Pure.

Composes :mod:`planner.batch_plan` (batch size, CBS, LR, beta2, EWA, warmup, schedule) and
:mod:`planner.gpu_plan` (memory, parallel layout, GPU count, wall-clock, GPU-hours, cost) and writes
their results into the recommendation's stable JSON keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner import gpu_plan as gp
from planner.batch_plan import BatchPlan, plan_batch
from planner.schemas.batch import BatchLawProfile
from planner.schemas.hardware import HardwareProfile
from planner.schemas.recommend import (
    Band,
    BatchDetail,
    CostBreakdown,
    GpuPlanDetail,
    MemoryDetail,
    Parallelism,
    ProfileRef,
    RecommendResult,
    TradeoffRow,
)
from planner.shapes import TransformerShape, shape_for_params


@dataclass(frozen=True)
class TrainingOptions:
    """Resolved inputs of the GPU plan (flags and profile defaults already applied)."""

    hardware: HardwareProfile
    cbs_law: BatchLawProfile
    b_opt_law: BatchLawProfile
    dtype: str = "bf16"
    mfu: float | None = None  # None: the hardware profile's prior
    mfu_source: str | None = None  # where a non-flag MFU came from (e.g. the FP8 rule)
    seq_len: int = 4096
    vocab_size: int = 32000
    shape: TransformerShape | None = None  # None: a Llama-like shape for N (planner.shapes)
    batch_tokens: float | None = None  # None: recommended from the laws
    plan: gp.PlanOptions = field(default_factory=gp.PlanOptions)
    cbs_law_flags: tuple[str, ...] = ()  # the critical-batch law's flags (e.g. a CBS falling with D)
    notes: tuple[str, ...] = ()  # assumption lines from resolving the options (e.g. where --seq-len came from)
    warnings: tuple[str, ...] = ()  # warnings from resolving them (e.g. the batch law's D units differ)
    hardware_ref: ProfileRef | None = None  # which files were read (sha256, path), for the assumptions and JSON
    cbs_law_ref: ProfileRef | None = None
    b_opt_law_ref: ProfileRef | None = None


@dataclass(frozen=True)
class TrainingPlan:
    shape: TransformerShape
    batch: BatchPlan
    gpus: gp.GpuPlan
    mfu_source: str
    options: gp.PlanOptions
    cbs_law_flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # resolving warnings and the CBS law's flags, one line each
    planned_batch_tokens: float | None = None  # the batch the laws (or --batch-tokens) gave, where the GPU plan
    # runs another one (batch.* is then for the batch run)
    refs: tuple[ProfileRef | None, ProfileRef | None, ProfileRef | None] = (None, None, None)  # hardware, CBS, LR


def plan_training(n_params: float, n_tokens: float, options: TrainingOptions) -> TrainingPlan:
    """Batch and GPU plan for a model of n_params TOTAL parameters trained on n_tokens tokens."""
    shape = options.shape or shape_for_params(n_params, options.vocab_size, options.seq_len)

    def batch_plan(batch_tokens: float | None) -> BatchPlan:
        return plan_batch(n_params, float(shape.non_embedding_params), n_tokens, shape.seq_len, options.cbs_law,
                          options.b_opt_law, batch_tokens, options.plan.unit)

    batch = batch_plan(options.batch_tokens)
    gpus = gp.plan_gpus(
        n_params,
        n_tokens,
        shape,
        options.hardware,
        batch_tokens=batch.batch_tokens,
        cbs_tokens=batch.critical_batch_tokens,
        bcrit_tokens=batch.mccandlish_bcrit_tokens,  # one B_crit (or none) for the table, penalty and warnings
        mfu=options.mfu,
        dtype=options.dtype,
        options=options.plan,
    )
    planned = None
    if gpus.batch_tokens != batch.batch_tokens:
        # the layout runs another batch (more data-parallel ranks than sequences, or rounding to the ranks): the
        # LR, beta2, EWA, warmup, steps and schedule follow the batch actually run, as if it had been given with
        # --batch-tokens; CBS, B_crit and B_opt depend on D only, so they stay
        planned, batch = batch.batch_tokens, batch_plan(gpus.batch_tokens)
    source = options.mfu_source or (
        "--mfu" if options.mfu is not None else f"{options.hardware.name} prior: {options.hardware.mfu_prior_source}"
    )
    flagged = tuple(f"batch law {options.cbs_law.name}: FLAG {flag}" for flag in options.cbs_law_flags)
    return TrainingPlan(shape, batch, gpus, source, options.plan, options.cbs_law_flags, options.notes,
                        (*options.warnings, *flagged, *_shape_mismatch(shape, n_params)), planned,
                        (options.hardware_ref, options.cbs_law_ref, options.b_opt_law_ref))


def _shape_mismatch(shape: TransformerShape, n_params: float) -> tuple[str, ...]:
    """The Llama-like rule (128-dim heads) has no shape below one head: say when the plan's is far from N."""
    total = float(shape.total_params)
    if 0.5 <= total / n_params <= 2.0:
        return ()
    return ((f"no Llama-like shape (128-dim heads, d_model/n_layers ~ 128) has {n_params:.3g} parameters: the plan's "
             f"shape has {total:.3g} (N_non-embedding {shape.non_embedding_params:.3g}), and its memory and Step Law "
             "LR are for that shape"),)


def attach(result: RecommendResult, plan: TrainingPlan) -> RecommendResult:
    """The recommendation with its batch, optimizer and GPU-plan keys filled in."""
    b, g = plan.batch, plan.gpus
    m = g.memory
    cost = result.cost_usd
    if result.objective == "flops":  # the objective priced no inference: the GPU plan's training cost
        cost = CostBreakdown(train=g.cost_usd, total=g.cost_usd)
    update = {
        "batch_size_tokens": g.batch_tokens,
        "batch_size_sequences": g.batch_sequences,
        "critical_batch_tokens": b.critical_batch_tokens,
        "learning_rate": b.learning_rate,
        "adam_beta2": b.adam_beta2,
        "ewa_decay": b.ewa_decay,
        "schedule": b.schedule,
        "n_gpus": g.n_gpus,
        "gpu": g.hardware,
        "parallelism": Parallelism(data=g.data_parallel, tensor=g.tensor_parallel, pipeline=g.pipeline_parallel,
                                zero_stage=plan.options.zero_stage, micro_batch=g.micro_batch_sequences,
                                grad_accum=g.grad_accumulation_steps),
        "memory_per_gpu_gib": m.total_gib,
        "wall_clock_s": g.wall_clock_s,
        "gpu_hours": g.gpu_hours,
        "cost_usd": cost,
        "tradeoff": [TradeoffRow(**row.__dict__) for row in g.tradeoff],
        "batch": BatchDetail(critical_batch_definition=b.critical_batch_definition,
                          mccandlish_bcrit_tokens=b.mccandlish_bcrit_tokens, b_opt_tokens=b.b_opt_tokens,
                          warmup_tokens=b.warmup_tokens, warmup_steps=b.warmup_steps, n_steps=g.n_steps,
                          schedule_reason=b.schedule_reason, n_params_non_embedding=b.n_params_non_embedding,
                          sources=list(b.sources), law_flags=list(plan.cbs_law_flags) or None,
                          cbs_law=plan.refs[1], lr_law=plan.refs[2]),
        "gpu_plan": GpuPlanDetail(mode=g.mode, dtype=g.dtype, n_nodes=g.n_nodes, mfu=g.mfu, mfu_source=plan.mfu_source,
                               peak_flops_per_s=g.peak_flops_per_s, price_usd_per_hour=g.price_usd_per_hour,
                               recompute=str(plan.options.recompute), shape=shape_dict(plan.shape),
                               n_tokens_needed=g.n_tokens_needed,
                               token_overhead_fraction=None if g.overhead_undefined else g.token_overhead_fraction,
                               training_flops=g.training_flops, memory=MemoryDetail(**m.__dict__),
                               cost_usd=g.cost_usd, hardware_profile=plan.refs[0],
                               attention_flops_factor=gp.attention_flops_factor(plan.shape, result.n_params)),
        "intervals": _hour_bands(result, g),
        "assumptions": [*result.assumptions, *assumptions(plan)],
        "warnings": [*result.warnings, *plan.warnings, *b.warnings, *g.warnings],
    }  # fmt: skip
    return result.model_copy(update=update)


def _hour_bands(result: RecommendResult, g: gp.GpuPlan):
    """GPU-hours and cost bands: both are monotone in training FLOPs at this plan's peak, MFU, penalty and price,
    so their percentiles are the FLOP band's percentiles, transformed."""
    iv = result.intervals
    if iv is None:
        return None
    per_flop = (1.0 + g.token_overhead_fraction) / (g.peak_flops_per_s * g.mfu * 3600.0)
    f = iv.train_flops
    hours = _scaled(f, per_flop)
    price = g.price_usd_per_hour
    cost = None if price is None else _scaled(hours, price)
    return iv.model_copy(update={"gpu_hours": hours, "cost_usd": cost})


def _scaled(band: Band, factor: float) -> Band:
    """The band times a positive factor; an unbounded percentile (None) stays unbounded."""
    return Band(**{q: None if v is None else v * factor for q, v in band.model_dump().items()})


def shape_dict(shape: TransformerShape) -> dict[str, int]:
    return {"n_layers": shape.n_layers, "d_model": shape.d_model, "n_heads": shape.n_heads,
            "kv_heads": shape.kv_heads, "d_ff": shape.d_ff, "vocab_size": shape.vocab_size,
            "seq_len": shape.seq_len}  # fmt: skip


def assumptions(plan: TrainingPlan) -> list[str]:
    b, g, s = plan.batch, plan.gpus, plan.shape
    unit = plan.options.unit
    ran = ""
    if plan.planned_batch_tokens is not None:
        ran = (f"the GPU plan runs a batch of {b.batch_tokens:.3g} {unit} ({b.batch_sequences} sequences), not the "
               f"planned {plan.planned_batch_tokens:.3g}: LR, beta2, EWA decay, warmup, steps and schedule are for the "
               "batch run; planned ")
    bcrit = "undefined: CBS <= 1.2·B_ref" if b.mccandlish_bcrit_tokens is None else f"{b.mccandlish_bcrit_tokens:.3g}"
    hardware, cbs_law, lr_law = plan.refs
    files = ""
    if cbs_law is not None and lr_law is not None:
        files = f"; CBS law {cbs_law.label}, B_opt and LR law {lr_law.label}"
    return [
        *plan.notes,
        (f"{ran}batch: min(CBS, B_opt) rounded down to a power of two sequences of {b.seq_len}; CBS "
        f"{b.critical_batch_tokens:.3g} {unit} ({b.critical_batch_definition}; McCandlish B_crit "
        f"{bcrit}), B_opt {b.b_opt_tokens:.3g} {unit} (Step Law, Li et al. 2025){files}"),
        _penalty_assumption(plan.options, unit),
        (f"LR from the Step Law at N_non-embedding = {b.n_params_non_embedding:.3g} (sqrt-scaled below B_opt); "
        f"beta2 and EWA horizons fixed in samples from Zhang et al.'s per-batch table; warmup N {unit}"),
        (f"shape {s.n_layers} layers x d_model {s.d_model}, {s.n_heads} heads, FFN {s.d_ff}, vocab {s.vocab_size} "
        "(Llama-like, d_model/n_layers = 128) for memory and parallelism"),
        (f"GPU plan on {g.hardware if hardware is None else hardware.label} {g.dtype}: "
        f"{g.peak_flops_per_s / 1e12:g} TFLOP/s dense at MFU {g.mfu:.3g} "
        f"({plan.mfu_source}); wall-clock = 6·N·D_needed/(GPUs·peak·MFU), MFU held constant across GPU counts; "
        "steady state: whole runs lose 5-15% more to restarts and evals (goodput 0.85-0.95, hardware.md §6)"),
    ]


def _penalty_assumption(options: gp.PlanOptions, unit: str) -> str:
    """The token penalty's one free choice, B_fit (the batch the loss law's D is taken to be trained at)."""
    if options.b_fit_tokens is not None:
        fit = f"B_fit = {options.b_fit_tokens:.3g} {unit}, the batch the loss law's D is taken to be trained at"
    else:
        fit = ("B_fit = the CBS: the loss law's D is taken as trained at the CBS, so no penalty up to it (batch-laws.md "
               "§5 item 2 has B_fit << B_crit); by Zhang's definition training at the CBS already needs ~20% more "
               "samples than linear scaling from B_ref")
    return f"token penalty above the CBS: D_needed = D·(1 + B/B_crit)/(1 + B_fit/B_crit) with {fit}"
