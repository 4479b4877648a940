"""Every error the engine raises. The tree is public API; ``service/grpc_errors.py`` maps it
to gRPC status codes in one table::

    ServiceError                 reason: machine-readable; the message never carries patient data
    ├── InvalidRequest           e.g. missing_request_id, missing_reference,  -> INVALID_ARGUMENT
    │                            invalid_occurred_at, malformed_request (not protobuf)
    ├── IdempotencyConflict      same request_id, different bundle bytes;
    │                            or an outcome already reported differently   -> ALREADY_EXISTS
    ├── UnknownReference         ReportOutcome for an unknown audit/encounter -> NOT_FOUND
    ├── AmbiguousReference       an encounter reference that matches more than
    │                            one patient's assessments (ask for audit_id) -> FAILED_PRECONDITION
    ├── DeadlineExceeded         the caller's deadline passed before persist  -> DEADLINE_EXCEEDED
    ├── ModelNotReady            no model loaded / warm-up failed             -> UNAVAILABLE
    │   └── ModelRejected        the model failed a load-time check (schema, warm-up output)
    │       └── PromotionRefused candidate less fair (ActivateShadow) -> FAILED_PRECONDITION
    ├── AuditStoreUnavailable    the record could not be written durably      -> UNAVAILABLE
    ├── AdminDisabled                                                         -> PERMISSION_DENIED
    └── AdminUnauthenticated                                                  -> UNAUTHENTICATED

``fhir_adapters`` errors (``BundleRejected``, ``BundleTooLarge``) pass through the engine
unchanged. ``str(err)`` is the reason (and, where given, a fixed detail string chosen by the
code that raises it): safe to send to a client and to log.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class. ``reason`` is a short snake_case code; ``detail`` is fixed text, never data."""

    default_reason = "service_error"

    def __init__(self, reason: str | None = None, detail: str = "") -> None:
        self.reason = reason or self.default_reason
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class InvalidRequest(ServiceError):  # noqa: N818 (names fixed by the contract)
    default_reason = "invalid_request"


class IdempotencyConflict(ServiceError):  # noqa: N818 (names fixed by the contract)
    default_reason = "request_id_reused"


class UnknownReference(ServiceError):  # noqa: N818 (names fixed by the contract)
    default_reason = "unknown_reference"


class AmbiguousReference(ServiceError):  # noqa: N818 (named like its siblings)
    """ReportOutcome by an encounter reference that matches assessments of more than one
    patient or facility (encounter ids repeat across EHRs): nothing is written."""

    default_reason = "ambiguous_encounter"


class DeadlineExceeded(ServiceError):  # noqa: N818 (names fixed by the contract)
    default_reason = "deadline_exceeded"


class ModelNotReady(ServiceError):  # noqa: N818 (names fixed by the contract)
    default_reason = "model_not_ready"


class ModelRejected(ModelNotReady):
    """A model failed a load-time check: wrong feature schema, or warm-up output that is not a
    probability. Never served."""

    default_reason = "model_rejected"


class PromotionRefused(ModelRejected):
    """ActivateShadow refused: the candidate is less fair than the active model beyond the
    configured tolerance. ``check`` is the comparison (aggregate figures only); ``detail``
    renders it."""

    default_reason = "shadow_less_fair"

    def __init__(self, reason: str | None, detail: str, check: object) -> None:
        super().__init__(reason, detail)
        self.check = check


class AuditStoreUnavailable(ServiceError):  # noqa: N818 (names fixed by the contract)
    default_reason = "audit_store_unavailable"


class AdminDisabled(ServiceError):  # noqa: N818 (names fixed by the contract)
    default_reason = "admin_disabled"


class AdminUnauthenticated(ServiceError):  # noqa: N818 (names fixed by the contract)
    default_reason = "admin_unauthenticated"
