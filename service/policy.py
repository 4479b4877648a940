"""The recommendation policy: model probability + clinical features -> band, ESI, actions.

Explicit on purpose; docs/engine.md restates it as a table. The rules, in the order applied:

1. Band from the model's manifest thresholds: p < low_upper -> LOW; p >= high_lower -> HIGH;
   otherwise MODERATE.
2. Possible ACS = any chest pain or cardiac-equivalent symptom (shoulder, arm or jaw pain,
   dyspnea, diaphoresis, nausea, epigastric pain), or evidence of injury or ischaemia.
   Evidence of injury or ischaemia = the latest troponin above the assay's upper reference
   limit (URL), or ST deviation on the latest ECG, or any troponin above URL or ST-deviation
   ECG within their staleness windows (a falling troponin or a resolved ST change still count).
   "Above URL" is ``Troponin.exceeds_url``: never an upper bound ("<50"); a censored result
   neither above nor within the limit is indeterminate and blocks early discharge.
3. Base ESI by band: HIGH -> 2; MODERATE -> 2 with possible ACS, else 3; LOW -> 3 with possible
   ACS (ECG and troponin are two resources: ESI 3), else 4. The policy never suggests ESI 5:
   it cannot judge that no resource is needed.
4. Evidence of injury or ischaemia -> ESI <= 2, cardiology review and continuous cardiac
   monitoring, whatever the score. ST elevation on an ECG within the window (latest or
   earlier, e.g. pre-hospital) adds the STEMI pathway (reperfusion) and immediate physician
   evaluation: serial troponin is not how a STEMI is worked up.
5. HEART high (7-10) -> ESI <= 2, cardiology review and serial troponin, whatever the model's
   band: the model never argues a HEART-high presentation down. HEART moderate (4-6) with
   possible ACS -> ESI <= 2 and serial troponin (clinical.md: chest pain suspicious for ACS in
   a stable patient is the textbook ESI 2); a LOW model band does not argue it down either.
6. Danger-zone vitals (HR > 100 /min, RR > 20 /min, SpO2 < 92 %) -> ESI <= 2 regardless of the
   score, with immediate physician evaluation and continuous monitoring.
7. Hypotension (SBP < 90 mm[Hg]): with possible ACS -> ESI 1 (resuscitation area, continuous
   monitoring); without -> ESI <= 2.
8. Possible ACS always gets "ECG within 10 minutes" (first, after the resuscitation area when
   hypotension makes it ESI 1) and never ESI 4 or 5. So does a triage encounter whose reason
   the extraction could not recognise (``ClinicalFeatures.complaint_not_recognised``, also
   warned: free text, a local code) when nothing else shows a symptom: this service is
   called for chest pain and its equivalents, and an unread complaint must not read as none.
8b. A high-sensitivity troponin above the patient's sex-specific 99th percentile, where the
   lab's limit states no sex (``Troponin.above_sex_specific_url``): serial troponin, a
   rationale line, and no early discharge; not scored as raised (the lab's limit is the
   assay's own).
9. Actions per band: HIGH -> serial troponin, cardiology review, continuous monitoring;
   MODERATE -> serial troponin (0h/3h); LOW with possible ACS -> HEART Pathway early-discharge
   consideration only when nothing argues against it (``heart_pathway_blockers``), otherwise
   serial troponin (0h/3h) with the reasons in the rationale; LOW without possible ACS ->
   routine reassessment.
10. Heart rate, systolic BP, respiratory rate or SpO2 not current -> "Measure vital signs"; the
   rationale names them. Current = PRESENT and measured no earlier than
   ``THIS_VISIT_LEAD`` before the triage encounter's start (pre-hospital readings count;
   yesterday's clinic visit, though within the staleness window the model uses, does not).
11. Escalated = band HIGH or ESI <= ``escalation_max_esi`` (the fairness audit's definition).

Only PRESENT measurements trigger a rule: a missing, stale or implausible vital cannot fire a
danger-zone rule, but it can never clear one either: it blocks early discharge and asks for
the vital signs to be measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fhir_adapters.features import ClinicalFeatures, EcgCategory, Measurement, Status
from service.assessment import HeartBasis, Recommendation, RiskBand

# --- thresholds (adult danger-zone vitals, ESI handbook; hypotension) ----------------------
DANGER_HEART_RATE = 100.0  # /min, danger when above
DANGER_RESPIRATORY_RATE = 20.0  # /min, danger when above
DANGER_SPO2 = 92.0  # %, danger when below
HYPOTENSION_SBP = 90.0  # mm[Hg], hypotension when below
HEART_PATHWAY_MAX_TOTAL = 3
ADULT_AGE = 18.0  # the model, HEART and the danger-zone vitals are for adults
# This visit's measurements (vitals, the troponin and ECG early discharge rests on): taken at
# the visit, or en route (EMS) up to an hour before its start.
THIS_VISIT_LEAD = timedelta(hours=1)

# --- actions (the exact strings sent to the EHR) -------------------------------------------
ECG_WITHIN_10_MIN = "ECG within 10 minutes"
RESUSCITATION = "Resuscitation area: immediate life-saving assessment"
IMMEDIATE_PHYSICIAN = "Immediate physician evaluation"
CONTINUOUS_MONITORING = "Continuous cardiac monitoring"
STEMI_PATHWAY = "ST elevation: activate the STEMI pathway (reperfusion) now"
SERIAL_TROPONIN = "Serial troponin (0h/3h)"
CARDIOLOGY_REVIEW = "Cardiology review"
HEART_PATHWAY_DISCHARGE = (
    "Repeat troponin at 3h; consider early discharge (HEART Pathway) if negative"
)
ROUTINE_REASSESSMENT = "Routine reassessment per ED protocol"
MEASURE_VITALS = "Measure vital signs (HR, BP, RR, SpO2)"


@dataclass(frozen=True, slots=True)
class BandThresholds:
    """From the model manifest: p < low_upper is LOW; p >= high_lower is HIGH."""

    low_upper: float
    high_lower: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_upper <= self.high_lower <= 1.0:
            raise ValueError("thresholds must satisfy 0 <= low_upper <= high_lower <= 1")

    def band(self, probability: float) -> RiskBand:
        if probability < self.low_upper:
            return RiskBand.LOW
        if probability >= self.high_lower:
            return RiskBand.HIGH
        return RiskBand.MODERATE


def _value(m: Measurement) -> float | None:
    return m.value if m.status is Status.PRESENT else None


def acs_symptom(f: ClinicalFeatures) -> bool:
    return f.symptoms.any()


def myocardial_injury_or_ischaemia(f: ClinicalFeatures) -> bool:
    return bool(injury_evidence(f))


def injury_evidence(f: ClinicalFeatures) -> list[str]:
    """Which evidence of injury or ischaemia there is, in words (fixed texts, no data): the
    clinician must be able to find it, and an earlier result is not on the screen's basis."""
    said = []
    if f.troponin.exceeds_url():
        said.append("latest troponin above URL")
    elif f.troponin_above_url_in_window.present:
        said.append("an earlier troponin within the window above URL")
    if f.ecg.category is EcgCategory.ST_DEVIATION:
        said.append("ST deviation on the latest ECG")
    elif f.st_deviation_in_window.present:
        said.append("ST deviation on an earlier ECG within the window")
    return said


def possible_acs(f: ClinicalFeatures) -> bool:
    return acs_symptom(f) or myocardial_injury_or_ischaemia(f)


def danger_zone_vitals(f: ClinicalFeatures) -> tuple[str, ...]:
    """The danger-zone rules that fired, as fixed rule names."""
    fired: list[str] = []
    hr = _value(f.heart_rate)
    if hr is not None and hr > DANGER_HEART_RATE:
        fired.append("heart rate above 100 /min")
    rr = _value(f.respiratory_rate)
    if rr is not None and rr > DANGER_RESPIRATORY_RATE:
        fired.append("respiratory rate above 20 /min")
    spo2 = _value(f.spo2)
    if spo2 is not None and spo2 < DANGER_SPO2:
        fired.append("SpO2 below 92 %")
    return tuple(fired)


def hypotension(f: ClinicalFeatures) -> bool:
    sbp = _value(f.systolic_bp)
    return sbp is not None and sbp < HYPOTENSION_SBP


def vitals_not_current(f: ClinicalFeatures) -> tuple[str, ...]:
    """The triage vitals the danger-zone rules need that are not current: missing, stale or
    implausible, or measured before this visit (more than ``THIS_VISIT_LEAD`` before the
    encounter's start). An old value may still fire a danger-zone rule (that errs towards
    escalation) but never stands in for the vitals of this visit."""
    vitals = {
        "heart rate": f.heart_rate,
        "systolic BP": f.systolic_bp,
        "respiratory rate": f.respiratory_rate,
        "SpO2": f.spo2,
    }
    gaps: list[str] = []
    for name, m in vitals.items():
        if m.status is not Status.PRESENT:
            gaps.append(f"{name} {m.status.value}")
        elif not _this_visit(f, m.effective):
            gaps.append(f"{name} from before this visit")
    return tuple(gaps)


def _this_visit(f: ClinicalFeatures, effective: datetime | None) -> bool:
    return effective is not None and effective >= f.anchor_time - THIS_VISIT_LEAD


def minor(f: ClinicalFeatures) -> bool:
    age = _value(f.age_years)
    return age is not None and age < ADULT_AGE


def heart_pathway_blockers(
    f: ClinicalFeatures, heart: HeartBasis, esi: int, vitals_gap: tuple[str, ...]
) -> tuple[str, ...]:
    """Why early discharge may not be suggested; empty when it may. HEART Pathway: HEART <= 3
    with negative troponins (by the sex-specific limit too, where the lab's states no sex),
    and only for a patient nothing else has escalated: every HEART
    item known (an unknown item scored 0 could hide points), vitals measured at this visit,
    an adult."""
    blockers: list[str] = []
    if heart.total > HEART_PATHWAY_MAX_TOTAL:
        blockers.append(f"HEART {heart.total} above {HEART_PATHWAY_MAX_TOTAL}")
    if esi < 3:
        blockers.append(f"escalated to ESI {esi}")
    if myocardial_injury_or_ischaemia(f):
        blockers.append("injury or ischaemia within the windows")
    if f.troponin.status is not Status.PRESENT:
        blockers.append(f"troponin {f.troponin.status.value}")
    elif not f.troponin.within_url() and not f.troponin.exceeds_url():
        # A censored result that neither rules in nor out (e.g. "< 50" against a limit of
        # 34): no escalation on it, and no discharge either.
        blockers.append("troponin indeterminate (censored result)")
    elif not _this_visit(f, f.troponin.effective):
        # The HEART Pathway's 0 h troponin is drawn at this presentation: one from before
        # it may predate the pain, and "repeat at 3 h" would then be a day apart.
        blockers.append("troponin from before this visit")
    if f.troponin.newer_unread:
        blockers.append("a newer troponin could not be read")
    if f.troponin.above_sex_specific_url.present:
        # The lab's limit states no sex; the sex-specific 99th percentile is lower and was
        # exceeded. Not scored as raised (the lab's limit is the assay's), not ruled out.
        blockers.append("troponin above the sex-specific 99th percentile (lab limit states no sex)")
    if f.ecg.category is EcgCategory.UNKNOWN:
        blockers.append(f"ECG {f.ecg.status.value}")
    elif not _this_visit(f, f.ecg.effective):
        blockers.append("ECG from before this visit")
    if f.age_years.status is not Status.PRESENT:
        blockers.append(f"age {f.age_years.status.value}")
    elif minor(f):
        blockers.append("patient under 18")
    blockers.extend(vitals_gap)
    return tuple(blockers)


class _Plan:
    """Accumulates ESI (only ever lowered), ordered unique actions and the rationale."""

    def __init__(self, esi: int) -> None:
        self.esi = esi
        self.actions: list[str] = []
        self.rationale: list[str] = []

    def at_most(self, esi: int) -> None:
        self.esi = min(self.esi, esi)

    def add(self, *actions: str) -> None:
        for action in actions:
            if action not in self.actions:
                self.actions.append(action)


def recommend(
    features: ClinicalFeatures,
    probability: float,
    thresholds: BandThresholds,
    heart: HeartBasis,
    escalation_max_esi: int,
) -> Recommendation:
    band = thresholds.band(probability)
    acs = possible_acs(features)
    danger = danger_zone_vitals(features)
    low_bp = hypotension(features)
    vitals_gap = vitals_not_current(features)

    base = {RiskBand.HIGH: 2, RiskBand.MODERATE: 2 if acs else 3, RiskBand.LOW: 3 if acs else 4}
    plan = _Plan(base[band])
    plan.rationale.append(f"model risk band {band.value}: base ESI {plan.esi}")

    if low_bp and acs:
        plan.at_most(1)
        plan.add(RESUSCITATION)
        plan.rationale.append("hypotension (SBP below 90 mm[Hg]) with possible ACS: ESI 1")
    if acs:
        plan.add(ECG_WITHIN_10_MIN)
        plan.at_most(3)
        plan.rationale.append("possible ACS: ECG within 10 minutes, never ESI 4 or 5")
        if low_bp:
            plan.add(CONTINUOUS_MONITORING)
    elif features.complaint_not_recognised:
        plan.add(ECG_WITHIN_10_MIN)
        plan.at_most(3)
        plan.rationale.append(
            "presenting complaint not recognised (free text or an unknown code): treated as "
            "possible ACS until a clinician judges it; ECG within 10 minutes"
        )
    if features.st_elevation_in_window.present:
        plan.at_most(2)
        plan.add(STEMI_PATHWAY, IMMEDIATE_PHYSICIAN)
        plan.rationale.append("ST elevation on an ECG within the window: STEMI pathway")
    if myocardial_injury_or_ischaemia(features):
        plan.at_most(2)
        plan.add(CARDIOLOGY_REVIEW, CONTINUOUS_MONITORING)
        plan.rationale.append("; ".join(injury_evidence(features)) + ": ESI 2 or lower")
    if features.troponin.newer_unread:
        plan.rationale.append(
            "a troponin result could not be read (its unit or value): read it in the lab system"
        )
    if features.troponin.above_sex_specific_url.present:
        plan.add(SERIAL_TROPONIN)
        plan.rationale.append(
            "troponin above the sex-specific 99th percentile, within the lab's limit that "
            "states no sex: serial troponin"
        )
    if heart.band is RiskBand.HIGH:
        plan.at_most(2)
        plan.add(CARDIOLOGY_REVIEW, SERIAL_TROPONIN)
        plan.rationale.append(f"HEART {heart.total} (high): ESI 2 or lower")
    elif heart.band is RiskBand.MODERATE and acs:
        # Chest pain suspicious for ACS in a stable patient is the textbook ESI 2; HEART 4-6
        # (12-17% MACE) is suspicious enough that a LOW model band may not argue it down.
        plan.at_most(2)
        plan.add(SERIAL_TROPONIN)
        plan.rationale.append(f"HEART {heart.total} (moderate) with possible ACS: ESI 2 or lower")
    if danger:
        plan.at_most(2)
        plan.add(IMMEDIATE_PHYSICIAN, CONTINUOUS_MONITORING)
        plan.rationale.append("danger-zone vitals (" + ", ".join(danger) + "): ESI 2 or lower")
    if low_bp and not acs:
        plan.at_most(2)
        plan.add(IMMEDIATE_PHYSICIAN, CONTINUOUS_MONITORING)
        plan.rationale.append("hypotension (SBP below 90 mm[Hg]): ESI 2 or lower")

    if band is RiskBand.HIGH:
        plan.add(SERIAL_TROPONIN, CARDIOLOGY_REVIEW, CONTINUOUS_MONITORING)
    elif band is RiskBand.MODERATE:
        plan.add(SERIAL_TROPONIN)
    elif acs:
        blockers = heart_pathway_blockers(features, heart, plan.esi, vitals_gap)
        if not blockers:
            plan.add(HEART_PATHWAY_DISCHARGE)
            plan.rationale.append("HEART <= 3 with troponin not above URL: HEART Pathway")
        else:
            plan.add(SERIAL_TROPONIN)
            plan.rationale.append("no early discharge: " + "; ".join(blockers))
    if vitals_gap:
        plan.add(MEASURE_VITALS)
        plan.rationale.append("vital signs not current: " + ", ".join(vitals_gap))
    if minor(features):
        plan.rationale.append(
            "patient under 18: outside the intended adult population; use paediatric triage"
        )
    if not plan.actions:
        plan.add(ROUTINE_REASSESSMENT)

    escalated = band is RiskBand.HIGH or plan.esi <= escalation_max_esi
    return Recommendation(
        band=band,
        esi_level=plan.esi,
        actions=tuple(plan.actions),
        escalated=escalated,
        rationale=tuple(plan.rationale),
    )


def escalation_definition(escalation_max_esi: int) -> str:
    return f"band == HIGH or esi_level <= {escalation_max_esi}"
