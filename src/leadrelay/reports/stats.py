"""Small statistics the reports share: percentiles, rates, and how sure a rate is.

Percentiles are *nearest-rank*: the p-th percentile of n values is the value at rank ceil(p·n/100)
in ascending order, always one of the values (the median of 1, 2, 3, 4 is 2). The database
computes the same (PostgreSQL's `percentile_disc`, SQLite a window), so a figure in a report can be
checked by hand against the rows it came from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES = (50, 75, 90)
Z_95 = 1.959963984540054  # the normal quantile of a 95 % two-sided interval


def rank(p: int, n: int) -> int:
    """The 1-based rank of the p-th percentile among n values (nearest rank)."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is not in (0, 100]")
    return max(1, (p * n + 99) // 100)


def percentile(values: Sequence[float], p: int) -> float | None:
    """The nearest-rank p-th percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[rank(p, len(ordered)) - 1]


def rate(part: float, whole: float) -> float | None:
    """part / whole, or None when there is nothing to divide by."""
    return None if not whole else part / whole


def wilson(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a rate (95 % by default): how far the true rate may be from
    successes/trials given so few trials. None for no trials. With 2 wins of 3 the interval is
    about 21 % to 94 %: a small count says little, and the interval shows it."""
    if trials <= 0:
        return None
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    margin = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)
