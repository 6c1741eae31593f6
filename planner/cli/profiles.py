"""`planner profiles validate [PATH...]`: check user profiles (laws, hardware, batch laws) before use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import stdout_console

app = typer.Typer(no_args_is_help=True, help="Validate profile files.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="profiles")


@app.command("validate")
def validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="YAML files; none: every built-in and user profile.")] = None,
) -> None:
    """Validate profile files against their schema (the `kind:` field picks it); exit 3 if any is invalid.

    Example: planner profiles validate my-gpu.yaml calibrated/law.yaml
    """
    from planner import render_profiles, validation
    from planner.errors import ConfigError

    results = [validation.validate_file(Path(p)) for p in paths or validation.every_profile()]
    stdout_console().print(render_profiles.validation_table(results))
    bad = [r for r in results if not r.ok]
    if bad:
        raise ConfigError(f"{len(bad)} of {len(results)} profiles are invalid; first: {bad[0].message}",
                          hint="fix the fields named above; `planner laws show` / `hardware show` print valid examples")
