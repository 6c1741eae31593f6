"""A bracketed scalar root finder in pure Python.

`scipy.optimize` costs ~0.36 s to import, most of the CLI's start-up budget, so the solvers that
`planner recommend` needs use this instead: Brent's method (R. Brent, "Algorithms for Minimization
without Derivatives", 1973, ch. 4; the same algorithm as scipy's `brentq`), optionally trying a
Newton step first when a derivative is given and the step stays inside the bracket.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def bracketed_root(
    f: Callable[[float], float],
    lo: float,
    hi: float,
    dfun: Callable[[float], float] | None = None,
    xtol: float = 1e-14,
    rtol: float = 4 * 2.2e-16,
    maxiter: int = 200,
) -> float:
    """Root of f in [lo, hi], where f(lo) and f(hi) have opposite signs (or one is zero)."""
    fa, fb = f(lo), f(hi)
    if fa == 0:
        return lo
    if fb == 0:
        return hi
    if math.copysign(1.0, fa) == math.copysign(1.0, fb):
        raise ValueError(f"root not bracketed: f({lo})={fa}, f({hi})={fb}")
    a, b = lo, hi
    c, fc = a, fa
    d = e = b - a
    for _ in range(maxiter):
        if math.copysign(1.0, fb) == math.copysign(1.0, fc):
            c, fc = a, fa
            d = e = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol = 2 * rtol * abs(b) + 0.5 * xtol
        m = 0.5 * (c - b)
        if abs(m) <= tol or fb == 0:
            return b
        step = None
        if dfun is not None:
            slope = dfun(b)
            if slope != 0:
                newton = -fb / slope
                if 0 < newton / m < 1:  # stays between b and c, i.e. inside the bracket
                    step = newton
        if step is None and abs(e) >= tol and abs(fa) > abs(fb):
            s = fb / fa
            if a == c:  # secant
                p, q = 2 * m * s, 1 - s
            else:  # inverse quadratic interpolation
                q, r = fa / fc, fb / fc
                p = s * (2 * m * q * (q - r) - (b - a) * (r - 1))
                q = (q - 1) * (r - 1) * (s - 1)
            if p > 0:
                q = -q
            p = abs(p)
            if 2 * p < min(3 * m * q - abs(tol * q), abs(e * q)):
                e, d = d, p / q
                step = d
        if step is None:
            d = e = m
            step = m
        else:
            e, d = d, step
        a, fa = b, fb
        b += step if abs(step) > tol else math.copysign(tol, m)
        fb = f(b)
    raise RuntimeError(f"bracketed_root did not converge in {maxiter} iterations")
