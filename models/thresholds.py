"""Race-free risk-band thresholds, chosen on validation data.

One ``low_upper`` for everyone: the largest probability cut-off (on a grid of validation
quantiles) at which the missed-MACE rate in the low band (MACE among those banded LOW) is
below the safety floor in EVERY audited group with enough low-band encounters, and the
Wilson 95% upper bound of the overall rate is below the floor too. The group attributes are
used only here, offline, to choose the threshold; at inference no protected attribute is
needed. ``high_lower`` is the smallest cut-off at which the observed MACE rate at or above it
reaches ``high_ppv`` (50%: the HEART high band's 50.1%, a 6-week MACE figure used for our
30-day label as an approximation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.str_]

SAFETY_FLOOR = 0.01
MIN_LOW_BAND_COUNT = 30  # smaller groups are reported, not used to choose
Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Thresholds:
    low_upper: float  # probability below which the band is LOW
    high_lower: float  # probability at or above which the band is HIGH

    def __post_init__(self) -> None:
        if not 0.0 < self.low_upper < self.high_lower <= 1.0:
            raise ValueError("thresholds must satisfy 0 < low_upper < high_lower <= 1")


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _feasible(
    p: FloatArray, y: BoolArray, groups: Mapping[str, StrArray], t: float, floor: float
) -> bool:
    low = p < t
    n_low = int(low.sum())
    if n_low == 0:
        return True
    missed = int((y & low).sum())
    if wilson_interval(missed, n_low)[1] >= floor:
        return False
    for labels in groups.values():
        low_labels = labels[low]
        missed_labels = labels[low & y]
        names, counts = np.unique(low_labels, return_counts=True)
        missed_by = dict(zip(*np.unique(missed_labels, return_counts=True), strict=True))
        for name, count in zip(names, counts, strict=True):
            if count >= MIN_LOW_BAND_COUNT and missed_by.get(name, 0) / count >= floor:
                return False
    return True


def choose_thresholds(
    p: FloatArray,
    y: BoolArray,
    groups: Mapping[str, StrArray],
    *,
    floor: float = SAFETY_FLOOR,
    high_ppv: float = 0.5,
    grid_size: int = 400,
) -> Thresholds:
    """Choose the band thresholds on validation probabilities ``p`` and TRUE outcomes ``y``."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=bool)
    grid = np.unique(np.quantile(p, np.linspace(0.0, 0.9, grid_size)))
    feasible = [float(t) for t in grid if _feasible(p, y, groups, float(t), floor)]
    low_upper = max(feasible, default=0.0)
    if low_upper <= 0.0:
        raise ValueError("no low-risk threshold meets the safety floor")
    order = np.argsort(-p)
    ppv_at = np.cumsum(y[order]) / np.arange(1, len(p) + 1)
    # Largest top-set whose MACE rate still reaches high_ppv -> smallest such cut-off.
    ok = np.flatnonzero(ppv_at >= high_ppv)
    high_lower = float(p[order][ok[-1]]) if ok.size else 1.0
    high_lower = max(high_lower, min(1.0, low_upper * 2))
    return Thresholds(low_upper=low_upper, high_lower=high_lower)
