"""The background Fairlearn report: every ``report_interval_s`` a full bootstrapped
MetricFrame audit of each facility's window, kept as a JSON-able dict for
``rpc GetFairnessReport``.

The windows are copied under the monitor's lock; Fairlearn runs outside it, in this thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from service.fairness.config import FairnessConfig
from service.fairness.decision import ATTRIBUTES
from service.fairness.frames import CI_QUANTILES, JsonDict, attribute_report, window_frame
from service.fairness.monitor import FairnessMonitor

logger = logging.getLogger(__name__)


class FairnessReporter:
    def __init__(
        self,
        monitor: FairnessMonitor,
        config: FairnessConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._monitor = monitor
        self._config = config
        self._clock = clock
        self._stop = threading.Event()
        self._reported = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._latest: JsonDict = {"generated_at": None, "facilities": {}}

    def start(self) -> FairnessReporter:
        """Start the thread: one report at once, then one every interval."""
        if self._thread is not None:
            raise RuntimeError("the fairness reporter is already started")
        self._thread = threading.Thread(target=self._run, name="fairness-reporter", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to stop and wait for it (it finishes the report under way)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def latest(self) -> JsonDict:
        """The most recent report (``generated_at`` None before the first one)."""
        with self._lock:
            return self._latest

    def wait_for_report(self, timeout: float | None = None) -> bool:
        """Block until the first report exists (True) or ``timeout`` passes (False)."""
        return self._reported.wait(timeout)

    def run_once(self) -> JsonDict:
        """Build a report now, keep it as ``latest()`` and return it."""
        started = time.perf_counter()
        facilities: JsonDict = {}
        for view in self._monitor.views(with_rows=True):
            entry: JsonDict = {
                "window_size": view.size,
                "status": view.verdict.status.name,
                "rule": view.verdict.rule,
                "groups_involved": list(view.verdict.groups),
            }
            if view.rows:
                frame = window_frame(view.rows)
                entry["attributes"] = {
                    attribute: attribute_report(
                        frame, attribute, self._config.report_n_boot, self._config.report_seed
                    )
                    for attribute in ATTRIBUTES
                }
            facilities[view.facility] = entry
        report: JsonDict = {
            "generated_at": datetime.fromtimestamp(self._clock(), UTC).isoformat(),
            "duration_s": round(time.perf_counter() - started, 3),
            "escalation_definition": self._config.escalation_definition,
            "n_boot": self._config.report_n_boot,
            "ci_quantiles": list(CI_QUANTILES),
            "window_count": self._config.window_count,
            "window_seconds": self._config.window_seconds,
            "facilities": facilities,
        }
        with self._lock:
            self._latest = report
        self._reported.set()
        return report

    def _run(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:
                # Keep the last good report; the next period tries again. The exception
                # text carries no patient data (the frames hold group labels only).
                logger.exception("fairness report failed")
            if self._stop.wait(self._config.report_interval_s):
                return
