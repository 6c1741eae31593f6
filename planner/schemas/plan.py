"""A committed training plan (`plan.yaml`) that `planner check` guards in CI."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from planner.defaults import MIN_PARAMS  # README "Bounds": the smallest model any loss law is fitted to
from planner.schemas.base import Fraction, NonNegativeFloat, PositiveFloat, StrictInput, _is_number


def _takes_text(annotation) -> bool:
    """str, or a union / Optional / Annotated holding it."""
    return annotation is str or any(_takes_text(arg) for arg in get_args(annotation))


class _PlanPart(StrictInput):
    """A plan section (StrictInput: booleans for numbers are refused; here strings too).

    A quoted number (`n_gpus: "512"`) is refused rather than converted: plans are read with a loader that
    takes `2e12` as the number YAML 1.2 makes it (planner.plan_io), so only quoting yields a string. Profiles
    keep pydantic's lax conversion (a profile may write `1e9`, which YAML 1.1 reads as text).
    """

    @field_validator("*", mode="before")
    @classmethod
    def _no_strings(cls, value, info: ValidationInfo):
        annotation = cls.model_fields[info.field_name].annotation
        if isinstance(value, str) and _is_number(annotation) and not _takes_text(annotation):
            raise PydanticCustomError("str_not_number", "Input should be a number, not the string {value}",
                                      {"value": repr(value)})
        return value


class Shape(_PlanPart):
    n_layers: int = Field(ge=1)
    d_model: int = Field(ge=1)
    n_heads: int = Field(ge=1)
    d_ff: int = Field(ge=1, description="MLP width (SwiGLU inner width for gated MLPs)")
    vocab_size: int = Field(ge=1)
    n_kv_heads: int | None = Field(default=None, ge=1, description="grouped-query attention; null = n_heads")

    @field_validator("n_heads")
    @classmethod
    def _heads_divide_width(cls, n_heads: int, info: ValidationInfo) -> int:
        d_model = info.data.get("d_model")
        if d_model is not None and d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not a multiple of n_heads {n_heads} (head dimension "
                             f"d_model / n_heads must be whole)")
        return n_heads

    @field_validator("n_kv_heads")
    @classmethod
    def _kv_heads_divide_heads(cls, n_kv_heads: int | None, info: ValidationInfo) -> int | None:
        n_heads = info.data.get("n_heads")
        if n_kv_heads is not None and n_heads is not None and n_heads % n_kv_heads:
            raise ValueError(f"n_heads {n_heads} is not a multiple of n_kv_heads {n_kv_heads} (each key/value "
                             f"head serves a whole group of query heads)")
        return n_kv_heads


class Model(_PlanPart):
    params: PositiveFloat | None = Field(default=None, description="TOTAL parameters (embeddings included), at "
                                         "least 1,000")
    shape: Shape | None = Field(default=None, description="alternatively the shape; params are then derived")

    @field_validator("params")
    @classmethod
    def _floor(cls, params: float | None) -> float | None:
        if params is not None and params < MIN_PARAMS:
            raise ValueError(f"{params:g} is below the floor of {MIN_PARAMS:,.0f} parameters (the smallest model "
                             "any loss law is fitted to)")
        return params

    @model_validator(mode="after")
    def _one(self) -> Model:
        if self.params is None and self.shape is None:
            raise ValueError("give model.params or model.shape")
        return self


class Training(_PlanPart):
    tokens: PositiveFloat = Field(description="training tokens, at least one step (planner.plan_io checks it)")
    seq_len: int = Field(default=4096, ge=1)
    global_batch_tokens: PositiveFloat | None = Field(default=None, description="null = the recommended batch; "
                                                      "at least one sequence of seq_len")
    gpu: str = Field(description="accelerator profile name or path")
    n_gpus: int = Field(ge=1)
    dtype: str = "bf16"
    zero_stage: Literal[0, 1, 2, 3] = 1
    recompute: Literal["none", "selective", "full"] = "selective"
    mfu: Fraction | None = Field(default=None, description="measured MFU; null = the accelerator's prior")
    price_usd_per_hour: PositiveFloat | None = Field(default=None, description="null = the profile's price")

    @field_validator("global_batch_tokens")
    @classmethod
    def _one_sequence(cls, batch: float | None, info: ValidationInfo) -> float | None:
        seq_len = info.data.get("seq_len")
        if batch is not None and seq_len is not None and batch < seq_len:
            raise ValueError(f"{batch:g} tokens is less than one sequence (seq_len {seq_len}): at least {seq_len}")
        return batch


class Laws(_PlanPart):
    loss: str = Field(default="besiroglu-2024", description="loss-law profile name or path (e.g. a calibrated law)")
    batch: str = Field(default="zhang-2024", description="critical-batch law profile name or path")


class Inference(_PlanPart):
    tokens: NonNegativeFloat = Field(description="lifetime inference tokens (input + output)")


class Limits(_PlanPart):
    """Every limit is optional; a check without its limit is skipped."""

    max_gpu_hours: PositiveFloat | None = None
    max_cost_usd: PositiveFloat | None = None
    max_wall_clock_s: PositiveFloat | None = None
    target_loss: PositiveFloat | None = Field(default=None, description="predicted loss must be at or below this")
    max_tokens_per_param: PositiveFloat | None = None
    max_over_optimum: NonNegativeFloat | None = Field(
        default=None,
        description="lifetime FLOPs may exceed the inference-aware optimum at the same loss by this fraction",
    )
    max_batch_over_cbs: PositiveFloat | None = Field(default=None, description="global batch / CBS(D), at most")
    min_memory_headroom: NonNegativeFloat | None = Field(
        default=None, lt=1, description="fraction of GPU memory left free, at least (e.g. 0.1); below 1"
    )
    warn_fraction: Fraction = Field(default=0.9, description="warn when a budget uses more than this share of its limit")


class PlanFile(_PlanPart):
    schema_version: Literal[1] = 1
    name: str = Field(min_length=1)
    model: Model
    training: Training
    laws: Laws = Laws()
    inference: Inference | None = None
    limits: Limits
