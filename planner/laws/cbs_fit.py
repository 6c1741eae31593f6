"""Fitting critical-batch-size laws from steps-to-target runs (Zhang et al. 2024; McCandlish et al. 2018).

Legend:
    B        batch size in sequences
    R(B)     optimiser steps to reach the target loss at batch B; model R(B) = a + b/B
    a, b     a = S_min (fewest steps, B -> inf), b = E_min (fewest sequences, B -> 0)  (McCandlish eq. 2.11)
    B_crit   McCandlish critical batch b/a (sequences)
    CBS      Zhang's 20%-overhead critical batch, 1.2·B_ref + 0.2·b/a (sequences); B_ref = 256 by default
    N        model size in millions of non-embedding parameters (N-law), D training tokens (D-law)
    w        bootstrap weights (how often each row is drawn)

Zhang et al. fit log R = log(a + b/B) by least squares in log space (`plots/chinchilla.ipynb`), then
CBS against N in log-log space. Pure numerics: numpy in and out; no files, clock or printing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from planner.errors import FitError
from planner.laws.batch import cbs_from_bcrit

Progress = Callable[[int, int], None]


def fit_steps_curve(B, S, weights=None, *, max_iter: int = 200):
    """Least squares in log space: minimise Σ_j w_j·(log(a + b/B_j) − log R_j)²  (Zhang et al. 2024, §3).

    Levenberg–Marquardt in (log a, log b), batched over rows of `weights` ((K, n) or None for one fit).
    Returns arrays (a, b) of shape (K,) (or floats when weights is None or 1-D). a <= 0 cannot be
    represented: such data (steps never level off) drive a towards 0 and are flagged by the caller.
    """
    B, S = np.asarray(B, float), np.asarray(S, float)
    # R(B) = a + b/B is linear in (a, b): fit S/scale and scale back, so steps near the top of double range
    # (1e300) neither overflow S² in the start nor change the answer
    scale = float(np.exp(np.log(S).mean())) if S.size else 1.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        a, b = _fit_steps_curve(B, S / scale, weights, max_iter)
        a, b = a * scale, b * scale
    single = weights is None or np.ndim(weights) == 1
    return (float(a[0]), float(b[0])) if single else (a, b)


def _fit_steps_curve(B, S, weights, max_iter):
    W = np.ones((1, B.size)) if weights is None else np.atleast_2d(np.asarray(weights, float))
    logS, invB = np.log(S), 1.0 / B
    # start: weighted linear least squares of R on 1/B with relative errors (weights 1/R²)
    sw = W / S**2
    X = np.stack([np.ones_like(invB), invB])
    M = np.einsum("kj,pj,qj->kpq", sw, X, X) + 1e-300 * np.eye(2)
    rhs = np.einsum("kj,pj,j->kp", sw, X, S)
    ab0 = np.linalg.solve(M, rhs[..., None])[..., 0]
    a0 = np.where(ab0[:, 0] > 0, ab0[:, 0], 0.5 * S.min())
    b0 = np.where(ab0[:, 1] > 0, ab0[:, 1], np.median(B * S))
    u, v = np.log(a0), np.log(b0)
    lam = np.full(W.shape[0], 1e-3)

    def cost(u, v):
        r = np.log(np.exp(u)[:, None] + np.exp(v)[:, None] * invB) - logS
        return (W * r * r).sum(axis=1), r

    f, r = cost(u, v)
    for _ in range(max_iter):
        a, b = np.exp(u)[:, None], np.exp(v)[:, None] * invB
        p = a / (a + b)
        J = np.stack([p, 1.0 - p], axis=-1)  # (K, n, 2)
        H = np.einsum("kj,kjp,kjq->kpq", W, J, J)
        g = np.einsum("kj,kjp,kj->kp", W, J, r)
        Hd = H + lam[:, None, None] * (np.eye(2) * np.diagonal(H, axis1=1, axis2=2)[:, :, None] + 1e-12 * np.eye(2))
        step = -np.linalg.solve(Hd, g[..., None])[..., 0]
        f_new, r_new = cost(u + step[:, 0], v + step[:, 1])
        ok = f_new < f
        u, v = np.where(ok, u + step[:, 0], u), np.where(ok, v + step[:, 1], v)
        done = ~ok & (lam > 1e10) | ok & (f - f_new <= 1e-15 * np.maximum(f, 1e-300))
        f, r = np.where(ok, f_new, f), np.where(ok[:, None], r_new, r)
        lam = np.where(ok, lam * 0.3, lam * 10.0)
        if np.all(done | (np.abs(step).max(axis=1) < 1e-13)):
            break
    return np.exp(u), np.exp(v)


def fit_power_law(x, y, weights=None):
    """Ordinary least squares of log y = log c + k·log x; returns (c, k) (batched over rows of weights)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    single = weights is None
    W = np.ones((1, lx.shape[-1])) if weights is None else np.atleast_2d(weights)
    LY = np.broadcast_to(ly, W.shape) if ly.ndim == 1 else ly
    LX = np.broadcast_to(lx, W.shape) if lx.ndim == 1 else lx
    sw = W.sum(axis=1)
    mx, my = (W * LX).sum(axis=1) / sw, (W * LY).sum(axis=1) / sw
    sxx = (W * (LX - mx[:, None]) ** 2).sum(axis=1)
    k = (W * (LX - mx[:, None]) * (LY - my[:, None])).sum(axis=1) / np.where(sxx > 0, sxx, np.nan)
    c = np.exp(my - k * mx)
    return (float(c[0]), float(k[0])) if single else (c, k)


@dataclass(frozen=True)
class GroupFit:
    """One (model, token budget) group: R(B) = S_min + E_min/B, B_crit = E_min/S_min, CBS (sequences)."""

    N: float | None
    D: float | None
    S_min: float
    E_min: float
    B_crit: float
    cbs: float
    n_points: int


@dataclass(frozen=True)
class CbsFit:
    """Per-group fits and the power laws CBS = coef·N_millions^exp and CBS = coef·D^exp (sequences)."""

    groups: tuple[GroupFit, ...]
    b_ref: float
    overhead: float
    n_law: tuple[float, float] | None
    d_law: tuple[float, float] | None
    intervals: dict | None = field(default=None)

    def to_dict(self) -> dict:
        return {
            "b_ref_sequences": self.b_ref, "overhead": self.overhead,
            "groups": [g.__dict__ for g in self.groups],
            "n_law": None if self.n_law is None else {"coef": self.n_law[0], "exp": self.n_law[1]},
            "d_law": None if self.d_law is None else {"coef_sequences": self.d_law[0], "exp": self.d_law[1]},
            "intervals": self.intervals,
        }


def _group_index(N, D):
    keys = np.column_stack([v for v in (N, D) if v is not None])
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    return uniq, inv.ravel()


def _label(key, N, D) -> str:
    names = [n for n, v in (("N", N), ("D", D)) if v is not None]
    return ", ".join(f"{n} = {float(k):.4g}" for n, k in zip(names, key))


def _laws(Nu, Du, cbs, weights=None):
    """N-law (N in millions) and D-law over group CBS values (need two distinct sizes for each)."""
    n_law = fit_power_law(Nu / 1e6, cbs, weights) if Nu is not None and np.unique(Nu).size >= 2 else None
    d_law = fit_power_law(Du, cbs, weights) if Du is not None and np.unique(Du).size >= 2 else None
    return n_law, d_law


def fit_cbs(N, D, B, S, *, b_ref: float = 256.0, overhead: float = 0.2) -> CbsFit:
    """Zhang et al. 2024 critical batch sizes per (N, D) group and their power laws in N and D.

    Per group: R(B) = a + b/B in log space (:func:`fit_steps_curve`); B_crit = b/a (McCandlish et al.
    2018 eq. 2.11); CBS = (1 + overhead)·B_ref + overhead·b/a (`planner.laws.batch.cbs_from_bcrit`).
    Then CBS = c·N^k (N in millions of non-embedding parameters) and CBS = c·D^k by log-log OLS.
    N or D may be None. Raises FitError when a group's fit is degenerate.
    """
    B, S = np.asarray(B, float), np.asarray(S, float)
    uniq, inv = _group_index(N, D)
    groups = []
    for gi, key in enumerate(uniq):
        sel = inv == gi
        a, b = fit_steps_curve(B[sel], S[sel])
        Bg, Sg = B[sel], S[sel]
        if np.isfinite(a) and a < 1e-6 * Sg.min():
            raise FitError(f"group {_label(key, N, D)}: steps never level off (S_min -> 0, CBS unbounded)",
                           hint="add runs at larger batch sizes")
        if np.isfinite(a) and np.isfinite(b) and b < 1e-6 * a * Bg.min():
            raise FitError(f"group {_label(key, N, D)}: steps do not fall with batch size (E_min -> 0)",
                           hint="add runs at smaller batch sizes, or check the steps column")
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            finite = np.all(np.isfinite([a, b, b / a, cbs_from_bcrit(b / a, b_ref, overhead)]))
        if not finite:
            raise FitError(f"group {_label(key, N, D)}: the fit of R(B) = a + b/B leaves double-precision range "
                           f"(steps up to {Sg.max():.3g}, batches up to {Bg.max():.3g})",
                           hint="check the steps and batch columns: steps to the target are counts (say 1e2 to "
                                "1e7), batch sizes are in sequences")
        n_val = float(key[0]) if N is not None else None
        d_val = float(key[-1]) if D is not None else None
        groups.append(GroupFit(N=n_val, D=d_val, S_min=a, E_min=b, B_crit=b / a,
                               cbs=float(cbs_from_bcrit(b / a, b_ref, overhead)), n_points=int(sel.sum())))
    cbs = np.array([g.cbs for g in groups])
    Nu = None if N is None else np.array([g.N for g in groups])
    Du = None if D is None else np.array([g.D for g in groups])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        n_law, d_law = _laws(Nu, Du, cbs)
    for which, law in (("N", n_law), ("D", d_law)):
        if law is not None and not np.all(np.isfinite(law)):
            raise FitError(f"the CBS law in {which} leaves double-precision range (CBS {cbs.min():.3g} to "
                           f"{cbs.max():.3g} sequences)", hint="check the steps and batch columns' magnitudes")
    return CbsFit(tuple(groups), float(b_ref), float(overhead), n_law, d_law)


def b_ref_outside(N, D, B, b_ref: float) -> list[tuple[str, float, float]]:
    """Groups whose measured batch sizes do not bracket B_ref: (label, smallest batch, largest batch).

    Zhang et al. take B_ref as the smallest batch measured (256 sequences), so that CBS = 1.2·B_ref +
    0.2·b/a reads the overhead off the data; a B_ref outside a group's batches extrapolates R(B).
    """
    B = np.asarray(B, float)
    uniq, inv = _group_index(N, D)
    out = []
    for gi, key in enumerate(uniq):
        lo, hi = float(B[inv == gi].min()), float(B[inv == gi].max())
        if not lo <= b_ref <= hi:
            out.append((_label(key, N, D), lo, hi))
    return out


def _band(v, level):
    lo, hi = 50.0 * (1.0 - level), 50.0 * (1.0 + level)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"low": float("nan"), "high": float("nan")}
    q = np.percentile(v, [lo, hi])
    return {"low": float(q[0]), "high": float(q[1])}


def bootstrap_cbs(N, D, B, S, fit: CbsFit, *, n_samples: int = 1000, seed: int = 0, level: float = 0.95,
                  progress: Progress | None = None) -> CbsFit:
    """Bootstrap within groups: each group's rows are resampled with replacement and refitted, then the
    N- and D-laws are refitted to the resampled CBS values; returns `fit` with percentile `intervals`.

    Resamples with fewer than 2 distinct batch sizes in a group are dropped (counted in n_rejected).
    """
    B, S = np.asarray(B, float), np.asarray(S, float)
    rng = np.random.default_rng(seed)
    uniq, inv = _group_index(N, D)
    cbs = np.full((n_samples, uniq.shape[0]), np.nan)
    for gi in range(uniq.shape[0]):
        idx = np.flatnonzero(inv == gi)
        draws = rng.integers(0, idx.size, size=(n_samples, idx.size))
        W = np.zeros((n_samples, idx.size))
        np.add.at(W, (np.repeat(np.arange(n_samples), idx.size), draws.ravel()), 1.0)
        distinct = np.array([np.unique(B[idx][w > 0]).size for w in W])
        a, b = fit_steps_curve(B[idx], S[idx], W)
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.asarray(cbs_from_bcrit(b / a, fit.b_ref, fit.overhead), dtype=float)
        cbs[:, gi] = np.where(distinct >= 2, c, np.nan)
        if progress is not None:
            progress(gi + 1, uniq.shape[0])
    ok = np.all(np.isfinite(cbs), axis=1)
    Nu = None if N is None else np.array([g.N for g in fit.groups])
    Du = None if D is None else np.array([g.D for g in fit.groups])
    iv: dict = {"level": level, "n_samples": n_samples, "seed": seed, "n_rejected": int((~ok).sum()),
                "method": "bootstrap of batch sizes within each group, refit of R(B) and of the laws",
                "cbs_sequences": [_band(cbs[:, g], level) for g in range(cbs.shape[1])]}
    good = cbs[ok]
    if Nu is not None and np.unique(Nu).size >= 2:
        c, k = fit_power_law(np.broadcast_to(Nu / 1e6, good.shape), good, np.ones_like(good))
        iv["n_law"] = {"coef": _band(c, level), "exp": _band(k, level)}
    if Du is not None and np.unique(Du).size >= 2:
        c, k = fit_power_law(np.broadcast_to(Du, good.shape), good, np.ones_like(good))
        iv["d_law"] = {"coef_sequences": _band(c, level), "exp": _band(k, level)}
    return CbsFit(fit.groups, fit.b_ref, fit.overhead, fit.n_law, fit.d_law, iv)


def require_law(fit: CbsFit) -> None:
    """Raise FitError unless the D-law was fitted: a batch-law profile for `recommend --batch-law` needs it.

    `planner recommend` and `planner check` take the critical batch from the training tokens D (Zhang et
    al. 2024: the CBS scales with data, not with model size), so an N-law alone cannot be used. The D-law
    is a log-log fit over the groups' CBS values, so it needs groups at two or more distinct token counts.
    """
    if fit.d_law is not None:
        return
    n = len(fit.groups)
    has_d = any(g.D is not None for g in fit.groups)
    if not has_d:
        why = "the runs have no tokens column, so only the N-law was fitted"
    else:
        n_d = len({g.D for g in fit.groups})
        why = (f"the runs form {n} group{'s' * (n != 1)} at {n_d} token count{'s' * (n_d != 1)}, and the D-law needs "
               "groups at 2 or more token counts")
    raise FitError(f"no batch law to write: {why}; `planner recommend --batch-law` needs the law of the CBS in "
                   "training tokens D (Zhang et al. 2024: the CBS scales with data, not model size)",
                   hint="add a column of tokens at the target (--tokens-col) with steps-to-target runs (3 or more "
                        "batch sizes each) at 2 or more token counts; without --write-law the fit is still reported")


def batch_law_profile(fit: CbsFit, *, name: str, source: str, seq_len: float, n_groups_label: str = "") -> dict:
    """A batch-law profile (validates as planner.schemas.batch.BatchLawProfile) from a fit.

    Laws: `cbs_d` (CBS in sequences of seq_len from training tokens D) and `cbs_n` (from N in millions
    of non-embedding parameters), in Zhang et al.'s 20%-overhead definition with this fit's B_ref.
    """
    seq = int(seq_len)
    regime = (f"refit of {len(fit.groups)} groups' CBS ({n_groups_label or 'steps-to-target runs'}); "
              f"extrapolation beyond the measured D and N is the user's call")
    laws = []
    for law_id, law, var, unit, scale in (("cbs_d", fit.d_law, "D", "training tokens", 1.0),
                                          ("cbs_n", fit.n_law, "N", "millions of non-embedding parameters", 1e-6)):
        if law is not None:
            measured = [getattr(g, var) * scale for g in fit.groups if getattr(g, var) is not None]
            laws.append({"id": law_id, "quantity": "batch", "coefficient": float(law[0]),
                         "exponents": {var: float(law[1])}, "input_units": {var: unit}, "output_unit": "sequences",
                         "sequence_length": seq, "regime": regime,
                         "fitted_range": {var: [float(min(measured)), float(max(measured))]} if measured else None,
                         "source": source, "verification": "derived"})
    return {
        "schema_version": 1, "kind": "batch-law", "name": name,
        "title": f"Critical batch size fitted by planner fit-cbs ({len(fit.groups)} groups)",
        "definition": "zhang-20pct",
        "definition_text": (f"CBS: the batch at which steps to the target exceed linear scaling from B_ref = "
                            f"{fit.b_ref:g} sequences by {fit.overhead:.0%} (Zhang et al. 2024), from R(B) = a + b/B "
                            "fitted per group in log space; CBS = (1 + overhead)·B_ref + overhead·b/a"),
        "params": "non_embedding", "overhead": fit.overhead, "reference_batch_sequences": round(fit.b_ref),
        "reference_sequence_length": seq, "laws": laws, "source": [source], "intervals": fit.intervals,
    }  # fmt: skip
