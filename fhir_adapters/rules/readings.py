"""Numeric readings: unit conversion, plausibility, and choosing the latest."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from fhir_adapters.facts import Quantity
from fhir_adapters.features import Measurement, Status
from fhir_adapters.rules.context import Context
from fhir_adapters.units import Dimension, UnitProblem, convert_value
from fhir_adapters.warnings import WarningCode


@dataclass(frozen=True, slots=True)
class Limits:
    """Physiological limits; values outside are implausible (data-entry errors, sentinels)."""

    low: float
    high: float

    def accepts(self, value: float) -> bool:
        return math.isfinite(value) and self.low <= value <= self.high


@dataclass(slots=True)
class Reading:
    time: datetime
    entry: int
    ref: str
    value: float | None  # canonical unit; None when implausible
    priority: int = 0  # tie-break at equal times: higher wins (a recorded BMI over a computed one)

    @property
    def order(self) -> tuple[datetime, int, int]:
        return (self.time, self.priority, self.entry)


def _path(entry: int, suffix: str) -> str:
    return f"$.entry[{entry}].resource{suffix}"


NOT_READ: tuple[bool, float | None] = (False, None)
IMPLAUSIBLE: tuple[bool, float | None] = (True, None)


def read_quantity(
    ctx: Context,
    quantity: Quantity | None,
    absent: bool,
    dimension: Dimension,
    limits: Limits,
    entry: int,
    suffix: str,
) -> tuple[bool, float | None]:
    """(usable, value in canonical units). ``(True, None)``: read but implausible;
    ``(False, None)``: no usable value at all (absent, malformed, unit missing or unknown).
    Every problem is warned at ``$.entry[entry].resource<suffix>`` (built only then)."""
    if absent:
        ctx.warnings.add(WarningCode.DATA_ABSENT, _path(entry, suffix))
        return NOT_READ
    value = None if quantity is None else quantity.value
    if value is None:
        ctx.warnings.add(WarningCode.MALFORMED, _path(entry, suffix))
        return NOT_READ
    if not math.isfinite(value):  # NaN or infinite
        ctx.warnings.add(WarningCode.IMPLAUSIBLE_VALUE, _path(entry, suffix))
        return IMPLAUSIBLE
    assert quantity is not None
    converted = convert_value(value, quantity.code, quantity.system, dimension)
    if converted is UnitProblem.MISSING:
        ctx.warnings.add(WarningCode.MISSING_UNIT, _path(entry, suffix))
        return NOT_READ
    if converted is UnitProblem.UNKNOWN:
        ctx.warnings.add(WarningCode.UNKNOWN_UNIT, _path(entry, suffix))
        return NOT_READ
    assert isinstance(converted, float)
    if not (limits.low <= converted <= limits.high and math.isfinite(converted)):
        ctx.warnings.add(WarningCode.IMPLAUSIBLE_VALUE, _path(entry, suffix))
        return IMPLAUSIBLE
    return True, converted


def latest_plausible(readings: list[Reading]) -> Reading | None:
    """The plausible reading with the greatest ``order`` (the first of equals, as ``max``)."""
    best: Reading | None = None
    best_order: tuple[datetime, int, int] | None = None
    for reading in readings:
        if reading.value is None:
            continue
        order = (reading.time, reading.priority, reading.entry)
        if best_order is None or order > best_order:
            best, best_order = reading, order
    return best


def choose(ctx: Context, readings: list[Reading], staleness: timedelta) -> Measurement:
    """The latest plausible reading (by time, never by array order); implausible readings
    are skipped (warned when read). Older than ``staleness`` before the anchor -> STALE."""
    latest = latest_plausible(readings)
    if latest is None:
        if not readings:
            return Measurement.missing()
        worst = max(readings, key=lambda r: r.order)
        return Measurement(None, Status.IMPLAUSIBLE, worst.ref, worst.time)
    if ctx.anchor.time - latest.time > staleness:
        ctx.warnings.add(WarningCode.STALE_VALUE, _path(latest.entry, ""))
        return Measurement(None, Status.STALE, latest.ref, latest.time)
    return Measurement(latest.value, Status.PRESENT, latest.ref, latest.time)
