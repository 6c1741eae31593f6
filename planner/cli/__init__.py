"""The `planner` command line: one module per command, each a thin adapter (flags -> request -> core -> render).

Errors are handled once, in :func:`main`: a :class:`planner.errors.PlannerError` or a Typer usage
error becomes one ``error:`` line and one ``hint:`` line on stderr and a documented exit code; anything
else is an internal error (exit 1) whose traceback shows only with ``--debug`` or ``PLANNER_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys

import typer

from planner.cli import _common, laws, recommend

app = typer.Typer(
    name="planner",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Plan LLM pre-training budgets: model size, tokens, batch, GPUs, time and cost from scaling laws.",
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
) -> None:
    _common.STATE.debug = debug or os.environ.get("PLANNER_DEBUG") == "1"


for _module in (recommend, laws):
    _module.register(app)
for _optional in ("fit", "hardware", "profiles", "calibrate", "check"):
    try:  # commands whose modules exist in this checkout; each registers itself
        _module = __import__(f"planner.cli.{_optional}", fromlist=["register"])
    except ModuleNotFoundError as exc:
        if exc.name != f"planner.cli.{_optional}":
            raise
        continue
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `planner` console script; exits with a documented status."""
    sys.exit(_common.run(app, argv))
