"""`planner check PLAN.yaml ...`: guard a committed training plan; exit 7 when a limit fails."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import emit_data, fail, stdout_console
from planner.errors import ExitStatus, UsageError

FORMATS = ("table", "json", "github", "junit")


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    plans: Annotated[list[Path] | None, typer.Argument(help="Plan files to check (with --init: the file to write).")] = None,
    init: Annotated[bool, typer.Option("--init", help="Write a commented example plan (to PLAN, or stdout).")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, json, github (workflow annotations) or junit (XML).")] = "table",
    strict: Annotated[bool, typer.Option(help="Warnings fail too.")] = False,
    confidence: Annotated[float | None, typer.Option(help="Judge the loss at this bound of a law's bootstrap draws, e.g. 0.95.")] = None,
    baseline: Annotated[str | None, typer.Option(help="Old plan file or git ref (HEAD~1): print what changed.")] = None,
) -> None:
    """Check training plans against their limits: memory, GPU-hours, cost, wall-clock, loss, batch vs CBS.

    Example: planner check plan.yaml --format github
    Exit codes: 0 all pass (warnings allowed unless --strict), 7 a limit failed, 3 invalid plan or profile.
    """
    from planner import plan_io, render_check

    if init:
        return _init(plans)
    if fmt not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)} (not {fmt!r})", hint="--format github")
    if not plans:
        raise UsageError("no plan file given", hint="planner check plan.yaml (or `planner check --init plan.yaml`)")
    if confidence is not None and not 0.5 <= confidence < 1:
        raise UsageError(f"--confidence: expected a level in [0.5, 1), got {confidence:g}", hint="--confidence 0.95")
    report = plan_io.report(plans, confidence, baseline, strict)
    if fmt == "json":
        emit_data(report.model_dump(mode="json"), "json")
    elif fmt == "github":
        sys.stdout.write(render_check.github(report))
    elif fmt == "junit":
        sys.stdout.write(render_check.junit(report))
    else:
        stdout_console().print(render_check.table(report))
    if report.status == "fail" or (strict and report.status == "warn"):
        failed = [f"{p.file}: {', '.join(c.name for c in p.checks if c.status == 'fail' or (strict and c.status == 'warn'))}"
                  for p in report.plans if p.status != "pass"]  # fmt: skip
        raise typer.Exit(fail(f"limits failed: {'; '.join(failed)}", "see the reasons above; change the plan or "
                              "its limits", ExitStatus.CHECK_FAILED))


def _init(plans: list[Path] | None) -> None:
    from planner.plan_io import EXAMPLE

    if not plans:
        sys.stdout.write(EXAMPLE)
        return
    if len(plans) > 1:
        raise UsageError("--init writes one file", hint="planner check --init plan.yaml")
    if plans[0].exists():
        raise UsageError(f"{plans[0]} exists; --init does not overwrite", hint="choose a new file name")
    plans[0].write_text(EXAMPLE)
    stdout_console().print(f"wrote {plans[0]}", markup=False)
