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


def _compact_exp(text: str) -> str:
    """'7.22e+03' -> '7.22e3', '2.84e-05' -> '2.84e-5': Python's exponent without its sign and zero padding."""
    if "e" not in text:
        return text
    mantissa, exp = text.split("e")
    return f"{mantissa}e{int(exp)}"


def _general(value: float, digits: int) -> str:
    """`digits` significant digits: plain from 1e-4 up to 10**digits, else compact scientific ('1.23e15')."""
    return _compact_exp(f"{value:.{digits}g}")


def num(value: float, digits: int = 3) -> str:
    """A plain number to `digits` significant digits: '0.837', '6.82e-5' (never '6.82e-05' or '1e+03')."""
    return _general(value, digits) if math.isfinite(value) else f"{value:g}"


def _scaled(value: float, scales: tuple[tuple[str, float], ...], digits: int, top: float) -> tuple[str, str] | None:
    """(mantissa, suffix) for the largest scale the value reaches *after* rounding to `digits` significant
    digits, so that 999.7 reads '1k', never '1e+03'; None at or beyond `top` x the largest scale."""
    rounded = float(f"{value:.{digits}g}")
    if abs(rounded) >= top * scales[0][1]:
        return None
    for suffix, scale in scales:
        if abs(rounded) >= scale:
            return _general(rounded / scale, digits), suffix
    return None


_SI_SCALES = (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3))


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """'70.0B params'-style rendering: 3 significant digits with k/M/B/T suffixes; from 1000T on, '1.26e15'
    (never '1.26e+03T'); the suffix is chosen after rounding (999.7 is '1k', not '1e+03')."""
    tail = (" " + unit) if unit else ""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}{tail}"
    scaled = _scaled(value, _SI_SCALES, digits, 1e3)
    if scaled is not None:
        return f"{scaled[0]}{scaled[1]}{tail}"
    if abs(value) >= 1e3:
        return f"{sci(value, digits)}{tail}"
    return f"{_general(value, digits)}{tail}"


def sci(value: float, digits: int = 3) -> str:
    """'3.2e23'-style rendering for FLOPs ('3.20e23', '4.86e9'); zero is '0'."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return f"{value:g}"
    return _compact_exp(f"{value:.{digits - 1}e}")


def usd(value: float) -> str:
    """'$1.52M'-style rendering: k/M/B/T, from $1000T on '$1.26e15'; a positive amount under a cent is '<$0.01'."""
    if not math.isfinite(value):
        return f"${value:g}"
    if 0 < abs(value) < 0.005:
        return "<$0.01"
    scaled = _scaled(value, (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)), 3, 1e3)
    if scaled is not None:
        return f"${scaled[0]}{scaled[1]}"
    if abs(value) >= 1e3:
        return f"${sci(value)}"
    return f"${value:,.2f}"


def amount(value: float) -> str:
    """A count people read whole (GPU-hours): '1,234' up to a billion, then '5.21e11'; below 10, 2 significant
    digits ('0.35'), so that a short run does not read '0'."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 1e9:
        return sci(value)
    if abs(value) >= 9.5:
        return f"{value:,.0f}"
    return _general(value, 2)


def ratio(value: float) -> str:
    """A ratio such as tokens per parameter: one decimal from 0.1 to 1e5 ('20.3', '12,345.6'), above it
    '1.41e6' (never '142857142857142861824.0'), below it 2 significant digits ('0.036')."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 0.1 <= abs(value) < 1e5:
        return f"{value:,.1f}"
    return sci(value) if abs(value) >= 1e5 else _general(value, 2)


def factor(value: float) -> str:
    """A multiplicative factor, 3 significant digits: '12.3', '722', then '7.22e3' (never '7.22e+03')."""
    return _general(value, 3) if value < 1e3 else sci(value)


def near_one(value: float) -> str:
    """A decay rate or beta close to 1 with enough digits to tell it from 1: '0.95', '0.9998', and past four
    nines '1 − 5e-6' (0.999995 printed to 4 digits read '1')."""
    gap = 1.0 - value
    if gap <= 0 or not math.isfinite(value):
        return f"{value:g}"
    if gap < 1e-4:
        return f"1 − {_general(gap, 2)}"
    return f"{value:.{math.ceil(-math.log10(gap)) + 2}g}"


def plural(count: float, noun: str, plural_form: str | None = None) -> str:
    """'1 node', '64 nodes', '1,024 steps': the count with thousands separators and the noun agreeing."""
    word = noun if count == 1 else (plural_form or noun + "s")
    text = f"{count:,}" if isinstance(count, int) else f"{count:,g}"
    return f"{text} {word}"


def duration(seconds: float) -> str:
    """'11.3 days'-style rendering; the unit is chosen after rounding (59.99 min is '1 h'); beyond 1000 years
    '1,130 years' then '1.13e6 years'; below a second in ms ('0.0288 ms')."""
    if not math.isfinite(seconds):
        return f"{seconds:g} s"
    year = 365.25 * 86400
    if seconds >= 999.5 * year:
        years = seconds / year
        return f"{years:,.0f} years" if years < 1e6 else f"{sci(years)} years"
    scaled = _scaled(seconds, (("years", year), ("days", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)), 3, 1e9)
    if scaled is not None:
        return f"{scaled[0]} {scaled[1]}"
    return f"{_general(seconds * 1e3, 3)} ms" if seconds > 0 else "0 s"


def percent(fraction: float, digits: int = 3) -> str:
    """'12.3%'; past 1000% the factor-style '1.23e5%' (never '1.23e+05%')."""
    return f"{_general(100 * fraction, digits)}%"
