"""The fast reader: bundle bytes -> ``BundleFacts`` with orjson and a walk of only the
elements the rules use. Every access is defensive: a bundle of any shape yields facts or a
``FhirAdapterError``, never another exception.

Order of checks (cheapest first, all before the walk): byte size, nesting depth, JSON and
UTF-8, Bundle, entry count; then, while indexing, duplicate fullUrl, Patient count, a
Patient without id or fullUrl, and non-human patients.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import orjson

from fhir_adapters import codes
from fhir_adapters.config import ExtractionConfig
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
from fhir_adapters.features import ExtractionWarning
from fhir_adapters.fhir_time import parse_fhir_datetime
from fhir_adapters.limits import check_size, exceeds_depth
from fhir_adapters.warnings import WarningCode

JsonObject = dict[str, Any]


def load_bundle(data: bytes, config: ExtractionConfig) -> JsonObject:
    """Check the limits and parse. Returns the Bundle object."""
    check_size(data, config.max_bytes)
    too_deep = exceeds_depth(data, config.max_depth)
    root = parse_json(data)
    if too_deep:  # only now: text that is not JSON is reported as such (up to ~1000 levels)
        raise BundleTooLarge(Reason.TOO_DEEPLY_NESTED)
    if not isinstance(root, dict) or root.get("resourceType") != "Bundle":
        raise BundleRejected(Reason.NOT_A_BUNDLE, "$.resourceType")
    entries = root.get("entry", [])
    if not isinstance(entries, list):
        raise BundleRejected(Reason.NOT_A_BUNDLE, "$.entry")
    if len(entries) > config.max_entries:
        raise BundleTooLarge(Reason.TOO_MANY_ENTRIES, "$.entry")
    return root


def parse_json(data: bytes) -> Any:
    """orjson, or for what orjson refuses, ``_parse_slowly``."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _parse_slowly(data)


def _parse_slowly(data: bytes) -> Any:
    """JSON orjson refuses but JSON allows: numbers beyond a double (``1e309``, a 310-digit
    integer; read as implausible values, not a reason to refuse the bundle) and nesting
    deeper than orjson's 1024 levels (refused as too deep, not as not JSON). The standard
    library parses the rest; NaN and Infinity, which are not JSON, stay refused."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleRejected(Reason.NOT_UTF8) from None
    try:
        return json.loads(text, parse_constant=_not_json)
    except RecursionError:  # deeper than the interpreter's limit (~1000): given up early
        raise BundleTooLarge(Reason.TOO_DEEPLY_NESTED) from None
    except ValueError:  # JSONDecodeError is a ValueError
        raise BundleRejected(Reason.NOT_JSON) from None


def _not_json(constant: str) -> float:
    raise ValueError("NaN and Infinity are not JSON")


def read_bundle(root: JsonObject) -> BundleFacts:
    return _Reader().read(root.get("entry", []))


# --- small defensive accessors ---------------------------------------------------------------
def _obj(value: object) -> JsonObject | None:
    return value if isinstance(value, dict) else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _text(value: object) -> str | None:
    """A JSON string that is Unicode text, else None. A lone surrogate escape ("\\ud800") is
    valid JSON but gives a str that cannot be encoded: as an id or reference it could be
    neither hashed into a pseudonym nor stored, so it is read as malformed."""
    if type(value) is not str:
        return None
    if value.isascii():  # O(1): nearly every id and reference
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def _codings(concept: object) -> tuple[tuple[str, str], ...]:
    if type(concept) is not dict:  # orjson builds exact dicts, lists and strs
        return ()
    coding_list = concept.get("coding")
    if type(coding_list) is not list:
        return ()
    out = []
    for coding in coding_list:
        if type(coding) is dict:
            code = coding.get("code")
            if type(code) is str:
                system = coding.get("system")
                out.append((system if type(system) is str else "", code))
    return tuple(out)


def _concepts(value: object) -> tuple[tuple[str, str], ...]:
    if type(value) is not list:
        return ()
    if len(value) == 1:
        return _codings(value[0])
    out: list[tuple[str, str]] = []
    for concept in value:
        out.extend(_codings(concept))
    return tuple(out)


def _coding_pair(coding: object) -> tuple[tuple[str, str], ...]:
    if type(coding) is not dict:
        return ()
    code = coding.get("code")
    if type(code) is not str:
        return ()
    system = coding.get("system")
    return ((system if type(system) is str else "", code),)


def _reference(value: object) -> str | None:
    """The reference string; None when absent; MALFORMED_REFERENCE when unusable."""
    if value is None:
        return None
    if type(value) is not dict:
        return MALFORMED_REFERENCE
    ref = value.get("reference")
    # This runs for every reference in the bundle: _text is inlined for the common (ASCII)
    # case, and the containment test comes before the call.
    if type(ref) is str and ref and (ref.isascii() or _text(ref) is not None):
        return (unversioned(ref) or MALFORMED_REFERENCE) if "/_history/" in ref else ref
    return MALFORMED_REFERENCE


def _number(value: object) -> float | None:
    kind = type(value)
    if kind is float:
        return value  # type: ignore[return-value]
    if kind is not int:  # bool is not int by type identity
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:  # an integer beyond float range: certainly implausible
        return math.inf


def _quantity(value: object) -> Quantity | None:
    if type(value) is not dict:
        return None
    code = value.get("code")
    system = value.get("system")
    comparator = value.get("comparator")
    return Quantity(
        _number(value.get("value")),
        code if type(code) is str else None,
        system if type(system) is str else None,
        comparator if type(comparator) is str else None,
    )


def _time(*candidates: object) -> datetime | None:
    for candidate in candidates:
        if candidate is not None:
            return parse_fhir_datetime(candidate)
    return None


def _period_start(value: object) -> object:
    period = _obj(value)
    return None if period is None else period.get("start")


class _Reader:
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
        self.warnings: list[ExtractionWarning] = []

    def read(self, entries: list[Any]) -> BundleFacts:
        handlers = {
            "Observation": self._observation,
            "Condition": self._condition,
            "Encounter": self._encounter,
            "Procedure": self._procedure,
            "DiagnosticReport": self._report,
            "FamilyMemberHistory": self._family_history,
            "Patient": self._patient,
        }
        warnings = self.warnings
        full_urls = self.full_urls
        local_refs = self.local_refs
        for index, entry in enumerate(entries):
            if type(entry) is not dict:
                warnings.append(ExtractionWarning(WarningCode.MALFORMED, f"$.entry[{index}]"))
                continue
            full_url = entry.get("fullUrl")
            if type(full_url) is str and (full_url.isascii() or _text(full_url) is not None):
                if full_url in full_urls:
                    raise BundleRejected(Reason.DUPLICATE_FULL_URL, f"$.entry[{index}].fullUrl")
                full_urls.add(full_url)
            else:
                if type(full_url) is str:  # a string that is not Unicode text
                    warnings.append(
                        ExtractionWarning(WarningCode.MALFORMED, f"$.entry[{index}].fullUrl")
                    )
                full_url = None
            resource = entry.get("resource")
            if type(resource) is not dict:
                continue  # e.g. a transaction entry with only a request
            resource_type = resource.get("resourceType")
            if type(resource_type) is not str:
                warnings.append(
                    ExtractionWarning(WarningCode.MALFORMED, f"$.entry[{index}].resource")
                )
                continue
            resource_id = resource.get("id")
            if type(resource_id) is not str:
                resource_id = None
            elif not resource_id.isascii() and _text(resource_id) is None:
                warnings.append(
                    ExtractionWarning(WarningCode.MALFORMED, f"$.entry[{index}].resource.id")
                )
                resource_id = None
            if resource_id is not None:
                ref = f"{resource_type}/{resource_id}"
                local_refs.add(ref)
            else:
                ref = full_url if full_url is not None else f"{resource_type}/#{index}"
            handler = handlers.get(resource_type)
            if handler is not None:
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
            warnings=tuple(self.warnings),
        )

    # --- Patient -------------------------------------------------------------------------
    def _patient(self, index: int, ref: str, full_url: str | None, res: JsonObject) -> None:
        if self.patient is not None:
            raise BundleRejected(Reason.MULTIPLE_PATIENTS, f"$.entry[{index}].resource")
        if _text(res.get("id")) is None and full_url is None:
            # Nothing can refer to it (so no clinical data is this patient's) and its
            # pseudonym would be every such patient's.
            raise BundleRejected(Reason.PATIENT_WITHOUT_ID, f"$.entry[{index}].resource.id")
        birthsex: str | None = None
        individual_sex: tuple[tuple[str, str], ...] = ()
        race: list[str] = []
        ethnicity: list[str] = []
        for extension in _list(res.get("extension")):
            if not isinstance(extension, dict):
                continue
            url = extension.get("url")
            if url == codes.ANIMAL_URL:
                raise BundleRejected(
                    Reason.NON_HUMAN_PATIENT, f"$.entry[{index}].resource.extension"
                )
            if url == codes.BIRTHSEX_URL:
                birthsex = merged_birthsex(birthsex, _str(extension.get("valueCode")))
            elif url == codes.INDIVIDUAL_SEX_URL:  # every one kept: conflicts are seen
                individual_sex += _coding_pair(extension.get("valueCoding")) + _codings(
                    extension.get("valueCodeableConcept")
                )
            elif url == codes.RACE_URL:
                race.extend(_omb_codes(extension))
            elif url == codes.ETHNICITY_URL:
                ethnicity.extend(_omb_codes(extension))
        birth_date = res.get("birthDate")
        self.patient = PatientFact(
            entry=index,
            ref=ref,
            id=_text(res.get("id")),
            full_url=full_url,
            gender=_str(res.get("gender")),
            birth_date=None if birth_date is None else parse_fhir_datetime(birth_date),
            birthsex=birthsex,
            individual_sex=individual_sex,
        )
        self.demographics = Demographics(tuple(race), tuple(ethnicity))

    # --- Encounter -----------------------------------------------------------------------
    def _encounter(self, index: int, ref: str, full_url: str | None, res: JsonObject) -> None:
        locations = _list(res.get("location"))
        location = None
        if locations and isinstance(locations[0], dict):
            location = _reference(locations[0].get("location")) or None
        period = _obj(res.get("period"))
        start = None if period is None else period.get("start")
        self.encounters.append(
            EncounterFact(
                entry=index,
                ref=ref,
                id=_text(res.get("id")),
                full_url=full_url,
                status=_str(res.get("status")),
                subject=_reference(res.get("subject")),
                start=_time(start),
                reason_codes=_concepts(res.get("reasonCode")),
                reason_count=sum(type(r) is dict for r in _list(res.get("reasonCode"))),
                service_provider=_reference(res.get("serviceProvider")) or None,
                location=location,
                start_raw=start,
            )
        )

    # --- Observation ---------------------------------------------------------------------
    def _observation(self, index: int, ref: str, full_url: str | None, res: JsonObject) -> None:
        obs_codes = _codings(res.get("code"))
        value_codes = _codings(res.get("valueCodeableConcept"))
        relevance = observation_relevance(obs_codes, value_codes)
        if not relevance:
            return
        components = []
        component_list = res.get("component")
        if type(component_list) is list:
            ecg = relevance == ECG_OBSERVATION
            for c_index, component in enumerate(component_list):
                if type(component) is dict:
                    item = Component(
                        c_index,
                        _codings(component.get("code")),
                        _quantity(component.get("valueQuantity")),
                        component.get("dataAbsentReason") is not None,
                    )
                    if ecg:  # only an ECG's components carry findings as coded / boolean values
                        item.value_codes = _codings(component.get("valueCodeableConcept"))
                        boolean = component.get("valueBoolean")
                        item.value_boolean = boolean if type(boolean) is bool else None
                    components.append(item)
        ranges = []
        range_list = res.get("referenceRange")
        if type(range_list) is list:
            for r_index, reference_range in enumerate(range_list):
                if type(reference_range) is dict:
                    ranges.append(
                        ReferenceRange(
                            r_index,
                            _quantity(reference_range.get("high")),
                            _concepts(reference_range.get("appliesTo")),
                        )
                    )
        value_boolean = res.get("valueBoolean")
        status = res.get("status")
        time = res.get("effectiveDateTime")
        if time is None:
            time = res.get("effectiveInstant")
            if time is None:
                time = _period_start(res.get("effectivePeriod"))
        header = Header(
            index,
            ref,
            status if type(status) is str else None,
            _reference(res.get("subject")),
            None if time is None else parse_fhir_datetime(time),
        )
        self.observations.append(
            ObservationFact(
                header,
                obs_codes,
                _quantity(res.get("valueQuantity")),
                value_codes,
                value_boolean if type(value_boolean) is bool else None,
                res.get("dataAbsentReason") is not None,
                tuple(components),
                tuple(ranges),
                _reference(res.get("encounter")),
            )
        )

    # --- Condition -----------------------------------------------------------------------
    def _condition(self, index: int, ref: str, full_url: str | None, res: JsonObject) -> None:
        clinical = _codings(res.get("clinicalStatus"))
        verification = _codings(res.get("verificationStatus"))
        time = res.get("recordedDate")
        if time is None:
            time = res.get("onsetDateTime")
            if time is None:
                time = _period_start(res.get("onsetPeriod"))
        abatement = res.get("abatementDateTime")
        if abatement is None:
            abatement = _period_start(res.get("abatementPeriod"))
        self.conditions.append(
            ConditionFact(
                Header(
                    index,
                    ref,
                    None,
                    _reference(res.get("subject")),
                    None if time is None else parse_fhir_datetime(time),
                ),
                _codings(res.get("code")),
                clinical[0][1] if clinical else None,
                verification[0][1] if verification else None,
                None if abatement is None else parse_fhir_datetime(abatement),
                _reference(res.get("encounter")),
            )
        )

    # --- Procedure -----------------------------------------------------------------------
    def _procedure(self, index: int, ref: str, full_url: str | None, res: JsonObject) -> None:
        proc_codes = _codings(res.get("code"))
        if not PROCEDURE_CODES.matches(proc_codes):
            return
        header = Header(
            index,
            ref,
            _str(res.get("status")),
            _reference(res.get("subject")),
            _time(res.get("performedDateTime"), _period_start(res.get("performedPeriod"))),
        )
        self.procedures.append(ProcedureFact(header, proc_codes))

    # --- DiagnosticReport ------------------------------------------------------------------
    def _report(self, index: int, ref: str, full_url: str | None, res: JsonObject) -> None:
        conclusion = _concepts(res.get("conclusionCode"))
        if not codes.has_code(conclusion, codes.SNOMED, codes.ECG_FINDINGS):
            return
        header = Header(
            index,
            ref,
            _str(res.get("status")),
            _reference(res.get("subject")),
            _time(res.get("effectiveDateTime"), _period_start(res.get("effectivePeriod"))),
        )
        self.reports.append(
            ReportFact(
                header, _codings(res.get("code")), conclusion, _reference(res.get("encounter"))
            )
        )

    # --- FamilyMemberHistory ---------------------------------------------------------------
    def _family_history(self, index: int, ref: str, full_url: str | None, res: JsonObject) -> None:
        conditions = []
        for c_index, condition in enumerate(_list(res.get("condition"))):
            if isinstance(condition, dict):
                onset_range = _obj(condition.get("onsetRange"))
                conditions.append(
                    FamilyCondition(
                        c_index,
                        _codings(condition.get("code")),
                        _quantity(condition.get("onsetAge")),
                        None if onset_range is None else _quantity(onset_range.get("high")),
                    )
                )
        header = Header(
            index,
            ref,
            _str(res.get("status")),
            _reference(res.get("patient")),
            _time(res.get("date")),
        )
        self.family.append(
            FamilyHistoryFact(header, _codings(res.get("relationship")), tuple(conditions))
        )


def _omb_codes(extension: JsonObject) -> list[str]:
    """ombCategory codes of a us-core-race / -ethnicity extension. Also read: a
    valueCodeableConcept / valueCoding given directly on the extension (not conformant,
    but sent)."""
    found: list[str] = []
    for sub in _list(extension.get("extension")):
        if isinstance(sub, dict) and sub.get("url") == "ombCategory":
            found.extend(omb_code(*c) for c in _coding_pair(sub.get("valueCoding")))
            found.extend(omb_code(*c) for c in _codings(sub.get("valueCodeableConcept")))
    found.extend(omb_code(*c) for c in _coding_pair(extension.get("valueCoding")))
    found.extend(omb_code(*c) for c in _codings(extension.get("valueCodeableConcept")))
    return found
