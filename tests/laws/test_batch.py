"""Batch-size laws against the golden cases (shared golden/batch_laws.json, batch-laws.md §6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from planner.laws import batch as bl

PROFILES = Path(__file__).resolve().parents[2] / "profiles" / "batch"


@pytest.fixture(scope="module")
def golden(batch_golden) -> dict:
    """shared/golden/batch_laws.json (conftest skips when it is absent)."""
    return batch_golden


def rel(a, b) -> float:
    return abs(float(a) / float(b) - 1.0)


# ---- Zhang et al. 2024 --------------------------------------------------------------------------------


def test_zhang_n_law_refit_constants_reproduce_published(golden):
    law = golden["zhang_2024"]["n_law"]
    assert round(law["coef"], 2) == 93.20 and round(law["exp"], 2) == 0.47
    assert bl.ZHANG_N_LAW == (93.20, 0.47)


@pytest.mark.parametrize("index", range(5))
def test_zhang_n_law_tracks_per_model_cbs(golden, index):
    """The refit N-law passes within 10% of each model's CBS (it is a 2-parameter fit through 5 points)."""
    law = golden["zhang_2024"]["n_law"]
    row = golden["zhang_2024"]["per_model"][index]
    n_m = row["model_nonemb_params_millions"]
    refit = bl.zhang_cbs_from_params(n_m, law["coef"], law["exp"])
    assert rel(refit, row["cbs_sequences"]) < 0.10
    # published rounded constants stay within 3% of the refit over the fitted range
    assert rel(bl.zhang_cbs_from_params(n_m), refit) < 0.03


@pytest.mark.parametrize(
    ("n_tokens", "cbs_seq", "cbs_tok"),
    [(1e9, 576.8, 2.953e5), (1e10, 1695, 8.680e5), (1e11, 4982, 2.551e6), (1e12, 1.464e4, 7.498e6)],
)
def test_zhang_derived_d_law_table(golden, n_tokens, cbs_seq, cbs_tok):
    law = golden["zhang_2024"]["d_law_derived_chinchilla_path"]
    assert (law["coef_sequences"], law["exp"]) == bl.ZHANG_D_LAW
    assert rel(bl.zhang_cbs_from_tokens(n_tokens), cbs_seq) < 5e-4  # 4 significant figures
    assert rel(bl.zhang_cbs_tokens(n_tokens), cbs_tok) < 5e-4


@pytest.mark.parametrize(("n_m", "expected"), [(302, 1021), (604, 1085), (1200, 1151)])
def test_zhang_fixed_data_law(golden, n_m, expected):
    law = golden["zhang_2024"]["fixed_data_law_reviewer_quoted"]
    assert (law["coef"], law["exp"]) == bl.ZHANG_FIXED_DATA_LAW and law["tokens"] == bl.ZHANG_FIXED_DATA_TOKENS
    assert round(float(bl.zhang_cbs_fixed_data(n_m))) == expected


@pytest.mark.parametrize("index", range(5))
def test_cbs_bcrit_conversion_on_golden_fits(golden, index):
    row = golden["zhang_2024"]["per_model"][index]
    b_over_a = row["b"] / row["a_steps_min"]
    assert np.isclose(bl.cbs_from_bcrit(b_over_a, 256), row["cbs_sequences"], rtol=1e-10)
    assert np.isclose(bl.bcrit_from_cbs(row["cbs_sequences"], 256), row["mccandlish_bcrit_sequences"], rtol=1e-10)


# ---- Kaplan, DeepSeek, Step Law ----------------------------------------------------------------------


def test_kaplan(golden):
    for case in golden["kaplan_2020"]:
        assert np.isclose(bl.kaplan_bcrit(case["loss"]), case["bcrit_tokens"], rtol=1e-12)


def test_deepseek(golden):
    for case in golden["deepseek_2024"]:
        assert np.isclose(bl.deepseek_batch(case["flops"]), case["b_opt_tokens"], rtol=1e-12)
        assert np.isclose(bl.deepseek_lr(case["flops"]), case["lr_opt"], rtol=1e-12)


def test_steplaw(golden):
    sl = golden["steplaw_2025"]
    c = sl["constants"]
    assert bl.STEPLAW_B_LAW == (c["bs_c"], c["bs_d"]) and bl.STEPLAW_LR_LAW == (c["lr_c"], c["lr_n"], c["lr_d"])
    case = sl["case"]
    assert np.isclose(bl.steplaw_batch(case["tokens"]), case["b_opt_tokens"], rtol=1e-12)
    assert np.isclose(bl.steplaw_lr(case["n_nonemb"], case["tokens"]), case["lr_opt"], rtol=1e-12)
    assert round(float(bl.steplaw_batch(case["tokens"])) / 4096) == 1496  # §6d: sequences of 4096


def test_mccandlish_table(golden):
    for case in golden["mccandlish_2018"]:
        r = case["b_over_bcrit"]
        assert np.isclose(bl.steps_ratio(r, 1.0), case["steps_over_min"])
        assert np.isclose(bl.examples_ratio(r, 1.0), case["examples_over_min"])
        assert np.isclose(bl.time_ratio_doubling(r, 1.0), case["time_ratio_doubling"])


# ---- profiles carry the same constants as the code --------------------------------------------------


def _law(profile: str, law_id: str) -> dict:
    data = yaml.safe_load((PROFILES / f"{profile}.yaml").read_text())
    return next(law for law in data["laws"] if law["id"] == law_id)


@pytest.mark.parametrize(
    ("profile", "law_id", "variables", "func"),
    [
        ("zhang-2024", "cbs_d", {"D": 1e11}, lambda: bl.zhang_cbs_from_tokens(1e11)),
        ("zhang-2024", "cbs_n", {"N": 604.0}, lambda: bl.zhang_cbs_from_params(604.0)),
        ("zhang-2024", "cbs_fixed_data", {"N": 604.0}, lambda: bl.zhang_cbs_fixed_data(604.0)),
        ("kaplan-2020", "b_crit_loss", {"L": 2.5}, lambda: bl.kaplan_bcrit(2.5)),
        ("deepseek-2024", "b_opt", {"C": 1e22}, lambda: bl.deepseek_batch(1e22)),
        ("deepseek-2024", "lr", {"C": 1e22}, lambda: bl.deepseek_lr(1e22)),
        ("steplaw-2025", "b_opt", {"D": 2e12}, lambda: bl.steplaw_batch(2e12)),
        ("steplaw-2025", "lr", {"N": 7e9, "D": 2e12}, lambda: bl.steplaw_lr(7e9, 2e12)),
    ],
)
def test_profile_constants_match_code(profile, law_id, variables, func):
    law = _law(profile, law_id)
    assert np.isclose(bl.power_law(law["coefficient"], law["exponents"], **variables), func(), rtol=1e-12)


def test_power_law_rejects_wrong_variables():
    with pytest.raises(ValueError, match="law takes"):
        bl.power_law(1.0, {"D": 0.5}, N=1.0)


# ---- token penalty and hyperparameter scaling --------------------------------------------------------


def test_tokens_needed_factor():
    assert bl.tokens_needed_factor(1.0, 1.0, 0.0) == 2.0  # at B_crit: 2x the minimum data
    assert np.isclose(bl.tokens_needed_factor(3.0, 1.0, 1.0), 2.0)  # E(3Bc)/E(Bc) = 4/2
    assert bl.tokens_needed_factor(0.5, 1.0, 0.5) == 1.0


def test_beta2_and_ewa_keep_horizon_in_samples():
    """Zhang's table: beta2 0.995 @256 -> 0.99 @512; EWA 0.999 @1024 -> 0.998 @2048 (batch-laws.md §1.3)."""
    assert np.isclose(bl.beta2_for_batch(0.995, 512, 256), 0.99)
    assert np.isclose(bl.ewa_decay_for_batch(0.999, 2048, 1024), 0.998)
    for b in (512, 1024, 4096):  # horizon B/(1 - decay) is invariant
        assert np.isclose(b / (1 - bl.ewa_decay_for_batch(0.999, b, 1024)), 1024 / 0.001)
    with pytest.raises(ValueError):
        bl.beta2_for_batch(0.95, 256 * 40, 256)


def test_lr_sqrt_scaling_and_warmup():
    assert np.isclose(bl.lr_for_batch(1e-3, 4096, 1024), 2e-3)
    assert bl.warmup_steps(6e6 * 0.25, 256) == np.ceil(1.5e6 / 256)


def test_schedule_recommendation():
    assert bl.schedule_recommendation(4e6)[0] == "constant+ewa"
    assert bl.schedule_recommendation(2.6e5)[0] == "cosine"
    assert "Zhang" in bl.schedule_recommendation(2.6e5)[1]


def test_floor_clips_instead_of_raising():
    assert bl.beta2_for_batch(0.995, 8192, 256, floor=0.95) == 0.95


def test_hyperparameters_for_batch_from_zhang_reference():
    """Zhang's reference (256 x 512 tokens, beta2 0.995, tau 0.9995) scaled to 512 and 4096 sequences."""
    ref = 256 * 512
    h = bl.hyperparameters_for_batch(512 * 512, ref, 3.16e-3, 0.995, 0.9995, warmup_tokens=0.25 * 3.072e9)
    assert h.beta2 == pytest.approx(0.99) and h.ewa_decay == pytest.approx(0.999)  # table: 0.99, 0.9995
    assert h.lr == pytest.approx(3.16e-3 * 2**0.5) and h.schedule == "cosine"  # 0.26M tokens < 0.52M
    big = bl.hyperparameters_for_batch(4096 * 512, ref, 3.16e-3, 0.995, 0.9995, warmup_tokens=0.25 * 3.072e9)
    assert big.beta2 == 0.95 and big.ewa_decay == pytest.approx(0.992)  # table: 0.95, 0.995
    assert big.schedule == "constant+ewa" and big.warmup_steps == 367


def test_mccandlish_bcrit_is_undefined_at_or_below_1_2_b_ref():
    """CBS = 1.2·B_ref + 0.2·B_crit with B_crit > 0: a CBS at or below 1.2·B_ref implies no B_crit (None, never < 0)."""
    assert bl.mccandlish_bcrit(1.2 * 256 + 0.2 * 1000, 256) == pytest.approx(1000)
    assert bl.mccandlish_bcrit(1.2 * 256, 256) is None
    assert bl.mccandlish_bcrit(108.0, 512.0) is None
    assert bl.cbs_from_bcrit(bl.mccandlish_bcrit(745.0, 256), 256) == pytest.approx(745.0)
