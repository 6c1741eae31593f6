"""Batch-size-law profiles (`profiles/batch/*.yaml`): power laws for the batch size and learning rate.

Every law is `value = coefficient · Π variable^exponent` over the variables it names, with the unit of
every input and of the output written down, and the profile states which critical-batch definition it
follows: "critical batch size" means different things in different papers (shared reference
batch-laws.md §0), so constants are never mixed across definitions without converting
(`planner.laws.batch.bcrit_from_cbs`).
"""

from typing import Literal

from pydantic import Field, model_validator

from planner.schemas.base import Fraction, PositiveFloat, StrictInput

Definition = Literal["zhang-20pct", "mccandlish", "b-opt"]
Variable = Literal["N", "D", "C", "L"]
Verification = Literal["P", "P-code", "S", "U", "derived"]


class PowerLaw(StrictInput):
    """value = coefficient · Π variables[k]^exponents[k] (batch-laws.md §0 cheat sheet)."""

    id: str = Field(min_length=1, description="e.g. cbs_d, cbs_n, cbs_fixed_data, b_crit_loss, b_opt, lr")
    quantity: Literal["batch", "learning_rate"]
    coefficient: PositiveFloat
    exponents: dict[Variable, float] = Field(min_length=1, description="exponent per input variable")
    input_units: dict[Variable, str] = Field(
        description="unit of each input, e.g. N: 'millions of non-embedding parameters', D: 'training tokens'"
    )
    output_unit: Literal["tokens", "sequences", "dimensionless"] = Field(
        description="batch: tokens or sequences (then sequence_length says how long); learning rate: dimensionless"
    )
    sequence_length: int | None = Field(default=None, ge=1, description="tokens per sequence when output is sequences")
    fixed: dict[str, float] | None = Field(
        default=None, description="conditions the law holds at, e.g. {tokens: 3.072e9} for Zhang's fixed-data law"
    )
    regime: str = Field(description="where the law was fitted (sizes, data, context, optimizer)")
    fitted_range: dict[Variable, tuple[PositiveFloat | None, PositiveFloat | None]] | None = Field(
        default=None,
        description="[low, high] of each input over the law's fitting data, in input_units (null: not stated); "
        "a plan outside it is warned about as an extrapolation",
    )
    source: str = Field(min_length=1, description="paper, equation or table, or the refit that produced it")
    verification: Verification = Field(description="batch-laws.md levels: P, P-code, S, U; derived = our refit")
    notes: str | None = None

    @model_validator(mode="after")
    def _units(self) -> "PowerLaw":
        if set(self.input_units) != set(self.exponents):
            raise ValueError("input_units must name exactly the variables in exponents")
        for name, (low, high) in (self.fitted_range or {}).items():
            if name not in self.exponents:
                raise ValueError(f"fitted_range names {name}, which the law does not take")
            if low is not None and high is not None and low > high:
                raise ValueError(f"fitted_range of {name}: low {low:g} is above high {high:g}")
        if self.output_unit == "sequences" and self.sequence_length is None:
            raise ValueError("a law in sequences must give sequence_length")
        if (self.quantity == "learning_rate") != (self.output_unit == "dimensionless"):
            raise ValueError("learning rates are dimensionless; batch laws are in tokens or sequences")
        return self


class HyperparameterRow(StrictInput):
    """One column of a per-batch-size optimizer table (Zhang et al. 2024, scripts/train.py)."""

    batch_sequences: int = Field(ge=1)
    beta2: Fraction = Field(description="Adam beta2")
    ewa_decay: Fraction = Field(description="EWA weight-average decay tau")


class BatchLawProfile(StrictInput):
    schema_version: Literal[1] = 1
    kind: Literal["batch-law"] = "batch-law"
    name: str = Field(min_length=1, description="short id, e.g. zhang-2024")
    title: str
    definition: Definition = Field(
        description="zhang-20pct: B where steps exceed linear scaling from B_ref by `overhead`; "
        "mccandlish: B_crit = E_min/S_min (2x min data and steps); b-opt: loss-optimal batch"
    )
    definition_text: str = Field(description="the definition in words, with its source")
    params: Literal["total", "non_embedding"] | None = Field(
        description="which parameter count N the laws use; null when no law takes N"
    )
    laws: list[PowerLaw] = Field(min_length=1)
    overhead: Fraction | None = Field(default=None, description="zhang-20pct: the step overhead, 0.2")
    reference_batch_sequences: int | None = Field(default=None, ge=1, description="zhang-20pct: B_ref in sequences")
    reference_sequence_length: int | None = Field(default=None, ge=1, description="tokens per reference sequence")
    hyperparameters: list[HyperparameterRow] | None = Field(
        default=None, description="per-batch beta2 / EWA table the law was measured with"
    )
    schedule_threshold_tokens: PositiveFloat | None = Field(
        default=None, description="batch (tokens) above which constant LR + EWA beat cosine in this paper"
    )
    source: list[str] = Field(min_length=1)
    notes: str | None = None
    intervals: dict | None = Field(default=None, description="bootstrap intervals of a fitted law (planner fit-cbs)")
    provenance: dict[str, str | int | float | None] | None = Field(
        default=None, description="for fitted laws: input file, sha256, date"
    )

    @model_validator(mode="after")
    def _zhang_reference(self) -> "BatchLawProfile":
        if self.definition == "zhang-20pct":
            missing = [
                k
                for k in ("overhead", "reference_batch_sequences", "reference_sequence_length")
                if getattr(self, k) is None
            ]
            if missing:
                raise ValueError(f"a zhang-20pct profile must give {', '.join(missing)}")
        ids = [law.id for law in self.laws]
        if len(ids) != len(set(ids)):
            raise ValueError("law ids must be unique within a profile")
        return self

    def law(self, law_id: str) -> "PowerLaw":
        """The law with this id; KeyError lists the ids this profile has."""
        for law in self.laws:
            if law.id == law_id:
                return law
        raise KeyError(f"{self.name} has no law {law_id!r} (has: {', '.join(x.id for x in self.laws)})")
