"""Every row of the error table, over real gRPC, with reason and path in the rich details."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from triage.v1 import triage_pb2

from fhir_adapters.errors import BundleRejected, BundleTooLarge, Reason
from service import errors, grpc_errors

ROOT = Path(__file__).resolve().parents[2]


def _fail(stub: Any, request: triage_pb2.AssessRequest, timeout: float = 10) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        stub.Assess(request, timeout=timeout)
    return err.value


def _error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, "no grpc-status-details-bin trailer"
    assert status.code == err.code().value[0]
    (detail,) = status.details
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info)
    assert info.domain == "triage.v1"
    return info


def _trailers(err: grpc.RpcError) -> dict[str, Any]:
    return dict(err.trailing_metadata())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("bundle", "reason", "path"),
    [
        (b"{not json", "not_json", "$"),
        (b"\xff\xfe\x00garbage", "not_utf8", "$"),
        (orjson.dumps({"resourceType": "Patient", "id": "p"}), "not_a_bundle", "$.resourceType"),
    ],
)
def test_bad_bundle_is_invalid_argument_with_reason_and_path(
    serve: Callable[..., Any], bundle: bytes, reason: str, path: str
) -> None:
    served = serve()
    err = _fail(served.stub, triage_pb2.AssessRequest(fhir_bundle=bundle, request_id="bad-1"))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    info = _error_info(err)
    assert info.reason == reason
    assert info.metadata["request_id"] == "bad-1"
    assert info.metadata["path"].startswith("$")
    trailers = _trailers(err)
    assert trailers["triage-error-reason"] == reason
    assert trailers["triage-error-path"] == info.metadata["path"]
    assert reason in (err.details() or "")


def test_bundle_above_the_byte_limit_is_resource_exhausted(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    served = serve(max_bundle_bytes=4096)
    bundle = example_bundles[0]
    assert len(bundle) > 4096
    err = _fail(served.stub, triage_pb2.AssessRequest(fhir_bundle=bundle, request_id="big-1"))
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _error_info(err).reason == "too_many_bytes"


def test_message_far_above_the_limit_is_refused_by_grpc(serve: Callable[..., Any]) -> None:
    served = serve(max_bundle_bytes=4096)
    huge = b" " * (2 * 1024 * 1024)
    err = _fail(served.stub, triage_pb2.AssessRequest(fhir_bundle=huge, request_id="huge-1"))
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_missing_request_id_is_invalid_argument(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    served = serve()
    err = _fail(served.stub, triage_pb2.AssessRequest(fhir_bundle=example_bundles[0]))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _error_info(err).reason == "missing_request_id"


def test_deadline_is_honoured_and_nothing_is_recorded(
    serve: Callable[..., Any], example_cases: list[Any]
) -> None:
    """A deadline shorter than the work: DEADLINE_EXCEEDED, and no record is written."""
    from models.cohort.bundles import build_history_bundle

    served = serve()
    history = build_history_bundle(example_cases[0], 2_000_000)
    err = _fail(
        served.stub,
        triage_pb2.AssessRequest(fhir_bundle=history, request_id="late-1"),
        timeout=0.002,
    )
    assert err.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    served.server.stop(5).wait(10)  # let the handler finish before looking at the store
    with sqlite3.connect(served.settings.audit_db_path) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM assessments WHERE request_id = 'late-1'"
        ).fetchone()
    assert n == 0


def test_fail_closed_audit_store_is_unavailable(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    """The audit file disappears under the running service: UNAVAILABLE, no recommendation."""
    served = serve()
    served.stub.Assess(
        triage_pb2.AssessRequest(fhir_bundle=example_bundles[0], request_id="ok-1"), timeout=10
    )
    os.remove(served.settings.audit_db_path)
    err = _fail(
        served.stub, triage_pb2.AssessRequest(fhir_bundle=example_bundles[1], request_id="x-1")
    )
    assert err.code() is grpc.StatusCode.UNAVAILABLE
    assert _error_info(err).reason == "store_file_replaced"


def test_errors_are_counted(serve: Callable[..., Any]) -> None:
    served = serve()
    for i in range(3):
        _fail(served.stub, triage_pb2.AssessRequest(fhir_bundle=b"[", request_id=f"c-{i}"))
    value = served.metrics.registry.get_sample_value(
        "triage_errors_total", {"code": "INVALID_ARGUMENT", "reason": "not_json"}
    )
    assert value == 3


# --- the table itself, for every row (including those hard to provoke end to end) ---------


@pytest.mark.parametrize(
    ("exc", "code", "reason", "path"),
    [
        (
            BundleTooLarge(Reason.TOO_MANY_ENTRIES, "$.entry"),
            "RESOURCE_EXHAUSTED",
            "too_many_entries",
            "$.entry",
        ),
        (BundleRejected(Reason.NO_PATIENT, "$.entry"), "INVALID_ARGUMENT", "no_patient", "$.entry"),
        (errors.InvalidRequest("missing_request_id"), "INVALID_ARGUMENT", "missing_request_id", ""),
        (errors.IdempotencyConflict(), "ALREADY_EXISTS", "request_id_reused", ""),
        (errors.UnknownReference(), "NOT_FOUND", "unknown_reference", ""),
        (errors.DeadlineExceeded(), "DEADLINE_EXCEEDED", "deadline_exceeded", ""),
        (errors.ModelNotReady(), "UNAVAILABLE", "model_not_ready", ""),
        (errors.ModelRejected(), "FAILED_PRECONDITION", "model_rejected", ""),
        (errors.AuditStoreUnavailable(), "UNAVAILABLE", "audit_store_unavailable", ""),
        (errors.AdminDisabled(), "PERMISSION_DENIED", "admin_disabled", ""),
        (errors.AdminUnauthenticated(), "UNAUTHENTICATED", "admin_unauthenticated", ""),
        (grpc_errors.ServerBusy(), "RESOURCE_EXHAUSTED", "too_many_streams", ""),
        (errors.AmbiguousReference(), "FAILED_PRECONDITION", "ambiguous_encounter", ""),
        (KeyError("CANARYNAME-7f3a"), "INTERNAL", "internal", ""),
    ],
)
def test_table(exc: BaseException, code: str, reason: str, path: str) -> None:
    status = grpc_errors.classify(exc, "req-42")
    assert (status.code.name, status.reason, status.path) == (code, reason, path)
    assert "req-42" in status.message
    assert "CANARY" not in status.message


def test_internal_error_sends_the_request_id_only(serve: Callable[..., Any]) -> None:
    """An exception outside the table: INTERNAL, the request id, never the exception text."""
    served = serve()

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CANARYNAME-7f3a at Patient/CANARYMRN-91b2")

    served.engine.assess = explode
    err = _fail(served.stub, triage_pb2.AssessRequest(fhir_bundle=b"{}", request_id="int-1"))
    assert err.code() is grpc.StatusCode.INTERNAL
    assert err.details() == "internal error (request_id=int-1)"
    assert _error_info(err).reason == "internal"
    assert "CANARY" not in str(_trailers(err))


def test_request_ids_that_do_not_look_like_ids_are_not_echoed() -> None:
    status = grpc_errors.classify(errors.ModelNotReady(), "Jane Doe 1961-02-03")
    assert "Jane" not in status.message
    assert grpc_errors.safe_request_id("") == "<missing>"


# --- ReportOutcome refusals: typed, counted and logged like every other error -------------


def _refusals(caplog: pytest.LogCaptureFixture, rpc: str) -> list[tuple[str, str]]:
    """(code, reason) of each ``grpc_errors.log_error`` line for ``rpc``."""
    fields = [getattr(r, "fields", {}) for r in caplog.records]
    return [(f["code"], f["reason"]) for f in fields if f.get("rpc") == rpc]


def _counted(served: Any, code: str, reason: str) -> float | None:
    value: float | None = served.metrics.registry.get_sample_value(
        "triage_errors_total", {"code": code, "reason": reason}
    )
    return value


def _refused_outcome(served: Any, report: triage_pb2.OutcomeReport) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        served.stub.ReportOutcome(report, timeout=10)
    return err.value


@pytest.mark.parametrize(
    "occurred_at",
    [
        Timestamp(seconds=2**62),
        Timestamp(seconds=-(2**62)),
        Timestamp(seconds=253402300800),  # 10000-01-01: one second past the Timestamp range
        Timestamp(seconds=0, nanos=2_000_000_000),
    ],
    ids=["2^62", "-2^62", "year-10000", "nanos-2e9"],
)
def test_invalid_occurred_at_is_invalid_argument(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture, occurred_at: Timestamp
) -> None:
    """Was INTERNAL: Timestamp.ToDatetime raised ValueError outside the table."""
    served = serve()
    caplog.set_level(logging.INFO, logger="service.grpc_errors")
    report = triage_pb2.OutcomeReport(audit_id="a-1", mace=True, occurred_at=occurred_at)
    err = _refused_outcome(served, report)
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _error_info(err).reason == "invalid_occurred_at"
    assert _trailers(err)["triage-error-reason"] == "invalid_occurred_at"
    assert _counted(served, "INVALID_ARGUMENT", "invalid_occurred_at") == 1
    assert _refusals(caplog, "ReportOutcome") == [("INVALID_ARGUMENT", "invalid_occurred_at")]


def test_occurred_at_at_the_ends_of_the_range_is_accepted(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    served = serve()
    for i, occurred_at in enumerate(
        [Timestamp(seconds=-62135596800), Timestamp(seconds=253402300799, nanos=999_999_999)]
    ):
        answer = served.stub.Assess(
            triage_pb2.AssessRequest(fhir_bundle=example_bundles[i], request_id=f"edge-{i}"),
            timeout=10,
        )
        report = triage_pb2.OutcomeReport(
            audit_id=answer.audit_id, mace=False, occurred_at=occurred_at
        )
        assert served.stub.ReportOutcome(report, timeout=10).audit_id == answer.audit_id


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        (triage_pb2.OutcomeReport(mace=False), "missing_reference"),
        (triage_pb2.OutcomeReport(audit_id="", mace=False), "need_audit_id_or_encounter_reference"),
    ],
    ids=["no-reference", "empty-audit-id"],
)
def test_outcome_without_a_usable_reference_is_counted_and_logged(
    serve: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    report: triage_pb2.OutcomeReport,
    reason: str,
) -> None:
    """missing_reference used to bypass the failure accounting (no count, no log line)."""
    served = serve()
    caplog.set_level(logging.INFO, logger="service.grpc_errors")
    err = _refused_outcome(served, report)
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    info = _error_info(err)
    assert info.reason == reason
    assert info.metadata["request_id"] == "<missing>"
    assert (_trailers(err)["triage-error-reason"], _trailers(err)["triage-error-path"]) == (
        reason,
        "",
    )
    assert _counted(served, "INVALID_ARGUMENT", reason) == 1
    assert _refusals(caplog, "ReportOutcome") == [("INVALID_ARGUMENT", reason)]


# --- the documented table covers every reason the code can answer -------------------------

_RAISED = re.compile(
    r"\b(?:InvalidRequest|IdempotencyConflict|UnknownReference|DeadlineExceeded|ModelNotReady"
    r"|ModelRejected|PromotionRefused|AuditStoreUnavailable|AdminDisabled|AdminUnauthenticated"
    r'|ServerBusy|AmbiguousReference|_connection)\(\s*"([a-z0-9_]+)"'
)


def _raised_reasons() -> set[str]:
    reasons = {r.value for r in Reason}
    for source in (ROOT / "service").glob("*.py"):
        reasons.update(_RAISED.findall(source.read_text()))
    return reasons


def test_every_reason_raised_is_documented() -> None:
    """docs/service.md's error table names each reason (model-load checks may be named in
    docs/lifecycle.md's table, which the error table refers to)."""
    reasons = _raised_reasons()
    assert {"missing_reference", "invalid_occurred_at", "malformed_request"} <= reasons
    docs = (ROOT / "docs" / "service.md").read_text() + (ROOT / "docs" / "lifecycle.md").read_text()
    missing = sorted(r for r in reasons if f"`{r}`" not in docs)
    assert not missing, f"reasons missing from the error tables: {missing}"


def _documented_statuses() -> dict[str, set[str]]:
    """docs/service.md's error table: status -> the reasons its rows name."""
    text = (ROOT / "docs" / "service.md").read_text()
    table = text[text.index("| condition | status | reasons |") :]
    statuses: dict[str, set[str]] = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        _condition, status, reasons = (cell.strip() for cell in line.strip("|").split("|"))
        statuses.setdefault(status, set()).update(re.findall(r"`([a-z0-9_]+)`", reasons))
    return statuses


def test_error_table_states_what_each_rpc_returns_for_model_load_failures() -> None:
    """Assess answers UNAVAILABLE model_not_ready whatever kept the model from loading; the
    load's own reason (cuda_unavailable, model_unreadable) is an admin FAILED_PRECONDITION
    (tests/service/test_grpc_admin.py checks both over gRPC)."""
    statuses = _documented_statuses()
    assert "model_not_ready" in statuses["UNAVAILABLE"]
    assert not {"cuda_unavailable", "model_unreadable"} & statuses["UNAVAILABLE"]
    assert {"cuda_unavailable", "model_unreadable"} <= statuses["FAILED_PRECONDITION"]
    assert "too_many_streams" in statuses["RESOURCE_EXHAUSTED"]
    assert "stream_idle_timeout" in statuses["DEADLINE_EXCEEDED"]
