"""Which Encounter is the triage encounter, and so which time everything is judged at.

1. the Encounter the request names (by id, "Encounter/<id>" or fullUrl) -> REQUESTED;
2. else the single Encounter with status arrived / triaged / in-progress -> ACTIVE;
3. else the latest period.start among this patient's usable Encounters -> MOST_RECENT
   (warning ``encounter_chosen_by_recency``);
4. no usable Encounter -> the request time is the anchor (warning ``no_encounter``).
An Encounter is usable when it is about this patient, not cancelled / entered-in-error /
planned, and its start is not after the request time.
"""

from __future__ import annotations

from datetime import datetime

from fhir_adapters.errors import BundleRejected, Reason
from fhir_adapters.facts import EncounterFact, PatientFact
from fhir_adapters.features import EncounterSelection
from fhir_adapters.rules.context import Anchor, ReferenceTarget, Warnings
from fhir_adapters.warnings import WarningCode

ACTIVE_STATUSES = frozenset({"arrived", "triaged", "in-progress"})
IGNORED_STATUSES = {
    "cancelled": WarningCode.CANCELLED,
    "entered-in-error": WarningCode.ENTERED_IN_ERROR,
}


def _target(encounter: EncounterFact) -> ReferenceTarget:
    return ReferenceTarget.of("Encounter", encounter.id, encounter.full_url)


def select_anchor(
    encounters: tuple[EncounterFact, ...],
    patient: PatientFact,
    request_time: datetime,
    requested_id: str | None,
    warnings: Warnings,
) -> tuple[Anchor, EncounterSelection]:
    patient_target = ReferenceTarget.of("Patient", patient.id, patient.full_url)
    if requested_id is not None:
        wanted = requested_id.removeprefix("Encounter/")
        for encounter in encounters:
            if (encounter.id == wanted or encounter.full_url == requested_id) and (
                patient_target.matches(encounter.subject)
            ):
                return _anchor_at(encounter, request_time, warnings), EncounterSelection.REQUESTED
        raise BundleRejected(Reason.ENCOUNTER_NOT_FOUND, "$.entry")

    usable: list[EncounterFact] = []
    for encounter in encounters:
        path = f"$.entry[{encounter.entry}].resource"
        ignored = IGNORED_STATUSES.get(encounter.status or "")
        if ignored is not None:
            warnings.add(ignored, path)
        elif not patient_target.matches(encounter.subject):
            warnings.add(WarningCode.OTHER_PATIENT_RESOURCE, path + ".subject")
        elif encounter.status == "planned":
            continue  # not happened yet: no anchor
        elif encounter.start is not None and encounter.start > request_time:
            warnings.add(WarningCode.FUTURE_DATED, path)
        else:
            usable.append(encounter)

    active = [e for e in usable if e.status in ACTIVE_STATUSES]
    if len(active) == 1:
        return _anchor_at(active[0], request_time, warnings), EncounterSelection.ACTIVE
    # Several active encounters are as ambiguous as none: choose among them by recency.
    candidates = [e for e in (active or usable) if e.start is not None]
    if candidates:
        # Latest start; among equal starts the later entry (a deterministic tie-break).
        latest = max(candidates, key=lambda e: (e.start, e.entry))
        warnings.add(WarningCode.ENCOUNTER_CHOSEN_BY_RECENCY, f"$.entry[{latest.entry}].resource")
        return _anchor_at(latest, request_time, warnings), EncounterSelection.MOST_RECENT
    warnings.add(WarningCode.NO_ENCOUNTER, "$.entry")
    return Anchor(request_time, None, None), EncounterSelection.NONE


def _anchor_at(encounter: EncounterFact, request_time: datetime, warnings: Warnings) -> Anchor:
    if encounter.start is None:
        warnings.add(
            WarningCode.ENCOUNTER_WITHOUT_START, f"$.entry[{encounter.entry}].resource.period"
        )
        return Anchor(request_time, encounter, _target(encounter))
    return Anchor(encounter.start, encounter, _target(encounter))
