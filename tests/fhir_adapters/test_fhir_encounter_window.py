"""Data of the triage encounter recorded after its start (up to the request), and evidence
of injury or ischaemia anywhere in the staleness windows. Every fixture also runs through the
R4B reference extractor (``extract_both``)."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_builder import (
    ENCOUNTER_REF,
    SNOMED,
    UCUM,
    Resource,
    at,
    concept,
    condition,
    observation,
    triage,
)
from fhir_check import codes_of, extract_both

from fhir_adapters.features import EcgCategory, Status

ANOTHER_ENCOUNTER = {"reference": "Encounter/elsewhere"}
# REQUEST_TIME is 20 minutes after the encounter start T0.
AFTER_START = 5
AFTER_REQUEST = 30


def heart_rate(minutes: float, **extra: Any) -> Resource:
    return observation("8867-4", 118, "/min", id="hr", minutes=minutes, **extra)


def test_triage_vitals_linked_to_the_encounter_count_after_its_start() -> None:
    extraction = extract_both(triage(heart_rate(AFTER_START, encounter=ENCOUNTER_REF)))
    assert extraction.features.heart_rate.status is Status.PRESENT
    assert extraction.features.heart_rate.value == 118
    assert "future_dated" not in codes_of(extraction)


def test_after_the_start_only_the_triage_encounters_own_data_count() -> None:
    for extra in ({}, {"encounter": ANOTHER_ENCOUNTER}):
        extraction = extract_both(triage(heart_rate(AFTER_START, **extra)))
        assert extraction.features.heart_rate.status is Status.MISSING
        assert "future_dated" in codes_of(extraction)


def test_the_triage_encounters_data_after_the_request_are_future_dated() -> None:
    extraction = extract_both(triage(heart_rate(AFTER_REQUEST, encounter=ENCOUNTER_REF)))
    assert extraction.features.heart_rate.status is Status.MISSING
    assert "future_dated" in codes_of(extraction)


def test_a_later_triage_reading_wins_over_one_before_arrival() -> None:
    before = observation("8867-4", 80, "/min", id="ems", minutes=-30)
    after = heart_rate(AFTER_START, encounter=ENCOUNTER_REF)
    measurement = extract_both(triage(before, after)).features.heart_rate
    assert (measurement.value, measurement.source) == (118, "Observation/hr")


def test_an_encounter_diagnosis_recorded_during_triage_is_a_presenting_symptom() -> None:
    pain = condition(
        SNOMED, "29857009", id="cp", minutes=AFTER_START, encounter_ref=ENCOUNTER_REF,
        category="encounter-diagnosis",
    )  # fmt: skip
    features = extract_both(triage(pain)).features
    assert features.symptoms.chest_pain.sources == ("Condition/cp",)


def test_a_condition_diagnosed_during_triage_is_not_history() -> None:
    hypertension = condition(
        SNOMED, "38341003", id="htn", minutes=AFTER_START, encounter_ref=ENCOUNTER_REF
    )
    assert not extract_both(triage(hypertension)).features.risk_factors.hypertension.present


def test_an_ecg_report_of_the_triage_encounter_counts_after_its_start() -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "id": "ecg",
        "status": "final",
        "code": concept("http://loinc.org", "11524-6"),
        "subject": {"reference": "Patient/p1"},
        "encounter": ENCOUNTER_REF,
        "effectiveDateTime": at(AFTER_START),
        "conclusionCode": [concept(SNOMED, "76388001")],
    }
    assert extract_both(triage(report)).features.ecg.category is EcgCategory.ST_DEVIATION


# --- injury or ischaemia within the windows ------------------------------------------------


def hs_troponin(value: float, *, id: str, minutes: float, **quantity: Any) -> Resource:
    obs = observation("89579-7", value, "ng/L", id=id, minutes=minutes)  # URL 16 ng/L (female)
    obs["valueQuantity"].update(quantity)
    return obs


def test_a_raised_troponin_before_a_normal_one_is_kept() -> None:
    features = extract_both(
        triage(hs_troponin(60, id="first", minutes=-600), hs_troponin(10, id="second", minutes=-60))
    ).features
    assert features.troponin.source == "Observation/second"
    assert features.troponin.ratio_to_url is not None
    assert features.troponin.ratio_to_url < 1
    assert features.troponin_above_url_in_window.sources == ("Observation/first",)


def test_raised_troponins_outside_the_window_or_below_a_bound_do_not_count() -> None:
    features = extract_both(
        triage(
            hs_troponin(60, id="old", minutes=-60 * 30),  # outside the 24 h window
            hs_troponin(60, id="bound", minutes=-120, comparator="<"),  # "below 60"
            hs_troponin(10, id="latest", minutes=-60),
        )
    ).features
    assert not features.troponin_above_url_in_window.present


@pytest.mark.parametrize(
    ("value", "comparator", "above", "within"),
    [
        (16, ">", True, False),  # "more than 16" against 16: above, as the latest says too
        (16, ">=", True, False),
        (10, ">", False, False),  # "more than 10": could be 17, could be 11
        (60, "<", False, False),  # "less than 60": indeterminate, neither raised nor negative
        (16, "<=", False, True),
        (10, "<", False, True),
        (16, None, False, True),
        (17, None, True, False),
    ],
)
def test_a_censored_troponin_is_judged_alike_latest_and_in_window(
    value: float, comparator: str | None, above: bool, within: bool
) -> None:
    """Was: "> 16" against a limit of 16 was not above it, and "< 60" counted as raised for
    the latest result but not within the window."""
    bound = {} if comparator is None else {"comparator": comparator}
    features = extract_both(triage(hs_troponin(value, id="tn", minutes=-60, **bound))).features
    assert features.troponin.exceeds_url() is above
    assert features.troponin.within_url() is within
    assert features.troponin_above_url_in_window.present is above
    earlier = triage(
        hs_troponin(value, id="tn", minutes=-120, **bound), hs_troponin(5, id="now", minutes=-5)
    )
    assert extract_both(earlier).features.troponin_above_url_in_window.present is above


@pytest.mark.parametrize(
    "unreadable",
    [
        {"code": "U/L"},  # a unit that is not a mass concentration: never guessed
        {"code": None, "system": None},  # no unit
        {"value": 1e7},  # implausible
    ],
)
def test_a_newer_troponin_that_could_not_be_read_is_flagged(unreadable: dict[str, Any]) -> None:
    """Was silent: the older negative result became "latest" and early discharge could be
    offered on it."""
    newer = hs_troponin(30, id="newer", minutes=-5)
    newer["valueQuantity"].update(unreadable)
    newer["valueQuantity"] = {k: v for k, v in newer["valueQuantity"].items() if v is not None}
    features = extract_both(triage(hs_troponin(5, id="older", minutes=-60), newer)).features
    assert features.troponin.source == "Observation/older"
    assert features.troponin.newer_unread
    alone = extract_both(triage(hs_troponin(5, id="older", minutes=-60))).features
    assert not alone.troponin.newer_unread


def test_a_reported_limit_decides_for_earlier_results_too() -> None:
    earlier = hs_troponin(60, id="first", minutes=-600)
    earlier["referenceRange"] = [{"high": {"value": 100, "system": UCUM, "code": "ng/L"}}]
    features = extract_both(triage(earlier, hs_troponin(10, id="second", minutes=-60))).features
    assert not features.troponin_above_url_in_window.present


def test_a_comparator_outside_fhirs_value_set_makes_the_result_malformed() -> None:
    extraction = extract_both(triage(hs_troponin(50, id="tn", minutes=-60, comparator="approx")))
    assert extraction.features.troponin.status is Status.MISSING
    assert "malformed" in codes_of(extraction)


def ecg(finding: str, *, id: str, minutes: float) -> Resource:
    obs = observation("11524-6", id=id, minutes=minutes)
    obs["valueCodeableConcept"] = concept(SNOMED, finding)
    return obs


def test_a_resolved_st_change_is_kept() -> None:
    features = extract_both(
        triage(ecg("76388001", id="st", minutes=-240), ecg("164854000", id="now", minutes=-10))
    ).features
    assert features.ecg.category is EcgCategory.NORMAL
    assert features.st_deviation_in_window.sources == ("Observation/st",)


def test_an_st_change_outside_the_ecg_window_is_not() -> None:
    features = extract_both(
        triage(ecg("76388001", id="st", minutes=-60 * 30), ecg("164854000", id="now", minutes=-10))
    ).features
    assert not features.st_deviation_in_window.present


def test_a_troponin_that_exists_but_could_not_be_read_is_not_just_missing() -> None:
    """Was "missing" and nothing else: hs-TnI 250 with its unit only as display text read as
    if no troponin had been drawn."""
    unread = hs_troponin(250, id="unread", minutes=-5)
    unread["valueQuantity"] = {"value": 250, "unit": "ng/L"}  # display text, no code
    features = extract_both(triage(unread)).features
    assert features.troponin.status is Status.MISSING
    assert features.troponin.newer_unread
