"""Every code the extractor recognises, in one place. Sources: the project's
reference/clinical.md §4 (LOINC, SNOMED CT, ICD-10-CM); additions are marked.

ICD-10-CM codes are compared without the dot and upper-cased ("R07.9" == "R079"); ICD
entries here are *prefixes* ("E78" matches E78.0 .. E78.5 and their children).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"})
OMB_SYSTEM = "urn:oid:2.16.840.1.113883.6.238"
NULL_FLAVOR_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"

Coding = tuple[str, str]  # (system, code); either may be "" when absent


# --- vitals (LOINC) -----------------------------------------------------------------------
HEART_RATE = frozenset({"8867-4"})
BP_PANELS = frozenset({"85354-9", "55284-4"})  # 55284-4: the legacy panel Synthea uses
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
RESPIRATORY_RATE = frozenset({"9279-1"})
SPO2 = frozenset({"2708-6", "59408-5"})
# 8331-1 (oral temperature) is an addition: Synthea records temperature under it.
TEMPERATURE = frozenset({"8310-5", "8331-1"})
WEIGHT = frozenset({"29463-7"})
HEIGHT = frozenset({"8302-2"})
BMI = frozenset({"39156-5"})

# --- troponin (LOINC): code -> (analyte, high-sensitivity?) --------------------------------
TROPONIN: dict[str, tuple[str, bool]] = {
    "10839-9": ("I", False),  # TnI, serum/plasma
    "42757-5": ("I", False),  # TnI, blood
    "49563-0": ("I", False),  # TnI, serum/plasma, detection limit <= 0.01 ng/mL
    "89579-7": ("I", True),  # hs-TnI
    "6598-7": ("T", False),  # TnT, serum/plasma
    "48425-3": ("T", False),  # TnT, blood
    "67151-1": ("T", True),  # hs-TnT
}

# --- smoking (LOINC 72166-2 answers, SNOMED) ------------------------------------------------
SMOKING_STATUS = "72166-2"
SMOKING_CURRENT = frozenset({"449868002", "428041000124106", "428071000124103", "428061000124105"})
SMOKING_FORMER = frozenset({"8517006"})
# Answers that say nothing about smoking: "unknown" and "unknown if ever".
SMOKING_UNKNOWN = frozenset({"77176002", "266927001"})

# --- explicit denials (SNOMED answers): "No", "Negative", "Absent" ---------------------------
# An Observation whose code names a finding and whose value is one of these says the finding
# is absent, as valueBoolean false does.
DENIAL_ANSWERS = frozenset({"373067005", "260385009", "2667000"})
QUIT_WINDOW_DAYS = 90  # HEART: "current smoker or quit within 3 months"

# --- ECG findings (SNOMED) -------------------------------------------------------------------
ECG_ST_ELEVATION = frozenset({"76388001", "164931005"})  # a STEMI pathway of its own
ECG_ST_DEVIATION = frozenset({"26141007", "429622005"}) | ECG_ST_ELEVATION
ECG_NONSPECIFIC = frozenset(
    {"63467002", "164909002", "164873001", "55827005", "428750005", "59931005", "10370003"}
)
ECG_NORMAL = frozenset({"164854000"})  # addition: "Electrocardiogram normal"
ECG_FINDINGS = ECG_ST_DEVIATION | ECG_NONSPECIFIC | ECG_NORMAL
# The ECG study an Observation may be (11524-6 "EKG study"): its components may carry the
# findings above.
ECG_LOINC = frozenset({"11524-6"})

# --- symptom observation carrying the symptom as its value (addition) -----------------------
SYMPTOM_OBSERVATION = "75325-1"  # LOINC "Symptom"


@dataclass(frozen=True, slots=True)
class CodeSet:
    """SNOMED codes (exact) and ICD-10-CM prefixes (dot-less, upper case)."""

    snomed: frozenset[str]
    icd10_prefixes: tuple[str, ...] = ()

    def matches(self, codings: Iterable[Coding]) -> bool:
        for system, code in codings:
            if system == SNOMED and code in self.snomed:
                return True
            if system in ICD10_SYSTEMS and self.icd10_prefixes:
                normal = code.replace(".", "").upper()
                if normal.startswith(self.icd10_prefixes):
                    return True
        return False


# --- symptoms -------------------------------------------------------------------------------
# Chest pain and angina in any form, typical or not: an ECG within 10 minutes for all of
# them (a pleuritic or "non-cardiac" label at triage is not yet a diagnosis). Additions to
# clinical.md: 426396005 cardiac chest pain, 23924001 tight chest, 279084009 chest
# discomfort, 274668005 non-cardiac chest pain, 233819005 / 429559004 / 371807002 stable /
# typical / atypical angina (DICOM CID 3202 / 3220), 394659003 acute coronary syndrome;
# ICD-10-CM R07.1 (on breathing), R07.8- (pleurodynia, intercostal, other); and an ACS
# named as this visit's reason (I21 / I22 MI, I24 other acute ischaemic heart disease),
# which must not be read as no presentation at all. Not R07.0 (pain in throat).
_CHEST_PAIN_SNOMED = frozenset({
    "29857009", "194828000", "4557003", "426396005", "23924001", "279084009",
    "274668005", "233819005", "429559004", "371807002", "394659003",
})  # fmt: skip
_CHEST_PAIN_ICD10 = ("R071", "R072", "R078", "R079", "I20", "I21", "I22", "I24")
SYMPTOMS: dict[str, CodeSet] = {
    "chest_pain": CodeSet(_CHEST_PAIN_SNOMED, _CHEST_PAIN_ICD10),
    "shoulder_pain": CodeSet(frozenset({"45326000"}), ("M2551",)),
    # 102556003 "Pain in upper limb" is this project's choice for arm pain. ICD-10-CM
    # M79.60- is "pain in limb": only .601-.603 are the arm (.604-.606 leg, .609 unspecified
    # limb); M79.62- upper arm and M79.63- forearm are arm pain throughout.
    "arm_pain": CodeSet(frozenset({"102556003"}), ("M79601", "M79602", "M79603", "M7962", "M7963")),
    "jaw_pain": CodeSet(frozenset({"274667000"}), ("R6884",)),
    "dyspnea": CodeSet(frozenset({"267036007"}), ("R0600", "R0602", "R0609")),
    "diaphoresis": CodeSet(frozenset({"415690000"}), ("R61",)),  # SNOMED code unverified
    "nausea": CodeSet(frozenset({"422587007"}), ("R110", "R112")),
    "epigastric_pain": CodeSet(frozenset({"79922009"}), ("R1013",)),
}

# --- risk factors and known atherosclerosis ----------------------------------------------------
HYPERTENSION = CodeSet(
    frozenset({"38341003", "59621000"}),  # 59621000 essential hypertension: addition
    ("I10", "I11", "I12", "I13", "I15", "I16"),
)
HYPERLIPIDAEMIA = CodeSet(
    frozenset({"55822004", "13644009"}), ("E780", "E781", "E782", "E783", "E784", "E785")
)
DIABETES = CodeSet(frozenset({"44054006", "46635009"}), ("E10", "E11", "E13"))
# clinical.md lists E66.x, but E66.3 is "Overweight" (BMI 25-29.9), not obesity (BMI > 30).
OBESITY = CodeSet(frozenset({"414916001"}), ("E660", "E661", "E662", "E668", "E669"))
# Findings that record one BMI measurement: Synthea's "Body mass index 30+ / 40+"
# (162864005 / 408512008) and ICD-10-CM Z68.3x / Z68.4x (BMI 30-39.9 / 40+), additions.
# Often never resolved, so a BMI measured within the obesity window supersedes them.
OBESITY_BMI_FINDING = CodeSet(frozenset({"162864005", "408512008"}), ("Z683", "Z684"))
# Nicotine dependence (F17.2-) that is smoked: unspecified product (F17.20-), cigarettes
# (F17.21-), other product (F17.29-); not chewing tobacco (F17.22-), and not "in remission"
# (6th character 1: abstinent for 3 months or more, outside HEART's window).
_SMOKED_NICOTINE_DEPENDENCE = (
    "F17200", "F17203", "F17208", "F17209",
    "F17210", "F17213", "F17218", "F17219",
    "F17290", "F17293", "F17298", "F17299",
)  # fmt: skip
# Not 77176002 ("smoker, current status unknown" in the 72166-2 value set): the same code
# cannot say "unknown" as an answer and "current smoker" as a Condition.
SMOKING_CONDITION = CodeSet(
    frozenset({"449868002", "65568007"}),  # daily smoker, cigarette smoker
    _SMOKED_NICOTINE_DEPENDENCE,
)
ATHEROSCLEROSIS = CodeSet(
    frozenset(
        {
            "1755008",  # old MI
            "399211009",  # history of MI
            "22298006",  # MI (addition: Synthea)
            "53741008",  # coronary arteriosclerosis / CAD
            "415070008",  # PCI
            "232717009",  # CABG
            "399261000",  # history of CABG
            "400047006",  # PAD
            "230690007",  # stroke
            "266257000",  # TIA (addition)
        }
    ),
    # I21/I22 MI, I25.2 old MI, I25.1 ASHD, I63 stroke, G45 TIA, I70.2 / I73.9 PAD,
    # Z95.1 CABG status, Z95.5 coronary stent, Z98.61 PCI status, Z86.73 history of TIA/stroke.
    ("I21", "I22", "I252", "I251", "I63", "G45", "I702", "I739", "Z951", "Z955", "Z9861", "Z8673"),
)
PREMATURE_CAD_FAMILY = CodeSet(frozenset({"53741008", "22298006"}), ("I21", "I22", "I25"))
PREMATURE_ONSET_YEARS = 65.0
# v3-RoleCode: parents, full siblings and twins. Half-siblings (HSIB, HBRO, HSIS) are
# second-degree relatives; step and in-law relatives share no genes: all excluded.
FIRST_DEGREE_RELATIVES = frozenset(
    {
        "PRN", "MTH", "FTH", "NPRN", "NMTH", "NFTH",
        "SIB", "BRO", "SIS", "NSIB", "NBRO", "NSIS",
        "TWIN", "TWINBRO", "TWINSIS", "FTWIN", "FTWINBRO", "FTWINSIS",
        "ITWIN", "ITWINBRO", "ITWINSIS",
    }
)  # fmt: skip

# --- demographics --------------------------------------------------------------------------------
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
RACE_URL = US_CORE + "us-core-race"
ETHNICITY_URL = US_CORE + "us-core-ethnicity"
BIRTHSEX_URL = US_CORE + "us-core-birthsex"
INDIVIDUAL_SEX_URL = US_CORE + "us-core-individual-sex"
ANIMAL_URL = "http://hl7.org/fhir/StructureDefinition/patient-animal"
SNOMED_FEMALE = "248152002"
SNOMED_MALE = "248153007"

# --- reference ranges: appliesTo codes saying which sex a range is for ----------------------------
FEMALE_CODES = frozenset({SNOMED_FEMALE, "F", "female"})
MALE_CODES = frozenset({SNOMED_MALE, "M", "male"})


def has_code(codings: Iterable[Coding], system: str, codes: frozenset[str] | set[str]) -> bool:
    return any(s == system and c in codes for s, c in codings)


def first_code(codings: Iterable[Coding], system: str, codes: Iterable[str]) -> str | None:
    wanted = set(codes)
    for s, c in codings:
        if s == system and c in wanted:
            return c
    return None


# --- precomputed lookups for the hot path -------------------------------------------------------
_SYMPTOM_BY_SNOMED: dict[str, tuple[str, ...]] = {}
for _flag, _set in SYMPTOMS.items():
    for _code in _set.snomed:
        _SYMPTOM_BY_SNOMED[_code] = (*_SYMPTOM_BY_SNOMED.get(_code, ()), _flag)
_SYMPTOM_ICD: tuple[tuple[str, str], ...] = tuple(
    (prefix, flag) for flag, code_set in SYMPTOMS.items() for prefix in code_set.icd10_prefixes
)
SYMPTOM_ICD_PREFIXES = tuple(prefix for prefix, _ in _SYMPTOM_ICD)


class CodeIndex:
    """Several named CodeSets at once: ``flags(codings)`` is the set of names whose
    ``CodeSet.matches(codings)`` is true, found with one dict lookup per SNOMED coding."""

    __slots__ = ("_icd", "_snomed")

    def __init__(self, sets: dict[str, CodeSet]) -> None:
        snomed: dict[tuple[str, str], tuple[str, ...]] = {}
        for name, code_set in sets.items():
            for code in code_set.snomed:
                key = (SNOMED, code)
                snomed[key] = (*snomed.get(key, ()), name)
        self._snomed = snomed
        self._icd = tuple(
            (prefix, name) for name, code_set in sets.items() for prefix in code_set.icd10_prefixes
        )

    def flags(self, codings: Iterable[Coding]) -> set[str]:
        found: set[str] = set()
        for coding in codings:
            names = self._snomed.get(coding)
            if names is not None:
                found.update(names)
            elif coding[0] in ICD10_SYSTEMS:
                normal = coding[1].replace(".", "").upper()
                found.update(name for prefix, name in self._icd if normal.startswith(prefix))
        return found


def symptom_flags(codings: Iterable[Coding]) -> set[str]:
    """The Symptoms flags these codings name (same answer as SYMPTOMS[flag].matches)."""
    flags: set[str] = set()
    for system, code in codings:
        if system == SNOMED:
            flags.update(_SYMPTOM_BY_SNOMED.get(code, ()))
        elif system in ICD10_SYSTEMS:
            normal = code.replace(".", "").upper()
            flags.update(flag for prefix, flag in _SYMPTOM_ICD if normal.startswith(prefix))
    return flags
