"""Renderables for `planner fit` and `planner fit-cbs` (builders: they return rich objects, never print),
and the fit plot (a PNG; matplotlib is imported only when a plot is asked for)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from planner.errors import UsageError
from planner.units import sci, si

_PARAM_FMT = {"E": "{:.4f}", "A": "{:.4g}", "B": "{:.5g}", "alpha": "{:.4f}", "beta": "{:.4f}"}


def loss_fit_table(fit) -> Table:
    """Constants of the fitted law, with bootstrap intervals when present (fit: planner.laws.fit.LossFit)."""
    iv = (fit.intervals or {}).get("params")
    level = (fit.intervals or {}).get("level", 0.95)
    table = Table(title=f"L(N, D) = E + A/N^alpha + B/D^beta  ({fit.n_runs} runs)", title_justify="left")
    table.add_column("constant")
    table.add_column("fit", justify="right")
    if iv:
        table.add_column(f"{level:.0%} interval", justify="right")
    for name, fmt in _PARAM_FMT.items():
        row = [name, fmt.format(getattr(fit, name))]
        if iv:
            row.append(f"{fmt.format(iv[name]['low'])} – {fmt.format(iv[name]['high'])}")
        table.add_row(*row)
    return table


def loss_fit_summary(fit) -> Group:
    """How the optimum was reached, flags, and the recommendation bands when bootstrapped."""
    lines = [
        Text(f"objective: {fit.objective_name} = {fit.objective:.6g}"),
        Text(f"starts: {fit.n_starts}, converged {fit.n_starts_converged}, at the best "
             f"(within {fit.at_best_rtol:g} relative) {fit.n_starts_at_best}"),
    ]
    if fit.sigma is not None:
        lines.append(Text(f"scale sigma = {fit.sigma:.3g}"))
    parts: list = [loss_fit_table(fit), *lines]
    for flag in fit.flags:
        parts.append(Text(f"warning: {flag}", style="yellow"))
    if fit.intervals and (fit.intervals.get("compute_optimal") or fit.intervals.get("inference_optimal")):
        parts.append(recommendation_bands(fit.intervals))
    return Group(*parts)


def recommendation_bands(intervals: dict) -> Table:
    """N and D the law recommends, best fit and bootstrap band, per budget and for the inference target."""
    level = intervals.get("level", 0.95)
    table = Table(title=f"what the law recommends ({level:.0%} bootstrap bands)", title_justify="left")
    for col in ("case", "params N", "tokens D"):
        table.add_column(col, justify="left" if col == "case" else "right")

    def band(b):
        if b["low"] is None:
            return f"{si(b['best'])} (no feasible sample)"
        high = "unbounded" if b["high"] is None else si(b["high"])
        return f"{si(b['best'])} ({si(b['low'])} – {high})"

    for row in intervals.get("compute_optimal", []):
        table.add_row(f"compute-optimal at {sci(row['flops'])} FLOP", band(row["N"]), band(row["D"]))
    inf = intervals.get("inference_optimal")
    if inf:
        note = f", {inf['n_infeasible']} samples infeasible" if inf["n_infeasible"] else ""
        table.add_row(f"loss {inf['target_loss']:g}, {si(inf['inference_tokens'])} inference tokens{note}",
                      band(inf["N"]), band(inf["D"]))
    return table


def cbs_fit_table(fit) -> Group:
    """Per-group S_min, E_min, B_crit and CBS, then the N- and D-laws (fit: planner.laws.cbs_fit.CbsFit)."""
    iv = fit.intervals or {}
    table = Table(title=f"critical batch (Zhang 20% overhead, B_ref = {fit.b_ref:g} sequences)", title_justify="left")
    for col in ("params N", "tokens D", "S_min (steps)", "E_min (seq)", "B_crit (seq)", "CBS (seq)"):
        table.add_column(col, justify="right")
    bands = iv.get("cbs_sequences")
    def num(x: float, digits: int = 1) -> str:  # fixed point, unless that would be too wide for the column
        return f"{x:.{digits}f}" if abs(x) < 1e7 else f"{x:.4g}"

    for i, g in enumerate(fit.groups):
        cbs = num(g.cbs)
        if bands:
            cbs += f" ({num(bands[i]['low'], 0)} – {num(bands[i]['high'], 0)})"
        table.add_row(si(g.N) if g.N else "–", si(g.D) if g.D else "–", num(g.S_min), f"{g.E_min:.4g}",
                      num(g.B_crit), cbs)
    parts: list = [table]
    if fit.n_law:
        line = f"CBS = {fit.n_law[0]:.4g} · N^{fit.n_law[1]:.4f}  (N in millions of non-embedding params)"
        if "n_law" in iv:
            line += (f"; exp {iv['n_law']['exp']['low']:.3f} – {iv['n_law']['exp']['high']:.3f}")
        parts.append(Text(line))
    if fit.d_law:
        line = f"CBS = {fit.d_law[0]:.4g} · D^{fit.d_law[1]:.4f} sequences  (D in tokens)"
        if "d_law" in iv:
            line += f"; exp {iv['d_law']['exp']['low']:.3f} – {iv['d_law']['exp']['high']:.3f}"
        parts.append(Text(line))
    return Group(*parts)


def plot_loss_fit(path: str | Path, N, D, L, fit, boot=None, budgets=(1e21, 1e22, 1e23, 1e24)) -> None:
    """PNG: runs against fitted curves per model size, log-residuals, and the bootstrap cloud of N_opt."""
    import numpy as np

    from planner.laws.chinchilla import ChinchillaParams, compute_optimal, loss

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UsageError(f"--plot: {path} does not end in .png", hint="give a file name such as fit.png")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    N, D, L = (np.asarray(v, float) for v in (N, D, L))
    p = fit.params
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    edges = np.unique(np.quantile(np.log(N), np.linspace(0, 1, 7)))  # up to 6 size bins
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(edges) - 1, 1)))
    for k in range(max(len(edges) - 1, 1)):
        sel = (np.log(N) >= edges[k]) & ((np.log(N) <= edges[k + 1]) if k + 1 < len(edges) else True)
        if not sel.any():
            continue
        n_mid = float(np.exp(np.median(np.log(N[sel]))))
        axes[0].scatter(D[sel], L[sel], s=10, color=colours[k], label=f"N ≈ {si(n_mid)}")
        d_grid = np.geomspace(D.min(), D.max(), 100)
        axes[0].plot(d_grid, loss(n_mid, d_grid, p), color=colours[k])
    axes[0].set(xscale="log", xlabel="training tokens D", ylabel="final loss", title="runs and fitted law")
    axes[0].legend(fontsize=7)
    resid = np.log(loss(N, D, p)) - np.log(L)
    axes[1].scatter(6 * N * D, resid, s=10)
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set(xscale="log", xlabel="training FLOP C = 6ND", ylabel="log L̂ − log L", title="residuals")
    for C in budgets:
        n_best = float(compute_optimal(C, p)[0])
        if boot is not None:
            cloud = np.array([compute_optimal(C, ChinchillaParams(*row))[0] for row in boot.samples], dtype=float)
            axes[2].scatter(np.full(cloud.size, C) * np.exp(np.random.default_rng(0).normal(0, 0.05, cloud.size)),
                            cloud, s=2, alpha=0.2, color="tab:blue")
        axes[2].scatter([C], [n_best], color="tab:red", marker="x", s=60)
    axes[2].set(xscale="log", yscale="log", xlabel="training FLOP C", ylabel="compute-optimal N",
                title="N_opt: best fit (x) and bootstrap cloud")
    from planner.plots import save_figure

    save_figure(plt, fig, path, dpi=120)
