"""HEART score (Six 2008; Backus 2010, 2013) from ``ClinicalFeatures``: the transparent
baseline every model is compared with and part of the basis shown to clinicians.

Scoring rules, where the published score leaves room for judgement:

History (0-2), scored from coded symptoms, because free-text judgement is not available:
  * 2 - chest pain with a highly suspicious feature: radiation to shoulder, arm or jaw,
        diaphoresis or nausea;
  * 2 - no chest pain but two or more cardiac-equivalent symptoms (shoulder, arm or jaw pain,
        dyspnea, diaphoresis, nausea, epigastric pain): the presentation of MI without chest
        pain, which is common (42% of women, 31% of men) and must not score as benign;
  * 2 - chest pain with two or more cardiac-equivalent symptoms (it would be 2 without
        the chest pain: adding a symptom never lowers History);
  * 1 - chest pain alone, or with only dyspnea or only epigastric pain;
  * 1 - a single cardiac-equivalent symptom without chest pain;
  * 0 - none of these.
ECG (0-2): normal 0, non-specific (LBBB, LVH, paced, repolarisation) 1, ST deviation 2;
  no ECG before the anchor scores 0 and adds the note ``ecg_unknown``.
Age (0-2): < 45 0, 45-64 1, >= 65 2; missing age scores 0 with ``age_missing``.
Risk factors (0-2): count of hypertension, hyperlipidaemia, diabetes, obesity, smoking and
  family history; 0 -> 0, 1-2 -> 1, >= 3 -> 2; known atherosclerosis -> 2.
Troponin (0-2): not above the assay URL -> 0, above it -> 1, above 3x it -> 2, as
  ``Troponin.exceeds_url`` judges (a ">" bound at the cut-off is above it; a "<" bound never
  is, so a censored or indeterminate result scores 0); no usable troponin scores 0 with
  the note of its status, ``troponin_missing``, ``troponin_stale`` (older than the window: a
  raised one may be hiding) or ``troponin_implausible`` (HEART then under-states risk: the note
  says so, and says why).
Bands: 0-3 low, 4-6 moderate, 7-10 high.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fhir_adapters.features import ClinicalFeatures, EcgCategory, Status


class HeartBand(StrEnum):
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"


class HeartNote(StrEnum):
    """Why a component scored 0 for lack of data rather than on evidence."""

    ECG_UNKNOWN = "ecg_unknown"
    AGE_MISSING = "age_missing"
    TROPONIN_MISSING = "troponin_missing"
    TROPONIN_STALE = "troponin_stale"
    TROPONIN_IMPLAUSIBLE = "troponin_implausible"


_TROPONIN_NOTES = {
    Status.STALE: HeartNote.TROPONIN_STALE,
    Status.IMPLAUSIBLE: HeartNote.TROPONIN_IMPLAUSIBLE,
}


@dataclass(frozen=True, slots=True)
class HeartScore:
    history: int
    ecg: int
    age: int
    risk_factors: int
    troponin: int
    notes: tuple[HeartNote, ...] = ()

    @property
    def total(self) -> int:
        return self.history + self.ecg + self.age + self.risk_factors + self.troponin

    @property
    def band(self) -> HeartBand:
        return band_for_total(self.total)


LOW_MAX = 3
MODERATE_MAX = 6


def band_for_total(total: int) -> HeartBand:
    if total <= LOW_MAX:
        return HeartBand.LOW
    if total <= MODERATE_MAX:
        return HeartBand.MODERATE
    return HeartBand.HIGH


def _history(f: ClinicalFeatures) -> int:
    s = f.symptoms
    highly_suspicious = (
        s.shoulder_pain.present
        or s.arm_pain.present
        or s.jaw_pain.present
        or s.diaphoresis.present
        or s.nausea.present
    )
    equivalents = sum(
        (
            s.shoulder_pain.present,
            s.arm_pain.present,
            s.jaw_pain.present,
            s.dyspnea.present,
            s.diaphoresis.present,
            s.nausea.present,
            s.epigastric_pain.present,
        )
    )
    if s.chest_pain.present:
        # Two equivalents score 2 without chest pain: with it, never less (adding a symptom
        # must never lower the score).
        return 2 if highly_suspicious or equivalents >= 2 else 1
    if equivalents >= 2:
        return 2
    return 1 if equivalents == 1 else 0


_ECG_POINTS = {
    EcgCategory.NORMAL: 0,
    EcgCategory.NONSPECIFIC: 1,
    EcgCategory.ST_DEVIATION: 2,
    EcgCategory.UNKNOWN: 0,
}


def _risk_factors(f: ClinicalFeatures) -> int:
    r = f.risk_factors
    if r.known_atherosclerosis.present:
        return 2
    count = sum(
        (
            r.hypertension.present,
            r.hyperlipidaemia.present,
            r.diabetes.present,
            r.obesity.present,
            r.smoking.present,
            r.family_history.present,
        )
    )
    if count >= 3:
        return 2
    return 1 if count >= 1 else 0


def heart_score(f: ClinicalFeatures) -> HeartScore:
    notes: list[HeartNote] = []
    if f.ecg.category is EcgCategory.UNKNOWN:
        notes.append(HeartNote.ECG_UNKNOWN)
    ecg = _ECG_POINTS[f.ecg.category]

    age_value = f.age_years.value
    if f.age_years.status is not Status.PRESENT or age_value is None:
        notes.append(HeartNote.AGE_MISSING)
        age = 0
    else:
        age = 0 if age_value < 45 else (1 if age_value < 65 else 2)

    t = f.troponin
    if t.status is not Status.PRESENT or t.ratio_to_url is None:
        # Was "missing" whatever the reason: a raised result from 30 h ago read like none.
        notes.append(_TROPONIN_NOTES.get(t.status, HeartNote.TROPONIN_MISSING))
        troponin = 0
    else:  # a ">" bound at exactly 1x or 3x the limit is above it
        troponin = 0 if not t.exceeds_url(1.0) else (1 if not t.exceeds_url(3.0) else 2)

    return HeartScore(
        history=_history(f),
        ecg=ecg,
        age=age,
        risk_factors=_risk_factors(f),
        troponin=troponin,
        notes=tuple(notes),
    )
