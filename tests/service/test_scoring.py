"""ONNX Runtime loading, provider choice, warm-up checks and scoring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from fhir_adapters.features import ClinicalFeatures, Ecg, EcgCategory, Measurement
from models.registry import RegisteredModel, Registry
from models.schema import FEATURE_SCHEMA, N_FEATURES, vectorize
from models.thresholds import Thresholds
from service import scoring
from service.errors import ModelNotReady, ModelRejected
from service.scoring import load_scorer, warmup_rows


def _register_graph(tmp_path: Path, nodes: list[onnx.NodeProto]) -> RegisteredModel:
    """A model with the serving signature whose ``probabilities`` come from ``nodes``."""
    graph = helper.make_graph(
        nodes,
        "bad",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, N_FEATURES])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        initializer=[
            helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
            helper.make_tensor("ends", TensorProto.INT64, [1], [2]),
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        ],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return Registry(tmp_path / "registry").register(
        "bad",
        proto.SerializeToString(),
        thresholds=Thresholds(0.05, 0.2),
        metrics={},
        training_fingerprint="none",
        model_card="test model with a deliberately broken output",
    )


def test_warmup_rows_come_from_the_feature_schema() -> None:
    rows = warmup_rows()
    assert rows.shape == (3, N_FEATURES)
    assert rows.dtype == np.float32
    names = FEATURE_SCHEMA.names
    imputed = dict(zip(names, rows[0], strict=True))
    assert imputed["heart_rate"] == pytest.approx(80.0)
    assert imputed["heart_rate_missing"] == 1.0
    assert imputed["symptom_chest_pain"] == 0.0
    flags = dict(zip(names, rows[2], strict=True))
    assert flags["symptom_chest_pain"] == 1.0
    assert flags["heart_rate_missing"] == 0.0


def test_imputed_row_is_what_vectorize_builds_for_an_empty_record(
    make_features: Callable[..., ClinicalFeatures],
) -> None:
    missing = Measurement.missing()
    f = make_features(
        age_years=missing,
        heart_rate=missing,
        systolic_bp=missing,
        diastolic_bp=missing,
        respiratory_rate=missing,
        spo2=missing,
        temperature_c=missing,
        bmi=missing,
        ecg=Ecg(EcgCategory.UNKNOWN),
    )
    np.testing.assert_array_equal(scoring.imputed_row(), vectorize(f))


def test_real_model_loads_on_cpu_and_scores_probabilities(
    registered_model: RegisteredModel,
) -> None:
    scorer = load_scorer(registered_model, "cpu")
    assert scorer.provider == "CPUExecutionProvider"
    p = scorer.probabilities(warmup_rows())
    assert p.shape == (3,)
    assert np.all((p >= 0) & (p <= 1))
    assert scorer.probability(warmup_rows()[0]) == pytest.approx(float(p[0]), abs=1e-6)


def test_auto_uses_cuda_only_when_onnxruntime_offers_it(registered_model: RegisteredModel) -> None:
    scorer = load_scorer(registered_model, "auto")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert scorer.provider == "CUDAExecutionProvider"
    else:
        assert scorer.provider == "CPUExecutionProvider"


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is available here"
)
def test_cuda_requested_without_cuda_is_not_ready(registered_model: RegisteredModel) -> None:
    with pytest.raises(ModelNotReady) as err:
        load_scorer(registered_model, "cuda")
    assert err.value.reason == "cuda_unavailable"


def test_model_with_output_outside_0_1_is_rejected(tmp_path: Path) -> None:
    # probabilities = the first two raw features (age 60 and a 0/1 flag): not probabilities.
    bad = _register_graph(
        tmp_path,
        [helper.make_node("Slice", ["features", "starts", "ends", "axes"], ["probabilities"])],
    )
    with pytest.raises(ModelRejected) as err:
        load_scorer(bad, "cpu")
    assert err.value.reason == "warmup_output_out_of_range"


def test_model_with_nan_output_is_rejected(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Slice", ["features", "starts", "ends", "axes"], ["two"]),
        helper.make_node("Sub", ["two", "two"], ["zero"]),
        helper.make_node("Div", ["zero", "zero"], ["probabilities"]),  # 0/0 = NaN
    ]
    with pytest.raises(ModelRejected) as err:
        load_scorer(_register_graph(tmp_path, nodes), "cpu")
    assert err.value.reason == "warmup_output_not_finite"


def test_model_file_changed_after_verification_is_rejected(
    registered_model: RegisteredModel, tmp_path: Path
) -> None:
    copy = tmp_path / "model.onnx"
    copy.write_bytes(registered_model.onnx_path.read_bytes() + b"\0")
    with pytest.raises(ModelRejected) as err:
        load_scorer(replace(registered_model, onnx_path=copy), "cpu")
    assert err.value.reason == "checksum_mismatch"


def test_manifest_with_another_schema_is_rejected(registered_model: RegisteredModel) -> None:
    manifest = replace(registered_model.manifest, feature_names=("a", "b"))
    with pytest.raises(ModelRejected) as err:
        load_scorer(replace(registered_model, manifest=manifest), "cpu")
    assert err.value.reason == "schema_mismatch"
