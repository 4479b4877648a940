"""Fully populated Assessment values and audit records for the store and codec tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from service.assessment import (
    Assessment,
    AuditStatus,
    Contribution,
    Counterfactual,
    CounterfactualVariant,
    FairnessAudit,
    GroupRate,
    HeartBasis,
    ModelRef,
    ParityResult,
    Recommendation,
    RiskBand,
)
from service.assessment_codec import dumps
from service.audit_store import AuditRecord
from service.labels import GroupLabels

LABELS = GroupLabels("other", "white", "not_hispanic_or_latino", "female", "45-64")


def fairness_audit() -> FairnessAudit:
    rate = GroupRate("female", 40, 10, 0.25, 0.14, 0.40, True, 5, 1, None)
    parity = ParityResult("sex", "low", 0.05, 0.8, (rate,), False)
    variant = CounterfactualVariant(
        "asian", "hispanic_or_latino", "male", RiskBand.MODERATE, 2, 0.12, False, False
    )
    return FairnessAudit(
        status=AuditStatus.INSUFFICIENT_DATA,
        rule="min_group_count",
        groups_involved=("sex=female",),
        facility="other",
        window_size=40,
        escalation_definition="band == HIGH or esi_level <= 2",
        parity=(parity,),
        counterfactual=Counterfactual(True, False, (variant,)),
    )


def assessment(request_id: str = "req-1", *, created_at: datetime | None = None) -> Assessment:
    return Assessment(
        request_id=request_id,
        audit_id=str(uuid.uuid4()),
        created_at=created_at or datetime.now(UTC),
        mace_probability=0.123,
        recommendation=Recommendation(
            RiskBand.MODERATE, 2, ("ECG within 10 minutes",), True, ("possible ACS",)
        ),
        heart=HeartBasis(5, 2, 1, 1, 1, 0, RiskBand.MODERATE),
        contributions=(
            Contribution("heart_rate", "112 /min", 0.4, "present", ("Observation/hr",)),
        ),
        warnings=("stale at $.entry[3].resource",),
        model=ModelRef("mace-30d", "v1", "ab" * 32, "CPUExecutionProvider"),
        fairness_audit=fairness_audit(),
        encounter_selection="requested",
        extra={"k": "v"},
    )


def record(
    value: Assessment,
    *,
    bundle_sha256: str = "0" * 64,
    encounter_pseudonym: str | None = "enc-pseudonym",
    labels: GroupLabels = LABELS,
    requested_encounter: str = "",
    facility_pseudonym: str | None = "facility-pseudonym",
) -> AuditRecord:
    return AuditRecord(
        assessment=value,
        assessment_json=dumps(value),
        bundle_sha256=bundle_sha256,
        patient_pseudonym="patient-pseudonym",
        encounter_pseudonym=encounter_pseudonym,
        features_json="{}",
        recommendation_json=dumps(value.recommendation),
        fairness_json=dumps(value.fairness_audit),
        labels=labels,
        heart_band=value.heart.band.value,
        requested_encounter=requested_encounter,
        facility_pseudonym=facility_pseudonym,
    )
