"""Requests that are not valid protobuf (here: invalid UTF-8 in a proto3 ``string`` field, or a
corrupt wire format) are INVALID_ARGUMENT ``malformed_request``, counted and logged, and one
such item in AssessStream is answered on its own while the stream goes on. Sent as raw bytes:
a client library would refuse to build such a message."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from triage.v1 import triage_pb2

# AssessRequest.request_id (field 2, length-delimited) holding the bytes FF FE: not UTF-8.
_BAD_REQUEST_ID = bytes([(2 << 3) | 2, 2, 0xFF, 0xFE])
# A tag announcing a length-delimited field 1 with a truncated varint length.
_CORRUPT_WIRE = b"\x0a\xff\xff\xff"


def _methods() -> list[str]:
    """Every unary method of both triage services, from the descriptor."""
    return [
        f"/{service.full_name}/{method.name}"
        for service in triage_pb2.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if not method.client_streaming and not method.server_streaming
    ]


def _reason(err: grpc.RpcError) -> str:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, "no grpc-status-details-bin trailer"
    (detail,) = status.details
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info)
    trailers = dict(err.trailing_metadata())  # type: ignore[attr-defined]
    assert trailers["triage-error-reason"] == info.reason
    return info.reason


def _counted(served: Any) -> float | None:
    value: float | None = served.metrics.registry.get_sample_value(
        "triage_errors_total", {"code": "INVALID_ARGUMENT", "reason": "malformed_request"}
    )
    return value


def test_invalid_utf8_request_id_is_invalid_argument(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture, example_bundles: list[bytes]
) -> None:
    """Was INTERNAL "Exception deserializing request!", with no reason and no count."""
    served = serve()
    caplog.set_level(logging.INFO, logger="service.grpc_errors")
    assess = served.channel.unary_unary("/triage.v1.TriageService/Assess")
    with pytest.raises(grpc.RpcError) as err:
        assess(_BAD_REQUEST_ID, timeout=10)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _reason(err.value) == "malformed_request"
    assert "malformed_request" in (err.value.details() or "")
    assert _counted(served) == 1
    logged = [getattr(r, "fields", {}) for r in caplog.records]
    assert [(f["rpc"], f["reason"]) for f in logged if "rpc" in f] == [
        ("Assess", "malformed_request")
    ]
    # The service goes on answering.
    answer = served.stub.Assess(
        triage_pb2.AssessRequest(fhir_bundle=example_bundles[0], request_id="after-bad"),
        timeout=10,
    )
    assert answer.request_id == "after-bad"


def test_every_unary_method_refuses_malformed_bytes(serve: Callable[..., Any]) -> None:
    served = serve()
    methods = _methods()
    assert "/triage.v1.TriageAdmin/ReloadModel" in methods
    for method in methods:
        with pytest.raises(grpc.RpcError) as err:
            served.channel.unary_unary(method)(_CORRUPT_WIRE, timeout=10)
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, method
        assert _reason(err.value) == "malformed_request", method
    assert _counted(served) == len(methods)


def test_malformed_item_in_assess_stream_does_not_end_it(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    served = serve()
    stream = served.channel.stream_stream(
        "/triage.v1.TriageService/AssessStream",
        response_deserializer=triage_pb2.AssessResult.FromString,
    )
    items = [
        triage_pb2.AssessRequest(fhir_bundle=example_bundles[0], request_id="m-1"),
        _BAD_REQUEST_ID,
        triage_pb2.AssessRequest(fhir_bundle=example_bundles[1], request_id="m-3"),
    ]
    raw = [i if isinstance(i, bytes) else i.SerializeToString() for i in items]
    results = list(stream(iter(raw), timeout=30))
    assert [r.WhichOneof("result") for r in results] == ["assessment", "error", "assessment"]
    assert [r.request_id for r in results] == ["m-1", "", "m-3"]
    error = results[1].error
    assert (error.code, error.reason) == ("INVALID_ARGUMENT", "malformed_request")
    assert _counted(served) == 1
