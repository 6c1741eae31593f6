"""planner.observations: reading runs from CSV/JSONL, and errors that name the file, row and column."""

from __future__ import annotations

import json

import numpy as np
import pytest

from planner.errors import ConfigError, ExitStatus, UsageError
from planner.observations import file_sha256, read_batch_runs, read_runs
from tests.conftest import GOLDEN

HEADER = "params,tokens,loss\n"
GOOD = [(1e8, 2e9, 3.1), (2e8, 4e9, 2.9), (4e8, 8e9, 2.7), (8e8, 1.6e10, 2.6), (1.6e9, 3.2e10, 2.5),
        (3.2e9, 6.4e10, 2.4), (6.4e9, 1.28e11, 2.35)]


def _csv(tmp_path, rows, header=HEADER, name="runs.csv"):
    path = tmp_path / name
    path.write_text(header + "".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def test_reads_csv(tmp_path):
    path = _csv(tmp_path, GOOD)
    runs = read_runs(path)
    assert runs.n_runs == 7 and runs.N[0] == 1e8 and runs.D[-1] == 1.28e11 and runs.L[2] == 2.7
    assert runs.sha256 == file_sha256(path) and len(runs.sha256) == 64
    assert list(runs.rows) == list(range(1, 8))


def test_reads_jsonl_with_compute_and_custom_columns(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps({"n": n, "flops": 6 * n * d, "final": loss}) for n, d, loss in GOOD) + "\n\n")
    runs = read_runs(path, params_col="n", compute_col="flops", loss_col="final")
    assert np.allclose(runs.D, [d for _, d, _ in GOOD], rtol=1e-12)
    assert "flops" in runs.tokens_from


def test_drop_top_loss_matches_epoch():
    path = GOLDEN / "epoch_chinchilla_fig4_runs.csv"
    if not path.exists():
        pytest.skip("golden Epoch data not present")
    runs = read_runs(path, params_col="Model Size", compute_col="Training FLOP", drop_top_loss=5)
    assert runs.n_read == 245 and runs.n_runs == 240 and len(runs.dropped_rows) == 5
    import csv

    losses = np.array([float(r["loss"]) for r in csv.DictReader(path.open())])
    assert np.array_equal(np.sort(runs.L), np.sort(losses[losses < np.sort(losses)[-5]]))  # Epoch's criterion


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "no data rows"),
        (HEADER, "no data rows"),
        (HEADER + "1e8,2e9,3.1\n", "1 run cannot fit 5 parameters; need at least 6"),
        ("params,loss\n" + "1e8,3\n2e8,2.9\n", "neither a tokens column 'tokens' nor a compute"),
        ("tokens,loss\n" + "1e8,3\n2e8,2.9\n", "no column 'params'"),
    ],
)
def test_file_level_errors(tmp_path, text, pattern):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern) as exc:
        read_runs(path)
    assert "bad.csv" in exc.value.message and exc.value.exit_status == ExitStatus.CONFIG


@pytest.mark.parametrize(
    ("value", "pattern"),
    [("abc", "'abc' is not a number"), ("-2", "must be finite and > 0"), ("nan", "must be finite and > 0"),
     ("0", "must be finite and > 0"), ("", "empty")],
)
def test_cell_errors_name_file_row_and_column(tmp_path, value, pattern):
    rows = [list(r) for r in GOOD]
    rows[3][2] = value
    path = _csv(tmp_path, rows)
    with pytest.raises(ConfigError, match=pattern) as exc:
        read_runs(path)
    assert "runs.csv, row 4 (line 5), column 'loss'" in exc.value.message


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"params": 1e8, "tokens": 2e9, "loss": 3}\n{oops\n')
    with pytest.raises(ConfigError, match=r"runs.jsonl, row 2 \(line 2\): not valid JSON"):
        read_runs(path)
    path.write_text('{"params": 1e8, "tokens": 2e9, "loss": true}\n{"params": 2e8, "tokens": 2e9, "loss": 3}\n')
    with pytest.raises(ConfigError, match="row 1 .*column 'loss': expected a number"):
        read_runs(path)


def test_duplicate_rows(tmp_path):
    path = _csv(tmp_path, GOOD + [GOOD[2]])
    with pytest.raises(ConfigError, match=r"row 8 \(line 9\): duplicates row 3"):
        read_runs(path)


def test_fewer_runs_than_parameters(tmp_path):
    path = _csv(tmp_path, GOOD[:5])
    with pytest.raises(ConfigError, match="5 runs cannot fit 5 parameters"):
        read_runs(path)
    with pytest.raises(ConfigError, match=r"5 runs \(after dropping 2\) cannot fit 5 parameters; need at least 6"):
        read_runs(_csv(tmp_path, GOOD), drop_top_loss=2)
    with pytest.raises(UsageError):
        read_runs(_csv(tmp_path, GOOD), drop_top_loss=-1)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        read_runs(tmp_path / "nope.csv")


def test_directory_is_not_a_missing_file(tmp_path):
    for read in (read_runs, read_batch_runs):
        with pytest.raises(ConfigError) as exc:
            read(tmp_path)
        assert exc.value.message == f"{tmp_path}: is a directory"


def test_data_errors_hint_at_the_expected_columns(tmp_path):
    rows = [list(r) for r in GOOD]
    rows[2][2] = "nan"
    with pytest.raises(ConfigError) as exc:
        read_runs(_csv(tmp_path, rows), loss_col="loss")
    assert "profiles validate" not in exc.value.hint and "'loss'" in exc.value.hint
    with pytest.raises(ConfigError) as exc:  # an error with its own hint keeps it
        read_runs(_csv(tmp_path, [GOOD[0], GOOD[0]]))
    assert exc.value.hint == "delete the duplicate; each row must be one run"
    path = _csv(tmp_path, [(1e8, 64, 900), (1e8, 128, "x"), (1e8, 256, 300)], header="model_nonemb_params,batch_size_sequences,steps_to_target\n")
    with pytest.raises(ConfigError) as exc:
        read_batch_runs(path)
    assert "profiles validate" not in exc.value.hint and "'steps_to_target'" in exc.value.hint


def test_batch_runs_golden():
    path = GOLDEN / "zhang_cbs_steps.csv"
    if not path.exists():
        pytest.skip("golden Zhang data not present")
    runs = read_batch_runs(path)
    assert runs.batch.size == 45 and runs.seq_len == 512 and np.unique(runs.N).size == 5


def test_batch_runs_need_three_batch_sizes_per_group(tmp_path):
    path = tmp_path / "cbs.csv"
    path.write_text("model_nonemb_params,batch_size_sequences,steps_to_target\n"
                    "1e8,64,1000\n1e8,128,600\n1e8,256,400\n2e8,64,2000\n2e8,128,1200\n")
    with pytest.raises(ConfigError, match="row 4 .*2 batch size"):
        read_batch_runs(path)


# --- through the CLI: data errors reach the user as one error line with exit 3 -------------------------


def test_cli_fit_reports_bad_cell_with_exit_3(tmp_path, cli):
    from tests.conftest import assert_one_error

    rows = [list(r) for r in GOOD]
    rows[1][0] = "lots"
    result = cli("fit", str(_csv(tmp_path, rows)), "--json")
    assert_one_error(result, 3)
    assert "runs.csv, row 2 (line 3), column 'params'" in result.stderr


def test_cli_fit_json_on_synthetic_runs(tmp_path, cli):
    from planner.laws.chinchilla import ChinchillaParams, loss

    p = ChinchillaParams(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    N = np.repeat(np.geomspace(5e7, 5e9, 4), 4)
    D = np.tile(np.geomspace(1e9, 3e11, 4), 4)
    path = _csv(tmp_path, zip(N, D, loss(N, D, p)))
    result = cli("fit", str(path), "--json")
    assert result.code == 0, result.stderr
    out = result.json
    assert out["n_runs"] == 16 and out["n_starts"] == 4500
    assert out["alpha"] == pytest.approx(0.34, rel=1e-3) and out["input"]["sha256"] == file_sha256(path)
