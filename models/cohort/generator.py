"""The generative model of the reference cohort, vectorised with numpy.

One row is one emergency-department encounter on the chest-pain pathway. Draw order
(each step conditions only on earlier ones):

1. facility (fixed shares) -> race, ethnicity, sex and age from the facility's mix;
2. body mass index, then risk factors: logistic in age, sex, BMI and (for hypertension,
   diabetes and smoking) race/ethnicity, reflecting US prevalence differences. Race shapes
   the *clinical* picture here, exactly as in real data; it never enters the model;
3. known atherosclerosis (prior MI, PCI/CABG, stroke, PAD), then TRUE 30-day MACE: logistic
   in age, sex, risk-factor count and known atherosclerosis;
4. presentation given MACE: chest pain absent with probability ``presentation_shift``
   (42% of women, 31% of men with MACE by default); cardiac-equivalent symptoms (shoulder,
   arm, jaw pain, dyspnea, diaphoresis, nausea, epigastric pain) more frequent with MACE;
   every encounter has chest pain or at least one equivalent (that is how it got here);
5. ECG category and troponin given MACE. Troponin is drawn as a ratio to the SEX-SPECIFIC
   99th percentile, converted to a concentration and reported by the facility's assay, so a
   conventional assay with one URL for everyone under-calls injury in women;
6. vital signs given MACE and age; missingness at fixed rates;
7. RECORDED outcome = TRUE outcome unless the work-up troponin was not ordered
   (``label_bias``), in which case the MACE goes unrecorded.

The constants were tuned so that HEART bands computed from the generated features
reproduce the prospective validation (Backus 2013): MACE 1.7% / 16.6% / 50.1% in the low /
moderate / high bands (``tests/models/test_models_cohort.py`` checks them within a tolerance).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fhir_adapters.features import Race

from .params import ASSAYS, RACES, CohortParams
from .table import CohortTable

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_BLACK = RACES.index(Race.BLACK_OR_AFRICAN_AMERICAN)
_ASIAN = RACES.index(Race.ASIAN)
_AIAN = RACES.index(Race.AMERICAN_INDIAN_OR_ALASKA_NATIVE)
_NHPI = RACES.index(Race.NATIVE_HAWAIIAN_OR_PACIFIC_ISLANDER)

# Ethnicity codes in the table.
HISPANIC, NOT_HISPANIC, ETHNICITY_UNKNOWN = 0, 1, 2
# ECG codes in the table.
ECG_NORMAL, ECG_NONSPECIFIC, ECG_ST, ECG_UNKNOWN = 0, 1, 2, 3


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return out


def _bernoulli(rng: np.random.Generator, p: FloatArray | float, n: int) -> BoolArray:
    draws: BoolArray = rng.random(n) < p
    return draws


def _categorical(rng: np.random.Generator, probs: FloatArray) -> npt.NDArray[np.int64]:
    """One draw per row from row-wise probabilities (rows need not sum exactly to 1)."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((probs.shape[0], 1))
    idx: npt.NDArray[np.int64] = (u > cdf).sum(axis=1).astype(np.int64)
    return idx


def generate_cohort(params: CohortParams) -> CohortTable:
    """Draw ``params.n`` encounters. Same params (seed included) -> identical table."""
    n = params.n
    rng = np.random.default_rng(params.seed)
    fac = params.facilities

    # 1. facility and demographics
    shares = np.array([f.share for f in fac])
    facility = rng.choice(len(fac), size=n, p=shares / shares.sum())
    race = _categorical(rng, np.array([f.race_mix for f in fac])[facility])
    hisp_p = np.array([f.hispanic for f in fac])[facility]
    unk_p = np.array([f.ethnicity_unknown for f in fac])[facility]
    u = rng.random(n)
    ethnicity = np.where(
        u < unk_p, ETHNICITY_UNKNOWN, np.where(u < unk_p + hisp_p, HISPANIC, NOT_HISPANIC)
    )
    female = _bernoulli(rng, np.array([f.female for f in fac])[facility], n)
    age_mean = np.array([f.age_mean for f in fac])[facility]
    age_sd = np.array([f.age_sd for f in fac])[facility]
    age = np.clip(np.rint(rng.normal(age_mean, age_sd)), 18, 95).astype(np.int64)
    a = (age - 60.0) / 10.0  # age in decades from 60
    black = race == _BLACK
    hispanic = ethnicity == HISPANIC
    indigenous = (race == _AIAN) | (race == _NHPI)

    # 2. body mass index and risk factors
    bmi = np.clip(
        np.round(np.exp(rng.normal(np.log(28.0) + 0.03 * hispanic + 0.04 * black, 0.18)), 1),
        16.0,
        60.0,
    )
    obese = bmi > 30.0
    htn = _bernoulli(rng, _sigmoid(0.1 + 0.55 * a + 0.6 * black + 0.5 * obese), n)
    hld = _bernoulli(rng, _sigmoid(-0.2 + 0.35 * a + 0.2 * ~female), n)
    dm = _bernoulli(
        rng,
        _sigmoid(-1.4 + 0.3 * a + 0.45 * black + 0.45 * hispanic + 0.5 * indigenous + 0.7 * obese),
        n,
    )
    smoker = _bernoulli(rng, _sigmoid(-1.3 - 0.25 * a + 0.25 * ~female + 0.4 * indigenous), n)
    family = _bernoulli(rng, 0.15, n)
    obesity_coded = obese & _bernoulli(rng, 0.7, n)
    athero = _bernoulli(
        rng, _sigmoid(-1.9 + 0.5 * a + 0.45 * ~female + 0.3 * dm + 0.25 * smoker), n
    )
    rf_count = htn.astype(int) + hld + dm + obese + smoker + family

    # 3. true 30-day MACE
    mace_logit = -2.85 + 0.65 * a + 0.45 * ~female + 0.28 * rf_count + 1.0 * athero
    true_mace = _bernoulli(rng, _sigmoid(mace_logit), n)

    # 4. presentation
    shift = params.presentation_shift
    p_no_cp = np.where(female, shift.by_sex.get("female", 0.0), shift.by_sex.get("male", 0.0))
    race_offset = np.array([shift.by_race.get(r.value, 0.0) for r in RACES])[race]
    p_no_cp = np.clip(p_no_cp + race_offset, 0.0, 1.0)
    p_no_cp = np.where(true_mace, p_no_cp, shift.no_mace_no_chest_pain)
    chest_pain = ~_bernoulli(rng, p_no_cp, n)
    m = true_mace.astype(float)
    # Radiation and autonomic symptoms: more frequent with MACE; women more often report
    # jaw pain, nausea and dyspnea.
    shoulder = _bernoulli(rng, 0.13 + 0.10 * m, n)
    arm = _bernoulli(rng, 0.14 + 0.14 * m, n)
    jaw = _bernoulli(rng, 0.03 + 0.10 * m + 0.03 * female, n)
    dyspnea = _bernoulli(rng, 0.22 + 0.18 * m + 0.05 * female, n)
    diaphoresis = _bernoulli(rng, 0.13 + 0.18 * m, n)
    nausea = _bernoulli(rng, 0.12 + 0.14 * m + 0.04 * female, n)
    epigastric = _bernoulli(rng, 0.08 + 0.04 * m, n)
    equivalents = np.stack([shoulder, arm, jaw, dyspnea, diaphoresis, nausea, epigastric], axis=1)
    # Without chest pain an encounter is on this pathway because of an equivalent symptom.
    needs_one = ~chest_pain & ~equivalents.any(axis=1)
    pick_w = np.array([[0.12, 0.12, 0.06, 0.35, 0.1, 0.1, 0.15]])
    pick = _categorical(rng, np.repeat(pick_w, n, axis=0))
    equivalents[np.flatnonzero(needs_one), pick[needs_one]] = True

    # 5. ECG and troponin
    p_st = np.where(true_mace, 0.18, 0.05)
    p_nonspec = np.where(true_mace, 0.30, 0.2 + 0.08 * np.clip(a, 0, None))
    u = rng.random(n)
    ecg = np.where(u < p_st, ECG_ST, np.where(u < p_st + p_nonspec, ECG_NONSPECIFIC, ECG_NORMAL))
    ecg = np.where(_bernoulli(rng, params.ecg_missing, n), ECG_UNKNOWN, ecg)

    # Ratio to the sex-specific 99th percentile: many MIs are not yet above the limit at
    # triage; in patients without MACE, age and renal/heart disease raise the baseline.
    log_ratio = np.where(
        true_mace,
        rng.normal(np.log(1.0), 1.2, n),
        rng.normal(np.log(0.5) + 0.25 * a + 0.45 * athero, 1.0, n),
    )
    assay = np.array([f.assay for f in fac])[facility]
    sex_url = np.where(female, 16.0, 34.0)  # TnI sex-specific 99th percentile, ng/L
    url_f = np.array([s.url_female_ng_l for s in ASSAYS])[assay]
    url_m = np.array([s.url_male_ng_l for s in ASSAYS])[assay]
    is_hs = np.array([s.kind.value == "high_sensitivity" for s in ASSAYS])[assay]
    # hs assays are reported against their own sex-specific URL; the conventional TnI is the
    # same TnI concentration against one URL for everyone.
    concentration = np.where(
        is_hs, np.exp(log_ratio) * np.where(female, url_f, url_m), np.exp(log_ratio) * sex_url
    )
    troponin_present = ~_bernoulli(rng, params.troponin_missing, n)

    # 6. vital signs
    hr = np.clip(np.rint(rng.normal(80.0 + 9.0 * m, 14.0)), 38, 175)
    sbp = np.clip(np.rint(rng.normal(134.0 + 4.0 * a + 6.0 * htn - 4.0 * m, 20.0)), 75, 225)
    dbp = np.clip(np.rint(0.45 * sbp + rng.normal(20.0, 8.0, n)), 40, 125)
    rr = np.clip(np.rint(rng.normal(16.5 + 1.8 * m, 2.5)), 8, 40)
    spo2 = np.clip(np.rint(rng.normal(97.3 - 1.2 * m, 1.6)), 82, 100)
    temp = np.clip(np.round(rng.normal(36.8, 0.35, n), 1), 35.0, 40.0)
    vital_present = ~(rng.random((n, 6)) < params.vital_missing)
    bmi_present = ~_bernoulli(rng, params.bmi_missing, n)

    # 7. recorded outcome under label bias
    lb = params.label_bias
    p_race = np.array([lb.by_race.get(r.value, 0.0) for r in RACES])[race]
    p_sex = np.where(female, lb.by_sex.get("female", 0.0), lb.by_sex.get("male", 0.0))
    p_cp = np.where(chest_pain, 0.0, lb.no_chest_pain)
    p_not_tested = 1.0 - (1.0 - p_race) * (1.0 - p_sex) * (1.0 - p_cp)
    tested = ~_bernoulli(rng, p_not_tested, n)
    recorded_mace = true_mace & tested

    anchor_offset_s = rng.integers(0, 300 * 24 * 3600, n)
    birthday_days_ago = rng.integers(1, 300, n)

    return CohortTable(
        seed=params.seed,
        facility=facility.astype(np.int64),
        race=race,
        ethnicity=ethnicity.astype(np.int64),
        female=female,
        age=age,
        bmi=bmi,
        bmi_present=bmi_present,
        obesity_coded=obesity_coded,
        hypertension=htn,
        hyperlipidaemia=hld,
        diabetes=dm,
        smoking=smoker,
        family_history=family,
        known_atherosclerosis=athero,
        chest_pain=chest_pain,
        shoulder_pain=equivalents[:, 0],
        arm_pain=equivalents[:, 1],
        jaw_pain=equivalents[:, 2],
        dyspnea=equivalents[:, 3],
        diaphoresis=equivalents[:, 4],
        nausea=equivalents[:, 5],
        epigastric_pain=equivalents[:, 6],
        ecg=ecg.astype(np.int64),
        assay=assay.astype(np.int64),
        troponin_ng_l=concentration,
        troponin_present=troponin_present,
        heart_rate=hr,
        systolic_bp=sbp,
        diastolic_bp=dbp,
        respiratory_rate=rr,
        spo2=spo2,
        temperature_c=temp,
        vital_present=vital_present,
        true_mace=true_mace,
        recorded_mace=recorded_mace,
        troponin_ordered=tested,
        anchor_offset_s=anchor_offset_s.astype(np.int64),
        birthday_days_ago=birthday_days_ago.astype(np.int64),
    )
