"""Results of `planner check` (the JSON contract of `--format json`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from planner.schemas.base import SCHEMA_VERSION, Strict

Status = Literal["pass", "warn", "fail", "skip"]
ReportStatus = Literal["pass", "warn", "fail", "error"]  # error: a plan could not be read or resolved


class CheckResult(Strict):
    name: str
    status: Status
    value: float | None = None
    limit: float | None = None
    unit: str = ""
    reason: str
    key: str = Field(description="dotted plan key the check is about (its limit, or the input that broke it)")
    line: int | None = Field(default=None, description="1-based line of that key in the plan file")


class PlanMetrics(Strict):
    """What `--baseline` compares. A value that is not finite in double precision is null (never NaN/Infinity)."""

    n_params: float
    n_tokens: float = Field(description="tokens trained (training.tokens)")
    tokens_per_param: float | None
    predicted_loss: float | None = Field(description="the loss law at the law's D: the trained tokens less the penalty of a "
                                  "batch past the CBS, D·(1 + overhead(D)) = n_tokens")
    gpu_hours: float | None = None
    cost_usd: float | None = None
    wall_clock_s: float | None = None
    memory_per_gpu_gib: float | None = None
    batch_tokens: float | None = None
    critical_batch_tokens: float | None = Field(default=None, description="Zhang CBS at the law's D (as `recommend` "
                                                "evaluates it), not at the trained tokens")
    lifetime_flops: float | None
    optimum_lifetime_flops: float | None = None


class Change(Strict):
    metric: str
    baseline: float | None
    current: float | None
    delta: float | None
    relative: float | None


class PlanReport(Strict):
    file: str
    name: str
    status: Status
    checks: list[CheckResult]
    metrics: PlanMetrics | None = None
    law: str
    law_sha256: str
    confidence: float | None = None
    changes: list[Change] | None = None
    notes: list[str] = Field(default_factory=list, description="e.g. that the plan is new since the baseline ref")
    warnings: list[str] = Field(default_factory=list, description="e.g. that the baseline could not be read; "
                                "they do not change the status")


class PlanError(Strict):
    """A plan that could not be checked (unreadable, invalid, or naming an unknown profile)."""

    file: str
    status: Literal["error"] = "error"
    error: str = Field(description="the one-line message, naming file, line and key where known")
    hint: str
    line: int | None = Field(default=None, description="1-based line of the offending key in the plan file")
    exit_status: int = Field(default=3, exclude=True, description="the exit code this error alone gives")


class CheckReport(Strict):
    schema_version: int = SCHEMA_VERSION
    status: ReportStatus
    strict: bool
    plans: list[PlanReport | PlanError]

    @property
    def errors(self) -> list[PlanError]:
        return [p for p in self.plans if isinstance(p, PlanError)]

    @property
    def checked(self) -> list[PlanReport]:
        return [p for p in self.plans if isinstance(p, PlanReport)]
