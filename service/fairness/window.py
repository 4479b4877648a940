"""One facility's sliding window: a deque of decisions and incremental counts per cell.

Not thread-safe by itself; ``FairnessMonitor`` holds the one lock around every call.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from service.assessment import AuditStatus, FairnessAudit, ParityResult
from service.fairness.adjusted import AdjustedParity
from service.fairness.cells import Cell, GroupCounts
from service.fairness.config import FairnessConfig
from service.fairness.decision import (
    ATTRIBUTES,
    HEART_STRATA,
    OVERALL,
    PARITY_CONTEXT_ONLY,
    STRATA,
    Decision,
)
from service.fairness.rules import OK, Verdict


@dataclass(slots=True)
class _Entry:
    decision: Decision
    slots: list[tuple[Cell, str]]
    labels: tuple[str, ...]  # the decision's group per attribute, in ATTRIBUTES order
    outcome: bool | None = None


@dataclass(frozen=True, slots=True)
class WindowView:
    """A consistent copy of one facility's figures, taken under the monitor's lock."""

    facility: str
    size: int
    verdict: Verdict
    parity: tuple[ParityResult, ...]  # every attribute x stratum with data
    rows: tuple[tuple[Decision, bool | None], ...] = field(default=())


class FacilityWindow:
    def __init__(self, facility: str, config: FairnessConfig) -> None:
        self.facility = facility
        self._config = config
        self._entries: deque[_Entry] = deque()
        self._by_id: dict[str, _Entry] = {}
        self._cells = {(a, s): Cell(a, s, config) for a in ATTRIBUTES for s in STRATA}
        self._adjusted = AdjustedParity(self._cells, config)
        self._verdict: Verdict | None = None

    def __len__(self) -> int:
        return len(self._entries)

    # --- changes -------------------------------------------------------------------------
    def __contains__(self, audit_id: str) -> bool:
        return audit_id in self._by_id

    def add(self, decision: Decision) -> list[_Entry]:
        """Add a decision; evict by count, and by time relative to ``decision.at``. Returns
        what was evicted, oldest first, for :meth:`undo_add`."""
        if decision.audit_id in self._by_id:
            self.remove(decision.audit_id)
        labels = tuple([decision.group(attribute) for attribute in ATTRIBUTES])
        strata = decision.strata()
        cells = self._cells
        slots = [
            (cells[attribute, stratum], label)
            for attribute, label in zip(ATTRIBUTES, labels, strict=True)
            for stratum in strata
        ]
        entry = _Entry(decision, slots, labels)
        self._entries.append(entry)
        self._by_id[decision.audit_id] = entry
        self._apply(entry, +1)
        evicted: list[_Entry] = []
        while len(self._entries) > self._config.window_count:
            evicted.append(self._entries.popleft())
            self._evict(evicted[-1])
        evicted += self.evict_before(decision.at - self._config.window_seconds)
        return evicted

    def undo_add(self, audit_id: str, evicted: list[_Entry]) -> None:
        """Take back the decision ``add`` just added and put back what it evicted (with their
        outcomes), so the window is exactly as before the ``add``."""
        self.remove(audit_id)
        for entry in reversed(evicted):
            self._entries.appendleft(entry)
            self._by_id[entry.decision.audit_id] = entry
            self._apply(entry, +1)

    def evict_before(self, cutoff: float) -> list[_Entry]:
        """Drop decisions made before ``cutoff`` (epoch seconds), oldest first; returns them."""
        evicted: list[_Entry] = []
        while self._entries and self._entries[0].decision.at < cutoff:
            evicted.append(self._entries.popleft())
            self._evict(evicted[-1])
        return evicted

    def remove(self, audit_id: str) -> bool:
        entry = self._by_id.pop(audit_id, None)
        if entry is None:
            return False
        self._entries.remove(entry)
        self._apply(entry, -1)
        return True

    def set_outcome(self, audit_id: str, mace: bool) -> bool:
        """Join an outcome to a decision still in the window; a repeat replaces the first."""
        entry = self._by_id.get(audit_id)
        if entry is None:
            return False
        if entry.outcome is not None:
            self._apply_outcome(entry, -1)
        entry.outcome = mace
        self._apply_outcome(entry, +1)
        return True

    # --- reads ---------------------------------------------------------------------------
    def audit(self, decision: Decision) -> FairnessAudit:
        """The audit for one decision: the facility's status, and parity for each attribute
        overall and within the decision's HEART stratum (model-band strata are in the metrics
        and the report, not here: building them per request would cost a third more)."""
        verdict = self.verdict()
        parity = [
            self._cells[attribute, stratum].parity()
            for attribute in ATTRIBUTES
            for stratum in (OVERALL, decision.stratum)
        ]
        return FairnessAudit(
            status=verdict.status,
            rule=verdict.rule,
            groups_involved=verdict.groups,
            facility=self.facility,
            window_size=len(self._entries),
            escalation_definition=self._config.escalation_definition,
            parity=tuple(parity),
            counterfactual=None,
        )

    def verdict(self) -> Verdict:
        """The facility's status: the most severe evidenced gap within a stratum or in missed
        MACE; else OK when every attribute could be checked in at least one stratum; else
        INSUFFICIENT_DATA."""
        if self._verdict is None:
            self._verdict = self._compute_verdict()
        return self._verdict

    def view(self, *, with_rows: bool = False) -> WindowView:
        parity = tuple(cell.parity() for cell in self._cells.values() if cell.groups)
        rows = tuple((e.decision, e.outcome) for e in self._entries) if with_rows else ()
        return WindowView(self.facility, len(self._entries), self.verdict(), parity, rows)

    # --- internals -----------------------------------------------------------------------
    def _compute_verdict(self) -> Verdict:
        worst = OK
        unchecked: list[str] = []
        cells = self._cells
        adjusted = self._adjusted.verdicts()
        for attribute, adjusted_verdict in zip(ATTRIBUTES, adjusted, strict=True):
            missed = cells[attribute, OVERALL].missed_verdict()
            if missed is not None:
                worst = _worse(worst, missed)
            if attribute in PARITY_CONTEXT_ONLY:
                continue
            checked = False
            for stratum in HEART_STRATA:
                verdict = cells[attribute, stratum].verdict()
                if verdict.status is not AuditStatus.INSUFFICIENT_DATA:
                    checked = True
                worst = _worse(worst, verdict)
            worst = _worse(worst, adjusted_verdict)
            if not checked:
                unchecked.append(attribute)
        if worst.status >= AuditStatus.WARN or not unchecked:
            return worst
        return Verdict(
            AuditStatus.INSUFFICIENT_DATA,
            "insufficient_data: fewer than two groups with "
            f"{self._config.min_group_count} decisions in any HEART stratum for "
            + ", ".join(unchecked),
        )

    def _evict(self, entry: _Entry) -> None:
        del self._by_id[entry.decision.audit_id]
        self._apply(entry, -1)

    def _apply(self, entry: _Entry, sign: int) -> None:
        decision = entry.decision
        escalated = decision.escalated
        has_outcome = entry.outcome is not None
        minimum = self._config.min_group_count
        for cell, group in entry.slots:
            counts = cell.groups.get(group)
            if counts is None:
                counts = cell.add_group(group)
            counts.count += sign
            if escalated:
                counts.escalated += sign
            if has_outcome:
                _outcome(counts, entry, sign)
            count = counts.count
            if count == 0:
                cell.drop_group(group)
            else:
                cell.values[group] = counts.escalated / count
            rates = cell.sufficient_rates
            was_sufficient = group in rates
            if count >= minimum:
                rates[group] = counts.escalated / count
                cell.changed(group, verdict=True, outcome=has_outcome)
            else:
                if was_sufficient:
                    del rates[group]
                cell.changed(group, verdict=was_sufficient, outcome=has_outcome)
        self._adjusted.changed(decision.stratum, escalated, entry.labels, sign)
        self._verdict = None

    def _apply_outcome(self, entry: _Entry, sign: int) -> None:
        for cell, group in entry.slots:
            _outcome(cell.groups[group], entry, sign)
            cell.changed(group, verdict=False, outcome=True)
        self._verdict = None


def _outcome(counts: GroupCounts, entry: _Entry, sign: int) -> None:
    counts.outcomes += sign
    if entry.outcome:
        counts.mace += sign
        if not entry.decision.escalated:
            counts.missed += sign
    probability = entry.decision.mace_probability
    if probability is not None:
        counts.pred_n += sign
        counts.pred_sum = counts.pred_sum + sign * probability if counts.pred_n else 0.0


def _worse(current: Verdict, candidate: Verdict) -> Verdict:
    """The more severe of two verdicts; INSUFFICIENT_DATA of a cell never outranks OK here
    (the facility-level insufficiency is decided from the attributes checked)."""
    if candidate.status < AuditStatus.WARN:
        return current
    if (candidate.status, candidate.difference) > (current.status, current.difference):
        return candidate
    return current
