"""Rejections: each carries a reason and a path, never a bundle value."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from fhir_builder import CONFIG, REQUEST_TIME, bundle, encounter, observation, patient, triage

from fhir_adapters import BundleRejected, BundleTooLarge, FhirAdapterError, Reason, extract

SECRET_NAME = "Zebedee-Quixote"


def reject(data: bytes, **config_changes: object) -> FhirAdapterError:
    config = dataclasses.replace(CONFIG, **config_changes)  # type: ignore[arg-type]
    with pytest.raises(FhirAdapterError) as caught:
        extract(data, config, request_time=REQUEST_TIME)
    assert SECRET_NAME not in str(caught.value)
    return caught.value


def named_patient(**kwargs: object) -> dict[str, object]:
    return {**patient(**kwargs), "name": [{"family": SECRET_NAME}]}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe{}", Reason.NOT_UTF8),
        (b'{"resourceType": "Bundle", ', Reason.NOT_JSON),
        (b"[]", Reason.NOT_A_BUNDLE),
        (orjson.dumps(named_patient()), Reason.NOT_A_BUNDLE),
        (bundle(encounter()), Reason.NO_PATIENT),
        (bundle(named_patient(), named_patient(id="p2")), Reason.MULTIPLE_PATIENTS),
    ],
)
def test_rejections(data: bytes, reason: Reason) -> None:
    error = reject(data)
    assert isinstance(error, BundleRejected)
    assert error.reason is reason


def test_non_human_patient() -> None:
    animal = named_patient(
        extensions=[{"url": "http://hl7.org/fhir/StructureDefinition/patient-animal",
                     "extension": [{"url": "species", "valueCodeableConcept": {"text": "dog"}}]}]
    )  # fmt: skip
    error = reject(bundle(animal))
    assert error.reason is Reason.NON_HUMAN_PATIENT
    assert error.path == "$.entry[0].resource.extension"


def test_duplicate_full_url() -> None:
    doc = orjson.loads(triage(observation("8867-4", 80, "/min", id="hr")))
    doc["entry"][2]["fullUrl"] = doc["entry"][1]["fullUrl"]
    error = reject(orjson.dumps(doc))
    assert (error.reason, error.path) == (Reason.DUPLICATE_FULL_URL, "$.entry[2].fullUrl")


def test_requested_encounter_must_exist() -> None:
    with pytest.raises(BundleRejected) as caught:
        extract(triage(), CONFIG, request_time=REQUEST_TIME, encounter_id="nope")
    assert caught.value.reason is Reason.ENCOUNTER_NOT_FOUND


def test_limits_are_checked() -> None:
    data = triage(*(observation("8867-4", 80, "/min", id=f"hr{i}") for i in range(10)))
    assert isinstance(reject(data, max_bytes=100), BundleTooLarge)
    assert reject(data, max_entries=5).reason is Reason.TOO_MANY_ENTRIES
    deep: object = "x"
    for _ in range(40):
        deep = {"a": [deep]}
    nested = orjson.loads(triage())
    nested["entry"][0]["resource"]["extension"] = [{"url": "u", "valueString": "[[[["}]
    nested["meta"] = {"tag": [deep]}
    assert reject(orjson.dumps(nested), max_depth=64).reason is Reason.TOO_DEEPLY_NESTED


def test_depth_within_the_limit_is_accepted() -> None:
    # Brackets inside strings, escaped quotes and backslashes are not structure.
    doc = orjson.loads(triage())
    doc["entry"][0]["resource"]["extension"] = [{"url": "u", "valueString": '[[[[{{{{\\"[[[[' * 20}]
    config = dataclasses.replace(CONFIG, max_depth=8)
    assert extract(orjson.dumps(doc), config, request_time=REQUEST_TIME)


def test_empty_pseudonym_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="pseudonym_key"):
        extract(triage(), dataclasses.replace(CONFIG, pseudonym_key=b""), request_time=REQUEST_TIME)


def test_strict_mode_rejects_what_r4b_rejects() -> None:
    bad = observation("8867-4", 80, "/min", id="hr")
    bad["valueQuantity"]["value"] = "not-a-number"
    data = triage(bad)
    assert extract(data, CONFIG, request_time=REQUEST_TIME)  # the fast path tolerates it
    strict = dataclasses.replace(CONFIG, strict_validation=True)
    with pytest.raises(BundleRejected) as caught:
        extract(data, strict, request_time=REQUEST_TIME)
    assert caught.value.reason is Reason.STRICT_VALIDATION_FAILED
    assert caught.value.path == "$.entry[2].resource.valueQuantity.value"
    assert "not-a-number" not in str(caught.value)
    # R4 Encounters (class as a Coding) pass: the R4B models are used, not R5.
    assert extract(triage(), strict, request_time=REQUEST_TIME)


@pytest.mark.parametrize(
    ("case", "path"),
    [
        # fhir.resources raises KeyError / TypeError quoting the resourceType it looked up
        ("unknown_resource_type", None),
        ("non_string_resource_type", None),
        ("unknown_contained_type", None),
        # pydantic's location of an unknown element ends with the element's name
        ("unknown_element", "$.entry[0].resource"),
    ],
)
def test_strict_mode_errors_are_typed_and_quote_nothing(case: str, path: str | None) -> None:
    secret = "Jane_Doe_1970_05_01"
    pat = patient()
    extra: list[dict[str, object]] = []
    if case == "unknown_resource_type":
        extra.append({"resourceType": secret, "id": "x"})
    elif case == "non_string_resource_type":
        extra.append({"resourceType": 1970, "id": "x"})
    elif case == "unknown_contained_type":
        pat["contained"] = [{"resourceType": secret, "id": "c"}]
    else:
        pat[secret] = True
    strict = dataclasses.replace(CONFIG, strict_validation=True)
    with pytest.raises(BundleRejected) as caught:
        extract(bundle(pat, encounter(), *extra), strict, request_time=REQUEST_TIME)
    assert caught.value.reason is Reason.STRICT_VALIDATION_FAILED
    if path is not None:
        assert caught.value.path == path
    for text in (str(caught.value), repr(caught.value), caught.value.path or ""):
        assert secret not in text
        assert "1970" not in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_warnings_never_carry_values() -> None:
    obs = observation("8867-4", 987654, "/min", id="hr")
    extraction = extract(triage(obs), CONFIG, request_time=REQUEST_TIME)
    assert extraction.features.warnings
    for warning in extraction.features.warnings:
        assert "987654" not in warning.path
        assert warning.path.startswith("$")
