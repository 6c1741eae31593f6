"""Uncertainty of a fitted loss law: bootstrap over runs, intervals on what the law recommends, profiles.

Legend as in :mod:`planner.laws.fit`. Pure numpy (no I/O, no clock: the profile's date comes from
the caller).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from planner.errors import FitError, InfeasibleError
from planner.laws._percentile import percentile
from planner.laws.chinchilla import ChinchillaParams, compute_optimal, inference_optimal
from planner.laws.fit import (
    GRID_DESCRIPTION,
    PARAM_NAMES,
    TIGHT,
    LossFit,
    Objective,
    Progress,
    _check_runs,
    _objective_name,
    _solve_parallel,
)

# ----------------------------------------------------------------------------------------------------
# Bootstrap over runs and the intervals it gives


@dataclass(frozen=True)
class Bootstrap:
    """Refits on resampled runs. samples: (K, 5) rows [E, A, B, alpha, beta]; x: (K, 5) rows (a, b, e, alpha, beta)."""

    samples: np.ndarray = field(repr=False)
    x: np.ndarray = field(repr=False)
    objective: np.ndarray = field(repr=False)
    converged: np.ndarray = field(repr=False)
    seed: int
    n_samples: int
    method: str

    def param_intervals(self, level: float = 0.95) -> dict[str, dict[str, float]]:
        """Percentile intervals per constant: {name: {"low", "high"}} at `level` (e.g. 2.5–97.5%)."""
        lo, hi = _pct(level)
        q = np.percentile(self.samples, [lo, hi], axis=0)
        return {name: {"low": float(q[0, i]), "high": float(q[1, i])} for i, name in enumerate(PARAM_NAMES)}


def _pct(level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    return 50.0 * (1.0 - level), 50.0 * (1.0 + level)


def resample_weights(n_runs: int, n_samples: int, seed: int, groups=None) -> np.ndarray:
    """(K, n) counts: row k holds how often each run is drawn in resample k (with replacement).

    Without groups: idx = default_rng(seed).integers(0, n, size=(K, n)), whole runs resampled. With
    `groups` (one label per run), whole groups are drawn instead and every run of a drawn group gets its
    group's count: the case bootstrap of calibration.md §1.4, which keeps the correlated points of one
    probe (its cooldown branches) together.
    """
    rng = np.random.default_rng(seed)
    if groups is not None:
        _, member = np.unique(np.asarray(groups), return_inverse=True)
        n_groups = int(member.max()) + 1
        counts = resample_weights(n_groups, n_samples, int(rng.integers(0, 2**31)))
        return counts[:, member.ravel()]
    idx = rng.integers(0, n_runs, size=(n_samples, n_runs))
    W = np.zeros((n_samples, n_runs))
    np.add.at(W, (np.repeat(np.arange(n_samples), n_runs), idx.ravel()), 1.0)
    return W


def bootstrap_loss_law(
    N, D, L, fit: LossFit, *, n_samples: int = 1000, seed: int = 0, objective: str | Objective = "huber",
    extra_starts=(), workers: int = 1, progress: Progress | None = None, groups=None,
) -> Bootstrap:
    """Nonparametric bootstrap over runs (Efron 1979; Besiroglu et al. 2024 §2.2 step 5).

    Each resample draws n runs with replacement and refits F_w(x) = Σ_i w_i·rho(r_i(x)) with the batched
    L-BFGS, started from the full-data best fit (and any `extra_starts`, e.g. fit.distinct_optima; the
    best per resample is kept). The "mle" objective is bootstrapped with the sum-Huber objective, as
    Besiroglu et al. did. `groups` (one label per run) resamples whole groups, e.g. a probe's branches.
    """
    obj = Objective(objective) if isinstance(objective, str) else objective
    if obj.kind == "mle":
        obj = Objective("huber", delta=obj.delta)
    N, D, L = _check_runs(N, D, L, 5)
    if n_samples < 1:
        raise ValueError("n_samples must be >= 1")
    starts = np.vstack([fit.x] + [np.asarray(s, float) for s in extra_starts])
    m = starts.shape[0]
    W = np.repeat(resample_weights(N.size, n_samples, seed, groups), m, axis=0)
    X0 = np.tile(starts, (n_samples, 1))
    X, f, _, conv = _solve_parallel(N, D, L, X0, obj, W, workers=workers, progress=progress, opts=TIGHT)
    f = np.where(np.isfinite(f), f, np.inf).reshape(n_samples, m)
    best = np.argmin(f, axis=1)
    rows = np.arange(n_samples) * m + best
    Xb = X[rows]
    samples = np.column_stack([np.exp(Xb[:, 2]), np.exp(Xb[:, 0]), np.exp(Xb[:, 1]), Xb[:, 3], Xb[:, 4]])
    unit = "runs" if groups is None else f"{len(np.unique(np.asarray(groups)))} groups of runs"
    method = (f"bootstrap over {unit}: {n_samples} resamples (numpy default_rng({seed})), each refitted with "
              f"{_objective_name(obj)} from the best fit" + (f" and {m - 1} other optima" if m > 1 else ""))
    return Bootstrap(samples=samples, x=Xb, objective=f[np.arange(n_samples), best], converged=conv[rows],
                     seed=seed, n_samples=n_samples, method=method)


def _band(values: np.ndarray, best: float, level: float) -> dict[str, float | None]:
    """Percentile band; a draw with no answer (NaN: the target is at or below its E) counts as +inf, not
    dropped, and a bound that falls among those is None (unbounded; also keeps the JSON valid)."""
    lo, hi = _pct(level)
    v = values.tolist()
    return {"best": float(best), "low": percentile(v, lo), "high": percentile(v, hi)}


def recommendation_intervals(
    fit: LossFit, boot: Bootstrap, *, budgets=(), target_loss: float | None = None,
    inference_tokens: float = 0.0, level: float = 0.95,
) -> dict:
    """Percentile bands of what the law recommends, one law per bootstrap sample.

    compute_optimal: N_opt, D_opt at each training budget C (Hoffmann eq. 4, `compute_optimal`);
    inference_optimal: N, D minimising 6ND + 2N·D_inf at L = target_loss (Sardana et al. 2024 eq. 3,
    `inference_optimal`). Samples whose E is at or above the target are counted as infeasible.
    """
    P = [ChinchillaParams(*map(float, row)) for row in boot.samples]
    out: dict = {"level": level, "compute_optimal": []}
    for C in budgets:
        NDs = np.array([compute_optimal(float(C), p) for p in P], dtype=float).reshape(-1, 2)
        Nb, Db = compute_optimal(float(C), fit.params)
        out["compute_optimal"].append(
            {"flops": float(C), "N": _band(NDs[:, 0], float(Nb), level), "D": _band(NDs[:, 1], float(Db), level)}
        )
    if target_loss is not None:
        NDs, infeasible = np.full((len(P), 2), np.nan), 0
        for k, p in enumerate(P):
            try:
                NDs[k] = inference_optimal(float(target_loss), float(inference_tokens), p)
            except InfeasibleError:
                infeasible += 1
        Nb, Db = inference_optimal(float(target_loss), float(inference_tokens), fit.params)
        out["inference_optimal"] = {
            "target_loss": float(target_loss), "inference_tokens": float(inference_tokens),
            "N": _band(NDs[:, 0], Nb, level), "D": _band(NDs[:, 1], Db, level), "n_infeasible": infeasible,
        }
    return out


def identifiability_flags(boot: Bootstrap, level: float = 0.95, max_ratio: float = 100.0,
                          max_exp_width: float = 1.0) -> list[str]:
    """Constants the bootstrap cannot pin down: high/low > max_ratio for E, A, B, or width > max_exp_width."""
    flags = []
    for name, iv in boot.param_intervals(level).items():
        lo, hi = iv["low"], iv["high"]
        if name in ("E", "A", "B"):
            if lo <= 0 or hi / lo > max_ratio:
                flags.append(f"unidentified: {name} spans {lo:.3g}–{hi:.3g} over the bootstrap ({level:.0%})")
        elif hi - lo > max_exp_width:
            flags.append(f"unidentified: {name} spans {lo:.3g}–{hi:.3g} over the bootstrap ({level:.0%})")
    return flags


def with_intervals(fit: LossFit, boot: Bootstrap, recommendations: dict | None = None,
                   level: float = 0.95) -> LossFit:
    """The fit with `intervals` = {level, n_samples, seed, params, [compute_optimal, inference_optimal]}."""
    iv = {"level": level, "n_samples": boot.n_samples, "seed": boot.seed, "method": boot.method,
          "params": boot.param_intervals(level)}
    if recommendations:
        iv.update({k: v for k, v in recommendations.items() if k != "level"})
    flags = tuple(dict.fromkeys(fit.flags + tuple(identifiability_flags(boot, level))))
    return replace(fit, intervals=iv, flags=flags)


def loss_law_profile(
    fit: LossFit, *, name: str, date: str, input_file: str, input_sha256: str, title: str | None = None,
    dataset: str = "the runs in the input file", loss_units: str = "nats per token",
    params_kind: str = "total", tokens_units: str = "training tokens", boot: Bootstrap | None = None,
) -> dict:
    """A dict that validates as planner.schemas.laws.LawProfile, with provenance and bootstrap samples.

    `date` comes from the caller (this module never reads the clock). Raises FitError when a constant
    is not positive (a boundary fit cannot be written as a law).
    """
    bad = [k for k in ("A", "B", "alpha", "beta") if not getattr(fit, k) > 0]
    if bad:
        raise FitError(f"the fit put {', '.join(bad)} at 0; it cannot be written as a law profile")
    prov: dict = {
        "input_file": input_file, "input_sha256": input_sha256, "objective": fit.objective_name,
        "objective_value": float(fit.objective), "grid": GRID_DESCRIPTION if fit.n_starts == 4500 else
        f"{fit.n_starts} starts", "n_runs": fit.n_runs, "n_starts": fit.n_starts,
        "n_starts_at_best": fit.n_starts_at_best, "date": date, "fitter": "planner.laws.fit.fit_loss_law",
        "flags": list(fit.flags),
    }
    prof = {
        "schema_version": 1, "kind": "loss-law", "name": name,
        "title": title or f"Chinchilla law fitted to {input_file} ({fit.n_runs} runs)", "form": "chinchilla",
        "constants": {k: float(getattr(fit, k)) for k in PARAM_NAMES},
        "units": {"loss": loss_units, "params": params_kind, "tokens": tokens_units},
        "dataset": dataset, "source": f"planner fit of {input_file} (sha256 {input_sha256[:12]}...), {date}",
        "provenance": prov,
    }
    if boot is not None:
        prof["uncertainty"] = {
            "intervals_95": boot.param_intervals(0.95),
            "samples": [[float(v) for v in row] for row in boot.samples],
            "method": boot.method,
        }
    return prof
