"""`planner fit` / `fit-cbs` feeding `planner recommend` through the law files they write."""

from __future__ import annotations

import csv

import pytest
import yaml

from tests.conftest import assert_one_error, golden_file

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    """Runs from a known law with seeded 0.3% noise, 6 sizes x 5 token counts (calibration.md §1.3 design)."""
    import numpy as np

    rng = np.random.default_rng(7)
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["params", "tokens", "loss"])
        for N in np.geomspace(5e7, 3e9, 6):
            for ratio in (5, 10, 20, 40, 80):
                D = ratio * N
                L = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]
                out.writerow([N, D, L * (1 + 0.003 * rng.standard_normal())])
    return path


def test_fit_write_law_then_recommend_with_bands(cli, runs_csv, tmp_path):
    law = tmp_path / "law.yaml"
    r = cli("fit", str(runs_csv), "--bootstrap", "100", "--write-law", str(law), "--json")
    assert r.code == 0, r.stderr
    fit = r.json
    assert {"E", "A", "B", "alpha", "beta", "objective", "n_runs", "n_starts", "n_starts_at_best", "intervals"} <= set(fit)
    assert fit["n_runs"] == 30 and fit["n_starts"] == 4500
    profile = yaml.safe_load(law.read_text())
    assert len(profile["uncertainty"]["samples"]) == 100
    assert {"input_sha256", "objective", "grid", "date"} <= set(profile["provenance"])
    rec = cli("recommend", "--law", str(law), "--target-loss", "2.3", "--inference-tokens", "1e12", "--json")
    assert rec.code == 0, rec.stderr
    iv = rec.json["intervals"]
    assert iv["n_samples"] == 100
    for key in ("n_params", "n_tokens", "train_flops", "gpu_hours", "cost_usd"):
        assert iv[key]["p5"] <= iv[key]["p50"] <= iv[key]["p95"], key
    assert iv["n_params"]["p5"] <= rec.json["n_params"] <= iv["n_params"]["p95"]
    table = cli("recommend", "--law", str(law), "--target-loss", "2.3")
    assert "bootstrap draws" in table.stdout and "GPU-hours" in table.stdout


def test_fit_cbs_write_law_then_recommend(cli, tmp_path):
    law = tmp_path / "batch.yaml"
    r = cli("fit-cbs", str(golden_file("zhang_cbs_steps.csv")), "--write-law", str(law))
    assert r.code == 0, r.stderr
    fitted = cli("recommend", "--params", "7B", "--batch-law", str(law), "--json").json
    shipped = cli("recommend", "--params", "7B", "--json").json
    assert fitted["critical_batch_tokens"] == pytest.approx(shipped["critical_batch_tokens"], rel=1e-6)
    assert cli("profiles", "validate", str(law)).code == 0


def test_fit_bad_input(cli, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("params,tokens,loss\n")
    assert_one_error(cli("fit", str(empty)), 3)
    assert_one_error(cli("fit", str(tmp_path / "missing.csv")), 3)
    bad = tmp_path / "bad.csv"
    bad.write_text("params,tokens,loss\n1e8,2e9,3.1\n2e8,4e9,x\n")
    r = cli("fit", str(bad))
    assert_one_error(r, 3)
    assert "row 2" in r.stderr and "loss" in r.stderr
    assert_one_error(cli("fit", str(bad), "--objective", "l1"), 2)
