"""Request and result of `planner recommend` (the JSON contract; keys listed in the README are stable)."""

from typing import ClassVar, Literal

from pydantic import Field, model_serializer, model_validator

from planner.schemas.base import SCHEMA_VERSION, Fraction, NonNegativeFloat, PositiveFloat, Strict
from planner.schemas.laws import LawUnits

# Sardana et al. 2024 §6 defaults (their code, `cost_calculator.py`): the LMSys average request.
DEFAULT_INPUT_TOKENS = 70.0
DEFAULT_OUTPUT_TOKENS = 215.0
DEFAULT_PREFILL_MFU = 0.5
DEFAULT_DECODE_MFU = 0.01


class ProfileRef(Strict):
    """Which profile file a recommendation read: its name, the sha256 of its bytes and its path; builtin false
    for a user's file (a path, or a name found in $PLANNER_PROFILES_DIR)."""

    name: str
    sha256: str
    path: str
    builtin: bool

    @property
    def label(self) -> str:
        """'zhang-2024 (sha256 0123456789abcdef…)'; a user's file also gives its path."""
        where = "" if self.builtin else f"{self.path}, "
        return f"{self.name} ({where}sha256 {self.sha256[:16]}…)"


class CostInputs(Strict):
    """What the cost objective needs; every field resolved (profile defaults filled in) before the core runs."""

    train_gpu: str
    inference_gpu: str
    train_dtype: str
    inference_dtype: str
    train_peak_flops_per_s: PositiveFloat
    inference_peak_flops_per_s: PositiveFloat
    train_mfu: Fraction
    prefill_mfu: Fraction
    decode_mfu: Fraction
    train_price_usd_per_hour: PositiveFloat
    inference_price_usd_per_hour: PositiveFloat
    train_gpu_profile: ProfileRef | None = Field(default=None, description="the training accelerator's profile")
    inference_gpu_profile: ProfileRef | None = Field(default=None, description="the serving accelerator's profile")


class InferenceDemand(Strict):
    """Lifetime inference demand. `tokens` = input + output; the split matters only for the cost objective."""

    tokens: NonNegativeFloat
    input_tokens: NonNegativeFloat
    output_tokens: NonNegativeFloat
    requests: NonNegativeFloat | None = None
    split_assumed: bool = Field(
        default=False, description="true when only a total was given and the 70/215 in/out split was assumed"
    )


class RecommendRequest(Strict):
    """A validated `recommend` question: exactly one of target_loss, compute_flops, n_params."""

    target_loss: PositiveFloat | None = None
    compute_flops: PositiveFloat | None = None
    n_params: PositiveFloat | None = None
    n_tokens: PositiveFloat | None = None
    inference: InferenceDemand
    objective: Literal["flops", "cost"] = "flops"
    cost: CostInputs | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> "RecommendRequest":
        given = [k for k in ("target_loss", "compute_flops", "n_params") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("exactly one of target_loss, compute_flops, n_params is required")
        if self.n_tokens is not None and self.n_params is None:
            raise ValueError("n_tokens is only meaningful together with n_params")
        if self.objective == "cost" and self.cost is None:
            raise ValueError("the cost objective needs cost inputs")
        return self

    @property
    def mode(self) -> str:
        if self.target_loss is not None:
            return "target_loss"
        if self.compute_flops is not None:
            return "compute"
        return "evaluate" if self.n_tokens is not None else "params"


class CostBreakdown(Strict):
    train: float | None = Field(description="USD to train; None when no price is known")
    inference: float | None = Field(default=None, description="lifetime serving USD (cost objective only)")
    total: float | None = None


class BaselineCost(Strict):
    total: float


class Baseline(Strict):
    n_params: float
    n_tokens: float
    total_flops: float
    train_flops: float
    inference_flops: float
    description: str
    cost_usd: BaselineCost | None = None


class _OmitsUnset(Strict):
    """Optional keys added after the JSON contract was fixed: written only when set, so documents that do not
    need them (the shipped published laws) stay byte-identical."""

    omit_if_none: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_none(self, handler):
        data = handler(self)
        for key in self.omit_if_none:
            if data.get(key) is None:
                data.pop(key, None)
        return data


class FittedRange(Strict):
    """The D/N range a law was fitted at, and where that was read."""

    low: float
    high: float
    source: str


class LawIdentity(_OmitsUnset):
    """The law a recommendation used. units/dataset are given when they are not the shipped laws'
    (nats per token of MassiveText, D in training tokens); flags when the law's fit raised any."""

    omit_if_none = ("units", "dataset", "flags", "fitted_tokens_per_param", "fitted_seq_len", "fitted_vocab_size")

    name: str
    sha256: str
    path: str
    source: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    params_counted: str
    uncertainty: str | None = Field(default=None, description="what is known of the constants' uncertainty")
    units: LawUnits | None = Field(default=None, description="the law's units, when not the published token-level ones")
    dataset: str | None = Field(default=None, description="data and tokenizer, when not the published laws'")
    flags: list[str] | None = Field(default=None, description="the fit's flags (e.g. unidentified constants)")
    fitted_tokens_per_param: FittedRange | None = Field(default=None, description="D/N range of the fit, when known")
    fitted_seq_len: int | None = Field(default=None, description="sequence length of the fit's runs, when known")
    fitted_vocab_size: int | None = Field(default=None, description="vocabulary of the fit's runs, when known")

    @property
    def d_unit(self) -> str:
        """What the law's D counts, as a plural noun for labels: 'bytes' for a byte-level law, else 'tokens'."""
        return "bytes" if self.units is not None and "byte" in self.units.tokens.lower() else "tokens"


class Band(Strict):
    """Percentiles over bootstrap draws; None: unbounded (the percentile falls among draws that cannot
    reach the target at any finite size, counted as +inf)."""

    p5: float | None
    p50: float | None
    p95: float | None


class Intervals(Strict):
    """5/50/95% bands of the recommendation over the law's bootstrap samples."""

    n_samples: int
    n_infeasible: int
    n_params: Band
    n_tokens: Band
    train_flops: Band
    total_flops: Band
    loss: Band
    gpu_hours: Band | None = Field(default=None, description="the GPU plan's GPU-hours at each draw's N and D")
    cost_usd: Band | None = Field(default=None, description="the GPU plan's training USD at each draw's N and D")


class Parallelism(Strict):
    data: int
    tensor: int
    pipeline: int
    zero_stage: int
    micro_batch: int = Field(description="sequences per GPU per micro-step")
    grad_accum: int


class TradeoffRow(Strict):
    n_gpus: int
    batch_tokens: float
    wall_clock_s: float
    gpu_hours: float
    cost_usd: float | None
    token_overhead_fraction: float | None = Field(
        description="extra tokens needed when the batch exceeds the CBS; null when B_crit is undefined"
    )


class BatchDetail(_OmitsUnset):
    """How the batch and optimizer settings were chosen (batch-laws.md §5)."""

    omit_if_none = ("law_flags", "cbs_law", "lr_law")

    critical_batch_definition: str
    mccandlish_bcrit_tokens: float | None = Field(
        description="McCandlish B_crit (2x min steps and data), tokens; null where the CBS law implies none "
        "(CBS <= 1.2·B_ref: extrapolated below its reference batch)"
    )
    b_opt_tokens: float = Field(description="Step Law loss-optimal batch, tokens")
    warmup_tokens: float
    warmup_steps: int
    n_steps: int
    schedule_reason: str
    n_params_non_embedding: float
    sources: list[str]
    law_flags: list[str] | None = Field(default=None, description="the critical-batch law's flags, when it has any")
    cbs_law: ProfileRef | None = Field(default=None, description="the critical-batch (--batch-law) profile")
    lr_law: ProfileRef | None = Field(default=None, description="the B_opt and learning-rate law profile (Step Law)")


class MemoryDetail(Strict):
    weights_gib: float
    gradients_gib: float
    optimizer_gib: float
    activations_gib: float
    logits_gib: float
    total_gib: float
    usable_gib: float
    capacity_gib: float


class GpuPlanDetail(Strict):
    mode: str
    dtype: str
    n_nodes: int
    mfu: float
    mfu_source: str
    peak_flops_per_s: float
    price_usd_per_hour: float | None
    recompute: str
    shape: dict[str, int]
    n_tokens_needed: float
    token_overhead_fraction: float | None = Field(description="null: the batch exceeds the CBS and B_crit is undefined")
    training_flops: float
    memory: MemoryDetail
    cost_usd: float | None
    hardware_profile: ProfileRef | None = Field(default=None, description="the accelerator profile the plan read")
    attention_flops_factor: float | None = Field(
        default=None, description="(6N + 12·n_layers·d_model·seq_len)/6N: training FLOPs per token with attention "
        "over the 6N the wall-clock and MFU count (PaLM App. B)")


class RecommendResult(Strict):
    schema_version: int = SCHEMA_VERSION
    mode: str
    objective: str
    n_params: float
    n_tokens: float
    tokens_per_param: float
    loss: float
    train_flops: float
    inference_flops: float
    total_flops: float
    baseline: Baseline
    savings_fraction: float
    law: LawIdentity
    inference: InferenceDemand
    effective_inference_tokens: float | None = None
    cost_usd: CostBreakdown | None = None
    cost_inputs: CostInputs | None = None
    intervals: Intervals | None = None
    batch_size_tokens: float | None = None
    batch_size_sequences: int | None = None
    critical_batch_tokens: float | None = Field(default=None, description="Zhang et al. 2024 20%-overhead CBS")
    learning_rate: float | None = None
    adam_beta2: float | None = None
    ewa_decay: float | None = None
    schedule: str | None = None
    n_gpus: int | None = None
    gpu: str | None = None
    parallelism: Parallelism | None = None
    memory_per_gpu_gib: float | None = None
    wall_clock_s: float | None = None
    gpu_hours: float | None = None
    tradeoff: list[TradeoffRow] | None = None
    batch: BatchDetail | None = None
    gpu_plan: GpuPlanDetail | None = None
    assumptions: list[str]
    warnings: list[str] = Field(default_factory=list)
