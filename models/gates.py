"""Promotion gates: checks on a version's recorded metrics before it may become ACTIVE."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PromotionGates:
    min_auroc: float = 0.75
    min_calibration_slope: float = 0.8
    max_calibration_slope: float = 1.2
    max_abs_calibration_intercept: float = 0.2
    min_worst_group_sensitivity: float = 0.9
    max_fnr_gap: float = 0.10
    max_worst_group_missed_mace_low: float = 0.01
    must_beat_heart_auroc: bool = True


@dataclass(frozen=True, slots=True)
class GateResult:
    name: str
    passed: bool
    value: float | None
    requirement: str


@dataclass(frozen=True, slots=True)
class PromotionReport:
    name: str
    version: str
    results: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def render(self) -> str:
        lines = [f"promotion of {self.name} {self.version}: {'PASS' if self.passed else 'REFUSED'}"]
        for r in self.results:
            value = "missing" if r.value is None else f"{r.value:.4f}"
            lines.append(f"  [{'ok' if r.passed else 'FAIL'}] {r.name}: {value} ({r.requirement})")
        return "\n".join(lines)


def _check(metrics: Mapping[str, float], key: str, ok: bool | None, requirement: str) -> GateResult:
    value = metrics.get(key)
    return GateResult(key, bool(ok) and value is not None, value, requirement)


def apply_gates(
    name: str, version: str, metrics: Mapping[str, float], gates: PromotionGates
) -> PromotionReport:
    """A missing metric fails its gate: no number, no promotion."""
    m = metrics

    def get(key: str) -> float | None:
        value = m.get(key)
        return None if value is None else float(value)

    auroc, slope, intercept = get("auroc"), get("calibration_slope"), get("calibration_intercept")
    sens, gap = get("worst_group_sensitivity"), get("fnr_gap")
    missed, heart = get("worst_group_missed_mace_low"), get("heart_auroc")
    results = [
        _check(m, "auroc", auroc is not None and auroc >= gates.min_auroc, f">= {gates.min_auroc}"),
        _check(
            m,
            "calibration_slope",
            slope is not None
            and gates.min_calibration_slope <= slope <= gates.max_calibration_slope,
            f"in [{gates.min_calibration_slope}, {gates.max_calibration_slope}]",
        ),
        _check(
            m,
            "calibration_intercept",
            intercept is not None and abs(intercept) <= gates.max_abs_calibration_intercept,
            f"|x| <= {gates.max_abs_calibration_intercept}",
        ),
        _check(
            m,
            "worst_group_sensitivity",
            sens is not None and sens >= gates.min_worst_group_sensitivity,
            f">= {gates.min_worst_group_sensitivity}",
        ),
        _check(
            m, "fnr_gap", gap is not None and gap <= gates.max_fnr_gap, f"<= {gates.max_fnr_gap}"
        ),
        _check(
            m,
            "worst_group_missed_mace_low",
            missed is not None and missed < gates.max_worst_group_missed_mace_low,
            f"< {gates.max_worst_group_missed_mace_low}",
        ),
    ]
    if gates.must_beat_heart_auroc:
        results.append(
            GateResult(
                "beats_heart_auroc",
                auroc is not None and heart is not None and auroc > heart,
                None if auroc is None or heart is None else auroc - heart,
                "auroc - heart_auroc > 0",
            )
        )
    return PromotionReport(name, version, tuple(results))
