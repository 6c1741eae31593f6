"""Every golden case of shared/golden/loss_laws.json through the library API.

Tolerances (shared reference loss-laws.md §7): closed forms 1e-9 relative, root-finders 1e-6,
published paper figures only to their printed precision.
"""

from __future__ import annotations

import math

import pytest

from planner import resolve
from planner.errors import InfeasibleError
from planner.laws import chinchilla as c
from planner.laws import kaplan
from tests.conftest import LAW_OF

CLOSED = 1e-9
SOLVER = 1e-6


def close(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel)


@pytest.fixture(scope="module")
def laws(loss_golden):
    """Golden constant sets as ChinchillaParams, checked against the shipped profiles."""
    out = {}
    for row in loss_golden["constants"]:
        p = c.ChinchillaParams(row["E"], row["A"], row["B"], row["alpha"], row["beta"])
        shipped = resolve.law_params(resolve.load_law(LAW_OF[row["name"]]).profile)
        for k in ("E", "A", "B", "alpha", "beta"):
            assert close(getattr(shipped, k), getattr(p, k), 1e-12), (row["name"], k)
        out[row["name"]] = p
    return out


def test_a_compute_optimal_closed_form(loss_golden, laws):
    for row in loss_golden["a"]:
        p = laws[row["constants"]]
        N, D = c.compute_optimal(row["C"], p)
        assert close(N, row["N"], CLOSED) and close(D, row["D"], CLOSED), row
        assert close(D / N, row["tokens_per_param"], CLOSED)
        assert close(c.loss(N, D, p), row["loss"], CLOSED)
        assert close(6 * N * D, row["C"], 1e-12)  # identity: 6·N·D = C at the optimum


def test_a3_table_regenerated_from_frontier(loss_golden, laws):
    worst: dict[str, float] = {}
    summaries = {}
    for row in loss_golden["a3"]:
        if "summary_max_rel_err_C" in row:
            summaries[row["constants"]] = row["summary_max_rel_err_C"]
            continue
        p = laws[row["constants"]]
        D = c.frontier_tokens(row["N"], p)
        assert close(D, row["D"], CLOSED) and close(6 * row["N"] * D, row["C"], CLOSED), row
        signed = 6 * row["N"] * D / row["C_published"] - 1
        assert close(signed, row["C_rel_err"], CLOSED)
        worst[row["constants"]] = max(worst.get(row["constants"], 0), abs(signed))
    for name, value in summaries.items():
        assert close(worst[name], value, CLOSED)
    # loss-laws.md §1.5: De Vries' constants fit Hoffmann Table A3 best (8.0% max FLOP error).
    assert round(worst["sardana_devries"], 3) == 0.080
    assert min(worst, key=worst.get) == "sardana_devries"


def test_gopher_budget(loss_golden, laws):
    for name, row in loss_golden["gopher_budget"].items():
        N, D = c.compute_optimal(5.76e23, laws[name])
        assert close(N, row["N"], CLOSED) and close(D, row["D"], CLOSED)
    # Hoffmann Fig. 4 caption: "40B parameters" at Gopher's budget, with the unrounded constants.
    assert round(c.compute_optimal(5.76e23, laws["hoffmann_unrounded"])[0] / 1e9) == 40


@pytest.mark.parametrize("key", ["b", "c", "sardana_examples", "f_grid"])
def test_inference_aware_optimum(loss_golden, laws, key):
    for row in loss_golden[key]:
        p = laws[row.get("constants", "sardana_devries")]
        assert close(c.loss(row["baseline_N"], row["baseline_D"], p), row["target_loss"], CLOSED)
        N, D = c.inference_optimal(row["target_loss"], row["D_inf"], p)
        assert close(N, row["opt_N"], SOLVER) and close(D, row["opt_D"], SOLVER), row
        if "saving_pct" in row:
            base = c.lifetime_flops(row["baseline_N"], row["baseline_D"], row["D_inf"])
            opt = c.lifetime_flops(N, D, row["D_inf"])
            assert close(base, row["baseline_total_flops"], CLOSED)
            assert close(100 * (base - opt) / base, row["saving_pct"], SOLVER)
            tN, tD = c.frontier_point(row["target_loss"], p)
            assert close(tN, row["train_only_opt_N"], CLOSED) and close(tD, row["train_only_opt_D"], CLOSED)


def test_sardana_published_headlines(loss_golden, laws):
    """Sardana et al. 2024's printed figures, at their printed precision (loss-laws.md §3.4)."""
    p = laws["sardana_devries"]
    base_N = 13e9
    ell = c.loss(base_N, c.frontier_tokens(base_N, p), p)
    N, D = c.inference_optimal(ell, 2e12, p)
    saved = c.lifetime_flops(base_N, c.frontier_tokens(base_N, p), 2e12) - c.lifetime_flops(N, D, 2e12)
    assert round(N / 1e9) == 7 and f"{saved:.1e}" == "1.7e+22"  # "a 7B model ... saves 1.7e22 FLOPs"


def test_cost_objective(loss_golden, laws):
    for row in loss_golden["c_cost"]:
        p = laws[row["constants"]]
        c_tr = c.cost_per_flop(1.50, 3.12e14)
        c_inf = c.cost_per_flop(row["c_inf_over_c_train"] * 1.50 * 6.24e14 / 3.12e14, 6.24e14)
        assert close(c_inf / c_tr, row["c_inf_over_c_train"], CLOSED)
        T_eff = c.effective_inference_tokens(c_inf / c_tr, 0.5, row["T_in"], 0.5, row["T_out"], 0.01)
        assert close(T_eff, row["T_eff"], CLOSED)
        N, D = c.inference_optimal(row["target_loss"], T_eff, p)
        assert close(N, row["cost_opt_N"], SOLVER) and close(D, row["cost_opt_D"], SOLVER), row["label"]
        cost = sum(c.lifetime_cost(N, D, row["T_in"], row["T_out"], c_tr, c_inf, 0.5, 0.5, 0.01))
        base = sum(c.lifetime_cost(row["baseline_N"], row["baseline_D"], row["T_in"], row["T_out"],
                                   c_tr, c_inf, 0.5, 0.5, 0.01))
        assert close(cost, row["cost_opt_cost"], SOLVER) and close(base, row["baseline_cost"], CLOSED)
        fN, fD = c.inference_optimal(row["target_loss"], row["T_in"] + row["T_out"], p)
        assert close(fN, row["flop_opt_N"], SOLVER) and close(fD, row["flop_opt_D"], SOLVER)


def test_readme_examples_of_sardana_code(loss_golden, laws):
    p = laws["sardana_devries"]
    r = loss_golden["readme"]
    assert close(c.loss(70e9, 1e12, p), r["loss_70B_1T"], CLOSED)
    # compute_optimal.py --loss 1.947 --inference_tokens 2e12 (the README passes the rounded loss)
    N, D = c.inference_optimal(1.947, 2e12, p)
    bN, bD = c.frontier_point(1.947, p)
    assert close(N, r["opt_N"], SOLVER) and close(D, r["opt_D"], SOLVER)
    assert close(bN, r["chin_N"], CLOSED) and close(bD, r["chin_D"], CLOSED)
    ratio = c.lifetime_flops(N, D, 2e12) / c.lifetime_flops(bN, bD, 2e12)
    assert close(100 * ratio, r["flops_pct"], SOLVER)
    # cost_optimal.py: A100-80GB bf16 $1.40 train, A100-40GB int8 $0.60; MFU 0.5/0.4/0.2; 1e10 x (1000 in, 250 out)
    rc = loss_golden["readme_cost"]
    c_tr, c_inf = c.cost_per_flop(1.40, 3.12e14), c.cost_per_flop(0.60, 6.24e14)
    T_eff = c.effective_inference_tokens(c_inf / c_tr, 0.5, 1e13, 0.4, 2.5e12, 0.2)
    N, D = c.inference_optimal(1.947, T_eff, p)
    assert close(N, rc["opt_N"], SOLVER) and close(D, rc["opt_D"], SOLVER)
    assert close(100 * N / bN, rc["N_pct"], SOLVER) and close(100 * D / bD, rc["D_pct"], SOLVER)


def test_d_infeasible_and_boundary_cases(laws):
    rounded, besiroglu = laws["hoffmann_rounded"], laws["besiroglu"]
    for target in (1.60, 1.69):  # below and exactly at E
        with pytest.raises(InfeasibleError, match="E = 1.69"):
            c.inference_optimal(target, 2e12, rounded)
    with pytest.raises(InfeasibleError, match="2.04396"):
        c.tokens_for_loss(1e9, 2.0, rounded)
    N, D = c.inference_optimal(1.80, 2e12, rounded)
    assert f"{N:.3e} {D:.3e}" == "3.155e+11 4.998e+13"
    with pytest.raises(InfeasibleError, match="1.8172"):
        c.inference_optimal(1.80, 2e12, besiroglu)
    assert f"{c.compute_optimal_loss(1e21, rounded):.6f}" == "2.328883"
    with pytest.raises(InfeasibleError, match="budget"):
        c.require_budget_reaches(1e21, 2.3288, rounded)
    c.require_budget_reaches(1e21, 2.3289, rounded)  # just above the budget's best loss: reachable


def test_e_inverse_helpers(loss_golden, laws):
    p = laws["hoffmann_rounded"]
    e = loss_golden["e_inverse"]
    assert close(c.tokens_for_loss(7e9, 2.1, p), e["tokens_for_N7e9_L2p1"], CLOSED)
    assert close(c.params_for_loss(1e12, 2.1, p), e["params_for_D1e12_L2p1"], CLOSED)
    N, D = c.frontier_point(2.0, p)
    assert close(N, e["frontier_L2p0_N"], CLOSED) and close(D, e["frontier_L2p0_D"], CLOSED)
    assert close(6 * N * D, e["frontier_L2p0_C"], CLOSED)
    assert close(c.loss_floor_for_params(1e9, p), e["loss_floor_N1e9"], CLOSED)


def test_kaplan(loss_golden):
    k = loss_golden["kaplan"]
    assert close(kaplan.loss(1e9, 2e10), k["kaplan_loss_N1e9_D2e10"], CLOSED)
    assert close(kaplan.compute_efficient_params(1e21), k["kaplan_N_at_1e21"], CLOSED)
    assert round(kaplan.compute_efficient_params(1e21) / 1e7) == 468  # Hoffmann App. D.4: "4.68 billion"


def test_lifetime_budget_dual_matches_sardana(laws):
    """min L at fixed lifetime FLOPs lands on the inference-aware optimum at the loss it reaches."""
    p = laws["sardana_devries"]
    N, D = c.inference_optimal(2.0, 5e12, p)
    N2, D2 = c.lifetime_optimal(float(c.lifetime_flops(N, D, 5e12)), 5e12, p)
    assert close(N2, N, SOLVER) and close(D2, D, SOLVER)
