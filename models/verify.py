"""Prove a graph runs: ONNX Runtime (CPU) on fixed rows built from ``FEATURE_SCHEMA`` must give a
finite ``(n, 2)`` probability array in [0, 1].

``Registry.promote`` and ``Registry.rollback`` call it, so ACTIVE never names a version the
service's warm-up would refuse (a graph can parse and still answer NaN). ``service.scoring``
warms models up on the same rows: imputed, all present, all flags set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from .errors import ModelUnusable
from .export import INPUT_NAME, OUTPUT_NAME
from .schema import FEATURE_SCHEMA, LOG10_TROPONIN_RATIO_MAX


def verification_rows() -> npt.NDArray[np.float32]:
    """Every measurement at its imputation value and flagged missing (what ``vectorize`` builds
    when nothing is recorded); every value present; every binary flag set with the troponin
    ratio at its clip maximum."""
    imputed, present, flags = [], [], []
    for spec in FEATURE_SCHEMA.features:
        if spec.impute is not None:
            imputed.append(spec.impute)
            present.append(spec.impute)
            is_troponin_ratio = spec.name == "troponin_log10_ratio"
            flags.append(LOG10_TROPONIN_RATIO_MAX if is_troponin_ratio else spec.impute)
        else:
            imputed.append(1.0 if spec.name.endswith("_missing") else 0.0)
            present.append(0.0)
            flags.append(0.0 if spec.name.endswith("_missing") else 1.0)
    return np.array([imputed, present, flags], dtype=np.float32)


def check_runs(onnx_bytes: bytes) -> None:
    """Raise ``ModelUnusable`` unless the graph scores ``verification_rows`` to probabilities."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    rows = verification_rows()
    try:
        session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelUnusable(
            "ONNX Runtime cannot load the model", reason="onnx_session_failed"
        ) from exc
    try:
        (proba,) = session.run([OUTPUT_NAME], {INPUT_NAME: rows})
    except Exception as exc:
        raise ModelUnusable("inference on the verification rows failed") from exc
    check_probabilities(proba, len(rows))


def check_probabilities(proba: Any, n_rows: int) -> None:
    """Raise ``ModelUnusable`` unless ``proba`` is a finite ``(n_rows, 2)`` array in [0, 1]."""
    try:
        array = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # e.g. a ZipMap output: a list of dicts
        raise ModelUnusable("output is not a numeric array", reason="warmup_output_shape") from exc
    if array.shape != (n_rows, 2):
        raise ModelUnusable("output shape is not (n, 2)", reason="warmup_output_shape")
    if not np.all(np.isfinite(array)):
        raise ModelUnusable("output is NaN or infinite", reason="warmup_output_not_finite")
    if np.any(array < 0.0) or np.any(array > 1.0):
        raise ModelUnusable("output outside [0, 1]", reason="warmup_output_out_of_range")
