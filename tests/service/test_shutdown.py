"""Graceful shutdown of ``triage serve`` on SIGTERM: health NOT_SERVING, new calls refused,
the call in flight finishes, the audit store holds every answer, exit code 0."""

from __future__ import annotations

import queue
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from triage.v1 import triage_pb2, triage_pb2_grpc

pytestmark = pytest.mark.slow

_END = object()


def _requests(q: queue.Queue[Any]) -> Iterator[triage_pb2.AssessRequest]:
    while (item := q.get(timeout=30)) is not _END:
        yield item


def test_sigterm_drains_in_flight_calls_and_exits_zero(
    start_cli_server: Callable[..., Any], example_bundles: list[bytes], tmp_path: Path
) -> None:
    server = start_cli_server(env={"TRIAGE_GRACE_PERIOD_S": "20"})
    server.wait_serving()
    channel = grpc.insecure_channel(server.target)
    watch = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=""), timeout=60
    )
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING

    # A backfill stream in flight when SIGTERM arrives.
    outbox: queue.Queue[Any] = queue.Queue()
    stream = triage_pb2_grpc.TriageServiceStub(channel).AssessStream(_requests(outbox), timeout=60)
    outbox.put(triage_pb2.AssessRequest(fhir_bundle=example_bundles[0], request_id="drain-1"))
    first = next(stream)
    assert first.WhichOneof("result") == "assessment"

    server.proc.send_signal(signal.SIGTERM)

    # Health goes NOT_SERVING before the server stops taking calls.
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    watch.cancel()

    # New calls are refused (on a new connection: the old one may be mid-GOAWAY).
    deadline = time.monotonic() + 10
    refused: grpc.StatusCode | None = None
    attempt = 0
    with grpc.insecure_channel(server.target) as fresh:
        stub = triage_pb2_grpc.TriageServiceStub(fresh)
        while refused is None:
            attempt += 1
            try:
                stub.Assess(
                    triage_pb2.AssessRequest(
                        fhir_bundle=example_bundles[1], request_id=f"new-{attempt}"
                    ),
                    timeout=2,
                )
            except grpc.RpcError as err:
                refused = err.code()
            else:
                assert time.monotonic() < deadline, "new calls still accepted after SIGTERM"
                time.sleep(0.05)
    # gRPC core refuses a call on a shutting-down server with UNAVAILABLE, or CANCELLED when
    # the call raced the shutdown into the server's queue; either way it was never handled
    # (checked below: no record of it).
    assert refused in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)

    # The call in flight is still served within the grace period.
    outbox.put(triage_pb2.AssessRequest(fhir_bundle=example_bundles[2], request_id="drain-2"))
    second = next(stream)
    assert second.request_id == "drain-2"
    assert second.WhichOneof("result") == "assessment"
    outbox.put(_END)
    assert list(stream) == []
    channel.close()

    assert server.terminate(timeout=30) == 0
    db = tmp_path / "cli-data" / "audit.sqlite"
    with sqlite3.connect(db) as conn:
        stored = {
            row[0]: row[1] for row in conn.execute("SELECT request_id, audit_id FROM assessments")
        }
    assert stored.get("drain-1") == first.assessment.audit_id
    assert stored.get("drain-2") == second.assessment.audit_id
    assert f"new-{attempt}" not in stored  # the refused call left nothing behind
    assert any('"stopped"' in line for line in server.stderr_lines)


def test_sigint_also_exits_zero(start_cli_server: Callable[..., Any]) -> None:
    server = start_cli_server()
    server.wait_serving()
    assert server.terminate(signal.SIGINT) == 0
