"""Conformance over data nobody on this project wrote: ../shared/fhir-samples.

- every Synthea whole-history bundle extracts with blood pressure found, the encounter
  chosen by recency, and the R4B reference extractor agreeing;
- every HL7 example extracts or fails with the reason documented below. Stand-alone
  resources are wrapped in a collection Bundle (with the Patient they refer to, for
  Observations): a bare resource is not a Bundle, which is itself documented below.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir_builder import CONFIG
from fhir_check import codes_of, extract_both

from fhir_adapters import FhirAdapterError, Reason, extract
from fhir_adapters.features import (
    ClinicalSex,
    EncounterSelection,
    Extraction,
    SexSource,
    Status,
)
from fhir_adapters.fhir_time import parse_fhir_datetime

# ../shared/fhir-samples beside the checkout, or wherever FHIR_SAMPLES_DIR points (a CI
# checkout elsewhere).
SAMPLES = Path(
    os.environ.get("FHIR_SAMPLES_DIR")
    or Path(__file__).resolve().parents[2].parent / "shared" / "fhir-samples"
)
pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"external FHIR samples not present at {SAMPLES}"
)
SYNTHEA = sorted((SAMPLES / "synthea").glob("*.json")) if SAMPLES.is_dir() else []
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("path", SYNTHEA, ids=lambda p: p.name)
def test_synthea_bundle_has_blood_pressure(path: Path) -> None:
    extraction = extract_both(path.read_bytes(), request_time=NOW)
    features = extraction.features
    assert features.encounter_selection is EncounterSelection.MOST_RECENT
    assert "encounter_chosen_by_recency" in codes_of(extraction)
    for bp in (features.systolic_bp, features.diastolic_bp):
        assert bp.status in (Status.PRESENT, Status.STALE)
        assert bp.source is not None
        assert bp.source.startswith("Observation/")
    assert features.age_years.status is Status.PRESENT
    assert features.troponin.status is Status.MISSING  # Synthea of this era has none


def test_synthea_corpus_is_there() -> None:
    assert len(SYNTHEA) >= 30


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((SAMPLES / "hl7" / name).read_bytes())
    return doc


def _wrap(*resources: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": f"http://example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r}
                for r in resources
            ],
        }
    )


# The Patient each stand-alone Observation refers to.
_SUBJECTS = {
    "Patient/example": "r4-core__Patient-example.json",
    "Patient/f001": "r4-core__Patient-f001.json",
}


def _observation_case(name: str) -> tuple[bytes, datetime]:
    obs = _load(name)
    subject = obs.get("subject", {}).get("reference", "Patient/example")
    patient_file = _SUBJECTS[subject]
    if name.startswith("us-core"):
        patient_file = "us-core-6.1.0__patient-example.json"
    effective = obs.get("effectiveDateTime") or obs.get("effectivePeriod", {}).get("start")
    when = parse_fhir_datetime(effective) if effective else None
    return _wrap(_load(patient_file), obs), (when or NOW) + timedelta(hours=1)


Check = Callable[[Extraction], None]


def present(feature: str) -> Check:
    def check(extraction: Extraction) -> None:
        measurement = getattr(extraction.features, feature)
        assert measurement.status is Status.PRESENT, feature
        assert measurement.source is not None

    return check


def warns(code: str, feature: str) -> Check:
    def check(extraction: Extraction) -> None:
        assert code in codes_of(extraction)
        assert getattr(extraction.features, feature).status is Status.MISSING

    return check


def extracts(extraction: Extraction) -> None:
    assert extraction.features.anchor_time is not None


def individual_sex(extraction: Extraction) -> None:
    features = extraction.features
    assert (features.sex, features.sex_source) == (ClinicalSex.FEMALE, SexSource.INDIVIDUAL_SEX)


def bp_dar(extraction: Extraction) -> None:
    assert extraction.features.systolic_bp.value == 107.0
    warns("data_absent", "diastolic_bp")(extraction)


HL7_EXPECTED: dict[str, Reason | Check] = {
    "r4-core__Bundle-bundle-example.json": Reason.NO_PATIENT,  # a MedicationRequest searchset
    "r4-core__Bundle-bundle-references.json": Reason.MULTIPLE_PATIENTS,
    "r4-core__Bundle-bundle-transaction.json": Reason.MULTIPLE_PATIENTS,
    "r4-core__Bundle-f001.json": Reason.NO_PATIENT,  # DiagnosticReport + ServiceRequest
    "r4-core__Bundle-lipids.json": Reason.NO_PATIENT,
    "r4-core__Observation-blood-pressure-cancel.json": warns("cancelled", "systolic_bp"),
    "r4-core__Observation-blood-pressure-dar.json": bp_dar,
    "r4-core__Observation-blood-pressure.json": present("systolic_bp"),
    "r4-core__Observation-body-temperature.json": present("temperature_c"),
    "r4-core__Observation-decimal.json": extracts,  # no subject, no code we use
    "r4-core__Observation-ekg.json": extracts,  # waveform only: no coded finding
    "r4-core__Observation-f001.json": extracts,  # glucose: not a feature
    "r4-core__Observation-heart-rate.json": present("heart_rate"),
    "r4-core__Observation-respiratory-rate.json": present("respiratory_rate"),
    "r4-core__Observation-satO2.json": present("spo2"),
    "r4-core__Observation-vitals-panel.json": extracts,  # members by reference only
    "r4-core__Patient-animal.json": Reason.NON_HUMAN_PATIENT,
    "r4-core__Patient-example.json": extracts,
    "r4-core__Patient-f001.json": extracts,
    "r4-core__Patient-newborn.json": extracts,
    "us-core-6.1.0__blood-pressure.json": present("systolic_bp"),
    "us-core-6.1.0__bp-data-absent.json": warns("data_absent", "diastolic_bp"),
    "us-core-6.1.0__heart-rate.json": present("heart_rate"),
    "us-core-6.1.0__observation-serum-creatinine.json": extracts,
    "us-core-6.1.0__oxygen-saturation.json": present("spo2"),
    "us-core-6.1.0__patient-child-example.json": extracts,
    "us-core-6.1.0__patient-deceased-example.json": extracts,
    "us-core-6.1.0__patient-example-targeted-provenance.json": extracts,
    "us-core-6.1.0__patient-example.json": extracts,
    "us-core-6.1.0__patient-infant-example.json": extracts,
    "us-core-6.1.0__respiratory-rate.json": present("respiratory_rate"),
    "us-core-6.1.0__temperature.json": present("temperature_c"),
    "us-core-9.0.0-dev__patient-example.json": individual_sex,
}


def test_every_hl7_example_has_an_expectation() -> None:
    names = {p.name for p in (SAMPLES / "hl7").glob("*.json")}
    assert names == set(HL7_EXPECTED)


def _case(name: str) -> tuple[bytes, datetime]:
    raw = (SAMPLES / "hl7" / name).read_bytes()
    resource_type = orjson.loads(raw)["resourceType"]
    if resource_type == "Bundle":
        return raw, NOW
    if resource_type == "Patient":
        return _wrap(_load(name)), NOW
    return _observation_case(name)


@pytest.mark.parametrize("name", sorted(HL7_EXPECTED))
def test_hl7_example(name: str) -> None:
    data, request_time = _case(name)
    expected = HL7_EXPECTED[name]
    if isinstance(expected, Reason):
        with pytest.raises(FhirAdapterError) as caught:
            extract(data, CONFIG, request_time=request_time)
        assert caught.value.reason is expected
        return
    expected(extract_both(data, request_time=request_time))


@pytest.mark.parametrize(
    "name", ["r4-core__Patient-example.json", "r4-core__Observation-heart-rate.json"]
)
def test_a_bare_resource_is_not_a_bundle(name: str) -> None:
    with pytest.raises(FhirAdapterError) as caught:
        extract((SAMPLES / "hl7" / name).read_bytes(), CONFIG, request_time=NOW)
    assert caught.value.reason is Reason.NOT_A_BUNDLE
