"""rich renderables for `planner recommend` and `planner laws`; builders only, nothing here prints."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from planner import units
from planner.schemas.laws import LawProfile
from planner.schemas.recommend import RecommendResult

CONSTANTS = ("E", "A", "B", "alpha", "beta")


def _change(new: float, old: float) -> str:
    """Relative change; beyond 11x either way as a factor: x12.3 or x7.22e3 up, ÷12.3 or ÷1.11e18 down
    (-100.0% would hide 1/470, and x8.97e-19 reads badly)."""
    if old == 0:
        return "—"
    ratio = new / old
    if ratio >= 11:
        return f"x{units.factor(ratio)}"
    if 0 < ratio <= 1 / 11:
        return f"÷{units.factor(1.0 / ratio)}"
    change = f"{ratio - 1:+.1%}"
    return "0.0%" if change in ("+0.0%", "-0.0%") else change  # the solvers' round-off carries no sign


def _saving(fraction: float) -> str:
    """The saving as a percentage; within 1e-9 of zero it is the solvers' round-off (1.48e-13%), shown as 0%."""
    return "0%" if abs(fraction) < 1e-9 else units.percent(fraction)


def recommendation(result: RecommendResult) -> Group:
    """Recommendation beside its baseline, the saving, bands when known, and the assumptions."""
    b = result.baseline
    unit = result.law.d_unit  # what the law's D counts: "bytes" for a byte-level law
    table = Table(title=f"Recommendation ({result.objective} objective)", title_justify="left")
    table.add_column("")
    table.add_column("recommended", justify="right")
    table.add_column("baseline", justify="right")
    table.add_column("change", justify="right")
    rows = [
        ("parameters", result.n_params, b.n_params, units.si),
        (f"training {unit}", result.n_tokens, b.n_tokens, units.si),
        (f"{unit} per parameter", result.tokens_per_param, b.n_tokens / b.n_params, units.ratio),
        ("training FLOPs", result.train_flops, b.train_flops, units.sci),
        ("inference FLOPs", result.inference_flops, b.inference_flops, units.sci),
        ("lifetime FLOPs", result.total_flops, b.total_flops, units.sci),
    ]
    for label, new, old, fmt in rows:
        table.add_row(label, fmt(new), fmt(old), _change(new, old))
    if result.cost_usd is not None and b.cost_usd is not None:
        table.add_row("lifetime cost", units.usd(result.cost_usd.total), units.usd(b.cost_usd.total),
                      _change(result.cost_usd.total, b.cost_usd.total))
        table.add_row("  training / inference", f"{units.usd(result.cost_usd.train)} / "
                      f"{units.usd(result.cost_usd.inference)}", "", "")
    table.add_row("predicted loss", f"{result.loss:.4f}", f"{result.loss:.4f}", "same")
    measure = "lifetime cost" if result.objective == "cost" else "lifetime FLOPs"
    parts = [
        table,
        Text(f"Baseline: {b.description}. Saving: {_saving(result.savings_fraction)} of {measure}."),
    ]
    if result.intervals is not None:
        parts.append(bands(result))
    if result.gpu_plan is not None:
        parts.extend([training(result), tradeoff(result)])
    parts.append(assumptions(result.assumptions))
    return Group(*parts)


def training(result: RecommendResult) -> Table:
    """Batch, optimizer settings and the GPU plan."""
    g, b, par = result.gpu_plan, result.batch, result.parallelism
    assert g is not None and b is not None and par is not None
    unit = result.law.d_unit
    bcrit = "n/a (CBS <= 1.2·B_ref)" if b.mccandlish_bcrit_tokens is None else units.si(b.mccandlish_bcrit_tokens)
    table = Table(title=f"Training plan on {result.gpu} ({g.mode})", title_justify="left", show_header=False)
    table.add_column("", no_wrap=True)
    table.add_column("")
    rows = [
        ("global batch", (f"{units.si(result.batch_size_tokens)} {unit} = {result.batch_size_sequences} x "
                         f"{g.shape['seq_len']} sequences, {units.plural(b.n_steps, 'step')}")),
        ("critical batch (CBS)", (f"{units.si(result.critical_batch_tokens)} {unit} ({b.critical_batch_definition}); "
                                 f"McCandlish B_crit {bcrit}, B_opt {units.si(b.b_opt_tokens)}")),
        ("learning rate", (f"{units.num(result.learning_rate)} peak, warmup {units.plural(b.warmup_steps, 'step')} "
                           f"({units.si(b.warmup_tokens)} {unit})")),
        ("Adam beta2 / EWA decay", f"{units.near_one(result.adam_beta2)} / {units.near_one(result.ewa_decay)}"),
        ("schedule", f"{result.schedule}: {b.schedule_reason}"),
        ("GPUs", (f"{result.n_gpus:,} ({units.plural(g.n_nodes, 'node')}): data {par.data} x tensor {par.tensor} x pipeline "
                 f"{par.pipeline}; ZeRO-{par.zero_stage}; micro-batch {par.micro_batch}, grad. accumulation {par.grad_accum}")),
        ("memory per GPU", (f"{result.memory_per_gpu_gib:.1f} GiB of {g.memory.usable_gib:.1f} usable "
                           f"(weights {g.memory.weights_gib:.1f}, grads {g.memory.gradients_gib:.1f}, optimizer "
                           f"{g.memory.optimizer_gib:.1f}, activations {g.memory.activations_gib:.1f}, logits "
                           f"{g.memory.logits_gib:.1f}; recompute {g.recompute})")),
        ("wall-clock", f"{units.duration(result.wall_clock_s)} at MFU {units.num(g.mfu)}"),
        ("GPU-hours", units.amount(result.gpu_hours)),
        ("training cost", "no price known (give --train-price)" if g.cost_usd is None
         else f"{units.usd(g.cost_usd)} at ${g.price_usd_per_hour:g}/GPU-h"),
    ]
    if g.token_overhead_fraction is None:
        rows.append(("token penalty", ("not derivable: the batch exceeds the CBS but McCandlish B_crit is undefined; "
                                       "wall-clock and cost assume none (lower bounds)")))
    elif g.token_overhead_fraction > 0:
        rows.append(("token penalty", f"+{units.percent(g.token_overhead_fraction)} {unit}: the batch exceeds the CBS"))
    for label, value in rows:
        table.add_row(label, value)
    return table


def tradeoff(result: RecommendResult) -> Table:
    """GPUs against wall-clock, GPU-hours, cost and token overhead: where more GPUs stop paying."""
    table = Table(title="More GPUs: where they stop paying", title_justify="left")
    unit = result.law.d_unit
    for col in ("GPUs", f"batch ({unit})", "wall-clock", "GPU-hours", "cost", f"extra {unit}"):
        table.add_column(col, justify="right")
    for row in result.tradeoff or []:
        mark = " *" if row.n_gpus == result.n_gpus else ""
        table.add_row(f"{row.n_gpus:,}{mark}", units.si(row.batch_tokens), units.duration(row.wall_clock_s),
                      units.amount(row.gpu_hours), "—" if row.cost_usd is None else units.usd(row.cost_usd),
                      "n/a" if row.token_overhead_fraction is None else units.percent(row.token_overhead_fraction))
    return table


def bands(result: RecommendResult) -> Table:
    iv = result.intervals
    assert iv is not None
    table = Table(
        title=f"Uncertainty over {iv.n_samples} bootstrap draws of the law"
        + (f" ({iv.n_infeasible} cannot reach the target: counted as unbounded)" if iv.n_infeasible else ""),
        title_justify="left",
    )
    for col in ("", "5%", "50%", "95%"):
        table.add_column(col, justify="right" if col else "left")
    for label, band, fmt in (
        ("parameters", iv.n_params, units.si),
        (f"training {result.law.d_unit}", iv.n_tokens, units.si),
        ("training FLOPs", iv.train_flops, units.sci),
        ("lifetime FLOPs", iv.total_flops, units.sci),
        ("GPU-hours", iv.gpu_hours, units.amount),
        ("training cost", iv.cost_usd, units.usd),
    ):
        if band is not None:
            table.add_row(label, *("unbounded" if v is None else fmt(v) for v in (band.p5, band.p50, band.p95)))
    return table


def assumptions(lines: list[str]) -> Group:
    return Group(Text("Assumptions:", style="bold"), *(Text(f"  - {line}") for line in lines))


def law_list(rows: list[tuple[str, LawProfile | None, str]]) -> Table:
    table = Table(title="Loss laws (--law NAME)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  caption="`planner laws show NAME` gives the source, units and uncertainty", caption_justify="left")
    for col in ("name", "E", "A", "B", "alpha", "beta", "N"):
        table.add_column(col, no_wrap=True)
    for name, law, error in rows:
        if law is None:
            table.add_row(name, "", "", "", "", "", f"[invalid] {error}")
            continue
        c = law.constants
        table.add_row(name, f"{c.E:.5g}", f"{c.A:.5g}", f"{c.B:.5g}", f"{c.alpha:.4g}", f"{c.beta:.4g}",
                      law.units.params.replace("_", "-"))
    return table


def law_detail(law: LawProfile, path: str, sha256: str) -> Group:
    table = Table(show_header=True, title=f"{law.name}: {law.title}", title_justify="left")
    table.add_column("constant")
    table.add_column("value", justify="right")
    table.add_column("std. error", justify="right")
    table.add_column("95% interval", justify="right")
    unc = law.uncertainty
    for name in CONSTANTS:
        se = unc.standard_errors.get(name) if unc and unc.standard_errors else None
        iv = unc.intervals_95.get(name) if unc and unc.intervals_95 else None
        table.add_row(name, f"{getattr(law.constants, name):.6g}", "" if se is None else f"{se:.4g}",
                      "" if iv is None else f"{iv.low:.4g} – {iv.high:.4g}")
    lines = [
        f"form: L = E + A/N^alpha + B/D^beta ({law.form})",
        f"loss: {law.units.loss}; N: {law.units.params.replace('_', '-')} parameters; D: {law.units.tokens}",
        f"dataset: {law.dataset}",
        f"source: {law.source}",
        f"file: {path} (sha256 {sha256})",
    ]
    if unc and unc.samples:
        lines.append(f"bootstrap samples: {len(unc.samples)} ({unc.method or 'method not stated'})")
    if law.notes:
        lines.append(f"notes: {law.notes}")
    return Group(table, *(Text(line) for line in lines))
