"""Evaluate a training plan against its limits (pure: profiles come in as schemas, results go out).

Each check is pass / warn / fail / skip with the measured value, the limit and a one-line reason. The
numbers are the ones `planner recommend` prints: the same loss law, batch laws and GPU plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner import gpu_plan as gp
from planner import units
from planner.batch_plan import cbs_tokens
from planner.errors import InfeasibleError
from planner.laws import chinchilla as law
from planner.laws._roots import bracketed_root
from planner.schemas.batch import BatchLawProfile
from planner.schemas.check import CheckResult, PlanMetrics
from planner.schemas.hardware import HardwareProfile
from planner.schemas.plan import PlanFile
from planner.shapes import TransformerShape, shape_for_params
from planner.training_plan import TrainingOptions, TrainingPlan, plan_training

LOSS_RTOL = 1e-9  # a plan written at exactly its target loss passes despite float round-off
BATCH_RTOL = 0.005  # a global batch within 0.5% of the one written runs "as given"


@dataclass(frozen=True)
class Inputs:
    plan: PlanFile
    params: law.ChinchillaParams
    samples: list[list[float]] | None
    hardware: HardwareProfile
    cbs_law: BatchLawProfile
    b_opt_law: BatchLawProfile
    confidence: float | None = None


def shape_of(plan: PlanFile) -> TransformerShape:
    s, t = plan.model.shape, plan.training
    if s is None:
        return shape_for_params(plan.model.params, seq_len=t.seq_len)
    return TransformerShape(n_layers=s.n_layers, d_model=s.d_model, n_heads=s.n_heads, d_ff=s.d_ff,
                            vocab_size=s.vocab_size, seq_len=t.seq_len, n_kv_heads=s.n_kv_heads)  # fmt: skip


def train(inputs: Inputs, n_params: float, shape: TransformerShape, n_tokens: float | None = None) -> TrainingPlan:
    """The GPU plan of the plan file for a law D of n_tokens (default training.tokens)."""
    t = inputs.plan.training
    options = TrainingOptions(
        hardware=inputs.hardware,
        cbs_law=inputs.cbs_law,
        b_opt_law=inputs.b_opt_law,
        dtype=t.dtype,
        mfu=t.mfu,
        seq_len=t.seq_len,
        shape=shape,
        batch_tokens=t.global_batch_tokens,
        plan=gp.PlanOptions(zero_stage=t.zero_stage, recompute=t.recompute, n_gpus=t.n_gpus,
                            price_usd_per_hour=t.price_usd_per_hour),
    )
    return plan_training(n_params, t.tokens if n_tokens is None else n_tokens, options)


def effective_tokens(inputs: Inputs, n_params: float, shape: TransformerShape) -> tuple[TrainingPlan, float]:
    """(GPU plan, D): the law's D whose GPU plan trains training.tokens, and that plan.

    `recommend` takes the law's D, evaluates the CBS and B_crit at D, and trains D_needed = D·(1 + overhead(D))
    tokens when the batch exceeds the CBS (planner.gpu_plan.token_overhead); its plan file records D_needed. Here
    that is inverted: D·(1 + overhead(D)) = training.tokens, with the CBS at D, the same convention, so a
    plan `recommend` wrote reproduces its loss, batch/CBS and time. The overhead depends on D through CBS(D), so
    D is solved (bracketed, in log D). The batch the layout runs does not depend on D, except where the plan
    gives none and the laws pick it: then the solve repeats at the new batch until it settles.
    Raises InfeasibleError when no layout fits (memory does not depend on D).
    """
    trained = inputs.plan.training.tokens
    tp, n_tokens = train(inputs, n_params, shape), trained
    for _ in range(8):
        solved = _solve_law_tokens(inputs, tp.gpus.batch_tokens, trained)
        if solved == n_tokens:
            break
        n_tokens = solved
        batch = tp.gpus.batch_tokens
        tp = train(inputs, n_params, shape, n_tokens)
        if tp.gpus.batch_tokens == batch:
            break
    return tp, n_tokens


def _solve_law_tokens(inputs: Inputs, batch_tokens: float, trained: float) -> float:
    """The largest D with D·(1 + overhead(D)) = trained at this batch (trained itself when no penalty applies).

    D·(1 + overhead(D)) rises with D except just above where B_crit becomes defined (CBS near 1.2·B_ref), so
    the bracket is found stepping down from `trained` by halves: the first sign change brackets the largest root.
    """
    def excess(log_d: float) -> float:
        d = math.exp(log_d)
        cbs, bcrit = cbs_tokens(inputs.cbs_law, d)
        return log_d + math.log1p(gp.token_overhead(batch_tokens, cbs, bcrit) or 0.0) - math.log(trained)

    hi = math.log(trained)
    if excess(hi) <= 0.0:
        return trained
    for _ in range(200):
        lo = hi - math.log(2.0)
        if excess(lo) <= 0.0:
            return math.exp(bracketed_root(excess, lo, hi))
        hi = lo
    return trained  # unreachable for a CBS law rising with D; keep the trained tokens


def evaluate(inputs: Inputs) -> tuple[list[CheckResult], PlanMetrics]:
    """All checks of one plan, and the metrics `--baseline` compares."""
    plan, lim = inputs.plan, inputs.plan.limits
    shape = shape_of(plan)
    N = plan.model.params or float(shape.total_params)
    D = plan.training.tokens
    try:
        (tp, D_eff), why = effective_tokens(inputs, N, shape), ""
    except InfeasibleError as exc:
        (tp, D_eff), why = (None, D), exc.message
    # training.tokens are the tokens TRAINED; a batch past the CBS buys the loss of fewer, D_eff (McCandlish
    # E(B)): the GPU plan of D_eff trains D_eff·(1 + overhead) = D, its time and money scaled to D exactly
    overhead = tp.gpus.token_overhead_fraction if tp else 0.0
    g = tp.gpus if tp else None
    scale = D / g.n_tokens_needed if g else 1.0
    gpu_hours = g.gpu_hours * scale if g else None
    cost = g.cost_usd * scale if g and g.cost_usd is not None else None
    wall = g.wall_clock_s * scale if g else None
    loss = predicted_loss(inputs, N, D_eff)
    d_inf = plan.inference.tokens if plan.inference else 0.0
    lifetime = float(law.lifetime_flops(N, D, d_inf))
    # the optimum reaching the loss this plan reaches under the SAME (point) law: a --confidence
    # quantile moves the loss check, not the yardstick (else the optimum of a worse loss looks cheap)
    optimum = _optimum(inputs.params, float(law.loss(N, D_eff, inputs.params)), d_inf)
    checks = [
        memory_check(tp, why, lim.min_memory_headroom),
        budget("gpu_hours", gpu_hours, lim.max_gpu_hours, "GPU-h", "limits.max_gpu_hours", lim.warn_fraction),
        budget("cost_usd", cost, lim.max_cost_usd, "USD", "limits.max_cost_usd", lim.warn_fraction),
        budget("wall_clock_s", wall, lim.max_wall_clock_s, "s", "limits.max_wall_clock_s",
               lim.warn_fraction),
        loss_check(loss, lim.target_loss, inputs, overhead),
        ratio_check("tokens_per_param", D / N, lim.max_tokens_per_param, "tokens/param", "limits.max_tokens_per_param"),
        ratio_check("batch_over_cbs", tp and tp.gpus.batch_tokens / tp.batch.critical_batch_tokens,
                    lim.max_batch_over_cbs, "x CBS", "limits.max_batch_over_cbs", lim.warn_fraction),
        optimum_check(lifetime, optimum, lim.max_over_optimum, d_inf),
    ]  # fmt: skip
    if plan.training.global_batch_tokens is not None and tp is not None:
        checks.append(batch_check(plan.training.global_batch_tokens, tp))
    metrics = PlanMetrics(
        n_params=N, n_tokens=D, tokens_per_param=_finite_or_none(D / N), predicted_loss=_finite_or_none(loss),
        lifetime_flops=_finite_or_none(lifetime), gpu_hours=_finite_or_none(gpu_hours),
        cost_usd=_finite_or_none(cost), wall_clock_s=_finite_or_none(wall),
        memory_per_gpu_gib=tp and tp.gpus.memory.total_gib, batch_tokens=tp and tp.gpus.batch_tokens,
        critical_batch_tokens=tp and _finite_or_none(tp.batch.critical_batch_tokens),
        optimum_lifetime_flops=_finite_or_none(optimum),
    )  # fmt: skip
    return [_finite(c) for c in checks], metrics


def _finite_or_none(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _finite(check: CheckResult) -> CheckResult:
    """A value out of double-precision range (inf, or NaN from inf/inf) fails its check, as null with a reason:
    NaN compares false with every limit, so it would otherwise pass, and JSON has no NaN or Infinity."""
    if check.value is None or math.isfinite(check.value):
        return check
    status = "skip" if check.status == "skip" else "fail"
    return check.model_copy(update={
        "status": status, "value": None,
        "reason": "cannot be computed: the result is not finite in double precision (the plan's magnitudes are too "
                  "extreme)"})


def percent(fraction: float) -> str:
    """A relative change: '+45.2%', '+287.0%'; from x100 on the factor it multiplies by, 'x2.6e6'."""
    if abs(fraction) < 100:
        return f"{fraction:+.1%}"
    return f"x{units.sci(1.0 + fraction, 2)}"


def loss_text(loss: float) -> str:
    """A loss in nats: 4 decimals ('2.0671') where that is 5-8 significant digits, else 5 ('1.2346e300')."""
    return f"{loss:.4f}" if 1e-3 <= abs(loss) < 1e4 else units.num(loss, 5)


def predicted_loss(inputs: Inputs, N: float, D: float) -> float:
    """L(N, D); with a confidence level and bootstrap samples, that quantile of L over the samples."""
    if inputs.confidence is None or not inputs.samples:
        return float(law.loss(N, D, inputs.params))
    values = sorted(float(law.loss(N, D, law.ChinchillaParams(*row))) for row in inputs.samples)
    index = min(len(values) - 1, round(inputs.confidence * (len(values) - 1)))
    return values[index]


def over_optimum(p: law.ChinchillaParams, N: float, D: float, D_eff: float, d_inf: float) -> float | None:
    """Lifetime FLOPs of (N, D) over those of the inference-aware optimum reaching L(N, D_eff), minus 1."""
    optimum = _optimum(p, float(law.loss(N, D_eff, p)), d_inf)
    return None if optimum is None else float(law.lifetime_flops(N, D, d_inf)) / optimum - 1.0


def _optimum(p: law.ChinchillaParams, loss: float, d_inf: float) -> float | None:
    try:
        N, D = law.inference_optimal(loss, d_inf, p)
    except InfeasibleError:
        return None
    return float(law.lifetime_flops(N, D, d_inf))


def _result(name, status, value, limit, unit, reason, key) -> CheckResult:
    return CheckResult(name=name, status=status, value=value, limit=limit, unit=unit, reason=reason, key=key)


def memory_check(tp: TrainingPlan | None, why: str, min_headroom: float | None) -> CheckResult:
    if tp is None:
        return _result("fits_memory", "fail", None, None, "GiB", why, "training.n_gpus")
    m = tp.gpus.memory
    headroom = 1.0 - m.total_gib / m.capacity_gib
    key = "limits.min_memory_headroom" if min_headroom is not None else "training.n_gpus"
    if min_headroom is not None and headroom < min_headroom:
        return _result("fits_memory", "fail", m.total_gib, m.capacity_gib * (1 - min_headroom), "GiB",
                       f"{m.total_gib:.1f} GiB per GPU leaves {headroom:.1%} free, below {min_headroom:.0%}", key)
    g = tp.gpus
    layout = f"TP {g.tensor_parallel} x PP {g.pipeline_parallel} x DP {g.data_parallel}"
    kept = m.capacity_gib * (1 - min_headroom) if min_headroom is not None else None
    if kept is not None and kept < m.usable_gib:  # the headroom limit binds: show it, not the usable memory
        return _result("fits_memory", "pass", m.total_gib, kept, "GiB",
                       f"{m.total_gib:.1f} of {kept:.1f} GiB per GPU ({min_headroom:.0%} of {m.capacity_gib:.1f} "
                       f"kept free) with {layout}", key)
    return _result("fits_memory", "pass", m.total_gib, m.usable_gib, "GiB",
                   f"{m.total_gib:.1f} of {m.usable_gib:.1f} usable GiB per GPU with {layout}", key)


def budget(name, value, limit, unit, key, warn_fraction) -> CheckResult:
    if limit is None:
        return _result(name, "skip", value, None, unit, "no limit set", key)
    if value is None:
        return _result(name, "fail", None, limit, unit, "cannot be computed (no layout fits, or no price known)", key)
    if value > limit:
        return _result(name, "fail", value, limit, unit, f"{value:.4g} {unit} exceeds the limit {limit:.4g}", key)
    if value > warn_fraction * limit:
        return _result(name, "warn", value, limit, unit, f"{value:.4g} {unit} is {value / limit:.0%} of the limit", key)
    return _result(name, "pass", value, limit, unit, f"{value:.4g} {unit} within {limit:.4g}", key)


def ratio_check(name, value, limit, unit, key, warn_fraction: float = 1.0) -> CheckResult:
    return budget(name, value, limit, unit, key, warn_fraction)


def loss_check(loss: float, target: float | None, inputs: Inputs, overhead: float) -> CheckResult:
    key = "limits.target_loss"
    if target is None:
        return _result("predicted_loss", "skip", loss, None, "nats", "no target set", key)
    bound = "point estimate"
    if inputs.confidence is not None:
        bound = (f"{inputs.confidence:.0%} bound over {len(inputs.samples)} bootstrap draws" if inputs.samples
                 else "point estimate: the law carries no bootstrap samples")  # fmt: skip
    if overhead >= 100:
        more, share = f"x{units.sci(1.0 + overhead, 2)} the tokens", f"1/{units.sci(1.0 + overhead, 2)}"
    else:
        more, share = f"{overhead:.1%} more tokens", f"{1.0 / (1.0 + overhead):.1%}"
    penalty = (f", the batch past the CBS needs {more}: {share} of those trained count toward the loss"
               if overhead > 0 else "")
    if loss > target * (1 + LOSS_RTOL):
        return _result("predicted_loss", "fail", loss, target, "nats",
                       f"predicted loss {loss_text(loss)} ({bound}{penalty}) misses the target {loss_text(target)}",
                       key)
    status = "warn" if inputs.confidence is not None and not inputs.samples else "pass"
    return _result("predicted_loss", status, loss, target, "nats",
                   f"predicted loss {loss_text(loss)} ({bound}{penalty}) meets the target {loss_text(target)}", key)


def optimum_check(lifetime: float, optimum: float | None, tolerance: float | None, d_inf: float) -> CheckResult:
    key = "limits.max_over_optimum"
    if tolerance is None:
        return _result("lifetime_over_optimum", "skip", None, None, "fraction", "no tolerance set", key)
    if optimum is None:
        return _result("lifetime_over_optimum", "fail", None, tolerance, "fraction",
                       "the predicted loss is at or below the law's E: no optimum exists", key)
    over = lifetime / optimum - 1.0
    what = f"lifetime FLOPs {percent(over)} vs the optimum at the same loss for {d_inf:.3g} inference tokens"
    status = "fail" if over > tolerance else "pass"
    return _result("lifetime_over_optimum", status, over, tolerance, "fraction", what, key)


def batch_check(given: float, tp: TrainingPlan) -> CheckResult:
    """The batch the GPU layout can run: a whole number of sequences per GPU x accumulation x DP ranks.

    A plan's global_batch_tokens that the layout cannot run as written is rounded by the GPU plan (as
    `recommend` warns); here it is a warning, so that a committed plan never silently trains another batch.
    """
    g = tp.gpus
    layout = (f"{g.batch_sequences} sequences of {g.seq_len}: {g.micro_batch_sequences} per GPU x "
              f"{g.grad_accumulation_steps} accumulation x {g.data_parallel} data-parallel ranks")
    key = "training.global_batch_tokens"
    if abs(g.batch_tokens / given - 1.0) <= BATCH_RTOL:
        return _result("batch_as_given", "pass", g.batch_tokens, given, "tokens", f"runs as given ({layout})", key)
    return _result("batch_as_given", "warn", g.batch_tokens, given, "tokens",
                   f"global_batch_tokens {given:.4g} runs as {g.batch_tokens:.4g} ({layout})", key)


def overall(checks: list[CheckResult]) -> str:
    statuses = {c.status for c in checks}
    return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
