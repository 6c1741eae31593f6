"""`planner check PLAN.yaml ...`: guard a committed training plan; exit 7 when a limit fails."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import emit_data, fail, stderr_console, stdout_console
from planner.errors import ExitStatus, PlannerError, UsageError

FORMATS = ("table", "json", "github", "junit")


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    ctx: typer.Context,
    plans: Annotated[list[str] | None, typer.Argument(help="Plan files to check (with --init: the file to write).")] = None,
    init: Annotated[bool, typer.Option("--init", help="Write a commented example plan (to PLAN, or stdout).")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, json, github (workflow annotations) or junit (XML).")] = "table",
    strict: Annotated[bool, typer.Option(help="Warnings fail too.")] = False,
    confidence: Annotated[float | None, typer.Option(help="Judge the loss at this bound of a law's bootstrap draws, e.g. 0.95.")] = None,
    baseline: Annotated[str | None, typer.Option(help="Old plan file or git ref (HEAD~1): print what changed.")] = None,
) -> None:
    """Check training plans against their limits: memory, GPU-hours, cost, wall-clock, loss, batch vs CBS.

    Example: planner check plan.yaml --format github
    Exit codes: 0 all pass (warnings allowed unless --strict), 7 a limit failed, 3 invalid plan or profile (outranks 7).
    """
    from planner import plan_io

    if init:
        given = [f"--{name}" for name in ("format", "strict", "confidence", "baseline")
                 if ctx.get_parameter_source("fmt" if name == "format" else name).name != "DEFAULT"]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise UsageError(f"--init writes the YAML example plan; {', '.join(given)} {verb} to checking plans",
                             hint="planner check --init plan.yaml, then: planner check plan.yaml --format json")
        return _init(plans)
    if fmt not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)} (not {fmt!r})", hint="--format github")
    if not plans:
        raise UsageError("no plan file given", hint="planner check plan.yaml (or `planner check --init plan.yaml`)")
    if baseline is not None and not baseline.strip():  # '' is no ref: git would read it as the index
        raise UsageError("--baseline: empty value", hint="give the old plan file or a git ref such as origin/main, "
                         "or leave --baseline out")
    if confidence is not None and not 0.5 <= confidence < 1:
        raise UsageError(f"--confidence: expected a level in [0.5, 1), got {confidence:g}", hint="--confidence 0.95")
    report = plan_io.report([Path(p) for p in plans], confidence, baseline, strict)
    _emit(report, fmt)
    if report.errors:  # an unreadable or invalid plan outranks failed limits: exit 3, not 7
        raise _not_checked(report, strict)
    failed = _failed(report, strict)
    if failed:
        from planner.render_check import clean

        raise typer.Exit(fail(clean(f"limits failed: {'; '.join(failed)}"), "see the reasons above; change the plan or "
                              "its limits", ExitStatus.CHECK_FAILED))


def _emit(report, fmt: str) -> None:
    """Every format reports every plan; an unchecked plan is an error entry (table: the `error:` line only)."""
    from planner import render_check

    if fmt == "json":
        emit_data(_finite(report.model_dump(mode="json")), "json")
    elif fmt == "github":
        sys.stdout.write(render_check.github(report))
    elif fmt == "junit":
        sys.stdout.write(render_check.junit(report))
    elif report.checked:
        stdout_console().print(render_check.table(report))


def _finite(data):
    """JSON has no NaN or Infinity: a value that is not finite is null (the check's reason says why)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data


def _failed(report, strict: bool) -> list[str]:
    """`FILE: check, check` for each checked plan with a failed limit (or a warning, under --strict)."""
    return [f"{p.file}: {', '.join(c.name for c in p.checks if c.status == 'fail' or (strict and c.status == 'warn'))}"
            for p in report.checked if p.status == "fail" or (strict and p.status == "warn")]  # fmt: skip


def _not_checked(report, strict: bool) -> PlannerError:
    """One error for the plans that could not be checked: exit 3 when any is an invalid plan (it outranks the
    others, e.g. 4 for numbers out of double-precision range, and 7), else the first one's status."""
    from planner.render_check import clean

    errors = report.errors
    invalid = [e for e in errors if e.exit_status == ExitStatus.CONFIG]
    status = ExitStatus((invalid or errors)[0].exit_status)
    if len(errors) == 1 and len(report.plans) == 1:
        return PlannerError(clean(errors[0].error), hint=clean(errors[0].hint), exit_status=status)
    failed = _failed(report, strict)
    also = f"; limits also failed: {'; '.join(failed)}" if failed else ""
    return PlannerError(clean(f"{len(errors)} of {len(report.plans)} plans could not be checked: "
                              f"{'; '.join(e.error for e in errors)}{also}"),
                        hint=clean((invalid or errors)[0].hint), exit_status=status)


def _init(plans: list[str] | None) -> None:
    from planner.plan_io import EXAMPLE

    if not plans:
        sys.stdout.write(EXAMPLE)
        return
    if len(plans) > 1:
        raise UsageError("--init writes one file", hint="planner check --init plan.yaml")
    raw, path = plans[0], Path(plans[0])
    if raw.endswith(("/", os.sep)) or path.is_dir():
        raise UsageError(f"--init writes a file, and {raw} names a directory",
                         hint=f"name the file, e.g. planner check --init {path / 'plan.yaml'}")
    if path.exists():
        raise UsageError(f"{path} exists; --init does not overwrite", hint="choose a new file name")
    parent = path.parent
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(f"cannot write {path}: {parent} {why}",
                         hint="create the directory first, or choose another path")
    try:
        with path.open("x", encoding="utf-8") as f:
            f.write(EXAMPLE)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}", hint="choose a path you can write to") from None
    stderr_console().print(f"wrote {path}", markup=False, soft_wrap=True)  # a long path stays one line
