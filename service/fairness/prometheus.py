"""The fairness gauges as a custom prometheus_client Collector.

``collect()`` runs at scrape time: it copies every facility's figures under the monitor's lock
and turns them into gauge families, so a request pays nothing for these metrics. Label values
come only from the fixed group sets (``decision.GROUPS``), the fixed strata and the bounded
facility label the caller passes in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.fairness.decision import OVERALL
from service.fairness.window import WindowView

_STRATUM_LABELS = ["facility", "attribute", "stratum"]
_GROUP_LABELS = ["facility", "attribute", "group", "stratum"]
_FNR_LABELS = ["facility", "attribute", "group"]


class ViewSource(Protocol):
    def views(self, *, with_rows: bool = False) -> list[WindowView]: ...


class FairnessCollector(Collector):
    def __init__(self, source: ViewSource) -> None:
        self._source = source

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Describing (rather than collecting) at registration keeps registration free of a
        # snapshot and lets the registry detect name clashes.
        yield from _families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = _families()
        (difference, ratio, rate, ci_low, ci_high, count, fnr, mace, status) = families
        for view in self._source.views():
            facility = view.facility
            status.add_metric([facility], float(view.verdict.status))
            for parity in view.parity:
                key = [facility, parity.attribute, parity.stratum]
                if parity.difference is not None:
                    difference.add_metric(key, parity.difference)
                if parity.ratio is not None:
                    ratio.add_metric(key, parity.ratio)
                for g in parity.groups:
                    labels = [facility, parity.attribute, g.group, parity.stratum]
                    rate.add_metric(labels, g.rate)
                    ci_low.add_metric(labels, g.ci_low)
                    ci_high.add_metric(labels, g.ci_high)
                    count.add_metric(labels, float(g.count))
                    if parity.stratum == OVERALL and g.false_negative_rate is not None:
                        fnr.add_metric([facility, parity.attribute, g.group], g.false_negative_rate)
                        mace.add_metric([facility, parity.attribute, g.group], float(g.mace))
        yield from families


def _families() -> tuple[GaugeMetricFamily, ...]:
    return (
        GaugeMetricFamily(
            "triage_fairness_parity_difference",
            "Demographic parity difference of escalation (max - min group rate) in the window.",
            labels=_STRATUM_LABELS,
        ),
        GaugeMetricFamily(
            "triage_fairness_parity_ratio",
            "Demographic parity ratio of escalation (min / max group rate) in the window.",
            labels=_STRATUM_LABELS,
        ),
        GaugeMetricFamily(
            "triage_fairness_group_rate",
            "Escalation rate of one group in the window.",
            labels=_GROUP_LABELS,
        ),
        GaugeMetricFamily(
            "triage_fairness_group_rate_ci_low",
            "Lower bound of the Wilson 95% interval of the group's escalation rate.",
            labels=_GROUP_LABELS,
        ),
        GaugeMetricFamily(
            "triage_fairness_group_rate_ci_high",
            "Upper bound of the Wilson 95% interval of the group's escalation rate.",
            labels=_GROUP_LABELS,
        ),
        GaugeMetricFamily(
            "triage_fairness_group_rate_count",
            "Decisions of the group in the window.",
            labels=_GROUP_LABELS,
        ),
        GaugeMetricFamily(
            "triage_fairness_false_negative_rate",
            "Missed MACE (not escalated) among the group's MACE outcomes in the window.",
            labels=_FNR_LABELS,
        ),
        GaugeMetricFamily(
            "triage_fairness_mace_count",
            "MACE outcomes of the group in the window (the false-negative rate's denominator).",
            labels=_FNR_LABELS,
        ),
        GaugeMetricFamily(
            "triage_fairness_audit_status",
            "Fairness audit status: 0 OK, 1 INSUFFICIENT_DATA, 2 WARN, 3 ALERT.",
            labels=["facility"],
        ),
    )
