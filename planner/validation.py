"""Validate any profile file by its `kind:` (I/O around planner.profiles; used by `planner profiles validate`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner import profiles
from planner.errors import ConfigError


@dataclass(frozen=True)
class Validation:
    path: str
    kind: str
    name: str
    ok: bool
    message: str


def schema_for(kind: str):
    from planner.schemas.batch import BatchLawProfile
    from planner.schemas.hardware import HardwareProfile
    from planner.schemas.laws import LawProfile

    return {"loss-law": LawProfile, "accelerator": HardwareProfile, "batch-law": BatchLawProfile}.get(kind)


def validate_file(path: Path) -> Validation:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return Validation(str(path), "?", "?", False, f"{path}: cannot read ({exc.strerror})")
    try:
        data = profiles.read_yaml(raw, path)  # a syntax error is reported as such, with its line
    except ConfigError as exc:
        return Validation(str(path), "?", "?", False, exc.message)
    kind = data.get("kind") if isinstance(data, dict) else None
    schema = schema_for(str(kind))
    if schema is None:
        return Validation(str(path), str(kind), "?", False,
                          f"{path}: kind: expected loss-law, accelerator or batch-law (not {kind!r})")
    try:
        profile = profiles.parse(raw, path, schema)
    except ConfigError as exc:
        return Validation(str(path), str(kind), str(data.get("name", "?")), False, exc.message)
    return Validation(str(path), str(kind), profile.name, True, "ok")


def validate_paths(paths: list[Path]) -> list[Validation]:
    return [validate_file(Path(p)) for p in paths]


def every_profile() -> list[Path]:
    """Every built-in and user profile file."""
    out = []
    for kind in profiles.KINDS:
        for directory in profiles.search_dirs(kind):
            out.extend(sorted(directory.glob("*.yaml")) if directory.is_dir() else [])
    return out
