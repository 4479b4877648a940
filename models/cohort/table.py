"""The cohort as columns (one numpy array per variable) and its 1:1 map onto
``ClinicalFeatures``: ``CohortTable.case(i).features`` is what an extractor reading the
bundle of encounter ``i`` must produce, so ``models.schema.vectorize`` stays the single
path from an encounter to a model row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from fhir_adapters.features import (
    ABSENT,
    AgeBand,
    ClinicalFeatures,
    ClinicalSex,
    Ecg,
    EcgCategory,
    EncounterSelection,
    Ethnicity,
    Finding,
    Measurement,
    Race,
    RiskFactors,
    SexSource,
    Status,
    Symptoms,
    Troponin,
    UrlSource,
)

from ..schema import SYMPTOMS
from .params import ASSAYS, FACILITIES, RACES, Assay

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

#: Encounters start within the 300 days after this instant (UTC).
COHORT_EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
_ETHNICITIES = (Ethnicity.HISPANIC_OR_LATINO, Ethnicity.NOT_HISPANIC_OR_LATINO, Ethnicity.UNKNOWN)
_ECGS = (EcgCategory.NORMAL, EcgCategory.NONSPECIFIC, EcgCategory.ST_DEVIATION, EcgCategory.UNKNOWN)
# Minutes before the encounter start at which each observation is recorded (at arrival).
VITALS_MINUTES_BEFORE = 4
ECG_MINUTES_BEFORE = 3
TROPONIN_MINUTES_BEFORE = 2
_VITALS = ("heart_rate", "systolic_bp", "diastolic_bp", "respiratory_rate", "spo2", "temperature_c")


def age_band(age: int) -> AgeBand:
    if age < 18:
        return AgeBand.UNDER_18
    if age < 45:
        return AgeBand.AGE_18_44
    if age < 65:
        return AgeBand.AGE_45_64
    if age < 90:
        return AgeBand.AGE_65_89
    return AgeBand.AGE_90_PLUS


@dataclass(frozen=True, slots=True)
class TroponinReport:
    """A troponin as the lab reports it: value in the lab's unit, optional comparator."""

    assay: Assay
    value: float  # in assay.unit
    comparator: str | None
    url: float  # upper reference limit in assay.unit

    @property
    def value_ng_l(self) -> float:
        return self.value * self.assay.ng_l_per_unit

    @property
    def url_ng_l(self) -> float:
        return self.url * self.assay.ng_l_per_unit


@dataclass(frozen=True, slots=True)
class CohortCase:
    """One encounter: its features, its audit attributes, its outcomes and its FHIR ids."""

    index: int
    id_prefix: str  # prefix of every resource id in its bundle
    facility: str
    race: Race
    ethnicity: Ethnicity
    sex: ClinicalSex
    age: int
    birth_date: date
    obesity_coded: bool
    smoker: bool
    troponin_report: TroponinReport | None
    features: ClinicalFeatures
    true_mace: bool
    recorded_mace: bool

    @property
    def patient_id(self) -> str:
        return f"{self.id_prefix}-pat"

    @property
    def encounter_id(self) -> str:
        return f"{self.id_prefix}-enc"

    def resource_id(self, suffix: str) -> str:
        # FHIR ids allow letters, digits, "-" and "." only.
        return f"{self.id_prefix}-{suffix.replace('_', '-')}"


@dataclass(frozen=True, slots=True)
class CohortTable:
    seed: int
    facility: IntArray
    race: IntArray
    ethnicity: IntArray
    female: BoolArray
    age: IntArray
    bmi: FloatArray
    bmi_present: BoolArray
    obesity_coded: BoolArray
    hypertension: BoolArray
    hyperlipidaemia: BoolArray
    diabetes: BoolArray
    smoking: BoolArray
    family_history: BoolArray
    known_atherosclerosis: BoolArray
    chest_pain: BoolArray
    shoulder_pain: BoolArray
    arm_pain: BoolArray
    jaw_pain: BoolArray
    dyspnea: BoolArray
    diaphoresis: BoolArray
    nausea: BoolArray
    epigastric_pain: BoolArray
    ecg: IntArray
    assay: IntArray
    troponin_ng_l: FloatArray  # true concentration (TnI or TnT by assay)
    troponin_present: BoolArray
    heart_rate: FloatArray
    systolic_bp: FloatArray
    diastolic_bp: FloatArray
    respiratory_rate: FloatArray
    spo2: FloatArray
    temperature_c: FloatArray
    vital_present: BoolArray  # (n, 6) in _VITALS order
    true_mace: BoolArray
    recorded_mace: BoolArray
    troponin_ordered: BoolArray
    anchor_offset_s: IntArray
    birthday_days_ago: IntArray

    def __len__(self) -> int:
        return int(self.age.shape[0])

    def subset(self, index: npt.ArrayLike) -> CohortTable:
        idx = np.asarray(index)
        values = {
            f.name: (getattr(self, f.name) if f.name == "seed" else getattr(self, f.name)[idx])
            for f in fields(self)
        }
        return CohortTable(**values)

    # ---- audit columns (strings, for fairness evaluation; never model inputs) ------------
    def race_labels(self) -> npt.NDArray[np.str_]:
        return np.array([r.value for r in RACES])[self.race]

    def ethnicity_labels(self) -> npt.NDArray[np.str_]:
        return np.array([e.value for e in _ETHNICITIES])[self.ethnicity]

    def sex_labels(self) -> npt.NDArray[np.str_]:
        return np.where(self.female, ClinicalSex.FEMALE.value, ClinicalSex.MALE.value)

    def age_band_labels(self) -> npt.NDArray[np.str_]:
        return np.array([age_band(int(a)).value for a in self.age])

    def facility_labels(self) -> npt.NDArray[np.str_]:
        return np.array([f.reference for f in FACILITIES])[self.facility]

    # ---- rows -----------------------------------------------------------------------------
    def case(self, i: int) -> CohortCase:
        return _build_case(self, int(i))

    def cases(self, indices: Sequence[int] | None = None) -> list[CohortCase]:
        rows = range(len(self)) if indices is None else indices
        return [_build_case(self, int(i)) for i in rows]

    def features(self) -> list[ClinicalFeatures]:
        return [_build_case(self, i).features for i in range(len(self))]


def troponin_report(assay: Assay, concentration_ng_l: float, female: bool) -> TroponinReport:
    """Report a concentration the way the assay's lab does: rounded to its precision, and
    as "<LoD" below its limit of detection."""
    url_ng_l = assay.url_female_ng_l if female else assay.url_male_ng_l
    url = round(url_ng_l / assay.ng_l_per_unit, assay.decimals + 1)
    if concentration_ng_l < assay.lod_ng_l:
        return TroponinReport(
            assay, round(assay.lod_ng_l / assay.ng_l_per_unit, assay.decimals), "<", url
        )
    value = round(concentration_ng_l / assay.ng_l_per_unit, assay.decimals)
    return TroponinReport(assay, value, None, url)


def _measurement(value: float, present: bool, source: str, effective: datetime) -> Measurement:
    if not present:
        return Measurement.missing()
    return Measurement(float(value), Status.PRESENT, f"Observation/{source}", effective)


def _finding(present: bool, *sources: str) -> Finding:
    return Finding(True, tuple(sources)) if present else ABSENT


def _build_case(t: CohortTable, i: int) -> CohortCase:
    prefix = f"c{t.seed}-{i}"
    anchor = COHORT_EPOCH + timedelta(seconds=int(t.anchor_offset_s[i]))
    female = bool(t.female[i])
    age = int(t.age[i])
    anchor_day = anchor.date()
    birth_date = anchor_day.replace(year=anchor_day.year - age) - timedelta(
        days=int(t.birthday_days_ago[i])
    )
    vitals_at = anchor - timedelta(minutes=VITALS_MINUTES_BEFORE)
    vp = t.vital_present[i]

    report: TroponinReport | None = None
    troponin = Troponin.missing()
    if t.troponin_present[i]:
        assay = ASSAYS[int(t.assay[i])]
        report = troponin_report(assay, float(t.troponin_ng_l[i]), female)
        troponin = Troponin(
            status=Status.PRESENT,
            value_ng_l=report.value_ng_l,
            comparator=report.comparator,
            assay=assay.kind,
            analyte=assay.analyte,
            loinc=assay.loinc,
            url_ng_l=report.url_ng_l,
            url_source=UrlSource.REFERENCE_RANGE,
            ratio_to_url=report.value_ng_l / report.url_ng_l,
            source=f"Observation/{prefix}-trop",
            effective=anchor - timedelta(minutes=TROPONIN_MINUTES_BEFORE),
        )
    ecg_category = _ECGS[int(t.ecg[i])]
    ecg = (
        Ecg(EcgCategory.UNKNOWN)
        if ecg_category is EcgCategory.UNKNOWN
        else Ecg(
            ecg_category,
            f"Observation/{prefix}-ecg",
            anchor - timedelta(minutes=ECG_MINUTES_BEFORE),
        )
    )
    bmi_present = bool(t.bmi_present[i])
    obese_by_bmi = bmi_present and float(t.bmi[i]) > 30.0
    obesity_sources = ([f"Condition/{prefix}-rf-obesity"] if t.obesity_coded[i] else []) + (
        [f"Observation/{prefix}-bmi"] if obese_by_bmi else []
    )
    features = ClinicalFeatures(
        anchor_time=anchor,
        encounter=f"Encounter/{prefix}-enc",
        encounter_selection=EncounterSelection.ACTIVE,
        age_years=Measurement(float(age), Status.PRESENT),
        sex=ClinicalSex.FEMALE if female else ClinicalSex.MALE,
        sex_source=SexSource.BIRTHSEX,
        heart_rate=_measurement(t.heart_rate[i], vp[0], f"{prefix}-hr", vitals_at),
        systolic_bp=_measurement(t.systolic_bp[i], vp[1], f"{prefix}-bp", vitals_at),
        diastolic_bp=_measurement(t.diastolic_bp[i], vp[2], f"{prefix}-bp", vitals_at),
        respiratory_rate=_measurement(t.respiratory_rate[i], vp[3], f"{prefix}-rr", vitals_at),
        spo2=_measurement(t.spo2[i], vp[4], f"{prefix}-spo2", vitals_at),
        temperature_c=_measurement(t.temperature_c[i], vp[5], f"{prefix}-temp", vitals_at),
        bmi=_measurement(t.bmi[i], bmi_present, f"{prefix}-bmi", vitals_at),
        troponin=troponin,
        ecg=ecg,
        symptoms=Symptoms(
            **{
                name: _finding(
                    bool(getattr(t, name)[i]), f"Condition/{prefix}-sx-{name.replace('_', '-')}"
                )
                for name in SYMPTOMS
            }
        ),
        risk_factors=RiskFactors(
            hypertension=_finding(bool(t.hypertension[i]), f"Condition/{prefix}-rf-hypertension"),
            hyperlipidaemia=_finding(
                bool(t.hyperlipidaemia[i]), f"Condition/{prefix}-rf-hyperlipidaemia"
            ),
            diabetes=_finding(bool(t.diabetes[i]), f"Condition/{prefix}-rf-diabetes"),
            obesity=_finding(bool(obesity_sources), *obesity_sources),
            smoking=_finding(bool(t.smoking[i]), f"Observation/{prefix}-smoking"),
            family_history=_finding(bool(t.family_history[i]), f"FamilyMemberHistory/{prefix}-fmh"),
            known_atherosclerosis=_finding(
                bool(t.known_atherosclerosis[i]), f"Condition/{prefix}-rf-athero"
            ),
        ),
    )
    return CohortCase(
        index=i,
        id_prefix=prefix,
        facility=FACILITIES[int(t.facility[i])].reference,
        race=RACES[int(t.race[i])],
        ethnicity=_ETHNICITIES[int(t.ethnicity[i])],
        sex=features.sex,
        age=age,
        birth_date=birth_date,
        obesity_coded=bool(t.obesity_coded[i]),
        smoker=bool(t.smoking[i]),
        troponin_report=report,
        features=features,
        true_mace=bool(t.true_mace[i]),
        recorded_mace=bool(t.recorded_mace[i]),
    )
