"""Parse numbers people type ("2e12", "7B", "1.4T", "30d") and format numbers for people.

Pure: no I/O. Parsers raise :class:`planner.errors.UsageError` naming the flag and the bad value,
so every CLI flag rejects negative, zero, NaN, inf and unparsable input the same way.
"""

from __future__ import annotations

import math
import re

from planner.errors import UsageError

_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([kKMBGTPE]?)\s*$")
_DURATION = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE = re.compile(r"^\s*(\d+\.?\d*|\.\d+)\s*(s|min|m|h|d|w)?\s*$")


def parse_quantity(text: str | float, flag: str, *, allow_zero: bool = False) -> float:
    """A positive finite number, with an optional SI-style suffix: 2e12, 7B, 1.4T, 500M, 3.5k."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _NUMBER.match(str(text))
        if not match:
            raise UsageError(
                f"{flag}: cannot read {text!r} as a number",
                hint=f"write plain or scientific notation with an optional suffix k/M/B/T, e.g. {flag} 7B or 2e12",
            )
        value = float(match.group(1)) * _SUFFIX[match.group(2)]
    return check_positive(value, flag, allow_zero=allow_zero)


def check_positive(value: float, flag: str, *, allow_zero: bool = False) -> float:
    """Reject NaN, inf, negatives and (unless allowed) zero with a usage error naming the flag."""
    if math.isnan(value) or math.isinf(value):
        raise UsageError(f"{flag}: {value} is not a finite number", hint=f"give {flag} a finite positive value")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "greater than zero"
        raise UsageError(f"{flag}: must be {bound}, got {value:g}", hint=f"give {flag} a value {bound}")
    return value


def check_fraction(value: float, flag: str) -> float:
    """A utilisation in (0, 1]."""
    check_positive(value, flag)
    if value > 1:
        raise UsageError(f"{flag}: must be at most 1, got {value:g}", hint=f"{flag} is a fraction, e.g. 0.4 for 40%")
    return value


def parse_duration(text: str, flag: str) -> float:
    """Seconds from a number with a unit: '30d', '720h', '90min' (or '90m'), '3600s', '2w'.

    The unit is required: a bare '30' read as seconds once planned a 30-day run for 30 seconds.
    """
    forms = f"{flag} 30d, 720h, 90min (or 90m), 3600s or 2w"
    match = _DURATION_RE.match(str(text))
    if not match:
        raise UsageError(f"{flag}: cannot read {text!r} as a duration", hint=f"write a number and a unit, e.g. {forms}")
    if match.group(2) is None:
        raise UsageError(f"{flag}: {text.strip()!r} has no unit", hint=f"add one of s, min (or m), h, d, w, e.g. {forms}")
    return check_positive(float(match.group(1)) * _DURATION[match.group(2)], flag)


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """'70.0B params'-style rendering: 3 significant digits with k/M/B/T suffixes."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}{(' ' + unit) if unit else ''}"
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{suffix}{(' ' + unit) if unit else ''}"
    return f"{value:.{digits}g}{(' ' + unit) if unit else ''}"


def sci(value: float, digits: int = 3) -> str:
    """'3.2e23'-style rendering for FLOPs."""
    return f"{value:.{digits - 1}e}".replace("e+", "e")


def usd(value: float) -> str:
    """'$1.52M'-style rendering."""
    for suffix, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"${value / scale:.3g}{suffix}"
    return f"${value:,.2f}"


def duration(seconds: float) -> str:
    """'11.3 days'-style rendering."""
    for name, scale in (("years", 365.25 * 86400), ("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {name}"
    return f"{seconds:.3g} s"


def percent(fraction: float, digits: int = 3) -> str:
    return f"{100 * fraction:.{digits}g}%"
