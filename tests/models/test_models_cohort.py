from __future__ import annotations

import time

import numpy as np
import pytest

from fhir_adapters.features import TroponinAssay
from models.cohort import (
    HISTORICAL_UNDER_TESTING,
    CohortParams,
    CohortTable,
    PresentationShift,
    generate_cohort,
)
from models.cohort.params import FACILITIES
from models.heart import HeartBand, band_for_total, heart_score


@pytest.fixture(scope="module")
def calibration_table() -> CohortTable:
    return generate_cohort(CohortParams(n=30_000, seed=7))


def test_deterministic_by_seed() -> None:
    a = generate_cohort(CohortParams(n=500, seed=3))
    b = generate_cohort(CohortParams(n=500, seed=3))
    c = generate_cohort(CohortParams(n=500, seed=4))
    assert a.case(17) == b.case(17)
    np.testing.assert_array_equal(a.troponin_ng_l, b.troponin_ng_l)
    assert not np.array_equal(a.troponin_ng_l, c.troponin_ng_l)


def test_hundred_thousand_encounters_fast() -> None:
    start = time.perf_counter()
    table = generate_cohort(CohortParams(n=100_000, seed=1))
    assert len(table) == 100_000
    assert time.perf_counter() - start < 5.0  # measured ~0.15 s


def test_heart_band_mace_rates_match_backus_2013(calibration_table: CohortTable) -> None:
    bands = np.array([heart_score(f).band.value for f in calibration_table.features()])
    y = calibration_table.true_mace
    rates = {b: y[bands == b.value].mean() for b in HeartBand}
    # Published: 1.7% / 16.6% / 50.1%; tolerance reflects sampling and model fit.
    assert 0.008 <= rates[HeartBand.LOW] <= 0.028
    assert 0.13 <= rates[HeartBand.MODERATE] <= 0.21
    assert 0.44 <= rates[HeartBand.HIGH] <= 0.62
    assert band_for_total(3) is HeartBand.LOW


def test_mi_without_chest_pain_by_sex(calibration_table: CohortTable) -> None:
    t = calibration_table
    no_cp = ~t.chest_pain
    women = no_cp[t.true_mace & t.female].mean()
    men = no_cp[t.true_mace & ~t.female].mean()
    assert women == pytest.approx(0.42, abs=0.03)
    assert men == pytest.approx(0.31, abs=0.03)


def test_every_encounter_has_chest_pain_or_an_equivalent(calibration_table: CohortTable) -> None:
    t = calibration_table
    any_symptom = (
        t.chest_pain
        | t.shoulder_pain
        | t.arm_pain
        | t.jaw_pain
        | t.dyspnea
        | t.diaphoresis
        | t.nausea
        | t.epigastric_pain
    )
    assert any_symptom.all()


def test_presentation_shift_knob_moves_the_share() -> None:
    shifted = PresentationShift(
        by_sex={"female": 0.6, "male": 0.31}, by_race={"black_or_african_american": 0.1}
    )
    t = generate_cohort(CohortParams(n=30_000, seed=2, presentation_shift=shifted))
    black_women = t.true_mace & t.female & (t.race_labels() == "black_or_african_american")
    assert (~t.chest_pain[black_women]).mean() == pytest.approx(0.7, abs=0.08)


def test_label_bias_hides_mace_only_where_configured() -> None:
    unbiased = generate_cohort(CohortParams(n=20_000, seed=5))
    np.testing.assert_array_equal(unbiased.true_mace, unbiased.recorded_mace)
    biased = generate_cohort(CohortParams(n=20_000, seed=5, label_bias=HISTORICAL_UNDER_TESTING))
    np.testing.assert_array_equal(unbiased.true_mace, biased.true_mace)  # truth unchanged
    assert not (biased.recorded_mace & ~biased.true_mace).any()
    race = biased.race_labels()
    recorded_share = {
        r: biased.recorded_mace[biased.true_mace & (race == r)].mean()
        for r in ("black_or_african_american", "white")
    }
    assert recorded_share["black_or_african_american"] < recorded_share["white"] - 0.2


def test_facilities_differ_in_demographic_mix(calibration_table: CohortTable) -> None:
    t = calibration_table
    black = t.race_labels() == "black_or_african_american"
    shares = [black[t.facility == i].mean() for i in range(len(FACILITIES))]
    assert max(shares) - min(shares) > 0.2
    hispanic = t.ethnicity_labels() == "hispanic_or_latino"
    assert hispanic[t.facility == 3].mean() > 0.5 > hispanic[t.facility == 1].mean()


def test_hs_troponin_uses_sex_specific_limits(calibration_table: CohortTable) -> None:
    urls: dict[str, set[float]] = {"female": set(), "male": set()}
    for case in calibration_table.cases(range(400)):
        t = case.features.troponin
        if t.assay is TroponinAssay.HIGH_SENSITIVITY and t.url_ng_l is not None:
            urls[case.sex.value].add((t.loinc or "", t.url_ng_l))  # type: ignore[arg-type]
            assert t.ratio_to_url == pytest.approx((t.value_ng_l or 0) / t.url_ng_l)
    assert urls["female"]
    assert urls["male"]
    assert urls["female"].isdisjoint(urls["male"])
