"""bench/bench_probe_mfu.py in its CPU miniature: both tables come out with finite, positive MFU.

The real run is on one H100 (see the script's docstring); this only checks that the planner probe,
the plain loop and the packed workers all run and that the tables and JSON are complete (slow), and
the script's argument and time-budget guards (fast).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "bench_probe_mfu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_probe_mfu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_budget_refuses_a_measurement_whose_compile_would_not_fit(bench):
    now = [0.0]
    budget = bench.Budget(100.0, 0.0, clock=lambda: now[0])
    now[0] = 50.0
    assert budget.refuse("planner") is None  # nothing compiled yet: no estimate
    budget.compiled("planner", 60.0)
    assert "compiled for 60 s" in budget.refuse("planner")  # 50 s left
    assert budget.refuse("plain") is None  # its own kind's estimate
    now[0] = 101.0
    assert "past --budget-s 100" in budget.refuse("plain")


def test_fp32_with_a_half_precision_kernel_is_refused(bench, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--device", "cuda", "--dtype", "fp32", "--attention", "flash"])
    assert "needs --dtype bf16" in capsys.readouterr().err
    assert bench.parse_args(["--device", "cuda", "--attention", "cudnn"]).dtype == "bf16"


def table(lines: list[str], header_start: str) -> list[dict[str, str]]:
    """The markdown table whose header line starts with header_start, as one dict per row."""
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header_start))
    head = [c.strip() for c in lines[start].strip().strip("|").split("|")]
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append(dict(zip(head, (c.strip() for c in ln.strip().strip("|").split("|")))))
    return rows


def percent(cell: str) -> float:
    value = float(cell.rstrip("%"))
    assert math.isfinite(value) and value > 0, cell
    return value


@pytest.mark.slow
def test_tiny_cpu_benchmark_prints_both_tables(tmp_path):
    out = tmp_path / "mfu.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--json", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()

    main = table(lines, "| size | params |")
    assert [r["size"] for r in main] == ["1×32", "2×64"]
    for r in main:
        for col in ("planner MFU", "MFU 6N-only", "plain MFU"):
            percent(r[col])
        assert int(r["planner tok/s"].replace(",", "")) > 0 and int(r["plain tok/s"].replace(",", "")) > 0
    pack = table(lines, "| size | K |")
    assert [(p["size"], p["K"]) for p in pack] == [("1×32", "2"), ("mix 1×32+2×64", "2")]
    for p in pack:
        percent(p["aggregate MFU"])
        assert int(p["aggregate tok/s"].replace(",", "")) > 0

    raw = json.loads(out.read_text())
    assert raw["meta"]["device"] == "cpu" and raw["skipped"] == []
    for row in raw["rows"]:
        for side in ("planner", "plain"):
            m = row[side]
            assert all(math.isfinite(m[k]) and m[k] > 0 for k in ("tokens_per_s", "mfu", "mfu_6n")), row
            assert m["mfu_6n"] < m["mfu"]  # the attention term counts
    for p in raw["pack"]:
        assert len(p["per_proc_tokens_per_s"]) == 2 and all(v > 0 for v in p["per_proc_tokens_per_s"])
        assert 0.5 * p["planned_s"] < p["window_s"] <= 2 * p["planned_s"]  # the workers did overlap
        assert math.isfinite(p["mfu"]) and p["mfu"] > 0
