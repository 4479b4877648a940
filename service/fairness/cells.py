"""Incremental counts for one attribute in one stratum, with cached derived values.

A cell holds one counter block per group present in the window. Adding or removing a
decision touches one group of the cell and drops only that group's cached ``GroupRate``;
the cell's ``ParityResult`` and rule verdict are rebuilt lazily on the next read.
"""

from __future__ import annotations

from service.assessment import GroupRate, ParityResult
from service.fairness.config import Z_95, FairnessConfig
from service.fairness.rules import Verdict, missed_mace_verdict, parity_verdict
from service.fairness.stats import parity_difference, parity_ratio, wilson_interval


class GroupCounts:
    """Counters of one group in one cell. Integers only (but for the probability sum), so
    rates are exact quotients, bit-for-bit what Fairlearn computes from the same rows."""

    __slots__ = ("count", "escalated", "mace", "missed", "outcomes", "pred_n", "pred_sum")

    def __init__(self) -> None:
        self.count = 0
        self.escalated = 0
        self.outcomes = 0
        self.mace = 0
        self.missed = 0
        self.pred_n = 0
        self.pred_sum = 0.0


class Cell:
    __slots__ = (
        "_config",
        "_missed",
        "_missed_known",
        "_parity",
        "_rates",
        "_verdict",
        "attribute",
        "groups",
        "stratum",
    )

    def __init__(self, attribute: str, stratum: str, config: FairnessConfig) -> None:
        self.attribute = attribute
        self.stratum = stratum
        self.groups: dict[str, GroupCounts] = {}
        self._config = config
        self._rates: dict[str, GroupRate] = {}
        self._parity: ParityResult | None = None
        self._verdict: Verdict | None = None
        self._missed: Verdict | None = None
        self._missed_known = False

    def counts(self, group: str) -> GroupCounts:
        counts = self.groups.get(group)
        if counts is None:
            counts = self.groups[group] = GroupCounts()
        return counts

    def changed(self, group: str) -> None:
        """Forget what was derived from ``group``'s counts; drop the group when empty."""
        self._rates.pop(group, None)
        self._parity = None
        self._verdict = None
        self._missed_known = False
        counts = self.groups.get(group)
        if counts is not None and counts.count == 0:
            del self.groups[group]

    def parity(self) -> ParityResult:
        if self._parity is None:
            rates = tuple(self._rate(group) for group in sorted(self.groups))
            values = [r.rate for r in rates]
            two = len(values) >= 2
            self._parity = ParityResult(
                attribute=self.attribute,
                stratum=self.stratum,
                difference=parity_difference(values) if two else None,
                ratio=parity_ratio(values) if two else None,
                groups=rates,
                sufficient=sum(r.sufficient for r in rates) >= 2,
            )
        return self._parity

    def verdict(self) -> Verdict:
        """The escalation-parity rule's verdict for this cell (from counts, not rates)."""
        if self._verdict is None:
            minimum = self._config.min_group_count
            triples = [
                (g, c.escalated, c.count) for g, c in self.groups.items() if c.count >= minimum
            ]
            self._verdict = parity_verdict(self.attribute, self.stratum, triples, self._config)
        return self._verdict

    def missed_verdict(self) -> Verdict | None:
        """The missed-MACE rule's verdict over this cell's outcomes (None: too few MACE)."""
        if not self._missed_known:
            triples = [(g, c.missed, c.mace) for g, c in self.groups.items()]
            self._missed = missed_mace_verdict(self.attribute, triples, self._config)
            self._missed_known = True
        return self._missed

    def _rate(self, group: str) -> GroupRate:
        rate = self._rates.get(group)
        if rate is None:
            rate = self._rates[group] = group_rate(group, self.groups[group], self._config)
        return rate


def group_rate(group: str, c: GroupCounts, config: FairnessConfig) -> GroupRate:
    low, high = wilson_interval(c.escalated, c.count, Z_95)
    fnr = fnr_low = fnr_high = None
    if c.mace:
        fnr = c.missed / c.mace
        fnr_low, fnr_high = wilson_interval(c.missed, c.mace, Z_95)
    return GroupRate(
        group=group,
        count=c.count,
        escalated=c.escalated,
        rate=c.escalated / c.count,
        ci_low=low,
        ci_high=high,
        sufficient=c.count >= config.min_group_count,
        outcomes=c.outcomes,
        mace=c.mace,
        false_negative_rate=fnr,
        missed=c.missed,
        fnr_ci_low=fnr_low,
        fnr_ci_high=fnr_high,
        mean_predicted=c.pred_sum / c.pred_n if c.pred_n else None,
        observed_mace_rate=c.mace / c.outcomes if c.outcomes else None,
    )
