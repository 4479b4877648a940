from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from fhir_adapters.features import (
    ABSENT,
    ClinicalFeatures,
    ClinicalSex,
    Ecg,
    EcgCategory,
    EncounterSelection,
    Finding,
    Measurement,
    RiskFactors,
    SexSource,
    Status,
    Symptoms,
    Troponin,
)
from models.heart import HeartBand, HeartNote, band_for_total, heart_score

YES = Finding(True, ("Condition/x",))


def _features(**overrides: object) -> ClinicalFeatures:
    base = ClinicalFeatures(
        anchor_time=datetime(2026, 1, 1, tzinfo=UTC),
        encounter=None,
        encounter_selection=EncounterSelection.NONE,
        age_years=Measurement(40.0, Status.PRESENT),
        sex=ClinicalSex.FEMALE,
        sex_source=SexSource.BIRTHSEX,
        heart_rate=Measurement.missing(),
        systolic_bp=Measurement.missing(),
        diastolic_bp=Measurement.missing(),
        respiratory_rate=Measurement.missing(),
        spo2=Measurement.missing(),
        temperature_c=Measurement.missing(),
        bmi=Measurement.missing(),
        troponin=Troponin(Status.PRESENT, ratio_to_url=0.5),
        ecg=Ecg(EcgCategory.NORMAL),
        symptoms=Symptoms(),
        risk_factors=RiskFactors(),
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("symptoms", "points"),
    [
        (Symptoms(), 0),
        (Symptoms(chest_pain=YES), 1),
        (Symptoms(chest_pain=YES, dyspnea=YES), 1),
        (Symptoms(chest_pain=YES, jaw_pain=YES), 2),
        (Symptoms(chest_pain=YES, diaphoresis=YES), 2),
        (Symptoms(dyspnea=YES), 1),
        (Symptoms(arm_pain=YES, nausea=YES), 2),  # cardiac equivalent without chest pain
        (Symptoms(epigastric_pain=YES, dyspnea=YES), 2),
    ],
)
def test_history(symptoms: Symptoms, points: int) -> None:
    assert heart_score(_features(symptoms=symptoms)).history == points


@pytest.mark.parametrize(("age", "points"), [(44.0, 0), (45.0, 1), (64.9, 1), (65.0, 2)])
def test_age(age: float, points: int) -> None:
    assert heart_score(_features(age_years=Measurement(age, Status.PRESENT))).age == points


@pytest.mark.parametrize(("ratio", "points"), [(1.0, 0), (1.01, 1), (3.0, 1), (3.01, 2)])
def test_troponin(ratio: float, points: int) -> None:
    f = _features(troponin=Troponin(Status.PRESENT, ratio_to_url=ratio))
    assert heart_score(f).troponin == points


@pytest.mark.parametrize(
    ("ratio", "comparator", "points"),
    [(1.0, ">", 1), (3.0, ">=", 2), (0.5, ">", 0), (1.5, "<", 0), (4.0, "<=", 0)],
)
def test_troponin_bounds(ratio: float, comparator: str, points: int) -> None:
    """A lower bound at a cut-off is above it; an upper bound is never above one."""
    f = _features(troponin=Troponin(Status.PRESENT, comparator=comparator, ratio_to_url=ratio))
    assert heart_score(f).troponin == points


def test_adding_a_symptom_never_lowers_history() -> None:
    """Was: chest pain + dyspnea + epigastric pain scored 1, the same without chest pain 2;
    the lost point crossed the HEART Pathway and HEART-high cut-offs."""
    flags = [f.name for f in dataclasses.fields(Symptoms)]
    for mask in range(1 << len(flags)):
        present = {name: YES for i, name in enumerate(flags) if mask >> i & 1}
        score = heart_score(_features(symptoms=Symptoms(**present))).history
        for extra in flags:
            if extra not in present:
                more = heart_score(_features(symptoms=Symptoms(**present, **{extra: YES})))
                assert more.history >= score, (sorted(present), extra)


def test_missing_data_scores_zero_with_notes() -> None:
    s = heart_score(
        _features(
            troponin=Troponin.missing(),
            ecg=Ecg(EcgCategory.UNKNOWN),
            age_years=Measurement.missing(),
        )
    )
    assert (s.troponin, s.ecg, s.age) == (0, 0, 0)
    assert set(s.notes) == {
        HeartNote.TROPONIN_MISSING,
        HeartNote.ECG_UNKNOWN,
        HeartNote.AGE_MISSING,
    }


def test_risk_factors_and_known_atherosclerosis() -> None:
    assert heart_score(_features()).risk_factors == 0
    assert heart_score(_features(risk_factors=RiskFactors(hypertension=YES))).risk_factors == 1
    three = RiskFactors(hypertension=YES, diabetes=YES, smoking=YES)
    assert heart_score(_features(risk_factors=three)).risk_factors == 2
    athero = RiskFactors(known_atherosclerosis=YES, hypertension=ABSENT)
    assert heart_score(_features(risk_factors=athero)).risk_factors == 2


def test_ecg_and_total_and_band() -> None:
    f = _features(
        ecg=Ecg(EcgCategory.ST_DEVIATION),
        age_years=Measurement(70.0, Status.PRESENT),
        symptoms=Symptoms(chest_pain=YES, arm_pain=YES),
        troponin=Troponin(Status.PRESENT, ratio_to_url=5.0),
        risk_factors=RiskFactors(known_atherosclerosis=YES),
    )
    s = heart_score(f)
    assert s.total == 10
    assert s.band is HeartBand.HIGH
    assert [band_for_total(t) for t in (3, 4, 6, 7)] == [
        HeartBand.LOW,
        HeartBand.MODERATE,
        HeartBand.MODERATE,
        HeartBand.HIGH,
    ]


@pytest.mark.parametrize(
    ("status", "note"),
    [
        (Status.STALE, HeartNote.TROPONIN_STALE),
        (Status.IMPLAUSIBLE, HeartNote.TROPONIN_IMPLAUSIBLE),
    ],
)
def test_an_unscored_troponin_says_why(status: Status, note: HeartNote) -> None:
    """Was "troponin_missing" for a stale or implausible result too: a raised troponin from
    30 hours ago read as if none had been drawn."""
    s = heart_score(_features(troponin=Troponin(status, source="Observation/tn")))
    assert s.troponin == 0
    assert note in s.notes
    assert HeartNote.TROPONIN_MISSING not in s.notes
