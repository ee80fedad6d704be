"""`edge.stats.median`: numpy's exact answer, NaN rule included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.stats import median


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64, np.int32])
def test_median_is_numpys_to_the_bit(dtype: type) -> None:
    rng = np.random.default_rng(5)
    for n in range(1, 40):
        for values in (rng.normal(0, 100, n), rng.integers(-4, 4, n)):
            a = values.astype(dtype)
            assert median(a) == float(np.median(a)), (dtype, a)
            assert median(a.tolist()) == float(np.median(a.tolist()))
    grid = rng.normal(size=(3, 4)).astype(dtype)
    assert median(grid) == float(np.median(grid))  # all values, like numpy without an axis


def test_any_nan_or_no_values_gives_nan() -> None:
    assert math.isnan(median([1.0, float("nan"), 2.0]))
    assert math.isnan(median(np.array([np.nan], np.float32)))
    assert math.isnan(median([]))
