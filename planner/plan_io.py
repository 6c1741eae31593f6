"""Read, resolve and write plan files (I/O around planner.check; errors name file, key and line)."""

from __future__ import annotations

import math
import os
import posixpath
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from planner import profiles, resolve
from planner.check import Inputs, over_optimum, shape_of
from planner.errors import ConfigError, InfeasibleError, PlannerError
from planner.laws.chinchilla import ChinchillaParams
from planner.schemas.plan import PlanFile
from planner.schemas.recommend import RecommendResult
from planner.shapes import shape_for_params

WRITE_MARGIN = 1.25  # --write-plan sets budget limits 25% above the recommendation (below the 90% warning)
OPTIMUM_TOLERANCE = 0.05  # --write-plan: lifetime FLOPs at most 5 points above the recommendation's own
PARAMS_SHAPE_RTOL = 0.10  # model.params and model.shape's total count may differ by this much


class _PlanLoader(profiles._LOADER):
    """The profiles' safe loader, reading `2e12` and `2.0e12` as numbers (YAML 1.2) where YAML 1.1 reads text.

    Plans refuse strings for numbers (schemas.plan), so a number written the way README and `recommend`
    accept it must not arrive as a string; only a quoted one does.
    """


_PlanLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                  re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


@dataclass(frozen=True)
class LoadedPlan:
    path: Path  # as reported: a file, or REF:path for a baseline at a git ref
    plan: PlanFile
    nodes: Any  # the composed YAML tree, for line numbers
    base_dir: Path | None = None  # where relative profile paths are looked up (default: path's directory)
    ref: GitRef | None = None  # a baseline read from git: relative profile paths are read at that ref first
    notes: list[str] = field(default_factory=list)

    def line(self, key: str) -> int | None:
        return profiles.key_line(self.nodes, tuple(key.split(".")))


@dataclass(frozen=True)
class GitRef:
    """A plan file at a git ref: the repository's top directory, the ref, and the plan's directory in it."""

    top: Path
    ref: str
    plan_dir: str  # posix, relative to top ('' at the top)

    def read(self, relative: str) -> tuple[str, bytes | None]:
        """(REF:path, the file's bytes at the ref, or None where the ref does not hold it)."""
        rel = posixpath.normpath(posixpath.join(self.plan_dir, relative))
        name = f"{self.ref}:{rel}"
        if rel.startswith("../") or rel == "..":
            return name, None
        kind = _git(["cat-file", "-t", name], self.top)
        if kind is None or kind.strip() != b"blob":
            return name, None
        return name, _git(["cat-file", "blob", name], self.top)


def _git(args: list[str], cwd: Path) -> bytes | None:
    """stdout of a git command, or None when it fails (or git is missing)."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True).stdout
    except (subprocess.CalledProcessError, OSError):
        return None


def load(path: Path, raw: bytes | None = None, base_dir: Path | None = None, ref: GitRef | None = None) -> LoadedPlan:
    """Parse and validate a plan; a missing file, bad YAML or bad field is a ConfigError with file:line."""
    if raw is None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the plan ({exc.strerror})",
                              hint="give an existing plan file, or write one with `planner check --init plan.yaml`") from None
    nodes, data = _read(raw, path)
    try:
        plan = PlanFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field_name = ".".join(str(part) for part in err["loc"])
        line = profiles.key_line(nodes, err["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path}{f':{line}' if line else ''}: {field_name}: {err['msg']}{more}",
                          hint=profiles.PLAN_HINT) from None
    loaded = LoadedPlan(path, plan, nodes, base_dir, ref)
    _params_match_shape(loaded)
    _at_least_one_step(loaded)
    return loaded


def _read(raw: bytes, path: Path) -> tuple[Any, Any]:
    """(node tree, data) of a plan's YAML; a syntax error or a key given twice names the file and line."""
    loader = None
    try:
        loader = _PlanLoader(raw)
        nodes = loader.get_single_node()
        if nodes is not None:
            _no_duplicate_keys(nodes, path, ())
        data = loader.construct_document(nodes) if nodes is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})",
                          hint=profiles.PLAN_HINT) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}",
                          hint=profiles.PLAN_HINT)
    return nodes, data


def _no_duplicate_keys(node: Any, path: Path, keys: tuple[str, ...], seen: set[int] | None = None) -> None:
    """YAML keeps the last of two equal keys; in a plan that silently drops a value, so it is an error."""
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias of a node already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                line = key.start_mark.line + 1
                if (key.tag, key.value) in first:
                    dotted = ".".join((*keys, key.value))
                    raise ConfigError(f"{path}:{line}: {dotted}: duplicate key (first given on line "
                                      f"{first[key.tag, key.value]}); YAML would keep only the last value",
                                      hint="remove one of the two; each key may appear once per section")
                first[key.tag, key.value] = line
            _no_duplicate_keys(value, path, (*keys, str(getattr(key, "value", "?"))), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _no_duplicate_keys(item, path, (*keys, str(i)), seen)


def _at_least_one_step(loaded: LoadedPlan) -> None:
    """training.tokens trains at least one step: the global batch when the plan gives one, else one sequence."""
    t = loaded.plan.training
    step = t.global_batch_tokens if t.global_batch_tokens is not None else float(t.seq_len)
    if t.tokens < step:
        what = "the global_batch_tokens batch" if t.global_batch_tokens is not None else f"a sequence of seq_len {t.seq_len}"
        raise ConfigError(f"{loaded.path}:{loaded.line('training.tokens')}: training.tokens: {t.tokens:g} is less "
                          f"than one training step ({step:g} tokens: {what})",
                          hint="give at least one step of tokens, e.g. tokens: 2.0e+12")


def _params_match_shape(loaded: LoadedPlan) -> None:
    """model.params (the law's N) and model.shape (memory, FLOPs) must describe the same model.

    The one exception is the shape planner itself derives for model.params (what `recommend
    --write-plan` records): a stand-in whose layer count is whole, so its total can be further off.
    """
    model, seq_len = loaded.plan.model, loaded.plan.training.seq_len
    if model.params is None or model.shape is None:
        return
    shape = shape_of(loaded.plan)
    derived = shape_for_params(model.params, vocab_size=model.shape.vocab_size, seq_len=seq_len)
    if shape == derived or abs(shape.total_params / model.params - 1.0) <= PARAMS_SHAPE_RTOL:
        return
    raise ConfigError(
        f"{loaded.path}:{loaded.line('model.params')}: model.params: {model.params:.4g} disagrees with model.shape "
        f"(line {loaded.line('model.shape')}), which has {shape.total_params:.4g} total parameters "
        f"({shape.total_params / model.params - 1.0:+.0%}; at most {PARAMS_SHAPE_RTOL:.0%} apart)",
        hint="give one of model.params and model.shape, or make them describe the same model")


def inputs(loaded: LoadedPlan, confidence: float | None):
    """Load the laws and accelerator a plan names; errors point at the plan key that named them."""
    plan = loaded.plan
    law = _profile(loaded, "laws.loss", plan.laws.loss, resolve.load_law)
    hardware = _profile(loaded, "training.gpu", plan.training.gpu, resolve.load_hardware).profile
    cbs = _profile(loaded, "laws.batch", plan.laws.batch, resolve.load_cbs_law).profile
    b_opt = resolve.load_batch_law(resolve.B_OPT_LAW).profile
    if plan.training.dtype not in resolve.TRAINING_DTYPES:
        have = ", ".join(resolve.training_dtypes(hardware)) or "none"
        raise ConfigError(f"{loaded.path}:{loaded.line('training.dtype')}: training.dtype: {plan.training.dtype} is not "
                          f"a training dtype (int8 and int4 peaks are for inference)",
                          hint=f"{hardware.name} trains in: {have}")
    try:
        hardware.peak_flops_per_s(plan.training.dtype)
    except KeyError as exc:
        raise ConfigError(f"{loaded.path}:{loaded.line('training.dtype')}: training.dtype: {exc.args[0]}",
                          hint=f"`planner hardware show {plan.training.gpu}` lists the accelerator's dtypes") from None
    return law, Inputs(plan, resolve.law_params(law.profile), resolve.law_samples(law.profile), hardware, cbs, b_opt,
                       confidence)  # fmt: skip


def is_profile_path(value: str) -> bool:
    """A profile value that names a file rather than a profile (profiles.resolve's rule)."""
    return value.endswith((".yaml", ".yml")) or "/" in value or os.sep in value


def _profile(loaded: LoadedPlan, key: str, value: str, loader):
    """Load the profile a plan key names; a relative path is relative to the plan file's directory first.

    A baseline read at a git ref reads that file at the same ref; where the ref does not hold it, the working
    tree's file is used, with a note.
    """
    where = f"{loaded.path}:{loaded.line(key)}: {key}"
    try:
        if is_profile_path(value) and not Path(value).expanduser().is_absolute():
            if loaded.ref is not None:
                name, blob = loaded.ref.read(value)
                if blob is not None:
                    return _load_blob(name, blob, value, loader)
                loaded.notes.append(f"{key}: {value} is not in {loaded.ref.ref}; the baseline used the working "
                                    "tree's file")
            relative = (loaded.base_dir or loaded.path.parent) / value
            if relative.is_file():
                value = str(relative)
        return loader(value)
    except PlannerError as exc:  # an empty or unknown name, a missing file: the plan is what is wrong (exit 3)
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None


def _load_blob(name: str, blob: bytes, value: str, loader):
    """A profile file read from git, loaded through a temporary copy; errors name it as REF:path."""
    with tempfile.TemporaryDirectory(prefix="planner-baseline-") as tmp:
        copy = Path(tmp) / posixpath.basename(value)
        copy.write_bytes(blob)
        try:
            return loader(str(copy))
        except PlannerError as exc:
            raise ConfigError(exc.message.replace(str(copy), name), hint=exc.hint) from None


@dataclass(frozen=True)
class Baseline:
    """The baseline of one plan: its bytes and how to read it, or None where the plan is new since the ref."""

    name: str
    raw: bytes | None
    base_dir: Path | None = None
    ref: GitRef | None = None


def baseline_source(plan_path: Path, baseline: str) -> Baseline:
    """The baseline plan: a file, or the same plan at a git ref (e.g. HEAD, origin/main).

    A ref that exists but does not hold the plan: the plan is new (raw None). Neither a file nor a ref: ConfigError.
    """
    candidate = Path(baseline)
    if candidate.is_file():
        return Baseline(str(candidate), candidate.read_bytes(), base_dir=candidate.parent)
    hint = "give the old plan file, or a git ref such as HEAD~1 or origin/main"
    out = _git(["rev-parse", "--show-toplevel"], plan_path.parent.resolve())
    if out is None:
        raise ConfigError(f"--baseline {baseline}: not a file, and {plan_path} is not in a git repository",
                          hint=hint)
    top = Path(out.decode().strip()).resolve()
    if baseline.startswith("-") or _git(["rev-parse", "--verify", "--quiet", f"{baseline}^{{tree}}"], top) is None:
        raise ConfigError(f"--baseline {baseline}: neither a file nor a git ref (in {top})", hint=hint)
    try:
        rel = plan_path.resolve().relative_to(top).as_posix()
    except ValueError:
        raise ConfigError(f"--baseline {baseline}: {plan_path} is outside the git repository {top}",
                          hint=hint) from None
    ref = GitRef(top, baseline, posixpath.dirname(rel))
    name, raw = ref.read(posixpath.basename(rel))
    return Baseline(name, raw, base_dir=plan_path.parent, ref=ref)


def path_for_plan(value: str, plan_path: Path) -> str:
    """A profile as a plan file records it: a name stays a name; a path becomes relative to the plan file's
    directory (where `planner check` looks first), so the plan checks the same from any directory."""
    if not is_profile_path(value):
        return value
    target = os.path.abspath(os.path.expanduser(value))
    try:
        rel = Path(os.path.relpath(target, os.path.abspath(plan_path.parent))).as_posix()
    except ValueError:  # another drive (Windows): only the absolute path reaches it
        return target
    return rel if is_profile_path(rel) else f"./{rel}"


def plan_from_result(result: RecommendResult, law: str, batch_law: str) -> dict:
    """A plan that reproduces a recommendation, with limits 25% above its budgets.

    It records the tokens the GPU plan really trains (a batch past the CBS needs more for the same
    loss), and limits that the recommendation itself meets: a batch the user forced past the CBS, or a
    cost-optimal allocation (which is off the FLOP optimum by design), widen their own limits to what
    was accepted plus the usual margins, so that `planner check` passes the plan unchanged and guards
    it from drifting further.
    """
    g = result.gpu_plan
    assert g is not None and result.parallelism is not None
    s = g.shape
    d_inf = result.inference.tokens
    c = result.law
    params = ChinchillaParams(E=c.E, A=c.A, B=c.B, alpha=c.alpha, beta=c.beta)
    over = over_optimum(params, result.n_params, g.n_tokens_needed, result.n_tokens, d_inf)
    batch_over = (result.batch_size_tokens / result.critical_batch_tokens
                  if result.batch_size_tokens and result.critical_batch_tokens else 1.0)  # fmt: skip
    limits: dict[str, float] = {
        "max_gpu_hours": result.gpu_hours * WRITE_MARGIN,
        "max_wall_clock_s": result.wall_clock_s * WRITE_MARGIN,
        "target_loss": result.loss,
        "max_tokens_per_param": g.n_tokens_needed / result.n_params * WRITE_MARGIN,
        "max_over_optimum": max(OPTIMUM_TOLERANCE, (over or 0.0) + OPTIMUM_TOLERANCE),
        "max_batch_over_cbs": max(1.0, batch_over * WRITE_MARGIN),
        "min_memory_headroom": 0.05,
    }
    if g.cost_usd is not None:
        limits["max_cost_usd"] = g.cost_usd * WRITE_MARGIN
    plan = {
        "schema_version": 1,
        "name": f"{result.law.name}-{result.n_params / 1e9:.3g}B",
        "model": {"params": result.n_params,
                  "shape": {k: s[k] for k in ("n_layers", "d_model", "n_heads", "d_ff", "vocab_size")}},
        "training": {"tokens": g.n_tokens_needed, "seq_len": s["seq_len"], "global_batch_tokens": result.batch_size_tokens,
                     "gpu": result.gpu, "n_gpus": result.n_gpus, "dtype": g.dtype,
                     "zero_stage": result.parallelism.zero_stage, "recompute": g.recompute, "mfu": g.mfu,
                     "price_usd_per_hour": g.price_usd_per_hour},
        "laws": {"loss": law, "batch": batch_law},
        "inference": {"tokens": result.inference.tokens},
        "limits": limits,
    }  # fmt: skip
    if plan["training"]["price_usd_per_hour"] is None:
        del plan["training"]["price_usd_per_hour"]
    PlanFile.model_validate(plan)  # what we write must load
    return plan


def dump(plan: dict, header: str) -> str:
    return header + yaml.safe_dump(plan, sort_keys=False)


EXAMPLE = """\
# A training plan that `planner check plan.yaml` guards (e.g. in CI). Every limit is optional.
schema_version: 1
name: llama-7b-style-2t
model:
  params: 6.74e+9            # TOTAL parameters, embeddings included (what Chinchilla-style laws count)
  # shape: {n_layers: 32, d_model: 4096, n_heads: 32, d_ff: 11008, vocab_size: 32000}   # or give the shape
training:
  tokens: 2.0e+12
  seq_len: 4096
  global_batch_tokens: 4194304   # 1024 sequences of 4096; omit for the recommended batch
  gpu: h100-sxm5-80gb            # `planner hardware list`
  n_gpus: 512
  dtype: bf16
  zero_stage: 1                  # 0-3
  recompute: selective           # none | selective | full
  mfu: 0.40                      # your measured MFU; omit for the accelerator's prior
  # price_usd_per_hour: 2.50     # omit for the profile's indicative price
laws:
  loss: besiroglu-2024           # or a calibrated law: path/to/law.yaml
  batch: zhang-2024
inference:
  tokens: 2.0e+12                # lifetime inference tokens (input + output)
limits:
  max_gpu_hours: 70000.0
  max_cost_usd: 300000.0
  max_wall_clock_s: 864000.0     # 10 days
  target_loss: 2.1
  max_tokens_per_param: 400.0
  max_over_optimum: 0.5          # lifetime FLOPs at most 50% above the inference-aware optimum
  max_batch_over_cbs: 1.0        # global batch at most 1x the critical batch size
  min_memory_headroom: 0.05      # keep at least 5% of GPU memory free
  warn_fraction: 0.9             # warn above 90% of a budget
"""


ARITHMETIC = (OverflowError, ZeroDivisionError, FloatingPointError)


def report(paths: list[Path], confidence: float | None, baseline: str | None, strict: bool):
    """Check every plan on its own; a plan that cannot be checked becomes an error entry, not an abort.

    With a baseline, each plan also gets what changed (GPU-hours, cost, wall-clock, predicted loss).
    """
    from planner.check import overall
    from planner.schemas.check import CheckReport

    plans = []
    for path in paths:
        try:
            plans.append(_plan_report(path, confidence, baseline))
        except PlannerError as exc:
            plans.append(_plan_error(path, exc))
        except ARITHMETIC as exc:  # extreme values that validate: this plan's error, the others still report
            plans.append(_plan_error(path, _out_of_range(path, exc)))
    if any(p.status == "error" for p in plans):
        worst = "error"
    else:
        worst = overall([c for p in plans for c in p.checks])
    return CheckReport(status=worst, strict=strict, plans=plans)


def _out_of_range(path: Path, exc: Exception) -> PlannerError:
    return InfeasibleError(f"{path}: the plan's numbers leave double-precision range ({type(exc).__name__}: {exc})",
                           hint="check the plan's magnitudes (tokens, parameters, inference tokens) and its law's "
                                "constants")


def _plan_report(path: Path, confidence: float | None, baseline: str | None):
    from planner.check import evaluate, overall
    from planner.schemas.check import PlanReport

    loaded = load(path)
    law, inp = inputs(loaded, confidence)
    checks, metrics = evaluate(inp)
    checks = [c.model_copy(update={"line": loaded.line(c.key)}) for c in checks]
    changes, notes, warnings = None, [], []
    if baseline is not None:
        source = baseline_source(path, baseline)  # no such file or ref: this plan's error (exit 3)
        if source.raw is None:
            notes.append(f"new since {baseline}: {baseline} does not hold {source.name.split(':', 1)[-1]}, so there is "
                         "nothing to compare")
        else:
            try:
                old = load(Path(source.name), source.raw, source.base_dir, source.ref)
                changes = diff(evaluate(inputs(old, confidence)[1])[1], metrics)
                notes.extend(f"baseline {note}" for note in old.notes)
            except PlannerError as exc:
                warnings.append(f"the baseline {source.name} could not be read, so there is no comparison: "
                                f"{exc.message}")
            except ARITHMETIC as exc:
                warnings.append(f"the baseline {source.name} could not be evaluated, so there is no comparison: "
                                f"{_out_of_range(Path(source.name), exc).message}")
    return PlanReport(file=str(path), name=loaded.plan.name, status=overall(checks), checks=checks, metrics=metrics,
                      law=law.profile.name, law_sha256=law.sha256, confidence=confidence, changes=changes,
                      notes=notes, warnings=warnings)


def _plan_error(path: Path, exc: PlannerError):
    """The error entry of one plan; the line comes from the message's `FILE:LINE:` prefix when it has one."""
    from planner.schemas.check import PlanError

    match = re.match(rf"{re.escape(str(path))}:(\d+):", exc.message)
    return PlanError(file=str(path), error=exc.message, hint=exc.hint, line=int(match[1]) if match else None,
                     exit_status=int(exc.exit_status))


def diff(old, new) -> list:
    from planner.schemas.check import Change

    out = []
    for metric in ("gpu_hours", "cost_usd", "wall_clock_s", "predicted_loss", "n_params", "n_tokens", "lifetime_flops"):
        a, b = getattr(old, metric), getattr(new, metric)
        delta = None if a is None or b is None else b - a
        rel = None if delta is None or not a else delta / a
        delta, rel = (v if v is not None and math.isfinite(v) else None for v in (delta, rel))
        out.append(Change(metric=metric, baseline=a, current=b, delta=delta, relative=rel))
    return out
