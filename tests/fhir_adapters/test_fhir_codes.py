"""ICD-10-CM code sets whose neighbours mean something else: each test names a code that
must count and one beside it that must not, extracted end to end (fast and reference)."""

from __future__ import annotations

import pytest
from fhir_builder import (
    ICD10,
    SNOMED,
    Resource,
    bundle,
    condition,
    encounter,
    family,
    patient,
    triage,
)
from fhir_check import extract_both

from fhir_adapters.features import ClinicalFeatures


def _features(*resources: Resource) -> ClinicalFeatures:
    return extract_both(triage(*resources)).features


@pytest.mark.parametrize(
    ("code", "arm_pain"),
    [
        ("M79.601", True),  # right arm
        ("M79.603", True),  # arm, unspecified
        ("M79.621", True),  # right upper arm
        ("M79.632", True),  # left forearm
        ("M79.604", False),  # right leg
        ("M79.606", False),  # leg, unspecified
        ("M79.609", False),  # limb, unspecified
    ],
)
def test_arm_pain_is_the_arm_not_any_limb(code: str, arm_pain: bool) -> None:
    features = extract_both(bundle(patient(), encounter(reasons=[(ICD10, code)]))).features
    assert features.symptoms.arm_pain.present is arm_pain


@pytest.mark.parametrize(
    ("code", "smoking"),
    [
        ("F17.210", True),  # cigarettes, uncomplicated
        ("F17.200", True),  # unspecified product
        ("F17.219", True),  # cigarettes, with unspecified disorders
        ("F17.290", True),  # other tobacco product (cigars, pipes)
        ("F17.211", False),  # cigarettes, in remission: abstinent 3 months or more
        ("F17.201", False),  # unspecified product, in remission
        ("F17.220", False),  # chewing tobacco is not smoking
    ],
)
def test_smoking_is_current_smoked_tobacco(code: str, smoking: bool) -> None:
    features = _features(condition(ICD10, code, id="tob"))
    assert features.risk_factors.smoking.present is smoking


@pytest.mark.parametrize(
    ("code", "smoking"),
    [
        ("449868002", True),  # smokes tobacco daily
        ("65568007", True),  # cigarette smoker
        ("77176002", False),  # "smoker, current status unknown" (72166-2's value set)
    ],
)
def test_smoking_conditions_in_snomed(code: str, smoking: bool) -> None:
    features = _features(condition(SNOMED, code, id="tob"))
    assert features.risk_factors.smoking.present is smoking


@pytest.mark.parametrize(
    ("code", "obesity"),
    [("E66.01", True), ("E66.9", True), ("E66.811", True), ("E66.3", False)],
)
def test_overweight_is_not_obesity(code: str, obesity: bool) -> None:
    features = _features(condition(ICD10, code, id="wt"))
    assert features.risk_factors.obesity.present is obesity


@pytest.mark.parametrize(
    ("relation", "counts"),
    [("FTH", True), ("NSIS", True), ("TWINBRO", True), ("HBRO", False), ("STPSIS", False)],
)
def test_family_history_is_first_degree(relation: str, counts: bool) -> None:
    features = _features(family(relation, 50, code="22298006"))
    assert features.risk_factors.family_history.present is counts
