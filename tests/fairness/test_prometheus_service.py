"""A real Prometheus server scrapes a running triage service: the fleet recording rule,
computed from the service's counters, equals the service's own fairness gauge."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from triage.v1 import triage_pb2

from fairness.prometheus_server import PROMETHEUS, prometheus_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("prometheus") or os.path.exists(PROMETHEUS)),
        reason="the prometheus server binary is not installed (Debian package prometheus)",
    ),
]


def _without_scrape_labels(series: dict[Any, float]) -> dict[Any, float]:
    return {
        tuple(pair for pair in labels if pair[0] not in ("instance", "job")): value
        for labels, value in series.items()
    }


def test_recording_rule_matches_the_running_services_gauge(
    serve: Callable[..., Any], example_bundles: list[bytes], tmp_path: Path
) -> None:
    served = serve(http_metrics=True)
    served.engine.reload()
    assert served.engine.ready
    # Fewer decisions than the window holds, so the cumulative counters and the window agree.
    for bundle in example_bundles * 3:
        served.stub.Assess(
            triage_pb2.AssessRequest(fhir_bundle=bundle, request_id=str(uuid.uuid4())),
            timeout=10,
        )
    with prometheus_server([f"127.0.0.1:{served.metrics_port}"], tmp_path) as prom:
        recorded = prom.wait_for(
            'facility_attribute_group_stratum:triage_escalation_rate:cumulative{stratum="all"}'
        )
        gauge = _without_scrape_labels(prom.wait_for('triage_fairness_group_rate{stratum="all"}'))
        loaded = prom.wait_for("triage_model_loaded")
    assert list(loaded.values()) == [1.0]
    assert recorded, "the recording rule produced no series"
    assert set(recorded) == set(gauge)
    for labels, value in recorded.items():
        assert value == pytest.approx(gauge[labels], abs=1e-12)
