"""A bare gRPC echo server: the floor the triage service is measured against.

Same transport settings as ``service.grpc_server.create_server`` (synchronous ``grpc.server``,
a ThreadPoolExecutor of ``--workers`` threads, the same message limits), one unary method
``/bench.Echo/Echo`` that returns the request bytes unchanged (no protobuf decoding, no work),
so the difference to Assess is the service's own cost. Prints ``port=<n>`` on the first line.

    python bench/echo_server.py --port 0 --workers 2
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
import threading
from concurrent import futures

import grpc

METHOD = "/bench.Echo/Echo"
_MAX_MESSAGE = 8 * 1024 * 1024 + 1024 * 1024  # Settings.max_bundle_bytes default + overhead


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def create_echo_server(host: str, port: int, workers: int) -> tuple[grpc.Server, int]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc-worker"),
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
        ],
    )
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"{host}:{port}")
    return server, bound


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    server, port = create_echo_server(args.host, args.port, args.workers)
    server.start()
    gc.collect()
    gc.freeze()
    print(f"port={port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.stop(1.0).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
