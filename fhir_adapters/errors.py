"""Every error fhir_adapters raises. The tree is public API::

    FhirAdapterError                 reason + JSON path, never a value from the bundle
    ├── BundleRejected               the bundle cannot be assessed (-> INVALID_ARGUMENT)
    │   reasons: not_utf8, not_json, not_a_bundle, no_patient, multiple_patients,
    │            non_human_patient, patient_without_id, duplicate_full_url,
    │            encounter_not_found, encounter_not_usable, strict_validation_failed
    └── BundleTooLarge               above a configured limit (-> RESOURCE_EXHAUSTED)
        reasons: too_many_bytes, too_many_entries, too_deeply_nested

``str(err)`` is safe to send to a client and to log: it is built only from the reason,
the path and configured limits.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_A_BUNDLE = "not_a_bundle"
    NO_PATIENT = "no_patient"
    MULTIPLE_PATIENTS = "multiple_patients"
    NON_HUMAN_PATIENT = "non_human_patient"
    PATIENT_WITHOUT_ID = "patient_without_id"  # neither id nor fullUrl: nothing refers to it
    DUPLICATE_FULL_URL = "duplicate_full_url"
    ENCOUNTER_NOT_FOUND = "encounter_not_found"
    ENCOUNTER_NOT_USABLE = "encounter_not_usable"  # the one named is cancelled / entered-in-error
    STRICT_VALIDATION_FAILED = "strict_validation_failed"
    TOO_MANY_BYTES = "too_many_bytes"
    TOO_MANY_ENTRIES = "too_many_entries"
    TOO_DEEPLY_NESTED = "too_deeply_nested"


class FhirAdapterError(Exception):
    """Base class. ``reason`` is machine-readable; ``path`` is a JSON path ("$" for the root)."""

    def __init__(self, reason: Reason, path: str = "$") -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{reason.value} at {path}")


class BundleRejected(FhirAdapterError):  # noqa: N818 -- public name fixed by the contract
    """The input is not an assessable FHIR R4 triage bundle."""


class BundleTooLarge(FhirAdapterError):  # noqa: N818 -- public name fixed by the contract
    """The input is above a configured size, entry-count or nesting limit."""
