"""The ONE table from domain errors to gRPC status codes, and how a failed call is answered.

    exception                               status               reason (examples)
    fhir_adapters BundleTooLarge            RESOURCE_EXHAUSTED   too_many_bytes, too_many_entries
    fhir_adapters BundleRejected            INVALID_ARGUMENT     not_json, not_a_bundle, no_patient
    service InvalidRequest                  INVALID_ARGUMENT     missing_request_id,
                                                                 request_id_too_long,
                                                                 missing_reference,
                                                                 invalid_occurred_at,
                                                                 malformed_request
    service IdempotencyConflict             ALREADY_EXISTS       request_id_reused
    service UnknownReference                NOT_FOUND            unknown_audit_id
    service AmbiguousReference              FAILED_PRECONDITION  ambiguous_encounter
    service DeadlineExceeded                DEADLINE_EXCEEDED    deadline_exceeded,
                                                                 stream_idle_timeout
    service ModelNotReady                   UNAVAILABLE          model_not_ready
    service AuditStoreUnavailable           UNAVAILABLE          audit_store_unavailable
    service ModelRejected (admin reload)    FAILED_PRECONDITION  model_rejected
    models RegistryError (admin)            FAILED_PRECONDITION  checksum_mismatch, gate_failed
    service AdminDisabled                   PERMISSION_DENIED    admin_disabled
    service AdminUnauthenticated            UNAUTHENTICATED      admin_unauthenticated
    ServerBusy (transport, below)           RESOURCE_EXHAUSTED   too_many_streams
    anything else                           INTERNAL             internal (request id only)

Every failed call carries the reason and the JSON path three ways: a google.rpc.Status with one
google.rpc.ErrorInfo in the ``grpc-status-details-bin`` trailer (what
``grpc_status.rpc_status.from_call`` decodes), the trailing metadata keys
``triage-error-reason`` / ``triage-error-path``, and the status message. Messages are built
from the table, the reason, the path and the request id only; the exception's own text is
never sent (nor logged) for errors outside the table.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import NoReturn

import grpc
from google.rpc import error_details_pb2, status_pb2
from triage.v1 import triage_pb2

from fhir_adapters.errors import BundleRejected, BundleTooLarge, FhirAdapterError
from models.errors import RegistryError
from service import errors as service_errors

logger = logging.getLogger(__name__)


class ServerBusy(service_errors.ServiceError):
    """A transport limit of this process (not of the request) is reached: the call is refused
    at once so that it never waits on a thread the limit reserves for other calls."""

    default_reason = "too_many_streams"


DOMAIN = "triage.v1"
REASON_KEY = "triage-error-reason"
PATH_KEY = "triage-error-path"
DETAILS_KEY = "grpc-status-details-bin"
INTERNAL_REASON = "internal"


@dataclass(frozen=True, slots=True)
class Rule:
    exception: type[BaseException]
    code: grpc.StatusCode
    summary: str  # the start of the client-facing message


# Order matters: the first matching rule wins (subclasses before their bases).
TABLE: tuple[Rule, ...] = (
    Rule(BundleTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED, "bundle above a configured limit"),
    Rule(BundleRejected, grpc.StatusCode.INVALID_ARGUMENT, "bundle cannot be assessed"),
    Rule(service_errors.InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT, "invalid request"),
    Rule(
        service_errors.IdempotencyConflict,
        grpc.StatusCode.ALREADY_EXISTS,
        "conflicts with what is already recorded (request_id reused or outcome differs)",
    ),
    Rule(service_errors.UnknownReference, grpc.StatusCode.NOT_FOUND, "unknown reference"),
    Rule(
        service_errors.AmbiguousReference,
        grpc.StatusCode.FAILED_PRECONDITION,
        "ambiguous reference; report the outcome by audit_id",
    ),
    Rule(service_errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"),
    Rule(
        service_errors.ModelRejected,
        grpc.StatusCode.FAILED_PRECONDITION,
        "model rejected; the previous model keeps serving",
    ),
    Rule(service_errors.ModelNotReady, grpc.StatusCode.UNAVAILABLE, "no model ready"),
    Rule(
        RegistryError,
        grpc.StatusCode.FAILED_PRECONDITION,
        "registry refused; the previous model keeps serving",
    ),
    Rule(
        service_errors.AuditStoreUnavailable,
        grpc.StatusCode.UNAVAILABLE,
        "the decision could not be recorded; no recommendation is given",
    ),
    Rule(ServerBusy, grpc.StatusCode.RESOURCE_EXHAUSTED, "server limit reached; retry later"),
    Rule(service_errors.AdminDisabled, grpc.StatusCode.PERMISSION_DENIED, "admin is disabled"),
    Rule(
        service_errors.AdminUnauthenticated,
        grpc.StatusCode.UNAUTHENTICATED,
        "admin credential missing or wrong",
    ),
)

_SAFE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_.\-$\[\]]{0,256}")


@dataclass(frozen=True, slots=True)
class ErrorStatus:
    """What a failed call answers."""

    code: grpc.StatusCode
    reason: str
    path: str
    message: str


def safe_request_id(request_id: str) -> str:
    """The request id as it may appear in a message: echoed only when it looks like an id."""
    if _SAFE_ID.fullmatch(request_id):
        return request_id
    return "<missing>" if not request_id else "<not shown>"


def _token(value: object, default: str) -> str:
    text = value if isinstance(value, str) else ""
    return text if text and _SAFE_TOKEN.fullmatch(text) else default


def classify(exc: BaseException, request_id: str) -> ErrorStatus:
    """Map an exception to its status through TABLE; anything else is INTERNAL."""
    rid = safe_request_id(request_id)
    for rule in TABLE:
        if isinstance(exc, rule.exception):
            reason = _token(getattr(exc, "reason", ""), "unspecified")
            path = _token(exc.path, "$") if isinstance(exc, FhirAdapterError) else ""
            path = path or _token(getattr(exc, "path", ""), "")
            where = f" at {path}" if path else ""
            # ServiceError.detail is fixed text chosen by the raising code, never data.
            detail = getattr(exc, "detail", "")
            extra = f" ({detail})" if isinstance(detail, str) and detail else ""
            return ErrorStatus(
                rule.code,
                reason,
                path,
                f"{rule.summary}: {reason}{where}{extra} (request_id={rid})",
            )
    return ErrorStatus(
        grpc.StatusCode.INTERNAL, INTERNAL_REASON, "", f"internal error (request_id={rid})"
    )


def rich_status(status: ErrorStatus, request_id: str) -> status_pb2.Status:
    """The google.rpc.Status carried in ``grpc-status-details-bin``."""
    info = error_details_pb2.ErrorInfo(reason=status.reason, domain=DOMAIN)
    info.metadata["path"] = status.path
    info.metadata["request_id"] = safe_request_id(request_id)
    detail = status_pb2.Status(code=status.code.value[0], message=status.message)
    detail.details.add().Pack(info)
    return detail


def trailing_metadata(status: ErrorStatus, request_id: str) -> tuple[tuple[str, str | bytes], ...]:
    return (
        (REASON_KEY, status.reason),
        (PATH_KEY, status.path),
        (DETAILS_KEY, rich_status(status, request_id).SerializeToString()),
    )


def to_error_detail(status: ErrorStatus) -> triage_pb2.ErrorDetail:
    """The per-item error of AssessStream."""
    return triage_pb2.ErrorDetail(
        code=status.code.name, reason=status.reason, path=status.path, message=status.message
    )


def log_error(exc: BaseException, status: ErrorStatus, rpc: str, request_id: str) -> None:
    """One log line per failed call: code and reason only; a stack (no text) for INTERNAL."""
    fields = {"rpc": rpc, "code": status.code.name, "reason": status.reason}
    if status.code is grpc.StatusCode.INTERNAL:
        fields["request_id"] = safe_request_id(request_id)
        logger.error("unhandled error in %s", rpc, exc_info=exc, extra={"fields": fields})
    else:
        logger.info("%s refused: %s", rpc, status.code.name, extra={"fields": fields})


def abort(context: grpc.ServicerContext, status: ErrorStatus, request_id: str) -> NoReturn:
    """End the call with ``status``: rich details, trailing metadata and the message."""
    context.set_trailing_metadata(trailing_metadata(status, request_id))
    context.abort(status.code, status.message)
