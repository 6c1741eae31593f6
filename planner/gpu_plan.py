"""GPU plan: parallel layout, GPU count, wall-clock, GPU-hours and cost for one training run. Pure.

Recipe (shared reference batch-laws.md §5, hardware.md §6-7):
* memory per GPU from planner.memory; the smallest model-parallel split that fits, tensor parallel
  inside a node first (TP ∈ 1, 2, 4, .. accelerators_per_node), then pipeline stages with TP = node;
* global batch B_seq = data_parallel · micro_batch · grad_accumulation; the largest micro-batch that fits;
* wall_clock_s = 6·N·D_needed / (n_gpus · peak · MFU) with N TOTAL parameters (Kaplan 2020; the
  golden runs' implied MFU uses the same 6ND);
* a batch above the CBS needs more tokens for the same loss: D_needed = D·(1 + B/B_crit)/(1 + B_fit/B_crit)
  with B_crit the McCandlish critical batch converted from the Zhang CBS (planner.laws.batch). Where the CBS
  law implies no B_crit (CBS ≤ 1.2·B_ref, planner.laws.batch.mccandlish_bcrit) the penalty is undefined: the
  plan trains D (its time and cost are then lower bounds), reports the penalty as None and says so.

Modes: nothing fixed (as many GPUs as the batch can feed at one sequence per GPU per micro-step, capped by
max_gpus), fixed n_gpus, or a deadline (fewest GPUs that meet it). MFU is held constant across GPU
counts: at one sequence per GPU and thousands of GPUs real MFU drops, so read the trade-off table as an
upper bound on the benefit of more GPUs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.errors import ConfigError, InfeasibleError, UsageError
from planner.laws.batch import ZHANG_B_REF, ZHANG_SEQ_LEN, mccandlish_bcrit, tokens_needed_factor
from planner.memory import MemoryBreakdown, Recompute, StateRecipe, training_memory
from planner.schemas.hardware import HardwareProfile
from planner.shapes import TransformerShape

GIB = 2.0**30
MAX_TP = 16  # beyond a node only where the scale-up domain is larger; PaLM 540B used 12-way model parallelism on TPU v4


@dataclass(frozen=True)
class PlanOptions:
    """Knobs of the plan; at most one of n_gpus and deadline_s."""

    zero_stage: int = 1  # Megatron distributed optimizer / ZeRO-1 is the common default for pre-training
    recompute: Recompute = "selective"
    flash_attention: bool = True
    max_gpus: int | None = None
    n_gpus: int | None = None
    deadline_s: float | None = None
    max_micro_batch: int = 16  # sequences; larger micro-batches rarely raise MFU further
    memory_headroom_fraction: float = 0.05  # allocator fragmentation (hardware.md §7.2: "5-10%", heuristic)
    memory_reserve_gb: float = 2.0  # CUDA context, NCCL and comm buckets (hardware.md §7.2: "~1-2 GB", heuristic)
    state_recipe: StateRecipe = "megatron-bf16"
    b_ref_tokens: float = float(ZHANG_B_REF * ZHANG_SEQ_LEN)  # Zhang's B_ref = 256 sequences of 512
    b_fit_tokens: float | None = None  # batch the loss law's D assumes; None = the CBS (no penalty up to it)
    price_usd_per_hour: float | None = None  # overrides the profile's indicative price
    unit: str = "tokens"  # what the loss law's D counts ("bytes" for a byte-level law), for the warnings


@dataclass(frozen=True)
class MemoryPerGpu:
    weights_gib: float
    gradients_gib: float
    optimizer_gib: float
    activations_gib: float
    logits_gib: float
    total_gib: float
    usable_gib: float  # capacity minus headroom and reserve
    capacity_gib: float


@dataclass(frozen=True)
class TradeoffRow:
    n_gpus: int
    batch_tokens: float
    wall_clock_s: float
    gpu_hours: float
    cost_usd: float | None
    token_overhead_fraction: float | None  # None: undefined (batch above the CBS, no B_crit to price it)


@dataclass(frozen=True)
class GpuPlan:
    mode: str  # "max-parallel" | "fixed-gpus" | "deadline"
    hardware: str
    dtype: str
    n_gpus: int
    n_nodes: int
    tensor_parallel: int
    pipeline_parallel: int
    data_parallel: int
    micro_batch_sequences: int
    grad_accumulation_steps: int
    batch_sequences: int
    batch_tokens: float
    seq_len: int
    cbs_tokens: float  # Zhang 20% CBS
    bcrit_tokens: float | None  # McCandlish B_crit = 5·(CBS − 1.2·B_ref); None where undefined
    token_overhead_fraction: float  # D_needed/D − 1 as applied (0 where undefined: see overhead_undefined)
    n_tokens: float
    n_tokens_needed: float
    n_steps: int
    training_flops: float  # 6·N·D_needed
    peak_flops_per_s: float
    mfu: float
    wall_clock_s: float
    gpu_hours: float
    price_usd_per_hour: float | None
    cost_usd: float | None
    memory: MemoryPerGpu
    tradeoff: tuple[TradeoffRow, ...]
    warnings: tuple[str, ...]

    @property
    def overhead_undefined(self) -> bool:
        """The batch exceeds the CBS but B_crit is undefined: no token penalty can be derived (none is applied)."""
        return self.bcrit_tokens is None and self.batch_tokens > self.cbs_tokens


@dataclass(frozen=True)
class _Layout:
    tp: int
    pp: int
    dp: int
    micro: int
    accum: int
    memory: MemoryBreakdown

    @property
    def n_gpus(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def batch_seq(self) -> int:
        return self.dp * self.micro * self.accum


@dataclass(frozen=True)
class _Ctx:
    """Everything fixed for one plan, resolved once."""

    n_params: float
    n_tokens: float
    shape: TransformerShape
    hw: HardwareProfile
    opt: PlanOptions
    peak: float
    mfu: float
    usable_bytes: float
    batch_seq: int
    cbs_tokens: float
    bcrit_tokens: float | None
    b_fit_tokens: float
    price: float | None

    def memory_options(self, dp: int, tp: int, pp: int, in_flight: int) -> dict:
        """Keyword arguments of planner.memory.training_memory for one layout."""
        o = self.opt
        return dict(zero_stage=o.zero_stage, data_parallel=dp, tensor_parallel=tp, pipeline_parallel=pp,  # noqa: C408
                    recompute=o.recompute, flash_attention=o.flash_attention, in_flight_micro_batches=in_flight,
                    recipe=o.state_recipe)  # fmt: skip


LONG_CONTEXT_FRACTION = 0.10  # attention FLOPs beyond this share of 6N: the 6N-MFU priors no longer apply as is


def attention_flops_factor(shape: TransformerShape, n_params: float) -> float:
    """(6N + 12·n_layers·d_model·seq_len)/6N: training FLOPs per token with attention's score and value matmuls
    (PaLM App. B; hardware.md §7.4) over the 6N that the wall-clock and the MFU priors count."""
    return 1.0 + 12.0 * shape.n_layers * shape.d_model * shape.seq_len / (6.0 * n_params)


def training_wall_clock_s(n_params: float, n_tokens: float, n_gpus: int, peak_flops_per_s: float, mfu: float) -> float:
    """wall_clock_s = 6·N·D/(n_gpus·peak·MFU) (Kaplan et al. 2020 C = 6ND; hardware.md §7.4); N total params."""
    return 6.0 * n_params * n_tokens / (n_gpus * peak_flops_per_s * mfu)


_DERIVE = object()  # plan_gpus: derive B_crit from cbs_tokens and options.b_ref_tokens


def plan_gpus(
    n_params: float,
    n_tokens: float,
    shape: TransformerShape,
    hardware: HardwareProfile,
    *,
    batch_tokens: float,
    cbs_tokens: float,
    bcrit_tokens: float | None | object = _DERIVE,
    mfu: float | None = None,
    dtype: str = "bf16",
    options: PlanOptions = PlanOptions(),
) -> GpuPlan:
    """Plan GPUs for training n_params TOTAL parameters on n_tokens tokens with `shape` (its seq_len).

    batch_tokens: the planned global batch (tokens); cbs_tokens: Zhang 20% CBS in tokens (e.g.
    planner.laws.batch.zhang_cbs_tokens(D)); bcrit_tokens: the McCandlish B_crit the batch plan reported
    (None: undefined), by default converted from cbs_tokens with options.b_ref_tokens, so that the plan and
    its caller use one value; mfu: None = the profile's mfu_prior. Raises ConfigError for
    a dtype the device lacks, InfeasibleError when nothing fits or the deadline cannot be met.
    """
    if bcrit_tokens is _DERIVE:
        bcrit_tokens = mccandlish_bcrit(cbs_tokens, options.b_ref_tokens)
    ctx = _context(n_params, n_tokens, shape, hardware, batch_tokens, cbs_tokens, bcrit_tokens, mfu, dtype, options)
    if options.n_gpus is not None:
        mode, layout = "fixed-gpus", _fixed(ctx, options.n_gpus)
    elif options.deadline_s is not None:
        mode, layout = "deadline", _deadline(ctx, options.deadline_s)
    else:
        mode, layout = "max-parallel", _max_parallel(ctx)
    return _result(ctx, mode, dtype, layout)


def _context(n_params, n_tokens, shape, hw, batch_tokens, cbs_tokens, bcrit, mfu, dtype, opt) -> _Ctx:
    if opt.n_gpus is not None and opt.deadline_s is not None:
        raise UsageError("give either a GPU count or a deadline, not both")
    named = {"n_params": n_params, "n_tokens": n_tokens, "batch_tokens": batch_tokens, "cbs_tokens": cbs_tokens}
    for label, value in named.items():
        if not (value > 0 and math.isfinite(value)):
            raise UsageError(f"{label} must be a positive finite number, got {value!r}")
    try:
        peak = hw.peak_flops_per_s(dtype)
    except KeyError as exc:
        have = ", ".join(k for k, v in hw.peak_tflops_dense.items() if v is not None)
        raise ConfigError(str(exc.args[0]), hint=f"pick one of: {have}") from None
    mfu = hw.mfu_prior if mfu is None else mfu
    if not 0 < mfu <= 1:
        raise UsageError(f"MFU must be in (0, 1], got {mfu}")
    unit = GIB if hw.memory_unit == "GiB" else 1e9
    usable = hw.memory_gb * unit * (1.0 - opt.memory_headroom_fraction) - opt.memory_reserve_gb * 1e9
    if bcrit is not None and not (bcrit > 0 and math.isfinite(bcrit)):
        raise UsageError(f"bcrit_tokens must be a positive finite number or None, got {bcrit!r}")
    b_fit = cbs_tokens if opt.b_fit_tokens is None else opt.b_fit_tokens
    price = opt.price_usd_per_hour if opt.price_usd_per_hour is not None else hw.price_usd_per_hour
    batch_seq = max(1, round(batch_tokens / shape.seq_len))
    return _Ctx(n_params, n_tokens, shape, hw, opt, peak, mfu, usable, batch_seq, cbs_tokens, bcrit, b_fit, price)


def _splits(ctx: _Ctx) -> list[tuple[int, int]]:
    """(tp, pp) from smallest: TP doubling inside the scale-up domain, then PP doubling at the largest TP.

    TP stays inside a node, or inside a larger scale-up domain (TPU ICI, NVL72) up to MAX_TP: tensor
    parallelism all-reduces every layer, so it needs the fastest links (Narayanan et al. 2021 §3.3).
    """
    domain = max(ctx.hw.accelerators_per_node, min(ctx.hw.scale_up_domain or 1, MAX_TP))
    tps = [t for t in (2**k for k in range(11)) if t <= domain and ctx.shape.n_heads % t == 0]
    pps = [p for p in (2**k for k in range(1, 11)) if p <= ctx.shape.n_layers]
    return [(t, 1) for t in tps] + [(tps[-1], p) for p in pps]


def _layout(ctx: _Ctx, tp: int, pp: int, dp: int, batch_seq: int) -> _Layout | None:
    """Largest micro-batch (dividing the per-rank batch) that fits memory, or None.

    The per-rank batch is round(batch_seq/dp), so the global batch moves by less than dp/2 sequences
    when dp does not divide it (reported in the plan's warnings).
    """
    local = max(1, round(batch_seq / dp))
    s = ctx.shape
    for micro in sorted((m for m in range(1, min(local, ctx.opt.max_micro_batch) + 1) if local % m == 0), reverse=True):
        shape_args = (s.n_layers, s.d_model, s.n_heads, s.vocab_size, s.seq_len)
        memory = training_memory(ctx.n_params, *shape_args, micro, **ctx.memory_options(dp, tp, pp, local // micro))
        if memory.total <= ctx.usable_bytes:
            return _Layout(tp, pp, dp, micro, local // micro, memory)
    return None


def _batch_for(ctx: _Ctx, dp: int) -> int:
    """Sequences per step with dp ranks: the planned batch, grown to one sequence per rank if needed."""
    return max(ctx.batch_seq, dp)


def token_overhead(batch_tokens: float, cbs_tokens: float, bcrit_tokens: float | None,
                   b_fit_tokens: float | None = None) -> float | None:
    """D_needed/D − 1 of training at batch_tokens for the loss the law gives at D, whose CBS (Zhang) and
    McCandlish B_crit are cbs_tokens and bcrit_tokens: zero up to the CBS (batch-laws.md §5 item 2), None above
    it when B_crit is undefined. b_fit_tokens: the batch the law's D assumes (None: the CBS).

    The one formula of the token penalty: the GPU plan prices a batch with it, and `planner check` inverts it
    (trained tokens back to the law's D, planner.check.effective_tokens)."""
    if batch_tokens <= cbs_tokens:
        return 0.0
    if bcrit_tokens is None:
        return None
    b_fit = cbs_tokens if b_fit_tokens is None else b_fit_tokens
    return float(tokens_needed_factor(batch_tokens, bcrit_tokens, min(b_fit, batch_tokens))) - 1.0


def _overhead(ctx: _Ctx, batch_tokens: float) -> float | None:
    """D_needed/D − 1 of this plan's law D at batch_tokens (:func:`token_overhead`)."""
    return token_overhead(batch_tokens, ctx.cbs_tokens, ctx.bcrit_tokens, ctx.b_fit_tokens)


def _wall_clock_s(ctx: _Ctx, n_gpus: int, batch_tokens: float) -> tuple[float, float | None]:
    """(wall_clock_s, overhead) = 6·N·D·(1 + overhead)/(n_gpus·peak·MFU); an undefined overhead adds none."""
    overhead = _overhead(ctx, batch_tokens)
    n_tokens = ctx.n_tokens * (1.0 + (overhead or 0.0))
    return training_wall_clock_s(ctx.n_params, n_tokens, n_gpus, ctx.peak, ctx.mfu), overhead


def _infeasible_fit(ctx: _Ctx, what: str, tried: list[tuple[int, int]], flag: str | None = None,
                    n_gpus: int = 0) -> InfeasibleError:
    """Nothing fits: name the largest split actually tried (the GPU count or cap limits it) and, when `flag`
    (--gpus or --max-gpus) set that limit, the fewest GPUs above it that do fit."""
    tp, pp = tried[-1]
    hint = "use a ZeRO stage up to 3, full recomputation, a shorter sequence, or a device with more memory"
    fits = _fewest_gpus_above(ctx, n_gpus, fixed=flag == "--gpus") if flag else None
    if fits is not None:
        hint = f"give {flag} {fits.n_gpus} (TP={fits.tp} x PP={fits.pp} x data {fits.dp} fits), or {hint}"
    return InfeasibleError(f"{what}: the model does not fit in {ctx.hw.name} memory even at TP={tp} x PP={pp}",
                           hint=hint)


def _fewest_gpus_above(ctx: _Ctx, n_gpus: int, fixed: bool) -> _Layout | None:
    """The layout with the fewest GPUs above n_gpus that fits memory, as `_fixed` (fixed) or `_max_parallel`
    (data-parallel ranks divide the batch) would build it; None if there is none."""
    best = None
    for tp, pp in _splits(ctx):
        first = n_gpus // (tp * pp) + 1
        layout = _fewest_ranks(ctx, tp, pp, first) if fixed else _fewest_dividing_ranks(ctx, tp, pp, first)
        if layout is not None and (best is None or layout.n_gpus < best.n_gpus):
            best = layout
    return best


def _fewest_dividing_ranks(ctx: _Ctx, tp: int, pp: int, first: int) -> _Layout | None:
    """Fewest data-parallel ranks from `first` on that divide the batch (as `_max_parallel` picks them) and fit."""
    for dp in range(first, ctx.batch_seq + 1):
        if ctx.batch_seq % dp == 0:
            layout = _layout(ctx, tp, pp, dp, ctx.batch_seq)
            if layout is not None:
                return layout
    return None


def _fewest_ranks(ctx: _Ctx, tp: int, pp: int, first: int) -> _Layout | None:
    """Fewest data-parallel ranks from `first` on at which a split fits: memory per GPU falls as ranks grow
    (ZeRO shards more, each rank holds fewer sequences), so doubling then bisection finds it."""
    lo, dp, bound = None, first, 10**7 // (tp * pp)  # lo: the largest dp known not to fit
    while dp <= bound and _layout(ctx, tp, pp, dp, _batch_for(ctx, dp)) is None:
        lo, dp = dp, dp * 2
    if dp > bound:
        return None
    while lo is not None and dp - lo > 1:
        mid = (lo + dp) // 2
        lo, dp = (lo, mid) if _layout(ctx, tp, pp, mid, _batch_for(ctx, mid)) is not None else (mid, dp)
    return _layout(ctx, tp, pp, dp, _batch_for(ctx, dp))


def _max_parallel(ctx: _Ctx) -> _Layout:
    """Nothing fixed: one sequence per rank (A = 1), dp = batch, capped by max_gpus."""
    tried = []
    for tp, pp in _splits(ctx):
        dp = ctx.batch_seq
        if ctx.opt.max_gpus is not None:
            cap = ctx.opt.max_gpus // (tp * pp)
            if cap < 1:
                continue
            dp = max(d for d in range(1, min(dp, cap) + 1) if ctx.batch_seq % d == 0)
        tried.append((tp, pp))
        layout = _layout(ctx, tp, pp, dp, ctx.batch_seq)
        if layout is not None:
            return layout
    if ctx.opt.max_gpus is None:
        raise _infeasible_fit(ctx, "no layout", tried)
    raise _infeasible_fit(ctx, f"at most {ctx.opt.max_gpus} GPUs", tried, "--max-gpus", ctx.opt.max_gpus)


def _fixed(ctx: _Ctx, n_gpus: int) -> _Layout:
    """Fixed GPU count: the smallest split that divides n_gpus and fits; the batch grows if dp exceeds it."""
    if n_gpus < 1:
        raise UsageError(f"n_gpus must be at least 1, got {n_gpus}")
    tried = [(tp, pp) for tp, pp in _splits(ctx) if n_gpus % (tp * pp) == 0]  # (1, 1) always divides
    for tp, pp in tried:
        dp = n_gpus // (tp * pp)
        layout = _layout(ctx, tp, pp, dp, _batch_for(ctx, dp))
        if layout is not None:
            return layout
    raise _infeasible_fit(ctx, f"{n_gpus} GPU{'s' if n_gpus > 1 else ''}", tried, "--gpus", n_gpus)


def _deadline(ctx: _Ctx, deadline_s: float) -> _Layout:
    """Fewest GPUs that finish by deadline_s, over all splits; scans dp geometrically then refines."""
    if not deadline_s > 0:
        raise UsageError(f"deadline must be positive, got {deadline_s}")
    best: _Layout | None = None
    fastest = math.inf
    for tp, pp in _splits(ctx):
        layout, t_min = _deadline_for_split(ctx, tp, pp, deadline_s)
        fastest = min(fastest, t_min)
        if layout is not None and (best is None or layout.n_gpus < best.n_gpus):
            best = layout
    if best is None:
        raise InfeasibleError(
            f"cannot finish by the deadline ({deadline_s / 86400:.3g} days); the fastest plan found takes "
            f"{fastest / 86400:.3g} days"
            if math.isfinite(fastest)
            else "the model fits no layout on this device",
            hint="extend the deadline, raise --max-gpus, or train fewer tokens",
        )
    return best


def _deadline_for_split(ctx: _Ctx, tp: int, pp: int, deadline_s: float) -> tuple[_Layout | None, float]:
    mp = tp * pp
    bound = (ctx.opt.max_gpus // mp) if ctx.opt.max_gpus is not None else 10**7
    t_ideal = 6.0 * ctx.n_params * ctx.n_tokens / (ctx.peak * ctx.mfu)
    dp = max(1, min(math.ceil(t_ideal / (deadline_s * mp)), bound))  # lower bound: no token overhead
    t_min, prev = math.inf, None
    while dp <= bound:
        layout = _layout(ctx, tp, pp, dp, _batch_for(ctx, dp))
        if layout is not None:
            t, _ = _wall_clock_s(ctx, layout.n_gpus, layout.batch_seq * ctx.shape.seq_len)
            t_min = min(t_min, t)
            if t <= deadline_s:
                return _refine(ctx, tp, pp, prev, layout, deadline_s), t_min
            prev = dp
        dp = max(dp + 1, int(dp * 1.05))
    return None, t_min


def _refine(ctx: _Ctx, tp: int, pp: int, lo: int | None, hi: _Layout, deadline_s: float) -> _Layout:
    """Smallest dp in (lo, hi.dp] meeting the deadline (bisection; T falls with dp between the two)."""
    best, lo_dp = hi, (lo if lo is not None else hi.dp - 1)
    hi_dp = hi.dp
    while hi_dp - lo_dp > 1:
        mid = (lo_dp + hi_dp) // 2
        layout = _layout(ctx, tp, pp, mid, _batch_for(ctx, mid))
        ok = (
            layout is not None
            and _wall_clock_s(ctx, layout.n_gpus, layout.batch_seq * ctx.shape.seq_len)[0] <= deadline_s
        )
        if ok:
            best, hi_dp = layout, mid
        else:
            lo_dp = mid
    return best


def _row(ctx: _Ctx, layout: _Layout) -> TradeoffRow:
    batch_tokens = float(layout.batch_seq * ctx.shape.seq_len)
    t, overhead = _wall_clock_s(ctx, layout.n_gpus, batch_tokens)
    gpu_hours = layout.n_gpus * t / 3600.0
    cost = None if ctx.price is None else gpu_hours * ctx.price
    return TradeoffRow(layout.n_gpus, batch_tokens, t, gpu_hours, cost, overhead)


def _tradeoff(ctx: _Ctx, chosen: _Layout) -> tuple[TradeoffRow, ...]:
    """Rows at dp = powers of two around the plan (and at the CBS), same TP x PP, where memory fits."""
    cbs_dp = max(1, int(ctx.cbs_tokens // ctx.shape.seq_len))
    top = max(chosen.dp, cbs_dp) * 4
    if ctx.opt.max_gpus is not None:
        top = min(top, max(chosen.dp, ctx.opt.max_gpus // (chosen.tp * chosen.pp)))
    dps = {2**k for k in range(31) if max(1, chosen.dp // 16) <= 2**k <= top} | {chosen.dp}
    if cbs_dp <= top:
        dps.add(cbs_dp)
    rows = []
    for dp in sorted(dps):
        layout = chosen if dp == chosen.dp else _layout(ctx, chosen.tp, chosen.pp, dp, _batch_for(ctx, dp))
        if layout is not None:
            rows.append(_row(ctx, layout))
    return tuple(rows)


def _memory(ctx: _Ctx, m: MemoryBreakdown) -> MemoryPerGpu:
    capacity = ctx.hw.memory_gb * (GIB if ctx.hw.memory_unit == "GiB" else 1e9)
    parts = (m.weights, m.gradients, m.optimizer, m.activations, m.logits, m.total, ctx.usable_bytes, capacity)
    return MemoryPerGpu(*(float(x) / GIB for x in parts))


def _warnings(ctx: _Ctx, layout: _Layout, batch_tokens: float, overhead: float | None) -> tuple[str, ...]:
    notes = []
    unit = ctx.opt.unit
    if overhead is None:
        notes.append(
            f"batch {batch_tokens:.3g} {unit} exceeds the CBS {ctx.cbs_tokens:.3g}, but McCandlish B_crit is undefined "
            f"(the CBS law is extrapolated below its reference batch), so the extra {unit} this costs cannot be "
            "derived: wall-clock, GPU-hours and cost assume none and are lower bounds"
        )
    elif overhead > 0:
        # past 100x a percentage is unreadable (it once printed 38 digits): give the factor instead
        more = f"{overhead:.1%} more {unit}" if overhead < 100 else f"{1.0 + overhead:,.0f}x the {unit}"
        notes.append(
            f"batch {batch_tokens:.3g} {unit} exceeds the CBS {ctx.cbs_tokens:.3g}: "
            f"{more} for the same loss (McCandlish B_crit {ctx.bcrit_tokens:.3g})"
        )
    if layout.batch_seq != ctx.batch_seq:
        notes.append(
            f"batch changed from {ctx.batch_seq} to {layout.batch_seq} sequences to fit {layout.dp} data-parallel ranks"
        )
    if layout.pp > 1:
        notes.append(f"pipeline parallel {layout.pp}: bubbles lower MFU unless micro-batches per step >> {layout.pp}")
    cap = ctx.opt.max_gpus
    if (cap is not None and ctx.opt.n_gpus is None and ctx.opt.deadline_s is None and layout.n_gpus < cap
            and layout.dp < ctx.batch_seq):
        notes.append(
            f"--max-gpus {cap}: planned on {layout.n_gpus} GPUs, the most at or under the cap whose {layout.dp} "
            f"data-parallel ranks divide the batch of {ctx.batch_seq} sequences (the batch stays as planned); "
            f"--gpus {cap} uses exactly {cap} and rounds the batch to their ranks")
    s = ctx.shape
    factor = attention_flops_factor(s, ctx.n_params)
    if factor - 1.0 > LONG_CONTEXT_FRACTION:
        notes.append(
            f"attention FLOPs: at seq_len {s.seq_len}, d_model {s.d_model}, {s.n_layers} layers, attention adds "
            f"{factor - 1.0:.0%} to the 6N FLOPs per token the wall-clock counts; the MFU priors come from runs where "
            f"that share was small, so time, GPU-hours and cost may be ~{factor:.2f}x higher unless --mfu was "
            "measured at this shape and context")
    return tuple(notes)


def _result(ctx: _Ctx, mode: str, dtype: str, layout: _Layout) -> GpuPlan:
    row = _row(ctx, layout)
    if row.cost_usd is not None and not math.isfinite(row.cost_usd):
        raise InfeasibleError("the training cost overflows floating point (more than 1.8e308 USD)",
                              hint="check --train-price (USD per GPU-hour)")
    applied = row.token_overhead_fraction or 0.0  # None (undefined): the plan trains D
    needed = ctx.n_tokens * (1.0 + applied)
    return GpuPlan(
        mode=mode,
        hardware=ctx.hw.name,
        dtype=dtype,
        n_gpus=layout.n_gpus,
        n_nodes=math.ceil(layout.n_gpus / ctx.hw.accelerators_per_node),
        tensor_parallel=layout.tp,
        pipeline_parallel=layout.pp,
        data_parallel=layout.dp,
        micro_batch_sequences=layout.micro,
        grad_accumulation_steps=layout.accum,
        batch_sequences=layout.batch_seq,
        batch_tokens=row.batch_tokens,
        seq_len=ctx.shape.seq_len,
        cbs_tokens=ctx.cbs_tokens,
        bcrit_tokens=ctx.bcrit_tokens,
        token_overhead_fraction=applied,
        n_tokens=ctx.n_tokens,
        n_tokens_needed=needed,
        n_steps=math.ceil(needed / row.batch_tokens),
        training_flops=6.0 * ctx.n_params * needed,
        peak_flops_per_s=ctx.peak,
        mfu=ctx.mfu,
        wall_clock_s=row.wall_clock_s,
        gpu_hours=row.gpu_hours,
        price_usd_per_hour=ctx.price,
        cost_usd=row.cost_usd,
        memory=_memory(ctx, layout.memory),
        tradeoff=_tradeoff(ctx, layout),
        warnings=_warnings(ctx, layout, row.batch_tokens, row.token_overhead_fraction),
    )
