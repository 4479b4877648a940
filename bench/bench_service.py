"""Benchmark: the triage service's Assess against a bare gRPC echo server, in ONE run.

    .venv/bin/python bench/bench_service.py [--registry DIR] [--seconds 4] [--workers 2]

1. Starts ``triage serve`` (port 0, a temporary data dir, real SQLite audit store) and
   ``bench/echo_server.py`` (same sync server, same worker threads, same message limits) as
   separate processes.
2. Sends the same request bytes to both (a serialized ``AssessRequest`` carrying a 20-entry
   FHIR bundle and a fresh request_id per call, so Assess really assesses and records every
   call instead of replaying idempotently): concurrency 1 (one client process) and
   concurrency 32 (4 client processes x 8 threads), each for ``--seconds`` after a warm-up.
3. Assess p50 at concurrency 1 on a ~1 MB whole-history bundle.
4. Prints p50/p99 and req/s per case and the ratios against the targets
   (Assess p50 at c=1 within 1.3x of echo; Assess throughput at c=32 >= 60% of echo's).

Clients run in other processes than the servers (and the c=32 clients in several), so client
CPU is not charged to the server's GIL. Bounded: about 30 s plus the model build when the
registry has no active model. Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
ASSESS = "/triage.v1.TriageService/Assess"
ECHO = "/bench.Echo/Echo"
C32_PROCESSES = 4
C32_THREADS = 8


@dataclass(frozen=True)
class Result:
    name: str
    concurrency: int
    latencies_s: list[float]
    elapsed_s: float
    errors: int

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_s) * 1e3

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3

    @property
    def rps(self) -> float:
        return len(self.latencies_s) / self.elapsed_s


def _request_bytes(bundle: bytes, request_id: str) -> bytes:
    from triage.v1 import triage_pb2

    return triage_pb2.AssessRequest(fhir_bundle=bundle, request_id=request_id).SerializeToString()


def _client_process(
    target: str,
    method: str,
    bundle: bytes,
    threads: int,
    warmup_s: float,
    seconds: float,
    max_calls: int,
    tag: str,
    out: mp.Queue,  # type: ignore[type-arg]
) -> None:
    channel = grpc.insecure_channel(target)
    call = channel.unary_unary(method)  # bytes in, bytes out: no client-side decoding
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start_barrier = threading.Barrier(threads)

    def loop(k: int) -> None:
        local: list[float] = []
        n = 0
        start_barrier.wait()
        warm_until = time.perf_counter() + warmup_s
        end = warm_until + seconds
        while True:
            payload = _request_bytes(bundle, f"{tag}-{os.getpid()}-{k}-{n}")
            n += 1
            t0 = time.perf_counter()
            if t0 >= end or len(local) >= max_calls:
                break
            try:
                call(payload, timeout=30)
            except grpc.RpcError:
                with lock:
                    errors[0] += 1
                continue
            t1 = time.perf_counter()
            if t0 >= warm_until:
                local.append(t1 - t0)
        with lock:
            latencies.extend(local)

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    t_start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t_start - warmup_s
    channel.close()
    out.put((latencies, elapsed, errors[0]))


def measure(
    name: str,
    target: str,
    method: str,
    bundle: bytes,
    *,
    processes: int,
    threads: int,
    seconds: float,
    warmup_s: float = 1.0,
    max_calls: int = 10**9,
) -> Result:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [
        ctx.Process(
            target=_client_process,
            args=(
                target,
                method,
                bundle,
                threads,
                warmup_s,
                seconds,
                max_calls,
                f"{name}-{p}",
                queue,
            ),
        )
        for p in range(processes)
    ]
    for p in procs:
        p.start()
    parts = [queue.get(timeout=seconds + warmup_s + 120) for _ in procs]
    for p in procs:
        p.join()
    latencies = [x for part in parts for x in part[0]]
    elapsed = max(part[1] for part in parts)
    errors = sum(part[2] for part in parts)
    if not latencies:
        raise RuntimeError(f"{name}: no successful calls ({errors} errors)")
    return Result(name, processes * threads, latencies, elapsed, errors)


def _read_port_lines(proc: subprocess.Popen[str], keys: tuple[str, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    assert proc.stdout is not None
    while len(found) < len(keys):
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server exited with {proc.wait()} before printing its ports")
        key, _, value = line.strip().partition("=")
        if key in keys:
            found[key] = int(value)
    return found


def _wait_serving(target: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise RuntimeError("the service did not become SERVING")


def _ensure_registry(registry: Path | None, tmp: Path) -> Path:
    from models.registry import Registry

    candidate = registry if registry is not None else ROOT / "models" / "registry"
    if candidate.exists() and Registry(candidate).active_version("mace-30d") is not None:
        return candidate
    from models.build import build_default

    target = tmp / "registry"
    print(f"building a model into {target} (no active model in {candidate}) ...", flush=True)
    build_default(target)
    return target


def _bundles() -> tuple[bytes, bytes]:
    """A 20-entry triage bundle (a 17-entry triage bundle plus one past encounter with two
    vital-sign observations) and a ~1 MB whole-history bundle of the same patient."""
    import orjson

    from models.cohort.bundles import build_bundle, build_history_bundle, example_cases

    for case in example_cases(seed=11, n=200):
        base = build_bundle(case, validate=False)
        if len(orjson.loads(base)["entry"]) != 17:
            continue
        small = build_history_bundle(case, len(base) + 1)
        if len(orjson.loads(small)["entry"]) == 20:
            return small, build_history_bundle(case, 1_000_000)
    raise RuntimeError("could not build a 20-entry bundle from the example cases")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, help="model registry (default: the repo's)")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per case")
    parser.add_argument("--workers", type=int, default=2, help="server worker threads")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp_name:
        tmp = Path(tmp_name)
        registry = _ensure_registry(args.registry, tmp)
        small, history = _bundles()
        env = {**os.environ, "TRIAGE_LOG_LEVEL": "WARNING", "TRIAGE_WORKERS": str(args.workers)}
        service = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service",
                "serve",
                "--port",
                "0",
                "--metrics-port",
                "0",
                "--data-dir",
                str(tmp / "data"),
                "--registry",
                str(registry),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=ROOT,
        )
        echo = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "echo_server.py"),
                "--port",
                "0",
                "--workers",
                str(args.workers),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        try:
            service_target = f"127.0.0.1:{_read_port_lines(service, ('grpc_port',))['grpc_port']}"
            echo_target = f"127.0.0.1:{_read_port_lines(echo, ('port',))['port']}"
            _wait_serving(service_target)
            print(
                f"payload: 20-entry bundle {len(small)} bytes; history bundle {len(history)} "
                f"bytes; server workers {args.workers}; cpus {os.cpu_count()}",
                flush=True,
            )
            s = args.seconds
            results = [
                measure("echo", echo_target, ECHO, small, processes=1, threads=1, seconds=s),
                measure("assess", service_target, ASSESS, small, processes=1, threads=1, seconds=s),
                measure(
                    "echo",
                    echo_target,
                    ECHO,
                    small,
                    processes=C32_PROCESSES,
                    threads=C32_THREADS,
                    seconds=s,
                ),
                measure(
                    "assess",
                    service_target,
                    ASSESS,
                    small,
                    processes=C32_PROCESSES,
                    threads=C32_THREADS,
                    seconds=s,
                ),
                measure(
                    "assess-1MB",
                    service_target,
                    ASSESS,
                    history,
                    processes=1,
                    threads=1,
                    seconds=s,
                    warmup_s=0.5,
                    max_calls=200,
                ),
            ]
        finally:
            for proc in (service, echo):
                proc.send_signal(signal.SIGTERM)
            for proc in (service, echo):
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    print(f"{'case':<12}{'conc':>5}{'calls':>8}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'errors':>8}")
    for r in results:
        print(
            f"{r.name:<12}{r.concurrency:>5}{len(r.latencies_s):>8}{r.p50_ms:>9.3f}"
            f"{r.p99_ms:>9.3f}{r.rps:>9.0f}{r.errors:>8}"
        )
    echo1, assess1, echo32, assess32, _ = results
    p50_ratio = assess1.p50_ms / echo1.p50_ms
    rps_ratio = assess32.rps / echo32.rps
    print(
        f"Assess/echo p50 at c=1:        {p50_ratio:.2f}x  (target <= 1.30x) "
        f"{'MET' if p50_ratio <= 1.3 else 'NOT MET'}"
    )
    print(
        f"Assess/echo req/s at c=32:     {rps_ratio:.0%}  (target >= 60%) "
        f"{'MET' if rps_ratio >= 0.6 else 'NOT MET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
