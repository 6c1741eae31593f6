"""Pure curves behind the plots: the objective along an iso-loss curve, and the optimum against demand."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner import planning
from planner.laws import chinchilla as law
from planner.schemas.recommend import RecommendRequest, RecommendResult


@dataclass(frozen=True)
class IsoLoss:
    n_params: np.ndarray
    objective: np.ndarray
    at_optimum: float
    at_baseline: float


@dataclass(frozen=True)
class DemandSweep:
    demand: np.ndarray
    n_params: np.ndarray
    n_tokens: np.ndarray


def _objective(result: RecommendResult, request: RecommendRequest, N, D):
    if result.objective == "cost":
        train, inference = planning.cost_parts(request, N, D)
        return train + inference
    return law.lifetime_flops(N, D, request.inference.tokens)


def iso_loss(result: RecommendResult, request: RecommendRequest, p: law.ChinchillaParams, n: int = 200) -> IsoLoss:
    """Objective for every N on L(N, D) = loss, from just above the smallest feasible N to 30x the larger model."""
    n_min = float(np.power(p.A / (result.loss - p.E), 1.0 / p.alpha))  # below this no D reaches the loss
    hi = 30 * max(result.n_params, result.baseline.n_params)
    N = np.geomspace(n_min * 1.02, hi, n)
    D = np.power(p.B / (result.loss - p.E - p.A / np.power(N, p.alpha)), 1.0 / p.beta)
    obj = _objective(result, request, N, D)
    at_opt = float(_objective(result, request, result.n_params, result.n_tokens))
    at_base = float(_objective(result, request, result.baseline.n_params, result.baseline.n_tokens))
    return IsoLoss(N, obj, at_opt, at_base)


def demand_sweep(result: RecommendResult, request: RecommendRequest, p: law.ChinchillaParams) -> DemandSweep:
    """Inference-aware optimum at the result's loss for demands from 1e9 to 1e15 tokens (scaled to T_eff for cost)."""
    demand = np.geomspace(1e9, 1e15, 40)
    scale = 1.0
    if result.objective == "cost" and result.inference.tokens > 0 and result.effective_inference_tokens:
        scale = result.effective_inference_tokens / result.inference.tokens
    sols = [law.inference_optimal(result.loss, float(d * scale), p) for d in demand]
    return DemandSweep(demand, np.array([s[0] for s in sols]), np.array([s[1] for s in sols]))
