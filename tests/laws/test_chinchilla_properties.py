"""Property tests of the inference-aware optimum (hypothesis), over the shipped constant sets."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from planner.laws import chinchilla as c

LAWS = [
    c.ChinchillaParams(1.69, 406.4, 410.7, 0.34, 0.28),
    c.ChinchillaParams(1.69, 406.4, 410.7, 0.336, 0.283),
    c.ChinchillaParams(1.8172, 482.01, 2085.43, 0.3478, 0.3658),
]

law = st.sampled_from(LAWS)
gap = st.floats(0.05, 1.5)  # target loss minus E
demand = st.floats(0.0, 1e15)


@settings(max_examples=200, deadline=None)
@given(law, gap, st.floats(1e8, 1e15), st.floats(0.5, 0.995))
def test_optimum_minimises_lifetime_flops_on_the_iso_loss_curve(p, g, d_inf, shrink):
    ell = p.E + g
    N, D = c.inference_optimal(ell, d_inf, p)
    assert math.isclose(c.loss(N, D, p), ell, rel_tol=1e-10)
    best = c.lifetime_flops(N, D, d_inf)
    n_min = (p.A / g) ** (1 / p.alpha)  # smallest N that can reach ell at all
    for other in (n_min + (N - n_min) * shrink, N / shrink):
        D_other = c.tokens_for_loss(other, ell, p)
        assert c.lifetime_flops(other, D_other, d_inf) >= best * (1 - 1e-12)


@settings(max_examples=100, deadline=None)
@given(law, gap)
def test_zero_demand_gives_the_frontier_point(p, g):
    N, D = c.inference_optimal(p.E + g, 0.0, p)
    fN, fD = c.frontier_point(p.E + g, p)
    assert math.isclose(N, fN, rel_tol=1e-9) and math.isclose(D, fD, rel_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(law, gap, st.floats(1e6, 1e14), st.floats(1.5, 100.0))
def test_n_falls_and_d_rises_with_demand(p, g, d_inf, factor):
    N1, D1 = c.inference_optimal(p.E + g, d_inf, p)
    N2, D2 = c.inference_optimal(p.E + g, d_inf * factor, p)
    assert N2 < N1 and D2 > D1


@settings(max_examples=100, deadline=None)
@given(law, st.floats(1e18, 1e27))
def test_compute_optimum_is_the_minimum_of_the_isoflop_curve(p, C):
    N, D = c.compute_optimal(C, p)
    best = c.loss(N, D, p)
    for f in (0.9, 1.1):
        assert c.loss(N * f, C / (6 * N * f), p) > best


@settings(max_examples=300, deadline=None)
@given(law, st.floats(-8.0, 0.3).map(lambda e: 10.0**e), st.one_of(st.just(1e-300), st.floats(1e-6, 1e17)))
def test_optimum_exists_for_every_target_above_E(p, g, d_inf):
    # Regression: near E, or with a tiny D_inf, the D_inf term fell below rounding at the frontier
    # bracket and the solver raised "root not bracketed" (loss-laws.md §3.2: a solution exists iff ell > E).
    ell = p.E + g
    N, D = c.inference_optimal(ell, d_inf, p)
    fN, fD = c.frontier_point(ell, p)
    assert math.isfinite(N) and math.isfinite(D)
    assert N <= fN * (1 + 1e-6) and D >= fD * (1 - 1e-9)  # N = (A/(gap − B·D^-beta))^(1/alpha) cancels near E
    assert math.isclose(c.loss(N, D, p) - p.E, g, rel_tol=1e-6)


@settings(max_examples=200, deadline=None)
@given(law, st.floats(1e15, 1e30), st.one_of(st.just(1e-300), st.floats(1e-6, 1e20)))
def test_lifetime_optimum_for_any_positive_demand(p, C, d_inf):
    # Regression: a negligible D_inf failed to converge; one too large to serve hit log(0).
    try:
        N, D = c.lifetime_optimal(C, d_inf, p)
    except c.InfeasibleError:
        assert C / (2.0 * d_inf) < 1.0
        return
    assert N > 0 and D > 0
    assert math.isclose(c.lifetime_flops(N, D, d_inf), C, rel_tol=1e-9)
