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
    panels = 3 if result.tradeoff else 2
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.8))
    left, right = axes[0], axes[1]
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
    if result.tradeoff:
        _gpu_panel(axes[2], result)
    save_figure(plt, fig, path, dpi=110)


def save_figure(plt, fig, path: Path, dpi: int) -> None:
    """tight_layout, save and close; a path that cannot be written is a usage error (exit 2)."""
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=dpi)
    except OSError as exc:
        raise UsageError(f"--plot: cannot write {path}: {exc.strerror}", hint="choose a writable file path") from None
    finally:
        plt.close(fig)



def _gpu_panel(ax, result: RecommendResult) -> None:
    """Wall-clock and cost against GPU count, with the GPU count at which the batch reaches the CBS."""
    rows = result.tradeoff or []
    n = [r.n_gpus for r in rows]
    ax.loglog(n, [r.wall_clock_s / 86400 for r in rows], marker="o", color="tab:blue", label="wall-clock (days)")
    ax.set(xlabel=f"GPUs ({result.gpu})", ylabel="wall-clock (days)", title="GPU count: time against cost")
    at_cbs = [r.n_gpus for r in rows if r.batch_tokens <= (result.critical_batch_tokens or 0) * 1.0001]
    if at_cbs:
        ax.axvline(max(at_cbs), color="tab:red", linestyle="--", label="batch reaches the CBS")
    if result.n_gpus:
        ax.axvline(result.n_gpus, color="tab:green", linestyle=":", label="plan")
    costs = [r.cost_usd for r in rows]
    if all(c is not None for c in costs):
        twin = ax.twinx()
        twin.semilogx(n, costs, marker="s", color="tab:orange", label="cost (USD)")
        twin.set_ylabel("training cost (USD)")
        twin.legend(loc="upper center")
    ax.legend(loc="lower left")
