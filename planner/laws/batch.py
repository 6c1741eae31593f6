"""Batch-size laws: the McCandlish trade-off and conversions between critical-batch-size definitions.

Legend:
    B        batch size (sequences or tokens: every function states which; never mix)
    B_crit   McCandlish et al. 2018 critical batch, E_min/S_min (training at B_crit costs 2x min steps and data)
    CBS      Zhang et al. 2024 critical batch: the B where steps exceed linear scaling from B_ref by `overhead`
    B_ref    Zhang's reference batch (256 sequences of 512 tokens)
    S, E     optimizer steps and examples (or tokens) needed to reach a fixed loss
"""

from __future__ import annotations

import numpy as np


def steps_ratio(B, B_crit):
    """S(B)/S_min = 1 + B_crit/B  (McCandlish et al. 2018, eq. 2.11; Kaplan et al. 2020, eq. 5.1)."""
    return 1.0 + np.asarray(B_crit, dtype=float) / B


def examples_ratio(B, B_crit):
    """E(B)/E_min = 1 + B/B_crit  (McCandlish et al. 2018, eq. 2.11)."""
    return 1.0 + np.asarray(B, dtype=float) / B_crit


def time_ratio_doubling(B, B_crit):
    """T(B)/T(B/2) at constant step time: (1 + B_crit/B) / (1 + 2·B_crit/B)  (from S(B) above)."""
    r = np.asarray(B_crit, dtype=float) / B
    return (1.0 + r) / (1.0 + 2.0 * r)


def cbs_from_bcrit(B_crit, B_ref, overhead: float = 0.2):
    """Zhang CBS from McCandlish B_crit: CBS = (1 + overhead)·B_ref + overhead·B_crit.

    Zhang et al. 2024 define CBS by R(CBS) = (1 + overhead)·R(B_ref)·B_ref/CBS; with
    R(B) = S_min·(1 + B_crit/B) this solves in closed form (shared reference batch-laws.md §0, §1.1).
    B_crit, B_ref and the result share one unit (sequences or tokens).
    """
    return (1.0 + overhead) * np.asarray(B_ref, dtype=float) + overhead * np.asarray(B_crit, dtype=float)


def bcrit_from_cbs(CBS, B_ref, overhead: float = 0.2):
    """McCandlish B_crit from Zhang CBS: B_crit = (CBS − (1 + overhead)·B_ref)/overhead = 5·(CBS − 1.2·B_ref) at 20%."""
    return (np.asarray(CBS, dtype=float) - (1.0 + overhead) * np.asarray(B_ref, dtype=float)) / overhead
