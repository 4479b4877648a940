"""Every non-fairness Prometheus metric of the service (names: docs/design.md).

``Metrics`` owns its own ``CollectorRegistry`` so several servers can live in one test
process. Label values come only from fixed sets (``service.labels``, ``RiskBand``, the stage
names, gRPC status names and error reason codes); callers never pass free text.

Counters by group carry the HEART band as ``stratum`` only; the overall figure is
``sum without (stratum)``, so no series is counted twice.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.registry import Collector

from service.assessment import ModelRef, RiskBand
from service.labels import GroupLabels

logger = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("parse", "extract", "infer", "audit", "persist", "total")

# From 50 us (one ONNX row plus bookkeeping) to 1 s (a multi-MB bundle on a busy host).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


def _flag(value: bool) -> str:
    return "true" if value else "false"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.assessments = Counter(
            "triage_assessments_total",
            "Assessments answered, by facility, model band and escalation.",
            ("facility", "band", "escalated"),
            registry=r,
        )
        self.assessments_by_group = Counter(
            "triage_assessments_by_group_total",
            "Assessments by audited group and HEART-band stratum (sum over stratum = overall).",
            ("facility", "attribute", "group", "stratum", "escalated"),
            registry=r,
        )
        self.errors = Counter(
            "triage_errors_total",
            "Requests answered with an error, by gRPC status name and reason code.",
            ("code", "reason"),
            registry=r,
        )
        self.outcomes = Counter(
            "triage_outcomes_total",
            "Outcomes reported, by audited group, MACE and the model band of the decision.",
            ("facility", "attribute", "group", "mace", "band"),
            registry=r,
        )
        self.audit_store_failures = Counter(
            "triage_audit_store_failures_total",
            "Assessments refused because the audit store could not be read or written.",
            registry=r,
        )
        self.stage_latency = Histogram(
            "triage_stage_latency_seconds",
            "Time spent per pipeline stage.",
            ("stage",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "triage_model_info",
            "The model being served (value 1).",
            ("name", "version", "sha256", "provider"),
            registry=r,
        )
        self.model_loaded = Gauge(
            "triage_model_loaded", "1 when a model is loaded and warmed up.", registry=r
        )
        self.model_load_failures = Counter(
            "triage_model_load_failures_total",
            "Model loads that failed, by reason code.",
            ("reason",),
            registry=r,
        )
        self.shadow_assessments = Counter(
            "triage_shadow_assessments_total",
            "Live requests scored by the shadow candidate, by facility, its band and escalation.",
            ("facility", "band", "escalated"),
            registry=r,
        )
        self.shadow_disagreements = Counter(
            "triage_shadow_disagreements_total",
            "Shadow-scored requests where the candidate's band differs from the active model's.",
            ("facility",),
            registry=r,
        )
        self.shadow_errors = Counter(
            "triage_shadow_errors_total",
            "Shadow scorings that failed (the response was not affected).",
            registry=r,
        )
        self.shadow_info = Gauge(
            "triage_shadow_model_info",
            "The shadow candidate (value 1); no series while none is set.",
            ("name", "version", "sha256", "provider"),
            registry=r,
        )
        self.promotions_refused = Counter(
            "triage_shadow_promotions_refused_total",
            "ActivateShadow calls refused because the candidate was less fair.",
            registry=r,
        )
        # Children bound once: .labels() is a dict lookup under a lock, on every request.
        self._stage = {stage: self.stage_latency.labels(stage) for stage in STAGES}
        self._model_lock = threading.Lock()
        self._http: WSGIServer | None = None

    # --- recording -----------------------------------------------------------------------
    def observe_stage(self, stage: str, seconds: float) -> None:
        self._stage[stage].observe(seconds)

    def expect_facilities(self, facilities: Iterable[str]) -> None:
        """Create every assessment series of ``facilities`` at 0. A labelled counter has no
        series until its first increment, so a replica whose every request fails would
        export no denominator and the server-error ratio would record nothing."""
        for facility in facilities:
            for band in RiskBand:
                for flag in ("true", "false"):
                    self.assessments.labels(facility, band.value, flag)

    def record_assessment(
        self, labels: GroupLabels, band: str, stratum: str, escalated: bool
    ) -> None:
        flag = _flag(escalated)
        self.assessments.labels(labels.facility, band, flag).inc()
        for attribute, group in labels.by_attribute():
            self.assessments_by_group.labels(labels.facility, attribute, group, stratum, flag).inc()

    def record_outcome(self, labels: GroupLabels, mace: bool, band: str) -> None:
        flag = _flag(mace)
        for attribute, group in labels.by_attribute():
            self.outcomes.labels(labels.facility, attribute, group, flag, band).inc()

    def record_error(self, code: str, reason: str) -> None:
        self.errors.labels(code, reason).inc()

    def record_audit_store_failure(self) -> None:
        self.audit_store_failures.inc()

    def record_model_loaded(self, ref: ModelRef) -> None:
        with self._model_lock:
            self.model_info.clear()  # exactly one series: the model now served
            self.model_info.labels(ref.name, ref.version, ref.sha256, ref.execution_provider).set(1)
            self.model_loaded.set(1)

    def record_model_unloaded(self) -> None:
        with self._model_lock:
            self.model_info.clear()
            self.model_loaded.set(0)

    def record_model_load_failure(self, reason: str) -> None:
        self.model_load_failures.labels(reason).inc()

    def record_shadow_model(self, ref: ModelRef | None) -> None:
        with self._model_lock:
            self.shadow_info.clear()
            if ref is not None:
                self.shadow_info.labels(
                    ref.name, ref.version, ref.sha256, ref.execution_provider
                ).set(1)

    def record_shadow(self, facility: str, band: str, escalated: bool, disagrees: bool) -> None:
        self.shadow_assessments.labels(facility, band, _flag(escalated)).inc()
        if disagrees:
            self.shadow_disagreements.labels(facility).inc()

    def record_shadow_error(self) -> None:
        self.shadow_errors.inc()

    def record_promotion_refused(self) -> None:
        self.promotions_refused.inc()

    def register(self, collectors: Iterable[Collector]) -> None:
        """Add collectors read at scrape time (the fairness gauges)."""
        for collector in collectors:
            self.registry.register(collector)

    # --- exposition ----------------------------------------------------------------------
    def start_http(
        self, host: str, port: int, idle_timeout_s: float = 10.0, max_connections: int = 16
    ) -> int:
        """Serve ``/metrics`` on a daemon thread; returns the bound port (``port=0``: any free).

        prometheus_client's own server gives every connection a thread with no timeout, so
        idle connections (300 of them in a review) each held a thread for good. Here a read
        that waits longer than ``idle_timeout_s`` closes the connection, and at most
        ``max_connections`` are served at once (one more is closed at once): a client that
        trickles a byte at a time still holds one thread, never all of them."""
        if self._http is not None:
            raise RuntimeError("metrics HTTP server already started")

        class Handler(WSGIRequestHandler):
            timeout = idle_timeout_s

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes are not worth a log line each

        slots = threading.BoundedSemaphore(max_connections)

        class Server(ThreadingMixIn, WSGIServer):
            daemon_threads = True
            address_family = socket.getaddrinfo(host, port)[0][0]

            def process_request(self, request: Any, client_address: Any) -> None:
                if not slots.acquire(blocking=False):
                    self.shutdown_request(request)  # Prometheus retries at its next scrape
                    return
                super().process_request(request, client_address)

            def process_request_thread(self, request: Any, client_address: Any) -> None:
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    slots.release()

            def handle_error(self, request: Any, client_address: Any) -> None:
                # socketserver prints a traceback to stderr; a client that timed out or went
                # away is not worth one, anything else is logged by its class.
                error = sys.exc_info()[1]
                if not isinstance(error, (TimeoutError, ConnectionError)):
                    logger.warning("metrics request failed: %s", type(error).__name__)

        server = make_server(
            host, port, make_wsgi_app(self.registry), Server, handler_class=Handler
        )
        threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
        self._http = server
        bound = int(server.server_address[1])
        logger.info("metrics served on %s:%d", host, bound)
        return bound

    def stop_http(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
