"""ONNX Runtime scoring of a registered model.

``load_scorer`` turns a ``RegisteredModel`` into a warmed-up ``Scorer``: it re-hashes the
bytes it hands to ONNX Runtime (the file could change between the registry's check and
here), picks the execution provider from the settings, checks the feature schema, and runs
fixed synthetic rows built from ``FEATURE_SCHEMA`` through the model. A model whose output is
not a probability (NaN, outside [0, 1], wrong shape) is rejected with ``ModelRejected`` and is
never served.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from models.errors import ModelUnusable
from models.export import INPUT_NAME, OUTPUT_NAME
from models.registry import RegisteredModel
from models.schema import FEATURE_NAMES, SCHEMA_VERSION
from models.verify import check_probabilities as verify_probabilities
from models.verify import verification_rows
from service.errors import ModelNotReady, ModelRejected

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

FloatArray = npt.NDArray[np.float32]


def providers_for(setting: Literal["auto", "cpu", "cuda"]) -> list[str]:
    """The provider list for a session; CPU is always last so ONNX Runtime can fall back for
    operators CUDA lacks (the provider actually used is read back from the session)."""
    available = ort.get_available_providers()
    if setting == "cpu":
        return [CPU]
    if CUDA in available:
        return [CUDA, CPU]
    if setting == "cuda":
        raise ModelNotReady("cuda_unavailable", "CUDAExecutionProvider is not available")
    return [CPU]


@dataclass(frozen=True, slots=True)
class Scorer:
    """One ONNX Runtime session. ``InferenceSession.run`` is thread-safe."""

    session: Any  # onnxruntime.InferenceSession (untyped library)
    provider: str

    def probabilities(self, rows: FloatArray) -> FloatArray:
        """30-day MACE probability per row; ``rows`` is float32 ``(n, n_features)``."""
        (proba,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: rows})
        out: FloatArray = np.asarray(proba, dtype=np.float32)[:, 1]
        return out

    def probability(self, row: FloatArray) -> float:
        return float(self.probabilities(row.reshape(1, -1))[0])


def imputed_row() -> FloatArray:
    """The row ``vectorize`` builds when nothing is recorded: every measurement at its
    imputation value with its missing flag set, every finding absent, ECG unknown."""
    row: FloatArray = warmup_rows()[0].copy()
    return row


def warmup_rows() -> FloatArray:
    """The registry's verification rows (``models.verify``): the service warms a model up on
    exactly the rows a promotion was checked with."""
    return verification_rows()


def check_probabilities(proba: Any, n_rows: int) -> None:
    """Raise ``ModelRejected`` unless ``proba`` is a finite ``(n_rows, 2)`` array in [0, 1]."""
    try:
        verify_probabilities(proba, n_rows)
    except ModelUnusable as exc:
        raise ModelRejected(exc.reason, str(exc)) from None


def load_scorer(
    registered: RegisteredModel, provider_setting: Literal["auto", "cpu", "cuda"]
) -> Scorer:
    manifest = registered.manifest
    if manifest.feature_names != FEATURE_NAMES or manifest.schema_version != SCHEMA_VERSION:
        raise ModelRejected("schema_mismatch", "model features differ from FEATURE_SCHEMA")
    try:
        data = registered.onnx_path.read_bytes()
    except OSError as exc:
        raise ModelNotReady("model_unreadable", "model.onnx cannot be read") from exc
    if hashlib.sha256(data).hexdigest() != registered.sha256:
        raise ModelRejected("checksum_mismatch", "model.onnx changed after it was verified")

    providers = providers_for(provider_setting)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # single-row scoring: threads cost more than they save
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(data, options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelRejected("onnx_session_failed", "ONNX Runtime could not load the model") from exc
    provider = str(session.get_providers()[0])
    if provider_setting == "cuda" and provider != CUDA:
        raise ModelNotReady("cuda_unavailable", "CUDA provider requested but not in use")

    scorer = Scorer(session, provider)
    rows = warmup_rows()
    try:
        (proba,) = session.run([OUTPUT_NAME], {INPUT_NAME: rows})
    except Exception as exc:
        raise ModelRejected("warmup_failed", "warm-up inference failed") from exc
    check_probabilities(proba, len(rows))
    logger.info("model %s %s loaded on %s", registered.name, registered.version, provider)
    return scorer
