"""triage.v1.TriageAdmin: model lifecycle over gRPC, behind a credential.

Off unless ``settings.admin_token`` is set: every call is then PERMISSION_DENIED. With a token,
every call needs the metadata ``authorization: Bearer <token>`` (compared in constant time),
else UNAUTHENTICATED. The operations call the engine; a model that fails to load (or a shadow
candidate refused for fairness) is FAILED_PRECONDITION and the previous model keeps serving.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import grpc
from triage.v1 import triage_pb2

from service import convert, errors, grpc_errors
from service.assessment import ModelRef
from service.settings import Settings
from service.shadow import PromotionCheck

logger = logging.getLogger(__name__)

T = TypeVar("T")


class AdminEngine(Protocol):
    """The engine's model-lifecycle surface used here (``service.engine.Engine``)."""

    @property
    def ready(self) -> bool: ...

    @property
    def model_ref(self) -> ModelRef: ...

    @property
    def shadow_ref(self) -> ModelRef | None: ...

    def load_version(self, version: str | None) -> ModelRef: ...

    def rollback(self) -> ModelRef: ...

    def set_shadow(self, version: str | None) -> ModelRef | None: ...

    def activate_shadow(self) -> tuple[ModelRef, PromotionCheck]: ...


class ErrorMetrics(Protocol):
    def record_error(self, code: str, reason: str) -> None: ...


def bearer_matches(metadata: Any, token: str) -> bool:
    """Constant-time check of ``authorization: Bearer <token>`` in the call's metadata."""
    presented = ""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            presented = value
    return hmac.compare_digest(presented.encode(), f"Bearer {token}".encode())


class AdminServicer:
    def __init__(self, settings: Settings, engine: AdminEngine, metrics: ErrorMetrics) -> None:
        self._settings = settings
        self._token = settings.admin_token
        self._engine = engine
        self._metrics = metrics

    def _authorize(self, context: grpc.ServicerContext) -> None:
        if self._token is None:
            raise errors.AdminDisabled()
        if not bearer_matches(context.invocation_metadata(), self._token.get_secret_value()):
            raise errors.AdminUnauthenticated()

    def _call(self, rpc: str, context: grpc.ServicerContext, action: Callable[[], T]) -> T:
        try:
            self._authorize(context)
            return action()
        except Exception as exc:  # noqa: BLE001 - the one error table answers
            status = grpc_errors.classify(exc, "")
            self._metrics.record_error(status.code.name, status.reason)
            grpc_errors.log_error(exc, status, rpc, "")
            grpc_errors.abort(context, status, "")

    def _status(self, detail: str) -> triage_pb2.ModelStatus:
        msg = triage_pb2.ModelStatus(ready=self._engine.ready, detail=detail)
        if self._engine.ready:
            msg.active.CopyFrom(convert.model_info(self._engine.model_ref))
        shadow = self._engine.shadow_ref
        if shadow is not None:
            msg.shadow.CopyFrom(convert.model_info(shadow))
        return msg

    def GetModelStatus(  # noqa: N802 - the gRPC method name
        self, request: triage_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> triage_pb2.ModelStatus:
        return self._call("GetModelStatus", context, lambda: self._status(""))

    def _rejected(self, action: Callable[[], T]) -> T:
        """A failed load is FAILED_PRECONDITION (ModelRejected) and the current model keeps
        serving (the engine swaps only a model that loaded and passed every check)."""
        try:
            return action()
        except errors.ModelRejected:
            raise
        except errors.ModelNotReady as exc:
            raise errors.ModelRejected(exc.reason, "the current model keeps serving") from exc

    def ReloadModel(  # noqa: N802
        self, request: triage_pb2.ReloadModelRequest, context: grpc.ServicerContext
    ) -> triage_pb2.ModelStatus:
        def reload() -> triage_pb2.ModelStatus:
            ref = self._rejected(lambda: self._engine.load_version(request.version or None))
            logger.info("admin reload", extra={"fields": {"version": ref.version}})
            return self._status(f"serving {ref.name} {ref.version}")

        return self._call("ReloadModel", context, reload)

    def Rollback(  # noqa: N802
        self, request: triage_pb2.RollbackRequest, context: grpc.ServicerContext
    ) -> triage_pb2.ModelStatus:
        def rollback() -> triage_pb2.ModelStatus:
            ref = self._rejected(self._engine.rollback)
            logger.info("admin rollback", extra={"fields": {"version": ref.version}})
            return self._status(f"rolled back to {ref.name} {ref.version}")

        return self._call("Rollback", context, rollback)

    def SetShadowModel(  # noqa: N802
        self, request: triage_pb2.SetShadowModelRequest, context: grpc.ServicerContext
    ) -> triage_pb2.ModelStatus:
        def set_shadow() -> triage_pb2.ModelStatus:
            ref = self._rejected(lambda: self._engine.set_shadow(request.version or None))
            if ref is None:
                logger.info("admin shadow cleared")
                return self._status("shadow cleared")
            logger.info("admin shadow", extra={"fields": {"version": ref.version}})
            return self._status(f"shadow scoring with {ref.name} {ref.version}")

        return self._call("SetShadowModel", context, set_shadow)

    def ActivateShadow(  # noqa: N802
        self, request: triage_pb2.ActivateShadowRequest, context: grpc.ServicerContext
    ) -> triage_pb2.ModelStatus:
        """Refused with FAILED_PRECONDITION, reason ``shadow_less_fair`` (or ``no_shadow_model``,
        ``gate_failed``...), the comparison in the message, when the candidate may not go live."""

        def activate() -> triage_pb2.ModelStatus:
            ref, check = self._rejected(self._engine.activate_shadow)
            logger.info("admin activate shadow", extra={"fields": {"version": ref.version}})
            return self._status(f"activated {ref.name} {ref.version}; {check.render()}")

        return self._call("ActivateShadow", context, activate)
