"""The features that moved this patient's score most, for clinician review.

Method (one for every model family, exact for the logistic model): features are grouped by
clinical item (a measurement with its missing flag; troponin ratio, missing flag and assay;
the three ECG flags; each symptom; each risk factor). An item's contribution is

    logit(p(x)) - logit(p(x with that item's columns set to their "not recorded" values))

where "not recorded" is what ``models.schema.vectorize`` produces for an item without data
(measurements at their imputation value with the missing flag set, findings absent, ECG
unknown). For the shipped logistic pipeline the logit is linear in the standardised inputs,
so the figure is exactly sum_j w_j * (x_j - r_j) / s_j over the item's columns: the weight times
the standardised difference from "not recorded". For tree ensembles it is the occlusion
difference of the same definition, which is honest but not additive (items interact).
All perturbed rows are scored in one batched ONNX call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fhir_adapters.features import (
    CANONICAL_UNITS,
    ClinicalFeatures,
    Finding,
    Measurement,
    Status,
)
from models.schema import FEATURE_NAMES
from service.assessment import Contribution, Evidence
from service.deidentify import UNREAD_NOTE, safe_comparator
from service.policy import (
    ADULT_AGE,
    DANGER_HEART_RATE,
    DANGER_RESPIRATORY_RATE,
    DANGER_SPO2,
    HYPOTENSION_SBP,
)
from service.scoring import FloatArray, Scorer, imputed_row

TOP_K = 6
_EPS = 1e-7
# Values the policy compares with: a displayed value must not round onto one of them.
_THRESHOLDS = frozenset(
    {DANGER_HEART_RATE, DANGER_RESPIRATORY_RATE, DANGER_SPO2, HYPOTENSION_SBP, ADULT_AGE}
)
_DISPLAY_UNITS = {"a": "years", "Cel": "°C", "mm[Hg]": "mmHg", "kg/m2": "kg/m²"}
_MEASUREMENTS = (
    "age_years",
    "heart_rate",
    "systolic_bp",
    "diastolic_bp",
    "respiratory_rate",
    "spo2",
    "temperature_c",
    "bmi",
)


def item_of(feature_name: str) -> str:
    """The clinical item a model column belongs to."""
    if feature_name.startswith("troponin"):
        return "troponin"
    if feature_name.startswith("ecg_"):
        return "ecg"
    if feature_name.startswith("symptom_"):
        return feature_name.removeprefix("symptom_")
    if feature_name.startswith("rf_"):
        return feature_name.removeprefix("rf_")
    return feature_name.removesuffix("_missing")


@dataclass(frozen=True, slots=True)
class ItemColumns:
    item: str
    columns: tuple[int, ...]


def _items() -> tuple[ItemColumns, ...]:
    order: dict[str, list[int]] = {}
    for index, name in enumerate(FEATURE_NAMES):
        order.setdefault(item_of(name), []).append(index)
    return tuple(ItemColumns(item, tuple(cols)) for item, cols in order.items())


ITEMS: tuple[ItemColumns, ...] = _items()


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p.astype(np.float64), _EPS, 1.0 - _EPS)
    out: FloatArray = np.log(q / (1.0 - q))
    return out


class ContributionExplainer:
    """Bound to one scorer; the "not recorded" row is fixed per schema."""

    def __init__(self, scorer: Scorer, top_k: int = TOP_K) -> None:
        self._scorer = scorer
        self._reference = imputed_row()
        self._top_k = top_k
        # _item_columns[k, j]: column j belongs to ITEMS[k]; lets one comparison find the
        # changed items and one np.where build every perturbed row
        self._item_columns = np.zeros((len(ITEMS), len(FEATURE_NAMES)), dtype=bool)
        for k, item in enumerate(ITEMS):
            self._item_columns[k, list(item.columns)] = True

    def weights(self, row: FloatArray) -> dict[str, float]:
        """Log-odds contribution of every item whose columns differ from "not recorded"."""
        differs = row != self._reference  # NaN differs from everything, as "not equal" should
        changed = np.flatnonzero((self._item_columns & differs).any(axis=1))
        if changed.size == 0:
            return {}
        perturbed = np.where(self._item_columns[changed], self._reference, row)
        batch = np.concatenate([row.reshape(1, -1), perturbed]).astype(row.dtype, copy=False)
        logits = _logit(self._scorer.probabilities(batch))
        return {ITEMS[k].item: float(logits[0] - logits[i]) for i, k in enumerate(changed, 1)}

    def top(self, features: ClinicalFeatures, row: FloatArray) -> tuple[Contribution, ...]:
        weights = self.weights(row)
        ranked = sorted(weights.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[: self._top_k]
        return tuple(describe(features, item, weight) for item, weight in ranked)


def evidence(features: ClinicalFeatures) -> tuple[Evidence, ...]:
    """The findings the safety rules act on, with their sources: an earlier raised troponin
    or ST change escalates, but top_features shows only the latest result."""
    findings = (
        ("troponin_above_url_in_window", features.troponin_above_url_in_window),
        ("troponin_above_sex_specific_url", features.troponin.above_sex_specific_url),
        ("st_deviation_in_window", features.st_deviation_in_window),
        ("st_elevation_in_window", features.st_elevation_in_window),
    )
    return tuple(Evidence(name, f.sources) for name, f in findings if f.present)


def describe(features: ClinicalFeatures, item: str, weight: float) -> Contribution:
    """The item's value with its unit, its provenance and its source resources."""
    if item in _MEASUREMENTS:
        m: Measurement = getattr(features, item)
        return Contribution(
            item, _measurement_text(item, m), weight, m.status.value, _sources(m.source)
        )
    if item == "troponin":
        t = features.troponin
        if t.status is Status.PRESENT and t.value_ng_l is not None:
            # Only the four bounds: a free-text comparator would reach the screen and the store.
            # A bound stays a bound in the ratio too: "<10 ng/L (<1 x URL)".
            bound = safe_comparator(t.comparator) or ""
            text = f"{bound}{t.value_ng_l:g} ng/L"
            if t.ratio_to_url is not None:
                text += f" ({bound}{_ratio(t.ratio_to_url)} x URL"
                if t.sex_specific_url_ng_l:
                    # The lab's limit states no sex: the lower sex-specific one beside it.
                    ratio = t.value_ng_l / t.sex_specific_url_ng_l
                    text += f"; {bound}{_ratio(ratio)} x sex-specific URL"
                text += ")"
        else:
            text = t.status.value
        if t.newer_unread:  # "missing" or a value, and a result nobody could read
            text += UNREAD_NOTE
        return Contribution(item, text, weight, t.status.value, _sources(t.source))
    if item == "ecg":
        e = features.ecg
        # A stale ECG is unscored (category unknown) but keeps its status and source, so the
        # clinician sees that one exists and where.
        text = e.category.value if e.status is Status.PRESENT else e.status.value
        return Contribution(item, text, weight, e.status.value, _sources(e.source))
    finding = _finding(features, item)
    text = "present" if finding.present else "not recorded"
    return Contribution(item, text, weight, finding.status.value, finding.sources)


def _finding(features: ClinicalFeatures, item: str) -> Finding:
    for group in (features.symptoms, features.risk_factors):
        found = getattr(group, item, None)
        if isinstance(found, Finding):
            return found
    raise ValueError(f"no clinical item named {item!r}")


def _measurement_text(item: str, m: Measurement) -> str:
    if m.status is not Status.PRESENT or m.value is None or math.isnan(m.value):
        return m.status.value
    unit = CANONICAL_UNITS[item]
    # One decimal at most: "74.4685 mmHg" (a computed or converted value) claimed a precision
    # no vital sign has. Unless rounding lands on a policy threshold the value is not at: an
    # SpO2 of 91.96 shown as "92 %" beside "SpO2 below 92 %" would contradict the rationale.
    value = f"{m.value:.1f}".rstrip("0").rstrip(".")
    if float(value) != m.value and float(value) in _THRESHOLDS:
        value = f"{m.value:g}"
    return f"{value} {_DISPLAY_UNITS.get(unit, unit)}"


def _ratio(ratio: float) -> str:
    """Three figures, not two: 0.996 and 1.04 x URL lie on either side of a HEART cut-off, and
    two figures showed both as "1 x URL". Whole numbers from 100 up, never "1.47e+03"."""
    return f"{ratio:.0f}" if ratio >= 100 else f"{ratio:.3g}"


def _sources(source: str | None) -> tuple[str, ...]:
    return () if source is None else (source,)
