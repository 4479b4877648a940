"""UCUM conversions for the units the features use. A unit is read from
``Quantity.code`` (system UCUM, or no system); ``Quantity.unit`` is display text and is
never used to guess a unit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

UCUM_SYSTEM = "http://unitsofmeasure.org"


class Dimension(Enum):
    """What a canonical unit measures; each has its own conversion table."""

    MASS_CONCENTRATION_NG_L = "ng/L"
    TEMPERATURE_CEL = "Cel"
    MASS_KG = "kg"
    LENGTH_CM = "cm"
    PRESSURE_MM_HG = "mm[Hg]"
    RATE_PER_MIN = "/min"
    PERCENT = "%"
    BMI_KG_M2 = "kg/m2"
    AGE_YEARS = "a"


def _scale(factor: float) -> Callable[[float], float]:
    return lambda value: value * factor


def _fahrenheit_to_celsius(value: float) -> float:
    return (value - 32.0) * 5.0 / 9.0


_CONVERSIONS: dict[Dimension, dict[str, Callable[[float], float]]] = {
    # UCUM has both "L" and "l" for the litre: "ng/l" and "ng/ml" are valid codes, not guesses.
    Dimension.MASS_CONCENTRATION_NG_L: {
        "ng/L": _scale(1.0),
        "ng/l": _scale(1.0),
        "pg/mL": _scale(1.0),  # 1 pg/mL = 1 ng/L
        "pg/ml": _scale(1.0),
        "ng/mL": _scale(1000.0),
        "ng/ml": _scale(1000.0),
        "ug/L": _scale(1000.0),  # 1 ug/L = 1 ng/mL
        "ug/l": _scale(1000.0),
    },
    Dimension.TEMPERATURE_CEL: {"Cel": _scale(1.0), "[degF]": _fahrenheit_to_celsius},
    Dimension.MASS_KG: {"kg": _scale(1.0), "g": _scale(0.001), "[lb_av]": _scale(0.45359237)},
    Dimension.LENGTH_CM: {"cm": _scale(1.0), "m": _scale(100.0), "[in_i]": _scale(2.54)},
    Dimension.PRESSURE_MM_HG: {"mm[Hg]": _scale(1.0)},
    # UCUM annotations ({beats}, {breaths}) carry no meaning for conversion.
    Dimension.RATE_PER_MIN: {
        "/min": _scale(1.0),
        "1/min": _scale(1.0),
        "{beats}/min": _scale(1.0),
        "{beat}/min": _scale(1.0),
        "{breaths}/min": _scale(1.0),
        "{breath}/min": _scale(1.0),
    },
    Dimension.PERCENT: {"%": _scale(1.0)},
    Dimension.BMI_KG_M2: {"kg/m2": _scale(1.0)},
    Dimension.AGE_YEARS: {"a": _scale(1.0), "mo": _scale(1.0 / 12.0)},
}


class UnitProblem(Enum):
    MISSING = "missing"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class Converted:
    value: float | None  # None when ``problem`` is set
    problem: UnitProblem | None


_MISSING = Converted(None, UnitProblem.MISSING)
_UNKNOWN = Converted(None, UnitProblem.UNKNOWN)


def convert(value: float, code: str | None, system: str | None, to: Dimension) -> Converted:
    """Convert ``value`` given in UCUM ``code`` to the canonical unit of ``to``."""
    converted = convert_value(value, code, system, to)
    if converted is UnitProblem.MISSING:
        return _MISSING
    if converted is UnitProblem.UNKNOWN:
        return _UNKNOWN
    return Converted(converted, None)


def convert_value(
    value: float, code: str | None, system: str | None, to: Dimension
) -> float | UnitProblem:
    """``convert`` without the wrapper object: the value, or the problem."""
    if code is None or code == "":
        return UnitProblem.MISSING
    if system is not None and system != UCUM_SYSTEM:
        return UnitProblem.UNKNOWN
    conversion = _CONVERSIONS[to].get(code)
    if conversion is None:
        return UnitProblem.UNKNOWN
    return conversion(value)
