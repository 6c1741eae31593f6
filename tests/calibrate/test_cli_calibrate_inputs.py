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
    # audit: accepted until after every probe (MemoryError), or overflowing torch.manual_seed in every probe,
    # or planning 400B-parameter CPU probes, or not finishing (planning time grew with the GPU count)
    (SMOKE, ("--bootstrap", "1000000000"), "--bootstrap: at most 100000 resamples"),
    (SMOKE, ("--seed", "99999999999999999999"), "--seed: at most 2^63-1"),
    (SMOKE, ("--seed", str(2**63)), "--seed: at most 2^63-1"),
    (SMOKE, ("--vocab-size", "10000000000"), "--vocab-size: at most 2^31"),
    (GPU, ("--vocab-size", str(2**31 + 1)), "--vocab-size: at most 2^31"),
    (GPU, ("--gpus", "100000"), "--gpus: at most 65536 per node"),
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
    (tmp_path / "corpus" / "a.txt").write_text("hello world\n" * 1000)  # both halves hold a 1024-token window
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
    np.arange(1000, dtype=np.uint16).tofile(tokens)  # ids up to 999 against a given vocabulary of 500
    r = cli(*SMOKE, "--data", str(tokens), "--vocab-size", "500")
    assert_one_error(r, 3)
    assert "token ids reach 999" in r.stderr and "--vocab-size" in r.stderr
    assert cli(*SMOKE, "--data", str(tokens), "--vocab-size", "1000").code == 0


# ----------------------------------------------------------------------------- new-user audit regressions


def test_a_given_vocab_size_is_checked_against_the_token_ids(cli, tmp_path):
    """Defect: --vocab-size skipped the data check (ids to 65258 planned with a vocabulary of 100)."""
    import numpy as np

    tokens = tmp_path / "ok.bin"
    np.array([1, 2, 65258] * 10_000, dtype=np.uint16).tofile(tokens)
    for base in (SMOKE, GPU):
        r = cli(*base, "--data", str(tokens), "--vocab-size", "100")
        assert_one_error(r, 3)
        assert f"--data {tokens}: token ids reach 65258, beyond --vocab-size 100" in r.stderr
        assert "hint: give --vocab-size at least" in r.stderr
    assert cli(*SMOKE, "--json", "--data", str(tokens), "--vocab-size", "65259").code == 0


def test_malformed_token_arrays_and_jsonl_text_are_data_errors(cli, tmp_path):
    import json

    import numpy as np

    np.save(tmp_path / "neg.npy", np.array([5, -2, 3] * 10_000, dtype=np.int64))
    np.save(tmp_path / "float.npy", np.array([1.0, 2.0, 3.0] * 10_000))
    (tmp_path / "bad.jsonl").write_text(json.dumps({"text": "hello " * 50}) + "\n" + json.dumps({"text": 5}) + "\n")
    for name, needle in (("neg.npy", "neg.npy: token 1 is -2: token ids must be 0 or more"),
                         ("float.npy", "expected a 1-D integer token array, got float64"),
                         ("bad.jsonl", "bad.jsonl:2: field 'text' is int 5, not a string")):
        for vocab in ((), ("--vocab-size", "100")):
            r = cli(*SMOKE, "--data", str(tmp_path / name), *vocab)
            assert_one_error(r, 3)
            assert needle in r.stderr


def test_unknown_gpu_profile_is_refused_and_an_ignored_one_warned(cli):
    """Defect: `calibrate --dry-run --gpu nope` planned the CPU smoke preset and exited 0."""
    for base in (SMOKE, ("calibrate", "--dry-run"), GPU):
        r = cli(*base, "--gpu", "nope")
        assert_one_error(r, 3)
        assert "unknown hardware profile 'nope'" in r.stderr
    r = cli(*SMOKE, "--json", "--data", "synthetic:zipf", "--gpu", "a100-sxm4-80gb")
    assert r.code == 0 and "warning: --gpu is ignored by --preset smoke" in r.stderr
    r = cli(*GPU, "--json", "--gpu", "a100-sxm4-80gb")
    assert r.code == 0 and "--gpu is ignored" not in r.stderr
    assert r.json["peak_flops_per_s"] == pytest.approx(312e12, rel=0.05)


def test_rdzv_endpoint_is_warned_on_one_node_and_checked_on_several(cli):
    r = cli(*SMOKE, "--json", "--data", "synthetic:zipf", "--rdzv-endpoint", "bogus")
    assert r.code == 0 and "warning: --rdzv-endpoint is ignored with --nnodes 1" in r.stderr
    multi = (*GPU, "--gpus", "8", "--nnodes", "2")
    for bad in ("bogus", "host:", ":29500", "host:0", "host:70000", "host:port"):
        r = cli(*multi, "--rdzv-endpoint", bad)
        assert_one_error(r, 2)
        assert f"--rdzv-endpoint: expected HOST:PORT of node 0, got {bad!r}" in r.stderr
    r = cli(*multi, "--json", "--rdzv-endpoint", "node0:29500")
    assert r.code == 0 and "--rdzv-endpoint" not in r.stderr


@pytest.mark.parametrize("flag, value", [("--data", ""), ("--data", "  "), ("--out", ""), ("--out", " ")])
def test_empty_data_or_out_is_a_usage_error(cli, flag, value, tmp_path, monkeypatch):
    """Defect: --data '' read the current directory as a text corpus; --out '' was accepted."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a corpus\n")
    r = cli(*SMOKE, flag, value)
    assert_one_error(r, 2)
    assert f"error: {flag}: empty" in r.stderr


def test_ignored_flag_warnings_do_not_precede_an_error(cli, tmp_path):
    """Data refused at plan time still prints exactly one error and one hint, not the flag warnings first."""
    import numpy as np

    tokens = tmp_path / "wide.bin"
    np.arange(1000, dtype=np.uint16).tofile(tokens)
    r = cli(*SMOKE, "--mfu", "0.5", "--gpu", "a100-sxm4-80gb", "--rdzv-endpoint", "h:1", "--data", str(tokens),
            "--vocab-size", "500")
    assert_one_error(r, 3)
    assert "token ids reach 999" in r.stderr


def test_bounds_are_inclusive(cli):
    r = cli(*SMOKE, "--json", "--data", "synthetic:zipf?tokens=300000", "--seed", str(2**63 - 1), "--bootstrap", "100000")
    assert r.code == 0, r.stderr
    assert {p["spec"]["seed"] for p in r.json["probes"]} == {2**63 - 1}
    r = cli(*GPU, "--json", "--gpus", "65536", "--budget-gpu-hours", "4")  # plans as fast as on 8 GPUs
    assert r.code == 0, r.stderr
    assert r.json["total_device_hours"] <= 4.0 + 1e-9


def test_a_corpus_too_small_to_train_on_is_refused_at_plan_time(cli, tmp_path):
    """Audit: `--data weird.csv` with 3 training bytes only warned about epochs; every probe then failed."""
    weird = tmp_path / "weird.csv"
    weird.write_text("abcdefg")
    r = cli(*SMOKE, "--data", str(weird))
    assert_one_error(r, 3)
    assert f"--data {weird}: too small to train on: 4 training and 4 held-out bytes" in r.stderr
    assert "sequence length 128 need at least 130 and 129" in r.stderr
    tokens = tmp_path / "short.npy"
    __import__("numpy").save(tokens, __import__("numpy").arange(200, dtype="int32"))
    r = cli(*SMOKE, "--data", str(tokens))
    assert_one_error(r, 3)
    assert "too small to train on: 100 training and 100 held-out tokens" in r.stderr


def test_token_files_default_to_their_inferred_vocabulary(cli, tmp_path):
    """Audit: a uint16 .bin without --vocab-size was refused ("token ids reach 998, beyond the probes'
    vocabulary of 257") although the README said it needs no flag."""
    import numpy as np

    tokens = tmp_path / "tokens.bin"
    np.array([1, 2, 998] * 20_000, dtype=np.uint16).tofile(tokens)
    for base in (SMOKE, GPU):
        r = cli(*base, "--json", "--data", str(tokens))
        assert r.code == 0, r.stderr
        assert {p["spec"]["vocab_size"] for p in r.json["probes"]} == {1024}  # 999 rounded up to 64
        assert {p["spec"]["data_vocab_size"] for p in r.json["probes"]} == {None}
        assert "probes use a vocabulary of 1024 (largest token id" in r.stderr
    npy = tmp_path / "tokens.npy"
    np.save(npy, np.array([1, 2, 40_000] * 20_000, dtype=np.int64))
    r = cli(*SMOKE, "--json", "--data", str(npy))
    assert r.code == 0 and {p["spec"]["vocab_size"] for p in r.json["probes"]} == {40_064}  # 40001 rounded up to 64
    text = tmp_path / "a.txt"
    text.write_text("hello world\n" * 2000)
    r = cli(*SMOKE, "--json", "--data", str(text))  # text stays byte-level
    assert r.code == 0 and {p["spec"]["vocab_size"] for p in r.json["probes"]} == {257}


@pytest.mark.parametrize("data, needle", [
    ("synthetic:foo", "unknown synthetic source 'foo' (known: zipf)"),
    ("synthetic", "no such file or directory, nor a synthetic source"),
    ("synthetic:zipf?vocab=x", "option vocab='x' of synthetic:zipf: expected an integer from 2 to 65536"),
    ("synthetic:zipf?order=9", "option order='9'"),
    ("synthetic:zipf?vocab=4096&order=2", "needs a table of vocab^(order+1)"),
    ("synthetic:zipf?bogus=1", "unknown option 'bogus'"),
])
def test_unknown_synthetic_sources_name_the_known_one(cli, data, needle):
    """Audit: synthetic sources were reported as missing files; a bad option was an internal error."""
    r = cli(*SMOKE, "--data", data)
    assert_one_error(r, 3)
    assert needle in r.stderr and "hint: the synthetic source is synthetic:zipf[?vocab=" in r.stderr


def test_a_jsonl_without_documents_says_so(cli, tmp_path):
    """Audit: an empty .jsonl leaked numpy's "need at least one array to concatenate"."""
    for name, text in (("empty.jsonl", ""), ("blank.jsonl", "\n\n")):
        (tmp_path / name).write_text(text)
        r = cli(*SMOKE, "--data", str(tmp_path / name))
        assert_one_error(r, 3)
        assert f"--data {tmp_path / name}: no documents" in r.stderr and "concatenate" not in r.stderr
