"""Pure helpers of planner.planning."""

from __future__ import annotations

import numpy as np
import pytest

from planner.planning import percentile


@pytest.mark.parametrize("n", [1, 2, 7, 200])
@pytest.mark.parametrize("q", [0, 5, 50, 95, 100])
def test_percentile_matches_numpys_linear_rule(n, q):
    values = list(np.random.default_rng(n).normal(size=n))
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-12)


def test_default_law_gives_bands(cli):
    """besiroglu-2024 ships 200 draws of the reproduced Epoch bootstrap, so recommendations carry bands."""
    d = cli("recommend", "--target-loss", "2.3", "--inference-tokens", "2e12", "--json").json
    iv = d["intervals"]
    assert iv["n_samples"] == 200 and iv["n_params"]["p5"] < d["n_params"] < iv["n_params"]["p95"]
