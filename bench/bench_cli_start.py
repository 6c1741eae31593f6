"""Cold-start time of `planner recommend` as a whole process, against reference processes in the same run.

Prints the median of N runs (default 10) for:
  - `python -c pass` (interpreter start-up alone)
  - `python -c "import numpy"` (the issue's yardstick: ~0.2 s on the project's 2-core machine)
  - `planner recommend --target-loss 2.3 --inference-tokens 2e12` (rich table)
  - the same with --json
  - Sardana et al.'s inference-aware computation done the way their reference scripts do it
    (numpy + scipy.optimize.newton on the same equation), as an in-repo stand-in for their
    `compute_optimal.py` (which is not vendored here)
Runs are interleaved so machine drift hits every command alike; ratios to `import numpy` are printed.

Usage: python bench/bench_cli_start.py [--runs 10]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

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


def commands() -> dict[str, list[str]]:
    planner = shutil.which("planner") or sys.exit("the `planner` console script is not on PATH (pip install -e .)")
    rec = [planner, "recommend", "--target-loss", "2.3", "--inference-tokens", "2e12"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
        "planner recommend (table)": rec,
        "planner recommend --json": [*rec, "--json"],
        "numpy+scipy newton (Sardana-style)": [sys.executable, "-c", SARDANA_STYLE],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    cmds = commands()
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for name, cmd in cmds.items():  # one warm-up each (page cache, .pyc files)
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    for _ in range(args.runs):
        for name, cmd in cmds.items():
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    numpy_median = statistics.median(times["python -c 'import numpy'"])
    print(f"{'command':40s} {'median s':>9s} {'min s':>7s} {'max s':>7s} {'/numpy':>7s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:40s} {med:9.3f} {min(ts):7.3f} {max(ts):7.3f} {med / numpy_median:7.2f}")


if __name__ == "__main__":
    main()
