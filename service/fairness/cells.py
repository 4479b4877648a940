"""Incremental counts for one attribute in one stratum, with cached derived values.

A cell holds one counter block per group present in the window. Adding or removing a
decision touches one group of the cell (``FacilityWindow._apply`` updates the counters in
place) and drops only that group's cached ``GroupRate``; the cell's ``ParityResult`` and rule
verdict are rebuilt lazily on the next read. What the hot path needs is kept ready:

- the group names in sorted order (changed only when a group enters or leaves the cell),
- the rates of the *sufficient* groups (the only ones the parity rule looks at), so that the
  common verdict "no gap of ``warn_difference`` between sufficient groups" is a max and a min,
- a memo of ``GroupRate`` values by their counts: a group's counts wander in a narrow range
  as the window slides, so most rebuilt rates are values seen before (``GroupRate`` is an
  immutable value; sharing one instance is indistinguishable from building a new one).
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable
from operator import itemgetter

from service.assessment import GroupRate, ParityResult
from service.fairness.config import Z_95, FairnessConfig
from service.fairness.decision import HEART_STRATA
from service.fairness.rules import INSUFFICIENT, OK, Verdict, missed_mace_verdict, parity_verdict
from service.fairness.stats import wilson_interval

# Bound on the GroupRate memo of one cell (entries); cleared when full.
_MEMO_LIMIT = 4096

_RateKey = tuple[str, int, int, int, int, int, int, float]


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
        "_getter",
        "_memo",
        "_missed",
        "_missed_known",
        "_parity",
        "_rates",
        "_stale",
        "_verdict",
        "attribute",
        "groups",
        "heart",
        "order",
        "stratum",
        "sufficient_rates",
        "values",
    )

    def __init__(self, attribute: str, stratum: str, config: FairnessConfig) -> None:
        self.attribute = attribute
        self.stratum = stratum
        self.heart = stratum in HEART_STRATA
        self.groups: dict[str, GroupCounts] = {}
        self.order: list[str] = []  # sorted(self.groups), kept up to date by the window
        # escalated / count of each group with at least min_group_count decisions
        self.sufficient_rates: dict[str, float] = {}
        self.values: dict[str, float] = {}  # escalated / count of every group
        self._config = config
        self._rates: dict[str, GroupRate] = {}
        self._stale: set[str] = set()  # groups whose GroupRate must be rebuilt
        # itemgetter over self.order (None: the group set changed since it was made)
        self._getter: Callable[[dict[str, GroupRate]], object] | None = None
        self._memo: dict[_RateKey, GroupRate] = {}
        self._parity: ParityResult | None = None
        self._verdict: Verdict | None = None
        self._missed: Verdict | None = None
        self._missed_known = False

    def add_group(self, group: str) -> GroupCounts:
        counts = self.groups[group] = GroupCounts()
        insort(self.order, group)
        self._getter = None
        return counts

    def drop_group(self, group: str) -> None:
        del self.groups[group]
        del self.values[group]
        self.order.remove(group)
        self._rates.pop(group, None)
        self._getter = None

    def changed(self, group: str, *, verdict: bool, outcome: bool) -> None:
        """Forget what was derived from ``group``'s counts (the counters are already updated;
        an empty group has been dropped). ``verdict``: the group is or was sufficient;
        ``outcome``: its MACE counts changed."""
        self._stale.add(group)
        self._parity = None
        if verdict:
            self._verdict = None
        if outcome:
            self._missed_known = False

    def parity(self) -> ParityResult:
        parity = self._parity
        if parity is None:
            rates = self._rates
            groups = self.groups
            for group in self._stale:
                counts = groups.get(group)
                if counts is not None:
                    rates[group] = self._group_rate(group, counts)
            self._stale.clear()
            order = self.order
            if len(order) >= 2:
                getter = self._getter
                if getter is None:
                    getter = self._getter = itemgetter(*order)
                built: tuple[GroupRate, ...] = getter(rates)  # type: ignore[assignment]
                values = self.values.values()
                top = max(values)
                bottom = min(values)
                # parity_difference / parity_ratio of stats.py, inlined (same operations)
                difference: float | None = top - bottom
                ratio = None if top == 0.0 else bottom / top
            else:
                built = tuple([rates[g] for g in order])
                difference = ratio = None
            # positional: about a third cheaper than keywords on the hot path
            parity = self._parity = ParityResult(
                self.attribute,
                self.stratum,
                difference,
                ratio,
                built,
                len(self.sufficient_rates) >= 2,
            )
        return parity

    def verdict(self) -> Verdict:
        """The escalation-parity rule's verdict for this cell (from counts, not rates)."""
        verdict = self._verdict
        if verdict is None:
            rates = self.sufficient_rates
            if len(rates) < 2:
                verdict = INSUFFICIENT
            elif not self.heart:
                verdict = OK
            else:
                values = rates.values()
                if max(values) - min(values) < self._config.warn_difference:
                    # what parity_verdict's _worst_gap returns before its pairwise loop
                    verdict = OK
                else:
                    triples = [(g, self.groups[g].escalated, self.groups[g].count) for g in rates]
                    verdict = parity_verdict(self.attribute, self.stratum, triples, self._config)
            self._verdict = verdict
        return verdict

    def missed_verdict(self) -> Verdict | None:
        """The missed-MACE rule's verdict over this cell's outcomes (None: too few MACE)."""
        if not self._missed_known:
            triples = [(g, c.missed, c.mace) for g, c in self.groups.items()]
            self._missed = missed_mace_verdict(self.attribute, triples, self._config)
            self._missed_known = True
        return self._missed

    def _group_rate(self, group: str, c: GroupCounts) -> GroupRate:
        key = (group, c.count, c.escalated, c.outcomes, c.mace, c.missed, c.pred_n, c.pred_sum)
        memo = self._memo
        rate = memo.get(key)
        if rate is None:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            rate = memo[key] = group_rate(group, c, self._config)
        return rate


def group_rate(group: str, c: GroupCounts, config: FairnessConfig) -> GroupRate:
    count = c.count
    escalated = c.escalated
    low, high = wilson_interval(escalated, count, Z_95)
    mace = c.mace
    fnr = fnr_low = fnr_high = None
    if mace:
        fnr = c.missed / mace
        fnr_low, fnr_high = wilson_interval(c.missed, mace, Z_95)
    outcomes = c.outcomes
    # positional, in GroupRate's field order: cheaper than keywords on the hot path
    return GroupRate(
        group,
        count,
        escalated,
        escalated / count,
        low,
        high,
        count >= config.min_group_count,
        outcomes,
        mace,
        fnr,
        c.missed,
        fnr_low,
        fnr_high,
        c.pred_sum / c.pred_n if c.pred_n else None,
        mace / outcomes if outcomes else None,
    )
