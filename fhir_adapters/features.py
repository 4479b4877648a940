"""The two values an extraction produces, kept apart on purpose.

``ClinicalFeatures`` is everything the model and the clinical rules may see.
``AuditAttributes`` is everything the fairness audit may see and the model never does
(race, ethnicity, age band, facility, pseudonymised references). Nothing in
``ClinicalFeatures`` may be derived from race or ethnicity: a test proves it.

Every feature carries its provenance (present / missing / stale / implausible) and the
reference of the resource it came from, so a clinician can review the basis of a
recommendation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    """Provenance of one feature value."""

    PRESENT = "present"
    MISSING = "missing"
    STALE = "stale"  # recorded, but older than the staleness window before the anchor
    IMPLAUSIBLE = "implausible"  # recorded, but outside physiological limits


class EncounterSelection(StrEnum):
    """How the triage encounter (the time anchor) was chosen."""

    REQUESTED = "requested"  # the id named by the request
    ACTIVE = "active"  # the single arrived / triaged / in-progress Encounter
    MOST_RECENT = "most_recent"  # latest period.start; a warning says so
    NONE = "none"  # no Encounter: the request time is the anchor; a warning says so


class ClinicalSex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    UNKNOWN = "unknown"


class SexSource(StrEnum):
    """Where ClinicalFeatures.sex was read. Precedence: individual-sex, birthsex, gender."""

    INDIVIDUAL_SEX = "us-core-individual-sex"
    BIRTHSEX = "us-core-birthsex"
    GENDER = "Patient.gender"
    NONE = "none"


class TroponinAssay(StrEnum):
    CONVENTIONAL = "conventional"
    HIGH_SENSITIVITY = "high_sensitivity"


class UrlSource(StrEnum):
    """Where the troponin upper reference limit came from."""

    REFERENCE_RANGE = "Observation.referenceRange.high"
    DEFAULT = "default_for_code"  # documented per-code default
    DEFAULT_SEX_SPECIFIC = "default_for_code_and_sex"  # hs assays, sex-specific 99th percentile


class EcgCategory(StrEnum):
    """HEART's ECG item: 0 normal, 1 non-specific, 2 significant ST deviation."""

    NORMAL = "normal"
    NONSPECIFIC = "nonspecific"  # LBBB, LVH, paced rhythm, repolarisation change
    ST_DEVIATION = "st_deviation"
    UNKNOWN = "unknown"  # no ECG recorded before the anchor


@dataclass(frozen=True, slots=True)
class Measurement:
    """One numeric feature in its canonical unit (see ``CANONICAL_UNITS``).

    ``value`` is set only when ``status`` is PRESENT. ``source`` is the bundle-local
    reference of the Observation (``"Observation/<id>"``); it is shown to clinicians and
    stored in the audit record, never logged.
    """

    value: float | None
    status: Status
    source: str | None = None
    effective: datetime | None = None

    @classmethod
    def missing(cls) -> Measurement:
        return cls(None, Status.MISSING)


# Quantity.comparator's bounds (FHIR's required value set less "ad", which bounds no lab
# value): the only comparators a Troponin ever carries.
COMPARATORS = frozenset({"<", "<=", ">=", ">"})
LOWER_BOUNDS = frozenset({">", ">="})  # the true value is at least the number given
UPPER_BOUNDS = frozenset({"<", "<="})  # the true value is at most the number given


def above_limit(value: float, limit: float, comparator: str | None) -> bool:
    """Whether a result is known to be above ``limit``. A lower bound (">", ">=") at or
    above the limit is; an upper bound ("<", "<=") never is: the lab says only that the
    value is at most its number (often an undetectable result on an assay whose lowest
    reportable value lies above the limit)."""
    if comparator in UPPER_BOUNDS:
        return False
    return value > limit or (value == limit and comparator in LOWER_BOUNDS)


def within_limit(value: float, limit: float, comparator: str | None) -> bool:
    """Whether a result is known not to be above ``limit``: a value or an upper bound at or
    below it. A lower bound never is ("> 5" against 10 could be 11). A result neither above
    nor within its limit is indeterminate."""
    return comparator not in LOWER_BOUNDS and value <= limit


@dataclass(frozen=True, slots=True)
class Finding:
    """A coded finding (symptom or risk factor): present, and the resources that say so.

    Absence of a code is recorded as ``present=False``: it means "not recorded", which
    the model and HEART treat as absent.
    """

    present: bool
    sources: tuple[str, ...] = ()

    @property
    def status(self) -> Status:
        return Status.PRESENT if self.present else Status.MISSING


ABSENT = Finding(False)


@dataclass(frozen=True, slots=True)
class Troponin:
    """The latest troponin before the anchor, normalised to ng/L."""

    status: Status
    value_ng_l: float | None = None
    comparator: str | None = None  # "<", "<=", ">" or ">=" when the lab reported a bound
    assay: TroponinAssay | None = None
    analyte: str | None = None  # "I" or "T"
    loinc: str | None = None
    url_ng_l: float | None = None  # upper reference limit (99th percentile) in ng/L
    url_source: UrlSource | None = None
    ratio_to_url: float | None = None
    source: str | None = None
    effective: datetime | None = None
    # A troponin result newer than this one (or, when none was read, any) could not be read
    # (unit missing or unknown, malformed, data absent, implausible): what it said is unknown.
    newer_unread: bool = False
    # A high-sensitivity result whose limit is a lab range that states no sex: the documented
    # sex-specific 99th percentile for the patient's sex (female when unknown), where it is
    # lower than the lab's. The lab's limit still scores; this one is shown beside it.
    sex_specific_url_ng_l: float | None = None
    # Results within the staleness window above such a lower sex-specific limit but not
    # above their lab's limit (those are in ``troponin_above_url_in_window``): a raised
    # troponin a limit that ignores sex could hide, the bias this service exists to catch.
    # A Finding, so that its sources are pseudonymised in the store like every other's.
    above_sex_specific_url: Finding = ABSENT

    @classmethod
    def missing(cls) -> Troponin:
        return cls(Status.MISSING)

    def exceeds_url(self, multiple: float = 1.0) -> bool:
        """Present and known to be above ``multiple`` x the upper reference limit
        (``above_limit``): one definition for the policy, HEART's troponin item and the
        in-window finding."""
        ratio = self.ratio_to_url
        return (
            self.status is Status.PRESENT
            and ratio is not None
            and above_limit(ratio, multiple, self.comparator)
        )

    def within_url(self) -> bool:
        """Present and known not to be above the upper reference limit (``within_limit``):
        what the HEART Pathway calls a negative troponin."""
        ratio = self.ratio_to_url
        return (
            self.status is Status.PRESENT
            and ratio is not None
            and within_limit(ratio, 1.0, self.comparator)
        )


@dataclass(frozen=True, slots=True)
class Ecg:
    """HEART's ECG item and its provenance.

    ``status`` is PRESENT when ``category`` is known; MISSING when no ECG finding was
    recorded (no source); STALE when the latest ECG is older than the staleness window:
    ``category`` is then UNKNOWN (a stale ECG is not scored) but ``source`` and
    ``effective`` name the stale resource. The default keeps ``Ecg(category, source,
    effective)`` meaning what it did: an UNKNOWN category left at the default is MISSING.
    """

    category: EcgCategory
    source: str | None = None
    effective: datetime | None = None
    status: Status = Status.PRESENT

    def __post_init__(self) -> None:
        if self.category is EcgCategory.UNKNOWN:
            if self.status is Status.PRESENT:  # nothing to score is never "present"
                object.__setattr__(self, "status", Status.MISSING)
        elif self.status is not Status.PRESENT:
            raise ValueError("an ECG with a known category is present")


@dataclass(frozen=True, slots=True)
class Symptoms:
    """Presenting symptoms. Cardiac-equivalent symptoms are separate flags on purpose:
    an "atypical" presentation (no chest pain) must never be lost."""

    chest_pain: Finding = ABSENT
    shoulder_pain: Finding = ABSENT
    arm_pain: Finding = ABSENT
    jaw_pain: Finding = ABSENT
    dyspnea: Finding = ABSENT
    diaphoresis: Finding = ABSENT
    nausea: Finding = ABSENT
    epigastric_pain: Finding = ABSENT

    def any(self) -> bool:
        """Chest pain or any cardiac-equivalent symptom is recorded."""
        return (
            self.chest_pain.present
            or self.shoulder_pain.present
            or self.arm_pain.present
            or self.jaw_pain.present
            or self.dyspnea.present
            or self.diaphoresis.present
            or self.nausea.present
            or self.epigastric_pain.present
        )


@dataclass(frozen=True, slots=True)
class RiskFactors:
    """HEART risk factors, each active, not refuted and recorded before the anchor."""

    hypertension: Finding = ABSENT
    hyperlipidaemia: Finding = ABSENT
    diabetes: Finding = ABSENT
    obesity: Finding = ABSENT  # coded, or BMI > 30
    smoking: Finding = ABSENT  # current, or quit within 3 months of the anchor
    family_history: Finding = ABSENT  # premature coronary disease (onset before 65)
    known_atherosclerosis: Finding = ABSENT  # prior MI, PCI, CABG, stroke/TIA, PAD


@dataclass(frozen=True, slots=True)
class ExtractionWarning:
    """Something a clinician should know about the data. Never carries a bundle value."""

    code: str  # machine-readable, one of fhir_adapters.warnings.WarningCode
    path: str  # JSON path into the bundle, e.g. "$.entry[3].resource.valueQuantity"


@dataclass(frozen=True, slots=True)
class ClinicalFeatures:
    """What the model and the clinical rules may see. No race, no ethnicity."""

    anchor_time: datetime  # start of the triage encounter (timezone-aware, UTC)
    encounter: str | None  # "Encounter/<id>" or None
    encounter_selection: EncounterSelection
    age_years: Measurement
    sex: ClinicalSex
    sex_source: SexSource
    heart_rate: Measurement  # /min
    systolic_bp: Measurement  # mm[Hg]
    diastolic_bp: Measurement  # mm[Hg]
    respiratory_rate: Measurement  # /min
    spo2: Measurement  # %
    temperature_c: Measurement  # Cel
    bmi: Measurement  # kg/m2
    troponin: Troponin
    ecg: Ecg
    symptoms: Symptoms
    risk_factors: RiskFactors
    # Evidence of injury or ischaemia anywhere in the staleness windows, not only in the
    # latest result: a falling troponin after a raised one, or an ST change that has resolved,
    # still mean it. For the recommendation's safety rules; not model inputs.
    troponin_above_url_in_window: Finding = ABSENT
    st_deviation_in_window: Finding = ABSENT
    # The ECGs among those that show ST elevation: reperfusion (STEMI pathway), not serial
    # troponin alone.
    st_elevation_in_window: Finding = ABSENT
    # The triage encounter gave a reason (coded, or text only) in which no symptom was
    # recognised, and none is recorded elsewhere (also warned). A field, not only a warning:
    # the warnings are capped, and the policy must not lose it with them.
    complaint_not_recognised: bool = False
    warnings: tuple[ExtractionWarning, ...] = ()


CANONICAL_UNITS: dict[str, str] = {
    "age_years": "a",
    "heart_rate": "/min",
    "systolic_bp": "mm[Hg]",
    "diastolic_bp": "mm[Hg]",
    "respiratory_rate": "/min",
    "spo2": "%",
    "temperature_c": "Cel",
    "bmi": "kg/m2",
    "troponin": "ng/L",
}


class Race(StrEnum):
    """US Core OMB race category, as audited."""

    AMERICAN_INDIAN_OR_ALASKA_NATIVE = "american_indian_or_alaska_native"
    ASIAN = "asian"
    BLACK_OR_AFRICAN_AMERICAN = "black_or_african_american"
    NATIVE_HAWAIIAN_OR_PACIFIC_ISLANDER = "native_hawaiian_or_pacific_islander"
    WHITE = "white"
    MULTIPLE = "multiple"  # more than one OMB category
    UNKNOWN = "unknown"  # none, UNK or ASKU
    INVALID = "invalid"  # a code outside the OMB race set (e.g. 2135-2 sent as race)


class Ethnicity(StrEnum):
    HISPANIC_OR_LATINO = "hispanic_or_latino"
    NOT_HISPANIC_OR_LATINO = "not_hispanic_or_latino"
    UNKNOWN = "unknown"
    INVALID = "invalid"


class AgeBand(StrEnum):
    UNDER_18 = "under_18"
    AGE_18_44 = "18-44"
    AGE_45_64 = "45-64"
    AGE_65_89 = "65-89"
    AGE_90_PLUS = "90+"  # top-coded: exact ages over 89 are identifying
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class AuditAttributes:
    """What the fairness audit may see. Never passed to the model."""

    race: Race
    ethnicity: Ethnicity
    sex: ClinicalSex
    age_band: AgeBand
    facility: str | None  # opaque reference (Encounter.serviceProvider or location)
    patient_pseudonym: str  # keyed hash (HMAC-SHA256, hex) of the patient reference
    encounter_pseudonym: str | None  # keyed hash of the encounter reference


@dataclass(frozen=True, slots=True)
class Extraction:
    features: ClinicalFeatures
    audit: AuditAttributes
