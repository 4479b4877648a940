"""Hand-built ClinicalFeatures for the engine's unit tests (policy, contributions)."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_adapters.features import (
    ClinicalFeatures,
    ClinicalSex,
    Ecg,
    EcgCategory,
    EncounterSelection,
    Finding,
    Measurement,
    RiskFactors,
    SexSource,
    Status,
    Symptoms,
    Troponin,
    TroponinAssay,
    UrlSource,
)

ANCHOR = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def present(value: float, source: str = "Observation/x") -> Measurement:
    return Measurement(value, Status.PRESENT, source, ANCHOR)


def stale(source: str = "Observation/old") -> Measurement:
    return Measurement(None, Status.STALE, source, None)


def finding(source: str = "Condition/x") -> Finding:
    return Finding(True, (source,))


def troponin(ratio: float, url: float = 26.0) -> Troponin:
    return Troponin(
        Status.PRESENT,
        value_ng_l=ratio * url,
        assay=TroponinAssay.HIGH_SENSITIVITY,
        analyte="I",
        loinc="89579-7",
        url_ng_l=url,
        url_source=UrlSource.DEFAULT_SEX_SPECIFIC,
        ratio_to_url=ratio,
        source="Observation/trop",
        effective=ANCHOR,
    )


def calm_features() -> ClinicalFeatures:
    """A 40-year-old with normal vitals, a normal ECG, no symptoms and no risk factors."""
    return ClinicalFeatures(
        anchor_time=ANCHOR,
        encounter="Encounter/e1",
        encounter_selection=EncounterSelection.REQUESTED,
        age_years=present(40, "Patient/p1"),
        sex=ClinicalSex.FEMALE,
        sex_source=SexSource.GENDER,
        heart_rate=present(72),
        systolic_bp=present(125),
        diastolic_bp=present(80),
        respiratory_rate=present(14),
        spo2=present(98),
        temperature_c=present(36.8),
        bmi=present(24),
        troponin=Troponin.missing(),
        ecg=Ecg(EcgCategory.NORMAL, "Observation/ecg", ANCHOR),
        symptoms=Symptoms(),
        risk_factors=RiskFactors(),
    )
