"""Fitting the Chinchilla loss law to runs: objectives, a batched quasi-Newton, multi-start and bootstrap.

Legend (paper symbols, Hoffmann et al. 2022 App. D.2; Besiroglu et al. 2024 §2):
    N, D, L    parameters, training tokens and final loss of each run (i = 1..n)
    a, b, e    log A, log B, log E; the optimiser works on x = (a, b, e, alpha, beta)
    LSE        log-sum-exp; the model is  log L̂_i = LSE(a − alpha·log N_i, b − beta·log D_i, e)  (Hoffmann eq. 11)
    r_i        log-residual  r_i = log L̂_i − log L_i
    rho_delta  Huber function, rho(r) = r²/2 for |r| <= delta, delta·(|r| − delta/2) otherwise; delta = 1e-3
    psi        its derivative, clip(r, −delta, delta)
    w_i        bootstrap weight of run i (how often the resample drew it; 1 for the plain fit)
    sigma = e^s  the scale of the maximum-likelihood objective (Besiroglu et al. §2, notebook `objective`)
    Z(delta)   Huber density normaliser, sqrt(2·pi)·(1 − 2·Phī(delta)) + 2·e^(−delta²/2)/delta

Speed. Every start (and every bootstrap sample) is one row of an (m, n) array, so the objective and
its analytic gradient for all rows cost a handful of numpy passes. Rows are optimised together by a
batched L-BFGS with a projected Armijo backtracking line search, in centred coordinates
a' = a − alpha·mean(log N), b' = b − beta·mean(log D) (removes the a/alpha correlation); the best few
distinct optima are then polished with scipy's L-BFGS-B. scipy is imported inside functions only.

Nothing here reads files, the environment or the clock; nothing prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product

import numpy as np

from planner.errors import ConfigError, FitError
from planner.laws._lbfgs import lbfgs_batched
from planner.laws.chinchilla import ChinchillaParams

Progress = Callable[[int, int], None]

PARAM_NAMES = ("E", "A", "B", "alpha", "beta")
X_NAMES = ("a", "b", "e", "alpha", "beta")
#: what flags call x's entries: the paper's constants (a = log A, b = log B, e = log E), not the optimiser's names
FLAG_NAMES = ("A", "B", "E", "alpha", "beta")
TERMS = ("A/N^alpha", "B/D^beta", "E")
#: Hoffmann's unrounded constants as x = (a, b, e, alpha, beta) (TeX source; Epoch's `true_params`).
HOFFMANN_UNROUNDED_X = (6.0073404, 6.0179186, 0.5267228, 0.33917084, 0.2849083)
#: Box for (e, alpha, beta); a and b are free. e >= -30 means E >= 9e-14, i.e. "E at 0".
BOUNDS = {"e": (-30.0, 10.0), "alpha": (0.0, 10.0), "beta": (0.0, 10.0)}
OBJECTIVES = ("huber", "mse", "asymmetric", "mle")
GRID_DESCRIPTION = "Hoffmann App. D.2: alpha,beta in {0,0.5,..,2}, e in {-1,-0.5,..,1}, a,b in {0,5,..,25} (4500)"
#: stopping rule for bootstrap refits: the scipy defaults stop ~1e-3 short on the flat A/B valley
TIGHT = {"ftol": 1e-11, "pgtol": 1e-7, "fscale": 1e-300}
#: starts whose objective is within this relative distance of the best count as "at best"
AT_BEST_RTOL = 1e-4
#: a constant within this share of its box's width of a bound sits on it (L-BFGS-B stops short of a bound
#: along a flat direction: alpha = 9.99992 for a bound of 10)
AT_BOUND_RTOL = 1e-3


def hoffmann_grid() -> np.ndarray:
    """The 4,500 starts of Hoffmann et al. App. D.2 as rows x = (a, b, e, alpha, beta).

    alpha, beta ∈ {0, 0.5, …, 2}; e ∈ {−1, −0.5, …, 1}; a, b ∈ {0, 5, …, 25}; enumerated in that order.
    """
    ab = np.arange(0.0, 2.01, 0.5)
    es = np.arange(-1.0, 1.01, 0.5)
    lin = np.arange(0.0, 25.1, 5.0)
    rows = [(a, b, e, al, be) for al, be, e, a, b in product(ab, ab, es, lin, lin)]
    return np.array(rows, dtype=float)


def x_to_params(x) -> ChinchillaParams:
    """(a, b, e, alpha, beta) -> ChinchillaParams(E=e^e, A=e^a, B=e^b, alpha, beta)."""
    a, b, e, al, be = (float(v) for v in x)
    return ChinchillaParams(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=al, beta=be)


def params_to_x(p: ChinchillaParams) -> np.ndarray:
    """ChinchillaParams -> x = (log A, log B, log E, alpha, beta)."""
    return np.array([math.log(p.A), math.log(p.B), math.log(p.E), p.alpha, p.beta])


# ----------------------------------------------------------------------------------------------------
# Objectives


@dataclass(frozen=True)
class Objective:
    """A per-run penalty on the log-residual r (prediction minus observation).

    kind: "huber" (Hoffmann App. D.2: rho_delta), "mse" (r²/2), "asymmetric" (rho_delta with
    over-predictions r > 0 weighted by `asym_weight`, which fits the lower envelope of the runs, as
    kyo-takano/chinchilla's asymmetric loss does), or "mle" (Huber likelihood, see :func:`fit_mle`).
    """

    kind: str = "huber"
    delta: float = 1e-3
    asym_weight: float = 10.0

    def __post_init__(self):
        if self.kind not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.kind!r}")
        if not self.delta > 0:
            raise ValueError("delta must be > 0")

    def rho_psi(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Penalty rho(r) and its derivative psi(r), elementwise."""
        if self.kind == "mse":
            return 0.5 * r * r, r
        d = self.delta
        psi = np.clip(r, -d, d)
        rho = psi * (r - 0.5 * psi)  # = r²/2 inside [−delta, delta], delta·(|r| − delta/2) outside
        if self.kind == "asymmetric":
            scale = np.where(r > 0, self.asym_weight, 1.0)
            rho, psi = rho * scale, psi * scale
        return rho, psi


@dataclass(frozen=True)
class _Data:
    """Log-data in centred form: lnN_c = log N − mN, lnD_c = log D − mD."""

    lnN_c: np.ndarray
    lnD_c: np.ndarray
    logL: np.ndarray
    mN: float
    mD: float

    @property
    def one_lnN(self) -> np.ndarray:
        return np.column_stack([np.ones_like(self.lnN_c), -self.lnN_c])

    @property
    def one_lnD(self) -> np.ndarray:
        return np.column_stack([np.ones_like(self.lnD_c), -self.lnD_c])

    @classmethod
    def of(cls, N, D, L) -> _Data:
        lnN, lnD = np.log(np.asarray(N, float)), np.log(np.asarray(D, float))
        mN, mD = float(lnN.mean()), float(lnD.mean())
        return cls(lnN - mN, lnD - mD, np.log(np.asarray(L, float)), mN, mD)

    def to_centred(self, X: np.ndarray) -> np.ndarray:
        Z = np.array(X, dtype=float, copy=True).reshape(-1, 5)
        Z[:, 0] -= Z[:, 3] * self.mN
        Z[:, 1] -= Z[:, 4] * self.mD
        return Z

    def from_centred(self, Z: np.ndarray) -> np.ndarray:
        X = np.array(Z, dtype=float, copy=True).reshape(-1, 5)
        X[:, 0] += X[:, 3] * self.mN
        X[:, 1] += X[:, 4] * self.mD
        return X


def _lse_parts(Z: np.ndarray, data: _Data):
    """log L̂ for every row of Z (centred), the three terms e^t1, e^t2, e^e and their sum S.

    No max-shift: e >= −30 (BOUNDS) keeps S >= 9e-14 > 0, and a term that overflows (t > 709, i.e. a
    loss above 1e300) gives an infinite objective, which the line search rejects. e^e is one number per
    row, so each evaluation costs two exponentials and one logarithm per run.
    """
    e1 = Z[:, 0:1] - Z[:, 3:4] * data.lnN_c
    e2 = Z[:, 1:2] - Z[:, 4:5] * data.lnD_c
    np.exp(e1, out=e1)
    np.exp(e2, out=e2)
    e3 = np.exp(Z[:, 2:3])
    S = e1 + e2
    S += e3
    return np.log(S), e1, e2, e3, S


def _value_grad(Z: np.ndarray, data: _Data, obj: Objective, W, need_grad: bool = True):
    """Objective F(x) = Σ_i w_i·rho(r_i) for every row of Z, and its gradient in centred coordinates.

    dr_i/da' = s1, dr_i/db' = s2, dr_i/de = s3, dr_i/dalpha = −s1·(log N_i − mN), dr_i/dbeta = −s2·(log D_i − mD)
    with (s1, s2, s3) the softmax of the LSE terms (Hoffmann eq. 11 differentiated); s3 = 1 − s1 − s2.
    """
    lse, e1, e2, _, S = _lse_parts(Z, data)
    lse -= data.logL
    rho, psi = obj.rho_psi(lse)
    if W is not None:
        rho *= W
        psi *= W
    f = rho.sum(axis=1)
    if not need_grad:
        return f, None
    q = np.divide(psi, S, out=S)
    e1 *= q
    e2 *= q
    G = np.empty((Z.shape[0], 5))
    G[:, [0, 3]] = e1 @ data.one_lnN  # columns (1, −(log N − mN))
    G[:, [1, 4]] = e2 @ data.one_lnD
    G[:, 2] = psi.sum(axis=1) - G[:, 0] - G[:, 1]
    return f, G


def objective_value_grad(x, N, D, L, objective: Objective | str = "huber", weights=None):
    """F(x) = Σ_i w_i·rho(LSE(a − alpha·log N_i, b − beta·log D_i, e) − log L_i) and dF/dx (original x).

    Hoffmann et al. 2022 App. D.2 eq. (11) with the sum (not the mean) as in Besiroglu et al. 2024.
    Returns (F, grad) for one x = (a, b, e, alpha, beta).
    """
    obj = Objective(objective) if isinstance(objective, str) else objective
    data = _Data.of(N, D, L)
    f, Gc = _value_grad(data.to_centred(np.asarray(x, float)), data, obj, weights)
    g = Gc[0].copy()  # chain rule back from centred coordinates: a' = a − alpha·mN
    g[3] -= data.mN * g[0]
    g[4] -= data.mD * g[1]
    return float(f[0]), g


# ----------------------------------------------------------------------------------------------------
# Batched L-BFGS with projected Armijo backtracking (planner/laws/_lbfgs.py)


def _bounds_arrays() -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([-np.inf, -np.inf, BOUNDS["e"][0], BOUNDS["alpha"][0], BOUNDS["beta"][0]])
    hi = np.array([np.inf, np.inf, BOUNDS["e"][1], BOUNDS["alpha"][1], BOUNDS["beta"][1]])
    return lo, hi


def _batched_solve(N, D, L, X0, objective: Objective, weights=None, progress=None, opts=None):
    """Run the batched L-BFGS on rows X0 (original x); weights None, (n,) or (rows, n)."""
    data = _Data.of(N, D, L)
    W = None if weights is None else np.asarray(weights, float)

    def fun(rows, Z, need_grad=True):
        w = W if (W is None or W.ndim == 1) else W[rows]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return _value_grad(Z, data, objective, w, need_grad)

    lo, hi = _bounds_arrays()
    Z, f, n_iter, conv = lbfgs_batched(fun, data.to_centred(X0), lo, hi, progress=progress, **(opts or {}))
    return data.from_centred(Z), f, n_iter, conv


def _solve_chunk(args):
    """Worker entry point (top level so ProcessPoolExecutor can pickle it)."""
    N, D, L, X0, objective, weights, opts = args
    return _batched_solve(N, D, L, X0, objective, weights, None, opts)


def _solve_parallel(N, D, L, X0, objective, weights=None, workers=1, progress=None, opts=None):
    """Split the rows of X0 (and of 2-D weights) over `workers` processes; same result as one batch."""
    if workers <= 1 or X0.shape[0] < 2 * workers:
        return _batched_solve(N, D, L, X0, objective, weights, progress, opts)
    from concurrent.futures import ProcessPoolExecutor

    chunks = np.array_split(np.arange(X0.shape[0]), workers)
    W = None if weights is None else np.asarray(weights, float)
    jobs = [(N, D, L, X0[c], objective, W if (W is None or W.ndim == 1) else W[c], opts) for c in chunks]
    out, done = [], 0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for c, res in zip(chunks, pool.map(_solve_chunk, jobs)):
            out.append(res)
            done += c.size
            if progress is not None:
                progress(done, X0.shape[0])
    return tuple(np.concatenate([o[i] for o in out]) for i in range(4))


def _scipy_polish(x0, N, D, L, objective: Objective, weights=None):
    """scipy L-BFGS-B from x0 with the analytic gradient, tight tolerances; bounds on e, alpha, beta."""
    from scipy.optimize import minimize

    bounds = [(None, None), (None, None), BOUNDS["e"], BOUNDS["alpha"], BOUNDS["beta"]]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        res = minimize(
            objective_value_grad, x0, args=(N, D, L, objective, weights), jac=True, method="L-BFGS-B", bounds=bounds,
            options={"maxiter": 15000, "maxfun": 15000, "ftol": 1e-15, "gtol": 1e-10},
        )
    return res.x, float(res.fun)


# ----------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class LossFit:
    """Best fit of L(N, D) = E + A/N^alpha + B/D^beta and how it was reached.

    `objective` is the minimised value (sum over runs; the NLL for "mle"); `n_starts_at_best` counts
    starts whose final objective is within `at_best_rtol` (relative) of the best; `flags` lists
    boundary solutions and parameters the data cannot identify; `intervals` is set by
    :func:`with_intervals` after a bootstrap.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float
    objective_name: str
    n_runs: int
    n_starts: int
    n_starts_at_best: int
    n_starts_converged: int
    at_best_rtol: float = AT_BEST_RTOL
    sigma: float | None = None
    flags: tuple[str, ...] = ()
    intervals: dict | None = None
    distinct_optima: tuple[tuple[float, ...], ...] = field(default=(), repr=False)

    @property
    def params(self) -> ChinchillaParams:
        return ChinchillaParams(E=self.E, A=self.A, B=self.B, alpha=self.alpha, beta=self.beta)

    @property
    def x(self) -> np.ndarray:
        return params_to_x(self.params) if self.E > 0 else np.array([math.log(self.A), math.log(self.B), -30.0,
                                                                        self.alpha, self.beta])

    def to_dict(self) -> dict:
        """Stable JSON keys: E, A, B, alpha, beta, objective, n_runs, n_starts, n_starts_at_best, ... intervals."""
        out = {k: float(getattr(self, k)) for k in PARAM_NAMES}
        out.update(
            objective=float(self.objective), objective_name=self.objective_name, n_runs=self.n_runs,
            n_starts=self.n_starts, n_starts_at_best=self.n_starts_at_best,
            n_starts_converged=self.n_starts_converged, at_best_rtol=self.at_best_rtol,
            sigma=self.sigma, flags=list(self.flags), intervals=self.intervals,  # None without a bootstrap
        )
        return out


def _check_runs(N, D, L, n_params: int):
    N, D, L = (np.asarray(v, dtype=float).ravel() for v in (N, D, L))
    if not (N.shape == D.shape == L.shape):
        raise ValueError("N, D and L must have the same length")
    if N.size < n_params + 1:
        raise ConfigError(
            f"{N.size} runs cannot identify {n_params} parameters: need at least {n_params + 1}",
            hint="add runs, or lower --drop-top-loss",
        )
    for name, v in (("N", N), ("D", D), ("L", L)):
        if not (np.all(np.isfinite(v)) and np.all(v > 0)):
            raise ConfigError(f"every {name} must be finite and > 0")
    return N, D, L


def _flags(x, N, D, L) -> list[str]:
    """Boundary solutions and flat directions (Gauss-Newton matrix J^T J of the log-predictions)."""
    flags = []
    _, _, e, al, be = x
    if math.exp(e) < 1e-3 * float(np.min(L)):
        flags.append(f"boundary: E = {math.exp(e):.3g} is at 0 (log E = {e:.3g}); the data do not show a floor")
    e_hi = BOUNDS["e"][1]
    if e >= e_hi - AT_BOUND_RTOL * (e_hi - BOUNDS["e"][0]):
        flags.append(f"boundary: E = {math.exp(e):.4g} sits on the fitter's upper bound {math.exp(e_hi):.4g} "
                     f"(log E <= {e_hi:g}): a boundary solution, not an interior optimum")
    for name, v, coef, log_coef in (("alpha", al, "A", x[0]), ("beta", be, "B", x[1])):
        lo, hi = BOUNDS[name]
        tol = AT_BOUND_RTOL * (hi - lo)
        side, bound = ("lower", lo) if v <= lo + tol else ("upper", hi) if v >= hi - tol else (None, None)
        if side is not None:
            flags.append(f"boundary: {name} = {v:.4g} sits on the fitter's {side} bound {bound:g} (box [{lo:g}, "
                         f"{hi:g}]), with {coef} = {math.exp(log_coef):.3g}: a boundary solution, not an interior "
                         "optimum")
    data = _Data.of(N, D, L)
    _, e1, e2, e3, S = _lse_parts(data.to_centred(np.asarray(x, float)), data)
    s1, s2, s3 = (e1 / S)[0], (e2 / S)[0], (e3 / S)[0]
    J = np.column_stack([s1, s2, s3, -s1 * data.lnN_c, -s2 * data.lnD_c])
    norms = np.linalg.norm(J, axis=0)
    if np.any(norms < 1e-8 * norms.max()):
        for i in np.flatnonzero(norms < 1e-8 * norms.max()):
            flags.append(f"unidentified: the fit does not depend on {_vanishing(i, data)}")
        return flags
    w, V = np.linalg.eigh((J / norms).T @ (J / norms))
    if w[0] < 1e-10 * w[-1]:
        worst = FLAG_NAMES[int(np.argmax(np.abs(V[:, 0])))]
        flags.append(f"unidentified: flat direction along {worst} (J^T J condition {w[-1] / max(w[0], 1e-300):.2g})")
    return flags


def _vanishing(i: int, data) -> str:
    """Why the fit does not depend on constant i of x (paper symbols, not the optimiser's a, b, e)."""
    name = FLAG_NAMES[i]
    if i in (0, 1, 2):  # log A, log B, log E: the term itself is negligible next to the others
        return f"{name} (the {TERMS[i]} term is negligible on every run)"
    same, lnX_c = ("N", data.lnN_c) if i == 3 else ("D", data.lnD_c)
    if np.all(np.abs(lnX_c) < 1e-12):
        return f"{name} (every run has the same {same})"
    return f"{name} (the {TERMS[i - 3]} term is negligible on every run)"


def _distinct(X, f, k=3, tol=1e-2):
    """Up to k best rows of X whose parameters differ by more than tol (max-norm) from better rows."""
    reps = []
    for i in np.argsort(f):
        if not np.isfinite(f[i]):
            break
        if all(np.abs(X[i] - X[j]).max() > tol for j in reps):
            reps.append(i)
        if len(reps) >= k:
            break
    return reps


def fit_loss_law(
    N, D, L, *, objective: str | Objective = "huber", starts=None, n_polish: int = 3,
    workers: int = 1, progress: Progress | None = None,
) -> LossFit:
    """Multi-start fit of L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022 §3.3 eq. 3, App. D.2).

    Minimises F(x) = Σ_i rho(LSE(a − alpha·log N_i, b − beta·log D_i, e) − log L_i) (the sum, as in
    Besiroglu et al. 2024 §2.2) from every row of `starts` (default: the 4,500-point grid of App. D.2)
    with the batched L-BFGS, then polishes the `n_polish` best distinct optima with scipy L-BFGS-B.
    objective "mle" delegates to :func:`fit_mle`. Raises FitError when no start gives a finite fit.
    """
    obj = Objective(objective) if isinstance(objective, str) else objective
    if obj.kind == "mle":
        return fit_mle(N, D, L, delta=obj.delta)
    N, D, L = _check_runs(N, D, L, 5)
    X0 = hoffmann_grid() if starts is None else np.asarray(starts, dtype=float).reshape(-1, 5)
    X, f, _, conv = _solve_parallel(N, D, L, X0, obj, workers=workers, progress=progress)
    if not np.any(np.isfinite(f)):
        raise FitError("no start of the fit reached a finite objective")
    reps = _distinct(X, f, k=n_polish)
    polished = [_scipy_polish(X[i], N, D, L, obj) for i in reps]
    polished += [(X[i], float(f[i])) for i in reps]  # never worse than the batched result
    x_best, f_best = min(polished, key=lambda t: t[1])
    if not np.isfinite(f_best) or not np.any(conv):
        raise FitError("the loss-law fit did not converge from any start", hint="check the runs for outliers")
    at_best = int(np.sum(f <= f_best + AT_BEST_RTOL * abs(f_best)))
    p = x_to_params(x_best)
    return LossFit(
        E=p.E, A=p.A, B=p.B, alpha=p.alpha, beta=p.beta, objective=f_best, objective_name=_objective_name(obj),
        n_runs=int(N.size), n_starts=int(X0.shape[0]), n_starts_at_best=max(at_best, 1),
        n_starts_converged=int(conv.sum()), flags=tuple(_flags(x_best, N, D, L)),
        distinct_optima=tuple(tuple(float(v) for v in X[i]) for i in reps),
    )


def _objective_name(obj: Objective) -> str:
    if obj.kind == "mse":
        return "sum of squared log-residuals / 2"
    if obj.kind == "asymmetric":
        return f"sum of asymmetric Huber(delta={obj.delta:g}, over-prediction weight {obj.asym_weight:g}) on log-loss"
    if obj.kind == "mle":
        return f"Huber likelihood (delta={obj.delta:g}, free scale), negative log-likelihood"
    return f"sum of Huber(delta={obj.delta:g}) on log-loss residuals"


# ----------------------------------------------------------------------------------------------------
# Maximum likelihood (Besiroglu et al. 2024)


def huber_log_normaliser(delta: float) -> float:
    """log Z(delta), Z = sqrt(2·pi)·(1 − 2·Phī(delta)) + 2·e^(−delta²/2)/delta (Huber density normaliser)."""
    phibar = 0.5 * math.erfc(delta / math.sqrt(2.0))
    return math.log(math.sqrt(2.0 * math.pi) * (1.0 - 2.0 * phibar) + 2.0 * math.exp(-delta * delta / 2.0) / delta)


def mle_value_grad(theta, N, D, L, delta: float = 1e-3):
    """NLL(x, s) = Σ_i [rho_delta(r_i/sigma) + log Z(delta) + s], sigma = e^s, and its gradient (6 values).

    Besiroglu et al. 2024 §2 (notebook objective `objective`): Huber-distributed log-residuals with a
    free scale. d/dx = Σ psi(r_i/sigma)/sigma · dr_i/dx;  d/ds = n − Σ psi(r_i/sigma)·r_i/sigma.
    """
    theta = np.asarray(theta, dtype=float)
    x, s = theta[:5], float(theta[5])
    sigma = math.exp(s)
    data = _Data.of(N, D, L)
    lse, e1, e2, e3, S = _lse_parts(data.to_centred(x), data)
    u = (lse - data.logL)[0] / sigma
    obj = Objective("huber", delta=delta)
    rho, psi = obj.rho_psi(u)
    n = u.size
    f = float(rho.sum() + n * huber_log_normaliser(delta) + n * s)
    q = psi / sigma / S[0]
    g1, g2 = q * e1[0], q * e2[0]
    g = np.array([g1.sum(), g2.sum(), (q * e3[0]).sum(), -(g1 @ data.lnN_c), -(g2 @ data.lnD_c), n - (psi * u).sum()])
    g[3] -= data.mN * g[0]
    g[4] -= data.mD * g[1]
    return f, g


def fit_mle(N, D, L, *, delta: float = 1e-3, x0=None) -> LossFit:
    """Maximum-likelihood fit (Besiroglu et al. 2024 §2.2 step 3): scipy BFGS on :func:`mle_value_grad`.

    Started, as in the paper's notebook, from Hoffmann's unrounded constants with s = 0.
    Raises FitError when BFGS ends at a non-finite point.
    """
    from scipy.optimize import minimize

    N, D, L = _check_runs(N, D, L, 6)
    start = np.r_[HOFFMANN_UNROUNDED_X, 0.0] if x0 is None else np.asarray(x0, dtype=float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        res = minimize(mle_value_grad, start, args=(N, D, L, delta), jac=True, method="BFGS")
    if not (np.all(np.isfinite(res.x)) and np.isfinite(res.fun)):
        raise FitError("the maximum-likelihood fit did not converge", hint="try the default objective")
    p = x_to_params(res.x[:5])
    return LossFit(
        E=p.E, A=p.A, B=p.B, alpha=p.alpha, beta=p.beta, objective=float(res.fun),
        objective_name=_objective_name(Objective("mle", delta=delta)), n_runs=int(N.size), n_starts=1,
        n_starts_at_best=1, n_starts_converged=int(bool(res.success) or res.status == 2),
        sigma=math.exp(float(res.x[5])), flags=tuple(_flags(res.x[:5], N, D, L)),
    )
