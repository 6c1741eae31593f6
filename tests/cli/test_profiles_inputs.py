"""Profile files that are not YAML, directories given as profiles, and broken user profiles in the lists."""

from __future__ import annotations

import os

import pytest

from planner import profiles
from tests.conftest import assert_one_error

MALFORMED = "kind: loss-law\nname: [1, 2\n"


def test_validate_reports_the_yaml_syntax_error_with_its_line(cli, tmp_path):
    bad = tmp_path / "malformed.yaml"
    bad.write_text(MALFORMED)
    shown = cli("laws", "show", str(bad))
    assert_one_error(shown, 3)
    r = cli("profiles", "validate", str(bad))
    assert r.code == 3
    assert f"{bad}:3: not valid YAML" in r.stderr and "kind: expected" not in r.stderr
    assert shown.stderr.splitlines()[0].removeprefix("error: ") in " ".join(r.stderr.split())


def test_validate_reports_binary_files_as_not_yaml(cli, tmp_path):
    blob = tmp_path / "bin.yaml"
    blob.write_bytes(b"\x00\xb7\x40\xff\xfe")
    r = cli("profiles", "validate", str(blob))
    assert r.code == 3 and "not valid YAML" in r.stderr and "kind: expected" not in r.stderr


def test_directories_are_not_missing_files(cli, tmp_path, monkeypatch):
    r = cli("recommend", "--law", str(tmp_path), "--target-loss", "2.7")
    assert_one_error(r, 3)
    assert f"{tmp_path}: is a directory" in r.stderr
    r = cli("laws", "show", str(tmp_path))
    assert_one_error(r, 3)
    assert "is a directory" in r.stderr
    (tmp_path / "somedir").mkdir()
    monkeypatch.chdir(tmp_path)
    r = cli("laws", "show", "somedir")
    assert_one_error(r, 3)
    assert "somedir: is a directory" in r.stderr


@pytest.mark.parametrize(("command", "kind", "good", "columns"), [
    ("laws", "laws", "besiroglu-2024", "1.8172"),
    ("hardware", "hardware", "h100-sxm5-80gb", "989.4"),
])
def test_list_shows_good_profiles_and_names_the_broken_one(cli, command, kind, good, columns):
    user = profiles.search_dirs(kind)[0]
    user.mkdir(parents=True)
    broken = user / "broken.yaml"
    broken.write_text(MALFORMED)
    r = cli(command, "list")
    assert r.code == 3
    assert good in r.stdout and columns in r.stdout and "broken" not in r.stdout  # the good ones, in full
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert [line.split(":")[0] for line in lines] == ["warning", "error", "hint"], r.stderr
    assert lines[0] == f"warning: {broken}:3: not valid YAML (did not find expected ',' or ']')"
    os.remove(broken)
    assert cli(command, "list").code == 0


def test_plan_file_errors_do_not_point_at_profiles_validate(tmp_path):
    from planner.errors import ConfigError
    from planner.schemas.laws import LawProfile
    from planner.schemas.plan import PlanFile

    path = tmp_path / "plan.yaml"
    with pytest.raises(ConfigError) as exc:
        profiles.parse(b"schema_version: 1\nname: [x\n", path, PlanFile)
    assert "profiles validate" not in exc.value.hint and "check --init" in exc.value.hint
    with pytest.raises(ConfigError) as exc:
        profiles.parse(b"schema_version: 1\nname: 3\n", path, PlanFile)
    assert "profiles validate" not in exc.value.hint
    with pytest.raises(ConfigError) as exc:  # a profile keeps the hint to validate it
        profiles.parse(b"kind: loss-law\nname: 3\n", path, LawProfile)
    assert "profiles validate" in exc.value.hint


def test_empty_profile_name_is_a_usage_error(cli):
    r = cli("laws", "show", "")
    assert_one_error(r, 2)
    assert "empty law profile name" in r.stderr


def test_unknown_batch_law_hint_names_no_missing_command():
    from planner import profiles
    from planner.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        profiles.resolve("batch", "nope")
    assert "profiles list" not in err.value.hint and "zhang-2024" in err.value.hint


def test_a_profile_found_by_name_must_carry_that_name(cli, tmp_path, monkeypatch):
    """good.yaml with `name: mygood`: --law good worked and the output said 'loss law mygood'."""
    from pathlib import Path

    (tmp_path / "laws").mkdir()
    shipped = (Path(__file__).parents[2] / "profiles" / "laws" / "hoffmann-2022.yaml").read_text()
    (tmp_path / "laws" / "good.yaml").write_text(shipped.replace("name: hoffmann-2022", "name: mygood"))
    monkeypatch.setenv("PLANNER_PROFILES_DIR", str(tmp_path))
    r = cli("recommend", "--law", "good", "--params", "7B")
    assert_one_error(r, 3)
    assert "name 'mygood' differs from the file name 'good'" in r.stderr
    assert cli("recommend", "--law", str(tmp_path / "laws" / "good.yaml"), "--params", "7B").code == 0  # a path: any name


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_profiles_dir_that_is_not_a_directory_is_an_error(cli, tmp_path, monkeypatch, kind):
    target = tmp_path / "nope"
    if kind == "file":
        target.write_text("x")
    monkeypatch.setenv("PLANNER_PROFILES_DIR", str(target))
    r = cli("recommend", "--params", "7B")
    assert_one_error(r, 3)
    assert "PLANNER_PROFILES_DIR=" in r.stderr
