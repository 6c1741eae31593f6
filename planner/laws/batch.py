"""Batch-size and learning-rate laws: critical batch (Zhang, Kaplan), B_opt and η (DeepSeek, Step Law),
the McCandlish trade-off, conversions between critical-batch definitions, and optimizer scaling with B.

Legend:
    B        batch size (sequences or tokens: every function states which; never mix)
    B_crit   McCandlish et al. 2018 critical batch, E_min/S_min (training at B_crit costs 2x min steps and data)
    CBS      Zhang et al. 2024 critical batch: the B where steps exceed linear scaling from B_ref by `overhead`
    B_ref    Zhang's reference batch (256 sequences of 512 tokens)
    S, E     optimizer steps and examples (or tokens) needed to reach a fixed loss
    B_opt    loss-optimal batch at fixed budget (DeepSeek 2024, Step Law 2025): a third definition, not a CBS
    N        parameters: N_M = millions of NON-embedding parameters (Zhang); N = non-embedding count (Step Law)
    D        training tokens
    C        training FLOPs; DeepSeek's C = M·D with M = non-embedding FLOPs/token incl. attention (not 6N)
    L        loss in nats/token (Kaplan: WebText2, GPT-2 BPE)
    η (eta)  peak learning rate;  β2  Adam second-moment decay;  τ (tau)  EWA weight-average decay

Units: every function names the unit of its batch arguments and result in its docstring; a Zhang
CBS in sequences is of 512 tokens (ZHANG_SEQ_LEN). Definitions are never mixed: convert a Zhang CBS
to a McCandlish B_crit with :func:`bcrit_from_cbs` before using the McCandlish trade-off.
The default constants below are the published ones; profiles/batch/*.yaml carry the same numbers
with their provenance (a test keeps the two equal). Pure: no I/O. Functions take floats or numpy
arrays; plain arithmetic keeps numpy out of `planner recommend`'s start-up (it costs ~0.2 s to import).
"""

from __future__ import annotations

from dataclasses import dataclass


def _f(x):
    """A float for scalars; arrays pass through; lists and tuples become arrays."""
    if isinstance(x, (list, tuple)):
        return _numpy().asarray(x, dtype=float)
    return x if hasattr(x, "__array__") else float(x)


def _numpy():
    import numpy as np

    return np


def _maximum(x, floor: float):
    return max(x, floor) if isinstance(x, float) else _numpy().maximum(x, floor)


def _any(mask) -> bool:
    return bool(_numpy().any(mask)) if hasattr(mask, "__array__") else bool(mask)


def steps_ratio(B, B_crit):
    """S(B)/S_min = 1 + B_crit/B  (McCandlish et al. 2018, eq. 2.11; Kaplan et al. 2020, eq. 5.1)."""
    return 1.0 + _f(B_crit) / B


def examples_ratio(B, B_crit):
    """E(B)/E_min = 1 + B/B_crit  (McCandlish et al. 2018, eq. 2.11)."""
    return 1.0 + _f(B) / B_crit


def time_ratio_doubling(B, B_crit):
    """T(B)/T(B/2) at constant step time: (1 + B_crit/B) / (1 + 2·B_crit/B)  (from S(B) above)."""
    r = _f(B_crit) / B
    return (1.0 + r) / (1.0 + 2.0 * r)


def cbs_from_bcrit(B_crit, B_ref, overhead: float = 0.2):
    """Zhang CBS from McCandlish B_crit: CBS = (1 + overhead)·B_ref + overhead·B_crit.

    Zhang et al. 2024 define CBS by R(CBS) = (1 + overhead)·R(B_ref)·B_ref/CBS; with
    R(B) = S_min·(1 + B_crit/B) this solves in closed form (shared reference batch-laws.md §0, §1.1).
    B_crit, B_ref and the result share one unit (sequences or tokens).
    """
    return (1.0 + overhead) * _f(B_ref) + overhead * _f(B_crit)


def bcrit_from_cbs(CBS, B_ref, overhead: float = 0.2):
    """McCandlish B_crit from Zhang CBS: B_crit = (CBS − (1 + overhead)·B_ref)/overhead = 5·(CBS − 1.2·B_ref) at 20%.

    Plain algebra, defined only for CBS > (1 + overhead)·B_ref (see :func:`mccandlish_bcrit`); below that the
    result is negative and is no batch size. Planning code calls :func:`mccandlish_bcrit` instead.
    """
    return (_f(CBS) - (1.0 + overhead) * _f(B_ref)) / overhead


def mccandlish_bcrit(CBS: float, B_ref: float, overhead: float = 0.2) -> float | None:
    """McCandlish B_crit from a Zhang CBS, or None where the CBS implies none (CBS ≤ (1 + overhead)·B_ref).

    Derivation. With McCandlish's steps curve R(B) = S_min + E_min/B = S_min·(1 + B_crit/B), B_crit = E_min/S_min
    > 0, Zhang's CBS is the batch at which R exceeds linear scaling from B_ref by `overhead` (20%):
        R(CBS) = (1 + overhead)·R(B_ref)·B_ref/CBS
        ⇔ S_min·(CBS + B_crit)/CBS = (1 + overhead)·S_min·(B_ref + B_crit)/CBS
        ⇔ CBS = (1 + overhead)·B_ref + overhead·B_crit          (1.2·B_ref + 0.2·B_crit at 20%)
        ⇔ B_crit = (CBS − (1 + overhead)·B_ref)/overhead        (5·(CBS − 1.2·B_ref)).
    Because B_crit > 0, every CBS the definition can produce lies above (1 + overhead)·B_ref. A CBS law that
    predicts CBS ≤ (1 + overhead)·B_ref is extrapolated below its own reference batch (outside the linear
    regime the definition measures from), and no positive B_crit reproduces it: B_crit is undefined, and so
    is any batch-size penalty D·(1 + B/B_crit)/(1 + B_fit/B_crit) derived from it. We return None rather
    than the negative number (never a negative batch) or a substitute (e.g. 5·CBS), so that one value, or
    its absence, flows to the table, the JSON, the warnings and the token-overhead computation alike.
    B_ref, CBS and the result share one unit (sequences or tokens).
    """
    value = float(bcrit_from_cbs(CBS, B_ref, overhead))
    return value if value > 0 else None


# ---- constants (published values; profiles/batch/*.yaml hold the same with sources) --------------------

ZHANG_SEQ_LEN = 512  # Zhang et al. 2024 measure batches in sequences of 512 tokens
ZHANG_B_REF = 256  # sequences; Zhang's reference batch ("within the linear scaling regime")
ZHANG_OVERHEAD = 0.2  # 20% extra steps over linear scaling defines the CBS
ZHANG_D_LAW = (0.03525079883364447, 0.46820710865481246)  # derived on the Chinchilla path (batch-laws.md §6c)
ZHANG_N_LAW = (93.20, 0.47)  # published, N in millions of non-embedding params (paper lines 121/124)
ZHANG_FIXED_DATA_LAW = (621.341, 0.087)  # at D = 3.072e9 tokens (paper line 133, reviewer-quoted)
ZHANG_FIXED_DATA_TOKENS = 3.072e9
ZHANG_SCHEDULE_THRESHOLD_TOKENS = 1024.0 * 512  # constant LR + EWA beat cosine above this batch (reviews [S])
KAPLAN_B_STAR, KAPLAN_ALPHA_B = 2.0e8, 0.21  # Kaplan et al. 2020 eq. (5.3), tokens
DEEPSEEK_B_LAW = (0.2920, 0.3271)  # DeepSeek LLM §3.1 Formula (1), tokens
DEEPSEEK_LR_LAW = (0.3118, -0.1250)
STEPLAW_B_LAW = (0.58, 0.571)  # Li et al. 2025, tokens
STEPLAW_LR_LAW = (1.79, -0.713, 0.307)


def power_law(coefficient: float, exponents: dict[str, float], **variables):
    """value = coefficient · Π variables[k]^exponents[k]; the form of every law in profiles/batch.

    `variables` must name exactly the keys of `exponents` (e.g. N=..., D=...), in the units the
    profile's `input_units` give; the result is in the profile's `output_unit`.
    """
    if set(variables) != set(exponents):
        raise ValueError(f"law takes {sorted(exponents)}, got {sorted(variables)}")
    value = _f(coefficient)
    for name, exponent in exponents.items():
        value = value * _f(variables[name]) ** exponent
    return value


# ---- Zhang et al. 2024 (arXiv:2410.21676): CBS in SEQUENCES of 512 tokens ---------------------------


def zhang_cbs_from_tokens(D, coef: float = ZHANG_D_LAW[0], exp: float = ZHANG_D_LAW[1]):
    """Zhang CBS in sequences of 512 from training tokens: CBS = 0.03525·D^0.4682.

    Our refit of the authors' five Chinchilla-path points against D (batch-laws.md §1.2, §6c); not
    published, valid along D ≈ 20·N (measured up to 2.46e10 tokens). The paper's conclusion is that D
    drives the CBS, so this is the law to use off that path. Multiply by 512 for tokens.
    """
    return coef * _f(D) ** exp


def zhang_cbs_tokens(D, coef: float = ZHANG_D_LAW[0], exp: float = ZHANG_D_LAW[1]):
    """Zhang CBS in TOKENS from training tokens D: 512 · zhang_cbs_from_tokens(D)."""
    return ZHANG_SEQ_LEN * zhang_cbs_from_tokens(D, coef, exp)


def zhang_cbs_from_params(N_M, coef: float = ZHANG_N_LAW[0], exp: float = ZHANG_N_LAW[1]):
    """Zhang CBS in sequences of 512 on the Chinchilla path: B* = 93.20·N_M^0.47.

    N_M in MILLIONS of non-embedding parameters (N = 12·n_layer·d²); Zhang et al. 2024 (lines 121/124),
    reproduced from plots/chinchilla.ipynb as 93.197·N_M^0.46828 (batch-laws.md §1.1).
    """
    return coef * _f(N_M) ** exp


def zhang_cbs_fixed_data(N_M, coef: float = ZHANG_FIXED_DATA_LAW[0], exp: float = ZHANG_FIXED_DATA_LAW[1]):
    """Zhang CBS in sequences of 512 at FIXED data D = 3.072e9 tokens: B* = 621.341·N_M^0.087.

    N_M in millions of non-embedding parameters, fitted on 302M/604M/1.2B (paper line 133 as quoted by
    reviews, batch-laws.md §1.2 [S]). The small exponent is the paper's point: at fixed D, N barely matters.
    """
    return coef * _f(N_M) ** exp


# ---- Kaplan et al. 2020, DeepSeek LLM 2024, Step Law 2025 -------------------------------------------


def kaplan_bcrit(L, B_star: float = KAPLAN_B_STAR, alpha_B: float = KAPLAN_ALPHA_B):
    """McCandlish B_crit in TOKENS from loss: B_crit(L) = B*/L^(1/α_B), B* = 2e8, α_B = 0.21.

    Kaplan et al. 2020 eq. (5.3); L in nats/token on WebText2 with GPT-2 BPE: not transferable to
    another tokenizer or dataset without refitting B* (batch-laws.md §3).
    """
    return B_star / _f(L) ** (1.0 / alpha_B)


def deepseek_batch(C, coef: float = DEEPSEEK_B_LAW[0], exp: float = DEEPSEEK_B_LAW[1]):
    """DeepSeek B_opt in TOKENS: B_opt = 0.2920·C^0.3271, C = M·D FLOPs (DeepSeek LLM §3.1, Formula 1).

    M is non-embedding FLOPs/token incl. attention (planner.shapes.TransformerShape.deepseek_flops_per_token).
    """
    return coef * _f(C) ** exp


def deepseek_lr(C, coef: float = DEEPSEEK_LR_LAW[0], exp: float = DEEPSEEK_LR_LAW[1]):
    """DeepSeek η_opt = 0.3118·C^−0.1250, C = M·D FLOPs (DeepSeek LLM §3.1, Formula 1)."""
    return coef * _f(C) ** exp


def steplaw_batch(D, coef: float = STEPLAW_B_LAW[0], exp: float = STEPLAW_B_LAW[1]):
    """Step Law B_opt in TOKENS: B = 0.58·D^0.571, D training tokens (Li et al. 2025, arXiv:2503.04715)."""
    return coef * _f(D) ** exp


def steplaw_lr(N, D, law: tuple[float, float, float] = STEPLAW_LR_LAW):
    """Step Law η = 1.79·N^−0.713·D^0.307; N NON-embedding parameters, D tokens (Li et al. 2025)."""
    coef, exp_n, exp_d = law
    return coef * _f(N) ** exp_n * _f(D) ** exp_d


# ---- consequences of training away from the fitted batch --------------------------------------------


def tokens_needed_factor(B, B_crit, B_fit):
    """D_needed(B)/D = (1 + B/B_crit)/(1 + B_fit/B_crit): extra data to reach the same loss at batch B.

    From E(B) = E_min·(1 + B/B_crit) (McCandlish et al. 2018, eq. 2.11) when the loss law's D was
    reached at B_fit (batch-laws.md §5, item 2). B, B_fit and B_crit share one unit and B_crit is the
    McCANDLISH critical batch: convert a Zhang CBS with :func:`bcrit_from_cbs` first.
    """
    B_crit = _f(B_crit)
    return (1.0 + _f(B) / B_crit) / (1.0 + _f(B_fit) / B_crit)


def decay_for_batch(decay_ref, B, B_ref, floor: float | None = None):
    """Keep an EMA horizon fixed in SAMPLES: 1 − decay_new = (1 − decay_ref)·B/B_ref.

    An EMA with decay d averages over ~1/(1 − d) steps, i.e. B/(1 − d) samples; Zhang et al.'s
    per-batch β2 and EWA τ table keeps that roughly constant (batch-laws.md §1.3: EWA horizon ≈ 0.8-1.0M
    sequences for B ≥ 512, β2 horizon ≈ 40-130k sequences). B and B_ref in one unit. With `floor` the
    result is clipped from below (Zhang's table stops at β2 = 0.95 and τ = 0.99); without it, a horizon
    shorter than one step (decay ≤ 0) raises ValueError.
    """
    value = 1.0 - (1.0 - _f(decay_ref)) * _f(B) / B_ref
    if floor is not None:
        return _maximum(value, floor)
    if _any(value <= 0.0):
        raise ValueError("batch too large for this reference decay: the horizon would be under one step")
    return value


def beta2_for_batch(beta2_ref, B, B_ref, floor: float | None = None):
    """Adam β2 for batch B with the β2 horizon fixed in samples (see :func:`decay_for_batch`).

    Zhang et al. 2024 (scripts/train.py): β2 = 0.995 at 256 sequences, 0.99 at 512; their table then
    floors at 0.95 from 2048 sequences, so pass floor=0.95 to follow it.
    """
    return decay_for_batch(beta2_ref, B, B_ref, floor)


def ewa_decay_for_batch(tau_ref, B, B_ref, floor: float | None = None):
    """EWA decay τ for batch B with the averaging horizon fixed in samples (Zhang: 0.999 at 1024 → 0.998 at 2048)."""
    return decay_for_batch(tau_ref, B, B_ref, floor)


def lr_for_batch(lr_ref, B, B_ref):
    """Adam peak LR for batch B: η = η_ref·√(B/B_ref), valid for B ≪ B_noise.

    Square-root scaling: Surge (Li et al. 2024, arXiv:2405.14578) eq. (4), the small-batch limit of
    ε_opt(B) = ε_max/(½(√(B_noise/B) + √(B/B_noise))); Malladi et al. 2022; used by Merrill et al. 2025 §3.1.
    Above B_noise the optimal Adam LR stops growing (Surge eq. 15), so do not extrapolate past the CBS.
    """
    return _f(lr_ref) * (_f(B) / B_ref) ** 0.5


def warmup_steps(warmup_samples, B):
    """Warmup fixed in SAMPLES: steps = ceil(warmup_samples/B), both in one unit (sequences or tokens).

    Zhang et al. 2024: t_warmup = warmup_ratio × chinchilla_samples / B, warmup_ratio 0.25 (batch-laws.md §1.3).
    """
    ratio = _f(warmup_samples) / _f(B)
    return ratio.__ceil__() * 1.0 if isinstance(ratio, float) else _numpy().ceil(ratio)


def schedule_recommendation(
    B_tokens: float, threshold_tokens: float = ZHANG_SCHEDULE_THRESHOLD_TOKENS
) -> tuple[str, str]:
    """("constant+ewa" | "cosine", reason) for a batch of B_tokens TOKENS.

    Zhang et al. 2024 report constant LR + EWA matching cosine/WSD and beating cosine at large batch
    (≳ 1024 sequences × 512 = 0.52M tokens, reviews [S]); constant LR also lets a run continue past its
    planned horizon. Below the threshold a cosine decay to ~10% is the well-tested default.
    """
    if B_tokens >= threshold_tokens:
        return "constant+ewa", (
            f"batch {B_tokens:.3g} tokens >= {threshold_tokens:.3g}: Zhang et al. 2024 find constant LR with an EWA of "
            "the weights matches or beats cosine at large batch, and the run can be extended"
        )
    return "cosine", (
        f"batch {B_tokens:.3g} tokens < {threshold_tokens:.3g}: below the large-batch regime where constant LR + EWA "
        "wins (Zhang et al. 2024); cosine decay is the well-tested default"
    )


@dataclass(frozen=True)
class BatchHyperparameters:
    """Optimizer settings for one batch size, scaled from a reference run (batch-laws.md §5 item 3)."""

    batch_tokens: float
    lr: float
    beta2: float
    ewa_decay: float
    warmup_steps: int
    schedule: str  # "constant+ewa" | "cosine"
    schedule_reason: str


def hyperparameters_for_batch(
    B_tokens: float,
    B_ref_tokens: float,
    lr_ref: float,
    beta2_ref: float,
    tau_ref: float,
    warmup_tokens: float,
    floors: tuple[float, float] | None = (0.95, 0.99),
) -> BatchHyperparameters:
    """Scale a reference run's (η, β2, τ) measured at B_ref_tokens to B_tokens (all batches in TOKENS).

    η ∝ √B (:func:`lr_for_batch`), β2 and τ horizons fixed in samples (:func:`decay_for_batch`, clipped
    at `floors` = Zhang's table minima β2 0.95, τ 0.99), warmup fixed in tokens, schedule from
    :func:`schedule_recommendation`. Example reference (Zhang et al. 2024): B_ref = 256 × 512 tokens,
    β2 = 0.995, τ = 0.9995, η = 3.16e-3.
    """
    beta2_floor, tau_floor = floors if floors is not None else (None, None)
    schedule, reason = schedule_recommendation(B_tokens)
    return BatchHyperparameters(
        batch_tokens=float(B_tokens),
        lr=float(lr_for_batch(lr_ref, B_tokens, B_ref_tokens)),
        beta2=float(beta2_for_batch(beta2_ref, B_tokens, B_ref_tokens, beta2_floor)),
        ewa_decay=float(ewa_decay_for_batch(tau_ref, B_tokens, B_ref_tokens, tau_floor)),
        warmup_steps=int(warmup_steps(warmup_tokens, B_tokens)),
        schedule=schedule,
        schedule_reason=reason,
    )
