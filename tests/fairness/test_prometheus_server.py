"""A real Prometheus scrapes the fairness collector plus the counters, and the cumulative
recording rule agrees with the service's own gauge (the real-service test reuses this)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from fairness.prometheus_server import PROMETHEUS, prometheus_server
from fairness.streams import stream
from service.fairness import ATTRIBUTES, FairnessConfig, FairnessMonitor

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("prometheus") or os.path.exists(PROMETHEUS)),
        reason="the prometheus server binary is not installed",
    ),
]


def test_recording_rule_matches_the_service_gauge(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    monitor = FairnessMonitor(FairnessConfig(), clock=lambda: 1_700_000_000.0 + 300 * 60)
    registry.register(monitor.collector())
    counter = Counter(
        "triage_assessments_by_group",
        "Assessments by group.",
        ["facility", "attribute", "group", "stratum", "escalated"],
        registry=registry,
    )
    for decision in stream(7, 300):  # fewer than the window: cumulative == window
        monitor.record(decision)
        for attribute in ATTRIBUTES:
            counter.labels(
                decision.facility,
                attribute,
                decision.group(attribute),
                decision.stratum,
                str(decision.escalated).lower(),
            ).inc()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        port = server.server_address[1]
        with prometheus_server([f"127.0.0.1:{port}"], tmp_path) as prom:
            recorded = prom.wait_for(
                'facility_attribute_group_stratum:triage_escalation_rate:cumulative{stratum="all"}'
            )
            gauge = prom.wait_for('triage_fairness_group_rate{stratum="all"}')
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    gauge = {tuple(p for p in k if p[0] not in ("instance", "job")): v for k, v in gauge.items()}
    assert recorded
    assert set(recorded) == set(gauge)
    for labels, value in recorded.items():
        assert value == pytest.approx(gauge[labels], abs=1e-12)
