"""``triage``: serve, assess a bundle file, or send demo encounters to a running server.

    triage serve  [--host H] [--port P] [--metrics-port M] [--data-dir D] [--registry R]
                  [--workers N] [--log-level L]
    triage assess FILE.json [--encounter-id ID] [--request-id ID] [--json] [--data-dir D]
                  [--registry R]
    triage demo   [--target HOST:PORT] [--json] [--timeout S]
    triage admin  [--target HOST:PORT] [--token T] [--timeout S]
                  status|reload [VERSION]|rollback|shadow [VERSION]|activate

``triage admin`` calls TriageAdmin on a running server; the token is ``--token`` or the
``TRIAGE_ADMIN_TOKEN`` environment variable (the server's own setting of the same name).
It prints the ModelStatus as JSON; a refusal prints ``CODE reason: message`` to stderr and
exits 1.

Every option is also a setting (environment ``TRIAGE_*``, see docs/service.md); flags win.
``triage serve`` prints ``grpc_port=<n>`` and ``metrics_port=<n>`` as the first two lines of
stdout once both are bound (port 0 picks free ports); logs go to stderr as JSON lines.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, cast

from pydantic import ValidationError
from pydantic_settings import SettingsError

from service import logs
from service.keys import PseudonymKeyError
from service.settings import Settings

# Exit codes.
OK, FAILED, USAGE = 0, 1, 2


def _settings(args: argparse.Namespace, **flags: str) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    overrides: dict[str, Any] = {}
    for attr, field in flags.items():
        value = getattr(args, attr, None)
        if value is not None:
            overrides[field] = value
    return Settings(**overrides)


_SERVE_FLAGS = {
    "host": "host",
    "port": "port",
    "metrics_port": "metrics_port",
    "data_dir": "data_dir",
    "registry": "model_registry",
    "workers": "workers",
    "log_level": "log_level",
}
_LOCAL_FLAGS = {"data_dir": "data_dir", "registry": "model_registry", "log_level": "log_level"}


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args, **_SERVE_FLAGS)
    logs.configure(settings.log_level)
    from service.app import App  # imported late: `triage demo` needs no engine

    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app = App.start(settings)
    print(f"grpc_port={app.grpc_port}", flush=True)
    print(f"metrics_port={app.metrics_port}", flush=True)
    while not stop.wait(0.5):
        pass
    app.stop()
    return OK


def _assess(args: argparse.Namespace) -> int:
    settings = _settings(args, **_LOCAL_FLAGS)
    logs.configure(settings.log_level)
    from google.protobuf import json_format

    from service import convert, grpc_errors, screen
    from service.engine import Engine
    from service.metrics import Metrics

    bundle = Path(args.file).read_bytes()
    request_id = args.request_id or f"cli-{uuid.uuid4()}"
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine: Engine | None = None
    try:
        # Inside the try: no loadable model is a one-line error, as at the gRPC surface.
        engine = Engine.create(settings, Metrics())
        value = engine.assess(bundle, request_id=request_id, encounter_id=args.encounter_id)
    except Exception as exc:
        status = grpc_errors.classify(exc, request_id)
        if status.reason == grpc_errors.INTERNAL_REASON:
            raise
        print(f"{status.code.name}: {status.message}", file=sys.stderr)
        return FAILED
    finally:
        if engine is not None:
            engine.close()
    msg = convert.assessment(value)
    if args.json:
        print(json_format.MessageToJson(msg))
    else:
        print(screen.render(msg))
    return OK


def _demo(args: argparse.Namespace) -> int:
    from service import grpc_demo

    return grpc_demo.run(args.target, as_json=args.json, timeout=args.timeout)


def _admin(args: argparse.Namespace) -> int:
    import grpc
    from google.protobuf import json_format
    from triage.v1 import triage_pb2, triage_pb2_grpc

    from service.grpc_errors import REASON_KEY

    token = args.token
    if token is None:
        configured = _settings(args).admin_token
        token = configured.get_secret_value() if configured is not None else None
    if not token:
        print("triage admin: no token (--token or TRIAGE_ADMIN_TOKEN)", file=sys.stderr)
        return USAGE
    metadata = [("authorization", f"Bearer {token}")]
    version = getattr(args, "version", None) or ""
    with grpc.insecure_channel(args.target) as channel:
        stub = triage_pb2_grpc.TriageAdminStub(channel)
        calls: dict[str, Any] = {
            "status": lambda: stub.GetModelStatus(triage_pb2.GetModelStatusRequest(), **kw),
            "reload": lambda: stub.ReloadModel(
                triage_pb2.ReloadModelRequest(version=version), **kw
            ),
            "rollback": lambda: stub.Rollback(triage_pb2.RollbackRequest(), **kw),
            "shadow": lambda: stub.SetShadowModel(
                triage_pb2.SetShadowModelRequest(version=version), **kw
            ),
            "activate": lambda: stub.ActivateShadow(triage_pb2.ActivateShadowRequest(), **kw),
        }
        kw: dict[str, Any] = {"metadata": metadata, "timeout": args.timeout}
        try:
            status = calls[args.action]()
        except grpc.RpcError as err:
            call = cast(grpc.Call, err)
            reason = next(
                (str(v) for k, v in call.trailing_metadata() or () if k == REASON_KEY), ""
            )
            print(f"{call.code().name} {reason}: {call.details()}", file=sys.stderr)
            return FAILED
    print(json_format.MessageToJson(status))
    return OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triage", description="Chest-pain triage decision support over gRPC."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gRPC server (and /metrics)")
    serve.add_argument("--host", help="bind address (TRIAGE_HOST)")
    serve.add_argument("--port", type=int, help="gRPC port, 0 = any free (TRIAGE_PORT)")
    serve.add_argument(
        "--metrics-port", type=int, help="/metrics port, 0 = any free (TRIAGE_METRICS_PORT)"
    )
    serve.add_argument("--data-dir", type=Path, help="audit store and keys (TRIAGE_DATA_DIR)")
    serve.add_argument("--registry", type=Path, help="model registry (TRIAGE_MODEL_REGISTRY)")
    serve.add_argument("--workers", type=int, help="gRPC worker threads (TRIAGE_WORKERS)")
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.set_defaults(run=_serve)

    assess = sub.add_parser("assess", help="assess one FHIR bundle file in-process")
    assess.add_argument("file", type=Path, help="FHIR R4 Bundle (JSON)")
    assess.add_argument("--encounter-id", help="Encounter to assess (default: the active one)")
    assess.add_argument("--request-id", help="idempotency key (default: a new UUID)")
    assess.add_argument("--json", action="store_true", help="print the protobuf JSON")
    assess.add_argument("--data-dir", type=Path, help="audit store and keys (TRIAGE_DATA_DIR)")
    assess.add_argument("--registry", type=Path, help="model registry (TRIAGE_MODEL_REGISTRY)")
    assess.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    assess.set_defaults(run=_assess)

    demo = sub.add_parser("demo", help="send generated encounters to a running server")
    demo.add_argument("--target", default="127.0.0.1:50051", help="host:port of the server")
    demo.add_argument("--json", action="store_true", help="print the protobuf JSON")
    demo.add_argument("--timeout", type=float, default=10.0, help="per-call deadline, seconds")
    demo.set_defaults(run=_demo)

    admin = sub.add_parser("admin", help="model lifecycle on a running server (TriageAdmin)")
    admin.add_argument("--target", default="127.0.0.1:50051", help="host:port of the server")
    admin.add_argument("--token", help="admin token (default: TRIAGE_ADMIN_TOKEN)")
    admin.add_argument("--timeout", type=float, default=60.0, help="call deadline, seconds")
    actions = admin.add_subparsers(dest="action", required=True)
    actions.add_parser("status", help="what is serving (active and shadow)")
    reload = actions.add_parser("reload", help="load and swap in a version (default: ACTIVE)")
    reload.add_argument("version", nargs="?", help="registry version, e.g. v3")
    actions.add_parser("rollback", help="registry rollback, then serve the previous version")
    shadow = actions.add_parser("shadow", help="score a candidate in shadow (none: clear)")
    shadow.add_argument("version", nargs="?", help="registry version; omit to clear")
    actions.add_parser("activate", help="promote the shadow candidate (fairness-gated)")
    admin.set_defaults(run=_admin)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ValidationError as err:
        # The field and the constraint only: pydantic's own text quotes the input, and the
        # input may be a secret (the pseudonym key, the admin token).
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'settings'}: {e['msg']}"
            for e in err.errors(include_input=False, include_url=False)
        )
        print(f"triage: invalid settings: {problems}", file=sys.stderr)
        return USAGE
    except SettingsError as err:  # a JSON setting that is not JSON: names the field only
        print(f"triage: invalid settings: {err}", file=sys.stderr)
        return USAGE
    except PseudonymKeyError as err:  # a fixed text, never the key
        print(f"triage: cannot start: {err}", file=sys.stderr)
        return FAILED
    except OSError as err:
        # An address that does not resolve, a data dir that cannot be made. The reason only:
        # the file name could be an input file's, and a name can be a patient's.
        print(f"triage: cannot start: {err.strerror or type(err).__name__}", file=sys.stderr)
        return FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
