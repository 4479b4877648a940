"""The one settings object. Every field is read from the environment with the ``TRIAGE_``
prefix (``TRIAGE_PORT``, ``TRIAGE_DATA_DIR`` ...) and may be overridden by CLI flags.
Everything else in the service receives settings as an argument; nothing else reads the
environment.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fhir_adapters.config import ExtractionConfig
from models.gates import PromotionGates

_REPO_ROOT = Path(__file__).resolve().parent.parent


MIN_SECRET_CHARS = 16
# Upper bounds: a duration or size beyond them is a typo, and some (1e12 s, inf) would only
# fail later, in a thread's wait or at shutdown, with an OverflowError naming nothing.
_HOUR_S = 3600.0
_DAY_S = 24 * _HOUR_S
_YEAR_H = 366 * 24.0
_MAX_GRPC_MESSAGE_BYTES = 2**31 - 1  # gRPC's message sizes are 32-bit
_MAX_BUNDLE_BYTES = 256 * 1024 * 1024  # so that the default message limit (4x + 64 KiB) fits
_ENV_PREFIX = "TRIAGE_"
# What Kubernetes injects for a Service named "triage-..." in the namespace (service links):
# <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT[_<port name>], <NAME>_PORT=tcp://...,
# <NAME>_PORT_<n>_TCP[_PROTO|_PORT|_ADDR]. Not settings, and not typos of ours.
_SERVICE_LINK = re.compile(r".+_(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT_\d+_(TCP|UDP|SCTP)(_\w+)?)")
_SERVICE_LINK_URL = re.compile(r"(tcp|udp|sctp)://.+")


def _service_link(name: str, value: str) -> bool:
    if _SERVICE_LINK.fullmatch(name):
        return True
    return name.endswith("_PORT") and _SERVICE_LINK_URL.fullmatch(value) is not None


# Room in one gRPC message for an AssessRequest's other fields beside a bundle at the limit.
MESSAGE_FRAMING_BYTES = 64 * 1024


class Settings(BaseSettings):
    # hide_input_in_errors: an error's text otherwise quotes the input, which can be a secret
    # (the admin token, the pseudonym key) or the whole input for a model-level check.
    model_config = SettingsConfigDict(
        env_prefix=_ENV_PREFIX, frozen=True, extra="forbid", hide_input_in_errors=True
    )

    # --- network -------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the gRPC server binds.")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free port.")
    metrics_port: int = Field(
        9464, ge=0, le=65535, description="Prometheus /metrics port; 0 picks a free port."
    )
    workers: int = Field(
        2,
        ge=1,
        le=64,
        description=(
            "gRPC worker threads kept for unary calls (Assess, ReportOutcome, health, admin): "
            "the pool has workers + max_streams threads and open AssessStreams hold at most "
            "max_streams of them."
        ),
    )
    max_streams: int = Field(
        2,
        ge=0,
        le=64,
        description=(
            "Concurrent AssessStreams per process, each with its own thread beside the workers; "
            "one more is refused at once with RESOURCE_EXHAUSTED too_many_streams. 0: off."
        ),
    )
    stream_idle_timeout_s: float = Field(
        60.0,
        ge=0,
        le=_DAY_S,
        description=(
            "An AssessStream that sends no request for this long is ended with "
            "DEADLINE_EXCEEDED stream_idle_timeout, freeing its slot (one whose client takes no "
            "result for this long is cancelled); 0: never."
        ),
    )
    reuse_port: bool = Field(
        False,
        description=(
            "Set SO_REUSEPORT so several server processes share the gRPC port (the kernel "
            "spreads connections). Off: binding a port in use fails."
        ),
    )
    grace_period_s: float = Field(
        10.0,
        ge=0,
        le=_HOUR_S,
        description="On SIGTERM, how long calls in flight may take to finish.",
    )

    # --- state -----------------------------------------------------------------------------
    data_dir: Path = Field(
        Path("var"), description="Holds the audit store (audit.sqlite) and the pseudonym key."
    )
    audit_synchronous: Literal["normal", "full"] = Field(
        "full",
        description=(
            "SQLite synchronous mode in WAL. full: every answered decision survives a process "
            "crash and power loss (~110 us per commit); normal (opt-out): a process crash only "
            "(~10 us), the last commits may be lost with the power."
        ),
    )
    audit_busy_timeout_ms: int = Field(
        2000,
        ge=0,
        le=60_000,
        description=(
            "How long a write waits for a lock held by another process before the audit "
            "store is declared unavailable (the request then fails closed with UNAVAILABLE)."
        ),
    )
    store_unavailable_hold_s: float = Field(
        10.0,
        ge=0,
        le=_HOUR_S,
        description=(
            "After a call fails because the audit store cannot be written or read, health "
            "reports NOT_SERVING until a call succeeds or this long passes without another such "
            "failure (then traffic may test the store again); 0: health ignores the store."
        ),
    )
    pseudonym_key: SecretStr | None = Field(
        None,
        description=(
            "HMAC key for patient/encounter pseudonyms. Unset: a random key is created once in "
            "<data_dir>/pseudonym.key (mode 0600) and reused."
        ),
    )

    # --- model -----------------------------------------------------------------------------
    model_registry: Path = Field(
        _REPO_ROOT / "models" / "registry", description="Root of the versioned model registry."
    )
    model_name: str = Field("mace-30d", description="Registered model to serve (its ACTIVE).")
    execution_provider: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: CUDA when onnxruntime-gpu and a GPU are present, else CPU."
    )
    registry_poll_s: float = Field(
        5.0,
        ge=0,
        le=_HOUR_S,
        description=(
            "How often the service checks the registry's ACTIVE version and reloads when it "
            "changed (a promotion or `triage-models rollback`); 0 disables the watcher."
        ),
    )
    promotion_gates: PromotionGates = Field(
        default_factory=PromotionGates,
        description=(
            "Gates every model must pass on load (its manifest metrics), and on ActivateShadow "
            "(models.gates.PromotionGates; environment: JSON object)."
        ),
    )
    promotion_fairness_tolerance: float = Field(
        0.02,
        ge=0,
        le=1,
        description=(
            "ActivateShadow refuses a candidate whose worst-group sensitivity is lower, or "
            "whose within-stratum escalation parity difference is higher, than the active "
            "model's by more than this."
        ),
    )

    # --- FHIR input --------------------------------------------------------------------------
    max_bundle_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        le=_MAX_BUNDLE_BYTES,
        description="Larger bundles: RESOURCE_EXHAUSTED.",
    )
    max_message_bytes: int | None = Field(
        None,
        ge=1024,
        le=_MAX_GRPC_MESSAGE_BYTES,
        description=(
            "gRPC's own limit on one message (unset: 4 x max_bundle_bytes + 64 KiB). A bundle "
            "between the two limits is answered too_many_bytes (in AssessStream, as that item's "
            "error); a larger message is refused by gRPC itself and ends an AssessStream."
        ),
    )
    max_bundle_entries: int = Field(20_000, ge=1)
    max_json_depth: int = Field(64, ge=8)
    vitals_staleness_hours: float = Field(
        24.0, gt=0, le=_YEAR_H, description="Older vitals are 'stale'."
    )
    troponin_staleness_hours: float = Field(24.0, gt=0, le=_YEAR_H)
    ecg_staleness_hours: float = Field(24.0, gt=0, le=_YEAR_H)
    strict_validation: bool = Field(
        False, description="Also validate every bundle with fhir.resources R4B (~3 ms)."
    )

    # --- fairness audit ----------------------------------------------------------------------
    escalation_max_esi: int = Field(
        2, ge=1, le=5, description="Escalation = band HIGH or ESI <= this value."
    )
    fairness_window_count: int = Field(1000, ge=10, description="Decisions kept per facility.")
    fairness_window_seconds: float = Field(
        7 * 24 * 3600.0,
        gt=0,
        le=_YEAR_H * 3600,
        description="Decisions older than this leave the window.",
    )
    fairness_min_group_count: int = Field(
        30, ge=1, description="Groups smaller than this are 'insufficient data'."
    )
    fairness_warn_difference: float = Field(0.10, ge=0, le=1)
    fairness_alert_difference: float = Field(0.20, ge=0, le=1)
    fairness_report_interval_s: float = Field(
        300.0,
        gt=0,
        le=_DAY_S,
        description=(
            "Period of the background Fairlearn MetricFrame report (bootstrap CIs cost a few "
            "CPU-seconds per facility window, so not more often than every few minutes)."
        ),
    )
    fairness_report_n_boot: int = Field(
        50, ge=10, description="Bootstrap resamples for the background report's intervals."
    )
    fairness_min_mace_count: int = Field(
        20, ge=1, description="MACE outcomes a group needs before its missed-MACE gap can alert."
    )
    facility_allow_list: tuple[str, ...] = Field(
        (), description="Facility references used as metric labels; others are 'other'."
    )
    counterfactual: bool = Field(
        True, description="Re-score each encounter with race, ethnicity and sex swapped."
    )

    # --- admin -------------------------------------------------------------------------------
    admin_token: SecretStr | None = Field(
        None, description="Admin RPCs (reload, shadow, rollback) are off unless this is set."
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("pseudonym_key", "admin_token")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # A short pseudonym key lets anyone holding the audit store recover identifiers by
        # hashing candidate ones (record numbers are a small space); an empty admin token
        # would turn admin on with "Bearer " as the credential.
        if value is not None and len(value.get_secret_value().strip()) < MIN_SECRET_CHARS:
            raise ValueError(
                f"must be at least {MIN_SECRET_CHARS} characters (unset it to use the default)"
            )
        return value

    @field_validator("admin_token")
    @classmethod
    def _sendable_token(cls, value: SecretStr | None) -> SecretStr | None:
        # It travels in a gRPC metadata header, which takes printable ASCII only: any other
        # token would turn admin on with a credential no client can send.
        if value is not None and not all(" " < c <= "~" for c in value.get_secret_value()):
            raise ValueError("must be printable ASCII without spaces (it is sent as a header)")
        return value

    def extraction_config(self, pseudonym_key: bytes) -> ExtractionConfig:
        return ExtractionConfig(
            max_bytes=self.max_bundle_bytes,
            max_entries=self.max_bundle_entries,
            max_depth=self.max_json_depth,
            vitals_staleness=timedelta(hours=self.vitals_staleness_hours),
            troponin_staleness=timedelta(hours=self.troponin_staleness_hours),
            ecg_staleness=timedelta(hours=self.ecg_staleness_hours),
            strict_validation=self.strict_validation,
            pseudonym_key=pseudonym_key,
        )

    @model_validator(mode="after")
    def _no_unknown_environment(self) -> Settings:
        # extra="forbid" covers keyword arguments only: a misspelt variable would be ignored,
        # and a typo in TRIAGE_PSEUDONYM_KEY would silently give each host its own key.
        known = {_ENV_PREFIX + name.upper() for name in type(self).model_fields}
        unknown = sorted(
            name
            for name, value in os.environ.items()
            if name.upper().startswith(_ENV_PREFIX)
            and name.upper() not in known
            and not _service_link(name.upper(), value)
        )
        if unknown:  # names only: a value may be a secret
            raise ValueError("unknown environment variables: " + ", ".join(unknown))
        return self

    @model_validator(mode="after")
    def _warn_below_alert(self) -> Settings:
        if self.fairness_warn_difference > self.fairness_alert_difference:
            raise ValueError("fairness_warn_difference must not exceed fairness_alert_difference")
        return self

    @model_validator(mode="after")
    def _message_above_bundle(self) -> Settings:
        # At or below the bundle limit, gRPC would refuse an oversized bundle before the
        # extractor could answer it with its reason (and end an AssessStream with it).
        if (
            self.max_message_bytes is not None
            and self.max_message_bytes < self.max_bundle_bytes + MESSAGE_FRAMING_BYTES
        ):
            raise ValueError(
                f"max_message_bytes must be at least max_bundle_bytes + {MESSAGE_FRAMING_BYTES}"
            )
        return self

    @property
    def transport_message_bytes(self) -> int:
        """gRPC's receive (and send) limit: ``max_message_bytes``, or 4 x the bundle limit plus
        ``MESSAGE_FRAMING_BYTES`` (64 KiB)."""
        if self.max_message_bytes is not None:
            return self.max_message_bytes
        return 4 * self.max_bundle_bytes + MESSAGE_FRAMING_BYTES

    @property
    def audit_db_path(self) -> Path:
        return self.data_dir / "audit.sqlite"
