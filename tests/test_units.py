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
