"""Loss-law profiles (`profiles/laws/*.yaml`): L(N, D) = E + A/N^alpha + B/D^beta with provenance."""

from typing import Literal

from pydantic import Field, model_validator

from planner.schemas.base import NonNegativeFloat, PositiveFloat, StrictInput


class LawConstants(StrictInput):
    E: NonNegativeFloat = Field(description="irreducible loss, nats per token (or per byte, see units)")
    A: PositiveFloat = Field(description="coefficient of the parameter term A/N^alpha")
    B: PositiveFloat = Field(description="coefficient of the data term B/D^beta")
    # Published exponents lie in 0.07-0.5; 10 is the upper edge of `planner fit`'s box, beyond any real law.
    alpha: PositiveFloat = Field(le=10, description="parameter exponent, at most 10")
    beta: PositiveFloat = Field(le=10, description="data exponent, at most 10")


class LawUnits(StrictInput):
    loss: str = Field(description="e.g. 'nats per token (MassiveText, SentencePiece 32k)'")
    params: Literal["total", "non_embedding"] = Field(
        description="which parameter count N the constants were fitted with (Chinchilla: total)"
    )
    tokens: str = Field(description="what D counts, e.g. 'training tokens' or 'training bytes'")


class Interval(StrictInput):
    low: float
    high: float


class LawUncertainty(StrictInput):
    """What is known about the constants' uncertainty; any subset may be given."""

    standard_errors: dict[str, NonNegativeFloat] | None = Field(default=None, description="per constant")
    intervals_95: dict[str, Interval] | None = Field(default=None, description="per constant, percentile")
    samples: list[list[float]] | None = Field(
        default=None, description="bootstrap draws, each [E, A, B, alpha, beta]; drive recommendation bands"
    )
    covariance_log: list[list[float]] | None = Field(
        default=None, description="5x5 covariance of (log E, log A, log B, alpha, beta)"
    )
    method: str | None = Field(default=None, description="how the uncertainty was obtained")

    @model_validator(mode="after")
    def _shapes(self) -> "LawUncertainty":
        for row in self.samples or []:
            if len(row) != 5:
                raise ValueError("each sample must be [E, A, B, alpha, beta]")
        cov = self.covariance_log
        if cov is not None and (len(cov) != 5 or any(len(r) != 5 for r in cov)):
            raise ValueError("covariance_log must be 5x5")
        return self


class LawProfile(StrictInput):
    schema_version: Literal[1] = 1
    kind: Literal["loss-law"] = "loss-law"
    name: str = Field(min_length=1, description="short id used with --law")
    title: str = Field(description="one line for people")
    form: Literal["chinchilla"] = Field(description="L = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2)")
    constants: LawConstants
    units: LawUnits
    dataset: str = Field(description="data and tokenizer the constants belong to")
    source: str = Field(min_length=1, description="paper, equation or table, or the fit that produced it")
    notes: str | None = None
    uncertainty: LawUncertainty | None = None
    provenance: dict[str, str | int | float | list[str] | list[float] | None] | None = Field(
        default=None, description="for fitted laws: input sha256, objective, grid, date, ..."
    )
