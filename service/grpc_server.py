"""The gRPC transport: thin servicers (decode -> engine -> encode), health, reflection.

``create_server(settings, engine, metrics)`` builds a synchronous ``grpc.server`` with a small
thread pool (``settings.workers``; 1-2 threads per process measured fastest here, see
docs/service.md) and returns ``(server, port)``: a :class:`TriageServer` (not yet started)
and the bound port (``settings.port == 0`` picks a free one).

Health (``grpc.health.v1``) reports NOT_SERVING until ``engine.ready`` (a model loaded and
its warm-up inference passed) and follows it afterwards; on shutdown it goes NOT_SERVING for
good before the server stops accepting calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from triage.v1 import triage_pb2, triage_pb2_grpc

from service import convert, grpc_errors
from service.assessment import Assessment, ModelRef, OutcomeAck
from service.settings import Settings

logger = logging.getLogger(__name__)

TRIAGE_SERVICE = triage_pb2.DESCRIPTOR.services_by_name["TriageService"].full_name
ADMIN_SERVICE = triage_pb2.DESCRIPTOR.services_by_name["TriageAdmin"].full_name
SERVICE_NAMES = (TRIAGE_SERVICE, ADMIN_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
# Headroom above the bundle limit so that a slightly larger bundle reaches the extractor and is
# answered RESOURCE_EXHAUSTED with its reason; far larger messages are refused by gRPC itself
# (also RESOURCE_EXHAUSTED).
_MESSAGE_OVERHEAD = 1024 * 1024
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
    ) -> None:
        grpc_errors.abort(context, self.status(exc, rpc, request_id), request_id)


class TriageServicer:
    """triage.v1.TriageService."""

    def __init__(self, engine: Engine, metrics: ErrorMetrics) -> None:
        self._engine = engine
        self._failures = _Failures(metrics)

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
            return convert.assessment(self._assess(request, _deadline(context)))
        except Exception as exc:
            self._failures.abort(context, exc, "Assess", request.request_id)
            raise  # unreachable: abort raises

    def AssessStream(  # noqa: N802
        self, request_iterator: Iterator[triage_pb2.AssessRequest], context: grpc.ServicerContext
    ) -> Iterator[triage_pb2.AssessResult]:
        deadline = _deadline(context)
        for request in request_iterator:
            try:
                value = convert.assessment(self._assess(request, deadline))
            except Exception as exc:  # noqa: BLE001 - per-item errors never end the stream
                status = self._failures.status(exc, "AssessStream", request.request_id)
                yield triage_pb2.AssessResult(
                    request_id=request.request_id, error=grpc_errors.to_error_detail(status)
                )
            else:
                yield triage_pb2.AssessResult(request_id=request.request_id, assessment=value)

    def ReportOutcome(  # noqa: N802
        self, request: triage_pb2.OutcomeReport, context: grpc.ServicerContext
    ) -> triage_pb2.OutcomeAck:
        reference = request.WhichOneof("reference")
        if reference is None:
            grpc_errors.abort(context, _MISSING_REFERENCE, "")
        try:
            occurred_at = (
                request.occurred_at.ToDatetime(tzinfo=UTC)
                if request.HasField("occurred_at")
                else None
            )
            ack = self._engine.report_outcome(
                audit_id=request.audit_id if reference == "audit_id" else None,
                encounter_reference=(
                    request.encounter_reference if reference == "encounter_reference" else None
                ),
                mace=request.mace,
                occurred_at=occurred_at,
            )
            return convert.outcome_ack(ack)
        except Exception as exc:
            self._failures.abort(context, exc, "ReportOutcome", "")
            raise

    def GetFairnessReport(  # noqa: N802
        self, request: triage_pb2.FairnessReportRequest, context: grpc.ServicerContext
    ) -> triage_pb2.FairnessReport:
        try:
            return convert.fairness_report(self._engine.fairness_report())
        except Exception as exc:
            self._failures.abort(context, exc, "GetFairnessReport", "")
            raise


_MISSING_REFERENCE = grpc_errors.ErrorStatus(
    grpc.StatusCode.INVALID_ARGUMENT,
    "missing_reference",
    "",
    "invalid request: missing_reference (set audit_id or encounter_reference)",
)


class HealthTracker:
    """Keeps grpc.health.v1 in step with ``engine.ready`` (polled; a model may be loaded or
    lost later by a reload) until :meth:`shutdown`, after which it stays NOT_SERVING."""

    def __init__(self, engine: Engine) -> None:
        self.servicer = health.HealthServicer(experimental_non_blocking=True)
        self._engine = engine
        self._stop = threading.Event()
        self._serving: bool | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        self.refresh()

    def refresh(self) -> bool:
        with self._lock:
            if self._stop.is_set():
                return False
            serving = bool(self._engine.ready)
            if serving != self._serving:
                status = (
                    health_pb2.HealthCheckResponse.SERVING
                    if serving
                    else health_pb2.HealthCheckResponse.NOT_SERVING
                )
                for name in ("", TRIAGE_SERVICE, ADMIN_SERVICE):
                    self.servicer.set(name, status)
                if self._serving is not None or serving:
                    logger.info("health %s", "SERVING" if serving else "NOT_SERVING")
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

    def __init__(self, server: grpc.Server, health_tracker: HealthTracker) -> None:
        self.grpc_server = server
        self.health = health_tracker

    def start(self) -> None:
        self.grpc_server.start()
        self.health.start()

    def stop(self, grace: float | None) -> threading.Event:
        """Health NOT_SERVING first, then refuse new calls and give calls in flight ``grace``
        seconds. The returned event is set once every call has ended."""
        self.health.shutdown()
        return self.grpc_server.stop(grace)

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
    max_message = settings.max_bundle_bytes + _MESSAGE_OVERHEAD
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="grpc-worker"),
        options=[
            ("grpc.max_receive_message_length", max_message),
            ("grpc.max_send_message_length", max_message),
            ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
        ],
    )
    triage_pb2_grpc.add_TriageServiceServicer_to_server(TriageServicer(engine, metrics), server)
    if admin is not None:
        triage_pb2_grpc.add_TriageAdminServicer_to_server(admin, server)
    tracker = HealthTracker(engine)
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
    return TriageServer(server, tracker), port


__all__ = [
    "SERVICE_NAMES",
    "HealthTracker",
    "ModelRef",
    "TriageServer",
    "TriageServicer",
    "create_server",
]
