"""Sex, age and the audit-only race / ethnicity categories."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import TypeVar

from fhir_adapters import codes
from fhir_adapters.facts import CONFLICTING, Demographics, PatientFact
from fhir_adapters.features import (
    AgeBand,
    ClinicalSex,
    Ethnicity,
    Measurement,
    Race,
    SexSource,
    Status,
)

_GENDER = {"female": ClinicalSex.FEMALE, "male": ClinicalSex.MALE}
_BIRTHSEX = {"F": ClinicalSex.FEMALE, "M": ClinicalSex.MALE}
_INDIVIDUAL_SEX = {codes.SNOMED_FEMALE: ClinicalSex.FEMALE, codes.SNOMED_MALE: ClinicalSex.MALE}
MAX_PLAUSIBLE_AGE = 130.0
_C = TypeVar("_C", bound=StrEnum)  # an audited category: Race or Ethnicity


def clinical_sex(patient: PatientFact) -> tuple[ClinicalSex, SexSource]:
    """Precedence: us-core-individual-sex, then us-core-birthsex, then Patient.gender.
    The first source giving female or male wins; when none does, the sex is unknown and
    the source is the highest-precedence element that was present (UNK, other ...).
    A source that says both (two extensions that disagree) is unknown, not the last one
    read: the unknown sex errs towards the lower troponin limits."""
    individual = {
        _INDIVIDUAL_SEX[c]
        for s, c in patient.individual_sex
        if c in _INDIVIDUAL_SEX and s in (codes.SNOMED, "")
    }
    if len(individual) == 1:
        return individual.pop(), SexSource.INDIVIDUAL_SEX
    if individual:
        return ClinicalSex.UNKNOWN, SexSource.INDIVIDUAL_SEX
    if patient.birthsex in _BIRTHSEX:
        return _BIRTHSEX[patient.birthsex], SexSource.BIRTHSEX
    if patient.birthsex == CONFLICTING:
        return ClinicalSex.UNKNOWN, SexSource.BIRTHSEX
    if patient.gender in _GENDER:
        return _GENDER[patient.gender], SexSource.GENDER
    if patient.individual_sex:
        return ClinicalSex.UNKNOWN, SexSource.INDIVIDUAL_SEX
    if patient.birthsex is not None:
        return ClinicalSex.UNKNOWN, SexSource.BIRTHSEX
    if patient.gender is not None:
        return ClinicalSex.UNKNOWN, SexSource.GENDER
    return ClinicalSex.UNKNOWN, SexSource.NONE


def age(patient: PatientFact, on: date) -> Measurement:
    """Completed years between birthDate and ``on``, the anchor's calendar date where it was
    recorded (``Anchor.local_date``: an evening visit at -08:00 is still that day, though
    in UTC it is the next one, which could add a birthday not yet reached). A partial
    birthDate ("1970", "1970-05") counts from the start of the period it names."""
    born = patient.birth_date
    if born is None:
        return Measurement.missing()
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    if years < 0 or years > MAX_PLAUSIBLE_AGE:
        return Measurement(None, Status.IMPLAUSIBLE, patient.ref)
    return Measurement(float(years), Status.PRESENT, patient.ref, born)


def age_band(age_years: Measurement) -> AgeBand:
    if age_years.value is None:
        return AgeBand.UNKNOWN
    years = age_years.value
    if years < 18:
        return AgeBand.UNDER_18
    if years < 45:
        return AgeBand.AGE_18_44
    if years < 65:
        return AgeBand.AGE_45_64
    if years < 90:
        return AgeBand.AGE_65_89
    return AgeBand.AGE_90_PLUS


_OMB_RACE = {
    "1002-5": Race.AMERICAN_INDIAN_OR_ALASKA_NATIVE,
    "2028-9": Race.ASIAN,
    "2054-5": Race.BLACK_OR_AFRICAN_AMERICAN,
    "2076-8": Race.NATIVE_HAWAIIAN_OR_PACIFIC_ISLANDER,
    "2106-3": Race.WHITE,
}
_OMB_ETHNICITY = {
    "2135-2": Ethnicity.HISPANIC_OR_LATINO,
    "2186-5": Ethnicity.NOT_HISPANIC_OR_LATINO,
}
_UNKNOWN_CODES = frozenset({"UNK", "ASKU"})


def race(demographics: Demographics) -> Race:
    """One OMB category; several -> multiple; any code outside the OMB race set (e.g. the
    ethnicity code 2135-2 sent as a race) -> invalid; none / UNK / ASKU -> unknown."""
    found = _omb_categories(demographics.race_codes, _OMB_RACE)
    if found is None:
        return Race.INVALID
    if not found:
        return Race.UNKNOWN
    return found.pop() if len(found) == 1 else Race.MULTIPLE


def ethnicity(demographics: Demographics) -> Ethnicity:
    """Same rules; both OMB ethnicity categories at once is a contradiction -> invalid."""
    found = _omb_categories(demographics.ethnicity_codes, _OMB_ETHNICITY)
    if found is None:
        return Ethnicity.INVALID
    if not found:
        return Ethnicity.UNKNOWN
    return found.pop() if len(found) == 1 else Ethnicity.INVALID


def _omb_categories(codes: tuple[str, ...], categories: Mapping[str, _C]) -> set[_C] | None:
    """The distinct categories the codes name (UNK / ASKU skipped); None when any code is
    outside ``categories``."""
    found: set[_C] = set()
    for code in codes:
        if code in _UNKNOWN_CODES:
            continue
        category = categories.get(code)
        if category is None:
            return None
        found.add(category)
    return found
