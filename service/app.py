"""Start-up and shutdown wiring of ``triage serve``.

Start-up: metrics -> engine (pseudonym key, audit store, model from the registry, warm-up)
-> /metrics HTTP -> gRPC server (health NOT_SERVING until the engine is ready: without a
loadable model the server still starts, answers health NOT_SERVING and Assess UNAVAILABLE,
until an admin ReloadModel succeeds) ->
``gc.freeze()`` (the import and warm-up heap is moved out of the collector's sight: no
multi-millisecond collection pauses over it in the request tail).

Shutdown (:meth:`App.stop`, on SIGTERM/SIGINT): health NOT_SERVING, new calls refused, calls in
flight get ``settings.grace_period_s`` to finish, then ``engine.close()`` flushes and closes the
audit store. A start that fails part-way undoes what it had started.
"""

from __future__ import annotations

import gc
import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass

from service.engine import Engine
from service.grpc_admin import AdminServicer
from service.grpc_server import TriageServer, create_server
from service.metrics import Metrics
from service.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class App:
    settings: Settings
    metrics: Metrics
    engine: Engine
    server: TriageServer
    grpc_port: int
    metrics_port: int

    @classmethod
    def start(cls, settings: Settings) -> App:
        started = time.monotonic()
        metrics = Metrics()
        engine = Engine.create(settings, metrics, require_model=False)
        # A start that fails part-way undoes what it had started, newest first, each step
        # even if an earlier one fails.
        with ExitStack() as undo:
            undo.callback(engine.close)
            # /metrics before the gRPC port is bound: grpcio frees a bound port only once its
            # server has started, so nothing else may fail between binding and starting.
            metrics_port = metrics.start_http(settings.host, settings.metrics_port)
            undo.callback(metrics.stop_http)
            server, grpc_port = create_server(
                settings, engine, metrics, admin=AdminServicer(settings, engine, metrics)
            )
            undo.callback(server.stop, None)
            server.start()
            undo.pop_all()  # started: nothing to undo
        ref = engine.model_ref if engine.ready else None
        logger.info(
            "serving",
            extra={
                "fields": {
                    "grpc_port": grpc_port,
                    "metrics_port": metrics_port,
                    "workers": settings.workers,
                    "ready": engine.ready,
                    "model": ref.name if ref else None,
                    "model_version": ref.version if ref else None,
                    "execution_provider": ref.execution_provider if ref else None,
                    "startup_s": round(time.monotonic() - started, 3),
                }
            },
        )
        gc.collect()
        gc.freeze()
        return cls(settings, metrics, engine, server, grpc_port, metrics_port)

    def stop(self) -> None:
        """Graceful: health NOT_SERVING, refuse new calls, let calls in flight finish within the
        grace period, then flush and close the audit store."""
        grace = self.settings.grace_period_s
        logger.info("shutting down", extra={"fields": {"grace_period_s": grace}})
        done = self.server.stop(grace)
        # stop() cancels what is still running when the grace period ends; allow a moment for
        # the cancelled handlers to unwind before the store closes under them.
        if not done.wait(grace + 5.0):
            logger.warning("calls still running after the grace period")
        self.engine.close()
        self.metrics.stop_http()
        logger.info("stopped")
