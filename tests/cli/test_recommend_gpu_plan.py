"""`planner recommend` batch, optimizer and GPU-plan keys (issue: batch size, LR and the GPU plan)."""

from __future__ import annotations

import math

import pytest
import yaml

from planner.laws import batch as bl
from tests.conftest import golden_file

KEYS = {
    "batch_size_tokens", "batch_size_sequences", "critical_batch_tokens", "learning_rate", "adam_beta2",
    "ewa_decay", "schedule", "n_gpus", "gpu", "parallelism", "memory_per_gpu_gib", "wall_clock_s", "gpu_hours",
    "cost_usd", "tradeoff",
}


def test_stable_keys_and_their_consistency(cli):
    d = cli("recommend", "--params", "7B", "--tokens", "2T", "--json").json
    assert KEYS <= set(d)
    assert set(d["parallelism"]) == {"data", "tensor", "pipeline", "zero_stage", "micro_batch", "grad_accum"}
    par = d["parallelism"]
    assert par["data"] * par["tensor"] * par["pipeline"] == d["n_gpus"]
    assert par["data"] * par["micro_batch"] * par["grad_accum"] == d["batch_size_sequences"]
    assert d["batch_size_tokens"] == d["batch_size_sequences"] * 4096
    # CBS in Zhang's 20%-overhead definition, from the derived D-law (tokens) at the recommended D
    assert math.isclose(d["critical_batch_tokens"], float(bl.zhang_cbs_tokens(d["n_tokens"])), rel_tol=1e-12)
    assert d["batch_size_tokens"] <= d["critical_batch_tokens"]  # CBS is a ceiling, not a target
    g = d["gpu_plan"]
    # wall-clock = 6·N·D/(GPUs·peak·MFU) and GPU-hours = GPUs · wall-clock
    expect = 6 * d["n_params"] * g["n_tokens_needed"] / (d["n_gpus"] * g["peak_flops_per_s"] * g["mfu"])
    assert math.isclose(d["wall_clock_s"], expect, rel_tol=1e-9)
    assert math.isclose(d["gpu_hours"], d["n_gpus"] * d["wall_clock_s"] / 3600, rel_tol=1e-9)
    assert math.isclose(d["cost_usd"]["train"], d["gpu_hours"] * g["price_usd_per_hour"], rel_tol=1e-9)
    assert d["tradeoff"] and all(set(r) >= {"n_gpus", "wall_clock_s", "cost_usd", "token_overhead_fraction"}
                                 for r in d["tradeoff"])
    assert d["schedule"] in ("constant+ewa", "cosine") and 0.5 < d["adam_beta2"] < 1 and 0.5 < d["ewa_decay"] < 1


def test_modes(cli):
    auto = cli("recommend", "--params", "7B", "--json", "--max-gpus", "64").json
    assert auto["n_gpus"] <= 64 and auto["gpu_plan"]["mode"] == "max-parallel"
    fixed = cli("recommend", "--params", "7B", "--json", "--gpus", "16384").json
    assert fixed["n_gpus"] == 16384 and fixed["gpu_plan"]["token_overhead_fraction"] > 0  # batch forced past CBS
    dl = cli("recommend", "--params", "7B", "--json", "--deadline", "30d").json
    assert dl["wall_clock_s"] <= 30 * 86400 and dl["gpu_plan"]["mode"] == "deadline"
    # minimality of the deadline plan is tested on the core (tests/test_gpu_plan.py)
    a100 = cli("recommend", "--params", "7B", "--json", "--gpu", "a100-sxm4-80gb", "--mfu", "0.5").json
    assert a100["gpu"] == "a100-sxm4-80gb" and a100["gpu_plan"]["mfu"] == 0.5


def test_table_shows_the_plan_and_tradeoff(cli):
    r = cli("recommend", "--target-loss", "2.3", "--inference-tokens", "2e12", "--deadline", "7d")
    assert r.code == 0
    for needle in ("Training plan", "critical batch", "learning rate", "memory per GPU", "stop paying"):
        assert needle in r.stdout


def test_steplaw_lr_and_cbs_law_override(cli, tmp_path):
    d = cli("recommend", "--params", "7B", "--tokens", "2T", "--json").json
    n_ne = d["batch"]["n_params_non_embedding"]
    D = d["n_tokens"]  # the plan is for the recommended (N, D)
    lr = 1.79 * n_ne**-0.713 * D**0.307 * math.sqrt(min(1.0, d["batch_size_tokens"] / d["batch"]["b_opt_tokens"]))
    assert math.isclose(d["learning_rate"], lr, rel_tol=1e-9)
    assert cli("recommend", "--params", "7B", "--batch-law", "zhang-2024", "--json").code == 0


def test_fp8_is_a_throughput_multiplier_not_a_doubled_peak(cli):
    """hardware.md §6 item 4: FP8 training ~1.3x BF16 throughput by default; --mfu overrides."""
    bf16 = cli("recommend", "--params", "7B", "--json").json
    fp8 = cli("recommend", "--params", "7B", "--train-dtype", "fp8", "--json").json
    assert math.isclose(bf16["gpu_hours"] / fp8["gpu_hours"], 1.3, rel_tol=1e-9)
    assert "fp8" in fp8["gpu_plan"]["mfu_source"]
    explicit = cli("recommend", "--params", "7B", "--train-dtype", "fp8", "--mfu", "0.3", "--json").json
    assert explicit["gpu_plan"]["mfu"] == 0.3



def test_cost_objective_prices_fp8_training_like_the_gpu_plan(cli):
    """The cost objective used the BF16 prior against the FP8 peak (2x BF16 throughput) while the GPU
    plan used 1.3x: one run, two training prices. Both now use hardware.md §6's 1.3x rule."""
    d = cli("recommend", "--params", "7B", "--objective", "cost", "--inference-tokens", "2e12",
            "--train-dtype", "fp8", "--json").json
    assert math.isclose(d["cost_usd"]["train"], d["gpu_plan"]["cost_usd"], rel_tol=1e-9)
    assert math.isclose(d["gpu_plan"]["mfu"], 0.4 * 1.3 * 989.4 / 1978.9, rel_tol=1e-9)

def test_bcrit_undefined_below_the_reference_batch_never_negative(cli):
    """Zhang's D-law gives CBS < 1.2·B_ref at D = 200M: B_crit was -31,892 tokens; now null, with a warning."""
    r = cli("recommend", "--params", "10M", "--tokens", "200M", "--json")
    d = r.json
    assert d["critical_batch_tokens"] < 1.2 * 256 * 512
    assert d["batch"]["mccandlish_bcrit_tokens"] is None
    assert any("McCandlish B_crit undefined" in w for w in d["warnings"])
    assert d["gpu_plan"]["token_overhead_fraction"] == 0.0  # the batch stays within the CBS: no penalty needed
    forced = cli("recommend", "--params", "10M", "--tokens", "200M", "--gpus", "64", "--json").json
    assert forced["batch_size_tokens"] > forced["critical_batch_tokens"]
    assert forced["gpu_plan"]["token_overhead_fraction"] is None
    table = cli("recommend", "--params", "10M", "--tokens", "200M", "--gpus", "64")
    assert "B_crit n/a" in " ".join(table.stdout.split()) and "B_crit -" not in table.stdout + table.stderr
    ok = cli("recommend", "--params", "125M", "--tokens", "2.5B", "--json").json
    assert ok["batch"]["mccandlish_bcrit_tokens"] == pytest.approx(
        5 * (ok["critical_batch_tokens"] - 1.2 * 256 * 512))


def test_batch_and_lr_laws_warn_when_extrapolated(cli):
    """Zhang's CBS D-law was fitted at D = 1.74e9-2.46e10 tokens, the Step Law at N <= 1e9, D <= 1e11
    (profiles' fitted_range): a 7B plan extrapolates all three, a 400M model on 8B tokens none."""
    d = cli("recommend", "--params", "7B", "--json").json
    (line,) = [w for w in d["warnings"] if w.startswith("batch and LR laws extrapolated")]
    D = d["n_tokens"]
    assert f"zhang-2024 CBS law (D {D / 2.46e10:.3g}x above its fitted max 2.46e+10)" in line
    assert "steplaw-2025 LR law (N " in line and "steplaw-2025 B_opt law (D " in line
    small = cli("recommend", "--params", "400M", "--tokens", "8B", "--json").json
    assert not [w for w in small["warnings"] if "extrapolated" in w]


def test_fit_cbs_profile_records_its_fitted_range(cli, tmp_path):
    out = tmp_path / "b.yaml"
    assert cli("fit-cbs", str(golden_file("zhang_cbs_steps.csv")), "--write-law", str(out)).code == 0
    laws = {law["id"]: law for law in yaml.safe_load(out.read_text())["laws"]}
    assert laws["cbs_d"]["fitted_range"]["D"] == pytest.approx([1.740898304e9, 2.4576e10])
    assert laws["cbs_n"]["fitted_range"]["N"] == pytest.approx([85.0, 1200.0])  # millions, the law's input unit


@pytest.mark.parametrize("mode", [("--gpus", "4096"), ("--deadline", "1h")])
def test_optimizer_settings_follow_the_batch_the_gpu_plan_runs(cli, tmp_path, mode):
    """The GPU plan raised the batch (512 -> 4096 sequences at --gpus 4096) while LR, warmup, beta2, EWA and the
    schedule stayed those of the recommended batch; they are now those of the batch run, as with --batch-tokens."""
    flags = ("--target-loss", "2.3", "--inference-tokens", "2e12")
    ran = cli("recommend", *flags, *mode, "--json").json
    assert ran["batch_size_tokens"] > cli("recommend", *flags, "--json").json["batch_size_tokens"]  # raised
    given = cli("recommend", *flags, "--batch-tokens", f"{ran['batch_size_tokens']:.0f}", "--json").json
    assert given["batch_size_tokens"] == ran["batch_size_tokens"]
    for key in ("learning_rate", "adam_beta2", "ewa_decay", "schedule", "critical_batch_tokens"):
        assert ran[key] == given[key], key
    for key in ("warmup_steps", "warmup_tokens", "schedule_reason", "b_opt_tokens", "mccandlish_bcrit_tokens"):
        assert ran["batch"][key] == given["batch"][key], key
    assert ran["batch"]["warmup_steps"] == math.ceil(ran["batch"]["warmup_tokens"] / ran["batch_size_tokens"])
    assert f"batch {ran['batch_size_tokens']:.3g} tokens" in ran["batch"]["schedule_reason"]
    assert ran["batch"]["n_steps"] == math.ceil(ran["gpu_plan"]["n_tokens_needed"] / ran["batch_size_tokens"])
    path = tmp_path / "plan.yaml"  # the plan file records the batch run, whose settings these are
    assert cli("recommend", *flags, *mode, "--write-plan", str(path)).code == 0
    assert yaml.safe_load(path.read_text())["training"]["global_batch_tokens"] == ran["batch_size_tokens"]
    table = " ".join(cli("recommend", *flags, *mode).stdout.split())
    assert f"warmup {ran['batch']['warmup_steps']:,} steps" in table
    assert f"{ran['adam_beta2']:.3g} / {ran['ewa_decay']:.3g}" in table
