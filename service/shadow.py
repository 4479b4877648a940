"""Shadow scoring and the fairness check of ``ActivateShadow``.

A shadow candidate scores every live request after the active model has answered and its
record is committed; responses never change. Two fairness monitors are fed while a shadow is
set, on exactly the same requests: ``monitor`` with the candidate's decisions and ``paired``
with the active model's. Outcomes reported later are joined to both (by audit id), so the
per-group escalation rates, parity and missed-MACE rates compare like with like.

``check_promotion`` is the gate of ``ActivateShadow``: the candidate is refused when its
worst-group sensitivity (registry manifest, and live outcomes where every compared group has
enough MACE outcomes) or its worst within-stratum escalation parity difference is worse than the
active model's by more than the tolerance.

Prometheus (read at scrape time; label values from the fixed group sets only)::

    triage_shadow_fairness_parity_difference{model, facility, attribute, stratum}
    triage_shadow_fairness_group_rate{model, facility, attribute, group, stratum}
    triage_shadow_fairness_false_negative_rate{model, facility, attribute, group}
    triage_shadow_fairness_mace_count{model, facility, attribute, group}

``model`` is ``shadow`` (the candidate) or ``active`` (the active model on the same requests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.fairness import FairnessConfig, FairnessMonitor
from service.fairness.decision import HEART_STRATA, OVERALL, PARITY_CONTEXT_ONLY
from service.fairness.window import WindowView

if TYPE_CHECKING:
    from service.engine import ServingModel

WORST_GROUP_SENSITIVITY = "worst_group_sensitivity"


@dataclass(slots=True)
class ShadowState:
    """One shadow candidate and what it has seen since it was set."""

    model: ServingModel
    monitor: FairnessMonitor  # the candidate's decisions
    paired: FairnessMonitor  # the active model's decisions on the same requests
    started_at: float = field(default_factory=time.time)
    scored: int = 0
    disagreements: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, model: ServingModel, config: FairnessConfig) -> ShadowState:
        return cls(model, FairnessMonitor(config), FairnessMonitor(config))

    def count(self, disagrees: bool) -> None:
        with self._lock:
            self.scored += 1
            self.disagreements += int(disagrees)

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.scored, self.disagreements


# --- fairness figures ---------------------------------------------------------------------------
def worst_within_stratum_parity(views: Sequence[WindowView]) -> float | None:
    """The largest escalation parity difference within a HEART stratum, over facilities and
    attributes, taken only over the groups that meet the minimum count: a promotion gate must
    not turn on one patient's rate (clinical.md: no difference without a minimum count)."""
    values = []
    for v in views:
        for p in v.parity:
            if p.stratum not in HEART_STRATA or p.attribute in PARITY_CONTEXT_ONLY:
                continue
            rates = [g.rate for g in p.groups if g.sufficient]
            if len(rates) >= 2:
                values.append(max(rates) - min(rates))
    return max(values) if values else None


def group_sensitivity(views: Sequence[WindowView], min_mace: int) -> dict[str, float]:
    """``facility/attribute=group`` -> 1 - false-negative rate, for groups with at least
    ``min_mace`` MACE outcomes in the window."""
    out: dict[str, float] = {}
    for v in views:
        for p in v.parity:
            if p.stratum != OVERALL:
                continue
            for g in p.groups:
                if g.false_negative_rate is not None and g.mace >= min_mace:
                    out[f"{v.facility}/{p.attribute}={g.group}"] = 1.0 - g.false_negative_rate
    return out


def summary(views: Sequence[WindowView], min_mace: int) -> dict[str, Any]:
    """JSON-able per-group escalation and missed-MACE rates of one monitor."""
    facilities: dict[str, Any] = {}
    for v in views:
        groups: list[dict[str, Any]] = []
        for p in v.parity:
            for g in p.groups:
                groups.append(
                    {
                        "attribute": p.attribute,
                        "stratum": p.stratum,
                        "group": g.group,
                        "count": g.count,
                        "escalation_rate": g.rate,
                        "mace": g.mace,
                        "missed_mace_rate": g.false_negative_rate,
                    }
                )
        facilities[v.facility] = {
            "window_size": v.size,
            "parity": [
                {"attribute": p.attribute, "stratum": p.stratum, "difference": p.difference}
                for p in v.parity
            ],
            "groups": groups,
        }
    sensitivity = group_sensitivity(views, min_mace)
    return {
        "facilities": facilities,
        "worst_within_stratum_parity_difference": worst_within_stratum_parity(views),
        "worst_group_sensitivity": min(sensitivity.values()) if sensitivity else None,
    }


# --- the promotion check -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Check:
    name: str
    active: float | None
    candidate: float | None
    passed: bool
    note: str


@dataclass(frozen=True, slots=True)
class PromotionCheck:
    version: str
    tolerance: float
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if not c.passed)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "checks": [
                {
                    "name": c.name,
                    "active": c.active,
                    "candidate": c.candidate,
                    "passed": c.passed,
                    "note": c.note,
                }
                for c in self.checks
            ],
        }

    def render(self) -> str:
        """One line, aggregate figures only (safe for a status message and a log)."""

        def num(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.4f}"

        parts = [
            f"{c.name}={'ok' if c.passed else 'FAIL'}"
            f"(active {num(c.active)}, candidate {num(c.candidate)})"
            for c in self.checks
        ]
        return f"tolerance {self.tolerance}: " + "; ".join(parts)


def check_promotion(
    *,
    version: str,
    active_metrics: Mapping[str, float],
    candidate_metrics: Mapping[str, float],
    active_views: Sequence[WindowView],
    shadow_views: Sequence[WindowView],
    tolerance: float,
    min_mace: int,
) -> PromotionCheck:
    """Compare the candidate with the active model (higher sensitivity and lower parity
    difference are better). A candidate without a recorded worst-group sensitivity is refused
    (no number, no promotion); live figures that do not exist yet for both models are noted
    and not held against the candidate."""
    checks: list[Check] = []

    a, c = (
        active_metrics.get(WORST_GROUP_SENSITIVITY),
        candidate_metrics.get(WORST_GROUP_SENSITIVITY),
    )
    if c is None:
        checks.append(Check("manifest_worst_group_sensitivity", a, c, False, "candidate has none"))
    elif a is None:
        checks.append(Check("manifest_worst_group_sensitivity", a, c, True, "active has none"))
    else:
        checks.append(
            Check("manifest_worst_group_sensitivity", a, c, c >= a - tolerance, "registry")
        )

    active_sens = group_sensitivity(active_views, min_mace)
    shadow_sens = group_sensitivity(shadow_views, min_mace)
    common = sorted(set(active_sens) & set(shadow_sens))
    if common:
        wa = min(active_sens[k] for k in common)
        wc = min(shadow_sens[k] for k in common)
        checks.append(
            Check("live_worst_group_sensitivity", wa, wc, wc >= wa - tolerance, "shadow outcomes")
        )
    else:
        checks.append(
            Check("live_worst_group_sensitivity", None, None, True, "not enough outcomes yet")
        )

    pa = worst_within_stratum_parity(active_views)
    pc = worst_within_stratum_parity(shadow_views)
    if pa is None or pc is None:
        checks.append(
            Check("within_stratum_parity_difference", pa, pc, True, "not enough decisions yet")
        )
    else:
        checks.append(
            Check("within_stratum_parity_difference", pa, pc, pc <= pa + tolerance, "shadow")
        )
    return PromotionCheck(version, tolerance, tuple(checks))


# --- Prometheus --------------------------------------------------------------------------------
class ShadowCollector(Collector):
    """The shadow fairness gauges; empty while no shadow is set."""

    def __init__(self, source: Callable[[], ShadowState | None]) -> None:
        self._source = source

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from _families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = _families()
        difference, rate, fnr, mace = families
        state = self._source()
        if state is not None:
            for model, monitor in (("shadow", state.monitor), ("active", state.paired)):
                for view in monitor.views():
                    for p in view.parity:
                        if p.difference is not None:
                            difference.add_metric(
                                [model, view.facility, p.attribute, p.stratum], p.difference
                            )
                        for g in p.groups:
                            labels = [model, view.facility, p.attribute, g.group]
                            rate.add_metric([*labels, p.stratum], g.rate)
                            if p.stratum == OVERALL and g.false_negative_rate is not None:
                                fnr.add_metric(labels, g.false_negative_rate)
                                mace.add_metric(labels, float(g.mace))
        yield from families


def _families() -> tuple[GaugeMetricFamily, ...]:
    return (
        GaugeMetricFamily(
            "triage_shadow_fairness_parity_difference",
            "Escalation parity difference while a shadow is set (model: shadow or active).",
            labels=["model", "facility", "attribute", "stratum"],
        ),
        GaugeMetricFamily(
            "triage_shadow_fairness_group_rate",
            "Escalation rate of one group while a shadow is set (model: shadow or active).",
            labels=["model", "facility", "attribute", "group", "stratum"],
        ),
        GaugeMetricFamily(
            "triage_shadow_fairness_false_negative_rate",
            "Missed MACE among the group's MACE outcomes while a shadow is set.",
            labels=["model", "facility", "attribute", "group"],
        ),
        GaugeMetricFamily(
            "triage_shadow_fairness_mace_count",
            "MACE outcomes of the group while a shadow is set.",
            labels=["model", "facility", "attribute", "group"],
        ),
    )
