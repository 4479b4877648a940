"""The declared model input: ordered feature names, units, imputation, and ``vectorize``.

This module is the one place the model's input row is built; training, evaluation and
serving all call ``vectorize`` so the three can never drift apart.

Design decisions, written down because they are part of the fairness story:

* Race, ethnicity and their declared proxies (``PROTECTED_ATTRIBUTES``) are never features.
  ``assert_schema_allowed`` refuses any schema that names one; training and registration
  both call it.
* Clinical sex is not a feature either (``EXCLUDED_BY_DESIGN``). Sex reaches the model only
  through the troponin ratio to the assay's upper reference limit, which for
  high-sensitivity assays is sex-specific. That is the clinically justified use of sex, and it
  keeps the counterfactual check simple: swapping race, ethnicity or sex with the same
  measurements changes nothing.
* A measurement that is missing, stale or implausible has no value (``Measurement.value`` is
  set only when PRESENT). It is imputed with a clinically normal value and flagged with a
  ``*_missing`` indicator so the model can learn what absence means without guessing.
* Troponin enters as log10 of the ratio to the URL, clipped to [-2, 3]; the ratio is
  comparable across assays and units, the raw concentration is not.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fhir_adapters.features import (
    ClinicalFeatures,
    EcgCategory,
    Status,
    TroponinAssay,
)

SCHEMA_VERSION = "1.0.0"

#: Attributes that must never be model inputs: the audited demographics and their declared
#: proxies (geography, language, coverage, socio-economic status). Matched against every
#: underscore-separated token run of a feature name.
PROTECTED_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "race",
        "ethnicity",
        "ethnic",
        "hispanic",
        "ancestry",
        "skin_tone",
        "zip",
        "zip_code",
        "zipcode",
        "postcode",
        "postal_code",
        "address",
        "census_tract",
        "neighborhood",
        "neighbourhood",
        "language",
        "preferred_language",
        "interpreter",
        "insurance",
        "payer",
        "medicaid",
        "medicare",
        "uninsured",
        "income",
        "religion",
        "nationality",
        "country_of_birth",
        "immigration",
        "deprivation_index",
    }
)

#: Audited attributes kept out of the model by a design decision (see module docstring):
#: sex acts only through sex-specific troponin reference limits.
EXCLUDED_BY_DESIGN: frozenset[str] = frozenset({"sex", "gender", "birthsex", "individual_sex"})

#: Feature-name pieces that are refused, with the reason recorded in the error.
REFUSED_TERMS: frozenset[str] = PROTECTED_ATTRIBUTES | EXCLUDED_BY_DESIGN

LOG10_TROPONIN_RATIO_MIN = -2.0
LOG10_TROPONIN_RATIO_MAX = 3.0


class ProtectedFeatureError(ValueError):
    """A schema names a protected attribute or proxy. The message names the feature only."""

    def __init__(self, feature: str, term: str) -> None:
        self.feature = feature
        self.term = term
        super().__init__(f"feature {feature!r} matches protected attribute {term!r}")


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    unit: str  # UCUM unit, "1" for flags and indicators
    description: str
    impute: float | None = None  # value used when the measurement has no value


@dataclass(frozen=True, slots=True)
class FeatureSchema:
    version: str
    features: tuple[FeatureSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def n_features(self) -> int:
        return len(self.features)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace): stored in ONNX metadata and manifests."""
        payload = {
            "version": self.version,
            "features": [
                {"name": f.name, "unit": f.unit, "description": f.description, "impute": f.impute}
                for f in self.features
            ],
        }
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))

    def fingerprint(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def _name_tokens(name: str) -> set[str]:
    """Every contiguous run of underscore-separated tokens: "patient_zip_code" yields
    "patient", "zip", "code", "patient_zip", "zip_code", "patient_zip_code"."""
    parts = name.lower().replace("-", "_").split("_")
    return {"_".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)}


def assert_schema_allowed(names: Iterable[str]) -> None:
    """Refuse a schema that names a protected attribute, a proxy, or sex."""
    for name in names:
        hits = _name_tokens(name) & REFUSED_TERMS
        if hits:
            raise ProtectedFeatureError(name, sorted(hits)[0])


# (name, impute value, unit, description) of each numeric measurement, in schema order.
_MEASUREMENTS: tuple[tuple[str, float, str, str], ...] = (
    ("age_years", 60.0, "a", "age at the triage encounter"),
    ("heart_rate", 80.0, "/min", "heart rate"),
    ("systolic_bp", 130.0, "mm[Hg]", "systolic blood pressure"),
    ("diastolic_bp", 80.0, "mm[Hg]", "diastolic blood pressure"),
    ("respiratory_rate", 16.0, "/min", "respiratory rate"),
    ("spo2", 97.0, "%", "oxygen saturation"),
    ("temperature_c", 36.8, "Cel", "body temperature"),
    ("bmi", 27.0, "kg/m2", "body mass index"),
)
#: The Symptoms and RiskFactors flags, in model-input order (also the cohort's columns).
SYMPTOMS: tuple[str, ...] = (
    "chest_pain",
    "shoulder_pain",
    "arm_pain",
    "jaw_pain",
    "dyspnea",
    "diaphoresis",
    "nausea",
    "epigastric_pain",
)
RISK_FACTORS: tuple[str, ...] = (
    "hypertension",
    "hyperlipidaemia",
    "diabetes",
    "obesity",
    "smoking",
    "family_history",
    "known_atherosclerosis",
)
# Impute troponin as a ratio of 0.1 x URL: the typical value in patients without myocardial
# injury. The missing indicator carries the fact that it was not measured.
_TROPONIN_IMPUTE = -1.0


def _build_schema() -> FeatureSchema:
    specs: list[FeatureSpec] = []
    for name, impute, unit, description in _MEASUREMENTS:
        specs.append(FeatureSpec(name, unit, description, impute))
        specs.append(FeatureSpec(f"{name}_missing", "1", f"{description} not usable (1/0)"))
    specs += [
        FeatureSpec(
            "troponin_log10_ratio",
            "1",
            "log10(troponin / assay upper reference limit), clipped to [-2, 3]",
            _TROPONIN_IMPUTE,
        ),
        FeatureSpec("troponin_missing", "1", "no usable troponin (1/0)"),
        FeatureSpec("troponin_high_sensitivity", "1", "troponin from a high-sensitivity assay"),
        FeatureSpec("ecg_nonspecific", "1", "ECG: LBBB, LVH, paced or repolarisation change"),
        FeatureSpec("ecg_st_deviation", "1", "ECG: significant ST deviation"),
        FeatureSpec("ecg_missing", "1", "no ECG before the anchor"),
    ]
    specs += [FeatureSpec(f"symptom_{s}", "1", f"presenting symptom: {s}") for s in SYMPTOMS]
    specs += [FeatureSpec(f"rf_{r}", "1", f"risk factor: {r}") for r in RISK_FACTORS]
    schema = FeatureSchema(SCHEMA_VERSION, tuple(specs))
    assert_schema_allowed(schema.names)
    return schema


FEATURE_SCHEMA: FeatureSchema = _build_schema()
FEATURE_NAMES: tuple[str, ...] = FEATURE_SCHEMA.names
N_FEATURES: int = FEATURE_SCHEMA.n_features

_MEASUREMENT_IMPUTES: tuple[float, ...] = tuple(impute for _, impute, _, _ in _MEASUREMENTS)
_PRESENT = Status.PRESENT
_HS = TroponinAssay.HIGH_SENSITIVITY
_LOG10 = math.log10


def feature_row(f: ClinicalFeatures) -> list[float]:
    """The model input row as a Python list, in ``FEATURE_NAMES`` order.

    Written out by hand (no loops over getattr) because it runs on every request.
    """
    row: list[float] = []
    append = row.append
    measurements = (
        f.age_years,
        f.heart_rate,
        f.systolic_bp,
        f.diastolic_bp,
        f.respiratory_rate,
        f.spo2,
        f.temperature_c,
        f.bmi,
    )
    for m, impute in zip(measurements, _MEASUREMENT_IMPUTES, strict=True):
        value = m.value
        if m.status is _PRESENT and value is not None:
            append(value)
            append(0.0)
        else:
            append(impute)
            append(1.0)
    t = f.troponin
    ratio = t.ratio_to_url
    if t.status is _PRESENT and ratio is not None and ratio >= 0.0:
        # An undetectable troponin (0) is the lowest value, not a missing one.
        log_ratio = _LOG10(ratio) if ratio > 0.0 else LOG10_TROPONIN_RATIO_MIN
        if log_ratio < LOG10_TROPONIN_RATIO_MIN:
            log_ratio = LOG10_TROPONIN_RATIO_MIN
        elif log_ratio > LOG10_TROPONIN_RATIO_MAX:
            log_ratio = LOG10_TROPONIN_RATIO_MAX
        append(log_ratio)
        append(0.0)
        append(1.0 if t.assay is _HS else 0.0)
    else:
        append(_TROPONIN_IMPUTE)
        append(1.0)
        append(0.0)
    ecg = f.ecg.category
    append(1.0 if ecg is EcgCategory.NONSPECIFIC else 0.0)
    append(1.0 if ecg is EcgCategory.ST_DEVIATION else 0.0)
    append(1.0 if ecg is EcgCategory.UNKNOWN else 0.0)
    s = f.symptoms
    append(1.0 if s.chest_pain.present else 0.0)
    append(1.0 if s.shoulder_pain.present else 0.0)
    append(1.0 if s.arm_pain.present else 0.0)
    append(1.0 if s.jaw_pain.present else 0.0)
    append(1.0 if s.dyspnea.present else 0.0)
    append(1.0 if s.diaphoresis.present else 0.0)
    append(1.0 if s.nausea.present else 0.0)
    append(1.0 if s.epigastric_pain.present else 0.0)
    r = f.risk_factors
    append(1.0 if r.hypertension.present else 0.0)
    append(1.0 if r.hyperlipidaemia.present else 0.0)
    append(1.0 if r.diabetes.present else 0.0)
    append(1.0 if r.obesity.present else 0.0)
    append(1.0 if r.smoking.present else 0.0)
    append(1.0 if r.family_history.present else 0.0)
    append(1.0 if r.known_atherosclerosis.present else 0.0)
    return row


def vectorize(features: ClinicalFeatures) -> npt.NDArray[np.float32]:
    """One model input row, float32, shape ``(N_FEATURES,)``."""
    return np.array(feature_row(features), dtype=np.float32)


def vectorize_many(features: Sequence[ClinicalFeatures]) -> npt.NDArray[np.float32]:
    """Model input matrix, float32, shape ``(len(features), N_FEATURES)``."""
    if not features:
        return np.empty((0, N_FEATURES), dtype=np.float32)
    return np.array([feature_row(f) for f in features], dtype=np.float32)
