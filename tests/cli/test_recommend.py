"""`planner recommend` end to end: golden cases through the JSON, the JSON contract, formats, bad input."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import yaml

from tests.conftest import assert_one_error

CONTRACT = {
    "n_params", "n_tokens", "tokens_per_param", "loss", "train_flops", "inference_flops", "total_flops",
    "objective", "baseline", "savings_fraction", "law",
}
SARDANA_COST = [  # Sardana et al. §6 setting: A100-80GB bf16 $1.50 training, A100-40GB int8 inference, MFU .5/.5/.01
    "--objective", "cost", "--law", "sardana-2024",
    "--train-gpu", "a100-sxm4-80gb", "--train-dtype", "bf16", "--train-price", "1.5", "--train-mfu", "0.5",
    "--inference-gpu", "a100-sxm4-40gb", "--inference-dtype", "int8", "--inference-price", "1.10",
    "--prefill-mfu", "0.5", "--decode-mfu", "0.01", "--input-tokens", "70", "--output-tokens", "215",
]


def close(a, b, rel=1e-6):
    return math.isclose(a, b, rel_tol=rel)


def test_json_contract_and_readme_case(cli, loss_golden):
    """Sardana et al.'s README: compute_optimal.py --loss 1.947 --inference_tokens 2e12."""
    r = cli("recommend", "--target-loss", "1.947", "--inference-tokens", "2e12", "--law", "sardana-2024", "--json")
    assert r.code == 0, r.stderr
    data = r.json
    assert CONTRACT <= set(data)
    assert {"n_params", "n_tokens", "total_flops"} <= set(data["baseline"])
    assert {"name", "sha256", "E", "A", "B", "alpha", "beta"} <= set(data["law"])
    g = loss_golden["readme"]
    assert close(data["n_params"], g["opt_N"]) and close(data["n_tokens"], g["opt_D"])
    assert close(data["baseline"]["n_params"], g["chin_N"]) and close(data["baseline"]["n_tokens"], g["chin_D"])
    assert close(1 - data["savings_fraction"], g["flops_pct"] / 100)
    assert data["law"]["name"] == "sardana-2024" and len(data["law"]["sha256"]) == 64
    assert data["objective"] == "flops" and data["mode"] == "target_loss"


def test_params_mode_is_sardanas_13b_example(cli, loss_golden):
    """--params alone: the model trained to the law's frontier is the baseline (Sardana et al.'s 13B case)."""
    for row in (x for x in loss_golden["b"] if x["label"] == "b:13B@frontier"):
        law = {"hoffmann_rounded": "hoffmann-2022", "hoffmann_unrounded": "hoffmann-2022-unrounded",
               "sardana_devries": "sardana-2024", "besiroglu": "besiroglu-2024"}[row["constants"]]
        data = cli("recommend", "--params", "13B", "--inference-tokens", "2e12", "--law", law, "--json").json
        assert close(data["baseline"]["n_tokens"], row["baseline_D"], 1e-9)
        assert close(data["n_params"], row["opt_N"]) and close(data["n_tokens"], row["opt_D"])
        assert close(100 * data["savings_fraction"], row["saving_pct"])
        if law == "sardana-2024":  # the paper's caption: "a 7B model ... 17% fewer FLOPs"
            assert round(data["n_params"] / 1e9) == 7 and round(100 * data["savings_fraction"]) == 17


def test_evaluate_mode_70b_on_1_4t(cli, loss_golden):
    row = next(x for x in loss_golden["c"] if x["constants"] == "hoffmann_rounded" and x["baseline_D"] == 1.4e12)
    r = cli("recommend", "--params", "70B", "--tokens", "1.4T", "--inference-tokens", "2e12", "--law", "hoffmann-2022",
            "--json")
    data = r.json
    assert data["mode"] == "evaluate"
    assert close(data["loss"], row["target_loss"], 1e-9)
    assert close(data["n_params"], row["opt_N"]) and close(data["n_tokens"], row["opt_D"])
    assert close(100 * data["savings_fraction"], row["saving_pct"])


def test_compute_mode_is_hoffmann_eq4(cli, loss_golden):
    row = next(x for x in loss_golden["a"] if x["constants"] == "besiroglu" and x["C"] == 1e23)
    data = cli("recommend", "--compute", "1e23", "--json").json
    assert data["law"]["name"] == "besiroglu-2024"  # the default law
    assert close(data["n_params"], row["N"], 1e-9) and close(data["n_tokens"], row["D"], 1e-9)
    assert abs(data["savings_fraction"]) < 1e-9  # no inference demand: the baseline is the optimum


def test_cost_objective_matches_sardana_section6(cli, loss_golden):
    row = next(x for x in loss_golden["c_cost"] if x["label"].startswith("c:70B@2T cost") and "1.10" in x["label"])
    r = cli("recommend", "--params", "70B", "--inference-requests", str(row["requests"]), *SARDANA_COST, "--json")
    assert r.code == 0, r.stderr
    data = r.json
    assert close(data["effective_inference_tokens"], row["T_eff"], 1e-9)
    assert close(data["n_params"], row["cost_opt_N"]) and close(data["n_tokens"], row["cost_opt_D"])
    assert close(data["cost_usd"]["total"], row["cost_opt_cost"])
    assert close(data["baseline"]["cost_usd"]["total"], row["baseline_cost"])
    assert close(100 * data["savings_fraction"], row["cost_saving_pct"])
    assert set(data["cost_usd"]) == {"train", "inference", "total"}


def test_yaml_and_table_outputs(cli):
    r = cli("recommend", "--target-loss", "2.3", "--inference-tokens", "2e12", "--yaml")
    assert yaml.safe_load(r.stdout)["law"]["name"] == "besiroglu-2024"
    table = cli("recommend", "--target-loss", "2.3", "--inference-tokens", "2e12")
    assert table.code == 0
    for needle in ("Recommendation", "baseline", "Assumptions", "besiroglu-2024", "sha256"):
        assert needle in table.stdout
    # stderr holds warnings only, one line each: here that 380 tokens/param lies past the law's fitted 341
    assert table.stderr.splitlines() == [w for w in table.stderr.splitlines() if w.startswith("warning: ")]
    assert "380 tokens per parameter: law besiroglu-2024 was fitted at 0.036-341 tokens/param" in table.stderr


def test_plot_writes_a_png(cli, tmp_path):
    out = tmp_path / "plan.png"
    r = cli("recommend", "--target-loss", "2.3", "--inference-tokens", "2e12", "--plot", str(out))
    assert r.code == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cost_plot_too(cli, tmp_path):
    out = tmp_path / "cost.png"
    r = cli("recommend", "--params", "30B", "--inference-requests", "1.5e9", *SARDANA_COST, "--plot", str(out))
    assert r.code == 0, r.stderr
    assert out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--target-loss", "-2"],
        ["--target-loss", "0"],
        ["--target-loss", "nan"],
        ["--target-loss", "inf"],
        ["--target-loss", "two"],
        ["--params", "7X"],
        ["--params", "7B", "--inference-tokens", "-1"],
        ["--target-loss", "2.3", "--compute", "1e23"],
        [],
        ["--tokens", "1T"],
        ["--target-loss", "2.3", "--json", "--yaml"],
        ["--target-loss", "2.3", "--inference-tokens", "1e12", "--inference-requests", "1e9"],
        ["--target-loss", "2.3", "--inference-price", "2"],
        ["--params", "7B", "--gpus", "8", "--deadline", "30d"],
        ["--params", "7B", "--gpus", "8", "--max-gpus", "4"],
        ["--params", "7B", "--gpus", "0"],
        ["--params", "7B", "--zero-stage", "5"],
        ["--params", "7B", "--recompute", "some"],
        ["--params", "7B", "--deadline", "soon"],
        ["--params", "7B", "--mfu", "0"],
        ["--params", "7B", "--mfu", "1.2"],
        ["--params", "7B", "--train-dtype", "fp4"],
        ["--params", "7B", "--batch-tokens", "-5"],
        ["--params", "7B", "--seq-len", "0"],
        ["--params", "7B", "--objective", "cost", "--gpu", "h100-sxm5-80gb", "--train-gpu", "a100-sxm4-80gb"],
        ["--target-loss", "2.3", "--objective", "dollars"],
        ["--target-loss", "2.3", "--objective", "cost", "--train-mfu", "1.5"],
        ["--target-loss", "2.3", "--objective", "cost", "--decode-mfu", "nan"],
        ["--target-loss", "2.3", "--objective", "cost", "--inference-gpu", "a100-sxm4-80gb"],  # no fp8 on Ampere
        ["--compute", "1e23", "--objective", "cost"],
        ["--target-loss", "2.3", "--no-such-flag"],
        ["--target-loss", "2.3", "--train-mfu"],
        ["--target-loss", "2.3", "--plot", "out.jpg"],
    ],
)
def test_usage_errors(cli, args):
    assert_one_error(cli("recommend", *args), 2)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--target-loss", "1.6", "--law", "hoffmann-2022"], "E = 1.69"),
        (["--target-loss", "1.80", "--inference-tokens", "2e12"], "1.8172"),
        (["--target-loss", "1.69", "--law", "hoffmann-2022"], "E = 1.69"),
    ],
)
def test_infeasible_targets(cli, args, needle):
    r = cli("recommend", *args)
    assert_one_error(r, 4)
    assert needle in r.stderr


def test_hardware_and_batch_law_errors(cli):
    r = cli("recommend", "--params", "7B", "--gpu", "tpu-v9")
    assert_one_error(r, 3)
    assert "h100-sxm5-80gb" in r.stderr and "tpu-v5p" in r.stderr  # lists what exists
    assert_one_error(cli("recommend", "--params", "7B", "--batch-law", "nope"), 3)
    r = cli("recommend", "--params", "7B", "--batch-law", "steplaw-2025")
    assert_one_error(r, 3)
    assert "cbs_d" in r.stderr
    assert_one_error(cli("recommend", "--params", "70B", "--gpu", "rtx-4090", "--gpus", "1"), 4)


def test_profile_errors(cli, tmp_path):
    r = cli("recommend", "--target-loss", "2.3", "--law", "chinchilla")
    assert_one_error(r, 3)
    assert "besiroglu-2024" in r.stderr  # the error lists what exists
    assert_one_error(cli("recommend", "--target-loss", "2.3", "--law", str(tmp_path / "nope.yaml")), 3)
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nkind: loss-law\nname: x\ntitle: t\nform: chinchilla\n"
                   "constants: {E: 1.7, A: -3, B: 400, alpha: 0.3, beta: 0.3}\n"
                   "units: {loss: nats, params: total, tokens: tokens}\ndataset: d\nsource: s\n")
    r = cli("recommend", "--target-loss", "2.3", "--law", str(bad))
    assert_one_error(r, 3)
    assert f"{bad}:6: constants.A" in r.stderr  # file, line and field
    bad.write_text("constants: [unclosed\n")
    assert_one_error(cli("recommend", "--target-loss", "2.3", "--law", str(bad)), 3)
    r = cli("recommend", "--target-loss", "2.3", "--objective", "cost", "--train-gpu", "h100")
    assert_one_error(r, 3)
    assert "h100-sxm5-80gb" in r.stderr


def test_debug_shows_the_traceback(cli):
    r = cli("--debug", "recommend", "--target-loss", "1.0")
    assert r.code == 4 and "Traceback" in r.stderr


def test_python_dash_m_planner():
    out = subprocess.run([sys.executable, "-m", "planner", "--help"], capture_output=True, text=True, check=True)
    assert "recommend" in out.stdout
