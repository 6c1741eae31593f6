"""Renderables for `planner calibrate` (builders: they return rich objects, never print).

plan_table: the probe plan (`--dry-run`); progress_table: the live display while probes run;
results_table: every finished or failed run and branch; outputs_table: what was written to --out DIR;
laws_summary: the fitted constants and CBS(D) law in one line each.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from planner.units import duration, si


def plan_table(plan) -> Table:
    """One row per probe of a planner.schemas.probe.ProbePlan, in packed start order."""
    t = Table(title=f"calibrate plan: {plan.preset} on {plan.n_devices} {plan.device} device(s), "
                    f"{plan.total_device_hours:.3g} device-h, ~{duration(plan.wall_clock_s)} wall, "
                    f"ladder span {plan.span:.1f}x")
    t.add_column("probe", no_wrap=True)
    for col in ("N", "D", "batch", "lr", "DDP", "start", "wall"):
        t.add_column(col, justify="right")
    for p in sorted(plan.probes, key=lambda p: p.start_s):
        t.add_row(p.spec.id, si(p.n_params), si(p.tokens_processed), si(p.spec.tokens_per_step),
                  f"{p.spec.lr:.1e}", str(p.spec.n_procs), duration(p.start_s), duration(p.est_wall_s))
    return t


def progress_table(rows) -> Table:
    """Live rows (planner.calibrate_run.Progress): state, device, step, loss, throughput, MFU, ETA."""
    t = Table()
    t.add_column("probe", no_wrap=True)
    for col in ("state", "device", "step", "loss", "tok/s", "MFU %", "ETA s"):
        t.add_column(col)
    for r in rows:
        step = f"{r.step}/{r.planned_steps}" if r.step is not None else ""
        t.add_row(r.probe_id, r.state, r.devices, step, _f(r.loss, ".3f"), _f(r.tokens_per_s, ".3g"),
                  _f(r.mfu and 100 * r.mfu, ".1f"), _f(r.eta_s, ".0f"))
    return t


def results_table(results) -> Table:
    """Every ProbeResult: size, tokens, held-out and EWA loss, throughput, B_simple, status or reason."""
    t = Table(title="probe results (held-out loss after each cooldown)")
    t.add_column("id", no_wrap=True)
    for col in ("N", "D", "loss", "EWA", "tok/s", "B_simple", "status"):
        t.add_column(col, justify="left" if col == "status" else "right")
    for r in sorted(results, key=lambda r: (r.kind, r.n_params, r.batch_tokens, r.tokens)):
        t.add_row(r.id, si(r.n_params), si(r.tokens), _f(r.loss, ".3f"), _f(r.ewa_loss, ".3f"),
                  si(r.tokens_per_s) if r.tokens_per_s else "", si(r.b_simple) if r.b_simple else "",
                  r.status if r.status == "ok" else f"failed: {r.reason}"[:60])
    return t


def outputs_table(written: dict[str, str], skipped: dict[str, str]) -> Table:
    """Files written to the results directory, and the ones left out with the reason."""
    t = Table(title="calibration results")
    t.add_column("file", no_wrap=True)
    t.add_column("contents")
    for path, what in written.items():
        t.add_row(path, what)
    for name, why in skipped.items():
        t.add_row(f"({name})", f"not written: {why}")
    return t


def laws_summary(written) -> Group:
    """The fitted loss law and CBS(D) law of a planner.calibrate_results.Written, with their units."""
    lines = []
    fit, units = written.law.fit, written.units
    if fit is not None:
        lines.append(Text(f"loss law ({units.loss}; N total params, D {units.tokens}): "
                          + ", ".join(f"{k}={getattr(fit, k):.4g}" for k in ("E", "A", "B", "alpha", "beta"))))
    if written.batch.fit is not None:
        coef, exp = written.batch.fit.d_law
        lines.append(Text(f"CBS(D) = {coef:.4g}·D^{exp:.3f} sequences (B_ref {written.batch.b_ref:g} sequences)"))
    return Group(*lines)


def _f(value, spec: str) -> str:
    return "" if value is None else format(value, spec)
