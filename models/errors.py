"""Every error the model registry raises. The tree is public API::

RegistryError                  ``reason`` is machine-readable; str() holds no patient data
├── VersionNotFound            reason: version_not_found (also: not a version name),
│                              no_active_version
├── RegistryStateInvalid       reason: registry_state_invalid (ACTIVE / HISTORY unreadable or
│                              not version names)
├── ManifestMissing            reason: manifest_missing
├── ManifestInvalid            reason: manifest_invalid
├── ModelMissing               reason: model_missing
├── ChecksumMismatch           reason: checksum_mismatch
├── SchemaMismatch             reason: schema_mismatch, protected_feature
├── ModelCorrupt               reason: model_corrupt
├── ModelUnusable              reason: onnx_session_failed, warmup_failed,
│                              warmup_output_not_finite, warmup_output_out_of_range,
│                              warmup_output_shape (the model does not run to a probability)
├── EvaluationMismatch         reason: evaluation_mismatch (the evaluation or thresholds
│                              registered are not the model's own)
├── VersionExists              reason: version_exists
├── NothingToRollBack          reason: nothing_to_roll_back
└── GateFailed                 reason: gate_failed; ``report`` is the PromotionReport
"""

# The class names are the contract in docs/design.md (ManifestMissing, GateFailed ...).
# ruff: noqa: N818

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .gates import PromotionReport


class RegistryError(Exception):
    reason: str = "registry_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        if reason is not None:
            self.reason = reason
        super().__init__(f"{self.reason}: {message}")


class VersionNotFound(RegistryError):
    reason = "version_not_found"


class RegistryStateInvalid(RegistryError):
    reason = "registry_state_invalid"


class ManifestMissing(RegistryError):
    reason = "manifest_missing"


class ManifestInvalid(RegistryError):
    reason = "manifest_invalid"


class ModelMissing(RegistryError):
    reason = "model_missing"


class ChecksumMismatch(RegistryError):
    reason = "checksum_mismatch"


class SchemaMismatch(RegistryError):
    reason = "schema_mismatch"


class ModelCorrupt(RegistryError):
    reason = "model_corrupt"


class EvaluationMismatch(RegistryError):
    reason = "evaluation_mismatch"


class ModelUnusable(RegistryError):
    """The graph parses but ONNX Runtime cannot turn a row into a probability. The reasons are
    the service's warm-up reasons: the registry refuses what the service would refuse."""

    reason = "warmup_failed"


class VersionExists(RegistryError):
    reason = "version_exists"


class NothingToRollBack(RegistryError):
    reason = "nothing_to_roll_back"


class GateFailed(RegistryError):
    reason = "gate_failed"

    def __init__(self, report: PromotionReport) -> None:
        self.report = report
        failed = ", ".join(g.name for g in report.results if not g.passed)
        super().__init__(f"promotion refused; failed gates: {failed}")
