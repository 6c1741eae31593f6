"""planner.laws.cbs_fit: Zhang et al.'s per-model CBS and N-law from the golden steps-to-target table."""

from __future__ import annotations

import numpy as np
import pytest

from planner.errors import FitError
from planner.laws import cbs_fit as C
from tests.conftest import GOLDEN


@pytest.fixture(scope="module")
def zhang():
    path = GOLDEN / "zhang_cbs_steps.csv"
    if not path.exists():
        pytest.skip("golden Zhang data not present")
    from planner.observations import read_batch_runs

    return read_batch_runs(path)


@pytest.fixture(scope="module")
def zhang_fit(zhang):
    return C.fit_cbs(zhang.N, zhang.D, zhang.batch, zhang.steps)


def test_per_model_cbs_matches_golden(zhang_fit, batch_golden):
    gold = batch_golden["zhang_2024"]["per_model"]
    assert len(zhang_fit.groups) == len(gold)
    for g, want in zip(zhang_fit.groups, gold):
        assert g.N == want["model_nonemb_params_millions"] * 1e6
        assert g.cbs == pytest.approx(want["cbs_sequences"], rel=2e-3)  # brief: 0.2%; we get ~1e-8
        assert g.cbs == pytest.approx(want["cbs_sequences"], rel=1e-7)
        assert g.S_min == pytest.approx(want["a_steps_min"], rel=1e-7)
        assert g.B_crit == pytest.approx(want["mccandlish_bcrit_sequences"], rel=1e-7)


def test_n_law_and_d_law_match_golden(zhang_fit, batch_golden):
    z = batch_golden["zhang_2024"]
    coef, exp = zhang_fit.n_law
    assert coef == pytest.approx(93.20, abs=0.005) and exp == pytest.approx(0.468, abs=5e-4)
    assert coef == pytest.approx(z["n_law"]["coef"], rel=1e-6) and exp == pytest.approx(z["n_law"]["exp"], rel=1e-6)
    d = z["d_law_derived_chinchilla_path"]
    assert zhang_fit.d_law[0] == pytest.approx(d["coef_sequences"], rel=1e-6)
    assert zhang_fit.d_law[1] == pytest.approx(d["exp"], rel=1e-6)


def test_steps_curve_matches_scipy_curve_fit(zhang):
    from scipy.optimize import curve_fit

    sel = zhang.N == 302e6
    a, b = C.fit_steps_curve(zhang.batch[sel], zhang.steps[sel])
    (a_ref, b_ref), _ = curve_fit(lambda B, a, b: np.log(a + b / B), zhang.batch[sel], np.log(zhang.steps[sel]),
                                  p0=[1000.0, 1e6])
    assert a == pytest.approx(a_ref, rel=1e-6) and b == pytest.approx(b_ref, rel=1e-6)


def test_exact_recovery_and_power_law():
    B = np.geomspace(32, 8192, 9)
    a, b = C.fit_steps_curve(B, 1500.0 + 4e6 / B)
    assert a == pytest.approx(1500.0, rel=1e-9) and b == pytest.approx(4e6, rel=1e-9)
    x = np.array([1.0, 10.0, 100.0])
    assert C.fit_power_law(x, 3.0 * x**0.5) == pytest.approx((3.0, 0.5))


def test_b_ref_and_overhead_are_used():
    B = np.geomspace(32, 8192, 9)
    N = np.full(9, 1e8)
    fit = C.fit_cbs(N, None, B, 1000.0 + 2e6 / B, b_ref=128.0)
    assert fit.groups[0].cbs == pytest.approx(1.2 * 128 + 0.2 * 2000.0, rel=1e-8)
    assert fit.n_law is None and fit.d_law is None  # one group: no law


def test_bootstrap_intervals(zhang, zhang_fit):
    boot = C.bootstrap_cbs(zhang.N, zhang.D, zhang.batch, zhang.steps, zhang_fit, n_samples=300, seed=0)
    again = C.bootstrap_cbs(zhang.N, zhang.D, zhang.batch, zhang.steps, zhang_fit, n_samples=300, seed=0)
    assert boot.intervals == again.intervals
    iv = boot.intervals
    for g, band in zip(zhang_fit.groups, iv["cbs_sequences"]):
        assert band["low"] < g.cbs < band["high"]
    assert iv["n_law"]["exp"]["low"] < zhang_fit.n_law[1] < iv["n_law"]["exp"]["high"]
    assert iv["n_rejected"] < 30


def test_profile_dict(zhang_fit):
    from planner.schemas.batch import BatchLawProfile

    prof = BatchLawProfile.model_validate(
        C.batch_law_profile(zhang_fit, name="zhang-refit", source="zhang_cbs_steps.csv", seq_len=512)
    )
    assert prof.definition == "zhang-20pct" and prof.reference_batch_sequences == 256
    n_law, d_law = prof.law("cbs_n"), prof.law("cbs_d")
    assert n_law.input_units == {"N": "millions of non-embedding parameters"} and n_law.output_unit == "sequences"
    assert d_law.coefficient == pytest.approx(0.03525079883364447, rel=1e-6)
    assert d_law.exponents["D"] == pytest.approx(0.46820710865481246, rel=1e-6)


def test_degenerate_groups_are_fit_errors():
    B = np.geomspace(64, 4096, 7)
    N = np.full(7, 1e8)
    with pytest.raises(FitError, match="do not fall"):
        C.fit_cbs(N, None, B, 1000.0 + 0.0 * B + B / 64)  # steps rise with B
    with pytest.raises(FitError, match="never level off"):
        C.fit_cbs(N, None, B, 1e7 / B)  # perfect linear scaling: no S_min in range


def test_cli_fit_cbs_json(cli, batch_golden):
    result = cli("fit-cbs", str(GOLDEN / "zhang_cbs_steps.csv"), "--json")
    assert result.code == 0, result.stderr
    out = result.json
    assert out["n_law"]["coef"] == pytest.approx(batch_golden["zhang_2024"]["n_law"]["coef"], rel=1e-6)
    cbs_n = next(law for law in out["profile"]["laws"] if law["id"] == "cbs_n")
    assert cbs_n["coefficient"] == pytest.approx(batch_golden["zhang_2024"]["n_law"]["coef"], rel=1e-6)
    assert [round(g["cbs"], 1) for g in out["groups"]] == [745.3, 955.2, 1393.7, 1888.5, 2533.4]


def test_steps_curve_is_scale_free_and_quiet_near_double_range():
    """Steps ~1e303 overflowed S² in the start (a raw numpy RuntimeWarning); the fit is linear in (a, b)."""
    import warnings

    B = np.geomspace(32, 8192, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a, b = C.fit_steps_curve(B, (1500.0 + 4e6 / B) * 1e300)
    assert a == pytest.approx(1.5e303, rel=1e-9) and b == pytest.approx(4e306, rel=1e-9)


def test_overflowing_fit_is_a_fit_error():
    B = np.geomspace(64, 4096, 7)
    with pytest.raises(FitError, match="double-precision range"):
        C.fit_cbs(np.full(7, 1e8), None, B, (1000.0 + 2e6 / B) * 1e302)  # b = 2e308


def test_b_ref_outside_lists_groups_that_do_not_bracket_it():
    B = np.tile([64.0, 256.0, 1024.0], 2)
    N = np.repeat([1e8, 2e8], 3)
    assert C.b_ref_outside(N, None, B, 256.0) == []
    out = C.b_ref_outside(N, None, B, 1e9)
    assert [o[1:] for o in out] == [(64.0, 1024.0), (64.0, 1024.0)]


def test_require_law_needs_the_d_law(zhang):
    n_only = C.fit_cbs(zhang.N, None, zhang.batch, zhang.steps)
    assert n_only.n_law is not None and n_only.d_law is None
    with pytest.raises(FitError, match="no tokens column"):
        C.require_law(n_only)
    C.require_law(C.fit_cbs(zhang.N, zhang.D, zhang.batch, zhang.steps))
