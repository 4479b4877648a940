"""Transport-free values (``service/assessment.py``) -> protobuf messages (``triage.v1``).

Pure functions, no grpc. An absent value stays absent: a ``None`` fairness audit or
counterfactual leaves the message field unset, a ``None`` parity figure leaves the
``optional`` field unset; nothing is filled with a default that could read as a finding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from triage.v1 import triage_pb2

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
    OutcomeAck,
    ParityResult,
    RiskBand,
)

_BAND: dict[RiskBand, triage_pb2.RiskBand] = {
    RiskBand.LOW: triage_pb2.LOW,
    RiskBand.MODERATE: triage_pb2.MODERATE,
    RiskBand.HIGH: triage_pb2.HIGH,
}
# service.assessment.AuditStatus starts at OK = 0 (the Prometheus gauge value); the proto
# reserves 0 for "not computed", so the mapping is by name, never by number.
_AUDIT_STATUS: dict[AuditStatus, triage_pb2.AuditStatus] = {
    AuditStatus.OK: triage_pb2.OK,
    AuditStatus.INSUFFICIENT_DATA: triage_pb2.INSUFFICIENT_DATA,
    AuditStatus.WARN: triage_pb2.WARN,
    AuditStatus.ALERT: triage_pb2.ALERT,
}


def band(value: RiskBand) -> triage_pb2.RiskBand:
    return _BAND[value]


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value if value.tzinfo is not None else value.replace(tzinfo=UTC))
    return ts


def model_info(ref: ModelRef) -> triage_pb2.ModelInfo:
    return triage_pb2.ModelInfo(
        name=ref.name,
        version=ref.version,
        sha256=ref.sha256,
        execution_provider=ref.execution_provider,
    )


def heart(basis: HeartBasis) -> triage_pb2.HeartComponents:
    return triage_pb2.HeartComponents(
        history=basis.history,
        ecg=basis.ecg,
        age=basis.age,
        risk_factors=basis.risk_factors,
        troponin=basis.troponin,
        band=band(basis.band),
    )


def contribution(item: Contribution) -> triage_pb2.Contribution:
    return triage_pb2.Contribution(
        feature=item.feature,
        value=item.value,
        weight=item.weight,
        status=item.status,
        source_ids=list(item.sources),
    )


def group_rate(item: GroupRate) -> triage_pb2.GroupRate:
    msg = triage_pb2.GroupRate(
        group=item.group,
        count=item.count,
        escalated=item.escalated,
        rate=item.rate,
        ci_low=item.ci_low,
        ci_high=item.ci_high,
        sufficient=item.sufficient,
        outcomes=item.outcomes,
        mace=item.mace,
        missed=item.missed,
    )
    optional = {
        "false_negative_rate": item.false_negative_rate,
        "fnr_ci_low": item.fnr_ci_low,
        "fnr_ci_high": item.fnr_ci_high,
        "mean_predicted": item.mean_predicted,
        "observed_mace_rate": item.observed_mace_rate,
    }
    for name, value in optional.items():
        if value is not None:
            setattr(msg, name, value)
    return msg


def parity(item: ParityResult) -> triage_pb2.ParityResult:
    msg = triage_pb2.ParityResult(
        attribute=item.attribute,
        stratum=item.stratum,
        groups=[group_rate(g) for g in item.groups],
        sufficient=item.sufficient,
    )
    if item.difference is not None:
        msg.difference = item.difference
    if item.ratio is not None:
        msg.ratio = item.ratio
    return msg


def variant(item: CounterfactualVariant) -> triage_pb2.CounterfactualVariant:
    return triage_pb2.CounterfactualVariant(
        race=item.race,
        ethnicity=item.ethnicity,
        sex=item.sex,
        band=band(item.band),
        esi_level=item.esi_level,
        mace_probability=item.mace_probability,
        actions_changed=item.actions_changed,
        differs=item.differs,
    )


def counterfactual(item: Counterfactual) -> triage_pb2.Counterfactual:
    return triage_pb2.Counterfactual(
        race_ethnicity_invariant=item.race_ethnicity_invariant,
        sex_invariant=item.sex_invariant,
        variants=[variant(v) for v in item.variants],
    )


def fairness_audit(audit: FairnessAudit) -> triage_pb2.FairnessAudit:
    msg = triage_pb2.FairnessAudit(
        status=_AUDIT_STATUS[audit.status],
        rule=audit.rule,
        groups_involved=list(audit.groups_involved),
        facility=audit.facility,
        window_size=audit.window_size,
        escalation_definition=audit.escalation_definition,
        parity=[parity(p) for p in audit.parity],
    )
    if audit.counterfactual is not None:
        msg.counterfactual.CopyFrom(counterfactual(audit.counterfactual))
    return msg


def assessment(value: Assessment) -> triage_pb2.Assessment:
    rec = value.recommendation
    msg = triage_pb2.Assessment(
        request_id=value.request_id,
        audit_id=value.audit_id,
        mace_probability=value.mace_probability,
        band=band(rec.band),
        esi_level=rec.esi_level,
        recommended_actions=list(rec.actions),
        heart_score=value.heart.total,
        heart=heart(value.heart),
        top_features=[contribution(c) for c in value.contributions],
        warnings=list(value.warnings),
        model=model_info(value.model),
        rationale=list(rec.rationale),
        created_at=timestamp(value.created_at),
        encounter_selection=value.encounter_selection,
        escalated=rec.escalated,
        evidence=[
            triage_pb2.Evidence(finding=e.finding, source_ids=list(e.sources))
            for e in value.evidence
        ],
    )
    if value.fairness_audit is not None:
        msg.fairness_audit.CopyFrom(fairness_audit(value.fairness_audit))
    return msg


def outcome_ack(value: OutcomeAck) -> triage_pb2.OutcomeAck:
    msg = triage_pb2.OutcomeAck(
        audit_id=value.audit_id,
        duplicate=value.duplicate,
        audit_ids=list(value.audit_ids),
        mace=value.mace,
        reported_at=timestamp(value.reported_at),
    )
    if value.occurred_at is not None:
        msg.occurred_at.CopyFrom(timestamp(value.occurred_at))
    return msg


def fairness_report(report: Mapping[str, Any]) -> triage_pb2.FairnessReport:
    """``report`` is the engine's JSON-able dict; ``generated_at`` (ISO 8601 or epoch seconds)
    is copied into the message when the report has one."""
    msg = triage_pb2.FairnessReport(json=json.dumps(report, sort_keys=True, default=str))
    generated = report.get("generated_at")
    if isinstance(generated, str) and generated:
        msg.generated_at.CopyFrom(timestamp(datetime.fromisoformat(generated)))
    elif isinstance(generated, int | float) and not isinstance(generated, bool):
        msg.generated_at.CopyFrom(timestamp(datetime.fromtimestamp(generated, UTC)))
    return msg
