"""Benchmark of `planner fit` numerics on Epoch's 240 Chinchilla points (Besiroglu et al. 2024).

Times, in one run on this machine:
  * planner's batched multi-start fit from Hoffmann's 4,500 starts (workers=1 and 2), and a 1,000-sample bootstrap;
  * a plain loop of scipy L-BFGS-B calls, one per start, with our analytic gradient (all 4,500 starts),
    and with scipy's finite-difference gradient as in Epoch's notebook (a subset, extrapolated);
  * the `chinchilla` package from PyPI (kyo-takano), same data and the same sum-of-log-Huber objective
    (its loss_fn is a mean, so it is given Huber × n); it runs BFGS in long double over a process pool,
    so by default it gets a 243-start sub-grid, timed and extrapolated to 4,500 (--chinchilla-full: all);
  * a bootstrap done as a scipy loop (BFGS from the best fit, one call per resample), timed on a subset.

Usage: python bench/bench_fit.py [--chinchilla-full] [--skip-chinchilla]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.laws import fit as F
from planner.laws import fit_uncertainty as U
from planner.observations import read_runs

DATA = ROOT.parent / "shared" / "golden" / "epoch_chinchilla_fig4_runs.csv"
SUBGRID = {"e": [-1.0, 0.0, 1.0], "a": [0.0, 10.0, 20.0], "b": [0.0, 10.0, 20.0], "alpha": [0.0, 1.0, 2.0],
           "beta": [0.0, 1.0, 2.0]}
ROWS: list[tuple] = []


def record(method, starts, seconds, params=None, objective=None, note=""):
    ROWS.append((method, starts, seconds, params, objective, note))
    print(f"  done: {method}: {seconds:.2f} s {note}", file=sys.stderr, flush=True)


def lean_objective(N, D, L):
    """Per-start objective+gradient with the logs precomputed (the fairest scipy loop)."""
    lnN, lnD, logL = np.log(N), np.log(D), np.log(L)

    def f(x, w=None):
        a, b, e, al, be = x
        t = np.stack([a - al * lnN, b - be * lnD, np.full_like(lnN, e)])
        m = t.max(axis=0)
        ex = np.exp(t - m)
        s = ex.sum(axis=0)
        r = m + np.log(s) - logL
        ar = np.abs(r)
        rho = np.where(ar <= 1e-3, 0.5 * r * r, 1e-3 * (ar - 5e-4))
        psi = np.clip(r, -1e-3, 1e-3) / s
        if w is not None:
            rho, psi = rho * w, psi * w
        g1, g2 = psi * ex[0], psi * ex[1]
        return rho.sum(), np.array([g1.sum(), g2.sum(), (psi * ex[2]).sum(), -(g1 @ lnN), -(g2 @ lnD)])

    return f


def scipy_loop(N, D, L, starts, jac=True):
    from scipy.optimize import minimize

    f = lean_objective(N, D, L)
    fun = f if jac else (lambda x: f(x)[0])
    best, fs = (np.inf, None), []
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        for x0 in starts:
            r = minimize(fun, x0, jac=jac, method="L-BFGS-B")
            fs.append(r.fun)
            if r.fun < best[0]:
                best = (r.fun, r.x)
    return time.perf_counter() - t0, best, np.array(fs)


def chinchilla_fit(N, D, L, grid):
    import pandas as pd
    from chinchilla import Chinchilla
    from chinchilla._metrics import log_huber

    n = N.size
    project = tempfile.mkdtemp(prefix="bench-chinchilla-")
    pd.DataFrame({"C": 6 * N * D, "N": N, "D": D, "loss": L}).to_csv(os.path.join(project, "df.csv"), index=False)

    def sum_log_huber(y_true, y_pred):  # the package minimises a mean; × n makes it Hoffmann's sum
        return log_huber(y_true, y_pred, delta=1e-3) * n

    cc = Chinchilla(project_dir=project, param_grid=grid, loss_fn=sum_log_huber, log_level=40)
    t0 = time.perf_counter()
    cc.fit(parallel=True)
    return time.perf_counter() - t0, cc.get_params()


def grid_rows(grid):
    from itertools import product

    return np.array([(a, b, e, al, be) for e, a, b, al, be in product(*grid.values())], dtype=float)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chinchilla-full", action="store_true", help="run the chinchilla package on all 4,500 starts")
    ap.add_argument("--skip-chinchilla", action="store_true")
    ap.add_argument("--fd-subset", type=int, default=300, help="starts for the finite-difference scipy loop")
    args = ap.parse_args()
    runs = read_runs(DATA, params_col="Model Size", compute_col="Training FLOP", drop_top_loss=5)
    N, D, L = runs.N, runs.D, runs.L
    grid = F.hoffmann_grid()
    print(f"data: {runs.n_runs} runs; machine: {os.cpu_count()} cores; numpy {np.__version__}", file=sys.stderr)

    F.fit_loss_law(N, D, L, starts=grid[:50])  # warm-up (imports, caches)
    t0 = time.perf_counter()
    fit = F.fit_loss_law(N, D, L)
    record("planner batched L-BFGS + scipy polish", 4500, time.perf_counter() - t0, fit.params, fit.objective,
           f"{fit.n_starts_at_best} starts at best")
    t0 = time.perf_counter()
    fit2 = F.fit_loss_law(N, D, L, workers=2)
    record("planner, workers=2", 4500, time.perf_counter() - t0, fit2.params, fit2.objective)

    t0 = time.perf_counter()
    boot = U.bootstrap_loss_law(N, D, L, fit, n_samples=1000, seed=0)
    record("planner bootstrap (batched)", "1000 resamples", time.perf_counter() - t0, None, None,
           f"{boot.converged.mean():.1%} converged")

    sec, (fbest, xbest), fs = scipy_loop(N, D, L, grid, jac=True)
    at_best = int(np.sum(fs <= fit.objective * (1 + F.AT_BEST_RTOL)))
    record("scipy L-BFGS-B loop, analytic gradient", 4500, sec, F.x_to_params(xbest), fbest,
           f"{at_best} starts at best")
    sub = grid[np.random.default_rng(0).choice(4500, args.fd_subset, replace=False)]
    sec, (fbest, xbest), _ = scipy_loop(N, D, L, sub, jac=False)
    record("scipy L-BFGS-B loop, finite differences (Epoch)", args.fd_subset, sec, F.x_to_params(xbest), fbest,
           f"-> {sec * 4500 / args.fd_subset:.0f} s for 4500 (extrapolated)")

    from scipy.optimize import minimize

    f = lean_objective(N, D, L)
    W = U.resample_weights(N.size, 100, 0)
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        for w in W:
            minimize(f, fit.x, args=(w,), jac=True, method="BFGS")
    sec = time.perf_counter() - t0
    record("scipy BFGS bootstrap loop, analytic gradient", "100 resamples", sec, None, None,
           f"-> {sec * 10:.0f} s for 1000 (extrapolated)")

    sub_rows = grid_rows(SUBGRID)
    t0 = time.perf_counter()
    fsub = F.fit_loss_law(N, D, L, starts=sub_rows)
    record("planner on the 243-start sub-grid", 243, time.perf_counter() - t0, fsub.params, fsub.objective)
    if not args.skip_chinchilla:
        try:
            if args.chinchilla_full:
                g = {"e": list(np.arange(-1, 1.01, 0.5)), "a": list(np.arange(0, 25.1, 5.0)),
                     "b": list(np.arange(0, 25.1, 5.0)), "alpha": list(np.arange(0, 2.01, 0.5)),
                     "beta": list(np.arange(0, 2.01, 0.5))}
            else:
                g = SUBGRID
            n_st = int(np.prod([len(v) for v in g.values()]))
            sec, p = chinchilla_fit(N, D, L, g)
            obj = F.objective_value_grad(F.params_to_x(F.ChinchillaParams(**p)), N, D, L)[0]
            record("chinchilla 0.2.0 (BFGS, long double, 2 procs)", n_st, sec, F.ChinchillaParams(**p), obj,
                   "" if n_st == 4500 else f"-> {sec * 4500 / n_st:.0f} s for 4500 (extrapolated)")
        except Exception as exc:  # noqa: BLE001 - report why the peer could not run
            print(f"chinchilla package could not run: {type(exc).__name__}: {exc}", file=sys.stderr)

    print()
    print(f"{'method':50s} {'starts':>15s} {'wall s':>8s} {'objective':>12s} {'A':>8s} {'B':>8s} {'E':>7s} "
          f"{'alpha':>7s} {'beta':>7s}  note")
    for method, starts, sec, p, obj, note in ROWS:
        ps = (f"{p.A:8.2f} {p.B:8.1f} {p.E:7.4f} {p.alpha:7.4f} {p.beta:7.4f}" if p is not None
              else " " * 42)
        os_ = f"{obj:12.9f}" if obj is not None else " " * 12
        print(f"{method:50s} {starts!s:>15s} {sec:8.2f} {os_} {ps}  {note}")


if __name__ == "__main__":
    main()
