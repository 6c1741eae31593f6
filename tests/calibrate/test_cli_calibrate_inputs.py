"""`planner calibrate --dry-run` on out-of-range flags: one error and one hint, exit 2 (3 for missing data)."""

from __future__ import annotations

import pytest

from tests.conftest import assert_one_error

SMOKE = ("calibrate", "--device", "cpu", "--preset", "smoke", "--dry-run")
GPU = ("calibrate", "--preset", "gpu", "--dry-run")


@pytest.mark.parametrize("base, flags, needle", [
    (SMOKE, ("--gpus", "0"), "--gpus: must be 1 or more"),
    (SMOKE, ("--gpus", "-1"), "--gpus: must be 1 or more"),
    (GPU, ("--gpus", "0"), "--gpus: must be 1 or more"),
    (GPU, ("--mfu", "0"), "--mfu: expected a fraction in (0, 1]"),
    (GPU, ("--mfu", "1.5"), "--mfu: expected a fraction in (0, 1]"),
    (GPU, ("--mfu", "nan"), "--mfu: expected a fraction in (0, 1]"),
    (SMOKE, ("--nnodes", "0"), "--nnodes: must be 1 or more"),
    (SMOKE, ("--nnodes", "-1"), "--nnodes: must be 1 or more"),
    (SMOKE, ("--node-rank", "3", "--nnodes", "1"), "--node-rank: must be 0 to 0"),
    (SMOKE, ("--node-rank", "-1"), "--node-rank: must be 0 to 0"),
    (SMOKE, ("--probes-per-gpu", "0"), "--probes-per-gpu: must be 1 or more"),
    (SMOKE, ("--probes-per-gpu", "-1"), "--probes-per-gpu: must be 1 or more"),
    (SMOKE, ("--seed", "-1"), "--seed: must be zero or more"),
    (SMOKE, ("--budget-gpu-hours", "-1"), "--budget-gpu-hours: must be a positive number"),
    (("calibrate", "--dry-run"), ("--budget-gpu-hours", "inf"), "--budget-gpu-hours: must be a positive number"),
    (GPU, ("--vocab-size", "0"), "--vocab-size: must be at least 2"),
    (GPU, ("--vocab-size", "-1"), "--vocab-size: must be at least 2"),
    (GPU, ("--vocab-size", "1"), "--vocab-size: must be at least 2"),
    (SMOKE, ("--vocab-size", "1"), "--vocab-size: must be at least 2"),
])
def test_out_of_range_flags_are_usage_errors(cli, base, flags, needle):
    r = cli(*base, *flags)
    assert_one_error(r, 2)
    assert needle in r.stderr


def test_missing_data_path_is_a_data_error(cli, tmp_path):
    r = cli(*SMOKE, "--data", str(tmp_path / "nope.bin"))
    assert_one_error(r, 3)
    assert f"--data {tmp_path / 'nope.bin'}: no such file or directory" in r.stderr


def test_valid_dry_runs_still_plan(cli, tmp_path):
    smoke = cli(*SMOKE, "--json", "--data", "synthetic:zipf", "--nnodes", "1", "--node-rank", "0", "--seed", "0")
    assert smoke.code == 0, smoke.stderr
    assert smoke.json["preset"] == "smoke" and "error:" not in smoke.stderr
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("hello world\n" * 100)
    gpu = cli(*GPU, "--json", "--gpus", "2", "--mfu", "0.5", "--data", str(tmp_path / "corpus"))
    assert gpu.code == 0, gpu.stderr
    assert gpu.json["preset"] == "gpu" and gpu.json["n_devices"] == 2 and gpu.json["mfu_prior"] == 0.5


def test_flags_a_preset_ignores_are_named(cli):
    r = cli(*SMOKE, "--json", "--data", "synthetic:zipf", "--mfu", "0.5")
    assert r.code == 0 and "warning: --mfu is ignored by --preset smoke" in r.stderr


def test_unreadable_or_too_wide_data_stops_before_any_probe(cli, tmp_path):
    """Data that would fail every probe is exit 3 at planning time, not a warning then N failed probes."""
    import numpy as np

    empty = tmp_path / "corpus"
    empty.mkdir()
    (empty / "tokens.bin").write_bytes(b"\0\1")  # no text files in a text directory
    r = cli(*SMOKE, "--data", str(empty))
    assert_one_error(r, 3)
    assert "no text files" in r.stderr
    tokens = tmp_path / "tokens.bin"
    np.arange(1000, dtype=np.uint16).tofile(tokens)  # ids up to 999 against the smoke model's 257
    r = cli(*SMOKE, "--data", str(tokens))
    assert_one_error(r, 3)
    assert "token ids reach 999" in r.stderr and "--vocab-size" in r.stderr
    assert cli(*SMOKE, "--data", str(tokens), "--vocab-size", "1000").code == 0
