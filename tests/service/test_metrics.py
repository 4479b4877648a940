"""The non-fairness Prometheus metrics: names, bounded labels, the HTTP endpoint."""

from __future__ import annotations

import socket
import time
import urllib.request

from service.assessment import ModelRef
from service.labels import GroupLabels
from service.metrics import STAGES, Metrics

LABELS = GroupLabels("other", "black_or_african_american", "unknown", "female", "45-64")


def test_each_metric_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.record_audit_store_failure()
    assert a.registry.get_sample_value("triage_audit_store_failures_total") == 1.0
    assert b.registry.get_sample_value("triage_audit_store_failures_total") == 0.0


def test_assessment_counts_by_facility_band_and_every_attribute() -> None:
    m = Metrics()
    m.record_assessment(LABELS, "moderate", "low", True)
    assert (
        m.registry.get_sample_value(
            "triage_assessments_total",
            {"facility": "other", "band": "moderate", "escalated": "true"},
        )
        == 1.0
    )
    race_sex = m.registry.get_sample_value(
        "triage_assessments_by_group_total",
        {
            "facility": "other",
            "attribute": "race_sex",
            "group": "black_or_african_american/female",
            "stratum": "low",
            "escalated": "true",
        },
    )
    assert race_sex == 1.0


def test_outcomes_errors_and_stage_latency() -> None:
    m = Metrics()
    m.record_outcome(LABELS, True, "low")
    m.record_error("INVALID_ARGUMENT", "not_json")
    for stage in STAGES:
        m.observe_stage(stage, 0.0001)
    get = m.registry.get_sample_value
    assert (
        get(
            "triage_outcomes_total",
            {
                "facility": "other",
                "attribute": "sex",
                "group": "female",
                "mace": "true",
                "band": "low",
            },
        )
        == 1.0
    )
    assert get("triage_errors_total", {"code": "INVALID_ARGUMENT", "reason": "not_json"}) == 1.0
    assert get("triage_stage_latency_seconds_count", {"stage": "persist"}) == 1.0


def test_model_info_has_exactly_one_series_for_the_model_served() -> None:
    m = Metrics()
    m.record_model_loaded(ModelRef("mace-30d", "v1", "a" * 64, "CPUExecutionProvider"))
    m.record_model_loaded(ModelRef("mace-30d", "v2", "b" * 64, "CPUExecutionProvider"))
    samples = [
        s for fam in m.registry.collect() if fam.name == "triage_model_info" for s in fam.samples
    ]
    assert [s.labels["version"] for s in samples] == ["v2"]
    assert m.registry.get_sample_value("triage_model_loaded") == 1.0
    m.record_model_load_failure("checksum_mismatch")
    m.record_model_unloaded()
    assert m.registry.get_sample_value("triage_model_loaded") == 0.0


def test_start_http_on_port_0_serves_the_registry() -> None:
    m = Metrics()
    m.record_error("INTERNAL", "unexpected")
    port = m.start_http("127.0.0.1", 0)
    try:
        assert port > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            body = reply.read().decode()
        assert 'triage_errors_total{code="INTERNAL",reason="unexpected"} 1.0' in body
        assert "triage_stage_latency_seconds_bucket" not in body or "stage=" in body
    finally:
        m.stop_http()


def test_an_idle_connection_to_the_metrics_endpoint_is_closed() -> None:
    """Was held with a thread each for good (300 idle connections, 300 threads)."""
    metrics = Metrics()
    port = metrics.start_http("127.0.0.1", 0, idle_timeout_s=0.3)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as idle:
            idle.sendall(b"GET /metr")  # and nothing more
            assert idle.recv(1024) == b""  # closed by the server after its timeout
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert b"triage_assessments_total" in page
    finally:
        metrics.stop_http()


def test_connections_past_the_cap_are_closed_at_once_and_threads_stay_bounded() -> None:
    """A client trickling a byte at a time resets the per-read timeout: the cap is what bounds
    the threads (diff review: one such client held its thread past 12 s)."""
    metrics = Metrics()
    port = metrics.start_http("127.0.0.1", 0, idle_timeout_s=30, max_connections=2)
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
    try:
        for connection in held:
            connection.sendall(b"G")
        time.sleep(0.2)  # both are being served (each holds a slot)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as third:
            third.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            try:
                answer = third.recv(1024)
            except ConnectionResetError:  # closed with the request unread: a reset
                answer = b""
            assert answer == b""  # closed at once, not queued for a thread
    finally:
        for connection in held:
            connection.close()
    time.sleep(0.2)
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    assert b"triage_assessments_total" in page
    metrics.stop_http()
