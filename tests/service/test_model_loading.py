"""Model loading against damaged registries: start-up falls back to HISTORY when ACTIVE does
not load, malformed registry content is a typed refusal (FAILED_PRECONDITION with its reason,
counted) rather than INTERNAL or a crash, and version names are checked before any file is
touched (docs/lifecycle.md)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import onnx
import pytest
from grpc_health.v1 import health_pb2
from relaxed_gates import RELAXED_GATES
from triage.v1 import triage_pb2

from models.registry import Registry
from service.errors import ModelNotReady

TOKEN = "model-loading-admin-token"
AUTH = [("authorization", f"Bearer {TOKEN}")]
NAME = "mace-30d"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _nan_graph(onnx_bytes: bytes) -> bytes:
    """NaN intercepts: the graph parses and has the right signature (the registry's static
    checks accept it) but answers NaN."""
    proto = onnx.load_from_string(onnx_bytes)
    for node in proto.graph.node:
        for attr in node.attribute:
            if node.op_type == "LinearClassifier" and attr.name == "intercepts":
                attr.floats[:] = [float("nan")] * len(attr.floats)
    return proto.SerializeToString()


@pytest.fixture
def registry(model_registry: Path, tmp_path: Path) -> Path:
    """A private copy of the session registry: v1 good and ACTIVE, v2 a registered NaN model,
    v3 a copy of v1 with a malformed manifest (``"metrics": []``)."""
    root = tmp_path / "registry"
    shutil.copytree(model_registry, root)
    reg = Registry(root)
    v1 = reg.load(NAME, "v1")
    reg.register(
        NAME,
        _nan_graph(v1.onnx_path.read_bytes()),
        thresholds=v1.manifest.thresholds,
        metrics=dict(v1.manifest.metrics),
        training_fingerprint=v1.manifest.training_fingerprint,
        model_card="nan",
    )
    shutil.copytree(root / NAME / "v1", root / NAME / "v3")
    _set_metrics(root / NAME / "v3" / "manifest.json", [])
    return root


def _set_metrics(path: Path, value: object) -> None:
    data = json.loads(path.read_text())
    data["metrics"] = value
    path.write_text(json.dumps(data))


def _point(root: Path, active: bytes, history: bytes = b"") -> None:
    """ACTIVE and HISTORY as an older `promote`, other gates or a hand edit may leave them."""
    (root / NAME / "ACTIVE").write_bytes(active)
    (root / NAME / "HISTORY").write_bytes(history)


def _failures(served: Any, reason: str) -> float:
    value = served.metrics.registry.get_sample_value(
        "triage_model_load_failures_total", {"reason": reason}
    )
    return float(value or 0.0)


def _refusal(call: Callable[..., Any], request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call(request, metadata=AUTH, timeout=30)
    return err.value.code(), dict(err.value.trailing_metadata())["triage-error-reason"]


# --- start-up ------------------------------------------------------------------------------


def test_start_up_serves_the_newest_history_version_that_loads(
    serve: Callable[..., Any], registry: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # ACTIVE v2 answers NaN; HISTORY's newest (v3) has a malformed manifest; v1 is good.
    _point(registry, b"v2\n", b"v1\nv3\n")
    served = serve(model_registry=registry, registry_poll_s=3600)
    assert served.engine.ready
    assert served.engine.model_ref.version == "v1"
    assert served.health_status() == SERVING
    assert _failures(served, "warmup_output_not_finite") == 1
    assert _failures(served, "manifest_invalid") == 1
    fallback = [r for r in caplog.records if "serving the newest HISTORY" in r.getMessage()]
    assert [r.fields for r in fallback] == [  # type: ignore[attr-defined]
        {"reason": "warmup_output_not_finite", "version": "v1"}
    ]
    assert Registry(registry).active_version(NAME) == "v2"  # the registry is not changed
    assert served.engine.check_registry() is None  # the broken ACTIVE is not retried
    assert _failures(served, "warmup_output_not_finite") == 1


@pytest.mark.parametrize(
    ("active", "reason"),
    [
        (b"\xff\xfe\n", "registry_state_invalid"),
        (b"v3\n", "manifest_invalid"),
        (None, "registry_state_invalid"),  # ACTIVE is a directory
    ],
    ids=["active-not-utf8", "manifest-metrics-list", "active-a-directory"],
)
def test_a_damaged_active_at_start_up_falls_back_or_starts_not_serving(
    serve: Callable[..., Any], registry: Path, active: bytes | None, reason: str
) -> None:
    if active is None:
        (registry / NAME / "ACTIVE").unlink()
        (registry / NAME / "ACTIVE").mkdir()
        (registry / NAME / "HISTORY").write_text("v1\n")
    else:
        _point(registry, active, b"v1\n")
    served = serve(model_registry=registry, registry_poll_s=3600)
    assert served.engine.model_ref.version == "v1"
    assert _failures(served, reason) == 1
    (registry / NAME / "HISTORY").unlink()  # nothing to fall back on: up, but NOT_SERVING
    bare = serve(model_registry=registry, registry_poll_s=3600, data_dir=registry.parent / "d2")
    assert not bare.engine.ready
    assert bare.health_status() == NOT_SERVING
    assert _failures(bare, reason) == 1


def test_nothing_loadable_starts_not_serving_and_require_model_refuses(
    serve: Callable[..., Any], registry: Path, engine_factory: Callable[..., Any]
) -> None:
    _point(registry, b"v2\n", b"v3\n")
    served = serve(model_registry=registry, registry_poll_s=3600)
    assert not served.engine.ready
    assert served.health_status() == NOT_SERVING
    assert _failures(served, "warmup_output_not_finite") == 1
    assert _failures(served, "manifest_invalid") == 1
    with pytest.raises(ModelNotReady) as err:
        engine_factory(model_registry=registry, data_dir=registry.parent / "d2")
    assert err.value.reason == "warmup_output_not_finite"  # ACTIVE's reason, not a fallback's


# --- malformed registry content over admin gRPC ----------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: _set_metrics(p, []),
        lambda p: _set_metrics(p, None),
        lambda p: p.write_bytes(b'{"sha256": "\xff\xfe"}'),
        lambda p: (p.unlink(), p.mkdir()),
    ],
    ids=["metrics-list", "metrics-null", "not-utf8", "a-directory"],
)
def test_a_malformed_manifest_is_failed_precondition_and_counted(
    serve: Callable[..., Any], registry: Path, damage: Callable[[Path], Any]
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry, registry_poll_s=3600)
    damage(registry / NAME / "v3" / "manifest.json")
    for call, request in (
        (served.admin.ReloadModel, triage_pb2.ReloadModelRequest(version="v3")),
        (served.admin.SetShadowModel, triage_pb2.SetShadowModelRequest(version="v3")),
    ):
        assert _refusal(call, request) == (grpc.StatusCode.FAILED_PRECONDITION, "manifest_invalid")
    assert _failures(served, "manifest_invalid") == 2
    assert served.engine.model_ref.version == "v1"
    assert served.health_status() == SERVING


def test_the_watcher_counts_an_unreadable_active_once(
    serve: Callable[..., Any], registry: Path
) -> None:
    served = serve(model_registry=registry, registry_poll_s=3600)  # polled by hand below
    (registry / NAME / "ACTIVE").write_bytes(b"\xff\n")
    assert served.engine.check_registry() is None
    assert served.engine.check_registry() is None
    assert _failures(served, "registry_state_invalid") == 1
    assert served.engine.model_ref.version == "v1"
    Registry(registry).promote(NAME, "v1", RELAXED_GATES)  # repairs ACTIVE
    (registry / NAME / "ACTIVE").write_bytes(b"v3\n")
    assert served.engine.check_registry() is None
    assert _failures(served, "manifest_invalid") == 1
    assert served.engine.model_ref.version == "v1"


# --- version names ---------------------------------------------------------------------------

SENTINEL = "SENTINELPHI123"


@pytest.mark.parametrize("version", ["v" + "9" * 5000, SENTINEL, "v1\n", "../v1", "v01"])
def test_a_string_that_is_not_a_version_name_is_version_not_found(
    serve: Callable[..., Any], registry: Path, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry, registry_poll_s=3600)
    for call, request in (
        (served.admin.ReloadModel, triage_pb2.ReloadModelRequest(version=version)),
        (served.admin.SetShadowModel, triage_pb2.SetShadowModelRequest(version=version)),
    ):
        assert _refusal(call, request) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "version_not_found",
        )
    assert _failures(served, "version_not_found") == 2
    assert served.engine.model_ref.version == "v1"
    assert served.engine.shadow_ref is None
    logged = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert SENTINEL not in logged
    assert "9" * 100 not in logged
