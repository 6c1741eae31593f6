"""`planner laws list | show NAME`."""

from __future__ import annotations

from typing import Annotated

import typer

from planner.cli._common import emit_data, output_format, print_profile_list, stdout_console

app = typer.Typer(no_args_is_help=True, help="List and show loss-law profiles.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="laws")


@app.command("list")
def list_laws() -> None:
    """List the loss-law profiles (built-in and in $PLANNER_PROFILES_DIR/laws); exit 3 if one does not load."""
    from planner import render
    from planner.schemas.laws import LawProfile

    print_profile_list("laws", LawProfile, render.law_list)


@app.command("show")
def show_law(
    name: Annotated[str, typer.Argument(help="Law name or path to a law YAML file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
    as_yaml: Annotated[bool, typer.Option("--yaml", help="Print the profile as YAML.")] = False,
) -> None:
    """Show one law: constants, uncertainty, units, dataset, source and sha256.

    Example: planner laws show besiroglu-2024
    """
    from planner import resolve

    loaded = resolve.load_law(name)
    fmt = output_format(as_json, as_yaml)
    if fmt != "table":
        emit_data({**loaded.profile.model_dump(mode="json", exclude_none=True), "sha256": loaded.sha256}, fmt)
        return
    from planner import render

    stdout_console().print(render.law_detail(loaded.profile, str(loaded.path), loaded.sha256))
