"""Read, resolve and write plan files (I/O around planner.check; errors name file, key and line)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from planner import profiles, resolve
from planner.check import Inputs, over_optimum, shape_of
from planner.errors import ConfigError, PlannerError
from planner.laws.chinchilla import ChinchillaParams
from planner.schemas.plan import PlanFile
from planner.schemas.recommend import RecommendResult
from planner.shapes import shape_for_params

WRITE_MARGIN = 1.25  # --write-plan sets budget limits 25% above the recommendation (below the 90% warning)
OPTIMUM_TOLERANCE = 0.05  # --write-plan: lifetime FLOPs at most 5 points above the recommendation's own
PARAMS_SHAPE_RTOL = 0.10  # model.params and model.shape's total count may differ by this much


@dataclass(frozen=True)
class LoadedPlan:
    path: Path
    plan: PlanFile
    nodes: Any  # the composed YAML tree, for line numbers

    def line(self, key: str) -> int | None:
        return profiles.key_line(self.nodes, tuple(key.split(".")))


def load(path: Path, raw: bytes | None = None) -> LoadedPlan:
    """Parse and validate a plan; a missing file, bad YAML or bad field is a ConfigError with file:line."""
    if raw is None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the plan ({exc.strerror})",
                              hint="give an existing plan file, or write one with `planner check --init plan.yaml`") from None
    plan = profiles.parse(raw, path, PlanFile)
    loaded = LoadedPlan(path, plan, yaml.compose(raw, Loader=profiles._LOADER))
    _params_match_shape(loaded)
    return loaded


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


def _profile(loaded: LoadedPlan, key: str, value: str, loader):
    relative = (loaded.path.parent / value) if value.endswith((".yaml", ".yml")) else None
    try:
        return loader(str(relative) if relative is not None and relative.is_file() else value)
    except ConfigError as exc:
        raise ConfigError(f"{loaded.path}:{loaded.line(key)}: {key}: {exc.message}", hint=exc.hint) from None


def baseline_bytes(plan_path: Path, baseline: str) -> tuple[str, bytes]:
    """The baseline plan: a file, or the same plan at a git ref (e.g. HEAD, origin/main)."""
    candidate = Path(baseline)
    if candidate.is_file():
        return str(candidate), candidate.read_bytes()
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=plan_path.parent.resolve(),
                             capture_output=True, text=True, check=True).stdout.strip()
        rel = plan_path.resolve().relative_to(Path(top).resolve()).as_posix()
        out = subprocess.run(["git", "show", f"{baseline}:{rel}"], cwd=top, capture_output=True, check=True)
    except (subprocess.CalledProcessError, FileNotFoundError, ValueError):
        raise ConfigError(f"--baseline {baseline}: neither a file nor a git ref holding {plan_path}",
                          hint="give the old plan file, or a git ref such as HEAD~1 or origin/main") from None
    return f"{baseline}:{rel}", out.stdout


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
    if any(p.status == "error" for p in plans):
        worst = "error"
    else:
        worst = overall([c for p in plans for c in p.checks])
    return CheckReport(status=worst, strict=strict, plans=plans)


def _plan_report(path: Path, confidence: float | None, baseline: str | None):
    from planner.check import evaluate, overall
    from planner.schemas.check import PlanReport

    loaded = load(path)
    law, inp = inputs(loaded, confidence)
    checks, metrics = evaluate(inp)
    checks = [c.model_copy(update={"line": loaded.line(c.key)}) for c in checks]
    changes = None
    if baseline is not None:
        name, raw = baseline_bytes(path, baseline)
        old = load(Path(name), raw)
        changes = diff(evaluate(inputs(old, confidence)[1])[1], metrics)
    return PlanReport(file=str(path), name=loaded.plan.name, status=overall(checks), checks=checks, metrics=metrics,
                      law=law.profile.name, law_sha256=law.sha256, confidence=confidence, changes=changes)


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
        out.append(Change(metric=metric, baseline=a, current=b, delta=delta, relative=rel))
    return out
