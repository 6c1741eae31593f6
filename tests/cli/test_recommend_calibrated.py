"""`planner recommend` with a law written by `planner calibrate` (byte-level demo data, flagged fit).

Audit defects: the law's units, dataset and flags were hidden; B_crit printed negative (and twice, as two
different numbers); the training plan assumed vocab 32000 and seq 4096 for a byte-level law fitted at 257
and 128; the tokens-per-parameter warning quoted the published 5-40 instead of the law's own range.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import yaml

LADDER = "params,params_non_embedding,tokens,loss,probe,tokens_per_param\n" + "".join(
    f"{n},{n // 3},{n * r:.1f},{3.6 - 0.1 * i},p{n},{r}\n"
    for i, (n, r) in enumerate([(9280, 4.855), (9280, 10), (16224, 20.06), (54000, 5), (54000, 12)])
)
FLAGS = ["unidentified: E spans 2.51e-09–2.56 over the bootstrap (95%)",
         "unidentified: alpha spans 0–10 over the bootstrap (95%)"]


def _law(sha: str) -> dict:
    return {
        "schema_version": 1, "kind": "loss-law", "name": "calib", "title": "Chinchilla law calibrated on stdlib",
        "form": "chinchilla",
        "constants": {"E": 2.35836605596172, "A": 9274971789096.758, "B": 573.2718956115746,
                      "alpha": 3.574726993024165, "beta": 0.5738058311132446},
        "units": {"loss": "nats per byte (stdlib: the Python standard library source, byte-level)",
                  "params": "total", "tokens": "training bytes"},
        "dataset": "stdlib: the Python standard library source, byte-level; 3 model sizes",
        "source": "planner fit of ladder.csv, 2026-11-24",
        "notes": " ".join(f"FLAG {f}." for f in FLAGS) + " Byte-level data: the constants are nats per byte.",
        "provenance": {"input_file": "ladder.csv", "input_sha256": sha, "flags": FLAGS},
    }


BATCH = {
    "schema_version": 1, "kind": "batch-law", "name": "calib-cbs", "title": "CBS calibrated on stdlib",
    "definition": "zhang-20pct", "definition_text": "CBS: 20% over linear scaling from B_ref = 4 sequences",
    "params": "non_embedding",
    "laws": [{"id": "cbs_d", "quantity": "batch", "coefficient": 909.2508269723648,
              "exponents": {"D": -0.4454609309726327}, "input_units": {"D": "training bytes"},
              "output_unit": "sequences", "sequence_length": 128, "regime": "refit", "source": "calibrate",
              "verification": "derived"}],
    "overhead": 0.2, "reference_batch_sequences": 4, "reference_sequence_length": 128,
    "source": ["planner calibrate CBS sweep"],
    "notes": ("D is in training bytes. FLAG CBS falls with D (exponent -0.445), against Zhang et al. 2024's CBS "
              "growing with D: the sweep is too short or too noisy to trust this law."),
}


@pytest.fixture
def calib(tmp_path):
    """A calibration directory: law.yaml, batch.yaml, the fit input ladder.csv and the run log runs.jsonl."""
    (tmp_path / "ladder.csv").write_text(LADDER)
    sha = hashlib.sha256(LADDER.encode()).hexdigest()
    (tmp_path / "law.yaml").write_text(yaml.safe_dump(_law(sha), allow_unicode=True))
    (tmp_path / "batch.yaml").write_text(yaml.safe_dump(BATCH))
    runs = [{"kind": "ladder", "status": "ok", "seq_len": 128, "vocab_size": 257, "n_params": n}
            for n in (9280, 16224, 54000)] + [{"kind": "cbs", "status": "ok", "seq_len": 64, "vocab_size": 257}]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))
    return tmp_path


def _run(cli, calib, *args):
    return cli("recommend", "--law", str(calib / "law.yaml"), "--batch-law", str(calib / "batch.yaml"), *args)


def test_units_dataset_and_flags_are_stated(cli, calib):
    r = _run(cli, calib, "--params", "50k", "--tokens", "5M")
    assert r.code == 0, r.stderr
    assert "training bytes" in r.stdout and "bytes per parameter" in r.stdout
    assert "training tokens" not in r.stdout and "tokens per parameter" not in r.stdout
    flat = " ".join(r.stdout.split())
    assert "nats per byte" in flat and "D in training bytes" in flat and "stdlib: the Python standard" in flat
    err = " ".join(r.stderr.split())
    for flag in FLAGS:
        assert f"FLAG {flag}" in err
    assert "do not plan with them" in err
    assert "batch law calib-cbs: FLAG CBS falls with D (exponent -0.445), against Zhang et al. 2024's CBS" in err


def test_json_law_carries_units_dataset_flags_and_fit_context(cli, calib):
    d = _run(cli, calib, "--target-loss", "2.6", "--json").json
    law = d["law"]
    assert law["units"] == {"loss": "nats per byte (stdlib: the Python standard library source, byte-level)",
                            "params": "total", "tokens": "training bytes"}
    assert law["dataset"].startswith("stdlib") and law["flags"] == FLAGS
    assert law["fitted_seq_len"] == 128 and law["fitted_vocab_size"] == 257
    assert law["fitted_tokens_per_param"]["low"] == pytest.approx(4.855)
    assert law["fitted_tokens_per_param"]["high"] == pytest.approx(20.06)
    assert d["batch"]["law_flags"][0].startswith("CBS falls with D")


def test_published_law_json_gains_no_keys(cli):
    d = cli("recommend", "--params", "7B", "--json").json
    assert set(d["law"]) == {"name", "sha256", "path", "source", "E", "A", "B", "alpha", "beta",
                             "params_counted", "uncertainty", "fitted_tokens_per_param"}
    assert d["law"]["fitted_tokens_per_param"]["high"] == 341.0  # Hoffmann et al.'s runs (Epoch's Fig. 4 extraction)
    assert "law_flags" not in d["batch"]


def test_bcrit_is_one_value_never_negative(cli, calib):
    """CBS 108 < 1.2·B_ref = 614: the table said B_crit -2.53k, the warning 538. Now: undefined, everywhere."""
    r = _run(cli, calib, "--params", "50k", "--tokens", "5M")
    assert not re.search(r"B_crit -", r.stdout + r.stderr)
    assert "B_crit n/a" in " ".join(r.stdout.split())
    err = " ".join(r.stderr.split())
    assert "McCandlish B_crit undefined" in err and "no batch-size token penalty can be derived" in err
    assert "B_crit 538" not in err
    d = _run(cli, calib, "--params", "50k", "--tokens", "5M", "--json").json
    assert d["batch"]["mccandlish_bcrit_tokens"] is None
    assert d["batch_size_tokens"] > d["critical_batch_tokens"]  # one 128-byte sequence is above the CBS
    assert d["gpu_plan"]["token_overhead_fraction"] is None  # undefined, not +617%
    assert all(row["token_overhead_fraction"] is None for row in d["tradeoff"])
    g = d["gpu_plan"]
    assert g["n_tokens_needed"] == d["n_tokens"]  # no penalty applied, stated as a lower bound
    assert "lower bounds" in err


def test_fitted_vocab_and_seq_len_are_the_defaults(cli, calib):
    d = _run(cli, calib, "--params", "50k", "--tokens", "5M", "--json").json
    assert d["gpu_plan"]["shape"]["vocab_size"] == 257 and d["gpu_plan"]["shape"]["seq_len"] == 128
    text = " ".join(" ".join(d["assumptions"]).split())
    assert "--seq-len 128: the runs law calib was fitted on" in text
    assert "--vocab-size 257: the runs law calib was fitted on" in text
    # explicit flags win, and the Assumptions say what the law was fitted at
    d = _run(cli, calib, "--params", "50k", "--tokens", "5M", "--seq-len", "512", "--vocab-size", "1000",
             "--json").json
    assert d["gpu_plan"]["shape"]["vocab_size"] == 1000 and d["gpu_plan"]["shape"]["seq_len"] == 512
    text = " ".join(d["assumptions"])
    assert "--seq-len 512 as given; law calib was fitted at 128" in text
    assert "--vocab-size 1000 as given; law calib was fitted at 257" in text


def test_without_run_log_seq_len_comes_from_the_batch_law_and_vocab_from_bytes(cli, calib):
    (calib / "runs.jsonl").unlink()
    d = _run(cli, calib, "--params", "50k", "--tokens", "5M", "--json").json
    assert d["gpu_plan"]["shape"]["seq_len"] == 128  # calib-cbs counts D in the same bytes, sequences of 128
    assert d["gpu_plan"]["shape"]["vocab_size"] == 256
    assert "law" in d and "fitted_seq_len" not in d["law"]


def test_tokens_per_param_warning_uses_the_laws_fitted_range(cli, calib):
    r = _run(cli, calib, "--target-loss", "2.45")
    err = " ".join(r.stderr.split())
    assert re.search(r"bytes per parameter: law calib was fitted at 4.86-20.1 bytes/param \(ladder.csv", err)
    assert "5-40" not in err


def test_target_loss_saving_is_not_float_noise(cli, calib):
    for r in (_run(cli, calib, "--target-loss", "2.6"), cli("recommend", "--target-loss", "2.3")):
        saving = re.search(r"Saving: (\S+) of", " ".join(r.stdout.split())).group(1)
        assert saving == "0%", saving


def test_user_batch_law_and_law_files_are_named_with_path_and_sha256(cli, calib):
    """A user's batch.yaml appeared only by name ('calib-cbs'): now its path and sha256, in the table and JSON."""
    d = _run(cli, calib, "--params", "50k", "--tokens", "5M", "--json").json
    batch = calib / "batch.yaml"
    ref = d["batch"]["cbs_law"]
    assert ref == {"name": "calib-cbs", "sha256": hashlib.sha256(batch.read_bytes()).hexdigest(), "path": str(batch),
                   "builtin": False}
    assert d["batch"]["lr_law"]["name"] == "steplaw-2025" and d["batch"]["lr_law"]["builtin"] is True
    text = " ".join(" ".join(d["assumptions"]).split())
    assert f"CBS law calib-cbs ({batch}, sha256 {ref['sha256'][:16]}…)" in text
    assert f"({calib / 'law.yaml'}, sha256 {d['law']['sha256'][:16]}…)" in text  # the loss law's file too
    from planner import profiles

    hw = calib / "my-gpu.yaml"
    hw.write_bytes((profiles.builtin_dir() / "hardware" / "h100-sxm5-80gb.yaml").read_bytes())
    d = _run(cli, calib, "--params", "50k", "--tokens", "5M", "--gpu", str(hw), "--json").json
    assert d["gpu_plan"]["hardware_profile"]["path"] == str(hw) and not d["gpu_plan"]["hardware_profile"]["builtin"]
    assert f"GPU plan on h100-sxm5-80gb ({hw}, sha256" in " ".join(" ".join(d["assumptions"]).split())


def _with_uncertainty(calib, samples: bool) -> None:
    law = yaml.safe_load((calib / "law.yaml").read_text())
    law["uncertainty"] = {"intervals_95": {k: {"low": v * 0.9, "high": v * 1.1} for k, v in law["constants"].items()},
                          "method": "bootstrap over probe sizes: 50 resamples (numpy default_rng(0))"}
    if samples:
        law["uncertainty"]["samples"] = [[law["constants"][k] for k in ("E", "A", "B", "alpha", "beta")]] * 3
    (calib / "law.yaml").write_text(yaml.safe_dump(law, allow_unicode=True))


@pytest.mark.parametrize("samples", [False, True])
def test_a_fits_intervals_are_not_called_published(cli, calib, samples):
    """A calibrated law's intervals come from its own bootstrap: 'uncertainty: published 95% intervals' was false."""
    _with_uncertainty(calib, samples)
    d = _run(cli, calib, "--params", "50k", "--tokens", "5M", "--json").json
    assert "published" not in d["law"]["uncertainty"]
    assert "this fit's bootstrap: bootstrap over probe sizes: 50 resamples" in d["law"]["uncertainty"]
    assert ("bands below" in d["law"]["uncertainty"]) == samples
    if not samples:
        assert "the fit wrote no draws" in d["law"]["uncertainty"] and str(calib / "law.yaml") in d["law"]["uncertainty"]


def test_a_law_without_uncertainty_says_so(cli, calib):
    for r in (_run(cli, calib, "--params", "50k", "--tokens", "5M", "--json"),
              cli("recommend", "--params", "7B", "--law", "hoffmann-2022", "--json")):
        d = r.json
        assert d["law"]["uncertainty"] is None  # the JSON keeps null; the assumptions say it
        text = " ".join(" ".join(d["assumptions"]).split())
        assert f"uncertainty: none available for law {d['law']['name']}" in text
    published = cli("recommend", "--params", "7B", "--json").json  # besiroglu-2024: Epoch's bootstrap, named
    assert "Besiroglu et al.'s 4,000-resample bootstrap" in published["law"]["uncertainty"]
    assert "none available" not in " ".join(published["assumptions"])
