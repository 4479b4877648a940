from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from models.build import build_default, register_result
from models.cli import main
from models.errors import (
    ChecksumMismatch,
    EvaluationMismatch,
    GateFailed,
    ManifestInvalid,
    ManifestMissing,
    ModelCorrupt,
    ModelMissing,
    ModelUnusable,
    NothingToRollBack,
    RegistryStateInvalid,
    SchemaMismatch,
    VersionNotFound,
)
from models.export import onnx_metadata
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
    # No staging or temporary files left behind; only the lock file.
    hidden = [p.name for p in (registry.root / NAME).iterdir() if p.name.startswith(".")]
    assert hidden == [".lock"]


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


# --- malformed content, version names, promotion that runs the model ---------------------


def _nan_graph(onnx_bytes: bytes) -> bytes:
    """The same graph with NaN intercepts: it parses and has the right signature, but its
    output is not a probability."""
    proto = onnx.load_from_string(onnx_bytes)
    changed = False
    for node in proto.graph.node:
        if node.op_type == "LinearClassifier":
            for attr in node.attribute:
                if attr.name == "intercepts":
                    attr.floats[:] = [float("nan")] * len(attr.floats)
                    changed = True
    assert changed
    return proto.SerializeToString()


def _register_copy_of_v1(
    registry: Registry, change: Callable[[bytes], bytes] = bytes, card: str = "copy"
) -> str:
    """v1's graph (``change``-d), thresholds, metrics and fingerprint as a new version."""
    v1 = registry.load(NAME, "v1")
    return registry.register(
        NAME,
        change(v1.onnx_path.read_bytes()),
        thresholds=v1.manifest.thresholds,
        metrics=dict(v1.manifest.metrics),
        training_fingerprint=v1.manifest.training_fingerprint,
        model_card=card,
    ).version


def _register_nan(registry: Registry) -> str:
    return _register_copy_of_v1(registry, _nan_graph, "nan")


def test_promote_refuses_a_model_whose_output_is_not_a_probability(registry: Registry) -> None:
    registry.promote(NAME, "v1")
    bad = _register_nan(registry)
    registry.load(NAME, bad)  # the registry's static checks alone accept it
    with pytest.raises(ModelUnusable) as info:
        registry.promote(NAME, bad)
    assert info.value.reason == "warmup_output_not_finite"
    assert registry.active_version(NAME) == "v1"
    assert registry.history(NAME) == []


def test_rollback_refuses_a_model_that_does_not_run(registry: Registry) -> None:
    bad = _register_nan(registry)
    (registry.root / NAME / "ACTIVE").write_text("v1\n")
    (registry.root / NAME / "HISTORY").write_text(f"{bad}\n")
    with pytest.raises(ModelUnusable):
        registry.rollback(NAME)
    assert registry.active_version(NAME) == "v1"
    assert registry.history(NAME) == [bad]


def _manifest_metrics(value: object) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        data = json.loads(path.read_text())
        data["metrics"] = value
        path.write_text(json.dumps(data))

    return mutate


def _replace_with_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize(
    "mutate",
    [
        _manifest_metrics([]),
        _manifest_metrics(None),
        _manifest_metrics({"auroc": {"nested": 1}}),
        lambda p: p.write_bytes(b'{"sha256": "\xff\xfe"}'),
        lambda p: p.write_text("[1, 2]"),
        lambda p: p.write_text("[" * 100_000),
        _manifest_metrics({"auroc": 10**400}),  # float() overflows
        lambda p: p.write_text(p.read_text().replace('"thresholds": {', '"thresholds": [{')),
        _replace_with_dir,
    ],
    ids=[
        "metrics-list",
        "metrics-null",
        "metric-object",
        "not-utf8",
        "not-an-object",
        "too-deep",
        "huge-number",
        "thresholds-list",
        "a-directory",
    ],
)
def test_a_malformed_manifest_is_manifest_invalid(
    registry: Registry, mutate: Callable[[Path], None]
) -> None:
    mutate(registry.root / NAME / "v1" / "manifest.json")
    with pytest.raises(ManifestInvalid) as info:
        registry.load(NAME, "v1")
    assert info.value.reason == "manifest_invalid"


def test_an_unreadable_model_file_is_model_missing(registry: Registry) -> None:
    _replace_with_dir(registry.root / NAME / "v1" / "model.onnx")
    with pytest.raises(ModelMissing):
        registry.load(NAME, "v1")


@pytest.mark.parametrize(
    ("content", "as_dir"),
    [(b"\xff\xfe\n", False), (b"v1 v2\n", False), (b"../v1\n", False), (b"", True)],
    ids=["not-utf8", "two-versions", "not-a-version", "a-directory"],
)
@pytest.mark.parametrize("file", ["ACTIVE", "HISTORY"])
def test_malformed_active_or_history_is_registry_state_invalid(
    registry: Registry, file: str, content: bytes, as_dir: bool
) -> None:
    path = registry.root / NAME / file
    if as_dir:
        path.mkdir()
    else:
        path.write_bytes(content)
    read = registry.active_version if file == "ACTIVE" else registry.history
    if file == "HISTORY" and content == b"v1 v2\n":
        assert read(NAME) == ["v1", "v2"]  # several versions are what HISTORY holds
        return
    with pytest.raises(RegistryStateInvalid) as info:
        read(NAME)
    assert info.value.reason == "registry_state_invalid"
    if file == "ACTIVE":
        with pytest.raises(RegistryStateInvalid):
            registry.load(NAME)


def test_a_promotion_repairs_a_damaged_active(registry: Registry) -> None:
    (registry.root / NAME / "ACTIVE").write_bytes(b"\xff\n")
    registry.promote(NAME, "v1")
    assert registry.active_version(NAME) == "v1"
    assert registry.history(NAME) == []  # nothing readable to record


@pytest.mark.parametrize(
    "version", ["v" + "9" * 5000, "v1\n", "v01", "../v1", "v1/../v1", "", "V1", "v1" + "\0"]
)
def test_a_string_that_is_not_a_version_name_never_reaches_the_file_system(
    registry: Registry, version: str
) -> None:
    for call in (registry.load, registry.manifest, registry.promote):
        with pytest.raises(VersionNotFound) as info:
            call(NAME, version)
        assert info.value.reason == "version_not_found"
        assert version not in str(info.value) or not version


def test_the_cli_promotes_with_the_service_gates_and_says_which(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(registry.root)
    strict = json.dumps({"min_auroc": 0.999})
    assert main(["promote", "--registry", root, "--gates", strict, "v1"]) == 2
    out, err = capsys.readouterr()
    assert '"min_auroc": 0.999' in out.splitlines()[0]
    assert out.startswith("gates (--gates): ")
    assert "[FAIL] auroc" in err
    monkeypatch.setenv("TRIAGE_PROMOTION_GATES", strict)
    assert main(["promote", "--registry", root, "v1"]) == 2
    assert capsys.readouterr().out.startswith("gates (TRIAGE_PROMOTION_GATES): ")
    monkeypatch.setenv("TRIAGE_PROMOTION_GATES", '{"min_auroc": "high"}')
    assert main(["promote", "--registry", root, "v1"]) == 2
    assert "invalid promotion gates" in capsys.readouterr().err
    assert registry.active_version(NAME) is None
    # A misspelt gate is refused, as the service's settings refuse it (was: silently the
    # default gates).
    monkeypatch.setenv("TRIAGE_PROMOTION_GATES", '{"min_aurocc": 0.999}')
    assert main(["promote", "--registry", root, "v1"]) == 2
    assert "unknown gates: min_aurocc" in capsys.readouterr().err
    monkeypatch.delenv("TRIAGE_PROMOTION_GATES")
    assert main(["promote", "--registry", root, "v1"]) == 0
    assert capsys.readouterr().out.startswith("gates (defaults): ")
    assert registry.active_version(NAME) == "v1"


def test_the_cli_refuses_a_model_that_does_not_run(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _register_nan(registry)
    assert main(["promote", "--registry", str(registry.root), bad]) == 1
    assert "warmup_output_not_finite" in capsys.readouterr().err
    assert registry.active_version(NAME) is None


# --- concurrent and interrupted changes, artifacts that disagree with what is registered -----


def test_changes_wait_for_the_registry_lock(registry: Registry) -> None:
    """Was: no lock, so a rollback interleaved with a promotion lost one of them."""
    v2 = _register_copy_of_v1(registry)
    registry.promote(NAME, "v1")
    registry.promote(NAME, v2)
    fd = os.open(registry.root / NAME / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process in the middle of a change
    done: list[str] = []
    worker = threading.Thread(target=lambda: done.append(registry.rollback(NAME)))
    worker.start()
    worker.join(0.5)
    assert not done
    assert registry.active_version(NAME) == v2
    os.close(fd)
    worker.join(30)
    assert done == ["v1"]
    assert (registry.active_version(NAME), registry.history(NAME)) == ("v1", [])


def test_a_crash_between_the_two_writes_reads_as_before_or_after(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: a promotion interrupted after HISTORY left the serving version in HISTORY (the
    next rollback 're-activated' it), and an interrupted rollback lost a version."""
    from models import registry as registry_module

    v2 = _register_copy_of_v1(registry)
    registry.promote(NAME, "v1")
    write = registry_module._write_atomic

    def crash_on(file: str) -> Callable[[Path, bytes], None]:
        def writing(path: Path, data: bytes) -> None:
            if path.name == file:
                raise KeyboardInterrupt  # the process dies here
            write(path, data)

        return writing

    monkeypatch.setattr(registry_module, "_write_atomic", crash_on("ACTIVE"))
    with pytest.raises(KeyboardInterrupt):
        registry.promote(NAME, v2)
    monkeypatch.setattr(registry_module, "_write_atomic", write)
    assert (registry.root / NAME / "HISTORY").read_text() == "v1\n"  # written before the crash
    assert (registry.active_version(NAME), registry.history(NAME)) == ("v1", [])  # not begun
    registry.promote(NAME, v2)
    monkeypatch.setattr(registry_module, "_write_atomic", crash_on("HISTORY"))
    with pytest.raises(KeyboardInterrupt):
        registry.rollback(NAME)
    monkeypatch.setattr(registry_module, "_write_atomic", write)
    assert (registry.active_version(NAME), registry.history(NAME)) == ("v1", [])  # finished
    with pytest.raises(NothingToRollBack):
        registry.rollback(NAME)


def _with_metadata(onnx_bytes: bytes, **changes: str) -> bytes:
    proto = onnx.load_from_string(onnx_bytes)
    for prop in proto.metadata_props:
        if prop.key in changes:
            prop.value = changes[prop.key]
    return proto.SerializeToString()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"schema_version": "2.0.0"}, SchemaMismatch),
        ({"schema": "renamed"}, SchemaMismatch),
        ({"thresholds": json.dumps({"low_upper": 0.0001, "high_lower": 0.5})}, EvaluationMismatch),
        ({"training_fingerprint": "0" * 64}, EvaluationMismatch),
    ],
)
def test_register_refuses_what_the_artifact_says_otherwise(
    registry: Registry, change: dict[str, str], error: type[Exception]
) -> None:
    """Was registered: the manifest was stamped with the serving schema and the given
    thresholds whatever the model was trained and exported with."""
    v1 = registry.load(NAME, "v1")
    data = v1.onnx_path.read_bytes()
    if "schema" in change:
        schema = json.loads(onnx_metadata(data)["schema"])
        schema["features"][0]["name"], schema["features"][1]["name"] = (
            schema["features"][1]["name"],
            schema["features"][0]["name"],
        )
        change = {"schema": json.dumps(schema)}
    with pytest.raises(error):
        registry.register(
            NAME,
            _with_metadata(data, **change),
            thresholds=v1.manifest.thresholds,
            metrics=dict(v1.manifest.metrics),
            training_fingerprint=v1.manifest.training_fingerprint,
            model_card="x",
        )
    assert registry.versions(NAME) == ["v1"]


def test_rollback_applies_the_gates(registry: Registry) -> None:
    """Was: no gates on rollback, so the registry could re-activate a version the service
    refuses on load."""
    v2 = _register_copy_of_v1(registry)
    registry.promote(NAME, "v1")
    registry.promote(NAME, v2)
    with pytest.raises(GateFailed):
        registry.rollback(NAME, PromotionGates(min_auroc=0.999))
    assert (registry.active_version(NAME), registry.history(NAME)) == (v2, ["v1"])
    assert registry.rollback(NAME) == "v1"


def test_a_deleted_active_version_does_not_give_its_name_to_a_new_model(
    registry: Registry,
) -> None:
    """Was: v3 deleted while ACTIVE, the next registration became a new "v3", which
    replicas still serving the old v3 could not tell apart."""
    v2 = _register_copy_of_v1(registry)
    registry.promote(NAME, "v1")
    registry.promote(NAME, v2)
    for p in (registry.root / NAME / v2).iterdir():
        p.unlink()
    (registry.root / NAME / v2).rmdir()
    assert _register_copy_of_v1(registry) == "v3"
