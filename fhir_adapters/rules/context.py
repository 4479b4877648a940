"""What every rule needs: the anchor, reference matching, and the warnings collector."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from fhir_adapters.facts import (
    MALFORMED_REFERENCE,
    BundleFacts,
    EncounterFact,
    Header,
)
from fhir_adapters.features import ExtractionWarning
from fhir_adapters.warnings import WarningCode


def _keys(type_name: str, resource_id: str | None, full_url: str | None) -> frozenset[str]:
    keys = set()
    if resource_id is not None:
        keys.add(f"{type_name}/{resource_id}")
    if full_url is not None:
        keys.add(full_url)
    return frozenset(keys)


@dataclass(slots=True)
class ReferenceTarget:
    """The ways a bundle may refer to one resource: its fullUrl, or "Type/id".

    FHIR bundle resolution: an absolute (or urn) reference resolves only to the entry with
    exactly that fullUrl; a relative "Type/id" resolves to the entry with that type and id.
    An absolute URL that merely ends in "/Type/id" names a resource on some other server
    (another base), not this one: it does not match."""

    keys: frozenset[str]

    @classmethod
    def of(cls, type_name: str, resource_id: str | None, full_url: str | None) -> ReferenceTarget:
        return cls(_keys(type_name, resource_id, full_url))

    def matches(self, reference: str | None) -> bool:
        if reference is None or reference == MALFORMED_REFERENCE:
            return False
        return reference in self.keys


def not_patient_warning(
    subject: str | None, full_urls: frozenset[str], local_refs: frozenset[str]
) -> WarningCode:
    """Why a subject that is not this bundle's patient makes a resource unusable: no
    subject; a malformed or unresolvable reference; or another patient (or another
    resource in the bundle)."""
    if subject is None:
        return WarningCode.NO_SUBJECT
    if subject == MALFORMED_REFERENCE or not _resolvable_or_patient(subject, full_urls, local_refs):
        return WarningCode.UNRESOLVED_REFERENCE
    return WarningCode.OTHER_PATIENT_RESOURCE


def _resolvable_or_patient(
    reference: str, full_urls: frozenset[str], local_refs: frozenset[str]
) -> bool:
    if reference in full_urls or reference in local_refs:
        return True
    # "Patient/x" or ".../Patient/x": clearly another patient, resolvable or not.
    tail = reference.rsplit("/", 2)
    return len(tail) >= 2 and tail[-2] == "Patient"


# Warnings kept per extraction. Each is stored twice and returned once: a bundle built to
# raise one per repeated coding (180,000 in 8 MiB) made ~22 MB of audit rows per request.
MAX_WARNINGS = 100
# What the clinician must see whatever else was warned about.
_NEVER_DROPPED = frozenset({WarningCode.PRESENTING_COMPLAINT_NOT_RECOGNISED.value})


@dataclass(slots=True)
class Warnings:
    """The extraction's warnings: each (code, path) once, at most ``MAX_WARNINGS``, then one
    ``warnings_truncated``."""

    items: list[ExtractionWarning] = field(default_factory=list)
    _seen: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        given, self.items = self.items, []
        for warning in given:
            self._append(warning)

    def add(self, code: WarningCode, path: str) -> None:
        self._append(ExtractionWarning(code.value, path))

    def _append(self, warning: ExtractionWarning) -> None:
        key = (warning.code, warning.path)
        if key in self._seen:
            return
        self._seen.add(key)
        if len(self.items) < MAX_WARNINGS or warning.code in _NEVER_DROPPED:
            self.items.append(warning)
        elif len(self.items) == MAX_WARNINGS:
            self.items.append(ExtractionWarning(WarningCode.WARNINGS_TRUNCATED.value, "$"))


@dataclass(slots=True)
class Anchor:
    time: datetime  # UTC
    encounter: EncounterFact | None
    encounter_target: ReferenceTarget | None
    # The anchor's calendar date where it was recorded: the encounter's local date when its
    # start carried an offset, else the UTC date (request-time fallback). Only age uses it.
    local_date: date
    # The request time (UTC). Resources the bundle links to the triage encounter count up to
    # it, not only up to the encounter's start: triage vitals, the first ECG and troponin are
    # taken after arrival, and are the presentation itself.
    request_time: datetime | None = None


@dataclass(slots=True)
class Context:
    patient: ReferenceTarget
    anchor: Anchor
    full_urls: frozenset[str]
    local_refs: frozenset[str]
    warnings: Warnings
    encounters: tuple[EncounterFact, ...]
    _encounter_keys: frozenset[str] | None = None  # built on first use: most bundles never ask

    @classmethod
    def build(cls, facts: BundleFacts, anchor: Anchor, warnings: Warnings) -> Context:
        patient = facts.patient
        return cls(
            ReferenceTarget.of("Patient", patient.id, patient.full_url),
            anchor,
            facts.full_urls,
            facts.local_refs,
            warnings,
            facts.encounters,
        )

    def about_patient(self, subject: str | None, path: str) -> bool:
        """True when ``subject`` is this bundle's patient; otherwise warn why not."""
        if self.patient.matches(subject):
            return True
        self._warn_not_patient(subject, path)
        return False

    def _warn_not_patient(self, subject: str | None, path: str) -> None:
        self.warnings.add(not_patient_warning(subject, self.full_urls, self.local_refs), path)

    def usable(
        self,
        header: Header,
        *,
        subject_path: str,
        strictly_before: bool = False,
        encounter: str | None = None,
        undated: bool = False,
    ) -> bool:
        """The gate every clinical resource passes: status, subject, time <= anchor (or, for
        a resource whose ``encounter`` is the triage encounter, <= the request time).
        ``undated``: a resource without a time passes (history whose date does not matter)."""
        status = header.status
        if status == "entered-in-error":
            self.warnings.add(WarningCode.ENTERED_IN_ERROR, header.path)
            return False
        if status == "cancelled":
            self.warnings.add(WarningCode.CANCELLED, header.path)
            return False
        subject = header.subject
        if not self.patient.matches(subject):
            # The path is built only when there is something to warn about.
            self._warn_not_patient(subject, header.path + subject_path)
            return False
        if undated and header.time is None:
            return True
        return self.in_time(header, strictly_before=strictly_before, encounter=encounter)

    def in_time(
        self, header: Header, *, strictly_before: bool = False, encounter: str | None = None
    ) -> bool:
        time = header.time
        if time is None:
            self.warnings.add(WarningCode.MISSING_TIME, header.path)
            return False
        anchor = self.anchor.time
        if time > anchor:
            if self.during_triage_encounter(time, encounter):
                return True
            self.warnings.add(WarningCode.FUTURE_DATED, header.path)
            return False
        return not (strictly_before and time == anchor)

    def during_triage_encounter(self, time: datetime, encounter: str | None) -> bool:
        """True for a time after the anchor that still counts: the resource names the triage
        encounter and was recorded no later than the request."""
        until = self.anchor.request_time
        return (
            encounter is not None
            and until is not None
            and time <= until
            and self.in_triage_encounter(encounter)
        )

    def in_triage_encounter(self, encounter: str | None) -> bool:
        target = self.anchor.encounter_target
        return target is not None and target.matches(encounter)

    def is_bundle_encounter(self, reference: str) -> bool:
        """True when ``reference`` resolves to an Encounter in this bundle (any of them)."""
        keys = self._encounter_keys
        if keys is None:
            keys = self._encounter_keys = frozenset().union(
                *(_keys("Encounter", e.id, e.full_url) for e in self.encounters)
            )
        return reference != MALFORMED_REFERENCE and reference in keys


def sources(refs: Iterable[str]) -> tuple[str, ...]:
    """Distinct references, in first-seen order."""
    return tuple(dict.fromkeys(refs))
