"""Render a ``triage.v1.Assessment`` as a triage screen (plain text) for ``triage assess`` and
``triage demo``. Shows only what the Assessment carries: no patient data is added."""

from __future__ import annotations

from triage.v1 import triage_pb2

_WIDTH = 78
_FOOTER = "Decision support only: synthetic reference model, not clinically validated."
_WEIGHT_NOTE = (
    "weight: the model's log-odds against the item not recorded; the ESI and actions come "
    "from the rules above, not from the weights"
)


def _band(value: triage_pb2.RiskBand) -> str:
    return triage_pb2.RiskBand.Name(value)


def _audit(audit: triage_pb2.FairnessAudit) -> list[str]:
    status = triage_pb2.AuditStatus.Name(audit.status)
    lines = [
        f"Fairness    {status}  facility {audit.facility or '-'}, "
        f"window {audit.window_size} decisions, escalation = {audit.escalation_definition}"
    ]
    if audit.rule:
        lines.append(f"            rule: {audit.rule}")
    if audit.groups_involved:
        lines.append(f"            groups: {', '.join(audit.groups_involved)}")
    if audit.HasField("counterfactual"):
        cf = audit.counterfactual
        lines.append(
            "            same story, other race/ethnicity: "
            + ("same answer" if cf.race_ethnicity_invariant else "ANSWER CHANGES")
            + "; other sex: "
            + ("same answer" if cf.sex_invariant else "answer changes (sex-specific rules)")
        )
    return lines


def render(msg: triage_pb2.Assessment, title: str = "") -> str:
    """The screen for one assessment, as lines of at most about 78 characters."""
    out: list[str] = []
    head = f" {title} " if title else " Chest-pain triage: 30-day MACE risk "
    out.append(f"=={head}".ljust(_WIDTH, "="))
    out.append(
        f"Risk band   {_band(msg.band):<9} MACE within 30 days: {msg.mace_probability:6.1%}"
        f"   ESI {msg.esi_level}" + ("   ESCALATED" if msg.escalated else "")
    )
    out.append("Actions     " + (msg.recommended_actions[0] if msg.recommended_actions else "-"))
    out.extend(f"            {action}" for action in msg.recommended_actions[1:])
    h = msg.heart
    out.append(
        f"HEART       {msg.heart_score}/10 ({_band(h.band)})   history {h.history}, ecg {h.ecg}, "
        f"age {h.age}, risk factors {h.risk_factors}, troponin {h.troponin}"
    )
    for i, line in enumerate(msg.rationale):
        out.append(("Why         " if i == 0 else "            ") + line)
    if msg.top_features:
        # Columns fit their longest entry: a clipped value ("<10 ng/L (0.25 x U") misleads.
        fw = max(len("feature"), *(len(c.feature) for c in msg.top_features))
        vw = max(len("value"), *(len(c.value) for c in msg.top_features))
        out.append(f"Basis       {'feature':<{fw}} {'value':<{vw}} weight  status    source")
        for c in msg.top_features:
            sources = ", ".join(c.source_ids) or "-"
            out.append(
                f"            {c.feature:<{fw}} {c.value:<{vw}} {c.weight:+6.2f}  "
                f"{c.status:<9} {sources}"
            )
        # A negative weight beside "chest_pain present" reads as "chest pain is reassuring"
        # unless the screen says what it is measured against.
        out.append(f"            {_WEIGHT_NOTE}")
    for i, item in enumerate(msg.evidence):
        out.append(
            ("Evidence    " if i == 0 else "            ")
            + f"{item.finding}: {', '.join(item.source_ids)}"
        )
    for i, warning in enumerate(msg.warnings):
        out.append(("Warnings    " if i == 0 else "            ") + warning)
    if msg.HasField("fairness_audit"):
        out.extend(_audit(msg.fairness_audit))
    else:
        out.append("Fairness    not computed")
    m = msg.model
    out.append(
        f"Model       {m.name} {m.version} (sha256 {m.sha256[:12]}) on {m.execution_provider}"
    )
    created = msg.created_at.ToDatetime().isoformat() + "Z" if msg.HasField("created_at") else "-"
    out.append(f"Recorded    audit id {msg.audit_id} at {created}")
    if msg.encounter_selection:
        out.append(f"Encounter   selected: {msg.encounter_selection}")
    out.append(_FOOTER)
    return "\n".join(out)
