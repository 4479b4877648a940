from __future__ import annotations

import json

import numpy as np

from models.cohort import CohortParams, generate_cohort
from models.export import export_onnx, onnx_metadata, onnx_probabilities
from models.pipeline import PipelineResult
from models.schema import FEATURE_SCHEMA, vectorize_many


def test_onnx_matches_native_on_10000_rows(small_result: PipelineResult) -> None:
    onnx_bytes = export_onnx(small_result.model, small_result.thresholds, model_version="v9")
    x = vectorize_many(generate_cohort(CohortParams(n=10_000, seed=99)).features())
    native = small_result.model.predict_proba(x)
    exported = onnx_probabilities(onnx_bytes, x)
    assert exported.shape == (10_000,)
    assert np.abs(exported - native).max() < 1e-5


def test_onnx_metadata_carries_schema_thresholds_and_fingerprint(
    small_result: PipelineResult,
) -> None:
    meta = onnx_metadata(
        export_onnx(small_result.model, small_result.thresholds, model_version="v9")
    )
    assert json.loads(meta["schema"])["version"] == FEATURE_SCHEMA.version
    assert meta["schema"] == FEATURE_SCHEMA.to_json()
    assert meta["model_version"] == "v9"
    assert json.loads(meta["thresholds"])["low_upper"] == small_result.thresholds.low_upper
    assert meta["training_fingerprint"] == small_result.model.training_fingerprint
    assert len(meta["training_fingerprint"]) == 64
