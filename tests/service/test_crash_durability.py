"""Nothing acknowledged is lost: SIGKILL the server in the middle of a stream of requests,
then every response the client received has its record in the SQLite file."""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from triage.v1 import triage_pb2, triage_pb2_grpc

pytestmark = pytest.mark.slow

KILL_AFTER = 40


def test_sigkill_mid_stream_loses_no_acknowledged_decision(
    start_cli_server: Callable[..., Any], example_bundles: list[bytes], tmp_path: Path
) -> None:
    server = start_cli_server()
    server.wait_serving()
    received: list[tuple[str, str]] = []
    killed = threading.Event()

    def requests() -> Iterator[triage_pb2.AssessRequest]:
        i = 0
        while not killed.is_set():
            yield triage_pb2.AssessRequest(
                fhir_bundle=example_bundles[i % len(example_bundles)], request_id=f"crash-{i}"
            )
            i += 1

    def consume(stream: Iterator[triage_pb2.AssessResult]) -> None:
        for result in stream:
            assert result.WhichOneof("result") == "assessment", result.error
            received.append((result.request_id, result.assessment.audit_id))
            if len(received) == KILL_AFTER:
                server.proc.send_signal(signal.SIGKILL)
                killed.set()

    with grpc.insecure_channel(server.target) as channel:
        stream = triage_pb2_grpc.TriageServiceStub(channel).AssessStream(requests(), timeout=60)
        with pytest.raises(grpc.RpcError) as err:
            consume(stream)
    assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    assert server.terminate(timeout=10) == -signal.SIGKILL
    assert len(received) >= KILL_AFTER

    with sqlite3.connect(tmp_path / "cli-data" / "audit.sqlite") as conn:
        stored = dict(conn.execute("SELECT request_id, audit_id FROM assessments").fetchall())
    missing = [(rid, aid) for rid, aid in received if stored.get(rid) != aid]
    assert not missing, f"acknowledged but not recorded: {missing}"
