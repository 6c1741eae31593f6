"""Reading a user's runs (CSV or JSON Lines) into validated arrays for the fitters.

Every problem with the data is a :class:`planner.errors.ConfigError` naming the file, the row (1-based
data row, with its line in the file) and the column, so the user can fix it in an editor.
Loss-law runs give parameters N, tokens D (or compute C, then D = C/(6N)) and the final loss;
critical-batch runs give the model size and/or tokens, the batch size and the steps to a target loss.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from planner.errors import ConfigError, UsageError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of the file's bytes (for a fitted law's provenance)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Table:
    """Raw rows of a file: `rows[i]` maps column -> raw value; `lines[i]` is its line in the file."""

    path: str
    columns: tuple[str, ...]
    rows: list[dict] = field(repr=False)
    lines: list[int] = field(repr=False)

    def where(self, i: int, column: str | None = None) -> str:
        col = f", column '{column}'" if column else ""
        return f"{self.path}, row {i + 1} (line {self.lines[i]}){col}"


def read_table(path: str | Path) -> Table:
    """Read a CSV (header row) or JSON Lines file (one object per line; chosen by the suffix)."""
    p = Path(path)
    if not p.is_file():
        problem = "is a directory" if p.is_dir() else "no such file"
        raise ConfigError(f"{p}: {problem}", hint="give the path of a CSV or JSONL file of runs")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot be read as UTF-8 text ({exc})") from exc
    if p.suffix.lower() in JSONL_SUFFIXES:
        return _read_jsonl(str(p), text)
    return _read_csv(str(p), text)


def _read_csv(path: str, text: str) -> Table:
    reader = csv.DictReader(text.splitlines())
    columns = tuple(c.strip() for c in (reader.fieldnames or ()) if c is not None)
    rows, lines = [], []
    try:
        for raw in reader:
            if not any((v or "").strip() for k, v in raw.items() if k is not None):
                continue  # blank line
            if None in raw:
                raise ConfigError(f"{path}, line {reader.line_num}: more fields than the header's {len(columns)}")
            rows.append({(k or "").strip(): v for k, v in raw.items()})
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise ConfigError(f"{path}, line {reader.line_num}: not valid CSV ({exc})") from exc
    return Table(path, columns, rows, lines)


def _read_jsonl(path: str, text: str) -> Table:
    rows, lines, columns = [], [], {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}, row {len(rows) + 1} (line {n}): not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise ConfigError(f"{path}, row {len(rows) + 1} (line {n}): expected a JSON object, got {type(obj).__name__}")
        rows.append(obj)
        lines.append(n)
        columns.update(dict.fromkeys(obj))
    return Table(path, tuple(columns), rows, lines)


@contextmanager
def _hint(hint: str) -> Iterator[None]:
    """Give data errors that carry no hint of their own one about runs files (not the profile hint)."""
    try:
        yield
    except ConfigError as exc:
        if exc.hint == ConfigError.default_hint:
            exc.hint = hint
        raise


def _number(table: Table, i: int, column: str, *, positive: bool = True) -> float:
    raw = table.rows[i].get(column)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ConfigError(f"{table.where(i, column)}: empty", hint="fill in the value or delete the row")
    if isinstance(raw, bool):
        raise ConfigError(f"{table.where(i, column)}: expected a number, got {raw!r}")
    try:
        v = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{table.where(i, column)}: {raw!r} is not a number") from None
    if not math.isfinite(v) or (positive and not v > 0):
        raise ConfigError(f"{table.where(i, column)}: must be finite and > 0, got {raw!r}")
    return v


def _column(table: Table, column: str, flag: str) -> np.ndarray:
    if column not in table.columns:
        have = ", ".join(repr(c) for c in table.columns) or "none"
        raise ConfigError(f"{table.path}: no column '{column}' (columns: {have})",
                          hint=f"name the column with {flag}")
    return np.array([_number(table, i, column) for i in range(len(table.rows))])


def _require_rows(table: Table, n_min: int, what: str) -> None:
    n = len(table.rows)
    if n == 0:
        raise ConfigError(f"{table.path}: no data rows", hint="the file needs a header and one row per run")
    if n < n_min:
        raise ConfigError(f"{table.path}: {n} row{'s' * (n != 1)}; {what} needs at least {n_min}",
                          hint="add runs that span a wider range of model sizes and token counts")


def _no_duplicates(table: Table, keys: np.ndarray, columns: str) -> None:
    seen: dict[tuple, int] = {}
    for i, key in enumerate(map(tuple, keys)):
        if key in seen:
            j = seen[key]
            raise ConfigError(
                f"{table.where(i)}: duplicates row {j + 1} (line {table.lines[j]}) in columns {columns}",
                hint="delete the duplicate; each row must be one run",
            )
        seen[key] = i


@dataclass(frozen=True)
class Runs:
    """Validated loss-law runs. rows: 1-based data rows of the file kept (after dropping)."""

    N: np.ndarray = field(repr=False)
    D: np.ndarray = field(repr=False)
    L: np.ndarray = field(repr=False)
    rows: np.ndarray = field(repr=False)
    path: str
    sha256: str
    n_read: int
    dropped_rows: tuple[int, ...] = ()
    tokens_from: str = "tokens"
    compute_ignored: str | None = None  # a compute column the file also has, unused because D came from tokens

    @property
    def n_runs(self) -> int:
        return int(self.N.size)


def read_runs(
    path: str | Path, *, params_col: str = "params", tokens_col: str = "tokens", compute_col: str = "compute",
    loss_col: str = "loss", drop_top_loss: int = 0, n_params: int = 5,
) -> Runs:
    """Runs (N, D, L) from a CSV/JSONL file; D from `tokens_col`, else D = C/(6N) from `compute_col`.

    drop_top_loss=K drops the K highest-loss rows (as Besiroglu et al. 2024 dropped 5). Needs more runs
    than the law has parameters (n_params) after dropping. Raises ConfigError naming file, row and column.
    """
    if drop_top_loss < 0:
        raise UsageError(f"--drop-top-loss must be >= 0, got {drop_top_loss}")
    hint = (f"a runs file is CSV with a header row (or JSON Lines), one run per row, with columns '{params_col}', "
            f"'{tokens_col}' (or '{compute_col}') and '{loss_col}'; see `planner fit --help`")
    with _hint(hint):
        return _read_runs(path, params_col, tokens_col, compute_col, loss_col, drop_top_loss, n_params)


def _read_runs(path, params_col, tokens_col, compute_col, loss_col, drop_top_loss, n_params) -> Runs:
    table = read_table(path)
    _require_rows(table, 1, "a fit")
    N = _column(table, params_col, "--params-col")
    compute_ignored = None
    if tokens_col in table.columns:
        D, tokens_from = _column(table, tokens_col, "--tokens-col"), f"column '{tokens_col}'"
        compute_ignored = compute_col if compute_col in table.columns else None
    elif compute_col in table.columns:
        D, tokens_from = _column(table, compute_col, "--compute-col") / (6.0 * N), f"column '{compute_col}' / (6N)"
    else:
        have = ", ".join(repr(c) for c in table.columns)
        raise ConfigError(f"{table.path}: neither a tokens column '{tokens_col}' nor a compute column "
                          f"'{compute_col}' (columns: {have})", hint="name one with --tokens-col or --compute-col")
    L = _column(table, loss_col, "--loss-col")
    _no_duplicates(table, np.column_stack([N, D, L]), f"'{params_col}', tokens and '{loss_col}'")
    keep = np.ones(N.size, dtype=bool)
    if drop_top_loss:
        if drop_top_loss >= N.size:
            most = N.size - n_params - 1
            raise ConfigError(f"{table.path}: --drop-top-loss {drop_top_loss} would drop all {N.size} runs",
                              hint=f"lower --drop-top-loss to at most {most}: the fit needs {n_params + 1} runs left"
                              if most >= 0 else f"add runs (the fit needs {n_params + 1}) and lower --drop-top-loss")
        keep[np.argsort(-L, kind="stable")[:drop_top_loss]] = False
    if keep.sum() <= n_params:
        k = int(keep.sum())
        after = f" (after dropping {drop_top_loss})" if drop_top_loss else ""
        most = N.size - n_params - 1
        hint = (f"lower --drop-top-loss to at most {most}, or add runs" if drop_top_loss and most >= 0
                else "add runs" + (", and lower --drop-top-loss" if drop_top_loss else ""))
        raise ConfigError(f"{table.path}: {k} run{'s' * (k != 1)}{after} cannot fit {n_params} parameters; "
                          f"need at least {n_params + 1}", hint=hint)
    rows = np.arange(1, N.size + 1)
    return Runs(N=N[keep], D=D[keep], L=L[keep], rows=rows[keep], path=table.path, sha256=file_sha256(path),
                n_read=int(N.size), dropped_rows=tuple(int(r) for r in rows[~keep]), tokens_from=tokens_from,
                compute_ignored=compute_ignored)


@dataclass(frozen=True)
class BatchRuns:
    """Steps-to-target rows for a critical-batch fit; N or D may be None when the file lacks them."""

    N: np.ndarray | None = field(repr=False)
    D: np.ndarray | None = field(repr=False)
    batch: np.ndarray = field(repr=False)
    steps: np.ndarray = field(repr=False)
    seq_len: float | None
    path: str
    sha256: str


def read_batch_runs(
    path: str | Path, *, params_col: str = "model_nonemb_params", tokens_col: str = "tokens_at_target",
    batch_col: str = "batch_size_sequences", steps_col: str = "steps_to_target", seq_len_col: str = "seq_len",
) -> BatchRuns:
    """Rows of (model size and/or tokens, batch size in sequences, steps to reach the target loss).

    Groups are the distinct (N, D) pairs; each needs at least 3 distinct batch sizes (two parameters
    a, b of R(B) = a + b/B). seq_len, when present, must be one value for the whole file.
    """
    hint = (f"a runs file is CSV with a header row (or JSON Lines), one run per row, with columns '{params_col}' "
            f"and/or '{tokens_col}', '{batch_col}', '{steps_col}' and optionally '{seq_len_col}'; "
            "see `planner fit-cbs --help`")
    with _hint(hint):
        return _read_batch_runs(path, params_col, tokens_col, batch_col, steps_col, seq_len_col)


def _read_batch_runs(path, params_col, tokens_col, batch_col, steps_col, seq_len_col) -> BatchRuns:
    table = read_table(path)
    _require_rows(table, 3, "a critical-batch fit")
    has_n, has_d = params_col in table.columns, tokens_col in table.columns
    if not (has_n or has_d):
        raise ConfigError(f"{table.path}: neither '{params_col}' nor '{tokens_col}' is a column",
                          hint="name the model-size or token column with --params-col / --tokens-col")
    N = _column(table, params_col, "--params-col") if has_n else None
    D = _column(table, tokens_col, "--tokens-col") if has_d else None
    B = _column(table, batch_col, "--batch-col")
    S = _column(table, steps_col, "--steps-col")
    seq_len = None
    if seq_len_col in table.columns:
        sl = _column(table, seq_len_col, "--seq-len-col")
        if np.any(sl != sl[0]):
            i = int(np.flatnonzero(sl != sl[0])[0])
            raise ConfigError(f"{table.where(i, seq_len_col)}: {sl[i]:g} differs from the first row's {sl[0]:g}",
                              hint="fit one sequence length at a time")
        seq_len = float(sl[0])
    key = np.column_stack([v for v in (N, D) if v is not None] + [B])
    _no_duplicates(table, key, "model size/tokens and batch size")
    groups = {tuple(r) for r in key[:, :-1]}
    for g in groups:
        in_g = np.all(key[:, :-1] == np.array(g), axis=1)
        if np.unique(B[in_g]).size < 3:
            i = int(np.flatnonzero(in_g)[0])
            raise ConfigError(f"{table.where(i)}: its group has {int(in_g.sum())} batch size(s); R(B) = a + b/B "
                              "needs at least 3", hint="measure steps at more batch sizes")
    return BatchRuns(N=N, D=D, batch=B, steps=S, seq_len=seq_len, path=table.path, sha256=file_sha256(path))
