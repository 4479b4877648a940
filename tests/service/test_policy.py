"""Every rule of the recommendation policy (service/policy.py, docs/engine.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from clinical_features import calm_features, finding, present, stale, troponin
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_adapters.features import (
    ClinicalFeatures,
    Ecg,
    EcgCategory,
    Finding,
    Measurement,
    Status,
    Troponin,
)
from models.schema import SYMPTOMS
from service import policy
from service.assessment import HeartBasis, RiskBand
from service.policy import BandThresholds, recommend

THRESHOLDS = BandThresholds(low_upper=0.05, high_lower=0.20)
LOW_P, MODERATE_P, HIGH_P = 0.01, 0.10, 0.40
Make = Callable[..., ClinicalFeatures]


def heart(total: int = 2) -> HeartBasis:
    band = RiskBand.LOW if total <= 3 else RiskBand.MODERATE if total <= 6 else RiskBand.HIGH
    return HeartBasis(total, min(total, 2), 0, 0, 0, 0, band)


def decide(
    f: ClinicalFeatures, p: float, total: int = 2, max_esi: int = 2
) -> policy.Recommendation:
    return recommend(f, p, THRESHOLDS, heart(total), max_esi)


def test_band_follows_the_manifest_thresholds() -> None:
    assert THRESHOLDS.band(0.0499) is RiskBand.LOW
    assert THRESHOLDS.band(0.05) is RiskBand.MODERATE
    assert THRESHOLDS.band(0.1999) is RiskBand.MODERATE
    assert THRESHOLDS.band(0.20) is RiskBand.HIGH


def test_thresholds_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError, match="thresholds"):
        BandThresholds(0.3, 0.2)


def test_low_risk_without_acs_is_esi_4_with_routine_reassessment() -> None:
    rec = decide(calm_features(), LOW_P)
    assert (rec.band, rec.esi_level, rec.escalated) == (RiskBand.LOW, 4, False)
    assert rec.actions == (policy.ROUTINE_REASSESSMENT,)


@pytest.mark.parametrize("symptom", SYMPTOMS)
def test_any_acs_symptom_gets_an_ecg_in_10_minutes_and_never_esi_4(
    make_features: Make, symptom: str
) -> None:
    rec = decide(make_features(symptoms={symptom: True}), LOW_P)
    assert rec.actions[0] == policy.ECG_WITHIN_10_MIN
    assert rec.esi_level == 3


def test_troponin_above_url_alone_is_possible_acs_at_esi_2(make_features: Make) -> None:
    rec = decide(make_features(troponin=troponin(1.5)), LOW_P)
    assert policy.ECG_WITHIN_10_MIN in rec.actions
    assert policy.CARDIOLOGY_REVIEW in rec.actions
    assert rec.esi_level == 2
    assert rec.escalated


def test_troponin_at_url_is_not_above_it(make_features: Make) -> None:
    rec = decide(make_features(troponin=troponin(1.0)), LOW_P)
    assert policy.ECG_WITHIN_10_MIN not in rec.actions
    assert rec.esi_level == 4


def test_st_deviation_alone_is_possible_acs_at_esi_2(make_features: Make) -> None:
    rec = decide(make_features(ecg=Ecg(EcgCategory.ST_DEVIATION, "Observation/ecg")), LOW_P)
    assert rec.actions[0] == policy.ECG_WITHIN_10_MIN
    assert rec.esi_level == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [("heart_rate", 101.0), ("respiratory_rate", 21.0), ("spo2", 91.0)],
)
def test_danger_zone_vitals_push_to_esi_2_regardless_of_score(
    make_features: Make, field: str, value: float
) -> None:
    rec = decide(make_features(**{field: present(value)}), LOW_P)
    assert rec.band is RiskBand.LOW
    assert rec.esi_level == 2
    assert rec.escalated
    assert policy.IMMEDIATE_PHYSICIAN in rec.actions


@pytest.mark.parametrize(
    ("field", "value"),
    [("heart_rate", 100.0), ("respiratory_rate", 20.0), ("spo2", 92.0)],
)
def test_danger_zone_boundaries_are_strict(make_features: Make, field: str, value: float) -> None:
    assert decide(make_features(**{field: present(value)}), LOW_P).esi_level == 4


def test_stale_vitals_neither_trigger_nor_clear_a_rule(make_features: Make) -> None:
    rec = decide(make_features(heart_rate=stale(), spo2=stale()), LOW_P)
    assert rec.esi_level == 4


def test_hypotension_with_possible_acs_is_esi_1(make_features: Make) -> None:
    f = make_features(systolic_bp=present(85), symptoms={"chest_pain": True})
    rec = decide(f, LOW_P)
    assert rec.esi_level == 1
    assert rec.actions[:2] == (policy.RESUSCITATION, policy.ECG_WITHIN_10_MIN)


def test_hypotension_without_acs_is_esi_2(make_features: Make) -> None:
    rec = decide(make_features(systolic_bp=present(85)), LOW_P)
    assert rec.esi_level == 2
    assert policy.RESUSCITATION not in rec.actions


def test_high_band_gets_esi_2_serial_troponin_and_cardiology(make_features: Make) -> None:
    rec = decide(make_features(symptoms={"chest_pain": True}), HIGH_P)
    assert (rec.band, rec.esi_level, rec.escalated) == (RiskBand.HIGH, 2, True)
    for action in (policy.ECG_WITHIN_10_MIN, policy.SERIAL_TROPONIN, policy.CARDIOLOGY_REVIEW):
        assert action in rec.actions


def test_high_band_is_escalated_even_without_acs() -> None:
    rec = decide(calm_features(), HIGH_P, max_esi=1)
    assert rec.escalated
    assert rec.esi_level == 2


def test_moderate_band_is_esi_2_with_acs_and_3_without(make_features: Make) -> None:
    with_acs = decide(make_features(symptoms={"dyspnea": True}), MODERATE_P)
    without = decide(calm_features(), MODERATE_P)
    assert (with_acs.esi_level, without.esi_level) == (2, 3)
    assert policy.SERIAL_TROPONIN in with_acs.actions
    assert policy.SERIAL_TROPONIN in without.actions
    assert not without.escalated


def test_low_band_heart_pathway_needs_negative_troponin_and_heart_at_most_3(
    make_features: Make,
) -> None:
    f = make_features(symptoms={"chest_pain": True}, troponin=troponin(0.3))
    assert policy.HEART_PATHWAY_DISCHARGE in decide(f, LOW_P, total=3).actions
    assert policy.HEART_PATHWAY_DISCHARGE not in decide(f, LOW_P, total=4).actions
    assert policy.SERIAL_TROPONIN in decide(f, LOW_P, total=4).actions
    missing = replace(f, troponin=Troponin.missing())
    assert decide(missing, LOW_P, total=2).actions == (
        policy.ECG_WITHIN_10_MIN,
        policy.SERIAL_TROPONIN,
    )


def test_heart_pathway_is_not_offered_with_danger_zone_vitals(make_features: Make) -> None:
    f = make_features(
        symptoms={"chest_pain": True}, troponin=troponin(0.3), heart_rate=present(120)
    )
    rec = decide(f, LOW_P, total=1)
    assert policy.HEART_PATHWAY_DISCHARGE not in rec.actions
    assert rec.esi_level == 2


def pathway_candidate(make: Make, **changes: object) -> ClinicalFeatures:
    """Chest pain, negative troponin, normal ECG, normal vitals, 40 years: HEART Pathway."""
    return make(symptoms={"chest_pain": True}, troponin=troponin(0.3), **changes)


def test_the_pathway_candidate_is_offered_early_discharge(make_features: Make) -> None:
    rec = decide(pathway_candidate(make_features), LOW_P, total=2)
    assert policy.HEART_PATHWAY_DISCHARGE in rec.actions
    assert rec.esi_level == 3


@pytest.mark.parametrize(
    ("changes", "blocker"),
    [
        ({"ecg": Ecg(EcgCategory.ST_DEVIATION, "Observation/ecg")}, "escalated to ESI 2"),
        ({"st_deviation_in_window": finding("Observation/ecg0")}, "ischaemia"),
        ({"troponin_above_url_in_window": finding("Observation/tn0")}, "ischaemia"),
        ({"ecg": Ecg(EcgCategory.UNKNOWN)}, "ECG missing"),
        ({"age_years": Measurement.missing()}, "age missing"),
        ({"age_years": present(15)}, "patient under 18"),
        ({"heart_rate": Measurement.missing()}, "heart rate missing"),
        ({"spo2": Measurement(None, Status.IMPLAUSIBLE, "Observation/s")}, "SpO2 implausible"),
        ({"systolic_bp": stale()}, "systolic BP stale"),
    ],
)
def test_early_discharge_needs_every_heart_item_vitals_and_no_ischaemia(
    make_features: Make, changes: dict[str, object], blocker: str
) -> None:
    rec = decide(pathway_candidate(make_features, **changes), LOW_P, total=2)
    assert policy.HEART_PATHWAY_DISCHARGE not in rec.actions
    assert policy.SERIAL_TROPONIN in rec.actions
    assert blocker in " ".join(rec.rationale)


def test_injury_or_ischaemia_within_the_window_escalates_like_the_latest(
    make_features: Make,
) -> None:
    for field in ("st_deviation_in_window", "troponin_above_url_in_window"):
        rec = decide(make_features(**{field: finding()}), LOW_P)
        assert rec.esi_level == 2
        assert policy.CARDIOLOGY_REVIEW in rec.actions
        assert policy.ECG_WITHIN_10_MIN in rec.actions  # possible ACS


def test_heart_high_is_esi_2_whatever_the_model_says(make_features: Make) -> None:
    rec = decide(make_features(symptoms={"dyspnea": True}), LOW_P, total=7)
    assert rec.band is RiskBand.LOW
    assert (rec.esi_level, rec.escalated) == (2, True)
    assert policy.CARDIOLOGY_REVIEW in rec.actions
    assert policy.SERIAL_TROPONIN in rec.actions


def test_heart_moderate_with_possible_acs_is_esi_2_whatever_the_model_says(
    make_features: Make,
) -> None:
    """Was ESI 3 with a LOW model band: a 70-year-old with known atherosclerosis, chest pain
    and HEART 6 waited as a stable ESI 3 (clinical.md: suspected ACS is the textbook ESI 2)."""
    rec = decide(make_features(symptoms={"chest_pain": True}), LOW_P, total=5)
    assert rec.band is RiskBand.LOW
    assert (rec.esi_level, rec.escalated) == (2, True)
    assert policy.SERIAL_TROPONIN in rec.actions
    assert "HEART 5 (moderate) with possible ACS" in " ".join(rec.rationale)
    assert decide(make_features(), LOW_P, total=5).esi_level == 4  # no possible ACS


def test_vitals_not_present_are_asked_for(make_features: Make) -> None:
    rec = decide(make_features(respiratory_rate=Measurement.missing()), LOW_P)
    assert policy.MEASURE_VITALS in rec.actions
    assert "respiratory rate missing" in " ".join(rec.rationale)
    assert policy.MEASURE_VITALS not in decide(make_features(), LOW_P).actions


def test_a_censored_troponin_escalates_only_when_it_is_known_to_be_raised(
    make_features: Make,
) -> None:
    """ "> 26" against a limit of 26 is raised; "< 39" against 26 is indeterminate: no
    escalation on it, and no early discharge either."""
    raised = replace(
        pathway_candidate(make_features), troponin=replace(troponin(1.0), comparator=">")
    )
    rec = decide(raised, LOW_P)
    assert rec.esi_level == 2
    assert policy.CARDIOLOGY_REVIEW in rec.actions
    unknown = replace(
        pathway_candidate(make_features), troponin=replace(troponin(1.5), comparator="<")
    )
    rec = decide(unknown, LOW_P)
    assert rec.esi_level == 3
    assert policy.CARDIOLOGY_REVIEW not in rec.actions
    assert policy.HEART_PATHWAY_DISCHARGE not in rec.actions
    assert "troponin indeterminate (censored result)" in " ".join(rec.rationale)
    below = replace(
        pathway_candidate(make_features), troponin=replace(troponin(0.5), comparator="<")
    )
    assert policy.HEART_PATHWAY_DISCHARGE in decide(below, LOW_P).actions


def test_vitals_from_before_this_visit_are_asked_for_and_block_early_discharge(
    make_features: Make,
) -> None:
    """Yesterday's clinic heart rate is within the model's staleness window but is not a
    triage vital: early discharge waits for this visit's vitals."""
    f = pathway_candidate(make_features)
    assert policy.HEART_PATHWAY_DISCHARGE in decide(f, LOW_P).actions
    edge = f.anchor_time - policy.THIS_VISIT_LEAD
    en_route = replace(f, heart_rate=replace(f.heart_rate, effective=edge))
    assert policy.HEART_PATHWAY_DISCHARGE in decide(en_route, LOW_P).actions
    yesterday = replace(f, heart_rate=replace(f.heart_rate, effective=edge - timedelta(seconds=1)))
    rec = decide(yesterday, LOW_P)
    assert policy.HEART_PATHWAY_DISCHARGE not in rec.actions
    assert policy.MEASURE_VITALS in rec.actions
    assert "heart rate from before this visit" in " ".join(rec.rationale)


@pytest.mark.parametrize(
    ("change", "blocker"),
    [
        ("troponin", "troponin from before this visit"),
        ("ecg", "ECG from before this visit"),
    ],
)
def test_a_troponin_or_ecg_from_before_this_visit_blocks_early_discharge(
    make_features: Make, change: str, blocker: str
) -> None:
    """Was: a negative troponin and a normal ECG from 20 h earlier (within the staleness
    window) allowed early discharge: neither is this presentation's 0 h result."""
    f = pathway_candidate(make_features)
    earlier = f.anchor_time - timedelta(hours=20)
    old = replace(f, **{change: replace(getattr(f, change), effective=earlier)})
    rec = decide(old, LOW_P)
    assert policy.HEART_PATHWAY_DISCHARGE not in rec.actions
    assert blocker in " ".join(rec.rationale)


def test_a_newer_troponin_that_could_not_be_read_blocks_early_discharge(
    make_features: Make,
) -> None:
    f = pathway_candidate(make_features)
    unread = replace(f, troponin=replace(f.troponin, newer_unread=True))
    rec = decide(unread, LOW_P)
    assert policy.HEART_PATHWAY_DISCHARGE not in rec.actions
    assert "a newer troponin could not be read" in " ".join(rec.rationale)


def test_a_troponin_above_the_sex_specific_limit_blocks_early_discharge(
    make_features: Make,
) -> None:
    """Was: within the lab's limit that states no sex, a woman's troponin above the female
    99th percentile allowed early discharge."""
    f = pathway_candidate(make_features)
    hidden = replace(
        f,
        troponin=replace(
            f.troponin,
            sex_specific_url_ng_l=16.0,
            above_sex_specific_url=finding("Observation/tn0"),
        ),
    )
    rec = decide(hidden, LOW_P, total=2)
    assert policy.HEART_PATHWAY_DISCHARGE not in rec.actions
    assert policy.SERIAL_TROPONIN in rec.actions
    assert "sex-specific 99th percentile" in " ".join(rec.rationale)
    # Shown beside the lab's limit only: it alone does not block.
    shown_only = replace(f, troponin=replace(f.troponin, sex_specific_url_ng_l=16.0))
    assert policy.HEART_PATHWAY_DISCHARGE in decide(shown_only, LOW_P, total=2).actions


def test_an_old_danger_zone_vital_still_escalates(make_features: Make) -> None:
    f = make_features(heart_rate=present(130.0))
    old = replace(
        f, heart_rate=replace(f.heart_rate, effective=f.anchor_time - timedelta(hours=20))
    )
    assert decide(old, LOW_P).esi_level == 2


def test_escalation_threshold_comes_from_settings(make_features: Make) -> None:
    f = make_features(symptoms={"nausea": True})
    assert not decide(f, LOW_P, max_esi=2).escalated
    assert decide(f, LOW_P, max_esi=3).escalated


def test_rationale_names_rules_without_values(make_features: Make) -> None:
    rec = decide(make_features(heart_rate=present(137.0)), LOW_P)
    text = " ".join(rec.rationale)
    assert "heart rate above 100 /min" in text
    assert "137" not in text


@settings(max_examples=200, deadline=None)
@given(
    p=st.floats(0.0, 1.0),
    symptom=st.sampled_from(SYMPTOMS),
    hr=st.floats(30, 200),
    sbp=st.floats(60, 200),
    spo2=st.floats(70, 100),
    total=st.integers(0, 10),
)
def test_possible_acs_never_gets_esi_4_or_5_and_always_gets_an_ecg(
    p: float, symptom: str, hr: float, sbp: float, spo2: float, total: int
) -> None:
    f = replace(
        calm_features(),
        heart_rate=present(hr),
        systolic_bp=present(sbp),
        spo2=present(spo2),
        symptoms=replace(calm_features().symptoms, **{symptom: finding()}),
    )
    rec = recommend(f, p, THRESHOLDS, heart(total), 2)
    assert 1 <= rec.esi_level <= 3
    assert policy.ECG_WITHIN_10_MIN in rec.actions
    assert rec.escalated == (rec.band is RiskBand.HIGH or rec.esi_level <= 2)


# --- from a clinical review of the outputs --------------------------------------------------


def test_an_unrecognised_presenting_complaint_is_not_read_as_none() -> None:
    """Was ESI 4 and routine reassessment for "chest tightness" as text or a local code."""
    unread = replace(calm_features(), complaint_not_recognised=True)
    rec = decide(unread, LOW_P)
    assert rec.esi_level == 3
    assert rec.actions[0] == policy.ECG_WITHIN_10_MIN
    assert "presenting complaint not recognised" in " ".join(rec.rationale)


@pytest.mark.parametrize(
    "changes",
    [
        {"troponin": troponin(5.6)},  # NSTEMI-range troponin
        {"ecg": Ecg(EcgCategory.ST_DEVIATION, "Observation/ecg")},
        {"troponin_above_url_in_window": finding("Observation/tn0")},
    ],
)
def test_injury_or_ischaemia_gets_continuous_monitoring(
    make_features: Make, changes: dict[str, object]
) -> None:
    """Was only cardiology review: a patient with a raised troponin went unmonitored."""
    rec = decide(make_features(**changes), LOW_P)
    assert policy.CONTINUOUS_MONITORING in rec.actions
    assert rec.esi_level <= 2


def test_hypotension_with_possible_acs_gets_monitoring_after_the_ecg(make_features: Make) -> None:
    rec = decide(make_features(symptoms={"chest_pain": True}, systolic_bp=present(82.0)), LOW_P)
    assert rec.esi_level == 1
    assert rec.actions[:2] == (policy.RESUSCITATION, policy.ECG_WITHIN_10_MIN)
    assert policy.CONTINUOUS_MONITORING in rec.actions


def test_a_troponin_above_the_sex_specific_limit_is_said_at_every_band(
    make_features: Make,
) -> None:
    """Was said only as an early-discharge blocker, i.e. only in the LOW band."""
    f = make_features(symptoms={"chest_pain": True}, troponin=troponin(0.8))
    hidden = replace(
        f, troponin=replace(f.troponin, above_sex_specific_url=finding("Observation/tn"))
    )
    rec = decide(hidden, MODERATE_P)
    assert policy.SERIAL_TROPONIN in rec.actions
    assert "sex-specific 99th percentile" in " ".join(rec.rationale)


def test_st_elevation_gets_the_stemi_pathway_not_serial_troponin_alone(make_features: Make) -> None:
    """Was serial troponin and cardiology review, as for any ST depression."""
    stemi = make_features(
        symptoms={"chest_pain": True},
        ecg=Ecg(EcgCategory.ST_DEVIATION, "Observation/ecg"),
        st_deviation_in_window=finding("Observation/ecg"),
        st_elevation_in_window=finding("Observation/ecg"),
    )
    rec = decide(stemi, LOW_P)
    assert rec.actions[:2] == (policy.ECG_WITHIN_10_MIN, policy.STEMI_PATHWAY)
    assert policy.IMMEDIATE_PHYSICIAN in rec.actions
    assert rec.esi_level <= 2
    depression = replace(stemi, st_elevation_in_window=Finding(False))
    assert policy.STEMI_PATHWAY not in decide(depression, LOW_P).actions


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"troponin": troponin(5.6)}, "latest troponin above URL"),
        ({"troponin_above_url_in_window": finding("Observation/tn0")},
         "an earlier troponin within the window above URL"),
        ({"ecg": Ecg(EcgCategory.ST_DEVIATION, "Observation/ecg")},
         "ST deviation on the latest ECG"),
        ({"st_deviation_in_window": finding("Observation/ecg0")},
         "ST deviation on an earlier ECG within the window"),
    ],
)  # fmt: skip
def test_the_rationale_says_which_evidence_of_injury_escalated(
    make_features: Make, changes: dict[str, object], said: str
) -> None:
    """Was "troponin above URL or ST deviation (latest, or within the window)": which one, and
    whether it was on the screen's basis, the clinician could not tell."""
    rec = decide(make_features(**changes), LOW_P)
    assert f"{said}: ESI 2 or lower" in rec.rationale
