"""rich renderables for `planner hardware` and `planner profiles validate`; builders only."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from planner.schemas.hardware import HardwareProfile

DTYPES = ("bf16", "fp8", "int8", "tf32", "fp32")


def _peak(profile: HardwareProfile, dtype: str) -> str:
    value = profile.peak_tflops_dense.get(dtype)  # type: ignore[call-overload]
    return "—" if value is None else f"{value:g}"


def hardware_list(rows) -> Table:
    table = Table(title="Accelerators (--gpu NAME); dense TFLOP/s", title_justify="left", box=box.SIMPLE_HEAD,
                  caption="`planner hardware show NAME` gives bandwidths, prices and sources", caption_justify="left")
    for col in ("name", "bf16", "fp8", "mem GB", "$/h", "MFU prior"):
        table.add_column(col, no_wrap=True, justify="left" if col == "name" else "right")
    for name, hw, error in rows:
        if hw is None:
            table.add_row(name, f"[invalid] {error}", "", "", "", "")
            continue
        price = "—" if hw.price_usd_per_hour is None else f"{hw.price_usd_per_hour:g}"
        table.add_row(name, _peak(hw, "bf16"), _peak(hw, "fp8"), f"{hw.memory_gb:g}", price, f"{hw.mfu_prior:g}")
    return table


def hardware_detail(hw: HardwareProfile, path: str, sha256: str) -> Group:
    table = Table(title=f"{hw.name}: {hw.title}", title_justify="left", show_header=False)
    table.add_column("", no_wrap=True)
    table.add_column("")
    peaks = ", ".join(f"{k} {v:g}" for k, v in hw.peak_tflops_dense.items() if v is not None)
    rows = [
        ("dense peak TFLOP/s", peaks),
        ("memory", f"{hw.memory_gb:g} {hw.memory_unit}, {hw.memory_bw_tbps:g} TB/s"),
        ("scale-up", "—" if hw.scale_up_gbps_unidirectional is None
         else f"{hw.scale_up_gbps_unidirectional:g} GB/s one way, domain {hw.scale_up_domain or '?'}"),
        ("scale-out", "—" if hw.scale_out_gbit_per_accelerator is None
         else f"{hw.scale_out_gbit_per_accelerator:g} Gbit/s per accelerator"),
        ("per node", str(hw.accelerators_per_node)),
        ("default price", "none (give --train-price)" if hw.price_usd_per_hour is None
         else f"${hw.price_usd_per_hour:g}/h: {hw.price_note or ''}"),
        ("MFU prior", f"{hw.mfu_prior:g}: {hw.mfu_prior_source}"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    lines = [Text("sources:"), *(Text(f"  - {s}") for s in hw.source), Text(f"file: {path} (sha256 {sha256})")]
    if hw.prices:
        lines.insert(0, Text("prices: " + "; ".join(f"${p.usd_per_hour:g} {p.provider} ({p.as_of})" for p in hw.prices)))
    return Group(table, *lines)


def validation_table(results) -> Table:
    table = Table(title="Profile validation", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("result", "kind", "name", "file / problem"):
        table.add_column(col)
    for r in results:
        table.add_row("ok" if r.ok else "INVALID", r.kind, r.name, r.path if r.ok else r.message)
    return table
