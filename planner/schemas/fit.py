"""Requests of `planner fit` (validated flags; the file itself is read by planner.observations)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from planner.schemas.base import NonNegativeFloat, PositiveFloat, Strict

DEFAULT_BUDGETS = (1e21, 1e22, 1e23, 1e24)


class FitRequest(Strict):
    objective: Literal["huber", "mse", "asymmetric", "mle"] = Field(
        default="huber", description="huber: Hoffmann et al. App. D.2; mle: Besiroglu et al. 2024"
    )
    drop_top_loss: int = Field(default=0, ge=0, description="drop the K highest-loss runs first")
    bootstrap: int = Field(default=0, ge=0, description="resamples of whole runs; 0 = none")
    seed: int = 0
    budgets: list[PositiveFloat] = Field(default=list(DEFAULT_BUDGETS), description="FLOPs for N_opt/D_opt bands")
    target_loss: PositiveFloat | None = Field(default=None, description="also band the inference-aware N, D here")
    inference_tokens: NonNegativeFloat = 0.0
    workers: int = Field(default=1, ge=1)

    @property
    def n_params(self) -> int:
        """Free parameters of the objective (the MLE adds the scale sigma)."""
        return 6 if self.objective == "mle" else 5
