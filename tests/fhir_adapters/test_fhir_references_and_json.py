"""Defects found by a review of reference resolution, the named encounter, JSON that orjson
refuses, identity and blood-pressure pairs; each test failed on the code before its fix."""

from __future__ import annotations

import orjson
import pytest
from fhir_builder import (
    CONFIG,
    ENCOUNTER_REF,
    REQUEST_TIME,
    SNOMED,
    T0,
    Resource,
    at,
    blood_pressure,
    bundle,
    encounter,
    observation,
    patient,
    triage,
)
from fhir_check import codes_of, extract_both

from fhir_adapters import BundleRejected, BundleTooLarge, Reason, extract
from fhir_adapters.features import ClinicalSex, EncounterSelection, Race, Status
from fhir_adapters.reference import extract_reference

# --- the encounter the request names ---------------------------------------------------------


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error"])
def test_a_named_encounter_that_was_voided_is_refused(status: str) -> None:
    """Was used silently: a voided visit's start and reasonCode drove the assessment."""
    data = bundle(patient(), encounter(status=status))
    with pytest.raises(BundleRejected) as caught:
        extract(data, CONFIG, request_time=REQUEST_TIME, encounter_id="e1")
    assert caught.value.reason is Reason.ENCOUNTER_NOT_USABLE
    assert caught.value.path == "$.entry[1].resource.status"


def test_a_named_encounter_starting_after_the_request_is_anchored_at_the_request() -> None:
    """Was: the anchor was the future start, so a heart rate recorded 40 minutes after the
    request counted as present."""
    later = encounter(status="planned", start=at(120))
    after_request = observation("8867-4", 150, "/min", id="hr", minutes=60)
    extraction = extract_both(bundle(patient(), later, after_request), encounter_id="Encounter/e1")
    features = extraction.features
    assert features.encounter_selection is EncounterSelection.REQUESTED
    assert features.anchor_time == REQUEST_TIME
    assert features.heart_rate.status is Status.MISSING
    warned = [(w.code, w.path) for w in features.warnings]
    assert ("future_dated", "$.entry[1].resource.period") in warned


# --- version-specific references ---------------------------------------------------------------


def test_version_specific_references_resolve_to_the_resource() -> None:
    """Was: "Patient/p1/_history/1" matched nothing: the patient's data were dropped as
    unresolved, and a named "Encounter/e1/_history/2" was not found."""
    versioned_patient = {"reference": "Patient/p1/_history/1"}
    visit = encounter(subject=versioned_patient)
    hr = observation(
        "8867-4", 88, "/min", id="hr", minutes=5, subject=versioned_patient,
        encounter={"reference": "Encounter/e1/_history/2"},
    )  # fmt: skip
    extraction = extract_both(bundle(patient(), visit, hr), encounter_id="Encounter/e1/_history/2")
    features = extraction.features
    assert features.encounter_selection is EncounterSelection.REQUESTED
    assert (features.heart_rate.status, features.heart_rate.value) == (Status.PRESENT, 88.0)
    assert codes_of(extraction) == []


# --- JSON that orjson refuses ---------------------------------------------------------------


def _with_raw_value(raw: bytes) -> bytes:
    """A triage bundle whose heart rate value is ``raw`` JSON text (orjson cannot write it)."""
    data = triage(observation("8867-4", 12345, "/min", id="hr", minutes=-5))
    assert data.count(b"12345") == 1
    return data.replace(b"12345", raw)


@pytest.mark.parametrize("raw", [b"1e309", b"-1e309", b"9" * 310])
def test_a_number_beyond_a_double_is_implausible_not_a_rejected_bundle(raw: bytes) -> None:
    """Was: not_json for the whole bundle (orjson refuses numbers beyond a double)."""
    extraction = extract(_with_raw_value(raw), CONFIG, request_time=REQUEST_TIME)
    assert extraction.features.heart_rate.status is Status.IMPLAUSIBLE
    assert "implausible_value" in codes_of(extraction)


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_literals_are_still_not_json(raw: bytes) -> None:
    with pytest.raises(BundleRejected) as caught:
        extract(_with_raw_value(raw), CONFIG, request_time=REQUEST_TIME)
    assert caught.value.reason is Reason.NOT_JSON


def test_nesting_beyond_orjsons_limit_is_too_deep_not_json() -> None:
    """Was not_json (BundleRejected) where the reference said too_deeply_nested."""
    deep = b"[" * 1030 + b"]" * 1030
    data = triage().replace(b'"collection"', b'"collection","deep":' + deep)
    with pytest.raises(BundleTooLarge) as caught:
        extract(data, CONFIG, request_time=REQUEST_TIME)
    assert caught.value.reason is Reason.TOO_DEEPLY_NESTED


def test_the_reference_extractor_refuses_unknown_resource_types_with_a_typed_error() -> None:
    """Was a KeyError quoting the resourceType (any text the bundle carried)."""
    data = orjson.dumps(
        {"resourceType": "Bundle", "type": "collection",
         "entry": [{"resource": {"resourceType": "JaneDoeSSN123"}}]}
    )  # fmt: skip
    with pytest.raises(BundleRejected) as caught:
        extract_reference(data, CONFIG, request_time=REQUEST_TIME)
    assert "JaneDoe" not in str(caught.value)
    assert caught.value.reason is Reason.STRICT_VALIDATION_FAILED


# --- identity -------------------------------------------------------------------------------


def _anonymous(*resources: Resource) -> bytes:
    """Entries without fullUrl."""
    return orjson.dumps(
        {"resourceType": "Bundle", "type": "collection",
         "entry": [{"resource": r} for r in resources]}
    )  # fmt: skip


def test_a_patient_with_neither_id_nor_full_url_is_refused() -> None:
    """Was: every such patient got the pseudonym of "Patient/#0", merging their audit rows
    (and nothing in the bundle could refer to the patient anyway)."""
    nameless = {k: v for k, v in patient().items() if k != "id"}
    with pytest.raises(BundleRejected) as caught:
        extract(_anonymous(nameless), CONFIG, request_time=REQUEST_TIME)
    assert caught.value.reason is Reason.PATIENT_WITHOUT_ID
    assert caught.value.path == "$.entry[0].resource.id"


def test_an_encounter_with_neither_id_nor_full_url_has_no_pseudonym() -> None:
    """Was: every such encounter got the pseudonym of "Encounter/#1", so ReportOutcome by
    encounter could join different patients' visits."""
    visit = {k: v for k, v in encounter().items() if k != "id"}
    extraction = extract_both(_anonymous(patient(), visit))
    assert extraction.features.anchor_time == T0  # still the anchor
    assert extraction.audit.encounter_pseudonym is None
    assert extraction.audit.patient_pseudonym


# --- blood pressure is one measurement -----------------------------------------------------


def test_systolic_and_diastolic_are_never_paired_across_readings() -> None:
    """Was: 400/130 now (systolic implausible) beside 118/75 ten hours ago gave 118/130."""
    data = triage(
        blood_pressure(400, 130, id="now", minutes=-5),
        blood_pressure(118, 75, id="before", minutes=-600),
    )
    features = extract_both(data).features
    assert (features.systolic_bp.value, features.diastolic_bp.value) == (118.0, 75.0)
    assert features.systolic_bp.source == features.diastolic_bp.source == "Observation/before"


def test_a_panel_with_systolic_not_above_diastolic_is_implausible() -> None:
    extraction = extract_both(triage(blood_pressure(60, 120, id="swapped", minutes=-5)))
    features = extraction.features
    assert features.systolic_bp.status is Status.IMPLAUSIBLE
    assert features.diastolic_bp.status is Status.IMPLAUSIBLE
    warned = [(w.code, w.path) for w in features.warnings]
    assert ("implausible_value", "$.entry[2].resource.component") in warned


def test_a_computed_bmi_out_of_range_is_warned() -> None:
    """Was implausible without a warning saying so."""
    data = triage(
        observation("29463-7", 300, "kg", id="wt", minutes=-5),
        observation("8302-2", 100, "cm", id="ht", minutes=-5),
    )
    extraction = extract_both(data)
    assert extraction.features.bmi.status is Status.IMPLAUSIBLE
    assert ("implausible_value", "$.entry[2].resource") in [
        (w.code, w.path) for w in extraction.features.warnings
    ]


def test_the_encounter_reference_of_an_observation_may_be_version_specific() -> None:
    during = observation(
        "8867-4", 91, "/min", id="hr", minutes=10,
        encounter={"reference": ENCOUNTER_REF["reference"] + "/_history/7"},
    )  # fmt: skip
    assert extract_both(triage(during)).features.heart_rate.value == 91.0


# --- sex and race sources that contradict themselves ------------------------------------------

_BIRTHSEX_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
_INDIVIDUAL_SEX_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-individual-sex"


@pytest.mark.parametrize(
    "extensions",
    [
        [{"url": _BIRTHSEX_URL, "valueCode": "F"}, {"url": _BIRTHSEX_URL, "valueCode": "M"}],
        [
            {"url": _INDIVIDUAL_SEX_URL, "valueCoding": {"system": SNOMED, "code": "248152002"}},
            {"url": _INDIVIDUAL_SEX_URL, "valueCoding": {"system": SNOMED, "code": "248153007"}},
        ],
    ],
)
def test_two_sex_extensions_that_disagree_give_unknown(extensions: list[Resource]) -> None:
    """Was: the last one read won (female then male gave male, and the male troponin limit)."""
    person = patient(gender="male")
    person["extension"] = extensions
    features = extract_both(bundle(person, encounter())).features
    assert features.sex is ClinicalSex.UNKNOWN


def test_a_race_code_from_another_system_is_not_an_omb_category() -> None:
    """Was: "2106-3" in any code system was read as White."""
    person = patient()
    person["extension"] = [
        {
            "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
            "extension": [
                {"url": "ombCategory", "valueCoding": {"system": "http://x", "code": "2106-3"}}
            ],
        }
    ]
    assert extract_both(bundle(person, encounter())).audit.race is Race.INVALID


# --- text that is not Unicode ----------------------------------------------------------------
# A lone surrogate escape ("\ud800") is valid JSON but not Unicode text: such an id or reference
# could be neither hashed into a pseudonym nor stored. Was: UnicodeEncodeError / TypeError
# (gRPC INTERNAL). The R4B models refuse such ids, so these are checked on the fast path.

_LONE = b"\\ud800"


def _with_lone_surrogate(data: bytes, text: bytes) -> bytes:
    """``data`` with a lone surrogate escape inside the last occurrence of ``text``."""
    at = data.rindex(text)
    return data[:at] + text[:-1] + _LONE + text[-1:] + data[at + len(text) :]


def test_an_id_that_is_not_unicode_text_is_malformed_and_the_full_url_names_it() -> None:
    data = _with_lone_surrogate(triage(observation("8867-4", 88, "/min", id="hr")), b'"id":"hr"')
    extraction = extract(data, CONFIG, request_time=REQUEST_TIME)
    assert extraction.features.heart_rate.value == 88
    assert extraction.features.heart_rate.source == "http://example.org/fhir/Observation/hr"
    assert ("malformed", "$.entry[2].resource.id") in {
        (w.code, w.path) for w in extraction.features.warnings
    }


def test_references_and_full_urls_that_are_not_unicode_text_are_malformed() -> None:
    data = triage(observation("8867-4", 88, "/min", id="hr"))  # the last entry
    data = _with_lone_surrogate(data, b'"fullUrl":"http://example.org/fhir/Observation/hr"')
    data = _with_lone_surrogate(data, b'"Patient/p1"')  # the Observation's subject
    extraction = extract(data, CONFIG, request_time=REQUEST_TIME)
    assert extraction.features.heart_rate.status is Status.MISSING  # its subject is unusable
    warned = {(w.code, w.path) for w in extraction.features.warnings}
    assert ("malformed", "$.entry[2].fullUrl") in warned
    assert ("unresolved_reference", "$.entry[2].resource.subject") in warned  # as malformed ones


def test_a_patient_id_that_is_not_unicode_text_needs_a_full_url() -> None:
    nameless = _with_lone_surrogate(_anonymous(patient()), b'"id":"p1"')
    with pytest.raises(BundleRejected) as caught:
        extract(nameless, CONFIG, request_time=REQUEST_TIME)
    assert caught.value.reason is Reason.PATIENT_WITHOUT_ID
    named = _with_lone_surrogate(bundle(patient(), encounter()), b'"id":"p1"')
    assert extract(named, CONFIG, request_time=REQUEST_TIME).audit.patient_pseudonym


# --- warnings are bounded ----------------------------------------------------------------------


def test_one_problem_read_many_times_is_warned_once() -> None:
    """Was one warning per repeated coding (180,000 from one 8 MiB Observation), each stored
    twice: ~22 MB of audit rows per request."""
    hr = observation("8867-4", 88, "[ft_i]", id="hr")  # a unit heart rate cannot have
    hr["code"]["coding"] *= 500
    extraction = extract_both(triage(hr))
    assert [(w.code, w.path) for w in extraction.features.warnings] == [
        ("unknown_unit", "$.entry[2].resource.valueQuantity")
    ]


def test_many_problems_are_capped_with_a_last_warning_saying_so() -> None:
    broken = [observation("8867-4", 88, "[ft_i]", id=f"hr{i}", minutes=-i) for i in range(300)]
    warnings = extract(triage(*broken), CONFIG, request_time=REQUEST_TIME).features.warnings
    assert len(warnings) == 101
    assert (warnings[-1].code, warnings[-1].path) == ("warnings_truncated", "$")


def test_an_unread_complaint_survives_the_warning_cap() -> None:
    """Was dropped with the warnings past the cap, and with it the policy's ECG rule (a long
    $everything export gave 100 other warnings first)."""
    visit = encounter()
    visit["reasonCode"] = [{"text": "chest tightness"}]
    voided = [
        observation("8867-4", 80, "/min", id=f"v{i}", status="entered-in-error", minutes=-i)
        for i in range(150)
    ]
    features = extract_both(bundle(patient(), visit, *voided)).features
    assert features.complaint_not_recognised
    assert "presenting_complaint_not_recognised" in {w.code for w in features.warnings}
    assert "warnings_truncated" in {w.code for w in features.warnings}
