"""BundleFacts -> Extraction. Shared by the fast path and the R4B reference extractor.

Derivation runs in two steps so that the fairness counterfactual parses and derives the
sex-independent features once: ``derive_base`` (anchor, vitals, ECG, symptoms, risk
factors, age) and ``finish`` (everything that depends on sex: the troponin limit, and the
audit attributes). Race and ethnicity reach only ``AuditAttributes``: no function that
builds ``ClinicalFeatures`` receives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fhir_adapters.config import ExtractionConfig
from fhir_adapters.facts import BundleFacts, ObservationFact
from fhir_adapters.features import (
    AuditAttributes,
    ClinicalFeatures,
    ClinicalSex,
    Ecg,
    EncounterSelection,
    Ethnicity,
    Extraction,
    ExtractionWarning,
    Finding,
    Measurement,
    Race,
    RiskFactors,
    SexSource,
    Symptoms,
)
from fhir_adapters.fhir_time import to_utc
from fhir_adapters.pseudonym import pseudonym
from fhir_adapters.rules import demographics
from fhir_adapters.rules.context import Anchor, Context, Warnings
from fhir_adapters.rules.ecg import derive_ecg
from fhir_adapters.rules.encounter import select_anchor
from fhir_adapters.rules.findings import derive_risk_factors, derive_symptoms, usable_conditions
from fhir_adapters.rules.troponin import derive_troponin
from fhir_adapters.rules.vitals import Vitals, derive_vitals


@dataclass(frozen=True, slots=True)
class DemographicOverride:
    """A counterfactual patient: the same bundle with race, ethnicity and sex replaced.
    ``sex_source`` in the result stays the source of the recorded sex."""

    race: Race
    ethnicity: Ethnicity
    sex: ClinicalSex


@dataclass(slots=True)
class Base:
    """Everything derived that depends neither on sex nor on race / ethnicity."""

    facts: BundleFacts
    config: ExtractionConfig
    anchor: Anchor
    selection: EncounterSelection
    observations: tuple[ObservationFact, ...]  # passed the gate
    age: Measurement
    vitals: Vitals
    ecg: Ecg
    st_in_window: Finding
    st_elevation_in_window: Finding
    symptoms: Symptoms
    complaint_not_recognised: bool
    risk_factors: RiskFactors
    warnings: tuple[ExtractionWarning, ...]
    recorded_sex: ClinicalSex
    sex_source: SexSource
    patient_pseudonym: str
    encounter_pseudonym: str | None
    # ClinicalFeatures per sex, filled by ``finish``: the counterfactual variants (5 races x
    # 2 ethnicities x 2 sexes) derive the sex-dependent part once per distinct sex.
    features_by_sex: dict[ClinicalSex, ClinicalFeatures] = field(
        default_factory=dict, compare=False, repr=False
    )


def derive_base(
    facts: BundleFacts,
    config: ExtractionConfig,
    request_time: datetime,
    encounter_id: str | None,
) -> Base:
    warnings = Warnings(list(facts.warnings))
    anchor, selection = select_anchor(facts, to_utc(request_time), encounter_id, warnings)
    ctx = Context.build(facts, anchor, warnings)
    observations = [
        o
        for o in facts.observations
        if ctx.usable(o.header, subject_path=".subject", encounter=o.encounter)
    ]
    reports = [
        r
        for r in facts.reports
        if ctx.usable(r.header, subject_path=".subject", encounter=r.encounter)
    ]
    conditions = usable_conditions(ctx, facts.conditions)
    vitals = derive_vitals(ctx, observations, config.vitals_staleness)
    ecg, st_in_window, st_elevation_in_window = derive_ecg(
        ctx, observations, reports, config.ecg_staleness
    )
    symptoms, complaint_not_recognised = derive_symptoms(
        ctx, conditions, observations, config.vitals_staleness
    )
    risk_factors = derive_risk_factors(
        ctx, conditions, observations, facts.procedures, facts.family_histories, vitals.recent_bmi
    )
    sex, sex_source = demographics.clinical_sex(facts.patient)
    encounter = anchor.encounter
    return Base(
        facts=facts,
        config=config,
        anchor=anchor,
        selection=selection,
        observations=tuple(observations),
        age=demographics.age(facts.patient, anchor.local_date),
        vitals=vitals,
        ecg=ecg,
        st_in_window=st_in_window,
        st_elevation_in_window=st_elevation_in_window,
        symptoms=symptoms,
        complaint_not_recognised=complaint_not_recognised,
        risk_factors=risk_factors,
        warnings=tuple(warnings.items),
        recorded_sex=sex,
        sex_source=sex_source,
        patient_pseudonym=pseudonym(config.pseudonym_key, facts.patient.ref),
        # An Encounter with neither id nor fullUrl cannot be named again (its stand-in ref
        # "Encounter/#<entry>" would give every such encounter one pseudonym).
        encounter_pseudonym=None
        if encounter is None or (encounter.id is None and encounter.full_url is None)
        else pseudonym(config.pseudonym_key, encounter.ref),
    )


def finish(base: Base, override: DemographicOverride | None = None) -> Extraction:
    sex = base.recorded_sex if override is None else override.sex
    features = base.features_by_sex.get(sex)
    if features is None:
        # Race and ethnicity cannot reach the features (``_features`` does not take them),
        # so features derived for this sex are the features of every variant with it.
        features = base.features_by_sex[sex] = _features(base, sex)
    encounter = base.anchor.encounter
    audit = AuditAttributes(
        race=demographics.race(base.facts.demographics) if override is None else override.race,
        ethnicity=demographics.ethnicity(base.facts.demographics)
        if override is None
        else override.ethnicity,
        sex=sex,
        age_band=demographics.age_band(base.age),
        facility=None if encounter is None else (encounter.service_provider or encounter.location),
        patient_pseudonym=base.patient_pseudonym,
        encounter_pseudonym=base.encounter_pseudonym,
    )
    return Extraction(features, audit)


def _features(base: Base, sex: ClinicalSex) -> ClinicalFeatures:
    """Builds ClinicalFeatures from the sex-independent base and the sex. Deliberately
    takes no race or ethnicity."""
    warnings = Warnings(list(base.warnings))
    ctx = Context.build(base.facts, base.anchor, warnings)
    troponin, raised_in_window = derive_troponin(
        ctx, list(base.observations), sex, base.config.troponin_staleness
    )
    vitals = base.vitals
    return ClinicalFeatures(
        anchor_time=base.anchor.time,
        encounter=None if base.anchor.encounter is None else base.anchor.encounter.ref,
        encounter_selection=base.selection,
        age_years=base.age,
        sex=sex,
        sex_source=base.sex_source,
        heart_rate=vitals.heart_rate,
        systolic_bp=vitals.systolic_bp,
        diastolic_bp=vitals.diastolic_bp,
        respiratory_rate=vitals.respiratory_rate,
        spo2=vitals.spo2,
        temperature_c=vitals.temperature_c,
        bmi=vitals.bmi,
        troponin=troponin,
        ecg=base.ecg,
        symptoms=base.symptoms,
        risk_factors=base.risk_factors,
        troponin_above_url_in_window=raised_in_window,
        st_deviation_in_window=base.st_in_window,
        st_elevation_in_window=base.st_elevation_in_window,
        complaint_not_recognised=base.complaint_not_recognised,
        warnings=tuple(warnings.items),
    )
