"""TriageService over real gRPC: a real Engine (ONNX model, SQLite audit store) on port 0."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from triage.v1 import triage_pb2

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _records(db: Path, request_id: str) -> int:
    with sqlite3.connect(db) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM assessments WHERE request_id = ?", (request_id,)
        ).fetchone()
    return int(n)


def test_health_is_serving_with_a_warm_model(serve: Callable[..., Any]) -> None:
    served = serve()
    assert served.engine.ready
    assert served.health_status("") == SERVING
    assert served.health_status("triage.v1.TriageService") == SERVING


def test_health_not_serving_without_a_model(serve: Callable[..., Any], tmp_path: Path) -> None:
    """An empty registry: the server runs, health says NOT_SERVING, Assess is UNAVAILABLE."""
    empty = tmp_path / "empty-registry"
    empty.mkdir()
    served = serve(model_registry=empty)
    assert not served.engine.ready
    assert served.health_status("") == NOT_SERVING
    with pytest.raises(grpc.RpcError) as err:
        served.stub.Assess(
            triage_pb2.AssessRequest(fhir_bundle=b"{}", request_id="r-no-model"), timeout=5
        )
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE


class _Readiness:
    """Only what HealthTracker reads: a ``ready`` flag the test flips."""

    def __init__(self) -> None:
        self.ready = False


def test_health_tracker_follows_readiness_then_shuts_down() -> None:
    from service.grpc_server import HealthTracker

    engine = _Readiness()
    tracker = HealthTracker(engine)  # type: ignore[arg-type]
    context = None
    request = health_pb2.HealthCheckRequest(service="")
    assert tracker.servicer.Check(request, context).status == NOT_SERVING
    engine.ready = True
    assert tracker.refresh() is True
    assert tracker.servicer.Check(request, context).status == SERVING
    tracker.shutdown()
    assert tracker.refresh() is False
    assert tracker.servicer.Check(request, context).status == NOT_SERVING


def test_reflection_lists_the_services(serve: Callable[..., Any]) -> None:
    served = serve()
    stub = reflection_pb2_grpc.ServerReflectionStub(served.channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert names >= {
        "triage.v1.TriageService",
        "triage.v1.TriageAdmin",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


def test_reflection_serves_the_file_descriptor(serve: Callable[..., Any]) -> None:
    served = serve()
    stub = reflection_pb2_grpc.ServerReflectionStub(served.channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="triage.v1.Assessment")
    (reply,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    protos = reply.file_descriptor_response.file_descriptor_proto
    assert protos, "no descriptor returned for triage.v1.Assessment"


def test_assess_happy_path(serve: Callable[..., Any], example_bundles: list[bytes]) -> None:
    served = serve()
    answer = served.stub.Assess(
        triage_pb2.AssessRequest(fhir_bundle=example_bundles[0], request_id="happy-1"), timeout=10
    )
    assert answer.request_id == "happy-1"
    assert answer.audit_id
    assert 0.0 <= answer.mace_probability <= 1.0
    assert answer.band in (triage_pb2.LOW, triage_pb2.MODERATE, triage_pb2.HIGH)
    assert 1 <= answer.esi_level <= 5
    assert answer.recommended_actions
    h = answer.heart
    assert answer.heart_score == h.history + h.ecg + h.age + h.risk_factors + h.troponin
    assert answer.top_features
    ref = served.engine.model_ref
    assert (answer.model.name, answer.model.version, answer.model.sha256) == (
        ref.name,
        ref.version,
        ref.sha256,
    )
    assert answer.model.execution_provider == ref.execution_provider
    assert answer.HasField("created_at")
    assert _records(served.settings.audit_db_path, "happy-1") == 1


def test_every_example_bundle_is_assessed(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    served = serve()
    for i, bundle in enumerate(example_bundles[:20]):
        answer = served.stub.Assess(
            triage_pb2.AssessRequest(fhir_bundle=bundle, request_id=f"many-{i}"), timeout=10
        )
        assert answer.request_id == f"many-{i}"


def test_idempotent_request_id(serve: Callable[..., Any], example_bundles: list[bytes]) -> None:
    served = serve()
    request = triage_pb2.AssessRequest(fhir_bundle=example_bundles[1], request_id="idem-1")
    first = served.stub.Assess(request, timeout=10)
    second = served.stub.Assess(request, timeout=10)
    assert first == second
    assert _records(served.settings.audit_db_path, "idem-1") == 1


def test_same_request_id_other_bundle_is_already_exists(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    served = serve()
    served.stub.Assess(
        triage_pb2.AssessRequest(fhir_bundle=example_bundles[2], request_id="idem-2"), timeout=10
    )
    with pytest.raises(grpc.RpcError) as err:
        served.stub.Assess(
            triage_pb2.AssessRequest(fhir_bundle=example_bundles[3], request_id="idem-2"),
            timeout=10,
        )
    assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert _records(served.settings.audit_db_path, "idem-2") == 1


def test_assess_stream_continues_past_a_bad_item(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    served = serve()
    requests = [
        triage_pb2.AssessRequest(fhir_bundle=example_bundles[4], request_id="s-1"),
        triage_pb2.AssessRequest(fhir_bundle=b"{not json", request_id="s-2"),
        triage_pb2.AssessRequest(fhir_bundle=example_bundles[5], request_id="s-3"),
    ]
    results = list(served.stub.AssessStream(iter(requests), timeout=30))
    assert [r.request_id for r in results] == ["s-1", "s-2", "s-3"]
    assert [r.WhichOneof("result") for r in results] == ["assessment", "error", "assessment"]
    error = results[1].error
    assert (error.code, error.reason, error.path) == ("INVALID_ARGUMENT", "not_json", "$")
    for r in (results[0], results[2]):
        assert _records(served.settings.audit_db_path, r.request_id) == 1


def test_report_outcome(serve: Callable[..., Any], example_bundles: list[bytes]) -> None:
    served = serve()
    answer = served.stub.Assess(
        triage_pb2.AssessRequest(fhir_bundle=example_bundles[6], request_id="out-1"), timeout=10
    )
    ack = served.stub.ReportOutcome(
        triage_pb2.OutcomeReport(audit_id=answer.audit_id, mace=True), timeout=10
    )
    assert ack.audit_id == answer.audit_id
    assert not ack.duplicate
    again = served.stub.ReportOutcome(
        triage_pb2.OutcomeReport(audit_id=answer.audit_id, mace=True), timeout=10
    )
    assert again.duplicate


def test_report_outcome_unknown_and_missing_reference(serve: Callable[..., Any]) -> None:
    served = serve()
    with pytest.raises(grpc.RpcError) as err:
        served.stub.ReportOutcome(
            triage_pb2.OutcomeReport(audit_id="no-such-audit-id", mace=False), timeout=10
        )
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        served.stub.ReportOutcome(triage_pb2.OutcomeReport(mace=False), timeout=10)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_fairness_report_is_json(serve: Callable[..., Any]) -> None:
    served = serve()
    report = served.stub.GetFairnessReport(triage_pb2.FairnessReportRequest(), timeout=10)
    assert isinstance(json.loads(report.json), dict)
