"""The gRPC transport: thin servicers (decode -> engine -> encode), health, reflection.

``create_server(settings, engine, metrics)`` builds a synchronous ``grpc.server`` with a small
thread pool and returns ``(server, port)``: a :class:`TriageServer` (not yet started) and the
bound port (``settings.port == 0`` picks a free one).

Threads: ``settings.workers`` for unary calls (1-2 per process measured fastest here, see
docs/service.md) plus one per AssessStream slot (``settings.max_streams``). An open stream
holds its thread for as long as it is open, so streams are capped: one more is refused at once
(RESOURCE_EXHAUSTED ``too_many_streams``), and a stream that sends nothing for
``settings.stream_idle_timeout_s`` is ended (DEADLINE_EXCEEDED ``stream_idle_timeout``), as is
one whose client takes none of its results for that long (cancelled). Idle or slow streams
therefore never starve health checks or Assess.

Health (``grpc.health.v1``) reports NOT_SERVING until ``engine.ready`` (a model loaded and
its warm-up inference passed) and follows it afterwards; it also reports NOT_SERVING while
calls fail because the audit store cannot be used (see :class:`HealthTracker`). On shutdown it
goes NOT_SERVING for good before the server stops accepting calls.

The triage services are registered from their descriptors (:func:`_register`), not with the
generated ``add_*_to_server``: those deserialize with ``FromString``, and a request that is not
valid protobuf (e.g. invalid UTF-8 in a string field) then fails inside gRPC as an uncounted
INTERNAL that also ends an AssessStream. Here such a request is INVALID_ARGUMENT
``malformed_request`` like every other client error (one item's error in AssessStream).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from triage.v1 import triage_pb2

from service import convert, errors, grpc_errors
from service.assessment import Assessment, ModelRef, OutcomeAck
from service.errors import AuditStoreUnavailable
from service.settings import Settings

logger = logging.getLogger(__name__)

TRIAGE_SERVICE = triage_pb2.DESCRIPTOR.services_by_name["TriageService"].full_name
ADMIN_SERVICE = triage_pb2.DESCRIPTOR.services_by_name["TriageAdmin"].full_name
SERVICE_NAMES = (TRIAGE_SERVICE, ADMIN_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
_HEALTH_POLL_S = 0.25


class Engine(Protocol):
    """What the transport needs from ``service.engine.Engine``."""

    @property
    def ready(self) -> bool: ...

    def assess(
        self,
        bundle: bytes,
        *,
        request_id: str,
        encounter_id: str | None = None,
        deadline: float | None = None,
    ) -> Assessment: ...

    def report_outcome(
        self,
        *,
        audit_id: str | None,
        encounter_reference: str | None,
        mace: bool,
        occurred_at: datetime | None,
    ) -> OutcomeAck: ...

    def fairness_report(self) -> dict[str, Any]: ...


class ErrorMetrics(Protocol):
    """What the transport needs from ``service.metrics.Metrics``."""

    def record_error(self, code: str, reason: str) -> None: ...


def _deadline(context: grpc.ServicerContext) -> float | None:
    remaining: float | None = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class _Failures:
    """Classifies, counts, logs and answers failed calls (one place for all servicers)."""

    def __init__(self, metrics: ErrorMetrics) -> None:
        self._metrics = metrics

    def status(self, exc: BaseException, rpc: str, request_id: str) -> grpc_errors.ErrorStatus:
        status = grpc_errors.classify(exc, request_id)
        self._metrics.record_error(status.code.name, status.reason)
        grpc_errors.log_error(exc, status, rpc, request_id)
        return status

    def abort(
        self, context: grpc.ServicerContext, exc: BaseException, rpc: str, request_id: str
    ) -> NoReturn:
        grpc_errors.abort(context, self.status(exc, rpc, request_id), request_id)


class MalformedRequest:
    """What the request deserializer returns for bytes that are not the method's request
    message, instead of raising (gRPC would answer an uncounted INTERNAL and end a stream).
    Holds the expected type's name only, never the bytes."""

    __slots__ = ("message_type",)

    def __init__(self, message_type: str) -> None:
        self.message_type = message_type

    def error(self) -> errors.InvalidRequest:
        return errors.InvalidRequest(
            "malformed_request", f"not a valid {self.message_type} protobuf message"
        )


def _lenient(message_class: type[Message]) -> Callable[[bytes], Message | MalformedRequest]:
    name = message_class.DESCRIPTOR.full_name

    def deserialize(data: bytes) -> Message | MalformedRequest:
        try:
            return message_class.FromString(data)
        except DecodeError:
            return MalformedRequest(name)

    return deserialize


class StoreHealth(Protocol):
    """Told how each call that used the audit store went (:class:`HealthTracker`)."""

    def store_failed(self) -> None: ...

    def store_ok(self) -> None: ...


class _NoStoreHealth:
    def store_failed(self) -> None:
        pass

    def store_ok(self) -> None:
        pass


_END = object()


class _StreamIdle(Exception):  # noqa: N818 - control flow inside AssessStream
    pass


class _Sending:
    """One open AssessStream as the send watchdog sees it."""

    __slots__ = ("context", "since")

    def __init__(self, context: grpc.ServicerContext) -> None:
        self.context = context
        self.since: float | None = None  # when the result being sent was handed to gRPC


class StreamSlots:
    """At most ``limit`` AssessStreams at once, and the idle timeout of each, both ways.

    A stream's requests are read on a reader thread so that its handler can wait for the next
    one with a timeout (gRPC's request iterator blocks without one). Each stream has at most
    one read pending, so ``limit`` reader threads suffice; a read left pending by a stream that
    was ended returns as soon as gRPC has closed that call.

    The other way: gRPC sends a result before asking the handler for the next, and a client
    that stops reading blocks that send for ever (flow control), holding the slot. One
    watchdog thread cancels a call whose result has waited longer than the idle timeout."""

    def __init__(self, limit: int, idle_timeout_s: float) -> None:
        self.limit = limit
        self.idle_timeout_s = idle_timeout_s
        self._free = threading.BoundedSemaphore(limit) if limit else None
        self._readers = futures.ThreadPoolExecutor(
            max_workers=max(1, limit), thread_name_prefix="grpc-stream-reader"
        )
        self._sending: dict[int, _Sending] = {}
        self._sending_lock = threading.Lock()
        self._watchdog: threading.Thread | None = None
        self._closed = threading.Event()

    def close(self) -> None:
        """Stop the watchdog (the server is stopping: gRPC ends what is left after its grace).
        The reader threads stay: streams in flight read on them during the grace period."""
        self._closed.set()

    def admit(self, context: grpc.ServicerContext) -> bool:
        """Take a slot until the call ends (however it ends); False when none is free."""
        if self._free is None or not self._free.acquire(blocking=False):
            return False
        free = self._free
        released = threading.Lock()

        def release() -> None:
            if released.acquire(blocking=False):  # once, whichever path ends the call
                free.release()

        if not context.add_callback(release):  # the call has already ended
            release()
        return True

    def results(self, context: grpc.ServicerContext, results: Iterator[Any]) -> Iterator[Any]:
        """``results``, each handed to gRPC under the watchdog (none with no idle timeout)."""
        if not self.idle_timeout_s:
            yield from results
            return
        sending = _Sending(context)
        key = id(sending)
        with self._sending_lock:
            self._sending[key] = sending
            if self._watchdog is None:
                self._watchdog = threading.Thread(
                    target=self._watch, name="grpc-stream-send-watchdog", daemon=True
                )
                self._watchdog.start()

        def forget() -> None:  # however the call ends, even if this generator is never resumed
            with self._sending_lock:
                self._sending.pop(key, None)

        if not context.add_callback(forget):
            forget()
        for result in results:
            sending.since = time.monotonic()
            yield result  # resumed only once gRPC has sent it
            sending.since = None

    def _watch(self) -> None:
        period = min(1.0, self.idle_timeout_s / 4)
        while not self._closed.wait(period):
            now = time.monotonic()
            with self._sending_lock:
                stuck = [
                    (s, s.since)
                    for s in self._sending.values()
                    if s.since is not None and now - s.since > self.idle_timeout_s
                ]
            for sending, since in stuck:
                # Only if that same result is still waiting: the client may have taken it (and
                # the handler handed gRPC the next one) since the look above.
                if sending.since != since:
                    continue
                logger.info("AssessStream cancelled: its client stopped reading results")
                sending.context.cancel()  # type: ignore[no-untyped-call]

    def requests(self, request_iterator: Iterator[Any]) -> Iterator[Any]:
        """The stream's requests; raises :class:`_StreamIdle` when none comes in time."""
        timeout = self.idle_timeout_s or None
        while True:
            pending = self._readers.submit(next, request_iterator, _END)
            try:
                request = pending.result(timeout=timeout)
            except futures.TimeoutError:
                raise _StreamIdle() from None
            if request is _END:
                return
            yield request


class TriageServicer:
    """triage.v1.TriageService."""

    def __init__(
        self,
        engine: Engine,
        metrics: ErrorMetrics,
        *,
        streams: StreamSlots | None = None,
        store_health: StoreHealth | None = None,
    ) -> None:
        self._engine = engine
        self._failures = _Failures(metrics)
        self._streams = streams or StreamSlots(limit=2, idle_timeout_s=0)
        self._store_health = store_health or _NoStoreHealth()

    def _store_failed(self, exc: BaseException) -> None:
        if isinstance(exc, AuditStoreUnavailable):
            self._store_health.store_failed()

    def _assess(self, request: triage_pb2.AssessRequest, deadline: float | None) -> Assessment:
        return self._engine.assess(
            request.fhir_bundle,
            request_id=request.request_id,
            encounter_id=request.encounter_id or None,
            deadline=deadline,
        )

    def Assess(  # noqa: N802 - the gRPC method name
        self, request: triage_pb2.AssessRequest, context: grpc.ServicerContext
    ) -> triage_pb2.Assessment:
        try:
            value = convert.assessment(self._assess(request, _deadline(context)))
        except Exception as exc:  # noqa: BLE001 - the one error table answers
            self._store_failed(exc)
            self._failures.abort(context, exc, "Assess", request.request_id)
        self._store_health.store_ok()
        return value

    def AssessStream(  # noqa: N802
        self,
        request_iterator: Iterator[triage_pb2.AssessRequest | MalformedRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[triage_pb2.AssessResult]:
        if not self._streams.admit(context):
            # Refused before reading anything: waiting for a slot would hold a worker thread.
            busy = grpc_errors.ServerBusy(
                "too_many_streams", f"at most {self._streams.limit} AssessStreams per process"
            )
            self._failures.abort(context, busy, "AssessStream", "")
        deadline = _deadline(context)
        try:
            yield from self._streams.results(
                context,
                self._stream_results(self._streams.requests(request_iterator), deadline),
            )
        except _StreamIdle:
            idle = errors.DeadlineExceeded(
                "stream_idle_timeout",
                f"no request for {self._streams.idle_timeout_s:g} s; resume after the last result",
            )
            self._failures.abort(context, idle, "AssessStream", "")

    def _stream_results(
        self,
        requests: Iterator[triage_pb2.AssessRequest | MalformedRequest],
        deadline: float | None,
    ) -> Iterator[triage_pb2.AssessResult]:
        for request in requests:
            if isinstance(request, MalformedRequest):
                # Its request_id cannot be read: the error answers the item in its place.
                status = self._failures.status(request.error(), "AssessStream", "")
                yield triage_pb2.AssessResult(error=grpc_errors.to_error_detail(status))
                continue
            try:
                value = convert.assessment(self._assess(request, deadline))
            except Exception as exc:  # noqa: BLE001 - per-item errors never end the stream
                self._store_failed(exc)
                status = self._failures.status(exc, "AssessStream", request.request_id)
                yield triage_pb2.AssessResult(
                    request_id=request.request_id, error=grpc_errors.to_error_detail(status)
                )
            else:
                self._store_health.store_ok()
                yield triage_pb2.AssessResult(request_id=request.request_id, assessment=value)

    def ReportOutcome(  # noqa: N802
        self, request: triage_pb2.OutcomeReport, context: grpc.ServicerContext
    ) -> triage_pb2.OutcomeAck:
        try:
            reference = request.WhichOneof("reference")
            if reference is None:
                raise errors.InvalidRequest(
                    "missing_reference", "set audit_id or encounter_reference"
                )
            occurred_at = _occurred_at(request)
            ack = self._engine.report_outcome(
                audit_id=request.audit_id if reference == "audit_id" else None,
                encounter_reference=(
                    request.encounter_reference if reference == "encounter_reference" else None
                ),
                mace=request.mace,
                occurred_at=occurred_at,
            )
            answer = convert.outcome_ack(ack)
        except Exception as exc:  # noqa: BLE001 - the one error table answers
            self._store_failed(exc)
            self._failures.abort(context, exc, "ReportOutcome", "")
        self._store_health.store_ok()
        return answer

    def GetFairnessReport(  # noqa: N802
        self, request: triage_pb2.FairnessReportRequest, context: grpc.ServicerContext
    ) -> triage_pb2.FairnessReport:
        try:
            return convert.fairness_report(self._engine.fairness_report())
        except Exception as exc:  # noqa: BLE001 - the one error table answers
            self._failures.abort(context, exc, "GetFairnessReport", "")


def _occurred_at(request: triage_pb2.OutcomeReport) -> datetime | None:
    if not request.HasField("occurred_at"):
        return None
    try:
        return request.occurred_at.ToDatetime(tzinfo=UTC)
    except ValueError as exc:
        # Seconds outside years 1-9999 or nanos outside [0, 1e9): the client's error, not ours.
        raise errors.InvalidRequest(
            "invalid_occurred_at", "occurred_at is not a valid Timestamp (years 1 to 9999)"
        ) from exc


def _refusing_malformed(
    behavior: Callable[[Any, grpc.ServicerContext], Any], failures: _Failures, rpc: str
) -> Callable[[Any, grpc.ServicerContext], Any]:
    """A unary handler that answers a :class:`MalformedRequest` itself (the servicers, admin's
    included, only ever see decoded messages)."""

    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, MalformedRequest):
            failures.abort(context, request.error(), rpc, "")
        return behavior(request, context)

    return handle


def _register(
    server: grpc.Server, service: ServiceDescriptor, servicer: object, failures: _Failures
) -> None:
    """Like the generated ``add_*Servicer_to_server``, but with request deserializers that do
    not raise (see the module docstring). Built from the descriptor, so every method is
    covered; a stream-stream servicer method must itself answer MalformedRequest items."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        behavior = getattr(servicer, method.name)
        deserialize = _lenient(GetMessageClass(method.input_type))
        serialize = GetMessageClass(method.output_type).SerializeToString
        if method.client_streaming and method.server_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                behavior, deserialize, serialize
            )
        elif not method.client_streaming and not method.server_streaming:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _refusing_malformed(behavior, failures, method.name), deserialize, serialize
            )
        else:  # none in triage.proto; fail at start-up rather than serve it unguarded
            raise NotImplementedError(f"{method.full_name}: unary-stream/stream-unary")
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    # As the generated code does: the generated stubs call these registered methods.
    server.add_registered_method_handlers(service.full_name, handlers)  # type: ignore[attr-defined]


class HealthTracker:
    """Keeps grpc.health.v1 in step with ``engine.ready`` (polled; a model may be loaded or
    lost later by a reload) until :meth:`shutdown`, after which it stays NOT_SERVING.

    It also reports NOT_SERVING after a call failed because the audit store cannot be used
    (every Assess would fail closed too), until a call that used the store succeeds or
    ``store_hold_s`` passes without another such failure. The hold ends by itself because a
    load balancer that drains this process sends it nothing to succeed with; after it, the
    next call tests the store again. ``store_hold_s == 0``: the store is not considered."""

    def __init__(self, engine: Engine, store_hold_s: float = 0.0) -> None:
        self.servicer = health.HealthServicer(experimental_non_blocking=True)
        self._engine = engine
        self._store_hold_s = store_hold_s
        self._store_failed_at: float | None = None
        self._stop = threading.Event()
        self._serving: bool | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        self.refresh()

    def store_failed(self) -> None:
        if self._store_hold_s > 0:
            self._store_failed_at = time.monotonic()
            self.refresh()

    def store_ok(self) -> None:
        if self._store_failed_at is not None:  # read without the lock: the per-call path
            self._store_failed_at = None
            self.refresh()

    def _store_failing(self) -> bool:
        failed_at = self._store_failed_at
        return failed_at is not None and time.monotonic() - failed_at < self._store_hold_s

    def refresh(self) -> bool:
        with self._lock:
            if self._stop.is_set():
                return False
            ready = bool(self._engine.ready)
            store_failing = self._store_failing()
            serving = ready and not store_failing
            if serving != self._serving:
                status = (
                    health_pb2.HealthCheckResponse.SERVING
                    if serving
                    else health_pb2.HealthCheckResponse.NOT_SERVING
                )
                for name in ("", TRIAGE_SERVICE, ADMIN_SERVICE):
                    self.servicer.set(name, status)
                if self._serving is not None or serving:
                    cause = "audit store unavailable" if ready and store_failing else ""
                    logger.info(
                        "health %s%s",
                        "SERVING" if serving else "NOT_SERVING",
                        f" ({cause})" if cause else "",
                    )
                self._serving = serving
            return serving

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(_HEALTH_POLL_S):
            self.refresh()

    def shutdown(self) -> None:
        with self._lock:
            self._stop.set()
            self.servicer.enter_graceful_shutdown()
            self._serving = False
        logger.info("health NOT_SERVING (shutting down)")


class TriageServer:
    """The started-or-not gRPC server with its health tracker."""

    def __init__(
        self, server: grpc.Server, health_tracker: HealthTracker, streams: StreamSlots
    ) -> None:
        self.grpc_server = server
        self.health = health_tracker
        self.streams = streams

    def start(self) -> None:
        self.grpc_server.start()
        self.health.start()

    def stop(self, grace: float | None) -> threading.Event:
        """Health NOT_SERVING first, then refuse new calls and give calls in flight ``grace``
        seconds. The returned event is set once every call has ended."""
        self.health.shutdown()
        stopped = self.grpc_server.stop(grace)
        self.streams.close()
        return stopped

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self.grpc_server.wait_for_termination(timeout)


def _address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def create_server(
    settings: Settings,
    engine: Engine,
    metrics: ErrorMetrics,
    *,
    admin: object | None = None,
) -> tuple[TriageServer, int]:
    """Build the server and bind ``settings.host:settings.port``. Not started."""
    # Above the bundle limit with margin: a bundle between the two is answered with its
    # reason (per item in AssessStream); only a larger message is refused by gRPC itself.
    max_message = settings.transport_message_bytes
    # The stream slots' threads come on top of the workers: streams never take the threads
    # that health and unary calls need.
    threads = settings.workers + settings.max_streams
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc-worker"),
        options=[
            ("grpc.max_receive_message_length", max_message),
            ("grpc.max_send_message_length", max_message),
            ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
        ],
    )
    services = triage_pb2.DESCRIPTOR.services_by_name
    failures = _Failures(metrics)
    tracker = HealthTracker(engine, settings.store_unavailable_hold_s)
    streams = StreamSlots(settings.max_streams, settings.stream_idle_timeout_s)
    servicer = TriageServicer(engine, metrics, streams=streams, store_health=tracker)
    _register(server, services["TriageService"], servicer, failures)
    if admin is not None:
        _register(server, services["TriageAdmin"], admin, failures)
    health_pb2_grpc.add_HealthServicer_to_server(tracker.servicer, server)
    reflection.enable_server_reflection(SERVICE_NAMES, server)
    failure = f"could not bind the gRPC port {settings.port} on {settings.host}"
    try:
        # grpcio raises RuntimeError when the bind fails (older releases returned 0).
        port = server.add_insecure_port(_address(settings.host, settings.port))
    except RuntimeError as exc:
        raise OSError(failure) from exc
    if port == 0:
        raise OSError(failure)
    return TriageServer(server, tracker, streams), port


__all__ = [
    "SERVICE_NAMES",
    "HealthTracker",
    "MalformedRequest",
    "ModelRef",
    "StoreHealth",
    "StreamSlots",
    "TriageServer",
    "TriageServicer",
    "create_server",
]
