"""Vital signs: the latest plausible reading before the anchor within the staleness window.

Blood pressure comes from the panels 85354-9 and 55284-4 (components 8480-6 / 8462-4) and
from stand-alone 8480-6 / 8462-4 Observations. BMI is 39156-5, or computed from the latest
weight (29463-7) and height (8302-2): the computed value takes the weight's time and
source; at equal times a recorded BMI wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fhir_adapters import codes
from fhir_adapters.facts import ObservationFact
from fhir_adapters.features import Measurement
from fhir_adapters.rules.context import Context
from fhir_adapters.rules.readings import Limits, Reading, choose, latest_plausible, read_quantity
from fhir_adapters.units import Dimension
from fhir_adapters.warnings import WarningCode

# Limits of what can be measured, not of what is normal. The low ends of blood pressure and
# SpO2 are set for shock and profound hypoxaemia: a systolic of 38 or an SpO2 of 45 % is a
# patient to escalate, and was dropped as implausible when the limits were 40 and 50.
HEART_RATE_LIMITS = Limits(20, 300)
SYSTOLIC_LIMITS = Limits(20, 300)
DIASTOLIC_LIMITS = Limits(10, 200)
RESPIRATORY_RATE_LIMITS = Limits(4, 80)
SPO2_LIMITS = Limits(20, 100)
TEMPERATURE_LIMITS = Limits(25, 45)
BMI_LIMITS = Limits(10, 100)
WEIGHT_LIMITS = Limits(1, 500)  # kg
HEIGHT_LIMITS = Limits(30, 272)  # cm

# Obesity (BMI > 30) may use a BMI up to a year old: body mass changes slowly, and whole
# histories record it at yearly visits, far outside the vitals staleness window.
OBESITY_BMI_WINDOW = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class _Spec:
    loinc: frozenset[str]
    dimension: Dimension
    limits: Limits


_SIMPLE = {
    "heart_rate": _Spec(codes.HEART_RATE, Dimension.RATE_PER_MIN, HEART_RATE_LIMITS),
    "respiratory_rate": _Spec(
        codes.RESPIRATORY_RATE, Dimension.RATE_PER_MIN, RESPIRATORY_RATE_LIMITS
    ),
    "spo2": _Spec(codes.SPO2, Dimension.PERCENT, SPO2_LIMITS),
    "temperature_c": _Spec(codes.TEMPERATURE, Dimension.TEMPERATURE_CEL, TEMPERATURE_LIMITS),
    "bmi": _Spec(codes.BMI, Dimension.BMI_KG_M2, BMI_LIMITS),
    "weight": _Spec(codes.WEIGHT, Dimension.MASS_KG, WEIGHT_LIMITS),
    "height": _Spec(codes.HEIGHT, Dimension.LENGTH_CM, HEIGHT_LIMITS),
    "systolic_bp": _Spec(frozenset({codes.SYSTOLIC}), Dimension.PRESSURE_MM_HG, SYSTOLIC_LIMITS),
    "diastolic_bp": _Spec(frozenset({codes.DIASTOLIC}), Dimension.PRESSURE_MM_HG, DIASTOLIC_LIMITS),
}
_COMPONENTS = {codes.SYSTOLIC: "systolic_bp", codes.DIASTOLIC: "diastolic_bp"}
_BY_LOINC: dict[str, list[str]] = {}
for _name, _spec in _SIMPLE.items():
    for _code in _spec.loinc:
        _BY_LOINC.setdefault(_code, []).append(_name)
# The same lookups keyed by the whole (system, code) coding, with the spec at hand.
_BY_CODING: dict[tuple[str, str], tuple[tuple[str, _Spec], ...]] = {
    (codes.LOINC, code): tuple((name, _SIMPLE[name]) for name in names)
    for code, names in _BY_LOINC.items()
}
_PANEL_CODINGS = frozenset((codes.LOINC, code) for code in codes.BP_PANELS)


@dataclass(frozen=True, slots=True)
class Vitals:
    heart_rate: Measurement
    systolic_bp: Measurement
    diastolic_bp: Measurement
    respiratory_rate: Measurement
    spo2: Measurement
    temperature_c: Measurement
    bmi: Measurement
    recent_bmi: Reading | None  # latest plausible BMI within OBESITY_BMI_WINDOW


def derive_vitals(
    ctx: Context, observations: list[ObservationFact], staleness: timedelta
) -> Vitals:
    readings: dict[str, list[Reading]] = {name: [] for name in _SIMPLE}
    for obs in observations:
        header = obs.header
        time = header.time
        assert time is not None  # the gate admits only timed resources
        panel = False
        for coding in obs.codes:
            if coding in _PANEL_CODINGS:
                panel = True
            for name, spec in _BY_CODING.get(coding, ()):
                usable, value = read_quantity(
                    ctx, obs.quantity, obs.absent, spec.dimension, spec.limits,
                    header.entry, ".valueQuantity",
                )  # fmt: skip
                if usable:
                    readings[name].append(Reading(time, header.entry, header.ref, value))
        if panel:
            _read_components(ctx, obs, readings)
    bmi_readings = [Reading(r.time, r.entry, r.ref, r.value, 1) for r in readings["bmi"]]
    computed = _computed_bmi(ctx, readings["weight"], readings["height"])
    if computed is not None:
        bmi_readings.append(computed)
    measured = {
        name: choose(ctx, readings[name], staleness)
        for name in (
            "heart_rate",
            "systolic_bp",
            "diastolic_bp",
            "respiratory_rate",
            "spo2",
            "temperature_c",
        )
    }
    latest_bmi = latest_plausible(bmi_readings)
    recent = (
        latest_bmi
        if latest_bmi is not None and ctx.anchor.time - latest_bmi.time <= OBESITY_BMI_WINDOW
        else None
    )
    return Vitals(bmi=choose(ctx, bmi_readings, staleness), recent_bmi=recent, **measured)


def _read_components(
    ctx: Context, obs: ObservationFact, readings: dict[str, list[Reading]]
) -> None:
    """A panel's systolic and diastolic are one measurement: when one of them is implausible,
    or systolic is not above diastolic (swapped or mistyped), neither is used, so that the
    latest systolic and diastolic never pair values of two different readings into an
    impossible pressure (an implausible 400/130 beside an older 118/75 gave 118/130)."""
    header = obs.header
    assert header.time is not None
    read: dict[str, float | None] = {}
    for component in obs.components:
        for system, code in component.codes:
            part = _COMPONENTS.get(code) if system == codes.LOINC else None
            if part is None:
                continue
            spec = _SIMPLE[part]
            usable, value = read_quantity(
                ctx, component.quantity, component.absent, spec.dimension, spec.limits,
                header.entry, f".component[{component.index}].valueQuantity",
            )  # fmt: skip
            if usable:
                read[part] = value
            break
    systolic, diastolic = read.get("systolic_bp"), read.get("diastolic_bp")
    if len(read) == 2 and (systolic is None or diastolic is None or systolic <= diastolic):
        if systolic is not None and diastolic is not None:  # each plausible, the pair not
            ctx.warnings.add(WarningCode.IMPLAUSIBLE_VALUE, header.path + ".component")
        read = dict.fromkeys(read)
    for part, value in read.items():
        readings[part].append(Reading(header.time, header.entry, header.ref, value))


def _computed_bmi(ctx: Context, weights: list[Reading], heights: list[Reading]) -> Reading | None:
    weight = latest_plausible(weights)
    height = latest_plausible(heights)
    if weight is None or height is None or weight.value is None or height.value is None:
        return None
    bmi = weight.value / (height.value / 100.0) ** 2
    if not BMI_LIMITS.accepts(bmi):  # each plausible, together not (300 kg at 100 cm)
        ctx.warnings.add(WarningCode.IMPLAUSIBLE_VALUE, f"$.entry[{weight.entry}].resource")
        return Reading(weight.time, weight.entry, weight.ref, None)
    return Reading(weight.time, weight.entry, weight.ref, bmi)
