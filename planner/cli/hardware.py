"""`planner hardware list | show NAME`."""

from __future__ import annotations

from typing import Annotated

import typer

from planner.cli._common import emit_data, output_format, print_profile_list, stdout_console

app = typer.Typer(no_args_is_help=True, help="List and show accelerator profiles.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="hardware")


@app.command("list")
def list_hardware() -> None:
    """List the accelerator profiles (built-in and in $PLANNER_PROFILES_DIR/hardware); exit 3 if one does not load."""
    from planner import render_profiles
    from planner.schemas.hardware import HardwareProfile

    print_profile_list("hardware", HardwareProfile, render_profiles.hardware_list)


@app.command("show")
def show_hardware(
    name: Annotated[str, typer.Argument(help="Accelerator profile name or YAML path.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
    as_yaml: Annotated[bool, typer.Option("--yaml", help="Print the profile as YAML.")] = False,
) -> None:
    """Show one accelerator: dense peaks per dtype, memory, interconnect, prices, MFU prior and sources.

    Example: planner hardware show h100-sxm5-80gb
    """
    from planner import render_profiles, resolve

    loaded = resolve.load_hardware(name)
    fmt = output_format(as_json, as_yaml)
    if fmt != "table":
        emit_data({**loaded.profile.model_dump(mode="json"), "sha256": loaded.sha256}, fmt)
        return
    stdout_console().print(render_profiles.hardware_detail(loaded.profile, str(loaded.path), loaded.sha256))
