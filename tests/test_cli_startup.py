"""Start-up of `planner recommend`: only its own command module is loaded, and --json loads no rich."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import planner.cli as planner_cli

RECOMMEND = ["recommend", "--target-loss", "2.3", "--inference-tokens", "2e12"]
OTHER_COMMANDS = ("planner.cli.laws", "planner.cli.fit", "planner.cli.hardware", "planner.cli.profiles",
                  "planner.cli.calibrate", "planner.cli.check")


def _loaded_by(argv: list[str]) -> set[str]:
    code = (
        "import sys, io, json, contextlib\nfrom planner.cli import main\n"
        f"sys.argv = ['planner', *{argv!r}]\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main()\n    except SystemExit as e:\n        assert not e.code, e.code\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_recommend_loads_no_other_command(extra):
    loaded = _loaded_by([*RECOMMEND, *extra])
    assert "planner.cli.recommend" in loaded
    assert not [m for m in OTHER_COMMANDS if m in loaded]


def test_recommend_json_loads_no_rich():
    assert not [m for m in _loaded_by([*RECOMMEND, "--json"]) if m == "rich" or m.startswith("rich.")]


@pytest.mark.parametrize(
    ("args", "modules"),
    [
        (["recommend", "--target-loss", "2.3"], ("recommend",)),
        (["--debug", "recommend"], ("recommend",)),
        (["fit-cbs", "runs.csv"], ("fit",)),
        (["laws", "list"], ("laws",)),
        ([], tuple(planner_cli.MODULES)),
        (["--help"], tuple(planner_cli.MODULES)),
        (["--help", "recommend"], tuple(planner_cli.MODULES)),
        (["recomend"], tuple(planner_cli.MODULES)),  # unknown: every command, so the error can suggest one
    ],
)
def test_modules_for(args, modules):
    assert planner_cli.modules_for(args) == modules


def test_help_lists_every_command_in_order(cli):
    out = cli("--help").stdout
    names = ["recommend", "fit", "fit-cbs", "calibrate", "check", "laws", "hardware", "profiles"]
    listed = [line.split()[1] for line in out.splitlines() if line.startswith("│ ") and line[2] != " "]
    listed = [name for name in listed if name in names]
    assert listed == names


def test_app_attribute_has_every_command():
    app = planner_cli.app
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert names == {"recommend", "fit", "fit-cbs", "calibrate", "check", "laws", "hardware", "profiles"}


@pytest.mark.parametrize("module", ["planner.cli.recommend", "planner.schemas.base", "planner.schemas.recommend",
                                    "planner.schemas.hardware", "planner.schemas.laws", "planner.schemas.batch"])
def test_startup_annotations_are_not_postponed(module):
    """Typer and pydantic would compile and eval every postponed (string) annotation at each run."""
    mod = __import__(module, fromlist=["_"])
    assert "annotations" not in vars(mod)  # no `from __future__ import annotations`
