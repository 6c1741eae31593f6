"""`planner check` regressions from the audit: baselines (new plans, relative laws at a ref, broken baselines, an
empty ref), plans written by `recommend --write-plan`, duplicate keys and quoted numbers, out-of-range values,
extreme values, control characters in names, and how values and reasons read."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from planner import profiles
from planner.plan_io import EXAMPLE
from tests.conftest import assert_one_error

LAW = "hoffmann-2022"


@pytest.fixture
def plan():
    return yaml.safe_load(EXAMPLE)


def write(directory: Path, data: dict, name: str = "plan.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false",
                    *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "commit", "--allow-empty", "-qm", "init")
    return root


def builtin_law() -> Path:
    return profiles.builtin_dir() / "laws" / f"{LAW}.yaml"


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity (which json.dumps writes by default, and JSON does not have)."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


# ----------------------------------------------------------------------------- 1. a plan new since the ref


def test_a_plan_new_since_the_ref_is_checked_with_a_note(cli, repo, plan, monkeypatch):
    monkeypatch.chdir(repo)
    (repo / "plans").mkdir()
    write(repo / "plans", plan, "new.yaml")
    r = cli("check", "plans/new.yaml", "--baseline", "HEAD", "--format", "json")
    assert r.code == 0, r.stderr
    entry = r.json["plans"][0]
    assert entry["status"] == "pass" and entry["changes"] is None and entry["warnings"] == []
    assert entry["notes"] and entry["notes"][0].startswith("new since HEAD")
    table = cli("check", "plans/new.yaml", "--baseline", "HEAD")
    assert table.code == 0 and "note: new since HEAD" in " ".join(table.stdout.split()) and table.stderr == ""
    github = cli("check", "plans/new.yaml", "--baseline", "HEAD", "--format", "github").stdout
    assert any(line.startswith("::notice") and "new since HEAD" in line for line in github.splitlines())
    assert_one_error(cli("check", "plans/new.yaml", "--baseline", "no-such-ref"), 3)  # a ref that does not exist
    assert_one_error(cli("check", "plans/new.yaml", "--baseline", "--output=x"), 3)  # not an option to git


# ----------------------------------------------------------------------------- 2. relative law paths at the ref


def test_the_baseline_reads_its_relative_law_at_the_ref(cli, repo, plan, monkeypatch):
    monkeypatch.chdir(repo)  # the plan names its law relative to itself, and check runs from the repo root
    (repo / "plans").mkdir()
    shutil.copy(builtin_law(), repo / "plans" / "law.yaml")
    plan["laws"]["loss"] = "law.yaml"
    write(repo / "plans", plan)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "plan")
    r = cli("check", "plans/plan.yaml", "--baseline", "HEAD", "--format", "json")
    assert r.code == 0, r.stderr
    changes = {c["metric"]: c for c in r.json["plans"][0]["changes"]}
    assert changes["predicted_loss"]["delta"] == 0 and r.json["plans"][0]["notes"] == []
    law = repo / "plans" / "law.yaml"  # the working tree's law changes: the baseline keeps the committed one
    law.write_text(re.sub(r"E: [0-9.]+", "E: 1.5", law.read_text(), count=1))
    changes = {c["metric"]: c for c in cli("check", "plans/plan.yaml", "--baseline", "HEAD", "--format", "json")
               .json["plans"][0]["changes"]}  # fmt: skip
    assert changes["predicted_loss"]["delta"] == pytest.approx(1.5 - 1.69, abs=1e-9)
    git(repo, "rm", "-q", "--cached", "plans/law.yaml")  # a ref without the law: the working tree's, with a note
    git(repo, "commit", "-qm", "untrack the law")
    r = cli("check", "plans/plan.yaml", "--baseline", "HEAD", "--format", "json")
    assert r.code == 0 and r.json["plans"][0]["changes"][3]["delta"] == 0
    assert any("law.yaml is not in HEAD" in note for note in r.json["plans"][0]["notes"])


# ----------------------------------------------------------------------------- 3. --write-plan records the law path


def test_write_plan_records_a_law_file_relative_to_the_plan(cli, tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    shutil.copy(builtin_law(), work / "law.yaml")
    monkeypatch.chdir(work)
    for law, name in (("law.yaml", "a.yaml"), (str(work / "law.yaml"), "b.yaml")):  # relative and absolute --law
        r = cli("recommend", "--target-loss", "2.3", "--law", law, "--write-plan", f"sub/{name}", "--json")
        assert r.code == 0, r.stderr
        assert yaml.safe_load((work / "sub" / name).read_text())["laws"] == {"loss": "../law.yaml",
                                                                             "batch": "zhang-2024"}
    monkeypatch.chdir(tmp_path)  # elsewhere: the plan still finds its law
    r = cli("check", str(work / "sub" / "a.yaml"), str(work / "sub" / "b.yaml"), "--format", "json")
    assert r.code == 0, r.stderr
    assert {p["law"] for p in r.json["plans"]} == {"hoffmann-2022"}


def test_path_for_plan_keeps_names_and_relativises_paths(tmp_path):
    from planner.plan_io import path_for_plan

    plan = tmp_path / "plans" / "plan.yaml"
    assert path_for_plan("besiroglu-2024", plan) == "besiroglu-2024"
    assert path_for_plan(str(tmp_path / "plans" / "law.yaml"), plan) == "law.yaml"
    assert path_for_plan(str(tmp_path / "laws" / "mylaw"), plan) == "../laws/mylaw"
    assert path_for_plan(str(tmp_path / "plans" / "dir" / "x"), plan) == "dir/x"


# ----------------------------------------------------------------------------- 4. a broken baseline


def test_a_broken_baseline_is_a_warning_not_an_error(cli, tmp_path, repo, plan, monkeypatch):
    broken = dict(plan, budget=3)
    old = write(tmp_path, broken, "old.yaml")
    new = write(tmp_path, plan, "new.yaml")
    r = cli("check", str(new), "--baseline", str(old), "--format", "json")
    assert r.code == 0, r.stderr
    entry = r.json["plans"][0]
    assert entry["status"] == "pass" and len(entry["checks"]) == 9 and entry["changes"] is None
    assert len(entry["warnings"]) == 1 and "could not be read" in entry["warnings"][0]
    assert "budget: Extra inputs are not permitted" in entry["warnings"][0]
    monkeypatch.chdir(repo)  # the same at a git ref
    write(repo, broken)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "broken")
    write(repo, plan)
    r = cli("check", "plan.yaml", "--baseline", "HEAD", "--format", "junit")
    assert r.code == 0, r.stderr
    out = ET.fromstring(r.stdout).find("testsuite/system-out").text
    assert out.startswith("warning: the baseline HEAD:plan.yaml could not be read")
    assert cli("check", "plan.yaml", "--baseline", "HEAD", "--strict").code == 0  # a warning about the baseline,
    # not a check: --strict fails on checks only


# ----------------------------------------------------------------------------- 5. duplicate keys, quoted numbers


def test_a_duplicate_key_is_a_plan_error(cli, tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(EXAMPLE.replace("  n_gpus: 512\n", "  n_gpus: 512\n  n_gpus: 8\n"))
    r = cli("check", str(path))
    assert_one_error(r, 3)
    line = EXAMPLE.splitlines().index("  n_gpus: 512") + 2
    assert f"{path}:{line}: training.n_gpus: duplicate key (first given on line {line - 1})" in r.stderr
    path.write_text(EXAMPLE.replace("limits:\n", "limits:\n  target_loss: 3.0\n"))  # a limit given twice
    assert "limits.target_loss: duplicate key" in cli("check", str(path)).stderr


@pytest.mark.parametrize("old, new, key", [
    ("  n_gpus: 512", '  n_gpus: "512"', "training.n_gpus"),
    ("  tokens: 2.0e+12\n", "  tokens: '2.0e+12'\n", "training.tokens"),
    ("  zero_stage: 1 ", '  zero_stage: "1" ', "training.zero_stage"),
    ("  max_gpu_hours: 70000.0", '  max_gpu_hours: "70000"', "limits.max_gpu_hours"),
])
def test_quoted_numbers_are_refused(cli, tmp_path, old, new, key):
    assert old in EXAMPLE
    path = tmp_path / "plan.yaml"
    path.write_text(EXAMPLE.replace(old, new, 1))
    r = cli("check", str(path))
    assert_one_error(r, 3)
    assert re.search(rf"{re.escape(str(path))}:\d+: {re.escape(key)}: Input should be a number, not the string",
                     r.stderr), r.stderr


def test_exponents_without_a_dot_or_sign_are_numbers(cli, tmp_path):
    # YAML 1.1 reads 2e12 and 2.0e12 as text; a plan reads them as the numbers README and recommend accept
    text = EXAMPLE.replace("tokens: 2.0e+12\n", "tokens: 2e12\n", 1).replace("params: 6.74e+9", "params: 6.74e9")
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    r = cli("check", str(path), "--format", "json")
    assert r.code == 0, r.stderr
    assert r.json["plans"][0]["metrics"]["n_tokens"] == 2e12 and r.json["plans"][0]["metrics"]["n_params"] == 6.74e9


# ----------------------------------------------------------------------------- 6. out-of-range values


@pytest.mark.parametrize("section, key, value, needle", [
    ("training", "global_batch_tokens", 100, "100 tokens is less than one sequence (seq_len 4096)"),
    ("model", "params", 500, "500 is below the floor of 1,000 parameters"),
    ("training", "tokens", 1, "1 is less than one training step (4.1943e+06 tokens"),
    ("limits", "min_memory_headroom", 1.5, "Input should be less than 1"),
    ("limits", "min_memory_headroom", 1.0, "Input should be less than 1"),
])
def test_out_of_range_values_are_plan_errors(cli, tmp_path, plan, section, key, value, needle):
    plan[section][key] = value
    path = write(tmp_path, plan)
    r = cli("check", str(path))
    assert_one_error(r, 3)
    assert re.search(rf"{re.escape(str(path))}:\d+: {section}\.{key}: ", r.stderr) and needle in r.stderr, r.stderr


def test_tokens_floor_without_a_batch_is_one_sequence(cli, tmp_path, plan):
    del plan["training"]["global_batch_tokens"]
    plan["training"]["tokens"] = 4095.0
    r = cli("check", str(write(tmp_path, plan)))
    assert_one_error(r, 3)
    assert "less than one training step (4096 tokens: a sequence of seq_len 4096)" in r.stderr


def test_the_plan_floor_is_recommends():
    from planner.planning import MIN_PARAMS
    from planner.schemas import plan as schema

    assert schema.MIN_PARAMS == MIN_PARAMS


# ----------------------------------------------------------------------------- 7. extreme values


def test_an_extreme_plan_beside_a_good_one_keeps_the_good_ones_results(cli, tmp_path, plan):
    good = write(tmp_path, plan, "good.yaml")
    tiny = write(tmp_path, dict(plan, training=dict(plan["training"], tokens=1e-300)), "tiny.yaml")
    r = cli("check", str(good), str(tiny), "--format", "json")
    assert r.code == 3
    entries = {p["file"]: p for p in r.json["plans"]}
    assert entries[str(good)]["status"] == "pass" and entries[str(tiny)]["status"] == "error"


def test_an_arithmetic_error_is_that_plans_error_entry(cli, tmp_path, plan, monkeypatch):
    import planner.check

    real = planner.check.evaluate

    def evaluate(inputs):
        if inputs.plan.name == "overflows":
            raise OverflowError("math range error")
        return real(inputs)

    monkeypatch.setattr(planner.check, "evaluate", evaluate)
    good = write(tmp_path, plan, "good.yaml")
    bad = write(tmp_path, dict(plan, name="overflows"), "bad.yaml")
    r = cli("check", str(good), str(bad), "--format", "json")
    assert r.code == 4, r.stderr
    entries = {p["file"]: p for p in strict_json(r.stdout)["plans"]}
    assert entries[str(good)]["status"] == "pass"
    assert entries[str(bad)]["status"] == "error" and "double-precision range" in entries[str(bad)]["error"]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert [line.split(":")[0] for line in lines] == ["error", "hint"]
    invalid = write(tmp_path, dict(plan, budget=3), "invalid.yaml")  # an invalid plan (3) outranks it
    assert cli("check", str(good), str(bad), str(invalid), "--format", "json").code == 3


def test_results_out_of_double_range_fail_and_json_stays_json(cli, tmp_path, plan):
    plan["inference"]["tokens"] = 1e300  # lifetime FLOPs overflow: inf / inf is NaN, which compares false
    path = write(tmp_path, plan)
    r = cli("check", str(path), "--format", "json")
    assert r.code == 7, r.stderr
    report = strict_json(r.stdout)
    check = next(c for c in report["plans"][0]["checks"] if c["name"] == "lifetime_over_optimum")
    assert check["status"] == "fail" and check["value"] is None and "double precision" in check["reason"]
    assert report["plans"][0]["metrics"]["lifetime_flops"] is None
    for fmt in ("table", "github", "junit"):
        out = cli("check", str(path), "--format", fmt).stdout
        assert not re.search(r"\b(nan|inf|infinity)\b", out, re.IGNORECASE), (fmt, out)


# ----------------------------------------------------------------------------- 8. control characters


def test_control_characters_in_names_are_escaped_in_every_format(cli, tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(re.sub(r"^name: .*$", lambda _: 'name: "bad\\0name\\e[31mred"', EXAMPLE, count=1,
                           flags=re.MULTILINE))
    junit = cli("check", str(path), "--format", "junit")
    assert junit.code == 0
    assert ET.fromstring(junit.stdout).find("testsuite").get("name") == "bad\\x00name\\x1b[31mred"
    for fmt in ("table", "github", "junit"):
        out = cli("check", str(path), "--format", fmt).stdout
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", out), (fmt, out)
    assert "\\x1b" in cli("check", str(path)).stdout
    assert strict_json(cli("check", str(path), "--format", "json").stdout)["plans"][0]["name"] == "bad\0name\x1b[31mred"


# ----------------------------------------------------------------------------- 9. how values and reasons read


def test_memory_shows_the_headroom_limit_that_binds(cli, tmp_path, plan):
    plan["limits"]["min_memory_headroom"] = 0.2
    r = cli("check", str(write(tmp_path, plan)), "--format", "json")
    memory = next(c for c in r.json["plans"][0]["checks"] if c["name"] == "fits_memory")
    assert memory["status"] == "pass"
    capacity = float(re.search(r"of ([0-9.]+) kept free", memory["reason"])[1])
    assert memory["limit"] == pytest.approx(0.8 * capacity, rel=2e-3) and memory["value"] < memory["limit"]
    assert "20% of" in memory["reason"]


def test_fractions_factors_and_losses_read_as_such(cli, tmp_path, plan):
    from planner.check import loss_text, percent
    from planner.render_check import _num

    assert _num(2.87, "fraction") == "+287.0%" and _num(0.5, "fraction") == "+50.0%"
    assert percent(2604165.667) == "x2.6e6" and percent(-0.25) == "-25.0%"
    assert loss_text(2.0671182) == "2.0671" and loss_text(1.2345678e300) == "1.2346e300"
    plan["training"]["global_batch_tokens"] = 1.0e12  # a million times the CBS
    checks = {c["name"]: c for c in cli("check", str(write(tmp_path, plan)), "--format", "json")
              .json["plans"][0]["checks"]}  # fmt: skip
    reason = checks["predicted_loss"]["reason"]
    assert re.search(r"needs x[0-9.]+e6 the tokens: 1/[0-9.]+e6 of those trained", reason), reason
    assert re.search(r"lifetime FLOPs x[0-9.]+e3 vs", checks["lifetime_over_optimum"]["reason"])
    assert not re.search(r"[0-9]{7,}", reason + checks["lifetime_over_optimum"]["reason"])


# ----------------------------------------------------------------------------- 10. an empty --baseline


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_baseline_is_a_usage_error(cli, tmp_path, plan, value):
    r = cli("check", str(write(tmp_path, plan)), "--baseline", value)
    assert_one_error(r, 2)
    assert "--baseline: empty value" in r.stderr
