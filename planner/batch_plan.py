"""Batch size and optimizer settings for a run of N parameters on D tokens. Pure (profiles come in as schemas).

Recipe (shared reference batch-laws.md §5, "Recommended defaults"):
1. the critical batch CBS(D) from the batch-law profile's D-law (Zhang et al. 2024, 20%-overhead
   definition; a McCandlish-definition law is converted with B_crit -> CBS first);
2. the loss-optimal batch B_opt(D) of the Step Law (Li et al. 2025); the batch is min(CBS, B_opt) rounded
   down to a power of two sequences: CBS is a ceiling, not a target;
3. peak LR from the Step Law at (N_non-embedding, D), scaled by sqrt(B/B_opt) when the batch is below
   B_opt (Adam square-root rule, Surge eq. 4);
4. Adam beta2 and the EWA decay keep their horizons fixed in SAMPLES from Zhang et al.'s per-batch table
   (beta2 0.99 at 512 x 512 tokens, EWA 0.999 at 1024 x 512), beta2 floored at Zhang's 0.95;
5. warmup of N tokens (Porian et al. 2024; the OLMo ladder), i.e. a fixed number of samples;
6. schedule: constant LR + EWA above the profile's threshold batch (Zhang et al. 2024), cosine below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.laws import batch as bl
from planner.schemas.batch import BatchLawProfile, PowerLaw

BETA2_REF = (0.99, 512)  # (beta2, batch in 512-token sequences): Zhang et al. scripts/train.py table
EWA_REF = (0.999, 1024)
BETA2_FLOOR = 0.95  # Zhang's table holds beta2 at 0.95 from 2048 sequences up


@dataclass(frozen=True)
class BatchPlan:
    batch_tokens: float
    batch_sequences: int
    seq_len: int
    critical_batch_tokens: float  # Zhang et al. 2024, 20% step overhead over linear scaling from B_ref
    critical_batch_definition: str
    mccandlish_bcrit_tokens: float | None  # 5·(CBS − 1.2·B_ref), 2x min steps and data; None: undefined (CBS ≤ 1.2·B_ref)
    b_opt_tokens: float  # Step Law loss-optimal batch
    learning_rate: float
    adam_beta2: float
    ewa_decay: float
    warmup_tokens: float
    warmup_steps: int
    n_steps: int
    schedule: str
    schedule_reason: str
    n_params_non_embedding: float
    sources: tuple[str, ...]
    b_ref_tokens: float = float(bl.ZHANG_B_REF * bl.ZHANG_SEQ_LEN)  # the CBS law's reference batch
    warnings: tuple[str, ...] = ()


def evaluate(law: PowerLaw, **variables: float) -> float:
    """A profile power law in TOKENS (sequences are converted with the law's sequence_length)."""
    value = float(bl.power_law(law.coefficient, dict(law.exponents), **variables))
    return value * law.sequence_length if law.output_unit == "sequences" else value


def extrapolation(law: PowerLaw, **variables: float) -> str | None:
    """How far the law's inputs lie outside its fitted_range, e.g. "D 57x above its fitted max 2.46e+10"; None inside
    (or the profile states no range). Values are in the law's input_units, as :func:`evaluate` takes them."""
    parts = []
    for name, (low, high) in (law.fitted_range or {}).items():
        value = variables.get(name)
        if value is None:
            continue
        if high is not None and value > high:
            parts.append(f"{name} {value / high:.3g}x above its fitted max {high:.3g}")
        elif low is not None and value < low:
            parts.append(f"{name} {low / value:.3g}x below its fitted min {low:.3g}")
    return "; ".join(parts) or None


def _extrapolation_warning(uses: list[tuple[str, str, PowerLaw, dict[str, float]]]) -> tuple[str, ...]:
    """One line naming every batch/LR law the plan evaluates outside its fitting data."""
    found = [f"{profile} {label} law ({where})" for profile, label, law, inputs in uses
             if (where := extrapolation(law, **inputs)) is not None]
    if not found:
        return ()
    return ("batch and LR laws extrapolated beyond their fitting data: " + "; ".join(found)
            + "; treat the batch size and learning rate as starting points for a sweep",)


def cbs_tokens(profile: BatchLawProfile, n_tokens: float) -> tuple[float, float | None]:
    """(Zhang CBS, McCandlish B_crit) in tokens at D, from the profile's D-law, converting definitions.

    B_crit is None where the CBS is at or below (1 + overhead)·B_ref: the CBS law is extrapolated below its
    reference batch and implies no positive B_crit (:func:`planner.laws.batch.mccandlish_bcrit`).
    """
    law = profile.law("cbs_d")
    value = evaluate(law, D=n_tokens)
    b_ref = b_ref_tokens(profile)
    overhead = profile.overhead or bl.ZHANG_OVERHEAD
    if profile.definition == "mccandlish":
        return float(bl.cbs_from_bcrit(value, b_ref, overhead)), value
    return value, bl.mccandlish_bcrit(value, b_ref, overhead)


def b_ref_tokens(profile: BatchLawProfile) -> float:
    """The profile's reference batch B_ref in tokens (Zhang's 256 x 512 when it gives none)."""
    if profile.reference_batch_sequences and profile.reference_sequence_length:
        return float(profile.reference_batch_sequences * profile.reference_sequence_length)
    return float(bl.ZHANG_B_REF * bl.ZHANG_SEQ_LEN)


def plan_batch(
    n_params: float,
    n_params_non_embedding: float,
    n_tokens: float,
    seq_len: int,
    cbs_profile: BatchLawProfile,
    b_opt_profile: BatchLawProfile,
    batch_tokens: float | None = None,
    unit: str = "tokens",
) -> BatchPlan:
    """Batch and optimizer settings; `batch_tokens` overrides the recommended batch (e.g. from a plan).
    unit: what the loss law's D counts ('bytes' for a byte-level law), for the warnings."""
    cbs, bcrit = cbs_tokens(cbs_profile, n_tokens)
    b_opt = evaluate(b_opt_profile.law("b_opt"), D=n_tokens)
    if batch_tokens is None:
        sequences = 2 ** max(0, math.floor(math.log2(max(min(cbs, b_opt) / seq_len, 1.0))))
    else:
        sequences = max(1, round(batch_tokens / seq_len))
    batch = float(sequences * seq_len)
    lr = evaluate(b_opt_profile.law("lr"), N=n_params_non_embedding, D=n_tokens)
    if batch < b_opt:
        lr = float(bl.lr_for_batch(lr, batch, b_opt))
    b512 = batch / bl.ZHANG_SEQ_LEN
    beta2 = max(BETA2_FLOOR, _horizon_decay(*BETA2_REF, b512))
    ewa = _horizon_decay(*EWA_REF, b512)
    threshold = cbs_profile.schedule_threshold_tokens or bl.ZHANG_SCHEDULE_THRESHOLD_TOKENS
    schedule, reason = bl.schedule_recommendation(batch, threshold)
    warmup_steps = math.ceil(n_params / batch)
    b_ref = b_ref_tokens(cbs_profile)
    notes = () if bcrit is not None else (_undefined_bcrit(cbs_profile, cbs, b_ref, unit),)
    notes += _extrapolation_warning([
        (cbs_profile.name, "CBS", cbs_profile.law("cbs_d"), {"D": n_tokens}),
        (b_opt_profile.name, "B_opt", b_opt_profile.law("b_opt"), {"D": n_tokens}),
        (b_opt_profile.name, "LR", b_opt_profile.law("lr"), {"N": n_params_non_embedding, "D": n_tokens}),
    ])
    return BatchPlan(
        batch_tokens=batch,
        batch_sequences=sequences,
        seq_len=seq_len,
        critical_batch_tokens=cbs,
        critical_batch_definition=f"{cbs_profile.name}: {cbs_profile.definition}",
        mccandlish_bcrit_tokens=bcrit,
        b_opt_tokens=b_opt,
        learning_rate=lr,
        adam_beta2=beta2,
        ewa_decay=ewa,
        warmup_tokens=float(n_params),
        warmup_steps=warmup_steps,
        n_steps=math.ceil(n_tokens / batch),
        schedule=schedule,
        schedule_reason=reason,
        n_params_non_embedding=n_params_non_embedding,
        sources=(cbs_profile.law("cbs_d").source, b_opt_profile.law("b_opt").source, b_opt_profile.law("lr").source),
        b_ref_tokens=b_ref,
        warnings=notes,
    )


def _undefined_bcrit(profile: BatchLawProfile, cbs: float, b_ref: float, unit: str) -> str:
    overhead = profile.overhead or bl.ZHANG_OVERHEAD
    return (f"McCandlish B_crit undefined: {profile.name} gives a CBS of {cbs:.3g} {unit}, at or below "
            f"{1 + overhead:g}·B_ref = {(1 + overhead) * b_ref:.3g} {unit}, i.e. the CBS law is extrapolated below "
            f"its reference batch, where CBS = {1 + overhead:g}·B_ref + {overhead:g}·B_crit has no positive "
            "B_crit; no batch-size token penalty can be derived")


def _horizon_decay(decay_ref: float, batch_ref: float, batch: float) -> float:
    """1 − (1 − decay_ref)·B/B_ref, kept above 0 (a horizon of at least ~2 steps)."""
    return max(0.5, 1.0 - (1.0 - decay_ref) * batch / batch_ref)
