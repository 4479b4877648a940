"""The risk-adjusted parity rule (``rules.adjusted_verdict``), kept up to date incrementally.

``adjusted_verdict`` compares every group with everyone else in the same HEART band, so one
decision moves the figures of every group of every attribute. Recomputing them all costs
about as much as the rest of ``record()`` together; this keeps, per attribute and group, the
last exact result and a proven *skip limit*: how many further window changes (additions or
removals) cannot bring a group whose gap was below ``warn_difference`` up to it.

While a group's own counts stay the same, one change of another decision in band ``s`` moves
that group's "rest" rate in ``s`` by at most ``1 / r`` (``r``: the smaller of the rest's
counts before and after). The adjusted difference is a weighted mean of the per-band
differences (weights summing to 1), so after ``K`` changes it has moved by at most
``K / (r_min - K)``, ``r_min`` the group's smallest rest count when last computed. A group
whose difference was ``|d| < warn`` is therefore still below it while
``K / (r_min - K) <= warn - |d| - 1e-9``. Groups at or above the threshold, groups whose own
counts changed and groups with an empty rest in one of their bands are recomputed exactly, with
the same function (``rules.adjusted_group_verdict``) and the same operands as the batch rule,
so the verdict is identical to ``adjusted_verdict`` over the window.
"""

from __future__ import annotations

import math
import sys

from service.fairness.cells import Cell
from service.fairness.config import FairnessConfig
from service.fairness.decision import ATTRIBUTES, HEART_STRATA
from service.fairness.rules import OK, Part, Verdict, adjusted_group_verdict

_NEVER = sys.maxsize
_MARGIN = 1e-9  # far above the rounding error of the sums


class _Attribute:
    __slots__ = ("budgets", "cells", "dirty", "limit", "limits", "own", "verdict", "verdicts")

    def __init__(self, cells: tuple[Cell, ...]) -> None:
        self.cells = cells  # this attribute's cells of the HEART bands, in HEART order
        self.limits: dict[str, int] = {}  # group -> last step count its result holds for
        self.verdicts: dict[str, Verdict] = {}  # groups whose rule fires
        self.dirty: set[str] = set()
        # group -> [steps when computed, slack, smallest rest count, weight, own changes since]
        # for groups below the threshold whose result may be carried over own changes
        self.budgets: dict[str, list[float]] = {}
        self.own: set[str] = set()  # groups with own changes since the last verdict
        self.limit = -1  # min(limits): while steps <= limit and nothing dirty, verdict holds
        self.verdict: Verdict = OK


class AdjustedParity:
    """Incremental ``adjusted_verdict`` per attribute over one facility's HEART-band cells."""

    def __init__(self, cells: dict[tuple[str, str], Cell], config: FairnessConfig) -> None:
        self._config = config
        self._steps = 0
        self._band_index = {band: i for i, band in enumerate(HEART_STRATA)}
        self._totals = [[0, 0] for _ in HEART_STRATA]  # escalated, count per HEART band
        self._attributes = [
            (a, _Attribute(tuple(cells[a, s] for s in HEART_STRATA))) for a in ATTRIBUTES
        ]

    def changed(self, band: str, escalated: bool, labels: tuple[str, ...], sign: int) -> None:
        """One decision of HEART ``band`` with group ``labels`` (in ATTRIBUTES order) was
        added (``sign`` +1) or removed (-1); the cells' counters are already updated."""
        self._steps += 1
        index = self._band_index[band]
        totals = self._totals[index]
        totals[1] += sign
        if escalated:
            totals[0] += sign
        total_n = totals[1]
        for (_, state), label in zip(self._attributes, labels, strict=True):
            counts = state.cells[index].groups.get(label)
            budget = state.budgets.get(label)
            if (
                budget is None
                or counts is None  # the group's part in this band disappeared
                or (sign > 0 and counts.count == 1)  # ... or appeared
                or total_n <= counts.count  # the band's rest is empty
            ):
                state.dirty.add(label)
            else:
                budget[4] += 1
                state.own.add(label)

    def verdicts(self) -> list[Verdict]:
        """``adjusted_verdict`` of each attribute, in ATTRIBUTES order."""
        return [self._verdict(attribute, state) for attribute, state in self._attributes]

    def _verdict(self, attribute: str, state: _Attribute) -> Verdict:
        steps = self._steps
        dirty = state.dirty
        own = state.own
        if not dirty and not own and steps <= state.limit:
            return state.verdict
        limits = state.limits
        if own:
            budgets = state.budgets
            for group in own:
                if group not in dirty and not self._carry(budgets[group], limits, group):
                    dirty.add(group)
            own.clear()
        if steps > min(limits.values(), default=_NEVER):
            dirty.update(g for g, limit in limits.items() if steps > limit)
        for group in dirty:
            self._recompute(attribute, state, group)
        dirty.clear()
        state.limit = min(limits.values(), default=_NEVER)
        state.verdict = self._combine(state)
        return state.verdict

    def _carry(self, budget: list[float], limits: dict[str, int], group: str) -> bool:
        """Whether a group's result below the threshold still holds after ``k`` changes of
        its own counts (each moves the difference by at most ``2 / (weight - k)``) besides the
        changes of the rest; if so its skip limit shrinks by what the own changes used."""
        computed, slack, r_min, weight, k = budget
        room = weight - 1.0 - k
        if room <= 0.0:
            return False
        left = slack - 2.0 * k / room
        if left <= 0.0:
            return False
        limit = int(computed) + math.floor(left * r_min / (1.0 + left)) - 1
        if self._steps > limit:
            return False
        limits[group] = limit
        return True

    def _recompute(self, attribute: str, state: _Attribute, group: str) -> None:
        steps = self._steps
        parts: list[Part] = []
        present = False
        exact_only = False  # a band where the rest is empty: inclusion may change any time
        for cell, (total_e, total_n) in zip(state.cells, self._totals, strict=True):
            counts = cell.groups.get(group)
            if counts is None:
                continue
            present = True
            n = counts.count
            if total_n > n:
                e = counts.escalated
                parts.append((e, n, total_e - e, total_n - n))
            else:
                exact_only = True
        state.verdicts.pop(group, None)
        state.budgets.pop(group, None)
        if not present:
            state.limits.pop(group, None)
            return
        config = self._config
        # adjusted_group_verdict's first steps, in the same operations and order
        weight = 0
        numerator: float = 0
        for e, n, re, rn in parts:
            weight += n
            numerator += e - n * re / rn
        if weight < config.min_group_count:
            # while every rest is non-empty, weight only changes with the group's own counts
            state.limits[group] = steps if exact_only else _NEVER
            return
        slack = config.warn_difference - abs(numerator / weight) - _MARGIN
        if exact_only or slack <= 0.0:
            verdict = adjusted_group_verdict(attribute, group, parts, config)
            if verdict is not None:
                state.verdicts[group] = verdict
            state.limits[group] = steps
            return
        r_min = min([rn for _, _, _, rn in parts])
        # the largest K with K / (r_min - K) <= slack, less one
        state.limits[group] = steps + max(0, math.floor(slack * r_min / (1.0 + slack)) - 1)
        state.budgets[group] = [steps, slack, r_min, weight, 0]

    def _combine(self, state: _Attribute) -> Verdict:
        verdicts = state.verdicts
        if not verdicts:
            return OK
        if len(verdicts) == 1:
            return next(iter(verdicts.values()))
        # adjusted_verdict's order: first appearance over the HEART bands, in each band's
        # group order, among bands where the group's rest is non-empty (ties keep the first)
        ordered: dict[str, Verdict] = {}
        for cell, (_, total_n) in zip(state.cells, self._totals, strict=True):
            for group, counts in cell.groups.items():
                if group in verdicts and group not in ordered and total_n > counts.count:
                    ordered[group] = verdicts[group]
        worst = OK
        for verdict in ordered.values():
            if (verdict.status, verdict.difference) > (worst.status, worst.difference):
                worst = verdict
        return worst
