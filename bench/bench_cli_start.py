"""Cold-start time of `planner recommend` as a whole process, against reference processes in the same run.

Prints the median of N runs (default 10) for:
  - `python -c pass` (interpreter start-up alone)
  - `python -c "import numpy"` (the issue's yardstick: ~0.2 s on the project's 2-core machine)
  - `planner recommend --target-loss 2.3 --inference-tokens 2e12` (rich table)
  - the same with --json
  - Sardana et al.'s inference-aware computation done the way their reference scripts do it
    (numpy + scipy.optimize.newton on the same equation), as an in-repo stand-in for their
    `compute_optimal.py` (which is not vendored here)
Runs are interleaved so machine drift hits every command alike; ratios to `import numpy` are printed,
for wall time and for the child's CPU time (user + sys), which other load on a shared machine disturbs
less than wall time.

`planner` is the console script installed beside this interpreter, started directly as `python` is
(not a pyenv shim on PATH, which runs bash and `pyenv exec` before Python starts).
With PYTHONDONTWRITEBYTECODE set and no .pyc files, planner's own modules are compiled at every run
(a wheel install has them precompiled); the script says so.

Usage: python bench/bench_cli_start.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

SARDANA_STYLE = """
import numpy as np
from scipy.optimize import newton
E, A, B, alpha, beta = 1.69, 406.4, 410.7, 0.336, 0.283
ell, D_inf = 2.3, 2e12
f = lambda D: B * (1 + beta / alpha) * D ** -beta + beta * B * D_inf / (3 * alpha) * D ** (-beta - 1) - (ell - E)
D = newton(f, 1e8, tol=1e-5, rtol=1e-8, maxiter=100)
N = (A / (ell - E - B * D ** -beta)) ** (1 / alpha)
print(N, D)
"""


ARGS = ["recommend", "--target-loss", "2.3", "--inference-tokens", "2e12"]


def commands() -> dict[str, list[str]]:
    script = Path(sysconfig.get_path("scripts")) / "planner"
    if not script.is_file():
        script = Path(shutil.which("planner") or sys.exit("the `planner` console script is not installed (pip install -e .)"))
    rec = [str(script), *ARGS]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
        "planner recommend (table)": rec,
        "planner recommend --json": [*rec, "--json"],
        "numpy+scipy newton (Sardana-style)": [sys.executable, "-c", SARDANA_STYLE],
    }


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and the child's CPU seconds (user + sys) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bytecode_note() -> str | None:
    package = Path(__file__).resolve().parents[1] / "planner"
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not (package / "__pycache__").is_dir():
        return ("note: PYTHONDONTWRITEBYTECODE is set and planner/ has no .pyc files, so planner's own modules "
                "are compiled at every run (a wheel install has them precompiled)")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    cmds = commands()
    walls: dict[str, list[float]] = {name: [] for name in cmds}
    cpus: dict[str, list[float]] = {name: [] for name in cmds}
    for name, cmd in cmds.items():  # one warm-up each (page cache, .pyc files)
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    for _ in range(args.runs):
        for name, cmd in cmds.items():
            wall, cpu = timed(cmd)
            walls[name].append(wall)
            cpus[name].append(cpu)
    numpy_wall = statistics.median(walls["python -c 'import numpy'"])
    numpy_cpu = statistics.median(cpus["python -c 'import numpy'"])
    print(f"{'command':40s} {'median s':>9s} {'min s':>7s} {'max s':>7s} {'/numpy':>7s} {'cpu s':>7s} {'/numpy':>7s}")
    for name, ts in walls.items():
        med, cpu = statistics.median(ts), statistics.median(cpus[name])
        print(f"{name:40s} {med:9.3f} {min(ts):7.3f} {max(ts):7.3f} {med / numpy_wall:7.2f} {cpu:7.3f} {cpu / numpy_cpu:7.2f}")
    note = bytecode_note()
    if note:
        print(note, file=sys.stderr)


if __name__ == "__main__":
    main()
