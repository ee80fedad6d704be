"""`median` with numpy's exact result, without numpy's first-call cost.

``np.median`` imports ``numpy.ma`` the first time it runs (to check for masked arrays): 6-15
ms of a whole `analyze` run on one core, for arrays that are never masked here.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


def median(values: npt.ArrayLike) -> float:
    """The median of all values, bit for bit as ``float(np.median(values))``; NaN if empty
    or if any value is NaN (numpy's rule)."""
    a = np.asarray(values).ravel()
    n = a.size
    if n == 0:
        return math.nan
    half = n // 2
    kth = [half] if n % 2 else [half - 1, half]
    inexact = np.issubdtype(a.dtype, np.inexact)
    if inexact:
        kth.append(n - 1)  # a NaN sorts last: partitioning there finds one
    part = np.partition(a, kth)
    if inexact and np.isnan(part[-1]):
        return math.nan
    if n % 2:
        return float(part[half])
    return float(np.mean(part[half - 1 : half + 1]))
