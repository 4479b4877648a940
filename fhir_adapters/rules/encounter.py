"""Which Encounter is the triage encounter, and so which time everything is judged at.

1. the Encounter the request names (by id, "Encounter/<id>" or fullUrl, any of them
   version-specific) -> REQUESTED; refused (``encounter_not_usable``) when it is cancelled
   or entered-in-error; when its start is after the request time, the request time is the
   anchor (warning ``future_dated``: nothing after the request may count);
2. else the single Encounter with status arrived / triaged / in-progress -> ACTIVE;
3. else the latest period.start among this patient's usable Encounters -> MOST_RECENT
   (warning ``encounter_chosen_by_recency``);
4. no usable Encounter -> the request time is the anchor (warning ``no_encounter``).
An Encounter is usable when it is about this patient, not cancelled / entered-in-error /
planned, and its start is not after the request time. An Encounter that is not about this
patient is not usable and warns as any clinical resource would (``Context.usable``):
``no_subject`` when it has no subject, ``unresolved_reference`` when the subject is
malformed or resolves to nothing, else ``other_patient_resource``.

The anchor keeps the encounter start's calendar date in the offset it was recorded with
(``Anchor.local_date``, for age); every time comparison uses the UTC instant.
"""

from __future__ import annotations

from datetime import datetime

from fhir_adapters.errors import BundleRejected, Reason
from fhir_adapters.facts import BundleFacts, EncounterFact, unversioned
from fhir_adapters.features import EncounterSelection
from fhir_adapters.fhir_time import local_date
from fhir_adapters.rules.context import Anchor, ReferenceTarget, Warnings, not_patient_warning
from fhir_adapters.warnings import WarningCode

ACTIVE_STATUSES = frozenset({"arrived", "triaged", "in-progress"})
IGNORED_STATUSES = {
    "cancelled": WarningCode.CANCELLED,
    "entered-in-error": WarningCode.ENTERED_IN_ERROR,
}


def _target(encounter: EncounterFact) -> ReferenceTarget:
    return ReferenceTarget.of("Encounter", encounter.id, encounter.full_url)


def select_anchor(
    facts: BundleFacts,
    request_time: datetime,
    requested_id: str | None,
    warnings: Warnings,
) -> tuple[Anchor, EncounterSelection]:
    patient = facts.patient
    patient_target = ReferenceTarget.of("Patient", patient.id, patient.full_url)
    if requested_id is not None:
        requested = unversioned(requested_id)
        wanted = requested.removeprefix("Encounter/")
        for encounter in facts.encounters:
            if (encounter.id == wanted or encounter.full_url == requested) and (
                patient_target.matches(encounter.subject)
            ):
                if (encounter.status or "") in IGNORED_STATUSES:
                    path = f"$.entry[{encounter.entry}].resource.status"
                    raise BundleRejected(Reason.ENCOUNTER_NOT_USABLE, path)
                return _anchor_at(encounter, request_time, warnings), EncounterSelection.REQUESTED
        raise BundleRejected(Reason.ENCOUNTER_NOT_FOUND, "$.entry")

    usable: list[EncounterFact] = []
    for encounter in facts.encounters:
        path = f"$.entry[{encounter.entry}].resource"
        ignored = IGNORED_STATUSES.get(encounter.status or "")
        if ignored is not None:
            warnings.add(ignored, path)
        elif not patient_target.matches(encounter.subject):
            # The same decision and warning as for any clinical resource (Context.usable):
            # an Encounter without a subject cannot be shown to be this patient's visit, so
            # it is not used, but it is "no_subject", not another patient's.
            code = not_patient_warning(encounter.subject, facts.full_urls, facts.local_refs)
            warnings.add(code, path + ".subject")
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
    return Anchor(request_time, None, None, request_time.date()), EncounterSelection.NONE


def _anchor_at(encounter: EncounterFact, request_time: datetime, warnings: Warnings) -> Anchor:
    start = encounter.start
    # Without a start, or (only a named encounter can get here so) one after the request:
    # the request time is the anchor, so nothing recorded after the request counts.
    if start is None or start > request_time:
        code = WarningCode.ENCOUNTER_WITHOUT_START if start is None else WarningCode.FUTURE_DATED
        warnings.add(code, f"$.entry[{encounter.entry}].resource.period")
        # request_time is UTC: the fallback anchor's date is the UTC date.
        return Anchor(
            request_time, encounter, _target(encounter), request_time.date(), request_time
        )
    # Age counts birthdays in the patient's calendar: the start's date where it was recorded.
    recorded = local_date(encounter.start_raw)
    return Anchor(
        start,
        encounter,
        _target(encounter),
        start.date() if recorded is None else recorded,
        request_time,
    )
