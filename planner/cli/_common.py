"""Shared CLI plumbing: the error boundary, consoles, and output selection."""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import typer

from planner.errors import ExitStatus, PlannerError, UsageError


@dataclass
class _State:
    debug: bool = False


STATE = _State()


def run(app: typer.Typer, argv: list[str] | None) -> int:
    """Run the app and turn every failure into a one-line error, a hint and an exit status."""
    STATE.debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        result = app(args=argv, standalone_mode=False)
        if result == ExitStatus.INTERRUPTED:  # typer turns Ctrl-C into a silent Exit(130)
            return fail("interrupted", "rerun the same command to continue", ExitStatus.INTERRUPTED)
        return int(result) if isinstance(result, int) else ExitStatus.OK
    except PlannerError as exc:
        if STATE.debug:
            traceback.print_exc()
        return fail(exc.message, exc.hint, exc.exit_status)
    except typer.Abort:
        return fail("interrupted", "rerun the same command to continue", ExitStatus.INTERRUPTED)
    except KeyboardInterrupt:
        return fail("interrupted", "rerun the same command to continue", ExitStatus.INTERRUPTED)
    except typer.TyperException as exc:  # Typer/click usage errors: unknown option, missing value, ...
        if type(exc).__name__ == "NoArgsIsHelpError":  # help was printed; same status as click's own
            return ExitStatus.USAGE
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "planner"
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        return fail(message, f"run `{command} --help` for the options", getattr(exc, "exit_code", 2))
    except BrokenPipeError:
        return ExitStatus.OK
    except (OverflowError, ZeroDivisionError) as exc:
        # Double precision ran out: extreme law constants (a profile that validates, e.g. alpha = 10 from a
        # boundary fit) or extreme inputs. The request cannot be computed, which is not a planner bug.
        if STATE.debug:
            traceback.print_exc()
        return fail(f"the numbers leave double-precision range ({type(exc).__name__}: {exc})",
                    "check the law's constants (`planner laws show NAME`) and the inputs' magnitudes; "
                    "--debug shows where", ExitStatus.INFEASIBLE)
    except OSError as exc:  # a file, or stdout itself (disk full, closed descriptor), could not be read or written
        if STATE.debug:
            traceback.print_exc()
        what = f"cannot read or write {exc.filename}" if exc.filename else "cannot write the output"
        return fail(f"{what}: {exc.strerror or exc}", "check the disk, the path or the redirection target",
                    ExitStatus.CONFIG)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug, reported as such
        if STATE.debug:
            traceback.print_exc()
            return ExitStatus.INTERNAL
        return fail(
            f"internal error: {type(exc).__name__}: {exc}",
            "this is a bug in planner; rerun with --debug and report the traceback",
            ExitStatus.INTERNAL,
        )


def fail(message: str, hint: str, status: int) -> int:
    first = " ".join(str(message).split())  # one line, whatever the message held
    print(f"error: {first}", file=sys.stderr)
    print(f"hint: {' '.join(str(hint).split())}", file=sys.stderr)
    return int(status)


def check_output_path(path: Path | None, flag: str, suffix: str | None = None) -> None:
    """Reject an output path that cannot be written before any work, so a bad --plot costs no work."""
    if path is None:
        return
    if suffix is not None and path.suffix.lower() != suffix and not path.is_dir():
        raise UsageError(f"{flag}: {path} does not end in {suffix}", hint=f"give a file name such as plan{suffix}")
    parent = path.parent
    if path.is_dir():
        problem = "is a directory"
    elif not parent.exists():
        problem = f"no such directory {parent}"
    elif not parent.is_dir():
        problem = f"{parent} is not a directory"
    elif not os.access(path if path.exists() else parent, os.W_OK):
        problem = "permission denied"
    else:
        return
    raise UsageError(f"{flag}: cannot write {path}: {problem}", hint="choose a writable file path")


def warn(message: str) -> None:
    """One `warning: ...` line on stderr: whole lines for logs and grep, wrapped only on a terminal."""
    text = "warning: " + " ".join(str(message).split())
    if sys.stderr.isatty():
        import shutil
        import textwrap

        text = textwrap.fill(text, width=max(40, shutil.get_terminal_size().columns), subsequent_indent="  ")
    print(text, file=sys.stderr)


def stdout_console():
    """Console for results on stdout (colour only on a terminal)."""
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def stderr_console():
    """Console for progress and notes on stderr."""
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False)


def output_format(as_json: bool, as_yaml: bool) -> str:
    if as_json and as_yaml:
        raise PlannerError("--json and --yaml conflict", hint="choose one output format")
    return "json" if as_json else "yaml" if as_yaml else "table"


def emit_data(data: dict, fmt: str) -> None:
    """Print exactly the JSON or YAML document on stdout, nothing else."""
    if fmt == "json":
        import json

        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))


def validated(schema, **flags):
    """schema(**flags), turning a pydantic error into a usage error that names the flag (--drop-top-loss)."""
    from pydantic import ValidationError

    try:
        return schema(**flags)
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "a flag"
        allowed = err.get("ctx", {}).get("expected")
        raise PlannerError(f"{flag}: {err['msg']}" + ("" if allowed else f" (got {err.get('input')!r})"),
                           hint=f"run the command with --help to see what {flag} accepts") from None


def print_profile_list(kind: str, schema, table) -> None:
    """`laws list` / `hardware list`: the profiles that load as a table on stdout, then one unwrapped
    `warning: FILE:LINE: ...` per broken file on stderr (so the file:line stays whole) and exit 3."""
    from planner import profiles

    good, broken = profiles.load_all(kind, schema)
    stdout_console().print(table([(name, profile, "") for name, profile in good]))
    for exc in broken:
        print("warning: " + " ".join(exc.message.split()), file=sys.stderr)
    if broken:
        raise profiles.broken_error(kind, broken, len(good))
