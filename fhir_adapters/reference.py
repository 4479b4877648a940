"""The reference extractor: the slow, obviously-faithful path the tests compare the fast
path against. It validates the whole bundle with ``fhir.resources.R4B`` and reads every
element through the R4B model objects (never the raw JSON), builds the same
``BundleFacts`` and applies the same rules (``derive.py``). Equality of the two extractors
on every fixture and sample shows the fast reader reads FHIR as the R4B models do.

Not for production: about 3 ms for a 20-entry bundle, 30 ms for 200 entries.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from fhir_adapters import codes
from fhir_adapters.config import ExtractionConfig
from fhir_adapters.derive import derive_base, finish
from fhir_adapters.errors import BundleRejected, BundleTooLarge, Reason
from fhir_adapters.facts import (
    ECG_OBSERVATION,
    MALFORMED_REFERENCE,
    PROCEDURE_CODES,
    BundleFacts,
    Component,
    ConditionFact,
    Demographics,
    EncounterFact,
    FamilyCondition,
    FamilyHistoryFact,
    Header,
    ObservationFact,
    PatientFact,
    ProcedureFact,
    Quantity,
    ReferenceRange,
    ReportFact,
    merged_birthsex,
    observation_relevance,
    omb_code,
    unversioned,
)
from fhir_adapters.features import Extraction
from fhir_adapters.fhir_time import date_to_utc, parse_fhir_datetime, to_utc
from fhir_adapters.limits import check_size, exceeds_depth

Model = Any  # fhir.resources models are dynamically typed for our purposes


def extract_reference(
    bundle: bytes,
    config: ExtractionConfig,
    *,
    request_time: datetime,
    encounter_id: str | None = None,
) -> Extraction:
    if not config.pseudonym_key:
        raise ValueError("ExtractionConfig.pseudonym_key must be set")
    check_size(bundle, config.max_bytes)
    if exceeds_depth(bundle, config.max_depth):
        raise BundleTooLarge(Reason.TOO_DEEPLY_NESTED)
    try:
        model = Bundle.model_validate_json(bundle)
    # KeyError / TypeError: fhir.resources looking up a resourceType that is not FHIR's
    # (their text quotes the bundle: never passed on).
    except (ValidationError, ValueError, KeyError, TypeError):
        raise BundleRejected(Reason.STRICT_VALIDATION_FAILED) from None
    entries = list(model.entry or [])
    if len(entries) > config.max_entries:
        raise BundleTooLarge(Reason.TOO_MANY_ENTRIES, "$.entry")
    facts = _ModelReader().read(entries)
    return finish(derive_base(facts, config, request_time, encounter_id))


def _time(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return to_utc(value)
    if isinstance(value, date):
        return date_to_utc(value)
    return parse_fhir_datetime(str(value))


def _codings(concept: Model) -> tuple[tuple[str, str], ...]:
    if concept is None:
        return ()
    return tuple(
        (coding.system or "", coding.code) for coding in concept.coding or () if coding.code
    )


def _concepts(concepts: Iterable[Model] | None) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for concept in concepts or ():
        out.extend(_codings(concept))
    return tuple(out)


def _coding(coding: Model) -> tuple[tuple[str, str], ...]:
    if coding is None or not coding.code:
        return ()
    return ((coding.system or "", coding.code),)


def _reference(reference: Model) -> str | None:
    if reference is None:
        return None
    return unversioned(reference.reference or "") or MALFORMED_REFERENCE


def _number(value: Decimal | int | float | None) -> float | None:
    return None if value is None else float(value)


def _quantity(quantity: Model) -> Quantity | None:
    if quantity is None:
        return None
    return Quantity(
        _number(quantity.value),
        quantity.code,
        quantity.system,
        getattr(quantity, "comparator", None),
    )


def _period_start(period: Model) -> object:
    return None if period is None else period.start


def _first(*candidates: object) -> datetime | None:
    for candidate in candidates:
        if candidate is not None:
            return _time(candidate)
    return None


class _ModelReader:
    def __init__(self) -> None:
        self.patient: PatientFact | None = None
        self.demographics = Demographics((), ())
        self.encounters: list[EncounterFact] = []
        self.observations: list[ObservationFact] = []
        self.conditions: list[ConditionFact] = []
        self.procedures: list[ProcedureFact] = []
        self.reports: list[ReportFact] = []
        self.family: list[FamilyHistoryFact] = []
        self.full_urls: set[str] = set()
        self.local_refs: set[str] = set()

    def read(self, entries: list[Model]) -> BundleFacts:
        for index, entry in enumerate(entries):
            full_url = entry.fullUrl
            if full_url is not None:
                if full_url in self.full_urls:
                    raise BundleRejected(Reason.DUPLICATE_FULL_URL, f"$.entry[{index}].fullUrl")
                self.full_urls.add(full_url)
            resource = entry.resource
            if resource is None:
                continue
            resource_type = resource.get_resource_type()
            if resource.id is not None:
                self.local_refs.add(f"{resource_type}/{resource.id}")
            handler = getattr(self, f"_{resource_type}", None)
            if handler is not None:
                ref = (
                    f"{resource_type}/{resource.id}"
                    if resource.id is not None
                    else (full_url if full_url is not None else f"{resource_type}/#{index}")
                )
                handler(index, ref, full_url, resource)
        if self.patient is None:
            raise BundleRejected(Reason.NO_PATIENT, "$.entry")
        return BundleFacts(
            patient=self.patient,
            demographics=self.demographics,
            encounters=tuple(self.encounters),
            observations=tuple(self.observations),
            conditions=tuple(self.conditions),
            procedures=tuple(self.procedures),
            reports=tuple(self.reports),
            family_histories=tuple(self.family),
            full_urls=frozenset(self.full_urls),
            local_refs=frozenset(self.local_refs),
            warnings=(),
        )

    def _Patient(self, index: int, ref: str, full_url: str | None, res: Model) -> None:  # noqa: N802
        if self.patient is not None:
            raise BundleRejected(Reason.MULTIPLE_PATIENTS, f"$.entry[{index}].resource")
        if res.id is None and full_url is None:
            raise BundleRejected(Reason.PATIENT_WITHOUT_ID, f"$.entry[{index}].resource.id")
        birthsex = None
        individual_sex: tuple[tuple[str, str], ...] = ()
        race: list[str] = []
        ethnicity: list[str] = []
        for extension in res.extension or ():
            url = extension.url
            if url == codes.ANIMAL_URL:
                raise BundleRejected(
                    Reason.NON_HUMAN_PATIENT, f"$.entry[{index}].resource.extension"
                )
            if url == codes.BIRTHSEX_URL:
                birthsex = merged_birthsex(birthsex, extension.valueCode)
            elif url == codes.INDIVIDUAL_SEX_URL:
                individual_sex += _coding(extension.valueCoding) + _codings(
                    extension.valueCodeableConcept
                )
            elif url == codes.RACE_URL:
                race.extend(_omb_codes(extension))
            elif url == codes.ETHNICITY_URL:
                ethnicity.extend(_omb_codes(extension))
        self.patient = PatientFact(
            entry=index,
            ref=ref,
            id=res.id,
            full_url=full_url,
            gender=res.gender,
            birth_date=_time(res.birthDate),
            birthsex=birthsex,
            individual_sex=individual_sex,
        )
        self.demographics = Demographics(tuple(race), tuple(ethnicity))

    def _Encounter(self, index: int, ref: str, full_url: str | None, res: Model) -> None:  # noqa: N802
        location = None
        if res.location:
            location = _reference(res.location[0].location) or None
        self.encounters.append(
            EncounterFact(
                entry=index,
                ref=ref,
                id=res.id,
                full_url=full_url,
                status=res.status,
                subject=_reference(res.subject),
                start=None if res.period is None else _time(res.period.start),
                start_raw=None if res.period is None else res.period.start,
                reason_codes=_concepts(res.reasonCode),
                reason_count=len(res.reasonCode or ()),
                service_provider=_reference(res.serviceProvider) or None,
                location=location,
            )
        )

    def _Observation(self, index: int, ref: str, full_url: str | None, res: Model) -> None:  # noqa: N802
        obs_codes = _codings(res.code)
        value_codes = _codings(res.valueCodeableConcept)
        relevance = observation_relevance(obs_codes, value_codes)
        if not relevance:
            return
        ecg = relevance == ECG_OBSERVATION
        components = tuple(
            Component(
                c_index,
                _codings(component.code),
                _quantity(component.valueQuantity),
                component.dataAbsentReason is not None,
                # as the fast reader: component values are read on ECG Observations only
                _codings(component.valueCodeableConcept) if ecg else (),
                component.valueBoolean if ecg else None,
            )
            for c_index, component in enumerate(res.component or ())
        )
        ranges = tuple(
            ReferenceRange(r_index, _quantity(rr.high), _concepts(rr.appliesTo))
            for r_index, rr in enumerate(res.referenceRange or ())
        )
        header = Header(
            index,
            ref,
            res.status,
            _reference(res.subject),
            _first(res.effectiveDateTime, res.effectiveInstant, _period_start(res.effectivePeriod)),
        )
        self.observations.append(
            ObservationFact(
                header=header,
                codes=obs_codes,
                quantity=_quantity(res.valueQuantity),
                value_codes=value_codes,
                value_boolean=res.valueBoolean,
                absent=res.dataAbsentReason is not None,
                components=components,
                ranges=ranges,
                encounter=_reference(res.encounter),
            )
        )

    def _Condition(self, index: int, ref: str, full_url: str | None, res: Model) -> None:  # noqa: N802
        clinical = _codings(res.clinicalStatus)
        verification = _codings(res.verificationStatus)
        header = Header(
            index,
            ref,
            None,
            _reference(res.subject),
            _first(res.recordedDate, res.onsetDateTime, _period_start(res.onsetPeriod)),
        )
        self.conditions.append(
            ConditionFact(
                header=header,
                codes=_codings(res.code),
                clinical_status=clinical[0][1] if clinical else None,
                verification_status=verification[0][1] if verification else None,
                abatement=_first(res.abatementDateTime, _period_start(res.abatementPeriod)),
                encounter=_reference(res.encounter),
            )
        )

    def _Procedure(self, index: int, ref: str, full_url: str | None, res: Model) -> None:  # noqa: N802
        proc_codes = _codings(res.code)
        if not PROCEDURE_CODES.matches(proc_codes):
            return
        header = Header(
            index,
            ref,
            res.status,
            _reference(res.subject),
            _first(res.performedDateTime, _period_start(res.performedPeriod)),
        )
        self.procedures.append(ProcedureFact(header, proc_codes))

    def _DiagnosticReport(self, index: int, ref: str, full_url: str | None, res: Model) -> None:  # noqa: N802
        conclusion = _concepts(res.conclusionCode)
        if not codes.has_code(conclusion, codes.SNOMED, codes.ECG_FINDINGS):
            return
        header = Header(
            index,
            ref,
            res.status,
            _reference(res.subject),
            _first(res.effectiveDateTime, _period_start(res.effectivePeriod)),
        )
        self.reports.append(
            ReportFact(header, _codings(res.code), conclusion, _reference(res.encounter))
        )

    def _FamilyMemberHistory(  # noqa: N802
        self, index: int, ref: str, full_url: str | None, res: Model
    ) -> None:
        conditions = tuple(
            FamilyCondition(
                c_index,
                _codings(condition.code),
                _quantity(condition.onsetAge),
                None if condition.onsetRange is None else _quantity(condition.onsetRange.high),
            )
            for c_index, condition in enumerate(res.condition or ())
        )
        header = Header(index, ref, res.status, _reference(res.patient), _time(res.date))
        self.family.append(FamilyHistoryFact(header, _codings(res.relationship), conditions))


def _omb_codes(extension: Model) -> list[str]:
    found: list[str] = []
    for sub in extension.extension or ():
        if sub.url == "ombCategory":
            found.extend(omb_code(*c) for c in _coding(sub.valueCoding))
            found.extend(omb_code(*c) for c in _codings(sub.valueCodeableConcept))
    found.extend(omb_code(*c) for c in _coding(extension.valueCoding))
    found.extend(omb_code(*c) for c in _codings(extension.valueCodeableConcept))
    return found
