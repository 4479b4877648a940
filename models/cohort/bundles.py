"""FHIR R4 triage bundles for cohort cases, as JSON bytes.

``build_bundle(case)`` writes what an EHR sends at triage: Patient (US Core race, ethnicity
and birth-sex extensions), the in-progress Encounter (reasonCode, serviceProvider), vital
signs (BP as the 85354-9 panel), the troponin with its reference range, the ECG, Conditions
for symptoms and risk factors, smoking status and FamilyMemberHistory. Every observation is
recorded a few minutes before the encounter start, so it is "before the anchor" however an
extractor reads that. ``validate=True`` (default) parses the bundle with
``fhir.resources.R4B`` so a malformed resource fails here, not in the service.

``build_history_bundle(case, target_bytes)`` adds older, finished encounters and historical
vital signs until the bundle reaches ``target_bytes`` - a whole-history ($everything)
bundle for benchmarks. The extra resources are all older than the staleness windows, so the
extracted features are those of ``build_bundle``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from fhir_adapters.features import ClinicalFeatures, EcgCategory, Measurement

from ..schema import SYMPTOMS
from . import codes as c
from .params import CohortParams
from .table import (
    ECG_MINUTES_BEFORE,
    TROPONIN_MINUTES_BEFORE,
    VITALS_MINUTES_BEFORE,
    CohortCase,
)

FULL_URL_BASE = "https://ehr.example.org/fhir"
Resource = dict[str, Any]


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _cc(system: str, code: str, display: str, text: str | None = None) -> Resource:
    out: Resource = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        out["text"] = text
    return out


def _quantity(value: float, unit: str) -> Resource:
    return {"value": value, "unit": unit, "system": c.UCUM, "code": unit}


def _num(value: float) -> float | int:
    """Integers stay integers in the JSON (120, not 120.0), as EHRs send them."""
    return int(value) if float(value).is_integer() else value


def _patient(case: CohortCase) -> Resource:
    race_codes = c.RACE_CODES[case.race]
    race_ext = [
        {"url": "ombCategory", "valueCoding": {"system": s, "code": k, "display": d}}
        for s, k, d in race_codes
    ]
    race_ext.append({"url": "text", "valueString": " and ".join(d for _, _, d in race_codes)})
    es, ek, ed = c.ETHNICITY_CODES[case.ethnicity]
    female = case.sex.value == "female"
    return {
        "resourceType": "Patient",
        "id": case.patient_id,
        "extension": [
            {"url": f"{c.US_CORE}/us-core-race", "extension": race_ext},
            {
                "url": f"{c.US_CORE}/us-core-ethnicity",
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {"system": es, "code": ek, "display": ed},
                    },
                    {"url": "text", "valueString": ed},
                ],
            },
            {"url": f"{c.US_CORE}/us-core-birthsex", "valueCode": "F" if female else "M"},
        ],
        "identifier": [{"system": f"{FULL_URL_BASE}/mrn", "value": case.patient_id}],
        "gender": "female" if female else "male",
        "birthDate": case.birth_date.isoformat(),
    }


def _encounter(case: CohortCase, anchor: datetime) -> Resource:
    s = case.features.symptoms
    reason = next(
        (c.SYMPTOM_CODES[name] for name in SYMPTOMS if getattr(s, name).present),
        c.SYMPTOM_CODES["chest_pain"],
    )
    return {
        "resourceType": "Encounter",
        "id": case.encounter_id,
        "status": "in-progress",
        "class": {"system": c.ACT_CODE, "code": "EMER", "display": "emergency"},
        "subject": {"reference": f"Patient/{case.patient_id}"},
        "period": {"start": _iso(anchor)},
        "reasonCode": [_cc(c.SNOMED, reason[0], reason[1])],
        "serviceProvider": {"reference": case.facility},
    }


def _observation(
    case: CohortCase, rid: str, category: str, code: tuple[str, str], at: datetime, **value: Any
) -> Resource:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [_cc(c.OBS_CATEGORY, category, category.replace("-", " ").title())],
        "code": _cc(c.LOINC, code[0], code[1]),
        "subject": {"reference": f"Patient/{case.patient_id}"},
        "encounter": {"reference": f"Encounter/{case.encounter_id}"},
        "effectiveDateTime": _iso(at),
        **value,
    }


def _vitals(case: CohortCase, at: datetime) -> list[Resource]:
    f = case.features
    out: list[Resource] = []
    named: dict[str, Measurement] = {
        "heart_rate": f.heart_rate,
        "respiratory_rate": f.respiratory_rate,
        "spo2": f.spo2,
        "temperature_c": f.temperature_c,
        "bmi": f.bmi,
    }
    suffix = {
        "heart_rate": "hr",
        "respiratory_rate": "rr",
        "spo2": "spo2",
        "temperature_c": "temp",
        "bmi": "bmi",
    }
    for name, m in named.items():
        if m.value is None:
            continue
        loinc, display, unit = c.VITAL_CODES[name]
        out.append(
            _observation(
                case,
                case.resource_id(suffix[name]),
                "vital-signs",
                (loinc, display),
                at,
                valueQuantity=_quantity(_num(m.value), unit),
            )
        )
    components = [
        {"code": _cc(c.LOINC, *code), "valueQuantity": _quantity(_num(m.value), "mm[Hg]")}
        for code, m in ((c.SYSTOLIC, f.systolic_bp), (c.DIASTOLIC, f.diastolic_bp))
        if m.value is not None
    ]
    if components:
        out.append(
            _observation(
                case, case.resource_id("bp"), "vital-signs", c.BP_PANEL, at, component=components
            )
        )
    return out


def _troponin(case: CohortCase, at: datetime) -> list[Resource]:
    report = case.troponin_report
    if report is None:
        return []
    qty = _quantity(_num(report.value), report.assay.unit)
    if report.comparator:
        qty["comparator"] = report.comparator
    return [
        _observation(
            case,
            case.resource_id("trop"),
            "laboratory",
            (report.assay.loinc, report.assay.display),
            at,
            valueQuantity=qty,
            referenceRange=[
                {
                    "high": _quantity(_num(report.url), report.assay.unit),
                    "text": "99th percentile upper reference limit",
                }
            ],
        )
    ]


def _ecg(case: CohortCase, at: datetime) -> list[Resource]:
    category = case.features.ecg.category
    if category is EcgCategory.UNKNOWN:
        return []
    code, display = c.ECG_FINDINGS[category]
    return [
        _observation(
            case,
            case.resource_id("ecg"),
            "procedure",
            c.ECG_STUDY,
            at,
            valueCodeableConcept=_cc(c.SNOMED, code, display),
        )
    ]


def _condition(
    case: CohortCase, rid: str, code: tuple[str, str], category: str, recorded: datetime
) -> Resource:
    out: Resource = {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": _cc(c.COND_CLINICAL, "active", "Active"),
        "verificationStatus": _cc(c.COND_VERIFICATION, "confirmed", "Confirmed"),
        "category": [_cc(c.COND_CATEGORY, category, category.replace("-", " ").title())],
        "code": _cc(c.SNOMED, code[0], code[1]),
        "subject": {"reference": f"Patient/{case.patient_id}"},
        "recordedDate": _iso(recorded),
    }
    if category == "encounter-diagnosis":
        out["encounter"] = {"reference": f"Encounter/{case.encounter_id}"}
        out["onsetDateTime"] = _iso(recorded - timedelta(hours=2))
    return out


def _conditions(case: CohortCase, anchor: datetime) -> list[Resource]:
    f: ClinicalFeatures = case.features
    at = anchor - timedelta(minutes=VITALS_MINUTES_BEFORE)
    out = [
        _condition(
            case, case.resource_id(f"sx-{name}"), c.SYMPTOM_CODES[name], "encounter-diagnosis", at
        )
        for name in SYMPTOMS
        if getattr(f.symptoms, name).present
    ]
    history_at = anchor - timedelta(days=400)
    r = f.risk_factors
    flags = {
        "hypertension": r.hypertension.present,
        "hyperlipidaemia": r.hyperlipidaemia.present,
        "diabetes": r.diabetes.present,
        "obesity": case.obesity_coded,
        "athero": r.known_atherosclerosis.present,
    }
    out += [
        _condition(
            case,
            case.resource_id(f"rf-{name}"),
            c.RISK_FACTOR_CODES[name],
            "problem-list-item",
            history_at,
        )
        for name, present in flags.items()
        if present
    ]
    return out


def _social_and_family(case: CohortCase, anchor: datetime) -> list[Resource]:
    smoking = c.SMOKER_EVERY_DAY if case.smoker else c.SMOKER_NEVER
    out = [
        _observation(
            case,
            case.resource_id("smoking"),
            "social-history",
            c.SMOKING_STATUS,
            anchor - timedelta(minutes=VITALS_MINUTES_BEFORE),
            valueCodeableConcept=_cc(c.SNOMED, *smoking),
        )
    ]
    if case.features.risk_factors.family_history.present:
        out.append(
            {
                "resourceType": "FamilyMemberHistory",
                "id": case.resource_id("fmh"),
                "status": "completed",
                "patient": {"reference": f"Patient/{case.patient_id}"},
                "relationship": _cc(c.ROLE_CODE, "FTH", "father"),
                "condition": [
                    {
                        "code": _cc(c.SNOMED, *c.FAMILY_CAD),
                        "onsetAge": {"value": 52, "unit": "a", "system": c.UCUM, "code": "a"},
                    }
                ],
            }
        )
    return out


def bundle_resources(case: CohortCase) -> list[Resource]:
    anchor = case.features.anchor_time
    return [
        _patient(case),
        _encounter(case, anchor),
        *_vitals(case, anchor - timedelta(minutes=VITALS_MINUTES_BEFORE)),
        *_troponin(case, anchor - timedelta(minutes=TROPONIN_MINUTES_BEFORE)),
        *_ecg(case, anchor - timedelta(minutes=ECG_MINUTES_BEFORE)),
        *_conditions(case, anchor),
        *_social_and_family(case, anchor),
    ]


def _bundle(resources: list[Resource], bundle_id: str) -> Resource:
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "collection",
        "entry": [
            {"fullUrl": f"{FULL_URL_BASE}/{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }


def validate_bundle(data: bytes) -> None:
    """Parse with fhir.resources R4B; raises pydantic.ValidationError when invalid."""
    from fhir.resources.R4B.bundle import Bundle  # imported lazily: ~0.5 s and many objects

    Bundle.model_validate_json(data)


def build_bundle(case: CohortCase, *, validate: bool = True) -> bytes:
    data = orjson.dumps(_bundle(bundle_resources(case), f"{case.id_prefix}-bundle"))
    if validate:
        validate_bundle(data)
    return data


def _history(case: CohortCase, k: int) -> list[Resource]:
    """One finished past encounter with its vital signs, 30 + 7k days before the anchor."""
    at = case.features.anchor_time - timedelta(days=30 + 7 * k)
    enc = {
        "resourceType": "Encounter",
        "id": case.resource_id(f"hist{k}-enc"),
        "status": "finished",
        "class": {"system": c.ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": {"reference": f"Patient/{case.patient_id}"},
        "period": {"start": _iso(at), "end": _iso(at + timedelta(minutes=40))},
        "serviceProvider": {"reference": case.facility},
    }
    hr_code, hr_display, hr_unit = c.VITAL_CODES["heart_rate"]
    obs = [
        _observation(
            case,
            case.resource_id(f"hist{k}-hr"),
            "vital-signs",
            (hr_code, hr_display),
            at,
            valueQuantity=_quantity(70 + k % 15, hr_unit),
        ),
        _observation(
            case,
            case.resource_id(f"hist{k}-bp"),
            "vital-signs",
            c.BP_PANEL,
            at,
            component=[
                {
                    "code": _cc(c.LOINC, *c.SYSTOLIC),
                    "valueQuantity": _quantity(120 + k % 20, "mm[Hg]"),
                },
                {
                    "code": _cc(c.LOINC, *c.DIASTOLIC),
                    "valueQuantity": _quantity(75 + k % 10, "mm[Hg]"),
                },
            ],
        ),
    ]
    for ob in obs:
        ob["encounter"] = {"reference": f"Encounter/{enc['id']}"}
    return [enc, *obs]


def build_history_bundle(case: CohortCase, target_bytes: int, *, validate: bool = False) -> bytes:
    """The triage bundle plus past encounters until it is at least ``target_bytes`` long
    (e.g. 1_000_000 for a ~1 MB whole-history bundle)."""
    resources = bundle_resources(case)
    base = len(orjson.dumps(_bundle(resources, f"{case.id_prefix}-bundle")))
    per_history = len(orjson.dumps(_bundle(_history(case, 0), "x"))) - len(
        orjson.dumps(_bundle([], "x"))
    )
    k = 0
    needed = max(0, target_bytes - base)
    while needed > 0:
        resources += _history(case, k)
        needed -= per_history
        k += 1
    data = orjson.dumps(_bundle(resources, f"{case.id_prefix}-bundle"))
    if validate:
        validate_bundle(data)
    return data


def example_cases(seed: int = 0, n: int = 50) -> list[CohortCase]:
    """``n`` encounters from the default generative model (deterministic by seed)."""
    from .generator import generate_cohort

    return generate_cohort(CohortParams(n=n, seed=seed)).cases()
