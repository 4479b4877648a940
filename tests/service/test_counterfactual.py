"""The counterfactual check: the flags, the per-variant comparison and the grid."""

from __future__ import annotations

from dataclasses import replace

import pytest
from clinical_features import calm_features, present, troponin

from fhir_adapters.features import (
    AgeBand,
    AuditAttributes,
    ClinicalFeatures,
    ClinicalSex,
    Ethnicity,
    Extraction,
    Race,
)
from models.registry import RegisteredModel
from models.schema import vectorize
from service.assessment import HeartBasis, RiskBand
from service.counterfactual import evaluate, variant_grid
from service.policy import BandThresholds, recommend
from service.scoring import Scorer, load_scorer

THRESHOLDS = BandThresholds(0.05, 0.20)
HEART = HeartBasis(2, 1, 0, 1, 0, 0, RiskBand.LOW)


@pytest.fixture(scope="module")
def scorer(registered_model: RegisteredModel) -> Scorer:
    return load_scorer(registered_model, "cpu")


def _extraction(
    features: ClinicalFeatures, race: Race, eth: Ethnicity, sex: ClinicalSex
) -> Extraction:
    audit = AuditAttributes(race, eth, sex, AgeBand.AGE_18_44, None, "p", None)
    return Extraction(replace(features, sex=sex), audit)


def test_grid_is_five_races_by_two_ethnicities_by_two_sexes() -> None:
    grid = variant_grid()
    assert len(grid) == 20
    assert len({(v.race, v.ethnicity, v.sex) for v in grid}) == 20


def test_same_features_for_every_variant_is_invariant(scorer: Scorer) -> None:
    f = calm_features()
    p = scorer.probability(vectorize(f))
    actual = recommend(f, p, THRESHOLDS, HEART, 2)
    variants = [_extraction(f, v.race, v.ethnicity, v.sex) for v in variant_grid()]
    result = evaluate(actual, variants, scorer, THRESHOLDS, 2)
    assert result.race_ethnicity_invariant
    assert result.sex_invariant
    assert not any(v.differs for v in result.variants)
    assert all(v.mace_probability == pytest.approx(p, abs=1e-6) for v in result.variants)


def test_a_feature_that_moved_with_race_is_caught(scorer: Scorer) -> None:
    f = calm_features()
    actual = recommend(f, 0.01, THRESHOLDS, HEART, 2)
    variants = []
    for v in variant_grid():
        leaked = replace(f, heart_rate=present(130)) if v.race is Race.ASIAN else f
        variants.append(_extraction(leaked, v.race, v.ethnicity, v.sex))
    result = evaluate(actual, variants, scorer, THRESHOLDS, 2)
    assert not result.race_ethnicity_invariant
    asian = [v for v in result.variants if v.race == "asian"]
    assert all(v.differs and v.actions_changed and v.esi_level == 2 for v in asian)


def test_sex_dependence_is_reported_not_hidden(scorer: Scorer) -> None:
    # A troponin above the women's limit but below the men's: possible ACS only for women.
    f = calm_features()
    actual = recommend(f, 0.01, THRESHOLDS, HEART, 2)
    variants = []
    for v in variant_grid():
        sexed = replace(f, troponin=troponin(1.4 if v.sex is ClinicalSex.FEMALE else 0.9))
        variants.append(_extraction(sexed, v.race, v.ethnicity, v.sex))
    result = evaluate(actual, variants, scorer, THRESHOLDS, 2)
    assert result.race_ethnicity_invariant
    assert not result.sex_invariant
    assert {v.esi_level for v in result.variants if v.sex == "female"} == {2}
