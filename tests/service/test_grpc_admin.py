"""TriageAdmin is off unless a token is configured, then needs ``authorization: Bearer``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from triage.v1 import triage_pb2

from service.grpc_admin import bearer_matches

TOKEN = "s3cret-admin-token"


def test_admin_disabled_without_a_token(serve: Callable[..., Any]) -> None:
    served = serve()
    with pytest.raises(grpc.RpcError) as err:
        served.admin.GetModelStatus(
            triage_pb2.GetModelStatusRequest(),
            metadata=[("authorization", f"Bearer {TOKEN}")],
            timeout=5,
        )
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    "metadata",
    [[], [("authorization", "Bearer wrong")], [("authorization", TOKEN)]],
)
def test_admin_needs_the_bearer_token(
    serve: Callable[..., Any], metadata: list[tuple[str, str]]
) -> None:
    served = serve(admin_token=TOKEN)
    with pytest.raises(grpc.RpcError) as err:
        served.admin.GetModelStatus(
            triage_pb2.GetModelStatusRequest(), metadata=metadata, timeout=5
        )
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert TOKEN not in (err.value.details() or "")


def test_admin_status_with_the_token(serve: Callable[..., Any]) -> None:
    served = serve(admin_token=TOKEN)
    status = served.admin.GetModelStatus(
        triage_pb2.GetModelStatusRequest(),
        metadata=[("authorization", f"Bearer {TOKEN}")],
        timeout=5,
    )
    assert status.ready
    assert status.active.version == served.engine.model_ref.version


def test_bearer_matches() -> None:
    assert bearer_matches([("authorization", "Bearer abc")], "abc")
    assert not bearer_matches([("authorization", "Bearer abd")], "abc")
    assert not bearer_matches([("authorization", "bearer abc")], "abc")
    assert not bearer_matches([], "abc")


def test_reload_and_failed_loads_keep_the_model_serving(serve: Callable[..., Any]) -> None:
    served = serve(admin_token=TOKEN)
    auth = [("authorization", f"Bearer {TOKEN}")]
    before = served.engine.model_ref
    status = served.admin.ReloadModel(triage_pb2.ReloadModelRequest(), metadata=auth, timeout=30)
    assert status.ready
    assert status.active.version == before.version
    with pytest.raises(grpc.RpcError) as err:
        served.admin.ReloadModel(
            triage_pb2.ReloadModelRequest(version="v999"), metadata=auth, timeout=30
        )
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert dict(err.value.trailing_metadata())["triage-error-reason"] == "version_not_found"
    with pytest.raises(grpc.RpcError) as err:
        served.admin.Rollback(triage_pb2.RollbackRequest(), metadata=auth, timeout=30)
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert served.engine.ready
    assert served.engine.model_ref == before


def test_cuda_without_a_gpu_per_rpc(serve: Callable[..., Any]) -> None:
    """``cuda`` requested where there is none: the server starts without a model; Assess is
    UNAVAILABLE model_not_ready, and ReloadModel FAILED_PRECONDITION cuda_unavailable (what
    docs/service.md's error table states)."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a CUDA provider is available here")
    served = serve(execution_provider="cuda", admin_token=TOKEN)
    assert not served.engine.ready
    with pytest.raises(grpc.RpcError) as err:
        served.stub.Assess(
            triage_pb2.AssessRequest(fhir_bundle=b"{}", request_id="cuda-1"), timeout=10
        )
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE
    assert dict(err.value.trailing_metadata())["triage-error-reason"] == "model_not_ready"
    with pytest.raises(grpc.RpcError) as err:
        served.admin.ReloadModel(
            triage_pb2.ReloadModelRequest(),
            metadata=[("authorization", f"Bearer {TOKEN}")],
            timeout=30,
        )
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert dict(err.value.trailing_metadata())["triage-error-reason"] == "cuda_unavailable"


def test_shadow_calls_need_the_credential(serve: Callable[..., Any]) -> None:
    served = serve(admin_token=TOKEN)
    with pytest.raises(grpc.RpcError) as err:
        served.admin.SetShadowModel(triage_pb2.SetShadowModelRequest(version="v1"), timeout=5)
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        served.admin.ActivateShadow(triage_pb2.ActivateShadowRequest(), timeout=5)
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert served.engine.shadow_ref is None
