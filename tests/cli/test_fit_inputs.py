"""`planner fit` / `fit-cbs` on bad inputs: output paths, flags, unidentifiable fits, directories, Ctrl-C."""

from __future__ import annotations

import csv

import pytest

from tests.conftest import GOLDEN, assert_one_error, golden_file, write_csv

ZHANG = GOLDEN / "zhang_cbs_steps.csv"


def _loss(N, D):
    return 1.8 + 480.0 / N**0.35 + 2100.0 / D**0.37


@pytest.fixture
def runs(tmp_path):
    """Noise-free runs of a known law: 4 sizes x 3 token counts."""
    rows = [(N, r * N, _loss(N, r * N)) for N in (1e7, 1e8, 1e9, 1e10) for r in (5, 20, 80)]
    return write_csv(tmp_path / "runs.csv", ("params", "tokens", "loss"), rows)


@pytest.fixture
def one_size(tmp_path):
    """Six runs of one model size: the fit cannot tell A from E, nor find alpha."""
    rows = [(1e8, D, _loss(1e8, D)) for D in (5e8, 1e9, 2e9, 4e9, 8e9, 1.6e10)]
    return write_csv(tmp_path / "same_n.csv", ("params", "tokens", "loss"), rows)


def _zhang_rows():
    if not ZHANG.exists():
        pytest.skip("golden Zhang data not present")
    with ZHANG.open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def one_group(tmp_path):
    rows = _zhang_rows()
    first = [r for r in rows if r["model_nonemb_params"] == rows[0]["model_nonemb_params"]]
    return write_csv(tmp_path / "one_group.csv", list(first[0]), [list(r.values()) for r in first])


@pytest.fixture
def no_seq(tmp_path):
    rows = _zhang_rows()
    header = [c for c in rows[0] if c != "seq_len"]
    return write_csv(tmp_path / "no_seq.csv", header, [[r[c] for c in header] for r in rows])


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if a fit starts: bad flags and output paths must be caught before any work."""
    from planner import fitting
    from planner.laws import cbs_fit

    def boom(*args, **kwargs):
        raise AssertionError("the fit ran")

    monkeypatch.setattr(fitting, "fit_law", boom)
    monkeypatch.setattr(cbs_fit, "fit_cbs", boom)


@pytest.mark.parametrize("bad", ["missing-dir/x.png", "a-dir", "x.jpg"])
def test_unwritable_plot_fails_before_fitting_or_writing(cli, runs, tmp_path, no_fit, bad):
    (tmp_path / "a-dir").mkdir()
    law = tmp_path / "law.yaml"
    r = cli("fit", str(runs), "--write-law", str(law), "--plot", str(tmp_path / bad))
    assert_one_error(r, 2)
    assert "--plot" in r.stderr and not law.exists()


def test_unwritable_law_fails_before_fitting(cli, runs, tmp_path, no_fit):
    r = cli("fit", str(runs), "--write-law", str(tmp_path / "missing-dir" / "law.yaml"))
    assert_one_error(r, 2)
    assert "--write-law: cannot write" in r.stderr and "no such directory" in r.stderr
    r = cli("fit", str(runs), "--write-law", str(tmp_path))
    assert_one_error(r, 2)
    assert "is a directory" in r.stderr
    r = cli("fit-cbs", str(ZHANG), "--write-law", str(tmp_path / "missing-dir" / "batch.yaml"))
    assert_one_error(r, 2)
    assert "--write-law: cannot write" in r.stderr


def test_negative_seed_is_a_usage_error(cli, runs, no_fit):
    for args in (("fit", str(runs)), ("fit-cbs", str(golden_file("zhang_cbs_steps.csv")))):
        r = cli(*args, "--bootstrap", "5", "--seed", "-1")
        assert_one_error(r, 2)
        assert "--seed" in r.stderr


@pytest.mark.parametrize("value", ["-5", "0"])
def test_seq_len_must_be_positive(cli, no_seq, tmp_path, no_fit, value):
    law = tmp_path / "x.yaml"
    for extra in ((), ("--json",), ("--write-law", str(law))):
        r = cli("fit-cbs", str(no_seq), "--seq-len", value, *extra)
        assert_one_error(r, 2)
        assert "--seq-len" in r.stderr and "no seq_len column" not in r.stderr
    assert not law.exists()


def test_seq_len_fills_a_missing_column(cli, no_seq):
    r = cli("fit-cbs", str(no_seq), "--seq-len", "2048", "--json")
    assert r.code == 0, r.stderr
    assert r.json["profile"]["reference_sequence_length"] == 2048
    r = cli("fit-cbs", str(no_seq))  # no column and no --seq-len: a missing piece of input, like a column
    assert_one_error(r, 3)
    assert "no column 'seq_len'" in r.stderr and "--seq-len" in r.stderr and "add a 'seq_len' column" in r.stderr



def test_seq_len_conflicting_with_the_column_is_refused(cli, tmp_path, no_fit):
    """--seq-len 1024 on a file whose seq_len column says 512 wrote sequence_length 1024 (CBS 2x in tokens)."""
    law = tmp_path / "b.yaml"
    r = cli("fit-cbs", str(golden_file("zhang_cbs_steps.csv")), "--seq-len", "1024", "--write-law", str(law))
    assert_one_error(r, 2)
    assert "conflicts with the file's seq_len column (512)" in r.stderr and not law.exists()


@pytest.mark.parametrize("flag", ["--params-col", "--tokens-col"])
def test_a_named_column_that_is_absent_is_an_error(cli, flag, no_fit):
    r = cli("fit-cbs", str(golden_file("zhang_cbs_steps.csv")), flag, "nope")
    assert_one_error(r, 3)
    assert f"no column 'nope' ({flag})" in r.stderr

def test_fit_cbs_one_group_cannot_write_a_law(cli, one_group, tmp_path):
    assert cli("fit-cbs", str(one_group)).code == 0  # the group's CBS is still reported
    law = tmp_path / "og.yaml"
    r = cli("fit-cbs", str(one_group), "--write-law", str(law))
    assert_one_error(r, 5)
    assert "1 group" in r.stderr and "2 or more token counts" in r.stderr and not law.exists()


def test_unidentified_fit_is_not_written_without_force(cli, one_size, tmp_path):
    r = cli("fit", str(one_size), "--json")
    assert r.code == 0 and "warning: unidentified" in r.stderr  # printing the fit stays allowed
    law, plot = tmp_path / "same.yaml", tmp_path / "same.png"
    r = cli("fit", str(one_size), "--write-law", str(law), "--plot", str(plot))
    assert_one_error(r, 5)
    assert "alpha" in r.stderr and "--force" in r.stderr and "model sizes" in r.stderr
    assert not law.exists() and not plot.exists()
    r = cli("fit", str(one_size), "--write-law", str(law), "--force")
    assert r.code == 0 and law.exists() and f"wrote {law}" in r.stderr


# A smoke calibration on a text directory (a calibration audit): the best fit puts alpha on the fitter's bound of
# 10 with A = 1.7e38, the N-term vanishing: a boundary solution, not a law.
AT_BOUND = [(9280, 45056, 3.7416477), (9280, 94208, 3.5027523), (9280, 184320, 3.4612675), (16224, 81920, 3.5794997),
            (16224, 163840, 3.4350061), (16224, 323584, 3.4008536), (24704, 122880, 3.5148082),
            (24704, 245760, 3.3491907), (24704, 495616, 3.1490848), (54000, 270336, 3.4404657),
            (54000, 540672, 3.2817166), (54000, 1081344, 3.1080115)]


def test_boundary_fit_is_flagged_and_not_written_without_force(cli, tmp_path):
    runs = write_csv(tmp_path / "ladder.csv", ("params", "tokens", "loss"), AT_BOUND)
    r = cli("fit", str(runs), "--json")
    assert r.code == 0 and "warning: boundary: alpha = 10 sits on the fitter's upper bound 10" in r.stderr
    assert any(f.startswith("boundary: alpha") for f in r.json["flags"])
    law = tmp_path / "law.yaml"
    r = cli("fit", str(runs), "--write-law", str(law))
    assert_one_error(r, 5)
    assert "refusing to write the law: alpha = 10 sits on the fitter's upper bound" in r.stderr
    assert "--force" in r.stderr and not law.exists()
    r = cli("fit", str(runs), "--write-law", str(law), "--force")
    assert r.code == 0 and law.exists()


def test_identified_fit_writes_without_force(cli, runs, tmp_path):
    law = tmp_path / "law.yaml"
    r = cli("fit", str(runs), "--write-law", str(law), "--json")
    assert r.code == 0, r.stderr
    assert law.exists() and not r.json["flags"]


def test_directories_are_not_missing_files(cli, tmp_path):
    for command in ("fit", "fit-cbs"):
        r = cli(command, str(tmp_path))
        assert_one_error(r, 3)
        assert f"{tmp_path}: is a directory" in r.stderr and "no such file" not in r.stderr


def test_runs_file_errors_hint_at_the_columns(cli, tmp_path):
    bad = write_csv(tmp_path / "bad.csv", ("params", "tokens", "loss"), [(1e8, 2e9, 3.1), (2e8, 4e9, "x")])
    r = cli("fit", str(bad))
    assert_one_error(r, 3)
    assert "profiles validate" not in r.stderr and "'params', 'tokens' (or 'compute') and 'loss'" in r.stderr
    bad = write_csv(tmp_path / "bad_cbs.csv", ("model_nonemb_params", "batch_size_sequences", "steps_to_target"),
                 [(1e8, 64, 100), (1e8, 128, -1), (1e8, 256, 30)])
    r = cli("fit-cbs", str(bad))
    assert_one_error(r, 3)
    assert "profiles validate" not in r.stderr and "fit-cbs --help" in r.stderr


def test_ctrl_c_says_the_fit_does_not_resume(cli, runs, monkeypatch):
    from planner import fitting
    from planner.laws import cbs_fit

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fitting, "fit_law", interrupt)
    monkeypatch.setattr(cbs_fit, "fit_cbs", interrupt)
    for args in (("fit", str(runs)), ("fit-cbs", str(golden_file("zhang_cbs_steps.csv")))):
        r = cli(*args)
        assert_one_error(r, 130)
        assert "error: interrupted" in r.stderr and "does not resume" in r.stderr
        assert "continue" not in r.stderr


def test_band_flags_without_bootstrap_say_they_are_ignored(cli, runs):
    r = cli("fit", str(runs), "--target-loss", "2.5", "--budget", "1e22", "--json")
    assert r.code == 0
    assert "warning: --budget, --target-loss are ignored without --bootstrap" in r.stderr
    r = cli("fit", str(runs), "--bootstrap", "3", "--inference-tokens", "1e12", "--json")
    assert "warning: --inference-tokens is ignored without --target-loss" in r.stderr
