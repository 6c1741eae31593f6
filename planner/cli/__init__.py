"""The `planner` command line: one module per command, each a thin adapter (flags -> request -> core -> render).

Errors are handled once, in :func:`main`: a :class:`planner.errors.PlannerError` or a Typer usage
error becomes one ``error:`` line and one ``hint:`` line on stderr and a documented exit code; anything
else is an internal error (exit 1) whose traceback shows only with ``--debug`` or ``PLANNER_DEBUG=1``.

Start-up: a run that names its command imports and registers only that command's module (Typer builds
every registered command's options at each run); ``planner --help``, a bare ``planner`` and unknown
commands get them all, so help and "No such command" errors list everything.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys

import typer

from planner.cli import _common

# Modules under planner.cli, in registration order (the order `planner --help` lists them), and the
# top-level commands each one registers.
MODULES = {
    "recommend": ("recommend",),
    "laws": ("laws",),
    "fit": ("fit", "fit-cbs"),
    "hardware": ("hardware",),
    "profiles": ("profiles",),
    "calibrate": ("calibrate",),
    "check": ("check",),
}
ROOT_FLAGS = ("--debug",)


def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
) -> None:
    _common.STATE.debug = debug or os.environ.get("PLANNER_DEBUG") == "1"


def build_app(modules: tuple[str, ...] = tuple(MODULES)) -> typer.Typer:
    """The root Typer app with the commands of `modules` (those present in this checkout) registered."""
    app = typer.Typer(
        name="planner",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        help="Plan LLM pre-training budgets: model size, tokens, batch, GPUs, time and cost from scaling laws.",
    )
    app.callback()(_root)
    for name in modules:
        try:  # commands whose modules exist in this checkout; each registers itself
            module = __import__(f"planner.cli.{name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"planner.cli.{name}":
                raise
            continue
        module.register(app)
    return app


def modules_for(args: list[str]) -> tuple[str, ...]:
    """The one module a command line needs, or every module when it names no known command."""
    command = next((a for a in args if a not in ROOT_FLAGS), None)
    if command is not None and not command.startswith("-"):
        for module, commands in MODULES.items():
            if command in commands:
                return (module,)
    return tuple(MODULES)


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # `planner.cli.app`, with every command, for tools that load the Typer app itself
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `planner` console script; exits with a documented status."""
    # At exit, the interpreter's final garbage collections walk every object start-up made (~40k: typer,
    # pydantic, rich; ~40 ms of a ~0.4 s run). Frozen objects are left for the OS to free instead; module
    # globals are still cleared and files still flushed and closed. Registered once however often main() runs.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    sys.exit(_common.run(build_app(modules_for(sys.argv[1:] if argv is None else argv)), argv))
