from __future__ import annotations

import pytest

from planner import units
from planner.errors import UsageError


@pytest.mark.parametrize(
    "text, value",
    [("2e12", 2e12), ("7B", 7e9), ("1.4T", 1.4e12), ("500M", 5e8), ("3.5k", 3500.0), (" 70B ", 7e10), ("1e3M", 1e9)],
)
def test_parse_quantity(text, value):
    assert units.parse_quantity(text, "--x") == value


@pytest.mark.parametrize("text", ["", "7X", "B7", "nan", "inf", "-1", "0", "1e999", "1,000", "two"])
def test_parse_quantity_rejects(text):
    with pytest.raises(UsageError) as exc:
        units.parse_quantity(text, "--x")
    assert exc.value.message.startswith("--x")


@pytest.mark.parametrize(
    "text, seconds",
    [("30d", 2592000.0), ("12h", 43200.0), ("720h", 2592000.0), ("90min", 5400.0), ("90m", 5400.0),
     ("3600s", 3600.0), ("2w", 1209600.0), (" 1.5 d ", 129600.0)],
)
def test_parse_duration(text, seconds):
    assert units.parse_duration(text, "--deadline") == seconds


@pytest.mark.parametrize("text", ["30", "60", "0d", "-5d", "", "soon", "30y", "1e3s", "nan"])
def test_parse_duration_needs_a_positive_number_and_a_unit(text):
    """A bare number was once read as seconds: `--deadline 30` planned 98,560 GPUs to finish in 30 s."""
    with pytest.raises(UsageError) as exc:
        units.parse_duration(text, "--deadline")
    assert exc.value.message.startswith("--deadline")
    if text in ("30", "60"):
        assert "no unit" in exc.value.message and "30d" in exc.value.hint and "3600s" in exc.value.hint


def test_formatting():
    assert units.si(7.0e10, "params") == "70B params"
    assert units.sci(3.2e23) == "3.20e23"
    assert units.usd(1.518e7) == "$15.2M"
    assert units.duration(11.3 * 86400) == "11.3 days"


@pytest.mark.parametrize(
    "fn, value, text",
    [
        # suffixes chosen after rounding, scientific past 1000T, never Python's "e+03"
        (units.si, 999.7, "1k"), (units.si, 1e23, "1.00e23"), (units.si, 9.01e15, "9.01e15"),
        (units.si, 999.6e12, "1.00e15"), (units.si, 1.23e-5, "1.23e-5"), (units.si, 745, "745"),
        (units.sci, 4.86e9, "4.86e9"), (units.sci, 0.0, "0"),
        (units.usd, 7.25e22, "$7.25e22"), (units.usd, 1.97e12, "$1.97T"), (units.usd, 1.999e12, "$2T"),
        (units.usd, 0.001, "<$0.01"), (units.usd, 5.37, "$5.37"),
        (units.ratio, 1.4285714285714286e20, "1.43e20"), (units.ratio, 20.25, "20.2"), (units.ratio, 0.036, "0.036"),
        (units.amount, 0.35, "0.35"), (units.amount, 1234.4, "1,234"), (units.amount, 5.21e11, "5.21e11"),
        (units.factor, 7.22e3, "7.22e3"), (units.factor, 12.34, "12.3"),
        (units.near_one, 0.999995, "1 − 5e-6"), (units.near_one, 0.9999998, "1 − 2e-7"),
        (units.near_one, 0.95, "0.95"), (units.near_one, 0.9998, "0.9998"), (units.near_one, 0.996, "0.996"),
        (units.duration, 59.99 * 60, "1 h"), (units.duration, 2.88e-5, "0.0288 ms"),
        (units.duration, 2e5 * 365.25 * 86400, "200,000 years"), (units.percent, 1234.5, "1.23e5%"),
        (units.num, 6.82e-5, "6.82e-5"),
    ],
)
def test_formatting_at_extremes(fn, value, text):
    """'1e+18T' tokens, '142857142857142861824.0' tokens/param, '$7.25e+13B', beta2 0.999995 shown as '1'."""
    assert fn(value) == text


def test_plural():
    assert units.plural(1, "node") == "1 node" and units.plural(64, "node") == "64 nodes"
    assert units.plural(1024, "step") == "1,024 steps"
