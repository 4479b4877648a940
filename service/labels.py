"""Bounded label values for metrics, the fairness audit and the audit store.

Every value returned here comes from a fixed set: the enum values of ``AuditAttributes``,
the facility allow-list, ``"other"`` and ``"unknown"``. No identifier or free text can reach a
Prometheus label through this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fhir_adapters.features import AuditAttributes
from service.fairness.decision import RACE_SEX_SEPARATOR

FACILITY_OTHER = "other"  # a facility not on the allow-list
FACILITY_UNKNOWN = "unknown"  # the bundle named no facility

#: The audited attributes, in the order metrics and reports list them.
ATTRIBUTES: tuple[str, ...] = ("race", "ethnicity", "sex", "race_sex", "age_band")


def facility_label(facility: str | None, allow_list: Iterable[str]) -> str:
    if not facility:
        return FACILITY_UNKNOWN
    return facility if facility in frozenset(allow_list) else FACILITY_OTHER


def race_sex_label(race: str, sex: str) -> str:
    """The intersection label, e.g. ``black_or_african_american/female``: the same form the
    fairness audit uses. The separator never occurs in the enum values."""
    return f"{race}{RACE_SEX_SEPARATOR}{sex}"


@dataclass(frozen=True, slots=True)
class GroupLabels:
    facility: str
    race: str
    ethnicity: str
    sex: str
    age_band: str

    @property
    def race_sex(self) -> str:
        return race_sex_label(self.race, self.sex)

    def by_attribute(self) -> tuple[tuple[str, str], ...]:
        """``(attribute, group)`` for each audited attribute, in ``ATTRIBUTES`` order."""
        return (
            ("race", self.race),
            ("ethnicity", self.ethnicity),
            ("sex", self.sex),
            ("race_sex", self.race_sex),
            ("age_band", self.age_band),
        )


def group_labels(audit: AuditAttributes, allow_list: Iterable[str]) -> GroupLabels:
    return GroupLabels(
        facility=facility_label(audit.facility, allow_list),
        race=audit.race.value,
        ethnicity=audit.ethnicity.value,
        sex=audit.sex.value,
        age_band=audit.age_band.value,
    )
