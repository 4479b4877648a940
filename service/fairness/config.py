"""The fairness audit's configuration: a value object built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.settings import Settings

# Two-sided 95% normal quantile: the Wilson intervals shown per group.
Z_95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class FairnessConfig:
    """How decisions are windowed and when a gap becomes WARN or ALERT.

    ``evidence_z`` is the normal quantile of the Newcombe interval for the difference of two
    group rates that must exclude zero before a gap counts as evidence. It is stricter than the
    95% shown per group on purpose: with 5 attributes x 7 strata x many group pairs checked after
    every decision, a 95% test would raise false alarms on a fair stream (see docs/fairness.md).
    """

    escalation_max_esi: int = 2
    window_count: int = 1000
    window_seconds: float = 7 * 24 * 3600.0
    min_group_count: int = 30
    min_mace_count: int = 20
    warn_difference: float = 0.10
    alert_difference: float = 0.20
    evidence_z: float = 4.5
    report_interval_s: float = 60.0
    report_n_boot: int = 50
    report_seed: int = 0

    def __post_init__(self) -> None:
        if self.window_count < 1:
            raise ValueError("window_count must be at least 1")
        if self.window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        if self.min_group_count < 1 or self.min_mace_count < 1:
            raise ValueError("minimum counts must be at least 1")
        if not 0 <= self.warn_difference <= self.alert_difference <= 1:
            raise ValueError("need 0 <= warn_difference <= alert_difference <= 1")
        if self.evidence_z <= 0:
            raise ValueError("evidence_z must be positive")
        if self.report_interval_s <= 0 or self.report_n_boot < 1:
            raise ValueError("report_interval_s and report_n_boot must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> FairnessConfig:
        return cls(
            escalation_max_esi=settings.escalation_max_esi,
            window_count=settings.fairness_window_count,
            window_seconds=settings.fairness_window_seconds,
            min_group_count=settings.fairness_min_group_count,
            warn_difference=settings.fairness_warn_difference,
            alert_difference=settings.fairness_alert_difference,
            report_interval_s=settings.fairness_report_interval_s,
            report_n_boot=settings.fairness_report_n_boot,
            min_mace_count=settings.fairness_min_mace_count,
        )

    @property
    def escalation_definition(self) -> str:
        return f"band == HIGH or esi_level <= {self.escalation_max_esi}"

    def is_escalated(self, band: str, esi_level: int) -> bool:
        """Escalation as audited: the band is HIGH or the ESI level is at most the maximum."""
        return band == "high" or esi_level <= self.escalation_max_esi
