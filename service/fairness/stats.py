"""Small exact formulas: Wilson intervals, Newcombe's difference interval, Fairlearn parity.

Pure functions of counts, so that the incremental audit and the tests share one definition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def wilson_interval(successes: int, total: int, z: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there is no data."""
    if total <= 0:
        return (0.0, 1.0)
    p = successes / total
    z2 = z * z
    denominator = 1.0 + z2 / total
    centre = (p + z2 / (2 * total)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / total + z2 / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_lower(high: tuple[int, int], low: tuple[int, int], z: float) -> float:
    """Lower bound of Newcombe's hybrid score interval (method 10) for ``p_high - p_low``.

    ``high`` and ``low`` are (successes, total). The interval is built from the two groups'
    Wilson intervals at the same ``z``; a positive lower bound is evidence that the first
    group's rate really exceeds the second's. Well behaved at rates of 0 and 1.
    """
    p_high = high[0] / high[1]
    p_low = low[0] / low[1]
    l_high, _ = wilson_interval(high[0], high[1], z)
    _, u_low = wilson_interval(low[0], low[1], z)
    return (p_high - p_low) - math.sqrt((p_high - l_high) ** 2 + (u_low - p_low) ** 2)


def parity_difference(rates: Sequence[float]) -> float | None:
    """Fairlearn's demographic parity difference (between groups): max - min; None if empty."""
    if not rates:
        return None
    return max(rates) - min(rates)


def parity_ratio(rates: Sequence[float]) -> float | None:
    """Fairlearn's demographic parity ratio (between groups): min / max.

    Fairlearn divides ``group_min / group_max`` in pandas, which yields NaN when every rate is
    zero; that undefined value is None here. None too when there are no rates.
    """
    if not rates:
        return None
    top = max(rates)
    if top == 0.0:
        return None
    return min(rates) / top
