"""`planner fit` / `fit-cbs`: laws `recommend` can use, ignored flags, E at 0, extreme steps, B_ref, JSON keys."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import GOLDEN, assert_one_error, write_csv


def _grid(law):
    return [(N, r * N, law(N, r * N)) for N in (1e7, 1e8, 1e9, 1e10) for r in (5, 20, 80)]


@pytest.fixture
def runs(tmp_path):
    return write_csv(tmp_path / "runs.csv", ("params", "tokens", "loss"),
                  _grid(lambda N, D: 1.8 + 480.0 / N**0.35 + 2100.0 / D**0.37))


@pytest.fixture
def zhang_rows():
    path = GOLDEN / "zhang_cbs_steps.csv"
    if not path.exists():
        pytest.skip("golden Zhang data not present")
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _zhang(tmp_path, rows, name, drop=(), steps_scale=1.0):
    header = [c for c in rows[0] if c not in drop]
    out = [[float(r[c]) * steps_scale if c == "steps_to_target" else r[c] for c in header] for r in rows]
    return write_csv(tmp_path / name, header, out)


def test_fit_cbs_without_a_d_law_does_not_write_a_law_recommend_refuses(cli, tmp_path, zhang_rows):
    """No tokens column: only the N-law; recommend --batch-law needs CBS(D), so --write-law must refuse."""
    nt = _zhang(tmp_path, zhang_rows, "nt.csv", drop=("tokens_at_target",))
    r = cli("fit-cbs", str(nt), "--json")
    assert r.code == 0 and r.json["n_law"] is not None and r.json["d_law"] is None  # still reported
    law = tmp_path / "nt.yaml"
    r = cli("fit-cbs", str(nt), "--write-law", str(law))
    assert_one_error(r, 5)
    assert "no tokens column" in r.stderr and "training tokens D" in r.stderr and not law.exists()


def test_fit_cbs_d_law_is_what_recommend_reads(cli, tmp_path, zhang_rows):
    law = tmp_path / "b.yaml"
    r = cli("fit-cbs", str(_zhang(tmp_path, zhang_rows, "z.csv")), "--write-law", str(law))
    assert r.code == 0, r.stderr
    assert cli("recommend", "--target-loss", "2.3", "--batch-law", str(law), "--json").code == 0


def test_fit_ignored_flags_warn(cli, runs, tmp_path):
    r = cli("fit", str(runs), "--seed", "5", "--force", "--name", "foo", "--json")
    assert r.code == 0, r.stderr
    assert "warning: --seed is ignored without --bootstrap" in r.stderr
    assert "warning: --force, --name are ignored without --write-law" in r.stderr
    json.loads(r.stdout)  # stdout holds only the result
    r = cli("fit", str(runs), "--compute-col", "flops", "--json")
    assert r.code == 0 and "warning: --compute-col 'flops' is ignored: D comes from the tokens column 'tokens'" in r.stderr
    both = write_csv(tmp_path / "both.csv", ("params", "tokens", "compute", "loss"),
                  [(N, D, 6 * N * D, L) for N, D, L in _grid(lambda N, D: 1.8 + 480.0 / N**0.35 + 2100.0 / D**0.37)])
    r = cli("fit", str(both), "--compute-col", "compute", "--json")
    assert r.code == 0 and "D comes from 'tokens' and 'compute' is ignored" in r.stderr
    assert r.json["input"]["tokens_from"] == "column 'tokens'"


def test_fit_given_flags_do_not_warn(cli, runs, tmp_path):
    law = tmp_path / "law.yaml"
    r = cli("fit", str(runs), "--bootstrap", "3", "--seed", "5", "--write-law", str(law), "--name", "x", "--json")
    assert r.code == 0, r.stderr
    assert "warning" not in r.stderr


def test_fit_cbs_seed_without_bootstrap_warns(cli, tmp_path, zhang_rows):
    r = cli("fit-cbs", str(_zhang(tmp_path, zhang_rows, "z.csv")), "--seed", "4", "--json")
    assert r.code == 0 and "warning: --seed is ignored without --bootstrap" in r.stderr
    r = cli("fit-cbs", str(_zhang(tmp_path, zhang_rows, "z.csv")), "--json")
    assert r.code == 0 and "warning" not in r.stderr


def test_e_at_zero_is_flagged_in_paper_symbols_and_not_written(cli, tmp_path):
    """Noise-free runs of A/N^alpha + B/D^beta (E = 0): flagged boundary and unidentified, refused without --force."""
    e0 = write_csv(tmp_path / "e0.csv", ("params", "tokens", "loss"), _grid(lambda N, D: 480.0 / N**0.35 + 2100.0 / D**0.37))
    law = tmp_path / "x.yaml"
    r = cli("fit", str(e0), "--write-law", str(law))
    assert_one_error(r, 5)
    assert "does not depend on E (the E term is negligible" in r.stderr and "depend on e " not in r.stderr
    assert not law.exists()
    r = cli("fit", str(e0), "--json")
    assert r.code == 0
    assert any(f.startswith("boundary: E = ") and "(log E = -30)" in f for f in r.json["flags"]), r.json["flags"]
    r = cli("fit", str(e0), "--write-law", str(law), "--force")
    assert r.code == 0 and law.exists()


def test_fit_json_has_intervals_null_without_bootstrap(cli, runs):
    r = cli("fit", str(runs), "--json")
    assert r.code == 0
    assert "intervals" in r.json and r.json["intervals"] is None
    assert isinstance(r.json["objective"], float) and r.json["objective_name"].startswith("sum of Huber")


def test_drop_top_loss_too_many_hints_at_the_flag(cli, runs):
    r = cli("fit", str(runs), "--drop-top-loss", "25")
    assert_one_error(r, 3)
    assert "would drop all 12 runs" in r.stderr and "hint: lower --drop-top-loss to at most 6" in r.stderr
    assert "CSV with a header" not in r.stderr
    r = cli("fit", str(runs), "--drop-top-loss", "8")
    assert_one_error(r, 3)
    assert "hint: lower --drop-top-loss to at most 6" in r.stderr


def test_fit_cbs_huge_steps_no_numpy_warning(cli, tmp_path, zhang_rows):
    big = _zhang(tmp_path, zhang_rows, "big.csv", steps_scale=1e298)  # steps ~1e302
    r = cli("fit-cbs", str(big), "--json")
    assert r.code == 0 and "RuntimeWarning" not in r.stderr and r.stderr == ""
    assert [round(g["cbs"], 1) for g in r.json["groups"]] == [745.3, 955.2, 1393.7, 1888.5, 2533.4]
    huge = _zhang(tmp_path, zhang_rows, "huge.csv", steps_scale=1e302)  # steps ~1e306: b = E_min overflows
    r = cli("fit-cbs", str(huge))
    assert_one_error(r, 5)
    assert "double-precision range" in r.stderr


def test_fit_cbs_b_ref_outside_the_measured_batches_warns(cli, tmp_path, zhang_rows):
    z = _zhang(tmp_path, zhang_rows, "z.csv")
    r = cli("fit-cbs", str(z), "--b-ref", "1e9", "--json")
    assert r.code == 0
    assert "warning: --b-ref 1e+09 sequences lies outside the measured batch sizes" in r.stderr
    assert "64 to 16384" in r.stderr and "and 4 more" in r.stderr
    r = cli("fit-cbs", str(z), "--b-ref", "64", "--json")
    assert r.code == 0 and "warning" not in r.stderr
