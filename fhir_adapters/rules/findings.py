"""Coded findings: presenting symptoms and HEART risk factors.

Symptoms come from the triage Encounter's reasonCode, and from Conditions and
Observations that belong to the triage encounter (their ``encounter`` references it) or,
when they name no encounter, were recorded within the vitals staleness window before the
anchor. One that names another Encounter of the bundle belongs to that visit and does not
count; an ``encounter`` reference that is malformed or resolves to no Encounter in the
bundle warns ``unresolved_reference`` and is judged by the time window, as if none were
named (dropping it silently could lose a presenting symptom). Each cardiac-equivalent
symptom is its own flag.

A symptom Condition counts whatever its clinical status (pain that settled before triage
is still how the patient presented); an Observation that denies its finding (``denies_finding``)
does not count.

Risk factors come from Conditions that are not refuted / entered-in-error, whose clinical
status is active / recurrence / relapse (or not given) and that were recorded strictly
before the anchor (undated Conditions count: a problem list sent at triage exists before
it). Known atherosclerosis counts whatever the clinical status (a resolved MI is still a
prior MI), plus completed PCI / CABG Procedures, dated or not. A "BMI 30+" finding gives
way to a BMI measured within a year; a smoking Condition to a later smoking-status answer
(``_smoking``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fhir_adapters import codes
from fhir_adapters.codes import CodeSet
from fhir_adapters.facts import (
    ConditionFact,
    FamilyHistoryFact,
    Header,
    ObservationFact,
    ProcedureFact,
    Quantity,
    denies_finding,
)
from fhir_adapters.features import ABSENT, Finding, RiskFactors, Symptoms
from fhir_adapters.rules.context import Context, sources
from fhir_adapters.rules.demographics import MAX_PLAUSIBLE_AGE
from fhir_adapters.rules.readings import Reading
from fhir_adapters.units import Dimension, UnitProblem, convert_value
from fhir_adapters.warnings import WarningCode

ACTIVE = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
QUIT_WINDOW = timedelta(days=codes.QUIT_WINDOW_DAYS)
_SYMPTOM_OBSERVATION = (codes.LOINC, codes.SYMPTOM_OBSERVATION)
_SMOKING_STATUS = (codes.LOINC, codes.SMOKING_STATUS)


class _Evidence:
    """Source references per flag, in the order found."""

    def __init__(self) -> None:
        self.refs: dict[str, list[str]] = {}

    def add(self, flag: str, ref: str) -> None:
        self.refs.setdefault(flag, []).append(ref)

    def finding(self, flag: str) -> Finding:
        refs = self.refs.get(flag)
        return Finding(True, sources(refs)) if refs else ABSENT


def _add_flags(evidence: _Evidence, flags: set[str], ref: str) -> None:
    for flag in sorted(flags):
        evidence.add(flag, ref)


def usable_conditions(ctx: Context, conditions: tuple[ConditionFact, ...]) -> list[ConditionFact]:
    """Conditions about this patient, not refuted or entered in error, not after the anchor."""
    usable = []
    for condition in conditions:
        header = condition.header
        if condition.verification_status in EXCLUDED_VERIFICATION:
            if condition.verification_status == "entered-in-error":
                ctx.warnings.add(WarningCode.ENTERED_IN_ERROR, header.path)
            continue
        if not ctx.about_patient(header.subject, header.path + ".subject"):
            continue
        if (
            header.time is not None
            and header.time > ctx.anchor.time
            and not ctx.during_triage_encounter(header.time, condition.encounter)
        ):
            ctx.warnings.add(WarningCode.FUTURE_DATED, header.path)
            continue
        usable.append(condition)
    return usable


def derive_symptoms(
    ctx: Context,
    conditions: list[ConditionFact],
    observations: list[ObservationFact],
    window: timedelta,
) -> tuple[Symptoms, bool]:
    """The presenting symptoms, and whether the triage encounter gave a reason in which none
    was recognised (and none is recorded elsewhere)."""
    evidence = _Evidence()
    encounter = ctx.anchor.encounter
    if encounter is not None:
        _add_flags(evidence, codes.symptom_flags(encounter.reason_codes), encounter.ref)
    # Codes first, encounter second: only a resource naming a symptom is asked whether it
    # presents now (and warned about when its encounter reference cannot be resolved).
    # Any clinical status: chest pain that has settled by triage ("resolved") is still how
    # this patient presented, and the classic story of unstable angina.
    for condition in conditions:
        flags = codes.symptom_flags(condition.codes)
        if flags and _presenting(ctx, condition.encounter, condition.header, window):
            _add_flags(evidence, flags, condition.header.ref)
    for obs in observations:
        if denies_finding(obs):
            continue
        found = obs.value_codes if _SYMPTOM_OBSERVATION in obs.codes else obs.codes
        flags = codes.symptom_flags(found)
        if flags and _presenting(ctx, obs.encounter, obs.header, window):
            _add_flags(evidence, flags, obs.header.ref)
    symptoms = Symptoms(**{flag: evidence.finding(flag) for flag in codes.SYMPTOMS})
    if encounter is None or not encounter.reason_count or symptoms.any():
        return symptoms, False
    # A reason the rules cannot read ("chest tightness" as text, a local code) must not look
    # like a presentation without symptoms.
    ctx.warnings.add(
        WarningCode.PRESENTING_COMPLAINT_NOT_RECOGNISED,
        f"$.entry[{encounter.entry}].resource.reasonCode",
    )
    return symptoms, True


def _presenting(ctx: Context, encounter: str | None, header: Header, window: timedelta) -> bool:
    if encounter is not None:
        if ctx.in_triage_encounter(encounter):
            return True
        if ctx.is_bundle_encounter(encounter):
            return False  # recorded at another visit in the bundle
        # Malformed, or names no Encounter here: say so, and judge it by time as if it named
        # no encounter (the reference cannot show it belongs to another visit).
        ctx.warnings.add(WarningCode.UNRESOLVED_REFERENCE, header.path + ".encounter")
    time = header.time
    return time is not None and ctx.anchor.time - time <= window


_HISTORY: dict[str, CodeSet] = {
    "hypertension": codes.HYPERTENSION,
    "hyperlipidaemia": codes.HYPERLIPIDAEMIA,
    "diabetes": codes.DIABETES,
    "obesity": codes.OBESITY,
    "bmi_finding": codes.OBESITY_BMI_FINDING,  # obesity unless a recent BMI says otherwise
}
OBESITY_BMI = 30.0
# One lookup per Condition instead of one CodeSet scan per flag (the same answers).
_CONDITION_FLAGS = codes.CodeIndex(
    {
        "known_atherosclerosis": codes.ATHEROSCLEROSIS,
        "smoking": codes.SMOKING_CONDITION,
        **_HISTORY,
    }
)


def derive_risk_factors(
    ctx: Context,
    conditions: list[ConditionFact],
    observations: list[ObservationFact],
    procedures: tuple[ProcedureFact, ...],
    family: tuple[FamilyHistoryFact, ...],
    recent_bmi: Reading | None,
) -> RiskFactors:
    evidence = _Evidence()
    anchor = ctx.anchor.time
    smoking_conditions: list[ConditionFact] = []
    for condition in conditions:
        time = condition.header.time
        if time is not None and time >= anchor:
            continue  # diagnosed at this encounter: not history
        matched = _CONDITION_FLAGS.flags(condition.codes)
        if not matched:
            continue
        ref = condition.header.ref
        if "known_atherosclerosis" in matched:
            evidence.add("known_atherosclerosis", ref)
        active = condition.clinical_status is None or condition.clinical_status in ACTIVE
        if "smoking" in matched and (
            active
            or (condition.abatement is not None and anchor - condition.abatement <= QUIT_WINDOW)
        ):
            smoking_conditions.append(condition)
        if not active:
            continue
        for flag in _HISTORY:
            if flag in matched:
                evidence.add(flag, ref)
    _obesity_from_bmi(evidence, recent_bmi)
    _smoking(ctx, smoking_conditions, observations, evidence)
    for procedure in procedures:
        # Undated (performedString / performedAge, or no time at all): a completed PCI or
        # CABG in the record is history, as an undated prior-MI Condition is.
        if procedure.header.status == "completed" and ctx.usable(
            procedure.header, subject_path=".subject", strictly_before=True, undated=True
        ):
            evidence.add("known_atherosclerosis", procedure.header.ref)
    for history in family:
        if _premature_family_cad(ctx, history):
            evidence.add("family_history", history.header.ref)
    return RiskFactors(
        **{flag: evidence.finding(flag) for flag in RiskFactors.__dataclass_fields__}
    )


def _obesity_from_bmi(evidence: _Evidence, recent_bmi: Reading | None) -> None:
    """A BMI measured within the obesity window decides: above 30 is obesity, and 30 or
    below supersedes a "BMI 30+" finding (a record of an older measurement, often never
    resolved). Without one, such a finding counts. A coded obesity diagnosis always counts."""
    findings = evidence.refs.pop("bmi_finding", [])
    if recent_bmi is None or recent_bmi.value is None:
        for ref in findings:
            evidence.add("obesity", ref)
    elif recent_bmi.value > OBESITY_BMI:
        evidence.add("obesity", recent_bmi.ref)


def _smoking(
    ctx: Context,
    conditions: list[ConditionFact],
    observations: list[ObservationFact],
    evidence: _Evidence,
) -> None:
    """Current smoking or quit within 3 months (HEART). LOINC 72166-2: the latest informative
    answer decides (an answer that says nothing, recorded later, does not undo a known one);
    a former smoker counts when a current-smoker answer lies within the quit window before
    the anchor. A smoking Condition (active, or abated within the window) counts unless a
    later informative answer says the patient is not a current smoker, and it was recorded
    before the quit window: an old never-resolved "smokes daily" does not outlive a later
    "former smoker"."""
    anchor = ctx.anchor.time
    statuses = [o for o in observations if _SMOKING_STATUS in o.codes and _informative(o)]
    latest = max(statuses, key=lambda o: (o.header.time, o.header.entry)) if statuses else None
    answers = set() if latest is None else {c for s, c in latest.value_codes if s == codes.SNOMED}
    current = bool(answers & codes.SMOKING_CURRENT)
    for condition in conditions:
        if latest is None or current or not _superseded(condition, latest, anchor):
            evidence.add("smoking", condition.header.ref)
    if latest is None:
        return
    if current:
        evidence.add("smoking", latest.header.ref)
    elif answers & codes.SMOKING_FORMER:
        for obs in statuses:
            time = obs.header.time
            if (
                time is not None
                and anchor - time <= QUIT_WINDOW
                and codes.has_code(obs.value_codes, codes.SNOMED, codes.SMOKING_CURRENT)
            ):
                evidence.add("smoking", obs.header.ref)
                evidence.add("smoking", latest.header.ref)


def _superseded(condition: ConditionFact, answer: ObservationFact, anchor: datetime) -> bool:
    """True when ``answer`` (informative, not current) outdates a smoking Condition: the
    Condition is older than the answer (or undated) and says nothing about the quit window
    (neither recorded nor abated within it)."""
    time = condition.header.time
    abated = condition.abatement
    if (time is not None and anchor - time <= QUIT_WINDOW) or (
        abated is not None and anchor - abated <= QUIT_WINDOW
    ):
        return False
    answered = answer.header.time
    return time is None or (answered is not None and answered > time)


def _informative(status: ObservationFact) -> bool:
    """A smoking-status answer that says something: a SNOMED code other than "unknown".
    A dataAbsentReason, a null flavour (UNK, ASKU ...) or free text alone cannot be read
    and does not undo a coded answer."""
    if status.absent:
        return False
    return any(
        system == codes.SNOMED and code not in codes.SMOKING_UNKNOWN
        for system, code in status.value_codes
    )


def _premature_family_cad(ctx: Context, history: FamilyHistoryFact) -> bool:
    header = history.header
    if header.status == "entered-in-error":
        ctx.warnings.add(WarningCode.ENTERED_IN_ERROR, header.path)
        return False
    if not ctx.about_patient(header.subject, header.path + ".patient"):
        return False
    if header.time is not None and header.time > ctx.anchor.time:
        ctx.warnings.add(WarningCode.FUTURE_DATED, header.path)
        return False
    relatives = {c for _, c in history.relationship}
    if not relatives & codes.FIRST_DEGREE_RELATIVES:
        return False
    for condition in history.conditions:
        if not codes.PREMATURE_CAD_FAMILY.matches(condition.codes):
            continue
        path = f"{header.path}.condition[{condition.index}]"
        # onset[x] is one choice: onsetAge, else onsetRange.high (the latest age it allows).
        quantity, where = condition.onset_age, ".onsetAge"
        if quantity is None or quantity.value is None:
            quantity, where = condition.onset_range_high, ".onsetRange.high"
        onset = _onset_years(ctx, quantity, path + where)
        if onset is not None and onset < codes.PREMATURE_ONSET_YEARS:
            return True
    return False


def _onset_years(ctx: Context, quantity: Quantity | None, path: str) -> float | None:
    """The onset age in years; None (the condition is not counted) when absent, or, with a
    warning, when its unit is missing or not convertible to years or the age is implausible
    (negative, over MAX_PLAUSIBLE_AGE, not finite): "-5 a" must not count as premature."""
    if quantity is None or quantity.value is None:
        return None
    converted = convert_value(quantity.value, quantity.code, quantity.system, Dimension.AGE_YEARS)
    if converted is UnitProblem.MISSING:
        ctx.warnings.add(WarningCode.MISSING_UNIT, path)
        return None
    if converted is UnitProblem.UNKNOWN:
        ctx.warnings.add(WarningCode.UNKNOWN_UNIT, path)
        return None
    if not 0.0 <= converted <= MAX_PLAUSIBLE_AGE:  # also false for NaN
        ctx.warnings.add(WarningCode.IMPLAUSIBLE_VALUE, path)
        return None
    return converted
