"""Parameters of the reference cohort: facilities, assays and the two bias knobs.

Every number here is part of the generative model described in ``docs/models.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from fhir_adapters.features import Race, TroponinAssay

#: Race categories the generator draws, in column-code order.
RACES: tuple[Race, ...] = (
    Race.WHITE,
    Race.BLACK_OR_AFRICAN_AMERICAN,
    Race.ASIAN,
    Race.AMERICAN_INDIAN_OR_ALASKA_NATIVE,
    Race.NATIVE_HAWAIIAN_OR_PACIFIC_ISLANDER,
    Race.MULTIPLE,
    Race.UNKNOWN,
)


@dataclass(frozen=True, slots=True)
class Facility:
    reference: str  # Encounter.serviceProvider
    name: str
    share: float  # share of all encounters
    race_mix: tuple[float, ...]  # probabilities in RACES order
    hispanic: float  # probability of Hispanic or Latino ethnicity
    ethnicity_unknown: float
    female: float
    age_mean: float
    age_sd: float
    assay: int  # index into ASSAYS: the troponin assay this facility's lab runs


@dataclass(frozen=True, slots=True)
class Assay:
    loinc: str
    display: str
    kind: TroponinAssay
    analyte: str  # "I" or "T"
    unit: str  # UCUM unit the lab reports in
    ng_l_per_unit: float
    url_female_ng_l: float  # 99th percentile upper reference limit
    url_male_ng_l: float
    lod_ng_l: float  # below this the lab reports "<lod"
    decimals: int  # reporting precision in the lab's unit


ASSAYS: tuple[Assay, ...] = (
    # Conventional contemporary TnI, one URL for everyone (0.04 ng/mL).
    Assay(
        "10839-9",
        "Troponin I.cardiac [Mass/volume] in Serum or Plasma",
        TroponinAssay.CONVENTIONAL,
        "I",
        "ng/mL",
        1000.0,
        40.0,
        40.0,
        10.0,
        2,
    ),
    # High-sensitivity TnI with sex-specific 99th percentiles (women lower than men).
    Assay(
        "89579-7",
        "Troponin I.cardiac [Mass/volume] in Serum or Plasma by High sensitivity method",
        TroponinAssay.HIGH_SENSITIVITY,
        "I",
        "ng/L",
        1.0,
        16.0,
        34.0,
        2.0,
        0,
    ),
    # High-sensitivity TnT with sex-specific 99th percentiles (values unverified, see docs).
    Assay(
        "67151-1",
        "Troponin T.cardiac [Mass/volume] in Serum or Plasma by High sensitivity method",
        TroponinAssay.HIGH_SENSITIVITY,
        "T",
        "ng/L",
        1.0,
        9.0,
        17.0,
        3.0,
        0,
    ),
)

FACILITIES: tuple[Facility, ...] = (
    Facility(
        "Organization/facility-urban",
        "Urban academic ED",
        0.35,
        (0.36, 0.40, 0.08, 0.01, 0.01, 0.04, 0.10),
        0.22,
        0.04,
        0.53,
        56.0,
        15.0,
        1,
    ),
    Facility(
        "Organization/facility-suburban",
        "Suburban community ED",
        0.30,
        (0.70, 0.10, 0.12, 0.005, 0.005, 0.03, 0.04),
        0.10,
        0.03,
        0.51,
        61.0,
        15.0,
        2,
    ),
    Facility(
        "Organization/facility-rural",
        "Rural critical-access ED",
        0.15,
        (0.80, 0.04, 0.01, 0.10, 0.005, 0.025, 0.02),
        0.05,
        0.03,
        0.48,
        64.0,
        14.0,
        0,
    ),
    Facility(
        "Organization/facility-border",
        "Border-region ED",
        0.20,
        (0.78, 0.05, 0.04, 0.03, 0.01, 0.04, 0.05),
        0.62,
        0.05,
        0.50,
        53.0,
        16.0,
        0,
    ),
)


def _frozen(d: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True, slots=True)
class PresentationShift:
    """Share of MACE presentations WITHOUT chest pain (cardiac-equivalent symptoms only).

    ``by_sex`` is the base share (Canto 2012: 42.0% of women, 30.7% of men); ``by_race`` adds
    a per-race offset (Race value -> additive share), zero by default.
    """

    by_sex: Mapping[str, float] = field(
        default_factory=lambda: _frozen({"female": 0.42, "male": 0.31})
    )
    by_race: Mapping[str, float] = field(default_factory=lambda: _frozen({}))
    # Among patients without MACE who present to the chest-pain pathway, the share without
    # chest pain (they came with dyspnea, epigastric pain ...).
    no_mace_no_chest_pain: float = 0.18


@dataclass(frozen=True, slots=True)
class LabelBias:
    """How the historical record under-tests: the probability that troponin was NOT ordered
    in the work-up, so that a true MACE goes unrecorded (the recorded outcome is 0).

    The probabilities combine as independent reasons not to test:
    ``1 - (1 - by_race[r]) * (1 - by_sex[s]) * (1 - no_chest_pain if no chest pain)``.
    All zero (the default) means recorded outcomes equal true outcomes.
    """

    by_race: Mapping[str, float] = field(default_factory=lambda: _frozen({}))
    by_sex: Mapping[str, float] = field(default_factory=lambda: _frozen({}))
    no_chest_pain: float = 0.0

    @property
    def is_unbiased(self) -> bool:
        return (
            not any(self.by_race.values())
            and not any(self.by_sex.values())
            and self.no_chest_pain == 0.0
        )


#: The under-testing scenario used in the label-bias report: Black patients and patients
#: without chest pain were less often worked up (Lopez 2010: cardiac enzymes OR 0.69).
HISTORICAL_UNDER_TESTING = LabelBias(
    by_race=_frozen({Race.BLACK_OR_AFRICAN_AMERICAN.value: 0.35}),
    by_sex=_frozen({"female": 0.10}),
    no_chest_pain=0.30,
)


@dataclass(frozen=True, slots=True)
class CohortParams:
    n: int
    seed: int
    label_bias: LabelBias = field(default_factory=LabelBias)
    presentation_shift: PresentationShift = field(default_factory=PresentationShift)
    facilities: tuple[Facility, ...] = FACILITIES
    troponin_missing: float = 0.08  # no troponin resulted by triage
    ecg_missing: float = 0.05
    vital_missing: float = 0.03
    bmi_missing: float = 0.30
