"""`planner recommend` input bounds: every bad number exits 2, absurd results exit 4, messages say what was given.

Regression tests for an audit of `recommend`: values that were silently replaced by defaults, results of
fractions of a parameter accepted with exit 0, messages that named a target nobody gave or a layout the GPU
count could not hold, a unit-less deadline read as seconds, and a hint that cited a command that does not exist.
"""

from __future__ import annotations

import json

import pytest

from planner.planning import MIN_PARAMS
from tests.conftest import assert_one_error

BAD_NUMBERS = ["-0.5", "0", "-3", "nan", "inf", "-inf"]


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize(
    "flag, context",
    [
        ("--mfu", []),
        ("--train-price", []),
        ("--train-price", ["--objective", "cost"]),
        ("--inference-price", ["--objective", "cost"]),
        ("--train-mfu", ["--objective", "cost"]),
        ("--prefill-mfu", ["--objective", "cost"]),
        ("--decode-mfu", ["--objective", "cost"]),
        ("--compute", []),
        ("--batch-tokens", []),
        ("--input-tokens", ["--inference-requests", "1e9"]),
        ("--output-tokens", ["--inference-requests", "1e9"]),
    ],
)
def test_every_bad_number_is_a_usage_error(cli, flag, context, value):
    """`--mfu -0.5` and `--train-price -3` used to fall back to the profile's prior and price (exit 0)."""
    mode = [] if flag == "--compute" else ["--target-loss", "2.3"]
    r = cli("recommend", *mode, *context, f"{flag}={value}")
    assert_one_error(r, 2)
    assert flag in r.stderr


@pytest.mark.parametrize("value", ["-1", "0"])
@pytest.mark.parametrize("flag", ["--gpus", "--max-gpus", "--seq-len", "--vocab-size"])
def test_counts_below_one_are_usage_errors(cli, flag, value):
    assert_one_error(cli("recommend", "--params", "7B", f"{flag}={value}"), 2)


def test_a_one_token_vocabulary_is_refused_as_in_calibrate(cli):
    r = cli("recommend", "--params", "7B", "--vocab-size", "1")
    assert_one_error(r, 2)
    assert "--vocab-size: must be at least 2" in r.stderr


@pytest.mark.parametrize("value", ["-1", "nan", "-inf"])
def test_negative_inference_demand_is_a_usage_error(cli, value):
    assert_one_error(cli("recommend", "--target-loss", "2.3", f"--inference-tokens={value}"), 2)
    assert_one_error(cli("recommend", "--target-loss", "2.3", f"--inference-requests={value}"), 2)


def test_given_mfu_and_price_are_used_not_replaced(cli):
    d = cli("recommend", "--params", "7B", "--mfu", "0.31", "--train-price", "2.5", "--json").json
    assert d["gpu_plan"]["mfu"] == 0.31 and d["gpu_plan"]["price_usd_per_hour"] == 2.5


@pytest.mark.parametrize("args", [["--params", "0.5"], ["--params", "999"], ["--params", "1e-9"]])
def test_params_below_the_floor_is_a_usage_error(cli, args):
    r = cli("recommend", *args)
    assert_one_error(r, 2)
    assert "--params" in r.stderr and "1,000 parameters" in r.stderr


@pytest.mark.parametrize("law, seq_len", [("besiroglu-2024", "4096"), ("hoffmann-2022", "1024"),
                                          ("sardana-2024", "1024")])
def test_params_at_the_floor_is_accepted(cli, law, seq_len):
    """The floor itself plans, whatever the solvers' round-off does to the recommended N."""
    r = cli("recommend", "--params", f"{MIN_PARAMS:g}", "--law", law, "--seq-len", seq_len, "--json")
    assert r.code == 0, r.stderr
    assert r.json["n_params"] == pytest.approx(MIN_PARAMS, rel=1e-9)


def test_recommended_tokens_below_one_sequence_are_infeasible(cli):
    """hoffmann-2022 trains a 1,000-parameter model on 2.3k tokens: less than one 4096-token sequence."""
    r = cli("recommend", "--params", "1000", "--law", "hoffmann-2022")
    assert_one_error(r, 4)
    assert "less than one training step" in r.stderr and "--seq-len" in r.stderr.splitlines()[1]


@pytest.mark.parametrize(
    "args",
    [
        ["--params", "7B", "--tokens", "1"],
        ["--params", "7B", "--tokens", "4095"],
        ["--params", "7B", "--tokens", "100", "--seq-len", "128"],
        ["--params", "7B", "--tokens", "1M", "--batch-tokens", "4M"],
    ],
)
def test_tokens_below_one_step_is_a_usage_error(cli, args):
    """`--params 7B --tokens 1` recommended a 0.1-parameter model trained on 7 tokens."""
    r = cli("recommend", *args)
    assert_one_error(r, 2)
    assert "--tokens" in r.stderr and "one training step" in r.stderr


def test_batch_below_one_sequence_is_a_usage_error(cli):
    r = cli("recommend", "--target-loss", "2.3", "--batch-tokens", "1000")
    assert_one_error(r, 2)
    assert "--batch-tokens" in r.stderr and "one sequence" in r.stderr


@pytest.mark.parametrize(
    "args, hint",
    [
        (["--compute", "1"], "--compute"),  # was a 0.048-parameter model
        (["--compute", "1e8"], "--compute"),
        (["--target-loss", "1e30"], "lower target loss"),  # was 1.96e-78 parameters
        (["--target-loss", "200"], "lower target loss"),
        (["--params", "1000", "--inference-tokens", "1e15"], "--params"),
        (["--target-loss", "2.3", "--batch-tokens", "1e12"], "--batch-tokens"),  # one step > the whole run
    ],
)
def test_results_below_the_floors_are_infeasible(cli, args, hint):
    r = cli("recommend", *args)
    assert_one_error(r, 4)
    assert hint in r.stderr.splitlines()[1]
    assert "%" not in r.stderr


def test_no_percentage_of_absurd_magnitude(cli):
    """A forced batch far past the CBS reports a factor, not a 38-digit percentage."""
    r = cli("recommend", "--target-loss", "2.3", "--batch-tokens", "3e10")
    assert r.code == 0, r.stderr
    warning = " ".join(r.stderr.split())
    assert "x the tokens for the same loss" in warning and "00.0%" not in warning
    modest = cli("recommend", "--target-loss", "2.3", "--batch-tokens", "1e9")
    assert "8724.0% more tokens" in " ".join(modest.stderr.split())  # under 100x: still a percentage


@pytest.mark.parametrize(
    "args, given",
    [
        (["--compute", "1e300"], "a lifetime budget of 1e+300 FLOPs"),
        (["--params", "1e300"], "a model of 1e+300 parameters"),
    ],
)
def test_loss_at_e_names_what_was_given(cli, args, given):
    """`--compute 1e300` said "target loss 1.8172 <= E" although no target was given."""
    r = cli("recommend", *args)
    assert_one_error(r, 4)
    assert given in r.stderr and "target loss" not in r.stderr.splitlines()[0]


def test_overflowing_flops_are_infeasible_not_inf(cli):
    r = cli("recommend", "--params", "7B", "--tokens", "1e300")
    assert_one_error(r, 4)
    assert "overflow" in r.stderr


def test_tokens_alone_says_it_needs_params(cli):
    r = cli("recommend", "--tokens", "1T")
    assert_one_error(r, 2)
    assert "--tokens needs --params" in r.stderr and "given: none" not in r.stderr


@pytest.mark.parametrize(
    "args, split, fix",
    [
        (["--params", "70B", "--tokens", "1.4T", "--gpus", "8"], "TP=8 x PP=1", "--gpus 32"),
        (["--params", "70B", "--max-gpus", "8"], "TP=8 x PP=1", "--max-gpus 32"),
        (["--params", "70B", "--gpu", "rtx-4090", "--gpus", "1"], "TP=1 x PP=1", "--gpus "),
    ],
)
def test_does_not_fit_names_a_layout_the_gpu_count_allows(cli, args, split, fix):
    """With --gpus 8 the message said "even at TP=8 x PP=64", a 512-GPU layout."""
    r = cli("recommend", *args)
    assert_one_error(r, 4)
    error, hint = r.stderr.splitlines()
    assert split in error and "PP=64" not in error
    assert fix in hint
    flag = fix.split()[0]
    suggested = hint.split(f"give {flag} ")[1].split()[0]
    rerun = list(args)
    rerun[args.index(flag) + 1] = suggested
    assert cli("recommend", *rerun, "--json").code == 0  # the suggested count does plan


@pytest.mark.parametrize("deadline", ["30", "720", "0d", "-1d", "thirty days"])
def test_deadline_needs_a_unit(cli, deadline):
    """`--deadline 30` was read as 30 seconds and planned 98,560 GPUs."""
    r = cli("recommend", "--target-loss", "2.3", "--deadline", deadline)
    assert_one_error(r, 2)
    assert "--deadline" in r.stderr


@pytest.mark.parametrize("deadline, seconds", [("30d", 30 * 86400), ("720h", 30 * 86400), ("90m", 5400),
                                               ("90min", 5400), ("2w", 14 * 86400)])
def test_deadline_units(cli, deadline, seconds):
    d = cli("recommend", "--params", "1B", "--deadline", deadline, "--json").json
    assert d["gpu_plan"]["mode"] == "deadline" and d["wall_clock_s"] <= seconds


def test_deadline_help_shows_the_unit(cli):
    r = cli("recommend", "--help")
    assert "720h" in " ".join(r.stdout.split())


@pytest.mark.parametrize("law", ["nope", "kaplan-2020", "deepseek-2024", "steplaw-2025"])
def test_batch_law_hint_lists_only_usable_laws(cli, law):
    """The hint cited `planner profiles list` (no such command) and listed laws --batch-law rejects."""
    r = cli("recommend", "--target-loss", "2.3", "--batch-law", law)
    assert_one_error(r, 3)
    hint = r.stderr.splitlines()[1]
    assert "zhang-2024" in hint and "fit-cbs --write-law" in hint
    for unusable in ("kaplan-2020", "deepseek-2024", "steplaw-2025", "profiles list"):
        assert unusable not in hint


def test_batch_law_hint_includes_usable_user_laws(cli, tmp_path, monkeypatch):
    """A user's own D-law in $PLANNER_PROFILES_DIR/batch is listed; a broken user file is skipped."""
    import os
    from pathlib import Path

    user = Path(os.environ["PLANNER_PROFILES_DIR"]) / "batch"
    user.mkdir(parents=True, exist_ok=True)
    builtin = Path(__file__).resolve().parents[2] / "profiles" / "batch" / "zhang-2024.yaml"
    (user / "mine.yaml").write_text(builtin.read_text().replace("name: zhang-2024", "name: mine"))
    (user / "broken.yaml").write_text("kind: batch-law\n")
    r = cli("recommend", "--target-loss", "2.3", "--batch-law", "nope")
    assert_one_error(r, 3)
    assert "mine" in r.stderr and "broken" not in r.stderr.splitlines()[1]


def test_valid_json_is_unchanged_by_the_bounds(cli):
    """The floors and checks touch no valid request: the README case still plans."""
    r = cli("recommend", "--target-loss", "2.3", "--inference-tokens", "2e12", "--json")
    assert r.code == 0 and all(line.startswith("warning: ") for line in r.stderr.splitlines())
    assert json.loads(r.stdout)["n_params"] > MIN_PARAMS


@pytest.mark.parametrize(
    "args",
    [
        ["--params", "7B", "--objective", "cost", "--train-price", "1e-300", "--inference-tokens", "1e12"],  # was exit 1
        ["--params", "7B", "--train-price", "1e306"],  # training cost inf
        ["--target-loss", "2.3", "--inference-tokens", "1e300"],  # inference FLOPs inf
    ],
)
def test_overflowing_costs_and_flops_are_infeasible(cli, args):
    r = cli("recommend", *args)
    assert_one_error(r, 4)
    assert "overflow" in r.stderr


@pytest.mark.parametrize("flag", ["--gpu", "--train-dtype", "--law", "--batch-law"])
def test_an_empty_name_is_a_usage_error_not_the_default(cli, flag):
    """`--gpu ''` fell back to the default accelerator ('' read as "not given")."""
    r = cli("recommend", "--params", "7B", f"{flag}=")
    assert_one_error(r, 2)
    assert f"{flag}: empty value" in r.stderr


def _law_with(tmp_path, constants: str):
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "profiles" / "laws" / "hoffmann-2022.yaml").read_text()
    path = tmp_path / "extreme.yaml"
    path.write_text(re.sub(r"^constants: .*$", f"constants: {{{constants}}}", text, flags=re.MULTILINE))
    return str(path)


def test_exponents_beyond_any_fit_are_refused_by_the_schema(cli, tmp_path):
    """alpha = 50 validated and then overflowed in every mode ("internal error ... a bug")."""
    r = cli("recommend", "--law", _law_with(tmp_path, "E: 1.69, A: 406.4, B: 410.7, alpha: 50, beta: 0.28"),
            "--params", "7B")
    assert_one_error(r, 3)
    assert "alpha" in r.stderr


@pytest.mark.parametrize("args", [
    ("--params", "7B"), ("--params", "7B", "--tokens", "1T"), ("--compute", "1e23", "--inference-tokens", "1e12"),
    ("--target-loss", "2.3"), ("--compute", "1e23"), ("--target-loss", "2.3", "--inference-tokens", "1e12"),
])
def test_extreme_constants_that_validate_are_infeasible_not_a_bug(cli, tmp_path, args):
    """alpha = 10 is the fitter's bound (a --force boundary fit can write it); with A = 1e300 the answers
    overflow, underflow to D = 0 (math domain error) or hung the lifetime solver. Exit 4, or an answer."""
    law = _law_with(tmp_path, "E: 1.69, A: 1.0e+300, B: 410.7, alpha: 10, beta: 0.28")
    r = cli("recommend", "--law", law, *args, "--json")
    if r.code:
        assert_one_error(r, 4)


def test_a_full_disk_on_stdout_is_an_io_error_not_a_bug(tmp_path):
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "planner", "recommend", "--target-loss", "2.3", "--json"],
                           stdout=full, stderr=subprocess.PIPE, text=True, check=False)
    assert r.returncode == 3, r.stderr
    assert "error: cannot write the output: No space left on device" in r.stderr and "Traceback" not in r.stderr


def test_cost_only_flag_message_agrees_in_number(cli):
    one = cli("recommend", "--params", "7B", "--inference-price", "2")
    assert one.code == 2 and "--inference-price only applies to --objective cost" in one.stderr
    assert "drop that flag" in one.stderr
    two = cli("recommend", "--params", "7B", "--inference-price", "2", "--decode-mfu", "0.02")
    assert "only apply to --objective cost" in two.stderr and "drop those flags" in two.stderr


def test_a_plan_file_training_in_int8_is_refused(cli, tmp_path):
    """`planner check` read training.dtype int8 as the H100's int8 TOPS too (plan_io.inputs)."""
    plan = tmp_path / "plan.yaml"
    assert cli("recommend", "--params", "1B", "--write-plan", str(plan)).code == 0
    plan.write_text(plan.read_text().replace("dtype: bf16", "dtype: int8"))
    r = cli("check", str(plan))
    assert r.code == 3 and "training.dtype: int8 is not a training dtype" in r.stderr
    assert "trains in: bf16, fp16, fp8, tf32, fp32" in r.stderr
