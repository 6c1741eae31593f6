"""Import hygiene: the CLI's start-up stays light, and every module imports on its own."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import planner

HEAVY = ("torch", "scipy.optimize", "matplotlib", "calibrate")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(__import__("json").loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["recommend", "--target-loss", "2.3", "--inference-tokens", "2e12"],
        ["recommend", "--params", "7B", "--objective", "cost", "--inference-tokens", "1e12", "--json"],
    ],
)
def test_cli_loads_neither_torch_nor_scipy_optimize(argv):
    code = (
        "import sys, io, contextlib\nfrom planner.cli import main\n"
        f"sys.argv = ['planner', *{argv!r}]\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n        main()\n    except SystemExit as e:\n        assert not e.code, e.code\n"
    )
    loaded = _loaded_after(code)
    assert not [m for m in HEAVY if m in loaded]
    assert "numpy" not in loaded  # recommend's scalar path needs no numpy (0.2 s of start-up)


def _modules():
    for info in pkgutil.walk_packages(planner.__path__, "planner."):
        if info.name != "planner.__main__":  # importing it runs the CLI
            yield info.name


@pytest.mark.parametrize("module", sorted(_modules()))
def test_every_module_imports_on_its_own(module):
    subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", f"import {module}"], check=True)
