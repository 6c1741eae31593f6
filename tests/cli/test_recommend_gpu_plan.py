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


def _flat(lines) -> str:
    return " ".join(" ".join(lines).split())


def test_batch_laws_and_hardware_are_identified_by_sha256(cli):
    """Only the loss law had a sha256: the CBS law, the B_opt/LR law and the accelerator were named only."""
    import hashlib

    from planner import profiles

    d = cli("recommend", "--params", "7B", "--json").json
    refs = {"zhang-2024": d["batch"]["cbs_law"], "steplaw-2025": d["batch"]["lr_law"],
            "h100-sxm5-80gb": d["gpu_plan"]["hardware_profile"]}
    text = _flat(d["assumptions"])
    for name, ref in refs.items():
        kind = "hardware" if name.startswith("h100") else "batch"
        raw = (profiles.builtin_dir() / kind / f"{name}.yaml").read_bytes()
        assert ref == {"name": name, "sha256": hashlib.sha256(raw).hexdigest(), "path": ref["path"], "builtin": True}
        assert f"{name} (sha256 {ref['sha256'][:16]}…)" in text
    cost = cli("recommend", "--params", "7B", "--objective", "cost", "--inference-tokens", "1e12",
               "--inference-gpu", "a100-sxm4-40gb", "--inference-dtype", "int8", "--json").json
    c = cost["cost_inputs"]
    assert c["train_gpu_profile"]["name"] == "h100-sxm5-80gb" and c["inference_gpu_profile"]["name"] == "a100-sxm4-40gb"
    assert f"a100-sxm4-40gb (sha256 {c['inference_gpu_profile']['sha256'][:16]}…)" in _flat(cost["assumptions"])


@pytest.mark.parametrize("extra", [[], ["--objective", "cost", "--inference-tokens", "1e12"]])
@pytest.mark.parametrize("dtype", ["int8", "int4"])
def test_inference_only_dtypes_are_refused_for_training(cli, dtype, extra):
    """--train-dtype int8 took the H100's int8 1978.9 TOPS as the training peak: half the wall-clock."""
    r = cli("recommend", "--params", "7B", "--train-dtype", dtype, *extra)
    assert r.code == 2 and r.stdout == ""
    assert f"--train-dtype: {dtype} is not a training dtype" in r.stderr
    assert "h100-sxm5-80gb trains in: bf16, fp16, fp8, tf32, fp32" in r.stderr


def test_training_dtypes_and_int8_serving_still_work(cli):
    for dtype in ("bf16", "fp16", "fp8", "tf32", "fp32"):
        assert cli("recommend", "--params", "7B", "--train-dtype", dtype, "--json").code == 0, dtype
    r = cli("recommend", "--params", "7B", "--objective", "cost", "--inference-tokens", "1e12",
            "--inference-gpu", "a100-sxm4-40gb", "--inference-dtype", "int8", "--json")
    assert r.code == 0 and r.json["cost_inputs"]["inference_dtype"] == "int8"


@pytest.mark.parametrize("params, seq_len, factor", [("1B", 8192, 1.57), ("7B", 8192, 1.32), ("1B", 4096, 1.29)])
def test_attention_flops_past_ten_percent_of_6n_are_warned(cli, params, seq_len, factor):
    """6·N·D/(GPUs·peak·MFU) leaves out attention's 12·L·d·T per token; the MFU priors are 6N MFUs of runs where
    it was small, so a long context for the model's width runs at a lower 6N-MFU. The time formula stays."""
    r = cli("recommend", "--params", params, "--seq-len", str(seq_len), "--json")
    g = r.json["gpu_plan"]
    s = g["shape"]
    expect = 1 + 12 * s["n_layers"] * s["d_model"] * seq_len / (6 * r.json["n_params"])
    assert g["attention_flops_factor"] == pytest.approx(expect) and round(expect, 2) == factor
    err = " ".join(r.stderr.split())
    assert f"at seq_len {seq_len}" in err and f"~{factor:.2f}x higher" in err
    assert r.json["wall_clock_s"] == pytest.approx(6 * r.json["n_params"] * g["n_tokens_needed"] / (
        r.json["n_gpus"] * g["peak_flops_per_s"] * g["mfu"]))  # unchanged: the warning states the factor


def test_attention_under_ten_percent_of_6n_is_not_warned(cli):
    r = cli("recommend", "--params", "70B", "--seq-len", "2048", "--json")
    assert r.json["gpu_plan"]["attention_flops_factor"] < 1.1
    assert "attention FLOPs" not in r.stderr


def test_the_token_penalty_states_its_b_fit(cli):
    """The penalty is zero up to the CBS because B_fit is taken as the CBS (batch-laws.md §5 item 2 has
    B_fit << B_crit): the assumptions say so, and what Zhang's CBS itself costs."""
    text = _flat(cli("recommend", "--params", "7B", "--json").json["assumptions"])
    assert "with B_fit = the CBS" in text and "B_fit << B_crit" in text
    assert "training at the CBS already needs ~20% more samples than linear scaling from B_ref" in text


def test_max_gpus_says_why_it_plans_fewer(cli):
    """--max-gpus 7 planned on 4 GPUs silently, while --gpus 7 uses all 7 with the batch rounded."""
    capped = cli("recommend", "--params", "1B", "--max-gpus", "7", "--json")
    assert capped.json["n_gpus"] == 4 and capped.json["batch_size_sequences"] == 64
    err = " ".join(capped.stderr.split())
    assert "--max-gpus 7: planned on 4 GPUs, the most at or under the cap whose 4 data-parallel ranks divide" in err
    assert "--gpus 7 uses exactly 7" in err
    fixed = cli("recommend", "--params", "1B", "--gpus", "7", "--json").json
    assert fixed["n_gpus"] == 7 and fixed["batch_size_sequences"] == 63
    # a cap that does not bind says nothing
    assert "--max-gpus" not in cli("recommend", "--params", "1B", "--max-gpus", "4096", "--json").stderr
    import re

    assert "power of two sequences" in re.sub(r"[│\s]+", " ", cli("recommend", "--help").stdout)


@pytest.mark.parametrize("args", [["--compute", "1e20", "--inference-tokens", "1e14"],
                                  ["--params", "1e3", "--tokens", "1e23"],
                                  ["--params", "1M", "--tokens", "1T", "--gpus", "1"],
                                  ["--target-loss", "1.83", "--zero-stage", "3", "--recompute", "full"]])
def test_numbers_at_extremes_read_well(cli, args):
    """'1e+18T' tokens, '142857142857142861824.0' tokens/param, '$7.25e+13B', 'x8.97e-19', '1e+03' beside '1k',
    beta2/EWA '1 / 1', '1 (1 nodes)', '-0.0%'."""
    import re

    out = cli("recommend", *args).stdout
    tables = out.split("Assumptions:")[0]
    tables = re.sub(r"│ schedule .*?│ GPUs", "│ GPUs", tables, flags=re.DOTALL)  # batch_plan's reason: '.3g' prose
    bad = (r"e\+\d+[kMBT]\b", r"\$[\d.]+e\+?\d+[kMBT]", r"\d{12,}\.\d", r"x\d(\.\d+)?e-", r"\b1e\+03\b",
           r"\d\.\d\de0\d\b", r"\(1 nodes\)", r"\b1 steps\b", r" 1 / 1 ", r"[+-]0\.0%", r"x\d(\.\d+)?e\+")
    for pattern in bad:
        assert not re.search(pattern, tables), (pattern, tables)
    if "--gpus" in args:
        assert "1 (1 node)" in out and "/ 1 − 3.1e-5" in out  # EWA decay 0.999969: 5 digits read "1"
