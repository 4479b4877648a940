"""Transport-free values the engine returns. ``service/convert.py`` maps them to protobuf.

These are the contract between the engine, the fairness audit and the gRPC layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum


class RiskBand(StrEnum):
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"


class AuditStatus(IntEnum):
    """Ordered by severity; the value is exported as the Prometheus gauge value."""

    OK = 0
    INSUFFICIENT_DATA = 1
    WARN = 2
    ALERT = 3


@dataclass(frozen=True, slots=True)
class HeartBasis:
    total: int
    history: int
    ecg: int
    age: int
    risk_factors: int
    troponin: int
    band: RiskBand


@dataclass(frozen=True, slots=True)
class Contribution:
    """One feature's part in the score, for clinician review."""

    feature: str
    value: str  # human-readable value with unit, e.g. "112 /min", "present", "missing"
    weight: float  # contribution to the log-odds (signed); 0.0 where not computed
    status: str  # present / missing / stale / implausible
    sources: tuple[str, ...]  # bundle-local resource references


@dataclass(frozen=True, slots=True)
class ModelRef:
    name: str
    version: str
    sha256: str
    execution_provider: str  # e.g. "CPUExecutionProvider", "CUDAExecutionProvider"


@dataclass(frozen=True, slots=True)
class GroupRate:
    group: str
    count: int
    escalated: int
    rate: float
    ci_low: float  # Wilson 95% interval
    ci_high: float
    sufficient: bool  # count >= the configured minimum per group
    outcomes: int = 0  # assessments in the window with a reported outcome
    mace: int = 0  # of those, MACE = yes
    false_negative_rate: float | None = None  # missed MACE (not escalated) / MACE
    missed: int = 0  # MACE outcomes that had not been escalated
    fnr_ci_low: float | None = None  # Wilson 95% interval of false_negative_rate
    fnr_ci_high: float | None = None
    mean_predicted: float | None = None  # mean MACE probability of those with an outcome
    observed_mace_rate: float | None = None  # mace / outcomes (calibration: vs mean_predicted)


@dataclass(frozen=True, slots=True)
class ParityResult:
    """Demographic parity of escalation for one attribute in one stratum (Fairlearn's
    definitions: difference = max - min selection rate, ratio = min / max)."""

    attribute: str  # race, ethnicity, sex, race_sex, age_band
    stratum: str  # "all", or the HEART band: low, moderate, high
    difference: float | None  # None when fewer than two groups have data
    ratio: float | None
    groups: tuple[GroupRate, ...]
    sufficient: bool  # at least two groups meet the minimum count


@dataclass(frozen=True, slots=True)
class CounterfactualVariant:
    race: str
    ethnicity: str
    sex: str
    band: RiskBand
    esi_level: int
    mace_probability: float
    actions_changed: bool
    differs: bool  # band, ESI or actions differ from the actual assessment


@dataclass(frozen=True, slots=True)
class Counterfactual:
    race_ethnicity_invariant: bool  # must always be true: race/ethnicity are not inputs
    sex_invariant: bool  # may be false where clinical rules use sex (troponin limits)
    variants: tuple[CounterfactualVariant, ...]


@dataclass(frozen=True, slots=True)
class FairnessAudit:
    status: AuditStatus
    rule: str  # the rule that fired (empty when OK)
    groups_involved: tuple[str, ...]  # "attribute=group" labels
    facility: str  # bounded facility label
    window_size: int  # decisions in this facility's window
    escalation_definition: str  # e.g. "band == HIGH or esi_level <= 2"
    parity: tuple[ParityResult, ...]
    counterfactual: Counterfactual | None


@dataclass(frozen=True, slots=True)
class Recommendation:
    band: RiskBand
    esi_level: int  # 1 (most urgent) .. 5; never 4 or 5 when ACS is possible
    actions: tuple[str, ...]
    escalated: bool
    rationale: tuple[str, ...]  # which policy rules fired, in words (no patient data)


@dataclass(frozen=True, slots=True)
class Evidence:
    """A finding behind a safety rule, and the resources that show it."""

    finding: str  # a fixed name, e.g. "troponin_above_url_in_window"
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Assessment:
    request_id: str
    audit_id: str
    created_at: datetime
    mace_probability: float
    recommendation: Recommendation
    heart: HeartBasis
    contributions: tuple[Contribution, ...]
    warnings: tuple[str, ...]  # "code at path" strings; never bundle values
    model: ModelRef
    fairness_audit: FairnessAudit | None
    encounter_selection: str = ""
    evidence: tuple[Evidence, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutcomeAck:
    """The answer to ReportOutcome. An encounter reference joins the outcome to every
    assessment recorded for that encounter: ``audit_ids`` lists them all (oldest first) and
    ``audit_id`` is the most recent one."""

    audit_id: str
    duplicate: bool  # True when this exact outcome had already been recorded (idempotent repeat)
    audit_ids: tuple[str, ...]
    mace: bool
    occurred_at: datetime | None
    reported_at: datetime
