"""report.md and the plots of `planner calibrate --out DIR`, with the comparison against the prior law."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from planner.calibrate_fits import (
    BATCH,
    CBS_CSV,
    FLOOR_RTOL,
    LADDER_CSV,
    LAW,
    PRIOR_LAW,
    BatchOutcome,
    LawOutcome,
    Units,
    floor_flags,
    ladder_rows,
)
from planner.errors import PlannerError
from planner.schemas.probe import ProbePlan, ProbeResult

# ----------------------------------------------------------------------------- comparison with the prior


def prior_law():
    """The prior law's profile (the planner's default), or None when it cannot be read."""
    from planner import resolve

    try:
        return resolve.load_law(PRIOR_LAW).profile
    except PlannerError:
        return None


def budgets_for(rows: list[ProbeResult]) -> list[float]:
    """The largest probe's training FLOPs (6ND), 100x that, and 1e21 (a production-scale budget)."""
    c = max(6.0 * r.n_params * r.tokens for r in rows)
    return [c, 100.0 * c, 1e21]


def recommendations(constants: dict, budgets: list[float]) -> list[dict]:
    """Compute-optimal N and D at each budget (Hoffmann eq. 4)."""
    from planner.laws.chinchilla import ChinchillaParams, compute_optimal

    p = ChinchillaParams(**{k: constants[k] for k in ("E", "A", "B", "alpha", "beta")})
    out = []
    for c in budgets:
        n, d = compute_optimal(c, p)
        out.append({"flops": c, "N": float(n), "D": float(d), "D_per_N": float(d / n)})
    return out


# ----------------------------------------------------------------------------- report


@dataclass
class Written:
    """What write_results produced, for the CLI's summary and exit status."""

    out_dir: Path
    files: dict[str, str]
    skipped: dict[str, str]
    law: LawOutcome
    batch: BatchOutcome
    units: Units
    n_ok: int
    n_failed: int
    warnings: list[str] = field(default_factory=list)

    def _recovery(self) -> dict | None:
        """The known-entropy check (synthetic sources): the floor, fitted E, and whether E clears it."""
        h, fit = self.units.entropy_nats, self.law.fit
        if h is None:
            return None
        return {"entropy_nats": h, "unit": self.units.per, "E": None if fit is None else fit.E,
                "passes": None if fit is None else not floor_flags(fit, self.units)}

    def to_dict(self) -> dict:
        fit = self.law.fit.to_dict() if self.law.fit is not None else None
        return {"out": str(self.out_dir), "files": self.files, "skipped": self.skipped, "n_ok": self.n_ok,
                "n_failed": self.n_failed, "units": self.units.__dict__, "loss_law": fit,
                "loss_law_problem": self.law.problem, "recovery_check": self._recovery(),
                "batch_law": self.batch.fit.to_dict() if self.batch.fit is not None else None,
                "batch_law_problem": self.batch.problem, "batch_dropped_targets": self.batch.dropped,
                "warnings": self.warnings}


def report_markdown(w: Written, results: list[ProbeResult], plan: ProbePlan | None, mfu: list[dict]) -> str:
    """The short markdown report: plan, probes, constants, flags, prior law, CBS, MFU, next steps."""
    lines = ["# Calibration report", ""]
    lines += _plan_section(plan, results, w)
    if w.units.byte_level:
        lines += [("> **Units warning.** The probes trained on byte-level text: the loss is in **nats per byte** "
                  "and D counts **bytes**. These constants are NOT comparable with token-level published "
                  f"constants such as {PRIOR_LAW} (nats per token of a 32k SentencePiece vocabulary). "
                  "Convert with L_tok = L_byte x (bytes/token) and D_tok = D_bytes / (bytes/token) only as a rough "
                  "guide; calibrate on your own tokenised corpus for production constants (calibration.md §1.5)."),
                  ""]
    lines += _law_section(w, results)
    lines += _batch_section(w)
    lines += _mfu_section(mfu)
    lines += _next_section(w, mfu)
    return "\n".join(lines) + "\n"


def _allocated(plan) -> str:
    alloc = plan.allocated_device_hours
    return "" if alloc is None else f" ({alloc:.3g} allocated: the schedule's wall clock x every device)"


def _plan_section(plan, results, w: Written) -> list[str]:
    out = ["## Plan and probes", ""]
    if plan is not None:
        out.append(f"- preset **{plan.preset}** on {plan.n_devices} {plan.device} device(s), data `{plan.data}`: "
                   f"{len(plan.probes)} probes ({sum(p.spec.kind == 'ladder' for p in plan.probes)} ladder sizes, "
                   f"{sum(p.spec.kind == 'cbs' for p in plan.probes)} CBS batch sizes), "
                   f"{plan.total_device_hours:.3g} device-hours planned busy{_allocated(plan)}, "
                   f"ladder span {plan.span:.1f}x")
    out.append(f"- results: {w.n_ok} runs/branches finished, {w.n_failed} failed")
    for r in sorted((r for r in results if r.status == "failed"), key=lambda r: r.id):
        out.append(f"  - `{r.id}` failed: {' '.join(str(r.reason).split())[:200]}")
    return out + [""]


def _law_section(w: Written, results) -> list[str]:
    law = w.law
    out = ["## Loss law L(N, D) = E + A/N^alpha + B/D^beta", "",
           (f"Fit points: {law.n_points} of {law.planned_points} planned post-decay ladder points over "
           f"{law.n_sizes} of {law.planned_sizes} sizes (N total parameters; loss {w.units.loss}; D "
           f"{w.units.tokens})."), ""]
    if law.problem:
        out += [f"**No law written: {law.problem}.**", ""]
    fit = law.fit
    out += _floor_paragraph(fit, w.units)
    if fit is None:
        return out
    prior = prior_law()
    iv = (fit.intervals or {}).get("params") or {}
    head = f"| constant | calibrated | 95% bootstrap interval | prior {PRIOR_LAW} |"
    out += [head, "| --- | ---: | ---: | ---: |"]
    for k in ("E", "A", "B", "alpha", "beta"):
        band = f"{iv[k]['low']:.4g} - {iv[k]['high']:.4g}" if k in iv else ""
        pv = f"{getattr(prior.constants, k):.4g}" if prior else "(unreadable)"
        out.append(f"| {k} | {getattr(fit, k):.4g} | {band} | {pv} |")
    out += ["", (f"Objective: {fit.objective_name} = {fit.objective:.4g}; {fit.n_starts_at_best} of {fit.n_starts} "
                f"starts reached the best fit."), ""]
    if law.boot is not None:
        out += [(f"Intervals: {law.boot.method}; each group is one probe size with its cooldown branches, whose "
                 "points share one run (calibration.md §1.4)."), ""]
    if fit.flags:
        out += ["Flags:", ""] + [f"- **{flag}**" for flag in fit.flags] + [""]
    if any(flag.startswith("unidentified") for flag in fit.flags):
        out += [("**The data cannot identify this law**: the bootstrap intervals span orders of magnitude. These "
                "constants show that the pipeline works; do not plan with them (calibration.md §1.3: 4-5 sizes "
                "over >= 15x in N, 3-4 post-decay points each)."), ""]
    if any(flag.startswith("boundary: E") and "is at 0" in flag for flag in fit.flags):
        out += [("E sits at its boundary (0): the probes are too small to show a loss floor, so E and everything "
                "dominated by it (losses of large models, the frontier at large budgets) are not identified "
                "(calibration.md §5)."), ""]
    pinned = [flag.split(":", 1)[1].split("=", 1)[0].strip() for flag in fit.flags
              if flag.startswith("boundary:") and "the fitter's" in flag]
    if pinned:
        out += [(f"**Boundary solution**: {' and '.join(pinned)} sit{'s' if len(pinned) == 1 else ''} on the fitter's "
                 "bound (planner.laws.fit.BOUNDS), so the optimiser stopped at the edge of its box, not at an optimum "
                 "of the data; the constants are not estimates (calibration.md §5). `planner fit --write-law` "
                 "refuses such a fit without --force."), ""]
    if prior is not None:
        out += _comparison(fit, prior, results, w.units)
    return out


def _floor_paragraph(fit, units: Units) -> list[str]:
    """The recovery check of a known-entropy source (calibration.md §4.2); nothing for real data."""
    h = units.entropy_nats
    if h is None:
        return []
    out = (f"**Known entropy floor**: the synthetic source's exact entropy rate is {h:.4g} {units.per}; a fit "
           f"recovers it when E >= {h:.4g} (within {FLOOR_RTOL:.0%}).")
    if fit is not None:
        iv = ((fit.intervals or {}).get("params") or {}).get("E")
        band = f" (95% interval {iv['low']:.4g} - {iv['high']:.4g})" if iv else ""
        verdict = "**fails the recovery check**" if floor_flags(fit, units) else "passes the recovery check"
        out += f" Fitted E = {fit.E:.4g}{band}: {verdict}."
    return [out, ""]


def _comparison(fit, prior, results, units: Units) -> list[str]:
    from planner.units import sci, si

    budgets = budgets_for(ladder_rows(results))
    mine = recommendations(fit.to_dict(), budgets)
    theirs = recommendations(prior.constants.model_dump(), budgets)
    out = ["### What each law recommends (compute-optimal, Hoffmann eq. 4)", "",
           f"| budget 6ND (FLOP) | calibrated N | calibrated D | D/N | {PRIOR_LAW} N | {PRIOR_LAW} D | D/N |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for a, b in zip(mine, theirs):
        out.append(f"| {sci(a['flops'])} | {si(a['N'])} | {si(a['D'])} | {a['D_per_N']:.3g} | {si(b['N'])} | "
                   f"{si(b['D'])} | {b['D_per_N']:.3g} |")
    out += ["", (f"The first budget is the largest probe's own compute. Calibrated D counts {units.tokens}; "
                f"{PRIOR_LAW} counts tokens ({prior.units.loss})."), ""]
    return out


def _batch_section(w: Written) -> list[str]:
    b = w.batch
    out = ["## Critical batch size (Zhang et al. 2024, 20% overhead)", ""]
    if b.rows:
        out.append(f"Steps to target for {len({r['target'] for r in b.rows})} loss targets across "
                   f"{len({r['batch_size_sequences'] for r in b.rows})} batch sizes; B_ref = {b.b_ref:g} sequences "
                   "(the sweep's smallest batch, inside the linear-scaling regime); D = the tokens that batch "
                   "needed to reach the target.")
        out.append("")
    for d in b.dropped:
        out.append(f"- dropped {d}")
    if b.dropped:
        out.append("")
    if b.problem:
        out += [f"**No batch law written: {b.problem}.**", ""]
    if b.fit is not None:
        out += ["| tokens D | S_min (steps) | E_min (seq) | B_crit (seq) | CBS (seq) |",
                "| ---: | ---: | ---: | ---: | ---: |"]
        out += [f"| {g.D:.4g} | {g.S_min:.1f} | {g.E_min:.4g} | {g.B_crit:.1f} | {g.cbs:.1f} |" for g in b.fit.groups]
        coef, exp = b.fit.d_law
        out += ["", f"CBS(D) = {coef:.4g} * D^{exp:.3f} sequences of {b.rows[0]['seq_len']} (D in {w.units.tokens}).",
                ""]
        out += [f"- **{flag}**" for flag in b.flags] + ([""] if b.flags else [])
    return out


def _mfu_section(mfu: list[dict]) -> list[str]:
    if not mfu:
        return []
    out = ["## Throughput and MFU", "", "| probe | params | ranks | device | tokens/s | GFLOP/s | MFU | MFU (6N) |",
           "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for m in mfu:
        pct = lambda v: "" if v is None else f"{100 * v:.1f}%"
        out.append(f"| {m['probe']} | {m['params']:,} | {m['n_procs']} | {m['device']} | {m['tokens_per_s']:.4g} | "
                   f"{m['flops_per_s'] / 1e9:.3g} | {pct(m['mfu'])} | {pct(m['mfu_6n'])} |")
    if all(m["mfu"] is None for m in mfu):
        out += ["", "No MFU on CPU (no dense peak to divide by); GFLOP/s counts (6N + 12LdT) per token."]
    return out + [""]


def _next_section(w: Written, mfu: list[dict]) -> list[str]:
    out = ["## Use it", ""]
    if w.law.profile is None:
        return out + ["No law was written; see above."]
    d = w.out_dir
    flags = [f"--law {d / LAW}"]
    if w.batch.profile is not None:
        flags.append(f"--batch-law {d / BATCH}")
    ladder = [m for m in mfu if m["kind"] == "ladder" and m["mfu_6n"]]
    if ladder:
        # The largest probe's measured MFU, a lower bound for a production-size model (h100-probe-mfu.md),
        # in the 6N convention: recommend's wall-clock is 6·N·D/(GPUs·peak·MFU) (hardware.md §7.4), so
        # the attention-inclusive MFU would understate the time by mfu/mfu_6n (1.17x at 200M, 1.6x at 3.5M).
        flags.append(f"--mfu {max(ladder, key=lambda m: m['params'])['mfu_6n']:.3f}")
    sizes = [m["params"] for m in mfu if m["kind"] == "ladder"]
    flags.append(f"--params {max(sizes) if sizes else 'N'}")
    out += [f"    planner recommend {' '.join(flags)} --json", "",
            (f"(refit by hand: `planner fit {d / LADDER_CSV} --bootstrap 1000`, "
            f"`planner fit-cbs {d / CBS_CSV} --b-ref {w.batch.b_ref or 256:g}`.)")]
    return out


# ----------------------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss(path: Path, results: list[ProbeResult], fit, units: Units) -> None:
    """Loss against tokens per size: stable-phase curve, post-decay points, and the fitted law."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    rows = ladder_rows(results)
    sizes = sorted({r.n_params for r in rows})
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(sizes), 1)))
    for c, n in zip(colours, sizes):
        pts = [r for r in rows if r.n_params == n]
        main = next((r for r in pts if r.id == r.probe_id), None)
        if main is not None:
            stable = [(p.tokens, p.loss) for p in main.curve[:-1] if p.loss is not None and p.tokens > 0]
            if stable:
                ax.plot(*zip(*stable), color=c, alpha=0.35, lw=1)
        ax.scatter([r.tokens for r in pts], [r.loss for r in pts], color=c, zorder=3, label=f"N = {n:,}")
        if fit is not None:
            grid = np.geomspace(min(r.tokens for r in pts) / 2, max(r.tokens for r in pts) * 2, 100)
            ax.plot(grid, fit.E + fit.A / n**fit.alpha + fit.B / grid**fit.beta, color=c, ls="--")
    title = "post-decay points (dots), stable phase (faint), fitted law (dashed)"
    ax.set(xscale="log", xlabel=units.tokens, ylabel=f"held-out loss, {units.loss.split(' (')[0]}", title=title)
    ax.title.set_fontsize(9)
    if sizes:
        ax.legend(fontsize=7)
    _save(fig, plt, path)


def plot_cbs(path: Path, batch: BatchOutcome, units: Units) -> None:
    """Steps to target against batch size per target, the fitted R(B) = a + b/B, and the CBS marked."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    targets = sorted({r["target"] for r in batch.rows}, reverse=True)
    colours = plt.cm.plasma(np.linspace(0, 0.85, max(len(targets), 1)))
    groups = {g.D: g for g in batch.fit.groups} if batch.fit is not None else {}
    for c, t in zip(colours, targets):
        rows = [r for r in batch.rows if r["target"] == t]
        B = [r["batch_size_sequences"] for r in rows]
        ax.scatter(B, [r["steps_to_target"] for r in rows], color=c, label=f"{t:g}")
        g = groups.get(float(rows[0]["tokens_at_target"]))
        if g is not None:
            grid = np.geomspace(min(B) / 1.5, max(B) * 1.5, 100)
            ax.plot(grid, g.S_min + g.E_min / grid, color=c, ls="--")
            ax.scatter([g.cbs], [g.S_min + g.E_min / g.cbs], color=c, marker="*", s=160, edgecolor="k", zorder=4)
    ref = f", B_ref = {batch.b_ref:g}" if batch.b_ref else ""
    ax.set(xscale="log", yscale="log", xlabel="batch size (sequences)", ylabel="steps to target (EWA loss)",
           title=f"steps to target; fitted R(B) = a + b/B (dashed), CBS (star){ref}")
    ax.title.set_fontsize(9)
    _plain_log_ticks(ax, sorted({r["batch_size_sequences"] for r in batch.rows}))
    if targets:
        ax.legend(fontsize=6, ncol=2, title=f"EWA loss target, {units.per}", title_fontsize=7)
    _save(fig, plt, path)


def _plain_log_ticks(ax, x_ticks) -> None:
    """Plain numbers on log axes that span about a decade: x at the measured values, y at 1-2-5 steps.

    matplotlib otherwise labels the minor ticks of a narrow log range as "3×10⁰ 4×10⁰ 6×10⁰".
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.set_xticks(x_ticks)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(NullFormatter())


def _save(fig, plt, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    try:
        fig.tight_layout()
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
