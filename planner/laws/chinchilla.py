"""Chinchilla loss law and the allocations derived from it (pure numerics, numpy in and out).

Legend (paper symbols, as in Hoffmann et al. 2022, arXiv:2203.15556):
    N      parameters (the count the constants were fitted with; Chinchilla counts all, embeddings in)
    D      training tokens
    C      training FLOPs, C = 6·N·D (Kaplan et al. 2020, used in Hoffmann §3.3)
    E, A, B, alpha, beta   constants of L(N, D) = E + A/N^alpha + B/D^beta  (Hoffmann eq. 2), L in nats/token
    D_inf  lifetime inference tokens (prompt + generated), each costing 2·N FLOPs (Sardana et al. 2024 §2)
    ell    a target loss

Nothing here reads files, the environment or the clock; nothing prints. Infeasible requests raise
:class:`planner.errors.InfeasibleError` before any solver runs.

Functions use plain arithmetic (``x ** y``), so they take Python floats or numpy arrays alike without
importing numpy: `planner recommend` stays fast to start (numpy alone costs ~0.2 s to import).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.errors import InfeasibleError
from planner.laws._roots import bracketed_root


@dataclass(frozen=True)
class ChinchillaParams:
    """Constants of L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    @property
    def G(self) -> float:
        """G = (alpha·A / (beta·B))^(1/(alpha+beta))  (Hoffmann eq. 4)."""
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    @property
    def a(self) -> float:
        """Exponent of N_opt ∝ C^a, a = beta/(alpha+beta)  (Hoffmann eq. 4)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt ∝ C^b, b = alpha/(alpha+beta)  (Hoffmann eq. 4)."""
        return self.alpha / (self.alpha + self.beta)


def loss(N, D, p: ChinchillaParams):
    """Predicted final loss L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2)."""
    return p.E + p.A / N**p.alpha + p.B / D**p.beta


def training_flops(N, D):
    """Training FLOPs C = 6·N·D (Kaplan et al. 2020; Hoffmann §3.3)."""
    return 6.0 * N * D


def lifetime_flops(N, D, D_inf):
    """Training plus inference FLOPs, 6·N·D + 2·N·D_inf (Sardana et al. 2024, eq. 3)."""
    return 6.0 * N * D + 2.0 * N * D_inf


def compute_optimal(C, p: ChinchillaParams):
    """Compute-optimal allocation for training FLOPs C (Hoffmann et al. 2022, eq. 4).

    N_opt = G·(C/6)^a,  D_opt = G^-1·(C/6)^b,  with G, a, b as in :class:`ChinchillaParams`.
    Returns (N_opt, D_opt); 6·N_opt·D_opt = C exactly.
    """
    return p.G * (C / 6.0) ** p.a, (C / 6.0) ** p.b / p.G


def frontier_tokens(N, p: ChinchillaParams):
    """Tokens on the compute-optimal frontier for a model of N parameters.

    D_opt(N) = (beta·B·N^alpha / (alpha·A))^(1/beta), from the frontier condition
    alpha·A·N^-alpha = beta·B·D^-beta (Hoffmann eq. 4 solved for D at fixed N).
    """
    return (p.beta * p.B * N**p.alpha / (p.alpha * p.A)) ** (1.0 / p.beta)


def frontier_point(ell, p: ChinchillaParams):
    """The frontier (compute-optimal) model that reaches loss ell (requires ell > E).

    N = (A·(1 + alpha/beta) / (ell − E))^(1/alpha),  D = (B·(1 + beta/alpha) / (ell − E))^(1/beta)
    (Hoffmann eq. 4 combined with eq. 2; `chinchilla_params_from_loss` in Sardana et al.'s code).
    """
    _require_above_E(ell, p)
    gap = ell - p.E
    N = (p.A * (1.0 + p.alpha / p.beta) / gap) ** (1.0 / p.alpha)
    D = (p.B * (1.0 + p.beta / p.alpha) / gap) ** (1.0 / p.beta)
    return N, D


def loss_floor_for_params(N, p: ChinchillaParams):
    """Lowest loss a model of N parameters reaches with unlimited data: E + A/N^alpha."""
    return p.E + p.A / N**p.alpha


def loss_floor_for_tokens(D, p: ChinchillaParams):
    """Lowest loss D training tokens reach with an unlimited model: E + B/D^beta."""
    return p.E + p.B / D**p.beta


def tokens_for_loss(N: float, ell: float, p: ChinchillaParams) -> float:
    """Training tokens a model of N parameters needs to reach loss ell.

    D = (B / (ell − E − A/N^alpha))^(1/beta)  (eq. 2 solved for D). Infeasible when
    ell <= E + A/N^alpha (the model's floor).
    """
    floor = float(loss_floor_for_params(N, p))
    if not ell > floor:
        raise InfeasibleError(
            f"a model of {N:.4g} parameters cannot reach loss {ell:g}: its floor E + A/N^alpha = {floor:.6g}",
            hint=f"raise the target above {floor:.4g} or use a larger model",
        )
    return float((p.B / (ell - floor)) ** (1.0 / p.beta))


def params_for_loss(D: float, ell: float, p: ChinchillaParams) -> float:
    """Parameters needed to reach loss ell with D training tokens.

    N = (A / (ell − E − B/D^beta))^(1/alpha)  (eq. 2 solved for N). Infeasible when
    ell <= E + B/D^beta (the data's floor).
    """
    floor = float(loss_floor_for_tokens(D, p))
    if not ell > floor:
        raise InfeasibleError(
            f"{D:.4g} training tokens cannot reach loss {ell:g}: their floor E + B/D^beta = {floor:.6g}",
            hint=f"raise the target above {floor:.4g} or train on more tokens",
        )
    return float((p.A / (ell - floor)) ** (1.0 / p.alpha))


def compute_optimal_loss(C: float, p: ChinchillaParams) -> float:
    """Lowest loss reachable with training FLOPs C: L at the eq. 4 allocation."""
    N, D = compute_optimal(C, p)
    return float(loss(N, D, p))


def require_budget_reaches(C: float, ell: float, p: ChinchillaParams) -> None:
    """Raise InfeasibleError when no allocation of training FLOPs C reaches loss ell."""
    best = compute_optimal_loss(C, p)
    if not ell > best:
        raise InfeasibleError(
            f"a training budget of {C:.4g} FLOPs cannot reach loss {ell:g}: its best loss is {best:.6g}",
            hint=f"raise the target above {best:.4g} or raise the budget",
        )


def inference_optimal(ell: float, D_inf: float, p: ChinchillaParams) -> tuple[float, float]:
    """Inference-aware optimum (Sardana et al. 2024, §2 eq. 3): minimise 6·N·D + 2·N·D_inf s.t. L(N, D) = ell.

    The Lagrange conditions reduce to one equation in D (derivation in
    shared reference loss-laws.md §3.2, identical to Sardana et al.'s code):

        B·(1 + beta/alpha)·D^-beta + (beta·B·D_inf / (3·alpha))·D^-(beta+1) = ell − E,

    whose left side falls strictly from +inf to 0, so a root exists iff ell > E and is unique. It is
    solved as a bracketed root in ln D (the frontier D, where D_inf = 0, is a lower bracket), then
    N = (A / (ell − E − B·D^-beta))^(1/alpha). D_inf = 0 gives back :func:`frontier_point`.
    Returns (N, D).
    """
    _require_above_E(ell, p)
    if D_inf < 0 or not math.isfinite(D_inf):
        raise ValueError(f"D_inf must be finite and >= 0, got {D_inf!r}")
    gap = ell - p.E
    k1 = p.B * (1.0 + p.beta / p.alpha)
    k2 = p.beta * p.B * D_inf / (3.0 * p.alpha)

    def g(x: float) -> float:  # left side minus right side, in x = ln D; decreasing and convex
        return k1 * math.exp(-p.beta * x) + k2 * math.exp(-(p.beta + 1.0) * x) - gap

    def dg(x: float) -> float:
        return -p.beta * k1 * math.exp(-p.beta * x) - (p.beta + 1.0) * k2 * math.exp(-(p.beta + 1.0) * x)

    D_frontier = float(frontier_point(ell, p)[1])
    if not (D_frontier > 0 and math.isfinite(D_frontier)):
        raise _out_of_range(f"the frontier at loss {ell:g} has D = {D_frontier:g}")
    x_lo = math.log(D_frontier)  # g(x_lo) = k2·D^-(beta+1) >= 0
    if k2 == 0.0 or g(x_lo) <= 0.0:
        # g(x_lo) <= 0 only in rounding: the D_inf term is below the resolution of k1·D^-beta − gap
        # there, so the frontier point is the answer to double precision.
        x = x_lo
    else:
        # Each term alone reaches `gap` at a finite x; the root lies left of the larger of the two
        # solutions of "term = gap/2", which therefore brackets it from the right.
        x_hi = max(math.log(2 * k1 / gap) / p.beta, math.log(2 * k2 / gap) / (p.beta + 1.0), x_lo) + 1.0
        x = bracketed_root(g, x_lo, x_hi, dfun=dg)
    D = math.exp(x)
    N = params_for_loss(D, ell, p)
    return N, D


def lifetime_optimal(C_total: float, D_inf: float, p: ChinchillaParams) -> tuple[float, float]:
    """Lowest-loss model for a lifetime FLOP budget: min L(N, D) s.t. 6·N·D + 2·N·D_inf = C_total.

    This is the dual of :func:`inference_optimal` (same Lagrange conditions), so its answer is the
    inference-aware optimum at the loss it reaches. D = C_total/(6N) − D_inf/3 > 0 bounds
    N < C_total/(2·D_inf); the stationarity condition N·dL/dN = 0,

        −alpha·A·N^-alpha + beta·B·D^-(beta+1)·C_total/(6N) = 0,

    rises from −inf to +inf on that interval and is solved as a bracketed root in ln N.
    D_inf = 0 is Hoffmann eq. 4. Returns (N, D).
    """
    N_opt, D_opt = compute_optimal(C_total, p)
    if D_inf <= 1e-12 * float(D_opt):
        # D_inf/3 is below the resolution of D = C_total/(6N) − D_inf/3: eq. 4 to double precision.
        return float(N_opt), float(D_opt)
    n_max = C_total / (2.0 * D_inf)
    if not n_max >= 1.0:
        raise InfeasibleError(
            f"a lifetime budget of {C_total:.4g} FLOPs cannot serve {D_inf:.4g} inference tokens: "
            "2·N·D_inf exceeds it already at one parameter",
            hint="raise the budget or lower the inference demand",
        )

    def s(x: float) -> float:
        N = math.exp(x)
        D = C_total / (6.0 * N) - D_inf / 3.0
        if D <= 0:
            return math.inf
        return -p.alpha * p.A * N ** (-p.alpha) + p.beta * p.B * D ** (-p.beta - 1.0) * C_total / (6.0 * N)

    x_hi = math.log(n_max)
    x_lo = min(math.log(float(N_opt)), x_hi) - 1.0
    for _ in range(200):  # walk left until the bracket holds (N small enough)
        if not s(x_lo) > 0:
            break
        x_lo -= 5.0
    else:
        raise _out_of_range(f"no model below {math.exp(x_lo):.3g} parameters brackets the lifetime optimum")
    x_hi_inner = x_hi - 1e-12
    for _ in range(200):  # the sign change sits within ~1e-12 of n_max only in degenerate inputs
        if not s(x_hi_inner) < 0:
            break
        x_hi_inner = x_hi - (x_hi - x_hi_inner) / 2
    else:
        raise _out_of_range("the lifetime optimum sits at the budget's largest model")
    N = math.exp(bracketed_root(s, x_lo, x_hi_inner))
    return N, C_total / (6.0 * N) - D_inf / 3.0


def _out_of_range(what: str) -> InfeasibleError:
    """Extreme constants (e.g. alpha = 10 with A = 1e300, which a boundary fit can write) leave double precision."""
    return InfeasibleError(f"{what}: this law's constants put the answer outside double-precision range",
                           hint="check the law's constants (`planner laws show NAME`); refit it if it is a boundary fit")


def cost_per_flop(price_usd_per_hour: float, peak_flops_per_s: float) -> float:
    """USD per FLOP at 100% utilisation: c = price / (3600 · peak)  (Sardana et al. §6; cost_calculator.py)."""
    return price_usd_per_hour / (3600.0 * peak_flops_per_s)


def effective_inference_tokens(
    c_inf_over_c_train: float,
    mfu_train: float,
    D_in: float,
    mfu_prefill: float,
    D_out: float,
    mfu_decode: float,
) -> float:
    """Inference tokens that make the FLOP problem equal the dollar problem (Sardana et al. §6).

    Cost(N, D) = c_tr·6ND/U_tr + c_inf·2N·D_in/U_in + c_inf·2N·D_out/U_out is k1·N·D + k2·N, so its
    minimiser on L(N, D) = ell is :func:`inference_optimal` with D_inf replaced by
    T_eff = 3·k2/k1 = (c_inf/c_tr)·U_tr·(D_in/U_in + D_out/U_out).
    """
    return c_inf_over_c_train * mfu_train * (D_in / mfu_prefill + D_out / mfu_decode)


def lifetime_cost(
    N,
    D,
    D_in: float,
    D_out: float,
    c_train: float,
    c_inf: float,
    mfu_train: float,
    mfu_prefill: float,
    mfu_decode: float,
):
    """Lifetime USD: (train, inference) = (c_tr·6ND/U_tr, c_inf·2N·(D_in/U_in + D_out/U_out)).

    Sardana et al. 2024 §6 (cost model of `cost_calculator.py::total_cost`); c are USD per FLOP
    at full utilisation (:func:`cost_per_flop`), U the MFUs of training, prefill and decode.
    """
    train = c_train * 6.0 * N * D / mfu_train
    inference = c_inf * 2.0 * N * (D_in / mfu_prefill + D_out / mfu_decode)
    return train, inference


def _require_above_E(ell, p: ChinchillaParams) -> None:
    ell_min = float(ell.min()) if hasattr(ell, "min") else float(ell)
    if not ell_min > p.E:
        raise InfeasibleError(
            f"target loss {ell_min:g} <= E = {p.E:g}: no finite model reaches the law's irreducible loss",
            hint=f"choose a target above E = {p.E:g} (this law's entropy of text), or another law",
        )
