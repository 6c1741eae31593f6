"""Flags -> validated requests: parse numbers, reject conflicts, fill defaults from profiles.

Precedence for every value: schema default < hardware/law profile < explicit flag. This module reads
profiles (through :mod:`planner.profiles`) but computes nothing beyond units.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner import profiles, units
from planner.defaults import B_OPT_LAW, DEFAULT_BATCH_LAW, DEFAULT_GPU, DEFAULT_LAW
from planner.errors import ConfigError, UsageError
from planner.laws.chinchilla import ChinchillaParams
from planner.schemas.hardware import HardwareProfile
from planner.schemas.laws import LawProfile
from planner.schemas.recommend import (
    DEFAULT_DECODE_MFU,
    DEFAULT_INPUT_TOKENS,
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_PREFILL_MFU,
    CostInputs,
    InferenceDemand,
    LawIdentity,
    RecommendRequest,
)

DEFAULT_TRAIN_DTYPE = "bf16"
DEFAULT_INFERENCE_DTYPE = "fp8"  # Sardana et al.'s cost_optimal.py serves on H100 FP8
FP8_SPEEDUP = 1.3  # FP8 training throughput over BF16 (hardware.md §6: default 1.3x, range 1.1-1.6x)


@dataclass
class RecommendFlags:
    """Raw values as typed on the command line (None = not given)."""

    target_loss: str | None = None
    compute: str | None = None
    params: str | None = None
    tokens: str | None = None
    inference_tokens: str | None = None
    inference_requests: str | None = None
    input_tokens: str | None = None
    output_tokens: str | None = None
    objective: str = "flops"
    law: str = DEFAULT_LAW
    train_gpu: str | None = None
    inference_gpu: str | None = None
    train_dtype: str | None = None
    inference_dtype: str | None = None
    train_mfu: float | None = None
    prefill_mfu: float | None = None
    decode_mfu: float | None = None
    train_price: float | None = None
    inference_price: float | None = None
    gpu: str | None = None
    gpus: int | None = None
    max_gpus: int | None = None
    deadline: str | None = None
    mfu: float | None = None
    seq_len: int = 4096
    vocab_size: int = 32000
    zero_stage: int = 1
    recompute: str = "selective"
    batch_law: str = DEFAULT_BATCH_LAW
    batch_tokens: str | None = None


# Flags that only the cost objective reads (--train-price and --train-dtype also set the GPU plan's).
COST_FLAGS = ("train_gpu", "inference_gpu", "inference_dtype", "train_mfu", "prefill_mfu", "decode_mfu", "inference_price")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def recommend_request(flags: RecommendFlags) -> RecommendRequest:
    """Validate the flags of `planner recommend` into a request (profiles loaded for the cost objective)."""
    modes = [n for n in ("target_loss", "compute", "params") if getattr(flags, n) is not None]
    if len(modes) != 1:
        given = ", ".join(_flag(m) for m in modes) or "none"
        raise UsageError(
            f"give exactly one of --target-loss, --compute, --params (given: {given})",
            hint="e.g. planner recommend --target-loss 2.3 --inference-tokens 2e12",
        )
    if flags.tokens is not None and flags.params is None:
        raise UsageError("--tokens needs --params", hint="--params 7B --tokens 1.4T evaluates that configuration")
    if flags.objective not in ("flops", "cost"):
        raise UsageError(f"--objective: expected 'flops' or 'cost' (not {flags.objective!r})", hint="--objective cost")
    if flags.objective == "flops":
        stray = [_flag(n) for n in COST_FLAGS if getattr(flags, n) is not None]
        if stray:
            raise UsageError(
                f"{', '.join(stray)} only apply to --objective cost",
                hint="add --objective cost, or drop those flags",
            )
    target = units.parse_quantity(flags.target_loss, "--target-loss") if flags.target_loss is not None else None
    return RecommendRequest(
        target_loss=target,
        compute_flops=_opt(flags.compute, "--compute"),
        n_params=_opt(flags.params, "--params"),
        n_tokens=_opt(flags.tokens, "--tokens"),
        inference=inference_demand(flags),
        objective=flags.objective,  # type: ignore[arg-type]
        cost=cost_inputs(flags) if flags.objective == "cost" else None,
    )


def _opt(text: str | None, flag: str) -> float | None:
    return None if text is None else units.parse_quantity(text, flag)


def inference_demand(flags: RecommendFlags) -> InferenceDemand:
    """Lifetime inference tokens, from a total or from requests x (input + output) tokens per request."""
    if flags.inference_tokens is not None and flags.inference_requests is not None:
        raise UsageError(
            "--inference-tokens and --inference-requests conflict",
            hint="give the total tokens, or requests with --input-tokens/--output-tokens per request",
        )
    per_in = _opt(flags.input_tokens, "--input-tokens")
    per_out = _opt(flags.output_tokens, "--output-tokens")
    explicit_split = per_in is not None or per_out is not None
    per_in = DEFAULT_INPUT_TOKENS if per_in is None else per_in
    per_out = DEFAULT_OUTPUT_TOKENS if per_out is None else per_out
    if flags.inference_requests is not None:
        requests = units.parse_quantity(flags.inference_requests, "--inference-requests", allow_zero=True)
        return InferenceDemand(
            tokens=requests * (per_in + per_out),
            input_tokens=requests * per_in,
            output_tokens=requests * per_out,
            requests=requests,
        )
    total = 0.0
    if flags.inference_tokens is not None:
        total = units.parse_quantity(flags.inference_tokens, "--inference-tokens", allow_zero=True)
    share = per_in / (per_in + per_out)  # the in:out split of a total, for the cost objective only
    return InferenceDemand(
        tokens=total,
        input_tokens=total * share,
        output_tokens=total * (1.0 - share),
        split_assumed=not explicit_split,
    )


def cost_inputs(flags: RecommendFlags) -> CostInputs:
    """Resolve accelerators, dtypes, MFUs and prices; profile values fill what the flags leave out."""
    train = load_hardware(training_gpu_name(flags)).profile
    serve = load_hardware(flags.inference_gpu or DEFAULT_GPU).profile
    train_dtype = flags.train_dtype or DEFAULT_TRAIN_DTYPE
    inference_dtype = flags.inference_dtype or DEFAULT_INFERENCE_DTYPE
    train_price = _price(flags.train_price, train, "--train-price")
    serve_price = _price(flags.inference_price, serve, "--inference-price")
    return CostInputs(
        train_gpu=train.name,
        inference_gpu=serve.name,
        train_dtype=train_dtype,
        inference_dtype=inference_dtype,
        train_peak_flops_per_s=peak(train, train_dtype, "--train-dtype"),
        inference_peak_flops_per_s=peak(serve, inference_dtype, "--inference-dtype"),
        train_mfu=units.check_fraction(_first(flags.train_mfu, flags.mfu, train.mfu_prior), "--train-mfu"),
        prefill_mfu=units.check_fraction(_or(flags.prefill_mfu, DEFAULT_PREFILL_MFU), "--prefill-mfu"),
        decode_mfu=units.check_fraction(_or(flags.decode_mfu, DEFAULT_DECODE_MFU), "--decode-mfu"),
        train_price_usd_per_hour=train_price,
        inference_price_usd_per_hour=serve_price,
    )


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _first(*values):
    return next(v for v in values if v is not None)


def training_gpu_name(flags: RecommendFlags) -> str:
    """--gpu and --train-gpu name the same training accelerator; both given must agree."""
    if flags.gpu and flags.train_gpu and flags.gpu != flags.train_gpu:
        raise UsageError(f"--gpu {flags.gpu} and --train-gpu {flags.train_gpu} conflict", hint="give one of them")
    if flags.mfu is not None and flags.train_mfu is not None and flags.mfu != flags.train_mfu:
        raise UsageError(f"--mfu {flags.mfu:g} and --train-mfu {flags.train_mfu:g} conflict", hint="give one of them")
    return flags.gpu or flags.train_gpu or DEFAULT_GPU


def training_options(flags: RecommendFlags):
    """Resolve the GPU plan's inputs: accelerator, dtype, MFU, price, shape knobs, batch laws, mode."""
    from planner import gpu_plan
    from planner.training_plan import TrainingOptions

    if flags.gpus is not None and flags.deadline is not None:
        raise UsageError("--gpus and --deadline conflict", hint="fix the GPU count, or the deadline, not both")
    if flags.max_gpus is not None and flags.gpus is not None:
        raise UsageError("--gpus and --max-gpus conflict", hint="--max-gpus caps the automatic GPU count")
    hardware = load_hardware(training_gpu_name(flags)).profile
    dtype = flags.train_dtype or DEFAULT_TRAIN_DTYPE
    peak(hardware, dtype, "--train-dtype")
    mfu = _first(flags.mfu, flags.train_mfu, -1.0)
    mfu_source = None
    if mfu < 0 and dtype == "fp8" and hardware.peak_tflops_dense.get("bf16"):
        # hardware.md §6 item 4: model FP8 as ~1.3x the BF16 throughput, not as a doubled peak
        # (llm-foundry FP8 runs reach ~28% of the FP8 peak; DeepSeek-V3 ~35% of the BF16 peak).
        mfu = hardware.mfu_prior * FP8_SPEEDUP * peak(hardware, "bf16", "--train-dtype") / peak(hardware, "fp8", "--train-dtype")
        mfu_source = (f"fp8: {hardware.name} bf16 prior {hardware.mfu_prior:g} x {FP8_SPEEDUP:g} throughput, "
                      "expressed against the FP8 peak (hardware.md §6)")
    if flags.zero_stage not in (0, 1, 2, 3):
        raise UsageError(f"--zero-stage: expected 0, 1, 2 or 3 (not {flags.zero_stage})", hint="--zero-stage 1")
    if flags.recompute not in ("none", "selective", "full"):
        raise UsageError(f"--recompute: expected none, selective or full (not {flags.recompute!r})",
                         hint="--recompute selective")
    for name in ("gpus", "max_gpus", "seq_len", "vocab_size"):
        value = getattr(flags, name)
        if value is not None and value < 1:
            raise UsageError(f"{_flag(name)}: must be at least 1, got {value}", hint=f"give {_flag(name)} a positive count")
    price = _first(flags.train_price, hardware.price_usd_per_hour, -1.0)
    plan = gpu_plan.PlanOptions(
        zero_stage=flags.zero_stage,
        recompute=flags.recompute,  # type: ignore[arg-type]
        max_gpus=flags.max_gpus,
        n_gpus=flags.gpus,
        deadline_s=units.parse_duration(flags.deadline, "--deadline") if flags.deadline else None,
        price_usd_per_hour=None if price < 0 else units.check_positive(price, "--train-price"),
    )
    return TrainingOptions(
        hardware=hardware,
        cbs_law=load_cbs_law(flags.batch_law).profile,
        b_opt_law=load_batch_law(B_OPT_LAW).profile,
        dtype=dtype,
        mfu=None if mfu < 0 else units.check_fraction(mfu, "--mfu"),
        mfu_source=mfu_source,
        seq_len=flags.seq_len,
        vocab_size=flags.vocab_size,
        batch_tokens=_opt(flags.batch_tokens, "--batch-tokens"),
        plan=plan,
    )


def load_batch_law(name_or_path: str):
    from planner.schemas.batch import BatchLawProfile

    return profiles.load("batch", name_or_path, BatchLawProfile)


def load_cbs_law(name_or_path: str):
    """A batch law that predicts the critical batch from D (a `cbs_d` law), for --batch-law."""
    loaded = load_batch_law(name_or_path)
    if not any(law.id == "cbs_d" for law in loaded.profile.laws):
        raise ConfigError(
            f"{loaded.path}: batch law {loaded.profile.name!r} has no D-law of the critical batch (id cbs_d)",
            hint="use zhang-2024 or a law written by `planner fit-cbs --write-law`",
        )
    return loaded


def _price(flag_value: float | None, profile: HardwareProfile, flag: str) -> float:
    if flag_value is not None:
        return units.check_positive(flag_value, flag)
    if profile.price_usd_per_hour is None:
        raise ConfigError(
            f"{profile.name} has no indicative price in its profile",
            hint=f"give {flag} in USD per GPU-hour",
        )
    return profile.price_usd_per_hour


def peak(profile: HardwareProfile, dtype: str, flag: str) -> float:
    """Dense peak FLOP/s of a dtype, or a usage error listing the dtypes the device has."""
    try:
        return profile.peak_flops_per_s(dtype)
    except KeyError as exc:
        raise UsageError(f"{flag}: {exc.args[0]}", hint=f"pass {flag} with one of the dtypes listed") from None


def load_law(name_or_path: str) -> profiles.Loaded[LawProfile]:
    return profiles.load("laws", name_or_path, LawProfile)


def load_hardware(name_or_path: str) -> profiles.Loaded[HardwareProfile]:
    return profiles.load("hardware", name_or_path, HardwareProfile)


def law_params(profile: LawProfile) -> ChinchillaParams:
    c = profile.constants
    return ChinchillaParams(E=c.E, A=c.A, B=c.B, alpha=c.alpha, beta=c.beta)


def law_identity(loaded: profiles.Loaded[LawProfile]) -> LawIdentity:
    p = loaded.profile
    c = p.constants
    return LawIdentity(
        name=p.name,
        sha256=loaded.sha256,
        path=str(loaded.path),
        source=p.source,
        E=c.E,
        A=c.A,
        B=c.B,
        alpha=c.alpha,
        beta=c.beta,
        params_counted=p.units.params,
        uncertainty=_uncertainty_note(p),
    )


def _uncertainty_note(p: LawProfile) -> str | None:
    unc = p.uncertainty
    if unc is None:
        return None
    if unc.samples:
        return f"{len(unc.samples)} bootstrap draws ({unc.method or 'method not stated'}): bands below"
    known = [k for k, v in (("standard errors", unc.standard_errors), ("95% intervals", unc.intervals_95)) if v]
    return (f"published {' and '.join(known)} of the constants (`planner laws show {p.name}`), but no bootstrap "
            "draws or covariance, so no bands on the recommendation (the constants are strongly correlated; "
            "`planner fit --bootstrap --write-law` makes a law that has them)")


def law_samples(profile: LawProfile) -> list[list[float]] | None:
    """Bootstrap draws [E, A, B, alpha, beta] carried by a (fitted) law, if any."""
    return profile.uncertainty.samples if profile.uncertainty and profile.uncertainty.samples else None

