"""Orchestration of `planner fit`: multi-start fit, bootstrap and recommendation bands (pure: arrays in)."""

from __future__ import annotations

from planner.schemas.fit import FitRequest


def fit_law(request: FitRequest, N, D, L, progress=None):
    """(fit, bootstrap or None): the fit with its parameter and recommendation intervals when bootstrapped."""
    from planner.laws import fit as core
    from planner.laws import fit_uncertainty as unc

    result = core.fit_loss_law(N, D, L, objective=request.objective, workers=request.workers, progress=progress)
    if not request.bootstrap:
        return result, None
    boot = unc.bootstrap_loss_law(N, D, L, result, n_samples=request.bootstrap, seed=request.seed,
                                   objective=request.objective, workers=request.workers, progress=progress)
    bands = unc.recommendation_intervals(result, boot, budgets=request.budgets, target_loss=request.target_loss,
                                          inference_tokens=request.inference_tokens)
    return unc.with_intervals(result, boot, bands), boot


def unidentified(fit) -> list[str]:
    """What the data cannot identify (the fit's and the bootstrap's `unidentified` flags), without the prefix."""
    return [flag.split(":", 1)[1].strip() for flag in fit.flags if flag.startswith("unidentified")]


def at_bound(fit) -> list[str]:
    """Constants on the fitter's box (planner.laws.fit.BOUNDS), without the prefix: an exponent at 0 or 10, E
    at its upper bound. E at 0 is a boundary flag too but not listed here: its term then vanishes, so the
    fit also flags E unidentified (see `unidentified`), which is what refuses --write-law."""
    return [flag.split(":", 1)[1].strip() for flag in fit.flags
            if flag.startswith("boundary:") and "the fitter's" in flag]
