"""Pure helpers of planner.planning."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.errors import InfeasibleError
from planner.laws._percentile import percentile
from planner.laws.chinchilla import ChinchillaParams
from planner.planning import MIN_PARAMS, recommend


@pytest.mark.parametrize("n", [1, 2, 7, 200])
@pytest.mark.parametrize("q", [0, 5, 50, 95, 100])
def test_percentile_matches_numpys_linear_rule(n, q):
    values = list(np.random.default_rng(n).normal(size=n))
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-12)


def test_default_law_gives_bands(cli):
    """besiroglu-2024 ships 200 draws of the reproduced Epoch bootstrap, so recommendations carry bands."""
    d = cli("recommend", "--target-loss", "2.3", "--inference-tokens", "2e12", "--json").json
    iv = d["intervals"]
    assert iv["n_samples"] == 200 and iv["n_params"]["p5"] < d["n_params"] < iv["n_params"]["p95"]


# ----------------------------------------------------------------------------- validity floors (README "recommend")

def _identity(p):
    from planner.schemas.recommend import LawIdentity

    return LawIdentity(name="t", sha256="0" * 64, path="t.yaml", source="test", E=p.E, A=p.A, B=p.B,
                       alpha=p.alpha, beta=p.beta, params_counted="total")


def _request(**mode):
    from planner.schemas.recommend import InferenceDemand, RecommendRequest

    tokens = mode.pop("inference_tokens", 0.0)
    return RecommendRequest(inference=InferenceDemand(tokens=tokens, input_tokens=0.0, output_tokens=tokens), **mode)


EPOCH = ChinchillaParams(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)


@pytest.mark.parametrize(
    "mode, needle",
    [
        ({"compute_flops": 1.0}, "--compute"),
        ({"target_loss": 1e30}, "lower target loss"),
        ({"n_params": 1e3, "inference_tokens": 1e15}, "--params"),
    ],
)
def test_a_recommendation_below_min_params_is_infeasible(mode, needle):
    with pytest.raises(InfeasibleError) as exc:
        recommend(_request(**mode), EPOCH, _identity(EPOCH))
    assert f"{MIN_PARAMS:,.0f}" in exc.value.message and needle in exc.value.hint


def test_a_recommendation_below_one_step_is_infeasible():
    with pytest.raises(InfeasibleError, match="one training step"):
        recommend(_request(target_loss=2.3), EPOCH, _identity(EPOCH), min_tokens=1e12)
    ok = recommend(_request(target_loss=2.3), EPOCH, _identity(EPOCH), min_tokens=4096.0)
    assert ok.n_params > MIN_PARAMS and ok.n_tokens > 4096


@pytest.mark.parametrize(
    "mode, given",
    [({"compute_flops": 1e300}, "lifetime budget of 1e+300"), ({"n_params": 1e300}, "1e+300 parameters"),
     ({"n_params": 7e9, "n_tokens": 1e300}, "overflow")],
)
def test_inputs_past_the_law_or_float_range_name_what_was_given(mode, given):
    with pytest.raises(InfeasibleError) as exc:
        recommend(_request(**mode), EPOCH, _identity(EPOCH))
    assert given in exc.value.message and "target loss" not in exc.value.message


def test_change_column_turns_into_a_factor_beyond_11x():
    from planner.render import _change

    assert _change(2.0, 1.0) == "+100.0%" and _change(0.5, 1.0) == "-50.0%"
    assert _change(17.6, 1.0) == "x17.6" and _change(1.99e5, 7e9) == "÷3.52e4"  # not "-100.0%", nor "x2.84e-05"
    assert _change(1.0, 0.0) == "—"
    # extremes (`recommend --params 1e3 --tokens 1e23`, `--compute 1e20 --inference-tokens 1e14`): no "e+03"/"e-19"
    assert _change(7.22e3, 1.0) == "x7.22e3" and _change(1.0, 1.11e18) == "÷1.11e18"
    assert _change(1.0 - 1e-13, 1.0) == "0.0%"  # the solvers' round-off, not "-0.0%"


def test_percentile_counts_unanswered_draws_as_unbounded():
    from planner.laws._percentile import percentile

    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5  # numpy's linear rule
    assert percentile([1.0, 2.0, 3.0, math.inf], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, math.inf], 95) is None  # falls among the +inf draws
    assert percentile([1.0, 2.0, math.nan, math.inf], 50) is None  # NaN (no answer) counts as +inf
    assert percentile([1.0] * 19 + [math.inf], 90) == 1.0


def test_infeasible_draws_widen_the_bands_instead_of_vanishing(cli):
    """At L = 1.84 about a fifth of besiroglu-2024's 200 draws have E >= 1.84: dropping them gave a finite,
    optimistic 95% band. Now they count as +inf: the 95% bound is unbounded, the median rises."""
    d = cli("recommend", "--target-loss", "1.84", "--json").json
    iv = d["intervals"]
    assert iv["n_infeasible"] > 0.05 * iv["n_samples"]
    assert iv["n_params"]["p95"] is None and iv["gpu_hours"]["p95"] is None
    assert iv["n_params"]["p5"] < iv["n_params"]["p50"]
    assert "unbounded" in cli("recommend", "--target-loss", "1.84").stdout


def test_fit_bands_count_infeasible_draws_too():
    from planner.laws.fit_uncertainty import _band

    values = np.array([1.0, 2.0, 3.0, np.nan, np.nan])  # NaN: this draw cannot reach the target
    b = _band(values, best=2.0, level=0.9)
    assert b["low"] == pytest.approx(1.2) and b["high"] is None
    assert _band(np.array([np.nan, np.nan]), 1.0, 0.95) == {"best": 1.0, "low": None, "high": None}
