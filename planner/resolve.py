"""Flags -> validated requests: parse numbers, reject conflicts, fill defaults from profiles.

Precedence for every value: schema default < hardware/law profile < explicit flag. This module reads
profiles (through :mod:`planner.profiles`) but computes nothing beyond units.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from planner import profiles, units
from planner.defaults import B_OPT_LAW, DEFAULT_BATCH_LAW, DEFAULT_GPU, DEFAULT_LAW
from planner.errors import ConfigError, UsageError
from planner.laws.chinchilla import ChinchillaParams
from planner.planning import MIN_PARAMS
from planner.schemas.hardware import HardwareProfile
from planner.schemas.laws import LawProfile
from planner.schemas.recommend import (
    DEFAULT_DECODE_MFU,
    DEFAULT_INPUT_TOKENS,
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_PREFILL_MFU,
    CostInputs,
    FittedRange,
    InferenceDemand,
    LawIdentity,
    ProfileRef,
    RecommendRequest,
)

DEFAULT_TRAIN_DTYPE = "bf16"
DEFAULT_INFERENCE_DTYPE = "fp8"  # Sardana et al.'s cost_optimal.py serves on H100 FP8
# Dtypes a model trains in (mixed precision with these matmuls). int8/int4 are inference-only: an H100's int8
# 1978.9 TOPS as a "training peak" halved the wall-clock while the memory plan stayed bf16.
TRAINING_DTYPES = ("bf16", "fp16", "fp8", "tf32", "fp32")
FP8_SPEEDUP = 1.3  # FP8 training throughput over BF16 (hardware.md §6: default 1.3x, range 1.1-1.6x)
DEFAULT_SEQ_LEN = 4096  # Llama-like defaults, for laws that record nothing about the runs they were fitted on
DEFAULT_VOCAB_SIZE = 32000
BYTE_VOCAB_SIZE = 256  # a byte-level law's tokens are the 256 byte values (its probes may add special tokens)
CALIBRATE_RUNS = "runs.jsonl"  # `planner calibrate` writes its run log beside law.yaml (calibrate_fits.RUNS)


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
    seq_len: int | None = None  # None: the law's fitted value, else DEFAULT_SEQ_LEN (fitted_shape_defaults)
    vocab_size: int | None = None
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
    if flags.tokens is not None and flags.params is None:  # first: `--tokens 1T` alone names no mode
        raise UsageError("--tokens needs --params", hint="--params 7B --tokens 1.4T evaluates that configuration")
    modes = [n for n in ("target_loss", "compute", "params") if getattr(flags, n) is not None]
    if len(modes) != 1:
        given = ", ".join(_flag(m) for m in modes) or "none"
        raise UsageError(
            f"give exactly one of --target-loss, --compute, --params (given: {given})",
            hint="e.g. planner recommend --target-loss 2.3 --inference-tokens 2e12",
        )
    if flags.objective not in ("flops", "cost"):
        raise UsageError(f"--objective: expected 'flops' or 'cost' (not {flags.objective!r})", hint="--objective cost")
    if flags.objective == "flops":
        stray = [_flag(n) for n in COST_FLAGS if getattr(flags, n) is not None]
        if stray:
            raise UsageError(
                f"{', '.join(stray)} only {'applies' if len(stray) == 1 else 'apply'} to --objective cost",
                hint=f"add --objective cost, or drop {'that flag' if len(stray) == 1 else 'those flags'}",
            )
    check_counts(flags)
    check_names(flags)
    target = units.parse_quantity(flags.target_loss, "--target-loss") if flags.target_loss is not None else None
    n_params, n_tokens = model_size(flags)
    return RecommendRequest(
        target_loss=target,
        compute_flops=_opt(flags.compute, "--compute"),
        n_params=n_params,
        n_tokens=n_tokens,
        inference=inference_demand(flags),
        objective=flags.objective,  # type: ignore[arg-type]
        cost=cost_inputs(flags) if flags.objective == "cost" else None,
    )


def _opt(text: str | None, flag: str) -> float | None:
    return None if text is None else units.parse_quantity(text, flag)


def model_size(flags: RecommendFlags) -> tuple[float | None, float | None]:
    """--params and --tokens, at or above the floors: MIN_PARAMS parameters, one training step of tokens."""
    n_params = _opt(flags.params, "--params")
    n_tokens = _opt(flags.tokens, "--tokens")
    if n_params is not None and n_params < MIN_PARAMS:
        raise UsageError(
            f"--params: {flags.params} is below the floor of {MIN_PARAMS:,.0f} parameters",
            hint=f"no scaling law is fitted to models below ~{MIN_PARAMS:,.0f} parameters (README, `planner "
                 "recommend`); give e.g. --params 7B",
        )
    step = min_training_tokens(flags)
    if n_tokens is not None and n_tokens < step:
        where = "the --batch-tokens batch" if flags.batch_tokens is not None else f"a sequence of --seq-len {_seq_len(flags)}"
        raise UsageError(
            f"--tokens: {flags.tokens} is less than one training step ({step:.4g} tokens: {where})",
            hint="give at least one step of tokens, e.g. --tokens 1.4T",
        )
    return n_params, n_tokens


def check_counts(flags: RecommendFlags) -> None:
    """The integer knobs: --gpus, --max-gpus and --seq-len are counts of at least 1; --vocab-size at least 2
    (a one-token vocabulary has nothing to predict; calibrate's bound too)."""
    for name, least in (("gpus", 1), ("max_gpus", 1), ("seq_len", 1), ("vocab_size", 2)):
        value = getattr(flags, name)
        if value is not None and value < least:
            raise UsageError(f"{_flag(name)}: must be at least {least}, got {value}",
                             hint=f"give {_flag(name)} a count of at least {least}")


def check_names(flags: RecommendFlags) -> None:
    """A profile or dtype flag given as '' names nothing (it is not "not given", nor the current directory)."""
    for name in ("law", "batch_law", "gpu", "train_gpu", "inference_gpu", "train_dtype", "inference_dtype"):
        value = getattr(flags, name)
        if value is not None and not value.strip():
            what = "a dtype, e.g. bf16" if name.endswith("dtype") else "a profile name or a YAML path"
            raise UsageError(f"{_flag(name)}: empty value", hint=f"give {_flag(name)} {what}, or leave it out")


def min_training_tokens(flags: RecommendFlags) -> float:
    """The fewest tokens a run can train on: one step of the global batch (--batch-tokens, rounded to whole
    sequences as the batch plan rounds it), or one sequence of --seq-len when the batch is recommended."""
    batch = batch_tokens(flags)
    seq = _seq_len(flags)
    return float(seq * (1 if batch is None else round(batch / seq)))


def _seq_len(flags: RecommendFlags) -> int:
    """--seq-len as resolved (fitted_shape_defaults), or the default when nothing resolved it."""
    return DEFAULT_SEQ_LEN if flags.seq_len is None else flags.seq_len


def batch_tokens(flags: RecommendFlags) -> float | None:
    """--batch-tokens, at least one sequence of --seq-len (the plan rounds it to whole sequences)."""
    batch = _opt(flags.batch_tokens, "--batch-tokens")
    seq = _seq_len(flags)
    if batch is not None and batch < seq:
        raise UsageError(f"--batch-tokens: {flags.batch_tokens} is less than one sequence of --seq-len {seq}",
                         hint=f"give at least {seq} tokens, or a shorter --seq-len")
    return batch


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
    train_loaded = load_hardware(training_gpu_name(flags))
    serve_loaded = load_hardware(_first(flags.inference_gpu, DEFAULT_GPU))
    train, serve = train_loaded.profile, serve_loaded.profile
    train_dtype = _first(flags.train_dtype, DEFAULT_TRAIN_DTYPE)
    inference_dtype = _first(flags.inference_dtype, DEFAULT_INFERENCE_DTYPE)
    training_peak(train, train_dtype)
    train_price = _price(flags.train_price, train, "--train-price")
    serve_price = _price(flags.inference_price, serve, "--inference-price")
    return CostInputs(
        train_gpu=train.name,
        inference_gpu=serve.name,
        train_dtype=train_dtype,
        inference_dtype=inference_dtype,
        train_peak_flops_per_s=peak(train, train_dtype, "--train-dtype"),
        inference_peak_flops_per_s=peak(serve, inference_dtype, "--inference-dtype"),
        train_mfu=training_mfu(flags, train, train_dtype)[0],
        prefill_mfu=units.check_fraction(_or(flags.prefill_mfu, DEFAULT_PREFILL_MFU), "--prefill-mfu"),
        decode_mfu=units.check_fraction(_or(flags.decode_mfu, DEFAULT_DECODE_MFU), "--decode-mfu"),
        train_price_usd_per_hour=train_price,
        inference_price_usd_per_hour=serve_price,
        train_gpu_profile=profile_ref(train_loaded),
        inference_gpu_profile=profile_ref(serve_loaded),
    )


def training_mfu(flags: RecommendFlags, hardware, dtype: str) -> tuple[float, str | None]:
    """The training MFU against `dtype`'s dense peak, and a note when it was derived rather than given.

    --mfu/--train-mfu win. Otherwise the profile's prior, which is a BF16 figure: for FP8 training it
    becomes the prior x 1.3 throughput expressed against the FP8 peak (hardware.md §6 item 4: FP8 is a
    throughput multiplier on the BF16 estimate, not a doubled peak; llm-foundry FP8 runs reach ~28% of
    the FP8 peak, DeepSeek-V3 ~35% of the BF16 peak). The cost objective and the GPU plan both use this,
    so that one run is priced the same in both.
    """
    given = _first(flags.mfu, flags.train_mfu)
    if given is not None:
        return units.check_fraction(given, "--mfu" if flags.mfu is not None else "--train-mfu"), None
    if dtype == "fp8" and hardware.peak_tflops_dense.get("bf16"):
        bf16, fp8 = peak(hardware, "bf16", "--train-dtype"), peak(hardware, "fp8", "--train-dtype")
        return hardware.mfu_prior * FP8_SPEEDUP * bf16 / fp8, (
            f"fp8: {hardware.name} bf16 prior {hardware.mfu_prior:g} x {FP8_SPEEDUP:g} throughput, "
            "expressed against the FP8 peak (hardware.md §6)")
    return hardware.mfu_prior, None


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _first(*values):
    """The first value given (not None), or None."""
    return next((v for v in values if v is not None), None)


def training_gpu_name(flags: RecommendFlags) -> str:
    """--gpu and --train-gpu name the same training accelerator; both given must agree."""
    if flags.gpu is not None and flags.train_gpu is not None and flags.gpu != flags.train_gpu:
        raise UsageError(f"--gpu {flags.gpu} and --train-gpu {flags.train_gpu} conflict", hint="give one of them")
    if flags.mfu is not None and flags.train_mfu is not None and flags.mfu != flags.train_mfu:
        raise UsageError(f"--mfu {flags.mfu:g} and --train-mfu {flags.train_mfu:g} conflict", hint="give one of them")
    return _first(flags.gpu, flags.train_gpu, DEFAULT_GPU)  # None = not given; '' is a (bad) name


def training_options(flags: RecommendFlags, identity: LawIdentity | None = None, notes: tuple[str, ...] = ()):
    """Resolve the GPU plan's inputs: accelerator, dtype, MFU, price, shape knobs, batch laws, mode.

    identity: the loss law, whose D unit labels the plan and is checked against the batch law's; notes:
    assumption lines of the resolved shape knobs (:func:`fitted_shape_defaults`)."""
    from planner import gpu_plan
    from planner.training_plan import TrainingOptions

    if flags.gpus is not None and flags.deadline is not None:
        raise UsageError("--gpus and --deadline conflict", hint="fix the GPU count, or the deadline, not both")
    if flags.max_gpus is not None and flags.gpus is not None:
        raise UsageError("--gpus and --max-gpus conflict", hint="--max-gpus caps the automatic GPU count")
    hardware_loaded = load_hardware(training_gpu_name(flags))
    hardware = hardware_loaded.profile
    dtype = _first(flags.train_dtype, DEFAULT_TRAIN_DTYPE)
    training_peak(hardware, dtype)
    mfu, mfu_source = training_mfu(flags, hardware, dtype)
    if _first(flags.mfu, flags.train_mfu) is None and mfu_source is None:
        mfu = None  # the plan reads the profile's prior itself (and says so)
    if flags.zero_stage not in (0, 1, 2, 3):
        raise UsageError(f"--zero-stage: expected 0, 1, 2 or 3 (not {flags.zero_stage})", hint="--zero-stage 1")
    if flags.recompute not in ("none", "selective", "full"):
        raise UsageError(f"--recompute: expected none, selective or full (not {flags.recompute!r})",
                         hint="--recompute selective")
    check_counts(flags)
    if flags.seq_len is None or flags.vocab_size is None:  # callers that skip fitted_shape_defaults
        flags = replace(flags, seq_len=_first(flags.seq_len, DEFAULT_SEQ_LEN),
                        vocab_size=_first(flags.vocab_size, DEFAULT_VOCAB_SIZE))
    unit = identity.d_unit if identity is not None else "tokens"
    price = hardware.price_usd_per_hour  # None when the profile has none: the plan then prints no cost
    if flags.train_price is not None:
        price = units.check_positive(flags.train_price, "--train-price")
    plan = gpu_plan.PlanOptions(
        zero_stage=flags.zero_stage,
        recompute=flags.recompute,  # type: ignore[arg-type]
        max_gpus=flags.max_gpus,
        n_gpus=flags.gpus,
        deadline_s=None if flags.deadline is None else units.parse_duration(flags.deadline, "--deadline"),
        price_usd_per_hour=price,
        unit=unit,
    )
    cbs_loaded = load_cbs_law(flags.batch_law)
    b_opt_loaded = load_batch_law(B_OPT_LAW)
    cbs_law = cbs_loaded.profile
    return TrainingOptions(
        hardware=hardware,
        cbs_law=cbs_law,
        b_opt_law=b_opt_loaded.profile,
        dtype=dtype,
        mfu=mfu,
        mfu_source=mfu_source,
        seq_len=flags.seq_len,
        vocab_size=flags.vocab_size,
        batch_tokens=batch_tokens(flags),
        plan=plan,
        cbs_law_flags=tuple(law_flags(cbs_law)),
        notes=notes,
        warnings=tuple(_d_units_mismatch(cbs_law, identity)),
        hardware_ref=profile_ref(hardware_loaded),
        cbs_law_ref=profile_ref(cbs_loaded),
        b_opt_law_ref=profile_ref(b_opt_loaded),
    )


def profile_ref(loaded: profiles.Loaded) -> ProfileRef:
    """Name, sha256 and path of a loaded profile; builtin when the file is one the package ships."""
    path = Path(loaded.path).resolve()
    try:
        builtin = path.is_relative_to(profiles.builtin_dir().resolve())
    except ConfigError:
        builtin = False
    return ProfileRef(name=loaded.profile.name, sha256=loaded.sha256, path=str(loaded.path), builtin=builtin)


def _d_units_mismatch(cbs_law, identity: LawIdentity | None) -> list[str]:
    """The CBS law is evaluated at the loss law's D: say so when the two count D in different units."""
    if identity is None:
        return []
    theirs = cbs_law.law("cbs_d").input_units.get("D", "training tokens")
    ours = identity.units.tokens if identity.units is not None else "training tokens"
    if theirs == ours:
        return []
    return [(f"batch law {cbs_law.name} takes D in {theirs}, but law {identity.name} counts D in {ours}: its CBS is "
             "evaluated at the law's D as if the units agreed (calibrate or fit a batch law on the same data)")]


def load_batch_law(name_or_path: str):
    from planner.schemas.batch import BatchLawProfile

    return profiles.load("batch", name_or_path, BatchLawProfile)


def load_cbs_law(name_or_path: str):
    """A batch law that predicts the critical batch from D (a `cbs_d` law), for --batch-law."""
    try:
        loaded = load_batch_law(name_or_path)
    except ConfigError as exc:  # an unknown name: list the profiles --batch-law can use, not every batch law
        is_path = name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path or os.sep in name_or_path
        if is_path or name_or_path in profiles.available("batch"):
            raise
        raise ConfigError(exc.message, hint=_cbs_law_hint()) from None
    if not _has_cbs_d(loaded.profile):
        raise ConfigError(
            f"{loaded.path}: batch law {loaded.profile.name!r} has no D-law of the critical batch (id cbs_d)",
            hint=_cbs_law_hint(),
        )
    return loaded


def _has_cbs_d(profile) -> bool:
    return any(law.id == "cbs_d" for law in profile.laws)


def _cbs_law_hint() -> str:
    """--batch-law takes only profiles with a `cbs_d` law; list those (the other batch profiles serve B_opt/LR)."""
    usable = []
    for name in profiles.available("batch"):
        try:
            if _has_cbs_d(load_batch_law(name).profile):
                usable.append(name)
        except ConfigError:  # a broken user profile is not a usable one; `planner profiles validate` names it
            continue
    return (f"--batch-law takes a critical-batch D-law: {', '.join(usable) or 'none installed'}, "
            "or a YAML file written by `planner fit-cbs --write-law`")


def _price(flag_value: float | None, profile: HardwareProfile, flag: str) -> float:
    if flag_value is not None:
        return units.check_positive(flag_value, flag)
    if profile.price_usd_per_hour is None:
        raise ConfigError(
            f"{profile.name} has no indicative price in its profile",
            hint=f"give {flag} in USD per GPU-hour",
        )
    return profile.price_usd_per_hour


def training_dtypes(profile: HardwareProfile) -> list[str]:
    """The training dtypes (TRAINING_DTYPES) this accelerator has a dense peak for, in the profile's order."""
    return [k for k, v in profile.peak_tflops_dense.items() if v is not None and k in TRAINING_DTYPES]


def training_peak(profile: HardwareProfile, dtype: str, flag: str = "--train-dtype") -> float:
    """Dense peak of a training dtype; an inference-only dtype (int8, int4) is a usage error listing the
    training dtypes the accelerator has."""
    if dtype not in TRAINING_DTYPES:
        have = ", ".join(training_dtypes(profile)) or "none"
        raise UsageError(
            f"{flag}: {dtype} is not a training dtype (models train in {', '.join(TRAINING_DTYPES)}; int8 and int4 "
            "peaks are for inference)",
            hint=f"{profile.name} trains in: {have}; e.g. {flag} bf16 (--inference-dtype takes int8)",
        )
    return peak(profile, dtype, flag)


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
    """The law's identity for the result: constants and hash, plus (for laws not in the published token-level
    units) its units and dataset, its fit's flags, and what its provenance says of the runs it was fitted on."""
    p = loaded.profile
    c = p.constants
    seq_len, vocab = _fitted_runs_shape(loaded)
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
        uncertainty=_uncertainty_note(loaded),
        units=None if published_units(p) else p.units,
        dataset=None if published_units(p) else p.dataset,
        flags=law_flags(p) or None,
        fitted_tokens_per_param=fitted_tokens_per_param(loaded),
        fitted_seq_len=seq_len,
        fitted_vocab_size=vocab,
    )


def published_units(p: LawProfile) -> bool:
    """True for the shipped laws' units: nats per token of MassiveText, D in training tokens."""
    return p.units.tokens == "training tokens" and "MassiveText" in p.units.loss


_FLAG = re.compile(r"FLAG (.+?)\.(?=\s+[A-Z(]|\s*$)")  # to the sentence's end ("et al. 2024" is not one)


def law_flags(p) -> list[str]:
    """A fitted law's flags: provenance['flags'] (`planner fit`, `calibrate`), else the notes' 'FLAG ...' sentences
    (a calibrated batch law writes its flags only there)."""
    listed = (p.provenance or {}).get("flags")
    if isinstance(listed, list) and listed:
        return [str(f) for f in listed]
    return _FLAG.findall(p.notes or "")


def _provenance_file(loaded: profiles.Loaded[LawProfile]) -> Path | None:
    """The fit's input file beside the law, when provenance names it and its sha256 still matches."""
    prov = loaded.profile.provenance or {}
    name, sha = prov.get("input_file"), prov.get("input_sha256")
    if not isinstance(name, str) or not isinstance(sha, str):
        return None
    path = Path(loaded.path).parent / Path(name).name
    try:
        return path if hashlib.sha256(path.read_bytes()).hexdigest() == sha else None
    except OSError:
        return None


def fitted_tokens_per_param(loaded: profiles.Loaded[LawProfile]) -> FittedRange | None:
    """The D/N range the law was fitted at: provenance's tokens_per_param [low, high] when recorded, else the
    fit's input file (provenance input_file beside the law, sha256 checked; columns params and tokens)."""
    prov = loaded.profile.provenance or {}
    given = prov.get("tokens_per_param")
    if isinstance(given, list) and len(given) == 2:
        try:
            source = prov.get("tokens_per_param_source")
            return FittedRange(low=float(given[0]), high=float(given[1]),
                               source=source if isinstance(source, str) else f"{loaded.profile.name} provenance")
        except ValueError:
            pass
    path = _provenance_file(loaded)
    if path is None or path.suffix != ".csv":
        return None
    try:
        with path.open(newline="") as fh:
            ratios = [float(row["tokens"]) / float(row["params"]) for row in csv.DictReader(fh)]
    except (OSError, KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not ratios:
        return None
    return FittedRange(low=min(ratios), high=max(ratios), source=f"{path.name}, the law's fit input")


def _fitted_runs_shape(loaded: profiles.Loaded[LawProfile]) -> tuple[int | None, int | None]:
    """(seq_len, vocab_size) of the runs the law was fitted on: provenance's seq_len/vocab_size when recorded,
    else a `planner calibrate` run log beside the law (its ladder runs, when they agree on one value)."""
    prov = loaded.profile.provenance or {}
    seq, vocab = prov.get("seq_len"), prov.get("vocab_size")
    seq = seq if isinstance(seq, int) and seq >= 1 else None
    vocab = vocab if isinstance(vocab, int) and vocab >= 1 else None
    if (seq is None or vocab is None) and _provenance_file(loaded) is not None:
        log_seq, log_vocab = _calibrate_log_shape(Path(loaded.path).parent / CALIBRATE_RUNS)
        seq, vocab = seq or log_seq, vocab or log_vocab
    return seq, vocab


def _calibrate_log_shape(path: Path) -> tuple[int | None, int | None]:
    seqs, vocabs = set(), set()
    try:
        with path.open() as fh:
            for line in fh:
                run = json.loads(line) if line.strip() else {}
                if run.get("kind") == "ladder" and run.get("status") == "ok":
                    seqs.add(run.get("seq_len"))
                    vocabs.add(run.get("vocab_size"))
    except (OSError, ValueError, AttributeError):
        return None, None
    return _only_int(seqs), _only_int(vocabs)


def _only_int(values: set) -> int | None:
    """The one value all runs agree on, if it is an int."""
    value = next(iter(values)) if len(values) == 1 else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class FittedShape:
    """--seq-len and --vocab-size as resolved, with the reason for each (printed in the Assumptions)."""

    flags: RecommendFlags
    notes: tuple[str, ...]


def fitted_shape_defaults(flags: RecommendFlags, identity: LawIdentity) -> FittedShape:
    """Fill --seq-len and --vocab-size when not given: explicit flag > the law's fitted runs (provenance or its
    calibration log) > for a byte-level law, the batch law's sequence length (same D units) and 256 byte values
    > the Llama-like 4096 / 32000. A law that records nothing keeps the defaults silently (shipped laws)."""
    seq, seq_why = identity.fitted_seq_len, f"the runs law {identity.name} was fitted on"
    vocab, vocab_why = identity.fitted_vocab_size, seq_why
    byte_level = identity.d_unit == "bytes"
    if seq is None and byte_level and flags.seq_len is None:
        seq = _batch_law_seq_len(flags, identity)
        seq_why = f"the sequences of --batch-law {flags.batch_law}, fitted in the same units"
    if vocab is None and byte_level:
        vocab, vocab_why = BYTE_VOCAB_SIZE, "byte-level data: one token per byte value"
    notes = []
    for flag, value, why, default in (("--seq-len", seq, seq_why, DEFAULT_SEQ_LEN),
                                      ("--vocab-size", vocab, vocab_why, DEFAULT_VOCAB_SIZE)):
        given = getattr(flags, _attr(flag))
        if given is not None and value is not None and given != value:
            notes.append(f"{flag} {given} as given; law {identity.name} was fitted at {value} ({why})")
        elif given is None and value is not None:
            notes.append(f"{flag} {value}: {why} (not the Llama-like default {default}; give {flag} to override)")
    resolved = replace(flags, seq_len=_first(flags.seq_len, seq, DEFAULT_SEQ_LEN),
                       vocab_size=_first(flags.vocab_size, vocab, DEFAULT_VOCAB_SIZE))
    return FittedShape(resolved, tuple(notes))


def _attr(flag: str) -> str:
    return flag[2:].replace("-", "_")


def _batch_law_seq_len(flags: RecommendFlags, identity: LawIdentity) -> int | None:
    """The --batch-law's cbs_d sequence length, when that law counts D in the loss law's units."""
    try:
        cbs = load_cbs_law(flags.batch_law).profile.law("cbs_d")
    except (ConfigError, KeyError):
        return None  # training_options reports a bad --batch-law in its turn
    same = identity.units is not None and cbs.input_units.get("D") == identity.units.tokens
    return cbs.sequence_length if same and cbs.output_unit == "sequences" else None


def _own_fit(p: LawProfile) -> bool:
    """A law written by `planner fit --write-law` or `planner calibrate` (its provenance names the fit's input)."""
    prov = p.provenance or {}
    return "input_sha256" in prov or "fitter" in prov


def _uncertainty_note(loaded: profiles.Loaded[LawProfile]) -> str | None:
    """Where the law's uncertainty comes from (a fit's own bootstrap, or the profile's uncertainty.method), and
    whether it gives bands; None when the profile has none (the assumptions then say so)."""
    p = loaded.profile
    unc = p.uncertainty
    if unc is None or not (unc.samples or unc.standard_errors or unc.intervals_95 or unc.covariance_log):
        return None
    method = unc.method or "method not stated"
    origin = f"this fit's bootstrap: {method}" if _own_fit(p) else method
    if unc.samples:
        return f"{len(unc.samples)} bootstrap draws ({origin}): bands below"
    known = [k for k, v in (("standard errors", unc.standard_errors), ("95% intervals", unc.intervals_95),
                            ("a covariance", unc.covariance_log)) if v]
    if _own_fit(p):
        why = ("the fit wrote no draws (it does not when its bootstrap cannot identify the law: see its flags), "
               "so no bands on the recommendation")
    else:
        why = ("no bootstrap draws, so no bands on the recommendation (the constants are strongly correlated; "
               "`planner fit --bootstrap --write-law` makes a law that has them)")
    show = p.name if profile_ref(loaded).builtin else str(loaded.path)
    return f"{' and '.join(known)} of the constants from {origin} (`planner laws show {show}`), but {why}"


def law_samples(profile: LawProfile) -> list[list[float]] | None:
    """Bootstrap draws [E, A, B, alpha, beta] carried by a (fitted) law, if any."""
    return profile.uncertainty.samples if profile.uncertainty and profile.uncertainty.samples else None

