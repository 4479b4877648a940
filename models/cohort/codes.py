"""Terminology the bundle builder writes (see ../shared/reference/clinical.md §4)."""

from __future__ import annotations

from fhir_adapters.features import EcgCategory, Ethnicity, Race

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OMB = "urn:oid:2.16.840.1.113883.6.238"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

#: OMB race codes; MULTIPLE is written as two categories, UNKNOWN as the UNK null flavour.
RACE_CODES: dict[Race, tuple[tuple[str, str, str], ...]] = {
    Race.AMERICAN_INDIAN_OR_ALASKA_NATIVE: ((OMB, "1002-5", "American Indian or Alaska Native"),),
    Race.ASIAN: ((OMB, "2028-9", "Asian"),),
    Race.BLACK_OR_AFRICAN_AMERICAN: ((OMB, "2054-5", "Black or African American"),),
    Race.NATIVE_HAWAIIAN_OR_PACIFIC_ISLANDER: (
        (OMB, "2076-8", "Native Hawaiian or Other Pacific Islander"),
    ),
    Race.WHITE: ((OMB, "2106-3", "White"),),
    Race.MULTIPLE: ((OMB, "2054-5", "Black or African American"), (OMB, "2106-3", "White")),
    Race.UNKNOWN: ((NULL_FLAVOR, "UNK", "Unknown"),),
}
ETHNICITY_CODES: dict[Ethnicity, tuple[str, str, str]] = {
    Ethnicity.HISPANIC_OR_LATINO: (OMB, "2135-2", "Hispanic or Latino"),
    Ethnicity.NOT_HISPANIC_OR_LATINO: (OMB, "2186-5", "Not Hispanic or Latino"),
    Ethnicity.UNKNOWN: (NULL_FLAVOR, "UNK", "Unknown"),
}

# name -> (loinc, display, ucum unit)
VITAL_CODES: dict[str, tuple[str, str, str]] = {
    "heart_rate": ("8867-4", "Heart rate", "/min"),
    "respiratory_rate": ("9279-1", "Respiratory rate", "/min"),
    "spo2": ("2708-6", "Oxygen saturation in Arterial blood", "%"),
    "temperature_c": ("8310-5", "Body temperature", "Cel"),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2"),
}
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")
ECG_STUDY = ("11524-6", "EKG study")
SMOKING_STATUS = ("72166-2", "Tobacco smoking status")
SMOKER_EVERY_DAY = ("449868002", "Smokes tobacco daily")
SMOKER_NEVER = ("266919005", "Never smoked tobacco")

ECG_FINDINGS: dict[EcgCategory, tuple[str, str]] = {
    EcgCategory.NORMAL: ("164854000", "Electrocardiogram normal"),
    EcgCategory.NONSPECIFIC: ("428750005", "Nonspecific ST-T abnormality on electrocardiogram"),
    EcgCategory.ST_DEVIATION: ("164931005", "ST segment elevation"),
}

SYMPTOM_CODES: dict[str, tuple[str, str]] = {
    "chest_pain": ("29857009", "Chest pain"),
    "shoulder_pain": ("45326000", "Shoulder pain"),
    "arm_pain": ("102556003", "Pain in upper limb"),
    "jaw_pain": ("274667000", "Jaw pain"),
    "dyspnea": ("267036007", "Dyspnea"),
    "diaphoresis": ("415690000", "Sweating"),
    "nausea": ("422587007", "Nausea"),
    "epigastric_pain": ("79922009", "Epigastric pain"),
}
RISK_FACTOR_CODES: dict[str, tuple[str, str]] = {
    "hypertension": ("38341003", "Hypertensive disorder"),
    "hyperlipidaemia": ("55822004", "Hyperlipidemia"),
    "diabetes": ("44054006", "Diabetes mellitus type 2"),
    "obesity": ("414916001", "Obesity"),
    "athero": ("1755008", "Old myocardial infarction"),
}
FAMILY_CAD = ("53741008", "Coronary arteriosclerosis")
