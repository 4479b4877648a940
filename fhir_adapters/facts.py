"""The bundle, read: plain values both readers produce and every rule consumes.

The fast reader (``reader.py``, orjson dicts) and the reference reader (``reference.py``,
fhir.resources R4B models) both build a ``BundleFacts``; the rules in ``rules/`` turn it into
an ``Extraction``. Proving the two readers give the same facts on every bundle proves the
fast path reads FHIR the way the R4B models do.

Race and ethnicity live only in ``Demographics``, which the clinical rules never receive.

These classes are built per request on the hot path and are not ``frozen``: a frozen
dataclass's ``__init__`` costs about four times as much. Nothing mutates them after the
reader returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fhir_adapters import codes
from fhir_adapters.codes import Coding
from fhir_adapters.features import ExtractionWarning

MALFORMED_REFERENCE = ""  # a reference element that is present but unusable
_HISTORY = "/_history/"


_OMB_SYSTEMS = frozenset({codes.OMB_SYSTEM, codes.NULL_FLAVOR_SYSTEM, ""})
FOREIGN_CODE = "foreign-system"  # a race / ethnicity code from another system: no OMB category
CONFLICTING = "conflicting"  # two birthsex extensions that disagree


def merged_birthsex(seen: str | None, value: str | None) -> str | None:
    """Several birthsex extensions: their one value, or CONFLICTING when they disagree."""
    if seen is None or value is None or seen == value:
        return value if seen is None else seen
    return CONFLICTING


def omb_code(system: str, code: str) -> str:
    """The code of a race / ethnicity coding, or FOREIGN_CODE when its system is neither the
    OMB code system, a null flavour nor absent: "2106-3" in another system is not White."""
    return code if system in _OMB_SYSTEMS else FOREIGN_CODE


def unversioned(reference: str) -> str:
    """The reference without a version ("Patient/p1/_history/2" -> "Patient/p1"): FHIR's
    bundle resolution matches a version-specific reference to the resource it names."""
    cut = reference.find(_HISTORY)
    return reference if cut < 0 else reference[:cut]


@dataclass(slots=True)
class Quantity:
    value: float | None  # None when absent or not a number
    code: str | None
    system: str | None
    comparator: str | None = None


@dataclass(slots=True)
class Component:
    index: int
    codes: tuple[Coding, ...]
    quantity: Quantity | None
    absent: bool  # dataAbsentReason given
    # Read only on ECG Observations (``ECG_OBSERVATION``), the one place a component's
    # coded or boolean value is used: elsewhere () / None, so that BP panels cost nothing more.
    value_codes: tuple[Coding, ...] = ()
    value_boolean: bool | None = None


@dataclass(slots=True)
class ReferenceRange:
    index: int
    high: Quantity | None
    applies_to: tuple[Coding, ...]


@dataclass(slots=True)
class Header:
    """What every clinical resource has. ``subject`` is the reference string, ``None`` when
    absent, ``MALFORMED_REFERENCE`` when unusable. ``time`` is the clinically relevant time
    (effective / recorded / performed), ``None`` when absent or unreadable."""

    entry: int
    ref: str  # "Observation/<id>", or the fullUrl when the resource has no id
    status: str | None
    subject: str | None
    time: datetime | None

    @property
    def path(self) -> str:
        return f"$.entry[{self.entry}].resource"


@dataclass(slots=True)
class ObservationFact:
    header: Header
    codes: tuple[Coding, ...]
    quantity: Quantity | None
    value_codes: tuple[Coding, ...]
    value_boolean: bool | None
    absent: bool
    components: tuple[Component, ...]
    ranges: tuple[ReferenceRange, ...]
    encounter: str | None


_DENIALS = frozenset((codes.SNOMED, code) for code in codes.DENIAL_ANSWERS)


def denies_finding(obs: ObservationFact) -> bool:
    """True when the Observation says the finding its code names is absent: valueBoolean
    false, a "No" / "Negative" / "Absent" answer, or a measured value of zero (e.g. ST
    elevation 0 mm, pain 0)."""
    if obs.value_boolean is False:
        return True
    quantity = obs.quantity
    if quantity is not None and quantity.value == 0:
        return True
    return not _DENIALS.isdisjoint(obs.value_codes)  # runs twice for every Observation


@dataclass(slots=True)
class ConditionFact:
    header: Header  # time: recordedDate, else onset
    codes: tuple[Coding, ...]
    clinical_status: str | None
    verification_status: str | None
    abatement: datetime | None
    encounter: str | None


@dataclass(slots=True)
class ProcedureFact:
    header: Header  # time: performedDateTime / performedPeriod.start
    codes: tuple[Coding, ...]


@dataclass(slots=True)
class ReportFact:
    header: Header  # time: effectiveDateTime / effectivePeriod.start
    codes: tuple[Coding, ...]
    conclusion_codes: tuple[Coding, ...]
    encounter: str | None = None


@dataclass(slots=True)
class FamilyCondition:
    index: int
    codes: tuple[Coding, ...]
    onset_age: Quantity | None
    onset_range_high: Quantity | None


@dataclass(slots=True)
class FamilyHistoryFact:
    header: Header  # subject: FamilyMemberHistory.patient; time: date
    relationship: tuple[Coding, ...]
    conditions: tuple[FamilyCondition, ...]


@dataclass(slots=True)
class EncounterFact:
    entry: int
    ref: str
    id: str | None
    full_url: str | None
    status: str | None
    subject: str | None
    start: datetime | None
    reason_codes: tuple[Coding, ...]
    service_provider: str | None
    location: str | None
    # period.start as read (the JSON string; the date / datetime / str an R4B model holds),
    # kept for ``fhir_time.local_date`` of the one Encounter chosen as anchor: parsing the
    # local date of every Encounter would be wasted work.
    start_raw: object = None
    reason_count: int = 0  # reasonCode elements, coded or text only


@dataclass(slots=True)
class PatientFact:
    """Clinical demographics. Race and ethnicity are deliberately not here."""

    entry: int
    ref: str  # "Patient/<id>" (or the fullUrl when there is no id)
    id: str | None
    full_url: str | None
    gender: str | None
    birth_date: datetime | None
    birthsex: str | None
    individual_sex: tuple[Coding, ...]


@dataclass(slots=True)
class Demographics:
    """Audit-only attributes, read from the Patient; never given to the clinical rules."""

    race_codes: tuple[str, ...]
    ethnicity_codes: tuple[str, ...]


@dataclass(slots=True)
class BundleFacts:
    patient: PatientFact
    demographics: Demographics
    encounters: tuple[EncounterFact, ...]
    observations: tuple[ObservationFact, ...]
    conditions: tuple[ConditionFact, ...]
    procedures: tuple[ProcedureFact, ...]
    reports: tuple[ReportFact, ...]
    family_histories: tuple[FamilyHistoryFact, ...]
    full_urls: frozenset[str]  # every entry.fullUrl
    local_refs: frozenset[str]  # every "Type/id"
    warnings: tuple[ExtractionWarning, ...]  # found while reading


# --- which Observations the rules can use (both readers keep only these) -------------------
_FEATURE_LOINC = frozenset(
    codes.HEART_RATE
    | codes.BP_PANELS
    | {codes.SYSTOLIC, codes.DIASTOLIC}
    | codes.RESPIRATORY_RATE
    | codes.SPO2
    | codes.TEMPERATURE
    | codes.WEIGHT
    | codes.HEIGHT
    | codes.BMI
    | set(codes.TROPONIN)
    | {codes.SMOKING_STATUS, codes.SYMPTOM_OBSERVATION}
)
_FINDING_SNOMED = codes.ECG_FINDINGS | frozenset().union(
    *(code_set.snomed for code_set in codes.SYMPTOMS.values())
)


NOT_RELEVANT = 0
RELEVANT = 1
ECG_OBSERVATION = 2  # relevant, and its components may carry ECG findings: read their values

_RELEVANCE: dict[Coding, int] = {
    **{(codes.LOINC, code): RELEVANT for code in _FEATURE_LOINC},
    **{(codes.SNOMED, code): RELEVANT for code in _FINDING_SNOMED},
    **{(codes.LOINC, code): ECG_OBSERVATION for code in codes.ECG_LOINC},
    **{(codes.SNOMED, code): ECG_OBSERVATION for code in codes.ECG_FINDINGS},
}
_ECG_VALUE_CODINGS = frozenset((codes.SNOMED, code) for code in codes.ECG_FINDINGS)


def observation_relevance(obs_codes: tuple[Coding, ...], value_codes: tuple[Coding, ...]) -> int:
    """NOT_RELEVANT (0, falsy) when no rule uses the Observation; ECG_OBSERVATION when it is
    an ECG (an ECG LOINC code, or an ECG finding as its code or value); else RELEVANT.
    One dict lookup per coding: this gate runs on every Observation in the bundle."""
    relevance = NOT_RELEVANT
    for coding in obs_codes:
        kind = _RELEVANCE.get(coding)
        if kind is not None:
            if kind == ECG_OBSERVATION:
                return kind
            relevance = kind
    for coding in value_codes:
        if coding in _ECG_VALUE_CODINGS:
            return ECG_OBSERVATION
    if relevance:
        return relevance
    if any(
        system in codes.ICD10_SYSTEMS
        and code.replace(".", "").upper().startswith(codes.SYMPTOM_ICD_PREFIXES)
        for system, code in obs_codes
    ):
        return RELEVANT
    return NOT_RELEVANT


PROCEDURE_CODES = codes.ATHEROSCLEROSIS
