"""Percentiles of bootstrap draws where some draws have no answer (+inf): plain Python, no numpy.

A draw of a law whose E is at or above a target loss needs an infinite model to reach it. Dropping such
draws biases every band low (the draws left are the optimistic ones); counting them as +inf keeps the
percentiles honest, and a percentile that falls among them is unbounded (None).
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile with linear interpolation between order statistics (numpy's default rule);
    +inf and NaN count as +inf, and a percentile that touches one is None (unbounded)."""
    ordered = sorted(math.inf if math.isnan(v) else v for v in values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    a, b = ordered[low], ordered[high]
    if math.isinf(a) or (math.isinf(b) and position > low):
        return None
    return a if position == low else a + (b - a) * (position - low)
