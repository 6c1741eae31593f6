"""PNG figures (matplotlib, imported only when a plot is asked for). Curves come from the pure core."""

from __future__ import annotations

from pathlib import Path

from planner.errors import UsageError
from planner.laws.chinchilla import ChinchillaParams
from planner.schemas.recommend import RecommendRequest, RecommendResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def recommendation(result: RecommendResult, request: RecommendRequest, p: ChinchillaParams, path: Path) -> None:
    """Left: the objective along the iso-loss curve with optimum and baseline; right: N, D against demand."""
    from planner import curves

    if path.suffix.lower() != ".png":
        raise UsageError(f"--plot: {path} does not end in .png", hint="give a file name such as plan.png")
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    iso = curves.iso_loss(result, request, p)
    label = "lifetime cost (USD)" if result.objective == "cost" else "lifetime FLOPs"
    left.loglog(iso.n_params, iso.objective, color="tab:blue")
    left.scatter([result.n_params], [iso.at_optimum], color="tab:green", zorder=3, label="recommended")
    left.scatter([result.baseline.n_params], [iso.at_baseline], color="tab:red", zorder=3, label="baseline")
    left.set(xlabel="parameters N", ylabel=label, title=f"iso-loss curve L = {result.loss:.4f} ({result.law.name})")
    left.legend()
    sweep = curves.demand_sweep(result, request, p)
    right.loglog(sweep.demand, sweep.n_params, label="optimal N (parameters)")
    right.loglog(sweep.demand, sweep.n_tokens, label="optimal D (training tokens)")
    if result.inference.tokens > 0:
        right.axvline(result.inference.tokens, color="grey", linestyle=":", label="your demand")
    right.set(xlabel="lifetime inference tokens", ylabel="count", title="optimum against inference demand")
    right.legend()
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise UsageError(f"--plot: cannot write {path}: {exc.strerror}", hint="choose a writable path") from None
    finally:
        plt.close(fig)

