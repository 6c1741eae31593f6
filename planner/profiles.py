"""Find, read and validate YAML profiles (laws, hardware, batch laws); the only module that reads profiles/.

Search order for a NAME: ``$PLANNER_PROFILES_DIR/<kind>/NAME.yaml``, then the built-in profiles that
ship with the package. A value that ends in .yaml/.yml or contains a path separator is a file path.
Every error names the file and, for schema errors, the field and (where YAML tells) the line.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from planner.errors import ConfigError, UsageError

KINDS = ("laws", "hardware", "batch")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser is ~8x faster where present
M = TypeVar("M", bound=BaseModel)
PLAN_HINT = "fix the plan named above; `planner check --init` prints a commented example plan"


@dataclass(frozen=True)
class Loaded(Generic[M]):
    """A validated profile with its identity: where it came from and the sha256 of its bytes."""

    profile: M
    path: Path
    sha256: str


def builtin_dir() -> Path:
    """Where the shipped profiles are: the repo's profiles/ (editable install) or the wheel's copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "profiles", here / "_profiles"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("the built-in profiles directory is missing", hint="reinstall llm-budget-planner")


def search_dirs(kind: str) -> list[Path]:
    dirs = []
    user = os.environ.get("PLANNER_PROFILES_DIR")
    if user:
        if not Path(user).expanduser().is_dir():  # set on purpose: a typo must not fall back silently
            raise ConfigError(f"PLANNER_PROFILES_DIR={user}: {'not a directory' if Path(user).exists() else 'no such directory'}",
                              hint="point it at a directory holding laws/, hardware/ and batch/ (any of them), or unset it")
        dirs.append(Path(user).expanduser() / kind)
    dirs.append(builtin_dir() / kind)
    return dirs


def available(kind: str) -> list[str]:
    """Names of every profile of a kind, user profiles first."""
    names: dict[str, None] = {}
    for directory in search_dirs(kind):
        if directory.is_dir():
            for path in sorted(directory.glob("*.yaml")):
                names.setdefault(path.stem, None)
    return list(names)


def resolve(kind: str, name_or_path: str) -> Path:
    """The file for NAME or PATH; an unknown name lists what exists."""
    if not name_or_path.strip():
        raise UsageError(f"an empty {_singular(kind)} profile name", hint=f"give a {kind} profile name or a YAML file")
    if name_or_path.endswith((".yaml", ".yml")) or os.sep in name_or_path or "/" in name_or_path:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            problem = "is a directory" if path.is_dir() else "no such file"
            raise ConfigError(f"{path}: {problem}", hint=f"give an existing YAML file or a {kind} profile name")
        return path
    for directory in search_dirs(kind):
        path = directory / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    if Path(name_or_path).expanduser().is_dir():
        raise ConfigError(f"{name_or_path}: is a directory, not a {_singular(kind)} profile",
                          hint=f"give an existing YAML file or a {kind} profile name")
    known = ", ".join(available(kind)) or "none"
    raise ConfigError(
        f"unknown {_singular(kind)} profile {name_or_path!r}",
        hint=f"known: {known} (or pass a path to a YAML file{_lister(kind)})",
    )


def load(kind: str, name_or_path: str, schema: type[M]) -> Loaded[M]:
    """Resolve, read, parse and validate one profile. A profile found by NAME must be called NAME inside
    (`name:`): the file name selects it, and the output names it by `name:`, so the two must agree."""
    path = resolve(kind, name_or_path)
    raw = path.read_bytes()
    profile = parse(raw, path, schema)
    inner = getattr(profile, "name", None)
    if path.stem == name_or_path and inner is not None and inner != path.stem:
        raise ConfigError(f"{path}: name {inner!r} differs from the file name {path.stem!r}, which selects it",
                          hint=f"rename the file to {inner}.yaml or set `name: {path.stem}`")
    return Loaded(profile, path, hashlib.sha256(raw).hexdigest())


def read_yaml(raw: bytes, path: Path, hint: str | None = None) -> Any:
    """Parse YAML bytes; a syntax error (or bytes that are not text) names the file and, where YAML tells, the line."""
    try:
        return yaml.load(raw, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})", hint=hint) from None


def parse(raw: bytes, path: Path, schema: type[M]) -> M:
    """Validate YAML bytes against a schema; errors name the file, the field and its line."""
    # `planner profiles validate` checks profiles (schemas with a `kind`); other files (plans) get their own hint
    hint = None if "kind" in schema.model_fields else PLAN_HINT
    data = read_yaml(raw, path, hint)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}",
                          hint=hint)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(part) for part in err["loc"])
        line = key_line(yaml.compose(raw, Loader=_LOADER), err["loc"])  # the node tree only when needed
        where = f":{line}" if line else ""
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path}{where}: {field}: {err['msg']}{more}", hint=hint) from None


def load_all(kind: str, schema: type[M]) -> tuple[list[tuple[str, M]], list[ConfigError]]:
    """Every profile of a kind that loads, by name, and the errors of those that do not."""
    good, broken = [], []
    for name in available(kind):
        try:
            good.append((name, load(kind, name, schema).profile))
        except ConfigError as exc:
            broken.append(exc)
    return good, broken


def broken_error(kind: str, broken: list[ConfigError], n_listed: int) -> ConfigError:
    """The one error `planner laws list` / `hardware list` end with when some profiles did not load."""
    n = len(broken)
    what = f"{n} {_singular(kind)} profile{'s' * (n != 1)}"
    files = "the file" if n == 1 else "those files"
    return ConfigError(f"{what} could not be loaded (named above); listed the other {n_listed}",
                       hint=f"fix or remove {files}; `planner profiles validate FILE` shows what is wrong")


def key_line(node: Any, loc: tuple) -> int | None:
    """1-based line of the deepest YAML node along a pydantic error location."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                return line
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _singular(kind: str) -> str:
    return {"laws": "law", "hardware": "hardware", "batch": "batch-law"}[kind]


def _lister(kind: str) -> str:
    """The command that lists a kind's profiles, as a hint suffix (batch laws have none: the hint lists them)."""
    command = {"laws": "laws", "hardware": "hardware"}.get(kind)
    return f"; `planner {command} list` shows them" if command else ""
