"""Pure orchestration of `planner recommend`: a validated request and a law in, a result schema out.

Modes (exactly one is given):
- target_loss: recommend the inference-aware optimum at that loss; baseline = the law's frontier model
  at the same loss (Sardana et al.'s "Chinchilla-style" model).
- params: a model of that size trained to the law's frontier is the baseline; recommend the optimum at
  its loss (Sardana et al.'s setting, e.g. 13B -> 7B at 2e12 inference tokens).
- evaluate (params and tokens): the given configuration is the baseline; recommend the optimum at its loss.
- compute: the lowest loss a lifetime FLOP budget (training + 2N per inference token) reaches; with no
  inference demand this is Hoffmann's eq. 4 compute-optimal model. Baseline = frontier model at that loss.
Under the cost objective the inference demand enters as Sardana et al.'s effective token count T_eff.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.defaults import MIN_PARAMS
from planner.errors import InfeasibleError, UsageError
from planner.laws import chinchilla as law
from planner.laws._percentile import percentile
from planner.schemas.recommend import (
    Band,
    Baseline,
    BaselineCost,
    CostBreakdown,
    Intervals,
    LawIdentity,
    ProfileRef,
    RecommendRequest,
    RecommendResult,
)

EXTREME_TOKENS_PER_PARAM = 1000.0


@dataclass(frozen=True)
class Solution:
    n_params: float
    n_tokens: float
    loss: float
    baseline_n_params: float
    baseline_n_tokens: float
    baseline_description: str


def effective_tokens(request: RecommendRequest) -> float:
    """Inference tokens the optimiser sees: the demand itself (FLOPs) or T_eff (cost, Sardana et al. §6)."""
    if request.objective == "flops":
        return request.inference.tokens
    c = request.cost
    assert c is not None
    c_train = law.cost_per_flop(c.train_price_usd_per_hour, c.train_peak_flops_per_s)
    c_inf = law.cost_per_flop(c.inference_price_usd_per_hour, c.inference_peak_flops_per_s)
    t_eff = law.effective_inference_tokens(
        c_inf / c_train,
        c.train_mfu,
        request.inference.input_tokens,
        c.prefill_mfu,
        request.inference.output_tokens,
        c.decode_mfu,
    )
    if not math.isfinite(t_eff):  # e.g. --train-price 1e-300: serving costs ~inf training FLOPs per token
        raise InfeasibleError(
            "the cost objective's effective inference tokens T_eff overflow floating point",
            hint="check --train-price and --inference-price: their ratio, times the inference demand, is beyond 1e308",
        )
    return t_eff


def solve(request: RecommendRequest, p: law.ChinchillaParams, d_eff: float) -> Solution:
    """The recommended (N, D), the loss both models reach, and the baseline, for one set of constants."""
    mode = request.mode
    if mode == "compute":
        if request.objective == "cost":
            raise UsageError(
                "--compute fixes a FLOP budget, which the cost objective does not optimise",
                hint="with --objective cost give --target-loss or --params instead",
            )
        N, D = law.lifetime_optimal(request.compute_flops, request.inference.tokens, p)
        ell = float(law.loss(N, D, p))
        _require_resolvable(ell, p, f"a lifetime budget of {request.compute_flops:.4g} FLOPs", "a smaller --compute")
        bN, bD = law.frontier_point(ell, p)
        return Solution(N, D, ell, float(bN), float(bD), "frontier model at the loss the budget reaches")
    if mode == "target_loss":
        ell = request.target_loss
        bN, bD = law.frontier_point(ell, p)
        desc = "frontier (Chinchilla-style) model at the target loss"
    elif mode == "params":
        bN = request.n_params
        bD = float(law.frontier_tokens(bN, p))
        ell = float(law.loss(bN, bD, p))
        _require_resolvable(ell, p, f"a model of {bN:.4g} parameters trained to the law's frontier", "a smaller --params")
        desc = "the given model size trained to the law's frontier"
    else:
        bN, bD = request.n_params, request.n_tokens
        ell = float(law.loss(bN, bD, p))
        _require_resolvable(ell, p, f"{bN:.4g} parameters on {bD:.4g} tokens", "a smaller --params or --tokens")
        desc = "the given configuration"
    N, D = law.inference_optimal(ell, d_eff, p)
    return Solution(N, D, ell, float(bN), float(bD), desc)


def _require_resolvable(ell: float, p: law.ChinchillaParams, given: str, smaller: str) -> None:
    """A loss the inputs imply (no target was given) must lie above E in floating point, or no model reaches it."""
    if not ell > p.E:
        raise InfeasibleError(
            f"{given} reaches loss {ell:.6g}, the law's irreducible loss E = {p.E:g} to double precision",
            hint=f"give {smaller}: the law cannot tell models this large apart (or use --target-loss above E)",
        )


def require_floors(request: RecommendRequest, sol: Solution, p: law.ChinchillaParams, min_tokens: float) -> None:
    """The recommendation must be a trainable model: N >= MIN_PARAMS, D >= one training step (min_tokens)."""
    larger = {"target_loss": "a lower target loss", "compute": "a larger --compute", "params": "a larger --params",
              "evaluate": "a larger --params or --tokens"}[request.mode]
    slack = 1.0 - 1e-9  # the solvers' round-off: `--params 1000` comes back as 999.9999999999 or 1000.0000000001
    if sol.n_params < MIN_PARAMS * slack:
        n = MIN_PARAMS
        d = float(law.frontier_tokens(n, p))
        smallest = f"the law's frontier model of {n:,.0f} parameters trains on {d:.3g} tokens"
        hint = {
            "target_loss": f"choose {larger}: {smallest} and reaches {float(law.loss(n, d, p)):.4g}",
            "compute": f"give {larger}: {smallest}, {6.0 * n * d:.2g} FLOPs (more with inference demand)",
        }.get(request.mode, f"give {larger}, or less inference demand")
        raise InfeasibleError(
            f"the recommendation at loss {sol.loss:.4g} has {sol.n_params:.3g} parameters, below the floor of "
            f"{MIN_PARAMS:,.0f} that scaling laws are fitted to",
            hint=hint,
        )
    if sol.n_tokens < min_tokens * slack:
        raise InfeasibleError(
            f"the recommendation at loss {sol.loss:.4g} trains on {sol.n_tokens:.3g} tokens, less than one "
            f"training step ({min_tokens:.4g} tokens)",
            hint=f"lower --batch-tokens or --seq-len, or ask for {larger}",
        )


def _require_finite(unit: str = "FLOPs", hint: str = "give smaller --params, --tokens, --compute or inference demand",
                    **values: float) -> None:
    """Counts past the float range (~1.8e308) are inf; say so instead of printing inf and nan%."""
    for what, value in values.items():
        if not math.isfinite(value):
            raise InfeasibleError(f"the {what.replace('_', ' ')} {unit} overflow floating point (more than 1.8e308)",
                                  hint=hint)


def _flops(N: float, D: float, d_inf: float) -> tuple[float, float, float]:
    train = float(law.training_flops(N, D))
    inference = 2.0 * N * d_inf
    return train, inference, train + inference


def cost_parts(request: RecommendRequest, N, D):
    """(training, inference) USD for N, D (floats or arrays) under the request's cost inputs."""
    c = request.cost
    assert c is not None
    return law.lifetime_cost(
        N,
        D,
        request.inference.input_tokens,
        request.inference.output_tokens,
        law.cost_per_flop(c.train_price_usd_per_hour, c.train_peak_flops_per_s),
        law.cost_per_flop(c.inference_price_usd_per_hour, c.inference_peak_flops_per_s),
        c.train_mfu,
        c.prefill_mfu,
        c.decode_mfu,
    )


def _cost(request: RecommendRequest, N: float, D: float) -> tuple[float, float]:
    train, inference = cost_parts(request, N, D)
    return float(train), float(inference)


def recommend(
    request: RecommendRequest,
    p: law.ChinchillaParams,
    identity: LawIdentity,
    samples: list[list[float]] | None = None,
    min_tokens: float = 1.0,
    law_ref: ProfileRef | None = None,
) -> RecommendResult:
    """Solve the request under one law; add 5/50/95% bands when the law carries bootstrap samples.

    min_tokens: the fewest training tokens a run can have (one step of the batch); a recommendation below it,
    or below MIN_PARAMS parameters, raises InfeasibleError. law_ref: the law's file, named in the assumptions when
    it is a user's.
    """
    d_eff = effective_tokens(request)
    sol = solve(request, p, d_eff)
    require_floors(request, sol, p, min_tokens)
    d_inf = request.inference.tokens
    train, inference, total = _flops(sol.n_params, sol.n_tokens, d_inf)
    b_train, b_inf, b_total = _flops(sol.baseline_n_params, sol.baseline_n_tokens, d_inf)
    _require_finite(recommended_lifetime=total, baseline_lifetime=b_total)
    baseline = Baseline(
        n_params=sol.baseline_n_params,
        n_tokens=sol.baseline_n_tokens,
        total_flops=b_total,
        train_flops=b_train,
        inference_flops=b_inf,
        description=sol.baseline_description,
    )
    cost_usd = None
    savings = (b_total - total) / b_total
    if request.objective == "cost":
        c_train, c_inf = _cost(request, sol.n_params, sol.n_tokens)
        cb_train, cb_inf = _cost(request, sol.baseline_n_params, sol.baseline_n_tokens)
        _require_finite("USD", "check --train-price and --inference-price", recommended_lifetime=c_train + c_inf,
                        baseline_lifetime=cb_train + cb_inf)
        cost_usd = CostBreakdown(train=c_train, inference=c_inf, total=c_train + c_inf)
        baseline = baseline.model_copy(update={"cost_usd": BaselineCost(total=cb_train + cb_inf)})
        savings = (cb_train + cb_inf - cost_usd.total) / (cb_train + cb_inf)
    return RecommendResult(
        mode=request.mode,
        objective=request.objective,
        n_params=sol.n_params,
        n_tokens=sol.n_tokens,
        tokens_per_param=sol.n_tokens / sol.n_params,
        loss=sol.loss,
        train_flops=train,
        inference_flops=inference,
        total_flops=total,
        baseline=baseline,
        savings_fraction=savings,
        law=identity,
        inference=request.inference,
        effective_inference_tokens=d_eff if request.objective == "cost" else None,
        cost_usd=cost_usd,
        cost_inputs=request.cost,
        intervals=bands(request, samples, d_eff) if samples else None,
        assumptions=assumptions(request, identity, d_eff, law_ref),
        warnings=warnings(sol, identity),
    )


def bands(request: RecommendRequest, samples: list[list[float]], d_eff: float) -> Intervals:
    """Percentile bands of the recommendation over bootstrap draws [E, A, B, alpha, beta] of the law."""
    rows = []
    n_infeasible = 0
    for E, A, B, alpha, beta in samples:
        try:
            sol = solve(request, law.ChinchillaParams(E, A, B, alpha, beta), d_eff)
        except (InfeasibleError, ArithmeticError, ValueError):  # target at or below this draw's E, or degenerate
            # No finite model reaches the target under this draw: +inf, not dropped, so the bands are not
            # biased towards the optimistic draws; a percentile among these is unbounded (None).
            n_infeasible += 1
            rows.append((math.inf,) * 5)
            continue
        train, _, total = _flops(sol.n_params, sol.n_tokens, request.inference.tokens)
        rows.append((sol.n_params, sol.n_tokens, train, total, sol.loss))
    if n_infeasible == len(samples):
        raise InfeasibleError(
            f"the target is infeasible under all {len(samples)} bootstrap draws of the law",
            hint="raise the target loss",
        )
    band = [Band(p5=percentile(col, 5), p50=percentile(col, 50), p95=percentile(col, 95)) for col in zip(*rows)]
    return Intervals(
        n_samples=len(samples),
        n_infeasible=n_infeasible,
        n_params=band[0],
        n_tokens=band[1],
        train_flops=band[2],
        total_flops=band[3],
        loss=band[4],
    )


def assumptions(request: RecommendRequest, identity: LawIdentity, d_eff: float,
                law_ref: ProfileRef | None = None) -> list[str]:
    where = f"{identity.path}, " if law_ref is not None and not law_ref.builtin else ""
    out = [
        (f"loss law {identity.name}: L = E + A/N^alpha + B/D^beta with E={identity.E:g}, A={identity.A:g}, "
        f"B={identity.B:g}, alpha={identity.alpha:g}, beta={identity.beta:g} ({where}sha256 {identity.sha256[:16]}…)"),
        (f"N counts {identity.params_counted.replace('_', '-')} parameters, as the law was fitted; "
        "FLOPs = 6·N·D for training + 2·N per inference token (Kaplan et al. 2020; Sardana et al. 2024)"),
    ]
    if identity.units is not None:  # not the published token-level laws' units: say what every number is in
        u = identity.units
        out.append(
            f"units: loss in {u.loss}, D in {u.tokens} (dataset: {identity.dataset}); not the published laws' nats "
            f"per token of MassiveText: its losses and {identity.d_unit} do not compare with theirs"
        )
    if identity.uncertainty:
        out.append(f"uncertainty: {identity.uncertainty}")
    else:
        out.append(f"uncertainty: none available for law {identity.name} (its profile gives no standard errors, "
                   "intervals or bootstrap draws), so no bands: the constants' error is unknown, not zero")
    inf = request.inference
    if inf.split_assumed and request.objective == "cost":
        out.append(
            "inference tokens split 70 in : 215 out per request (the LMSys average Sardana et al. use); "
            "give --inference-requests with --input-tokens/--output-tokens to set it"
        )
    if request.objective == "cost":
        c = request.cost
        assert c is not None
        train_gpu = c.train_gpu if c.train_gpu_profile is None else c.train_gpu_profile.label
        inference_gpu = c.inference_gpu if c.inference_gpu_profile is None else c.inference_gpu_profile.label
        out.append(
            f"training on {train_gpu} {c.train_dtype} ({c.train_peak_flops_per_s / 1e12:g} TFLOP/s dense) at "
            f"MFU {c.train_mfu:.3g}, ${c.train_price_usd_per_hour:g}/GPU-h; inference on {inference_gpu} "
            f"{c.inference_dtype} ({c.inference_peak_flops_per_s / 1e12:g} TFLOP/s dense), prefill MFU "
            f"{c.prefill_mfu:g}, decode MFU {c.decode_mfu:g}, ${c.inference_price_usd_per_hour:g}/GPU-h"
        )
        out.append(f"cost optimum = FLOP optimum with D_inf replaced by T_eff = {d_eff:.4g} (Sardana et al. §6)")
    return out


def warnings(sol: Solution, identity: LawIdentity | None = None) -> list[str]:
    """The law's own flags, then the recommendation's D/N against the range the law was fitted at: the law's
    recorded range when it has one (calibrated and shipped laws), else a warning past 1,000 (Sardana et al. 2024 §5)."""
    out = law_warnings(identity) if identity is not None else []
    unit = identity.d_unit if identity is not None else "tokens"
    ratio = sol.n_tokens / sol.n_params
    fitted = identity.fitted_tokens_per_param if identity is not None else None
    if fitted is not None:
        if not fitted.low <= ratio <= fitted.high:
            out.append(
                f"{ratio:.3g} {unit} per parameter: law {identity.name} was fitted at {fitted.low:.3g}-{fitted.high:.3g} "
                f"{unit}/param ({fitted.source}); this recommendation extrapolates it"
            )
    elif ratio > EXTREME_TOKENS_PER_PARAM:
        out.append(
            f"{ratio:.0f} {unit} per parameter: Chinchilla-style laws are fitted at up to ~340 {unit}/param "
            "(Hoffmann et al. 2022's runs) and overestimate the gain from extra data at extreme ratios "
            "(Sardana et al. 2024 §5)"
        )
    return out


def _unidentified_name(flag: str) -> str:
    """The constant an `unidentified:` flag names: "E spans ...", "... does not depend on E (...)"; else a
    flat direction of the fit, which names no single constant."""
    import re

    found = re.match(r"unidentified: (\w+) spans ", flag) or re.search(r"does not depend on (\w+)", flag)
    return found.group(1) if found else "a flat direction of the fit"


def law_warnings(identity: LawIdentity) -> list[str]:
    """One line per flag of the law's fit; an unidentified law is one to test the pipeline with, not to plan with."""
    flags = identity.flags or []
    out = [f"law {identity.name}: FLAG {flag}" for flag in flags]
    unidentified = list(dict.fromkeys(_unidentified_name(f) for f in flags if f.startswith("unidentified:")))
    if unidentified:
        out.append(
            f"law {identity.name}: the data cannot identify {', '.join(unidentified)} (their bootstrap intervals span "
            "orders of magnitude): these constants show that the calibration pipeline works; do not plan with "
            "them (calibration.md §1.3: 4-5 sizes over >= 15x in N, 3-4 post-decay points each)"
        )
    return out
