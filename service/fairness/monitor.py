"""The per-facility fairness monitor the engine calls on every assessment.

One lock guards every window: ``record`` costs about 0.2 ms (incremental counts and cached
rates, never a Fairlearn call; bench/bench_fairness.py), and readers (the Prometheus
collector, the background reporter) copy what they need under the same lock and work outside
it. The engine holds the lock across its audit-store write (``recording``), a fraction of a
millisecond, so readers never see an unrecorded decision.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from service.assessment import FairnessAudit
from service.fairness.config import FairnessConfig
from service.fairness.decision import Decision
from service.fairness.window import FacilityWindow, WindowView

if TYPE_CHECKING:
    from service.fairness.prometheus import FairnessCollector


class FairnessMonitor:
    def __init__(self, config: FairnessConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, FacilityWindow] = {}

    def record(self, decision: Decision) -> FairnessAudit:
        """Add the decision to its facility's window and audit it against that window."""
        with self._lock:
            window = self._window(decision.facility)
            window.add(decision)
            return window.audit(decision)

    @contextmanager
    def recording(self, decision: Decision) -> Iterator[FairnessAudit]:
        """Add the decision and yield its audit, holding the lock until the caller's block
        ends: the caller makes the decision durable inside the block, so no other request,
        scrape or report ever counts a decision that was not recorded. If the block raises,
        the window is put back exactly as it was (the decision removed, what it evicted
        restored with its outcome)."""
        with self._lock:
            window = self._window(decision.facility)
            if decision.audit_id in window:
                raise ValueError("audit_id already in the window")
            evicted = window.add(decision)
            try:
                yield window.audit(decision)
            except BaseException:
                window.undo_add(decision.audit_id, evicted)
                raise

    def discard(self, audit_id: str) -> bool:
        """Take back a decision that could not be persisted. True when it was found."""
        with self._lock:
            return any(w.remove(audit_id) for w in self._windows.values())

    def record_outcome(self, audit_id: str, mace: bool) -> bool:
        """Join a MACE outcome to a decision. False when the decision has left every window
        (it still counts in the durable store and the outcome counters, not here)."""
        with self._lock:
            return any(w.set_outcome(audit_id, mace) for w in self._windows.values())

    def restore(self, rows: Iterable[tuple[Decision, bool | None]]) -> int:
        """Refill the windows at start-up from the audit store, oldest first."""
        restored = 0
        with self._lock:
            for decision, outcome in rows:
                window = self._window(decision.facility)
                window.add(decision)
                if outcome is not None:
                    window.set_outcome(decision.audit_id, outcome)
                restored += 1
            self._evict_expired()
        return restored

    def views(self, *, with_rows: bool = False) -> list[WindowView]:
        """A consistent copy of every facility's figures (expired decisions dropped first)."""
        with self._lock:
            self._evict_expired()
            return [w.view(with_rows=with_rows) for w in self._windows.values()]

    def collector(self) -> FairnessCollector:
        """The Prometheus collector of the fairness gauges (read at scrape time)."""
        from service.fairness.prometheus import FairnessCollector

        return FairnessCollector(self)

    def _window(self, facility: str) -> FacilityWindow:
        window = self._windows.get(facility)
        if window is None:
            window = self._windows[facility] = FacilityWindow(facility, self.config)
        return window

    def _evict_expired(self) -> None:
        cutoff = self._clock() - self.config.window_seconds
        for window in self._windows.values():
            window.evict_before(cutoff)
