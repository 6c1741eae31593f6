"""A batched, bound-constrained L-BFGS: many independent small minimisations advanced together.

Used by :mod:`planner.laws.fit` to run Hoffmann's 4,500 starting points (and bootstrap refits) as one
array computation instead of 4,500 scipy calls. Pure numpy; no I/O.
"""

from __future__ import annotations

import numpy as np


def lbfgs_batched(fun, Z0, lo, hi, *, m=10, max_iter=500, ftol=2.2e-9, pgtol=1e-5, fscale=1.0, progress=None):
    """Minimise fun(rows, Z) -> (f, G) independently for every row of Z0 within lo <= z <= hi.

    L-BFGS two-loop recursion (Nocedal & Wright 2006, Alg. 7.4) per row, bounds by projection with the
    active components frozen, Armijo backtracking (c1 = 1e-4, safeguarded quadratic interpolation) on the
    projected path, value and gradient computed together at each trial point. A row stops when its
    decrease (f_k − f_k+1) <= ftol·max(|f_k|, |f_k+1|, fscale) or its projected gradient's max-norm
    <= pgtol (the defaults are scipy L-BFGS-B's tests and defaults; see TIGHT), when the line search
    fails, or after max_iter iterations (then it is not converged). Rows that stop leave the batch, so
    later iterations cost only what is still running. Returns (Z, f, n_iter, converged) per row.
    """
    Z = np.clip(np.array(Z0, dtype=float), lo, hi)
    k_rows = Z.shape[0]
    all_rows = np.arange(k_rows)
    f, G = fun(all_rows, Z)
    S_h, Y_h, R_h = np.zeros((m, k_rows, Z.shape[1])), np.zeros((m, k_rows, Z.shape[1])), np.zeros((m, k_rows))
    gamma = np.ones(k_rows)
    first = np.ones(k_rows, dtype=bool)
    active = np.isfinite(f)
    converged = np.zeros(k_rows, dtype=bool)
    n_iter = np.zeros(k_rows, dtype=int)
    for it in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        z, g = Z[idx], G[idx]
        free = ~(((z <= lo) & (g > 0)) | ((z >= hi) & (g < 0)))
        pg = np.where(free, g, 0.0)
        done = np.abs(pg).max(axis=1) <= pgtol
        converged[idx[done]] = True
        active[idx[done]] = False
        keep = ~done
        idx, z, g, pg, free = idx[keep], z[keep], g[keep], pg[keep], free[keep]
        if idx.size == 0:
            break
        slot = it % m
        order = [(slot - 1 - j) % m for j in range(m)]  # newest first
        q = pg.copy()
        alphas = []
        for j in order:
            s_j, y_j, r_j = S_h[j, idx] * free, Y_h[j, idx] * free, R_h[j, idx]
            a_j = r_j * np.einsum("ij,ij->i", s_j, q)
            q -= a_j[:, None] * y_j
            alphas.append(a_j)
        d = gamma[idx, None] * q
        for j, a_j in zip(reversed(order), reversed(alphas)):
            s_j, y_j, r_j = S_h[j, idx] * free, Y_h[j, idx] * free, R_h[j, idx]
            b_j = r_j * np.einsum("ij,ij->i", y_j, d)
            d += s_j * (a_j - b_j)[:, None]
        d = -d * free
        slope = np.einsum("ij,ij->i", pg, d)
        bad = ~(slope < 0) | ~np.isfinite(slope)
        if bad.any():  # not a descent direction: restart the memory of those rows with steepest descent
            d[bad] = -pg[bad]
            R_h[:, idx[bad]] = 0.0
            gamma[idx[bad]] = 1.0
            first[idx[bad]] = True
        t = np.where(first[idx], np.minimum(1.0, 1.0 / np.maximum(np.abs(pg).sum(axis=1), 1e-300)), 1.0)
        f0 = f[idx]
        z_new, G_new = np.empty_like(z), np.empty_like(z)
        f_new = np.full(idx.size, np.inf)
        pending = np.arange(idx.size)
        for _ in range(40):  # value and gradient at each trial: the accepted one needs no second call
            zt = np.clip(z[pending] + t[pending, None] * d[pending], lo, hi)
            ft, gt = fun(idx[pending], zt)
            decrease = np.einsum("ij,ij->i", g[pending], zt - z[pending])
            ok = np.isfinite(ft) & (ft <= f0[pending] + 1e-4 * decrease)
            z_new[pending[ok]], f_new[pending[ok]], G_new[pending[ok]] = zt[ok], ft[ok], gt[ok]
            pending, ft, decrease = pending[~ok], ft[~ok], decrease[~ok]
            if pending.size == 0:
                break
            # safeguarded quadratic interpolation of f along the step (Nocedal & Wright §3.5)
            curv = ft - f0[pending] - decrease
            t_q = np.where(np.isfinite(curv) & (curv > 0), -0.5 * decrease / np.where(curv > 0, curv, 1.0), 0.1)
            t[pending] *= np.clip(np.nan_to_num(t_q, nan=0.1), 0.1, 0.5)
        failed = np.zeros(idx.size, dtype=bool)
        failed[pending] = True
        # a failed line search at a point with a tiny gradient is convergence at machine precision
        converged[idx[failed]] = np.abs(pg[failed]).max(axis=1) <= 1e3 * pgtol
        active[idx[failed]] = False
        okr = ~failed
        idx, z, g, z_new, f_new, f0 = idx[okr], z[okr], g[okr], z_new[okr], f_new[okr], f0[okr]
        if idx.size:
            f_n, G_n = f_new, G_new[okr]
            s, y = z_new - z, G_n - g
            sy = np.einsum("ij,ij->i", s, y)
            yy = np.einsum("ij,ij->i", y, y)
            upd = (sy > 1e-10 * np.sqrt(np.einsum("ij,ij->i", s, s) * yy)) & (yy > 0) & np.isfinite(sy)
            S_h[slot, idx], Y_h[slot, idx] = s, y
            R_h[slot, idx] = np.where(upd, 1.0 / np.where(upd, sy, 1.0), 0.0)
            gamma[idx[upd]] = sy[upd] / yy[upd]
            first[idx[upd]] = False
            Z[idx], f[idx], G[idx] = z_new, f_n, G_n
            n_iter[idx] += 1
            small = (f0 - f_n) <= ftol * np.maximum(np.maximum(np.abs(f0), np.abs(f_n)), fscale)
            converged[idx[small]] = True
            active[idx[small]] = False
        if progress is not None:
            progress(int(k_rows - active.sum()), k_rows)
    if progress is not None:  # every row is done now (those stopped by max_iter are not converged)
        progress(k_rows, k_rows)
    return Z, f, n_iter, converged
