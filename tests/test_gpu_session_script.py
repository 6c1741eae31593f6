"""bench/gpu_session.sh: parses, refuses an unknown step, and each step's command line names real flags."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "bench" / "gpu_session.sh"


def test_script_parses_and_refuses_an_unknown_step(tmp_path):
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    r = subprocess.run(["bash", str(SCRIPT), "nope"], capture_output=True, text=True, env={"OUT": str(tmp_path),
                       "PATH": "/usr/bin:/bin"}, check=False)
    assert r.returncode == 2 and "unknown step: nope" in r.stderr


def test_benchmark_flags_the_script_uses_exist():
    help_text = subprocess.run([sys.executable, str(SCRIPT.parent / "bench_probe_mfu.py"), "--help"], capture_output=True,
                               text=True, check=True).stdout
    used = set(re.findall(r"--[a-z][a-z-]+", SCRIPT.read_text().split("case \"$step\" in\ntests)")[1]))
    used -= {"--gpus", "--budget-gpu-hours", "--out", "-m"}  # planner calibrate's, checked by its own tests
    missing = [flag for flag in used if flag not in help_text and flag not in ("--query-gpu", "--format")]
    assert not missing, missing
