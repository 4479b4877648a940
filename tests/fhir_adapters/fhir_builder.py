"""Short, valid FHIR R4 fixtures. Every builder returns a plain resource dict; ``bundle``
wraps them into Bundle bytes. Defaults describe a 60-year-old woman at triage whose
encounter started at ``T0``; times are given as offsets from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from fhir_adapters import ExtractionConfig

Resource = dict[str, Any]

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
REQUEST_TIME = T0 + timedelta(minutes=20)
CONFIG = ExtractionConfig(pseudonym_key=b"test-key")
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
PATIENT_REF = {"reference": "Patient/p1"}
ENCOUNTER_REF = {"reference": "Encounter/e1"}


def at(minutes: float = 0.0) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def patient(
    *,
    gender: str | None = "female",
    birth_date: str | None = "1965-01-15",
    race: list[str] | None = None,
    ethnicity: list[str] | None = None,
    extensions: list[dict[str, Any]] | None = None,
    id: str = "p1",
) -> Resource:
    resource: Resource = {"resourceType": "Patient", "id": id}
    if gender is not None:
        resource["gender"] = gender
    if birth_date is not None:
        resource["birthDate"] = birth_date
    ext = list(extensions or [])
    if race is not None:
        ext.append(omb_extension("us-core-race", race))
    if ethnicity is not None:
        ext.append(omb_extension("us-core-ethnicity", ethnicity))
    if ext:
        resource["extension"] = ext
    return resource


def omb_extension(name: str, codes: list[str]) -> dict[str, Any]:
    return {
        "url": US_CORE + name,
        "extension": [
            {
                "url": "ombCategory",
                "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": code},
            }
            for code in codes
        ]
        + [{"url": "text", "valueString": "as recorded"}],
    }


def encounter(
    *,
    id: str = "e1",
    status: str = "in-progress",
    start: str | None = None,
    reasons: list[tuple[str, str]] | None = None,
    subject: dict[str, str] | None = None,
    service_provider: str | None = "Organization/ed-north",
) -> Resource:
    resource: Resource = {
        "resourceType": "Encounter",
        "id": id,
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "subject": subject or PATIENT_REF,
        "period": {"start": start or at(0)},
    }
    if reasons:
        resource["reasonCode"] = [concept(s, c) for s, c in reasons]
    if service_provider:
        resource["serviceProvider"] = {"reference": service_provider}
    return resource


def quantity(value: float, code: str | None, **extra: Any) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value, **extra}
    if code is not None:
        q.update(system=UCUM, code=code)
    return q


def observation(
    loinc: str,
    value: float | None = None,
    unit: str | None = None,
    *,
    id: str,
    minutes: float = 0.0,
    status: str = "final",
    subject: dict[str, str] | None = None,
    components: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> Resource:
    resource: Resource = {
        "resourceType": "Observation",
        "id": id,
        "status": status,
        "code": concept(LOINC, loinc),
        "subject": subject or PATIENT_REF,
        "effectiveDateTime": at(minutes),
    }
    if value is not None:
        resource["valueQuantity"] = quantity(value, unit)
    if components is not None:
        resource["component"] = components
    resource.update(extra)
    return resource


def bp_component(loinc: str, value: float, unit: str | None = "mm[Hg]") -> dict[str, Any]:
    return {"code": concept(LOINC, loinc), "valueQuantity": quantity(value, unit)}


def blood_pressure(
    systolic: float, diastolic: float, *, id: str, panel: str = "85354-9", minutes: float = 0.0
) -> Resource:
    return observation(
        panel,
        id=id,
        minutes=minutes,
        components=[bp_component("8480-6", systolic), bp_component("8462-4", diastolic)],
    )


def condition(
    system: str,
    code: str,
    *,
    id: str,
    minutes: float = -60 * 24 * 365,
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    encounter_ref: dict[str, str] | None = None,
    category: str = "problem-list-item",
    **extra: Any,
) -> Resource:
    resource: Resource = {
        "resourceType": "Condition",
        "id": id,
        "code": concept(system, code),
        "subject": PATIENT_REF,
        "recordedDate": at(minutes),
        "category": [concept("http://terminology.hl7.org/CodeSystem/condition-category", category)],
    }
    if clinical is not None:
        resource["clinicalStatus"] = concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", clinical
        )
    if verification is not None:
        resource["verificationStatus"] = concept(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", verification
        )
    if encounter_ref is not None:
        resource["encounter"] = encounter_ref
    resource.update(extra)
    return resource


def family(relation: str, onset: float, *, code: str = "53741008") -> Resource:
    return {
        "resourceType": "FamilyMemberHistory",
        "id": "fh",
        "status": "completed",
        "patient": {"reference": "Patient/p1"},
        "relationship": concept("http://terminology.hl7.org/CodeSystem/v3-RoleCode", relation),
        "condition": [
            {"code": concept(SNOMED, code),
             "onsetAge": {"value": onset, "system": UCUM, "code": "a"}}
        ],
    }  # fmt: skip


def bundle(*resources: Resource, type: str = "collection") -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": type,
            "entry": [
                {
                    "fullUrl": f"http://example.org/fhir/{r['resourceType']}/{r.get('id', i)}",
                    "resource": r,
                }
                for i, r in enumerate(resources)
            ],
        }
    )


def triage(*resources: Resource, **patient_args: Any) -> bytes:
    """A bundle with the default patient and in-progress encounter plus ``resources``."""
    return bundle(patient(**patient_args), encounter(), *resources)
