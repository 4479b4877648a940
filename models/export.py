"""ONNX export: one input ``features`` (float32 [N, n_features]), outputs ``label`` and
``probabilities`` (float32 [N, 2], zipmap off; column 1 = 30-day MACE), with metadata_props
carrying the schema, versions, thresholds and the training-data fingerprint."""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType

from .schema import FEATURE_SCHEMA, FeatureSchema
from .thresholds import Thresholds
from .train import TrainedModel

INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def export_onnx(
    model: TrainedModel,
    thresholds: Thresholds,
    *,
    model_version: str,
    schema: FeatureSchema = FEATURE_SCHEMA,
) -> bytes:
    if model.feature_names != schema.names:
        raise ValueError("model was trained on a different feature schema")
    proto = to_onnx(
        model.estimator,
        initial_types=[(INPUT_NAME, FloatTensorType([None, schema.n_features]))],
        options={"zipmap": False},
        target_opset=TARGET_OPSET,
    )
    if [o.name for o in proto.graph.output] != ["label", OUTPUT_NAME]:
        raise RuntimeError("unexpected ONNX outputs from the converter")
    proto.producer_name = "triage-models"
    proto.doc_string = "30-day MACE risk; race and ethnicity are not inputs"
    metadata = {
        "schema": schema.to_json(),
        "schema_version": schema.version,
        "model_version": model_version,
        "model_kind": model.kind.value,
        "thresholds": json.dumps(
            {"low_upper": thresholds.low_upper, "high_lower": thresholds.high_lower},
            sort_keys=True,
        ),
        "training_fingerprint": model.training_fingerprint,
    }
    onnx.helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    return bytes(proto.SerializeToString())


def onnx_metadata(onnx_bytes: bytes) -> dict[str, str]:
    proto = onnx.load_from_string(onnx_bytes)
    return {p.key: p.value for p in proto.metadata_props}


def onnx_probabilities(onnx_bytes: bytes, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """MACE probability (column 1) from an exported model, with onnxruntime on CPU."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    (proba,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, np.float32)})
    out: npt.NDArray[np.float32] = np.asarray(proba, dtype=np.float32)[:, 1]
    return out
