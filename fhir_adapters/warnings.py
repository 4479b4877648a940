"""Machine-readable warning codes. A warning says *what kind* of problem was found and
*where* (a JSON path); it never carries a value from the bundle."""

from __future__ import annotations

from enum import StrEnum


class WarningCode(StrEnum):
    # units and values
    MISSING_UNIT = "missing_unit"  # a quantity without a UCUM code: never guessed
    UNKNOWN_UNIT = "unknown_unit"  # a unit this feature cannot be converted from
    MALFORMED = "malformed"  # an element of the wrong JSON type or shape
    DATA_ABSENT = "data_absent"  # dataAbsentReason instead of a value
    IMPLAUSIBLE_VALUE = "implausible_value"  # outside physiological limits, or not finite
    STALE_VALUE = "stale_value"  # older than the staleness window before the anchor
    TROPONIN_CENSORED = "troponin_censored"  # "<" / ">" comparator: a bound, not a value
    # references and resource status
    UNRESOLVED_REFERENCE = "unresolved_reference"  # reference to nothing in the bundle
    NO_SUBJECT = "no_subject"  # clinical resource without subject/patient: ignored
    OTHER_PATIENT_RESOURCE = "other_patient_resource"  # about another patient: ignored
    ENTERED_IN_ERROR = "entered_in_error"  # ignored
    CANCELLED = "cancelled"  # ignored
    # time
    MISSING_TIME = "missing_time"  # no usable effective / onset time: ignored
    FUTURE_DATED = "future_dated"  # after the anchor time: ignored
    # more than MAX_WARNINGS (rules/context.py): the rest are not listed
    WARNINGS_TRUNCATED = "warnings_truncated"
    # presentation
    # The triage encounter gives a reason (coded, or as text only) in which no chest pain or
    # cardiac-equivalent symptom is recognised, and none is recorded elsewhere.
    PRESENTING_COMPLAINT_NOT_RECOGNISED = "presenting_complaint_not_recognised"
    # encounter selection
    ENCOUNTER_CHOSEN_BY_RECENCY = "encounter_chosen_by_recency"
    NO_ENCOUNTER = "no_encounter"  # the request time is the anchor
    ENCOUNTER_WITHOUT_START = "encounter_without_start"  # the request time is the anchor
