from __future__ import annotations

from pathlib import Path

import pytest

from models.build import build_default, register_result
from models.errors import (
    ChecksumMismatch,
    GateFailed,
    ManifestMissing,
    ModelCorrupt,
    NothingToRollBack,
    SchemaMismatch,
    VersionNotFound,
)
from models.gates import PromotionGates
from models.pipeline import PipelineResult
from models.registry import Registry
from models.schema import FEATURE_NAMES

NAME = "mace-30d"


@pytest.fixture
def registry(tmp_path: Path, small_result: PipelineResult) -> Registry:
    reg = Registry(tmp_path)
    register_result(reg, small_result, name=NAME, description="test cohort")
    return reg


def test_register_load_promote_rollback(registry: Registry, small_result: PipelineResult) -> None:
    assert registry.versions(NAME) == ["v1"]
    assert registry.active_version(NAME) is None
    with pytest.raises(VersionNotFound) as info:
        registry.load(NAME)
    assert info.value.reason == "no_active_version"
    registry.promote(NAME, "v1")
    model = registry.load(NAME)
    assert model.version == "v1"
    assert model.manifest.feature_names == FEATURE_NAMES
    assert model.manifest.thresholds == small_result.thresholds
    assert "Race: **not used**" in model.card_path.read_text()
    register_result(registry, small_result, name=NAME, description="test cohort")
    assert registry.load(NAME, "v2").manifest.parent_version == "v1"
    registry.promote(NAME, "v2")
    assert registry.active_version(NAME) == "v2"
    assert registry.history(NAME) == ["v1"]
    assert registry.rollback(NAME) == "v1"
    assert registry.active_version(NAME) == "v1"
    with pytest.raises(NothingToRollBack):
        registry.rollback(NAME)
    assert not [p for p in (registry.root / NAME).iterdir() if p.name.startswith(".")]


def test_tampered_model_is_refused(registry: Registry) -> None:
    path = registry.root / NAME / "v1" / "model.onnx"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ChecksumMismatch) as info:
        registry.load(NAME, "v1")
    assert info.value.reason == "checksum_mismatch"


def test_missing_manifest_and_unknown_version(registry: Registry) -> None:
    with pytest.raises(VersionNotFound):
        registry.load(NAME, "v7")
    (registry.root / NAME / "v1" / "manifest.json").unlink()
    with pytest.raises(ManifestMissing):
        registry.load(NAME, "v1")


def test_schema_mismatch_is_refused(registry: Registry) -> None:
    path = registry.root / NAME / "v1" / "manifest.json"
    path.write_text(path.read_text().replace('"rf_smoking"', '"rf_smoker"'))
    with pytest.raises(SchemaMismatch) as info:
        registry.load(NAME, "v1")
    assert info.value.reason == "schema_mismatch"


def test_corrupt_model_is_refused(registry: Registry, small_result: PipelineResult) -> None:
    with pytest.raises(ModelCorrupt):
        registry.register(
            NAME,
            b"not an onnx model",
            thresholds=small_result.thresholds,
            metrics={},
            training_fingerprint="x",
            model_card="",
        )


def test_gate_failure_refuses_with_a_report(registry: Registry) -> None:
    with pytest.raises(GateFailed) as info:
        registry.promote(NAME, "v1", PromotionGates(min_auroc=0.999))
    report = info.value.report
    assert not report.passed
    assert "[FAIL] auroc" in report.render()
    assert registry.active_version(NAME) is None


def test_build_default_is_fast_and_idempotent(tmp_path: Path) -> None:
    import time

    start = time.perf_counter()
    model = build_default(tmp_path, n_patients=6000, seed=1, n_boot=30)
    assert time.perf_counter() - start < 30  # measured ~4 s
    assert model.version == "v1"
    assert Registry(tmp_path).active_version(NAME) == "v1"
    again = build_default(tmp_path, n_patients=6000, seed=1)
    assert again.sha256 == model.sha256
    other = build_default(tmp_path / "other", n_patients=6000, seed=1, n_boot=30)
    assert other.sha256 == model.sha256  # deterministic artifact
