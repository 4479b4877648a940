"""One audited decision, the attributes it is audited by and the strata it falls in.

Group labels come only from the fixed enums of ``fhir_adapters.features`` so that metric
labels stay bounded; anything else is a programming error and raises ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_adapters.features import AgeBand, ClinicalSex, Ethnicity, Race

ATTRIBUTES: tuple[str, ...] = ("race", "ethnicity", "sex", "race_sex", "age_band")
# Attributes whose escalation parity is reported but raises no WARN or ALERT: age is a
# clinical risk factor the model is meant to use beyond HEART's three age steps, so within
# one HEART band escalation rightly rises with age (on the reference cohort, parity by age
# band put the status at ALERT for 13-19% of decisions in 2 of 3 runs; race, sex and
# ethnicity never). Missed MACE (equal opportunity) is still checked for them.
PARITY_CONTEXT_ONLY: frozenset[str] = frozenset({"age_band"})
BANDS: tuple[str, ...] = ("low", "moderate", "high")
OVERALL = "all"
MODEL_PREFIX = "model:"
HEART_STRATA: tuple[str, ...] = BANDS
MODEL_STRATA: tuple[str, ...] = tuple(MODEL_PREFIX + band for band in BANDS)
STRATA: tuple[str, ...] = (OVERALL, *HEART_STRATA, *MODEL_STRATA)

RACES: tuple[str, ...] = tuple(r.value for r in Race)
ETHNICITIES: tuple[str, ...] = tuple(e.value for e in Ethnicity)
SEXES: tuple[str, ...] = tuple(s.value for s in ClinicalSex)
AGE_BANDS: tuple[str, ...] = tuple(a.value for a in AgeBand)
RACE_SEX_SEPARATOR = "/"

GROUPS: dict[str, tuple[str, ...]] = {
    "race": RACES,
    "ethnicity": ETHNICITIES,
    "sex": SEXES,
    "race_sex": tuple(f"{r}{RACE_SEX_SEPARATOR}{s}" for r in RACES for s in SEXES),
    "age_band": AGE_BANDS,
}


@dataclass(frozen=True, slots=True)
class Decision:
    """What the audit keeps of one assessment: group labels, strata and the escalation.

    ``at`` is epoch seconds. ``stratum`` is the HEART band, ``model_band`` the model's band.
    ``mace_probability`` (the model's 30-day MACE probability) feeds calibration by group once
    outcomes arrive; None leaves the decision out of calibration only.
    """

    audit_id: str
    at: float
    facility: str
    race: str
    ethnicity: str
    sex: str
    age_band: str
    stratum: str
    model_band: str
    escalated: bool
    mace_probability: float | None = None

    def __post_init__(self) -> None:
        _check("race", self.race, RACES)
        _check("ethnicity", self.ethnicity, ETHNICITIES)
        _check("sex", self.sex, SEXES)
        _check("age_band", self.age_band, AGE_BANDS)
        _check("stratum", self.stratum, BANDS)
        _check("model_band", self.model_band, BANDS)
        if self.mace_probability is not None and not 0.0 <= self.mace_probability <= 1.0:
            raise ValueError("mace_probability must lie in [0, 1]")

    def group(self, attribute: str) -> str:
        """This decision's group label for one audited attribute."""
        if attribute == "race_sex":
            return f"{self.race}{RACE_SEX_SEPARATOR}{self.sex}"
        value: str = getattr(self, attribute)
        return value

    def strata(self) -> tuple[str, str, str]:
        """The strata this decision counts in: overall, its HEART band, its model band."""
        return (OVERALL, self.stratum, MODEL_PREFIX + self.model_band)


def _check(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} is not one of the fixed audit labels")
