"""Shared fixtures: golden data, an isolated profiles directory, and an in-process CLI runner."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GOLDEN = SHARED / "golden"

# Golden constant-set names (shared/golden/loss_laws.json) -> shipped law profiles.
LAW_OF = {
    "hoffmann_rounded": "hoffmann-2022",
    "hoffmann_unrounded": "hoffmann-2022-unrounded",
    "sardana_devries": "sardana-2024",
    "besiroglu": "besiroglu-2024",
}


def golden_file(name: str) -> Path:
    """A file of shared/golden, or skip the test where the checkout has no shared/ beside it."""
    path = GOLDEN / name
    if not path.exists():
        pytest.skip(f"golden data {path} not present")
    return path


def _golden(name: str):
    return json.loads(golden_file(name).read_text())


@pytest.fixture(scope="session")
def loss_golden():
    return _golden("loss_laws.json")


@pytest.fixture(scope="session")
def batch_golden():
    return _golden("batch_laws.json")


@pytest.fixture(autouse=True)
def _isolated_profiles(tmp_path_factory, monkeypatch):
    """User profiles never leak into tests: PLANNER_PROFILES_DIR points at an empty directory."""
    monkeypatch.setenv("PLANNER_PROFILES_DIR", str(tmp_path_factory.mktemp("user-profiles")))
    monkeypatch.delenv("PLANNER_DEBUG", raising=False)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def cli(capsys):
    """Run `planner ARGS...` in-process through the real entry point; returns code, stdout, stderr."""
    from planner.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


def assert_one_error(result: CliResult, code: int) -> None:
    """A failed command prints exactly one `error:` and one `hint:` line, no traceback, nothing on stdout."""
    assert result.code == code, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def write_csv(path: Path, header, rows) -> Path:
    """A CSV file of `rows` under `header`."""
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows(rows)
    return path


def processes_mentioning(text: str) -> list[int]:
    """PIDs (other than this one) whose command line contains `text`: a probe left running shows here."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(d.name))
            except OSError:
                continue
    return found
