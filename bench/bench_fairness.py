"""Cost of ``FairnessMonitor.record()`` per decision: p50 / p99 on a realistic stream (the
scenario tests' US-like group mix, one facility, window 1,000), next to the time Fairlearn's
``demographic_parity_difference`` takes over the same 1,000-row window. Not a test: run it by
hand, ``.venv/bin/python bench/bench_fairness.py [decisions]``.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fairlearn.metrics import demographic_parity_difference  # noqa: E402

from service.fairness import FairnessConfig, FairnessMonitor  # noqa: E402
from service.fairness.frames import window_frame  # noqa: E402
from tests.fairness.streams import stream  # noqa: E402

WINDOW = 1000


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return p50, p99


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    decisions = list(stream(0, WINDOW + n, biased_race="black_or_african_american"))
    # The stream's timestamps are in the past: the monitor's clock is the stream's last time,
    # so that views() does not expire the window.
    last = decisions[-1].at
    monitor = FairnessMonitor(FairnessConfig(window_count=WINDOW), clock=lambda: last)
    for decision in decisions[:WINDOW]:  # fill the window first: every later record evicts
        monitor.record(decision)
    samples: list[float] = []
    clock = time.perf_counter_ns
    record = monitor.record
    gc.collect()
    for decision in decisions[WINDOW:]:
        start = clock()
        record(decision)
        samples.append((clock() - start) / 1000.0)
    p50, p99 = _percentiles(samples)
    print(f"record(): {n} decisions at window {WINDOW}: p50 {p50:.1f} us, p99 {p99:.1f} us")

    (view,) = monitor.views(with_rows=True)
    frame = window_frame(view.rows)
    timings = []
    for _ in range(20):
        start = clock()
        demographic_parity_difference(
            frame["escalated"].to_numpy(),
            frame["escalated"].to_numpy(),
            sensitive_features=frame["race"].to_numpy(),
        )
        timings.append((clock() - start) / 1000.0)
    f50, f99 = _percentiles(timings)
    print(
        f"fairlearn demographic_parity_difference over the same {len(view.rows)}-row window: "
        f"p50 {f50 / 1000:.2f} ms, p99 {f99 / 1000:.2f} ms ({f50 / p50:.0f}x record() p50)"
    )


if __name__ == "__main__":
    main()
