"""Transport limits over a real server on port 0: AssessStream slots and their idle timeout
(idle streams must never starve health checks or Assess), the message limit with its margin
above the bundle limit, and health following the audit store."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from triage.v1 import triage_pb2

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
MiB = 1024 * 1024


def _request(bundle: bytes, request_id: str | None = None) -> triage_pb2.AssessRequest:
    return triage_pb2.AssessRequest(fhir_bundle=bundle, request_id=request_id or str(uuid.uuid4()))


def _reason(err: grpc.RpcError) -> str | None:
    return dict(err.trailing_metadata() or ()).get("triage-error-reason")  # type: ignore[attr-defined]


class _OpenStream:
    """An AssessStream whose client sends only what the test puts, and keeps it open."""

    def __init__(self, stub: Any, timeout: float = 30) -> None:
        self._items: queue.Queue[triage_pb2.AssessRequest | None] = queue.Queue()
        self.call = stub.AssessStream(self._requests(), timeout=timeout)

    def _requests(self) -> Iterator[triage_pb2.AssessRequest]:
        while (item := self._items.get()) is not None:
            yield item

    def send(self, request: triage_pb2.AssessRequest) -> triage_pb2.AssessResult:
        self._items.put(request)
        return next(self.call)

    def end_requests(self) -> None:
        self._items.put(None)

    def close(self) -> list[triage_pb2.AssessResult]:
        self.end_requests()
        return list(self.call)


def _stream_once(stub: Any, bundle: bytes) -> list[str] | None:
    """One single-item AssessStream: its results' kinds, or None when refused for lack of a
    free slot (a slot is released when gRPC closes a call, a moment after its client saw the
    end)."""
    try:
        results = list(stub.AssessStream(iter([_request(bundle)]), timeout=10))
    except grpc.RpcError as err:
        if _reason(err) == "too_many_streams":
            return None
        raise
    return [r.WhichOneof("result") for r in results]


def _eventually(check: Callable[[], bool], within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_idle_streams_never_starve_health_or_assess(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    """One worker, two stream slots, both taken by streams that send nothing: health and
    Assess are still answered, and a third stream is refused at once with its reason."""
    served = serve(workers=1, max_streams=2)
    streams = [_OpenStream(served.stub) for _ in range(2)]
    # A stream's first result proves it holds its slot (and its thread).
    for stream in streams:
        assert stream.send(_request(example_bundles[0])).HasField("assessment")

    assert served.health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == SERVING
    answer = served.stub.Assess(_request(example_bundles[1]), timeout=5)
    assert answer.audit_id

    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        list(served.stub.AssessStream(iter([_request(example_bundles[2])]), timeout=5))
    assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _reason(err.value) == "too_many_streams"
    assert time.monotonic() - started < 2

    # A stream that ends frees its slot for the next.
    assert streams[0].close() == []
    assert _eventually(lambda: _stream_once(served.stub, example_bundles[3]) == ["assessment"])
    streams[1].close()


def test_idle_stream_is_ended_with_a_typed_status_and_frees_its_slot(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    served = serve(max_streams=1, stream_idle_timeout_s=0.3)
    stream = _OpenStream(served.stub)
    first = stream.send(_request(example_bundles[0], "idle-1"))
    assert first.request_id == "idle-1"
    assert first.HasField("assessment")
    with pytest.raises(grpc.RpcError) as err:
        next(stream.call)  # nothing more is sent
    assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert _reason(err.value) == "stream_idle_timeout"
    stream.end_requests()

    # The slot and its reader thread are free again: a new stream is served in full.
    assert _eventually(lambda: _stream_once(served.stub, example_bundles[1]) == ["assessment"])


def test_oversized_item_between_the_limits_is_a_per_item_error(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    """Above the bundle limit but within gRPC's message limit (4 x the bundle limit by
    default): that item's too_many_bytes error, and the stream goes on."""
    served = serve(max_bundle_bytes=1 * MiB)
    assert served.settings.transport_message_bytes > 3 * MiB
    big = b"{" + b" " * (3 * MiB) + b"}"
    requests = [
        _request(example_bundles[0], "over-1"),
        _request(big, "over-2"),
        _request(example_bundles[1], "over-3"),
    ]
    results = list(served.stub.AssessStream(iter(requests), timeout=30))
    assert [r.request_id for r in results] == ["over-1", "over-2", "over-3"]
    assert [r.WhichOneof("result") for r in results] == ["assessment", "error", "assessment"]
    assert (results[1].error.code, results[1].error.reason) == (
        "RESOURCE_EXHAUSTED",
        "too_many_bytes",
    )


def test_message_above_the_transport_limit_ends_the_stream(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    """What docs/service.md says: gRPC itself refuses a larger message, which ends the stream
    with RESOURCE_EXHAUSTED (no reason: the handler never sees it); earlier results stand."""
    served = serve(max_bundle_bytes=4096, max_message_bytes=4096 + 64 * 1024)
    huge = b" " * (256 * 1024)
    call = served.stub.AssessStream(iter([_request(b"{not json", "t-1"), _request(huge, "t-2")]))
    first = next(call)
    assert (first.request_id, first.error.reason) == ("t-1", "not_json")
    with pytest.raises(grpc.RpcError) as err:
        next(call)
    assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_message_limit_must_leave_room_above_the_bundle_limit(
    make_settings: Callable[..., Any],
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="max_message_bytes"):
        make_settings(max_bundle_bytes=MiB, max_message_bytes=MiB)
    assert make_settings(max_bundle_bytes=MiB).transport_message_bytes == 4 * MiB + 64 * 1024


def test_health_follows_the_audit_store(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    """A write lock held elsewhere makes every Assess fail closed: health NOT_SERVING; the next
    Assess that is recorded brings it back to SERVING."""
    served = serve(audit_busy_timeout_ms=0, store_unavailable_hold_s=60)
    served.stub.Assess(_request(example_bundles[0]), timeout=10)
    assert served.health_status() == SERVING

    blocker = sqlite3.connect(served.settings.audit_db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(grpc.RpcError) as err:
            served.stub.Assess(_request(example_bundles[1]), timeout=10)
        assert err.value.code() is grpc.StatusCode.UNAVAILABLE
        assert _reason(err.value) == "write_failed"
        assert served.health_status() == NOT_SERVING
        assert served.health_status("triage.v1.TriageService") == NOT_SERVING
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    served.stub.Assess(_request(example_bundles[2]), timeout=10)
    assert served.health_status() == SERVING


def test_health_tries_the_store_again_after_the_hold(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    """Drained by its load balancer, a process gets no call to succeed with: after the hold it
    reports SERVING again so that traffic can test the store."""
    served = serve(audit_busy_timeout_ms=0, store_unavailable_hold_s=0.3)
    blocker = sqlite3.connect(served.settings.audit_db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(grpc.RpcError):
            served.stub.Assess(_request(example_bundles[1]), timeout=10)
        assert served.health_status() == NOT_SERVING
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert _eventually(lambda: served.health_status() == SERVING, within=3)


def test_health_tracker_store_hold_off_ignores_the_store() -> None:
    from service.grpc_server import HealthTracker

    class Ready:
        ready = True

    tracker = HealthTracker(Ready(), store_hold_s=0)  # type: ignore[arg-type]
    tracker.store_failed()
    assert tracker.refresh() is True
    tracker = HealthTracker(Ready(), store_hold_s=60)  # type: ignore[arg-type]
    tracker.store_failed()
    assert tracker.refresh() is False
    tracker.store_ok()
    assert tracker.refresh() is True


def test_stream_slots_count_only_open_streams(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    """Streams that end, one after the other, never use up the slots."""
    served = serve(max_streams=1)
    for i in range(5):
        assert _eventually(lambda i=i: _stream_once(served.stub, example_bundles[i]) is not None)


def test_streams_off(serve: Callable[..., Any], example_bundles: list[bytes]) -> None:
    served = serve(max_streams=0)
    assert _stream_once(served.stub, example_bundles[0]) is None
    assert served.stub.Assess(_request(example_bundles[0]), timeout=10).audit_id


def test_a_stream_whose_client_stops_reading_is_cancelled_and_frees_its_slot(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    """Was held for good: gRPC blocks sending a result nobody reads (flow control), and the
    idle timeout only covered waiting for the client's next request."""
    served = serve(max_streams=1, stream_idle_timeout_s=1.0)
    request = _request(example_bundles[0])

    def endless() -> Iterator[triage_pb2.AssessRequest]:
        while True:  # keeps sending, and never reads a result
            yield triage_pb2.AssessRequest(
                fhir_bundle=request.fhir_bundle, request_id=str(uuid.uuid4())
            )

    stuck = served.stub.AssessStream(endless(), timeout=120)
    try:
        assert _eventually(
            lambda: _stream_once(served.stub, example_bundles[1]) == ["assessment"], within=30
        )
    finally:
        stuck.cancel()


def test_the_send_watchdog_stops_with_the_server(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    """Was a thread for the life of the process, per server ever created."""
    served = serve(max_streams=1, stream_idle_timeout_s=0.5)
    assert _stream_once(served.stub, example_bundles[0]) == ["assessment"]
    watchdogs = [t for t in threading.enumerate() if t.name == "grpc-stream-send-watchdog"]
    assert watchdogs
    served.server.stop(0).wait(5)
    for thread in watchdogs:
        thread.join(5)
        assert not thread.is_alive()
