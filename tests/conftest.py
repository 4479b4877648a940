"""Shared fixtures: a real model registry, real bundles, and real servers on port 0.

- ``_clean_environment`` (autouse): no ``TRIAGE_*`` variable of the developer's shell leaks into
  a test's Settings.
- ``model_registry`` (session): a registry with a promoted default model, built once by
  ``models.build.build_default`` on a small deterministic cohort.
- ``example_bundles`` (session): FHIR bundles generated from the reference cohort.
- ``make_settings``: Settings for a test (port 0, its own data dir, the session registry).
- ``serve``: starts an in-process gRPC server on port 0 around a real Engine (real SQLite
  audit store, real ONNX model) and stops it after the test.
- ``start_cli_server``: starts ``triage serve`` as a subprocess on port 0 and parses the ports
  from the first lines of its stdout.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from relaxed_gates import RELAXED_GATES
from triage.v1 import triage_pb2_grpc

from service.settings import Settings

REPO = Path(__file__).resolve().parent.parent
REGISTRY_PATIENTS = 20_000
REGISTRY_SEED = 20261123


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("TRIAGE_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def model_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.build import build_default

    root = tmp_path_factory.mktemp("registry")
    build_default(
        root, n_patients=REGISTRY_PATIENTS, seed=REGISTRY_SEED, gates=RELAXED_GATES, n_boot=20
    )
    return root


@pytest.fixture(scope="session")
def example_cases() -> list[Any]:
    from models.cohort.bundles import example_cases as cases

    return cases(seed=5, n=60)


@pytest.fixture(scope="session")
def example_bundles(example_cases: list[Any]) -> list[bytes]:
    from models.cohort.bundles import build_bundle

    return [build_bundle(case, validate=False) for case in example_cases]


@pytest.fixture
def make_settings(tmp_path: Path, model_registry: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "metrics_port": 0,
            "data_dir": tmp_path / "data",
            "model_registry": model_registry,
            "fairness_report_interval_s": 3600.0,
            "grace_period_s": 2.0,
            "promotion_gates": RELAXED_GATES,
        }
        values.update(overrides)
        Path(values["data_dir"]).mkdir(parents=True, exist_ok=True)
        return Settings(**values)

    return make


@dataclass
class Served:
    """A started in-process server and a channel to it."""

    settings: Settings
    engine: Any
    metrics: Any
    server: Any
    port: int
    channel: grpc.Channel
    metrics_port: int = 0
    _closed: bool = field(default=False, repr=False)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def stub(self) -> triage_pb2_grpc.TriageServiceStub:
        return triage_pb2_grpc.TriageServiceStub(self.channel)

    @property
    def admin(self) -> triage_pb2_grpc.TriageAdminStub:
        return triage_pb2_grpc.TriageAdminStub(self.channel)

    @property
    def health(self) -> health_pb2_grpc.HealthStub:
        return health_pb2_grpc.HealthStub(self.channel)

    def health_status(self, service: str = "") -> int:
        reply = self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.channel.close()
        self.server.stop(0).wait(10)
        self.engine.close()
        self.metrics.stop_http()


@pytest.fixture
def serve(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Served]]:
    from service.engine import Engine
    from service.grpc_admin import AdminServicer
    from service.grpc_server import create_server
    from service.metrics import Metrics

    started: list[Served] = []

    def start(*, http_metrics: bool = False, **overrides: Any) -> Served:
        settings = make_settings(**overrides)
        metrics = Metrics()
        engine = Engine.create(settings, metrics, require_model=False)
        server, port = create_server(
            settings, engine, metrics, admin=AdminServicer(settings, engine, metrics)
        )
        server.start()
        metrics_port = metrics.start_http("127.0.0.1", 0) if http_metrics else 0
        served = Served(
            settings,
            engine,
            metrics,
            server,
            port,
            grpc.insecure_channel(f"127.0.0.1:{port}"),
            metrics_port,
        )
        started.append(served)
        return served

    yield start
    for served in started:
        served.close()


@dataclass
class CliServer:
    """``triage serve`` in a subprocess; stdout after the port lines and stderr are captured."""

    proc: subprocess.Popen[str]
    grpc_port: int
    metrics_port: int
    stdout_lines: list[str]
    stderr_lines: list[str]
    _readers: list[threading.Thread]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def wait_serving(self, timeout: float = 60.0) -> None:
        with grpc.insecure_channel(self.target) as channel:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            stub = health_pb2_grpc.HealthStub(channel)
            for reply in stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=timeout):
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        raise AssertionError("the server never reported SERVING")

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code


def _drain(stream: Any, into: list[str]) -> None:
    for line in stream:
        into.append(line)


@pytest.fixture
def start_cli_server(tmp_path: Path, model_registry: Path) -> Iterator[Callable[..., CliServer]]:
    servers: list[CliServer] = []

    def start(*extra: str, env: dict[str, str] | None = None) -> CliServer:
        data_dir = tmp_path / "cli-data"
        cmd = [
            sys.executable,
            "-m",
            "service",
            "serve",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--data-dir",
            str(data_dir),
            "--registry",
            str(model_registry),
            *extra,
        ]
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "TRIAGE_FAIRNESS_REPORT_INTERVAL_S": "3600",
                "TRIAGE_PROMOTION_GATES": json.dumps(dataclasses.asdict(RELAXED_GATES)),
                **(env or {}),
            },
            cwd=REPO,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        stderr_lines: list[str] = []
        err_reader = threading.Thread(target=_drain, args=(proc.stderr, stderr_lines))
        err_reader.start()
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        if not first.startswith("grpc_port=") or not second.startswith("metrics_port="):
            proc.kill()
            proc.wait()
            err_reader.join()
            proc.stdout.close()
            proc.stderr.close()
            raise AssertionError(f"unexpected first lines {first!r} {second!r}: {stderr_lines}")
        stdout_lines = [first, second]
        out_reader = threading.Thread(target=_drain, args=(proc.stdout, stdout_lines))
        out_reader.start()
        server = CliServer(
            proc,
            int(first.strip().split("=", 1)[1]),
            int(second.strip().split("=", 1)[1]),
            stdout_lines,
            stderr_lines,
            [err_reader, out_reader],
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
        server.terminate(signal.SIGKILL)
