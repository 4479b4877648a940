"""Contributions shown to clinicians: the batched computation equals the definition (one
occlusion per item, scored alone), is exact and additive for the shipped logistic model, and
names each item's value, provenance and source resources."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
from clinical_features import calm_features, present, stale, troponin

from fhir_adapters.features import ClinicalFeatures, Ecg, EcgCategory, Status
from models.registry import RegisteredModel
from models.schema import vectorize
from service.contributions import ITEMS, TOP_K, ContributionExplainer, describe
from service.scoring import FloatArray, Scorer, imputed_row, load_scorer


@pytest.fixture(scope="module")
def scorer(registered_model: RegisteredModel) -> Scorer:
    return load_scorer(registered_model, "cpu")


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _one_at_a_time(scorer: Scorer, row: FloatArray) -> dict[str, float]:
    """The definition, item by item, each perturbed row scored on its own."""
    reference = imputed_row()
    base = _logit(scorer.probability(row))
    out = {}
    for item in ITEMS:
        cols = list(item.columns)
        if np.array_equal(row[cols], reference[cols]):
            continue
        perturbed = row.copy()
        perturbed[cols] = reference[cols]
        out[item.item] = base - _logit(scorer.probability(perturbed))
    return out


@pytest.fixture
def sick(make_features: Callable[..., ClinicalFeatures]) -> ClinicalFeatures:
    return make_features(
        age_years=present(67, "Patient/p1"),
        heart_rate=present(118, "Observation/hr"),
        systolic_bp=stale("Observation/old-bp"),
        troponin=troponin(50.0),
        symptoms={"shoulder_pain": True, "diaphoresis": True},
        risk_factors={"hypertension": True, "family_history": True},
    )


def test_batched_weights_equal_the_definition(scorer: Scorer, sick: ClinicalFeatures) -> None:
    row = vectorize(sick)
    batched = ContributionExplainer(scorer).weights(row)
    expected = _one_at_a_time(scorer, row)
    assert set(batched) == set(expected)
    assert {"troponin", "shoulder_pain", "hypertension", "age_years"} <= set(batched)
    for item, weight in expected.items():
        assert batched[item] == pytest.approx(weight, abs=1e-4)


def test_not_recorded_row_has_no_contributions(scorer: Scorer) -> None:
    assert ContributionExplainer(scorer).weights(imputed_row()) == {}


def test_weights_are_additive_for_the_logistic_model(
    scorer: Scorer, registered_model: RegisteredModel, sick: ClinicalFeatures
) -> None:
    # logit(p) is linear in the inputs for logistic regression with sigmoid calibration, so
    # the items' contributions add up to the whole difference from "not recorded".
    assert registered_model.manifest.model_kind == "logistic"
    row = vectorize(sick)
    weights = ContributionExplainer(scorer).weights(row)
    whole = _logit(scorer.probability(row)) - _logit(scorer.probability(imputed_row()))
    assert sum(weights.values()) == pytest.approx(whole, abs=1e-3)


def test_top_ranks_by_size_and_shows_the_basis(scorer: Scorer, sick: ClinicalFeatures) -> None:
    explainer = ContributionExplainer(scorer)
    top = explainer.top(sick, vectorize(sick))
    weights = explainer.weights(vectorize(sick))
    assert len(top) == min(TOP_K, len(weights))
    sizes = [abs(c.weight) for c in top]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == pytest.approx(max(abs(w) for w in weights.values()))
    by_item = {c.feature: c for c in top}
    assert by_item["troponin"].value == "1300 ng/L (50 x URL)"
    assert by_item["troponin"].sources == ("Observation/trop",)
    assert by_item["troponin"].status == "present"
    if "systolic_bp" in by_item:
        assert by_item["systolic_bp"].value == "stale"
        assert by_item["systolic_bp"].sources == ("Observation/old-bp",)
    assert explainer.top(sick, vectorize(sick)) == top  # ties broken by name: deterministic


@pytest.mark.parametrize(
    ("ecg", "value", "status", "sources"),
    [
        (Ecg(EcgCategory.ST_DEVIATION, "Observation/ecg"), "st_deviation", "present", 1),
        (Ecg(EcgCategory.UNKNOWN), "missing", "missing", 0),
        # unscored, but the clinician sees that an ECG exists and which one
        (Ecg(EcgCategory.UNKNOWN, "Observation/ecg", status=Status.STALE), "stale", "stale", 1),
    ],
)
def test_the_ecg_item_shows_its_status_and_source(
    make_features: Callable[..., ClinicalFeatures], ecg: Ecg, value: str, status: str, sources: int
) -> None:
    shown = describe(make_features(ecg=ecg), "ecg", 0.0)
    assert (shown.value, shown.status) == (value, status)
    assert shown.sources == ("Observation/ecg",) * sources


def test_the_troponin_ratio_shown_keeps_the_heart_cut_offs_apart() -> None:
    """Was two significant figures: 0.996 and 1.04 x URL both read "1 x URL", on either
    side of HEART's cut-off (and 2.96 / 3.04 both "3 x URL")."""
    shown = [
        describe(replace(calm_features(), troponin=troponin(ratio)), "troponin", 0.0).value
        for ratio in (0.996, 1.04, 2.96, 3.04)
    ]
    assert [text.split("(")[1] for text in shown] == [
        "0.996 x URL)",
        "1.04 x URL)",
        "2.96 x URL)",
        "3.04 x URL)",
    ]


def test_the_troponin_shows_the_lower_sex_specific_limit_beside_the_labs() -> None:
    lab = replace(troponin(20 / 26), sex_specific_url_ng_l=16.0)
    shown = describe(replace(calm_features(), troponin=lab), "troponin", 0.0).value
    assert shown == "20 ng/L (0.769 x URL; 1.25 x sex-specific URL)"


def test_large_ratios_bounds_and_vitals_are_shown_as_a_clinician_reads_them(
    make_features: Callable[..., ClinicalFeatures],
) -> None:
    """Was "(1.47e+03 x URL)", "<10 ng/L (1 x URL)" (a bound shown as at the limit) and
    "74.4685 mmHg"."""
    huge = replace(troponin(1470.0), value_ng_l=38220.0)
    assert describe(replace(calm_features(), troponin=huge), "troponin", 0.0).value == (
        "38220 ng/L (1470 x URL)"
    )
    bound = replace(troponin(10 / 26), value_ng_l=10.0, comparator="<")
    assert describe(replace(calm_features(), troponin=bound), "troponin", 0.0).value == (
        "<10 ng/L (<0.385 x URL)"
    )
    bp = describe(make_features(systolic_bp=present(74.4685)), "systolic_bp", 0.0)
    assert bp.value.startswith("74.5 ")
    assert describe(make_features(heart_rate=present(88.0)), "heart_rate", 0.0).value.startswith(
        "88 "
    )


def test_a_troponin_that_could_not_be_read_is_said_beside_its_status() -> None:
    unread = replace(calm_features().troponin, status=Status.MISSING, newer_unread=True)
    shown = describe(replace(calm_features(), troponin=unread), "troponin", 0.0)
    assert shown.value == "missing; a troponin result could not be read"


@pytest.mark.parametrize(
    ("item", "value", "shown"),
    [("spo2", 91.96, "91.96 %"), ("heart_rate", 100.04, "100.04 /min"), ("spo2", 91.94, "91.9 %")],
)
def test_a_value_never_rounds_onto_the_threshold_the_rationale_compares_with(
    make_features: Callable[..., ClinicalFeatures], item: str, value: float, shown: str
) -> None:
    """Was "92 %" beside the rationale "SpO2 below 92 %"."""
    assert describe(make_features(**{item: present(value)}), item, 0.0).value == shown
