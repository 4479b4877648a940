"""What every rule needs: the anchor, reference matching, and the warnings collector."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from fhir_adapters.facts import MALFORMED_REFERENCE, EncounterFact, Header, PatientFact
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
    """The ways a bundle may refer to one resource: "Type/id", its fullUrl, or an
    absolute URL ending in "/Type/id"."""

    keys: frozenset[str]
    suffix: str | None  # "/Type/id"

    @classmethod
    def of(cls, type_name: str, resource_id: str | None, full_url: str | None) -> ReferenceTarget:
        suffix = None if resource_id is None else f"/{type_name}/{resource_id}"
        return cls(_keys(type_name, resource_id, full_url), suffix)

    def matches(self, reference: str | None) -> bool:
        if reference is None or reference == MALFORMED_REFERENCE:
            return False
        if reference in self.keys:
            return True
        return self.suffix is not None and "://" in reference and reference.endswith(self.suffix)


@dataclass(slots=True)
class Warnings:
    items: list[ExtractionWarning] = field(default_factory=list)

    def add(self, code: WarningCode, path: str) -> None:
        self.items.append(ExtractionWarning(code.value, path))


@dataclass(slots=True)
class Anchor:
    time: datetime
    encounter: EncounterFact | None
    encounter_target: ReferenceTarget | None


@dataclass(slots=True)
class Context:
    patient: ReferenceTarget
    anchor: Anchor
    full_urls: frozenset[str]
    local_refs: frozenset[str]
    warnings: Warnings

    @classmethod
    def build(
        cls,
        patient: PatientFact,
        anchor: Anchor,
        full_urls: frozenset[str],
        local_refs: frozenset[str],
        warnings: Warnings,
    ) -> Context:
        return cls(
            ReferenceTarget.of("Patient", patient.id, patient.full_url),
            anchor,
            full_urls,
            local_refs,
            warnings,
        )

    def about_patient(self, subject: str | None, path: str) -> bool:
        """True when ``subject`` is this bundle's patient; otherwise warn why not."""
        if self.patient.matches(subject):
            return True
        self._warn_not_patient(subject, path)
        return False

    def _warn_not_patient(self, subject: str | None, path: str) -> None:
        if subject is None:
            self.warnings.add(WarningCode.NO_SUBJECT, path)
        elif subject == MALFORMED_REFERENCE or not self._resolvable_or_patient(subject):
            self.warnings.add(WarningCode.UNRESOLVED_REFERENCE, path)
        else:
            self.warnings.add(WarningCode.OTHER_PATIENT_RESOURCE, path)

    def _resolvable_or_patient(self, reference: str) -> bool:
        if reference in self.full_urls or reference in self.local_refs:
            return True
        # "Patient/x" or ".../Patient/x": clearly another patient, resolvable or not.
        tail = reference.rsplit("/", 2)
        return len(tail) >= 2 and tail[-2] == "Patient"

    def usable(self, header: Header, *, subject_path: str, strictly_before: bool = False) -> bool:
        """The gate every clinical resource passes: status, subject, time <= anchor."""
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
        return self.in_time(header, strictly_before=strictly_before)

    def in_time(self, header: Header, *, strictly_before: bool = False) -> bool:
        time = header.time
        if time is None:
            self.warnings.add(WarningCode.MISSING_TIME, header.path)
            return False
        anchor = self.anchor.time
        if time > anchor:
            self.warnings.add(WarningCode.FUTURE_DATED, header.path)
            return False
        return not (strictly_before and time == anchor)

    def in_triage_encounter(self, encounter: str | None) -> bool:
        target = self.anchor.encounter_target
        return target is not None and target.matches(encounter)


def sources(refs: Iterable[str]) -> tuple[str, ...]:
    """Distinct references, in first-seen order."""
    return tuple(dict.fromkeys(refs))
