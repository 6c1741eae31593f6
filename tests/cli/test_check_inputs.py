"""`planner check` on bad input: --init paths, invalid shapes and values, and invalid plans among good ones."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import yaml

from planner.plan_io import EXAMPLE
from tests.conftest import assert_one_error

GITHUB = re.compile(r"^::(error|warning|notice) file=([^,]+)(?:,line=(\d+))?,title=([^:]+)::(.+)$")


@pytest.fixture
def plan():
    return yaml.safe_load(EXAMPLE)


def write(tmp_path, data: dict, name: str = "plan.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def invalid(tmp_path, plan):
    """A plan whose model.params (line 4 of the dump) is negative."""
    plan["model"]["params"] = -7e9
    return write(tmp_path, plan, "neg.yaml")


# ----------------------------------------------------------------------------- --init


@pytest.mark.parametrize("target, needle", [
    ("missing-dir/x.yaml", "missing-dir does not exist"),
    ("a-file.yaml/x.yaml", "a-file.yaml is not a directory"),
    ("new-dir/", "names a directory"),  # a trailing slash names a directory, not a file called new-dir
    ("old-dir", "names a directory"),
])
def test_init_refuses_paths_it_cannot_write(cli, tmp_path, monkeypatch, target, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file.yaml").write_text("x: 1\n")
    (tmp_path / "old-dir").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    r = cli("check", "--init", target)
    assert_one_error(r, 2)
    assert needle in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_init_reports_on_stderr_and_keeps_stdout_for_the_template(cli, tmp_path):
    out = tmp_path / "new.yaml"
    r = cli("check", "--init", str(out))
    assert r.code == 0 and r.stdout == "" and r.stderr.strip() == f"wrote {out}"
    assert out.read_text() == EXAMPLE
    r = cli("check", "--init")
    assert r.code == 0 and r.stdout == EXAMPLE and r.stderr == ""


@pytest.mark.parametrize("flags", [("--format", "json"), ("--format", "table"), ("--strict",),
                                   ("--confidence", "0.95"), ("--baseline", "HEAD")])
def test_init_rejects_report_flags(cli, tmp_path, flags):
    out = tmp_path / "new.yaml"
    r = cli("check", "--init", str(out), *flags)
    assert_one_error(r, 2)
    assert flags[0] in r.stderr and not out.exists()


# ----------------------------------------------------------------------------- invalid values in a plan


@pytest.mark.parametrize("shape, key, needle", [
    ({"n_layers": 32, "d_model": 4000, "n_heads": 33, "d_ff": 11008, "vocab_size": 32000},
     "model.shape.n_heads", "d_model 4000 is not a multiple of n_heads 33"),
    ({"n_layers": 32, "d_model": 4096, "n_heads": 32, "d_ff": 11008, "vocab_size": 32000, "n_kv_heads": 5},
     "model.shape.n_kv_heads", "n_heads 32 is not a multiple of n_kv_heads 5"),
])
def test_shapes_that_do_not_divide_are_plan_errors(cli, tmp_path, plan, shape, key, needle):
    del plan["model"]["params"]
    plan["model"]["shape"] = shape
    path = write(tmp_path, plan)
    r = cli("check", str(path))
    assert_one_error(r, 3)
    assert re.search(rf"{re.escape(str(path))}:\d+: {re.escape(key)}: .*{needle}", r.stderr), r.stderr


@pytest.mark.parametrize("section, key", [
    ("training", "n_gpus"), ("training", "zero_stage"), ("training", "tokens"), ("model", "params"),
    ("limits", "max_gpu_hours"), ("training", "mfu"),
])
def test_booleans_are_not_numbers(cli, tmp_path, plan, section, key):
    plan[section][key] = True
    path = write(tmp_path, plan)
    r = cli("check", str(path))
    assert_one_error(r, 3)
    assert re.search(rf"{re.escape(str(path))}:\d+: {section}\.{key}: Input should be a number, not true", r.stderr)


LLAMA_7B = {"n_layers": 32, "d_model": 4096, "n_heads": 32, "d_ff": 11008, "vocab_size": 32000}  # 6.74e9


def test_params_and_shape_must_agree(cli, tmp_path, plan):
    plan["model"] = {"params": 1.0e9, "shape": LLAMA_7B}
    path = write(tmp_path, plan)
    r = cli("check", str(path))
    assert_one_error(r, 3)
    assert f"{path}:4: model.params: 1e+09 disagrees with model.shape" in r.stderr and "6.738e+09" in r.stderr
    plan["model"] = {"params": 7.0e9, "shape": LLAMA_7B}  # 4% apart: the same model
    assert cli("check", str(write(tmp_path, plan)), "--format", "json").code == 0


def test_write_plan_of_a_small_model_still_passes(cli, tmp_path):
    # planner's own stand-in shape for ~0.34B parameters is 40% smaller (whole layers, heads rounded to 8):
    # the plan records both, and check accepts the shape planner derives for the parameters
    path = tmp_path / "written.yaml"
    r = cli("recommend", "--target-loss", "2.5", "--inference-tokens", "1e12", "--write-plan", str(path), "--json")
    assert r.code == 0, r.stderr
    written = yaml.safe_load(path.read_text())["model"]
    assert written["params"] < 0.5e9 and written["shape"]["d_model"] * written["shape"]["n_layers"] > 0
    assert cli("check", str(path), "--format", "json").code == 0


# ----------------------------------------------------------------------------- invalid plans in every format


def test_junit_reports_an_invalid_plan_as_an_error(cli, tmp_path, plan):
    path = invalid(tmp_path, plan)
    r = cli("check", str(path), "--format", "junit")
    assert r.code == 3 and "error: " in r.stderr and "hint: " in r.stderr
    root = ET.fromstring(r.stdout)
    assert root.get("errors") == "1" and root.get("tests") == "1"
    suite = root.find("testsuite")
    assert suite.get("file") == str(path) and suite.get("errors") == "1"
    case = suite.find("testcase")
    assert case.get("line") == "4" and "model.params" in case.find("error").get("message")


def test_github_annotates_the_invalid_key(cli, tmp_path, plan):
    path = invalid(tmp_path, plan)
    r = cli("check", str(path), "--format", "github")
    assert r.code == 3
    (line,) = r.stdout.strip().splitlines()
    match = GITHUB.match(line)
    assert match and match.group(1) == "error" and match.group(2) == str(path) and match.group(3) == "4"
    assert "model.params: Input should be greater than 0" in match.group(5)


def test_every_file_is_checked_on_its_own(cli, tmp_path, plan):
    good = write(tmp_path, plan, "good.yaml")
    bad = invalid(tmp_path, dict(plan, model=dict(plan["model"])))
    r = cli("check", str(good), str(bad), "--format", "json")
    assert r.code == 3
    entries = {p["file"]: p for p in r.json["plans"]}
    assert r.json["status"] == "error"
    assert entries[str(good)]["status"] == "pass" and len(entries[str(good)]["checks"]) == 9  # 8 + batch_as_given
    assert entries[str(bad)] == {"file": str(bad), "status": "error", "line": 4, "hint": entries[str(bad)]["hint"],
                                 "error": f"{bad}:4: model.params: Input should be greater than 0"}
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert [line.split(":")[0] for line in lines] == ["error", "hint"] and "1 of 2 plans" in lines[0]
    table = cli("check", str(good), str(bad))  # the table of the good plan, the error line for the bad one
    assert table.code == 3 and f"{good}: " in table.stdout and str(bad) not in table.stdout
    assert f"{bad}:4: model.params" in table.stderr


def test_an_invalid_plan_outranks_a_failed_limit(cli, tmp_path, plan):
    bad = invalid(tmp_path, dict(plan, model=dict(plan["model"])))
    plan["limits"]["max_gpu_hours"] = 1000.0
    failing = write(tmp_path, plan, "failing.yaml")
    r = cli("check", str(failing), str(bad), "--format", "junit")
    assert r.code == 3
    assert "limits also failed" in r.stderr and "gpu_hours" in r.stderr
    root = ET.fromstring(r.stdout)
    assert root.get("failures") == "1" and root.get("errors") == "1"
    assert cli("check", str(failing)).code == 7


def test_a_single_invalid_plan_keeps_the_one_error_contract(cli, tmp_path, plan):
    path = invalid(tmp_path, plan)
    r = cli("check", str(path))
    assert_one_error(r, 3)
    assert f"{path}:4: model.params: Input should be greater than 0" in r.stderr
    assert_one_error(cli("check", str(tmp_path / "missing.yaml")), 3)
