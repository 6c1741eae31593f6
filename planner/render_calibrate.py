"""Renderables for `planner calibrate` (builders: they return rich objects, never print).

plan_table: the probe plan (`--dry-run`); progress_table: the live display while probes run, and
progress_line its one-line form for a log (stderr not a terminal); results_table: every finished or
failed run and branch; outputs_table: what was written to --out DIR;
laws_summary: the fitted constants and CBS(D) law in one line each.
"""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from planner.units import duration, sci, si


def plan_table(plan) -> Group:
    """A three-line summary (layout; FLOPs, busy and allocated device-hours, wall clock; budget, ladder span)
    and one row per probe of a planner.schemas.probe.ProbePlan in packed start order; fits 80 columns (short
    number formats). Busy: each probe's wall clock x its devices; allocated: the schedule's wall clock x every
    device (what a held allocation costs); a budget caps the busy hours."""
    unit = "GPU" if plan.device == "cuda" else "core"
    nodes = getattr(plan, "nnodes", 1)
    where = (f"{plan.n_devices} {plan.device} device(s)" if nodes == 1 else
             f"{nodes} nodes x {plan.n_devices} {plan.device} devices, each probe DDP over all "
             f"{nodes * plan.n_devices}")
    n_all = nodes * plan.n_devices
    alloc = plan.allocated_device_hours
    alloc = plan.wall_clock_s * n_all / 3600 if alloc is None else alloc
    budget = (f"budget {plan.budget_device_hours:g} {unit}-h caps busy {unit}-h; "
              if plan.budget_device_hours is not None else "")
    head = Text(f"calibrate plan: {plan.preset} on {where}\n"
                f"{sci(plan.total_flops)} FLOPs, {plan.total_device_hours:.3g} {unit}-h busy, {alloc:.3g} {unit}-h "
                f"allocated ({n_all} x ~{duration(plan.wall_clock_s)} wall)\n"
                f"{budget}ladder span {plan.span:.1f}x")
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t.add_column("probe", no_wrap=True)
    for col in ("N", "D", "batch", "lr", "DDP", "FLOPs", "start", "wall"):
        t.add_column(col, justify="right", no_wrap=True)
    for p in sorted(plan.probes, key=lambda p: p.start_s):
        t.add_row(p.spec.id, si(p.n_params), si(p.tokens_processed), si(p.spec.tokens_per_step),
                  sci(p.spec.lr, 2).replace("e-0", "e-"), str(p.spec.n_procs), sci(p.flops, 2),
                  _dur(p.start_s), _dur(p.est_wall_s))
    return Group(head, t)


def progress_table(rows, overall: str | None = None):
    """Live rows (planner.calibrate_run.Progress): state, device, step, loss, throughput, MFU (GPU only), ETA,
    then the overall line; fits 80 columns (compact numbers, no box)."""
    gpu = any(r.mfu is not None or r.devices.startswith("gpu") for r in rows)
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t.add_column("probe", no_wrap=True)
    t.add_column("state", no_wrap=True)
    t.add_column("device", no_wrap=True)
    for col in ("step", "loss", "tok/s", *(("MFU%",) if gpu else ()), "ETA"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        step = f"{_n(r.step)}/{_n(r.planned_steps)}" if r.step is not None else ""
        cells = [r.probe_id, r.state, r.devices, step, _f(r.loss, ".3f"),
                 si(r.tokens_per_s) if r.tokens_per_s else ""]
        if gpu:
            cells.append(_f(r.mfu and 100 * r.mfu, ".1f"))
        cells.append(_dur(r.eta_s) if r.eta_s is not None else "")
        t.add_row(*cells)
    return Group(t, Text(overall)) if overall else t


def overall_line(rows, planned: dict[str, float], n_devices: int) -> str:
    """Counts by state and an overall ETA: the longest running probe's own ETA (its planned wall clock until it
    reports one), plus the queued probes' planned device-seconds spread over the devices; no ETA while
    some probe's time is unknown."""
    count = {state: sum(r.state == state for r in rows) for state in ("done", "running", "queued", "failed")}
    left = []  # (seconds, ranks) still to go per unfinished probe
    for r in rows:
        if r.state == "running":
            left.append((r.eta_s if r.eta_s is not None else
                         max(0.0, planned[r.probe_id] - (r.elapsed_s or 0.0)) if r.probe_id in planned else None, 0))
        elif r.state == "queued":
            left.append((planned.get(r.probe_id), r.n_procs))
    line = "overall: " + ", ".join(f"{n} {state}" for state, n in count.items() if n or state in ("done", "running"))
    skipped = sum(r.state == "skipped" for r in rows)
    line += f", {skipped} already done" if skipped else ""
    if left and all(t is not None for t, _ in left):
        running = max([t for t, ranks in left if ranks == 0] or [0.0])
        line += f"; ETA ~{_dur(running + sum(t * ranks for t, ranks in left) / max(1, n_devices))}"
    return line


def _n(value) -> str:
    """A step count in at most 5 characters: 12345, 123k, 1.2M."""
    if value is None:
        return "?"
    return str(value) if value < 100_000 else si(value)


def progress_line(r) -> str:
    """One running probe (planner.calibrate_run.Progress) as a log line: device, step, loss, tok/s, MFU, ETA."""
    parts = [f"{r.state:8s} {r.probe_id} {r.devices}"]
    if r.step is not None:
        parts.append(f"step {r.step}/{r.planned_steps if r.planned_steps is not None else '?'}")
    if r.loss is not None:
        parts.append(f"loss {r.loss:.3f}")
    if r.tokens_per_s:
        parts.append(f"{si(r.tokens_per_s)} tok/s")
    if r.mfu is not None:
        parts.append(f"MFU {100 * r.mfu:.1f}%")
    if r.eta_s is not None:
        parts.append(f"ETA {_dur(r.eta_s)}")
    elif r.elapsed_s is not None:
        parts.append(f"{_dur(r.elapsed_s)} elapsed")
    return "  ".join(parts)


def results_table(results) -> Table:
    """Every ProbeResult: size, tokens, held-out and EWA loss, throughput, B_simple, status or reason."""
    t = Table(title="probe results (held-out loss after each cooldown)", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("id", no_wrap=True)
    for col in ("N", "D", "loss", "EWA", "tok/s", "B_simple"):
        t.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    t.add_column("status", overflow="fold", min_width=6)
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


def _dur(seconds: float) -> str:
    """Compact duration for narrow columns: 49.6s, 6.67m, 1.22h, 2.1d."""
    for name, scale in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= scale:
            return f"{seconds / scale:.3g}{name}"
    return f"{seconds:.3g}s"


def _f(value, spec: str) -> str:
    return "" if value is None else format(value, spec)
