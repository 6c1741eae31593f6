"""User-facing errors and the process exit codes they map to.

Every error a user can cause is a :class:`PlannerError` carrying a one-line message, a one-line
hint and an :class:`ExitStatus`. The CLI prints ``error: …`` and ``hint: …`` on stderr and exits
with the status; internal invariants stay ``assert``. This module imports nothing from planner.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Documented exit codes (README, "Exit codes")."""

    OK = 0
    INTERNAL = 1  # a bug: please report it (run with --debug for the traceback)
    USAGE = 2  # bad flags or values: negative, zero, NaN, inf, unparsable, conflicting
    CONFIG = 3  # a profile, plan or input data file is missing, unknown or malformed
    INFEASIBLE = 4  # the request cannot be met by the law (target <= E, floor above target, ...)
    FIT_FAILED = 5  # a fit did not converge or cannot identify its parameters
    PROBE_FAILED = 6  # calibration probes failed or too few finished to fit
    CHECK_FAILED = 7  # `planner check`: a limit failed (or a warning under --strict)
    INTERRUPTED = 130  # Ctrl-C


class PlannerError(Exception):
    """An error the user can fix; rendered as one ``error:`` and one ``hint:`` line."""

    exit_status: ExitStatus = ExitStatus.USAGE
    default_hint: str = "run the command with --help to see what it accepts"

    def __init__(self, message: str, hint: str | None = None, exit_status: ExitStatus | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint
        if exit_status is not None:
            self.exit_status = exit_status


class UsageError(PlannerError):
    exit_status = ExitStatus.USAGE


class ConfigError(PlannerError):
    exit_status = ExitStatus.CONFIG
    default_hint = "check the file named above; `planner profiles validate FILE` explains every field"


class InfeasibleError(PlannerError):
    exit_status = ExitStatus.INFEASIBLE
    default_hint = "raise the target loss, or lift the fixed size or budget that blocks it"


class FitError(PlannerError):
    exit_status = ExitStatus.FIT_FAILED
    default_hint = "add runs that span a wider range of model sizes and token counts"


class ProbeError(PlannerError):
    exit_status = ExitStatus.PROBE_FAILED
    default_hint = "see the failed probes in runs.jsonl; rerun the same command to resume"


class MissingExtra(PlannerError):
    exit_status = ExitStatus.USAGE
    default_hint = "pip install torch==2.13.0 && pip install -e '.[calibrate]'"
