"""Model lifecycle against a running server: atomic swap under load, serialised reloads, a
scrape during a swap, failed loads that keep the old model serving, the registry watcher,
shadow scoring, fairness-gated activation and rollback (docs/lifecycle.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from relaxed_gates import RELAXED_GATES
from triage.v1 import triage_pb2

from models.registry import Registry
from models.thresholds import Thresholds
from service.assessment import GroupRate, ParityResult
from service.errors import ModelRejected
from service.fairness.rules import OK
from service.fairness.window import WindowView
from service.shadow import check_promotion, worst_within_stratum_parity

TOKEN = "lifecycle-admin-token"
AUTH = [("authorization", f"Bearer {TOKEN}")]
NAME = "mace-30d"


@pytest.fixture
def registry(model_registry: Path, tmp_path: Path) -> Path:
    """A private copy of the session registry (these tests promote and roll back), with a
    second version v2: the same graph, thresholds moved so that its bands differ."""
    root = tmp_path / "registry"
    shutil.copytree(model_registry, root)
    reg = Registry(root)
    v1 = reg.load(NAME)
    moved = replace(v1.manifest.thresholds, high_lower=v1.manifest.thresholds.low_upper + 1e-9)
    reg.register(
        NAME,
        _with_thresholds(v1.onnx_path.read_bytes(), moved),
        thresholds=moved,
        metrics=dict(v1.manifest.metrics),
        training_fingerprint=v1.manifest.training_fingerprint,
        model_card="test",
    )
    return root


def _with_thresholds(onnx_bytes: bytes, thresholds: Thresholds) -> bytes:
    """The graph with other thresholds in its own metadata (the registry refuses thresholds
    that differ from the ones exported with the model)."""
    proto = onnx.load_from_string(onnx_bytes)
    for prop in proto.metadata_props:
        if prop.key == "thresholds":
            prop.value = json.dumps(
                {"low_upper": thresholds.low_upper, "high_lower": thresholds.high_lower}
            )
    return proto.SerializeToString()


def _register(root: Path, data: bytes, **metric_changes: float) -> str:
    reg = Registry(root)
    v1 = reg.load(NAME, "v1")
    return reg.register(
        NAME,
        data,
        thresholds=v1.manifest.thresholds,
        metrics={**v1.manifest.metrics, **metric_changes},
        training_fingerprint=v1.manifest.training_fingerprint,
        model_card="test",
    ).version


def _failures(served: Any, reason: str) -> float:
    value = served.metrics.registry.get_sample_value(
        "triage_model_load_failures_total", {"reason": reason}
    )
    return float(value or 0.0)


def _assess(served: Any, bundle: bytes, request_id: str) -> triage_pb2.Assessment:
    reply: triage_pb2.Assessment = served.stub.Assess(
        triage_pb2.AssessRequest(fhir_bundle=bundle, request_id=request_id), timeout=30
    )
    return reply


def test_swap_under_concurrent_load_and_a_scrape_during_it(
    serve: Callable[..., Any], registry: Path, example_bundles: list[bytes]
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry, http_metrics=True, workers=8)
    # v1 and v2 differ in bytes (their thresholds metadata): each answer names the model
    # that scored it, whichever was serving when the answer was given.
    sha256 = {v: Registry(registry).load(NAME, v).sha256 for v in ("v1", "v2")}
    assert sha256["v1"] != sha256["v2"]
    stop = threading.Event()
    versions: list[str] = []
    failures: list[BaseException] = []

    def client(worker: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                reply = _assess(served, example_bundles[i % len(example_bundles)], f"w{worker}-{i}")
                versions.append(reply.model.version)
                assert reply.model.sha256 == sha256[reply.model.version]
            except BaseException as exc:  # noqa: BLE001 - every failure is reported below
                failures.append(exc)
            i += 1

    scrapes: list[str] = []
    with ThreadPoolExecutor(6) as pool:
        for w in range(4):
            pool.submit(client, w)
        for target in ("v2", "v1", "v2", "v1", "v2"):
            status = served.admin.ReloadModel(
                triage_pb2.ReloadModelRequest(version=target), metadata=AUTH, timeout=30
            )
            assert status.active.version == target
            url = f"http://127.0.0.1:{served.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                scrapes.append(response.read().decode())
        stop.set()
    assert not failures, failures[:3]
    assert len(versions) > 20
    assert set(versions) == {"v1", "v2"}
    for text in scrapes:
        assert "triage_model_info{" in text
        assert "triage_model_loaded 1.0" in text
    assert served.health_status() == 1  # SERVING


def test_every_assessment_names_the_version_that_scored_it(
    serve: Callable[..., Any], registry: Path, example_bundles: list[bytes]
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry)
    bundle = example_bundles[0]
    v1 = _assess(served, bundle, "one")
    served.engine.load_version("v2")
    v2 = _assess(served, bundle, "two")
    assert (v1.model.version, v2.model.version) == ("v1", "v2")
    # v2 has the same graph, so the same probability; its thresholds set the band.
    assert v1.mace_probability == pytest.approx(v2.mace_probability)
    thresholds = Registry(registry).load(NAME, "v2").manifest.thresholds
    if v2.mace_probability >= thresholds.high_lower:
        assert v2.band == triage_pb2.HIGH


def test_two_reloads_at_once_are_serialised(serve: Callable[..., Any], registry: Path) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry)
    barrier = threading.Barrier(2)

    def reload(version: str) -> str:
        barrier.wait()
        status = served.admin.ReloadModel(
            triage_pb2.ReloadModelRequest(version=version), metadata=AUTH, timeout=60
        )
        return str(status.active.version)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(reload, ["v2", "v1"]))
    assert results in (["v2", "v1"], ["v2", "v2"], ["v1", "v1"], ["v1", "v2"])
    assert served.engine.model_ref.version in ("v1", "v2")
    assert served.health_status() == 1


def _corrupt(root: Path, version: str, how: str) -> None:
    d = root / NAME / version
    if how == "truncated":
        data = (d / "model.onnx").read_bytes()
        (d / "model.onnx").write_bytes(data[: len(data) // 2])
    elif how == "missing_manifest":
        (d / "manifest.json").unlink()
    elif how == "schema":
        manifest = json.loads((d / "manifest.json").read_text())
        manifest["feature_names"] = list(reversed(manifest["feature_names"]))
        (d / "manifest.json").write_text(json.dumps(manifest))


def _nan_model(root: Path) -> bytes:
    """The v1 graph with every float initializer replaced by NaN: it parses and has the right
    signature, but its warm-up output is not a probability."""
    proto = onnx.load_from_string((root / NAME / "v1" / "model.onnx").read_bytes())
    for init in proto.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype.kind == "f":
            init.CopyFrom(numpy_helper.from_array(np.full_like(array, np.nan), init.name))
    return proto.SerializeToString()


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("truncated", "checksum_mismatch"),
        ("missing_manifest", "manifest_missing"),
        ("schema", "schema_mismatch"),
    ],
)
def test_a_failed_load_keeps_the_old_model_serving(
    serve: Callable[..., Any], registry: Path, example_bundles: list[bytes], how: str, reason: str
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry)
    before = served.engine.model_ref
    _corrupt(registry, "v2", how)
    with pytest.raises(grpc.RpcError) as err:
        served.admin.ReloadModel(
            triage_pb2.ReloadModelRequest(version="v2"), metadata=AUTH, timeout=30
        )
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert dict(err.value.trailing_metadata())["triage-error-reason"] == reason
    assert _failures(served, reason) == 1
    assert served.engine.model_ref == before
    assert served.health_status() == 1
    assert _assess(served, example_bundles[0], f"after-{how}").model.version == before.version


def test_corrupt_bytes_with_a_matching_sha256_are_refused(
    serve: Callable[..., Any], registry: Path
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry)
    d = registry / NAME / "v2"
    garbage = b"\x08\x07not an onnx graph" * 50
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["sha256"] = __import__("hashlib").sha256(garbage).hexdigest()
    (d / "manifest.json").write_text(json.dumps(manifest))
    (d / "model.onnx").write_bytes(garbage)
    with pytest.raises(ModelRejected) as err:
        served.engine.load_version("v2")
    assert err.value.reason == "model_corrupt"
    assert _failures(served, "model_corrupt") == 1
    assert served.engine.model_ref.version == "v1"


def test_nan_warmup_output_is_refused(serve: Callable[..., Any], registry: Path) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry)
    version = _register(registry, _nan_model(registry))
    with pytest.raises(ModelRejected) as err:
        served.engine.load_version(version)
    assert err.value.reason == "warmup_output_not_finite"
    assert _failures(served, "warmup_output_not_finite") == 1
    assert served.engine.model_ref.version == "v1"
    assert served.health_status() == 1


def test_gates_not_met_is_refused(serve: Callable[..., Any], registry: Path) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry)
    data = (registry / NAME / "v1" / "model.onnx").read_bytes()
    version = _register(registry, data, auroc=RELAXED_GATES.min_auroc - 0.1)
    with pytest.raises(grpc.RpcError) as err:
        served.admin.ReloadModel(
            triage_pb2.ReloadModelRequest(version=version), metadata=AUTH, timeout=30
        )
    assert dict(err.value.trailing_metadata())["triage-error-reason"] == "gates_not_met"
    assert _failures(served, "gates_not_met") == 1
    assert served.engine.model_ref.version == "v1"


def test_the_failure_log_names_the_reason_only(
    serve: Callable[..., Any], registry: Path, caplog: pytest.LogCaptureFixture
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry)
    _corrupt(registry, "v2", "truncated")
    with pytest.raises(ModelRejected):
        served.engine.load_version("v2")
    records = [r for r in caplog.records if "model load failed" in r.getMessage()]
    assert records
    assert records[0].fields == {"reason": "checksum_mismatch", "version": "v2"}  # type: ignore[attr-defined]


def test_the_watcher_follows_promotion_and_rollback(
    serve: Callable[..., Any], registry: Path
) -> None:
    served = serve(model_registry=registry, registry_poll_s=3600)  # polled by hand below
    engine = served.engine
    assert engine.check_registry() is None  # nothing changed
    Registry(registry).promote(NAME, "v2", RELAXED_GATES)
    ref = engine.check_registry()
    assert ref is not None
    assert ref.version == "v2"
    assert (
        Registry(registry).rollback(NAME, RELAXED_GATES) == "v1"
    )  # what `triage-models rollback` does
    assert engine.check_registry() is not None
    assert engine.model_ref.version == "v1"


def test_a_pinned_version_keeps_serving_until_active_changes(
    serve: Callable[..., Any], registry: Path
) -> None:
    # `triage admin reload v2` serves v2 without touching the registry (ACTIVE stays v1):
    # the watcher must not undo that, only follow a later change of ACTIVE.
    served = serve(model_registry=registry, registry_poll_s=3600)  # polled by hand below
    engine = served.engine
    assert engine.load_version("v2").version == "v2"
    assert engine.check_registry() is None
    assert engine.model_ref.version == "v2"
    Registry(registry).promote(NAME, "v2", RELAXED_GATES)
    assert engine.check_registry() is None  # ACTIVE is now what is served
    assert Registry(registry).rollback(NAME, RELAXED_GATES) == "v1"
    ref = engine.check_registry()
    assert ref is not None
    assert ref.version == "v1"
    engine.load_version("v2")
    assert engine.reload().version == "v1"  # a reload without a version serves ACTIVE again
    assert engine.check_registry() is None


def test_the_watcher_thread_reloads_and_stops(serve: Callable[..., Any], registry: Path) -> None:
    served = serve(model_registry=registry, registry_poll_s=0.05)
    Registry(registry).promote(NAME, "v2", RELAXED_GATES)
    deadline = threading.Event()
    for _ in range(200):
        if served.engine.model_ref.version == "v2":
            break
        deadline.wait(0.05)
    assert served.engine.model_ref.version == "v2"
    served.close()
    assert served.engine._watcher is not None
    assert not served.engine._watcher.is_alive()


def test_the_watcher_does_not_retry_a_broken_active_version(
    serve: Callable[..., Any], registry: Path
) -> None:
    served = serve(model_registry=registry, registry_poll_s=3600)
    Registry(registry).promote(NAME, "v2", RELAXED_GATES)
    _corrupt(registry, "v2", "truncated")
    assert served.engine.check_registry() is None
    assert served.engine.check_registry() is None
    assert _failures(served, "checksum_mismatch") == 1
    assert served.engine.model_ref.version == "v1"


def test_admin_rollback_serves_the_previous_version(
    serve: Callable[..., Any], registry: Path
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry, registry_poll_s=0)
    Registry(registry).promote(NAME, "v2", RELAXED_GATES)
    served.admin.ReloadModel(triage_pb2.ReloadModelRequest(), metadata=AUTH, timeout=30)
    assert served.engine.model_ref.version == "v2"
    status = served.admin.Rollback(triage_pb2.RollbackRequest(), metadata=AUTH, timeout=30)
    assert status.active.version == "v1"
    assert Registry(registry).active_version(NAME) == "v1"


def test_a_failed_rollback_changes_neither_registry_nor_service(
    serve: Callable[..., Any], registry: Path
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry, registry_poll_s=0)
    Registry(registry).promote(NAME, "v2", RELAXED_GATES)
    served.admin.ReloadModel(triage_pb2.ReloadModelRequest(), metadata=AUTH, timeout=30)
    # v1 still loads in the registry, but no longer passes the service's promotion gates
    manifest_path = registry / NAME / "v1" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["metrics"]["auroc"] = 0.3  # below every gate set's minimum
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(grpc.RpcError) as err:
        served.admin.Rollback(triage_pb2.RollbackRequest(), metadata=AUTH, timeout=30)
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert dict(err.value.trailing_metadata())["triage-error-reason"] == "gates_not_met"
    assert served.engine.model_ref.version == "v2"
    assert Registry(registry).active_version(NAME) == "v2"
    assert Registry(registry).history(NAME) == ["v1"]  # a later rollback can still try


def test_shadow_scores_without_touching_responses(
    serve: Callable[..., Any], registry: Path, example_bundles: list[bytes]
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry, http_metrics=True)
    baseline = [_assess(served, b, f"base-{i}") for i, b in enumerate(example_bundles[:20])]
    status = served.admin.SetShadowModel(
        triage_pb2.SetShadowModelRequest(version="v2"), metadata=AUTH, timeout=30
    )
    assert status.shadow.version == "v2"
    assert status.active.version == "v1"
    shadowed = [_assess(served, b, f"shadow-{i}") for i, b in enumerate(example_bundles[:20])]
    for before, after in zip(baseline, shadowed, strict=True):
        assert after.model.version == "v1"
        assert after.band == before.band
        assert after.mace_probability == before.mace_probability
    report = json.loads(
        served.stub.GetFairnessReport(triage_pb2.FairnessReportRequest(), timeout=30).json
    )
    shadow = report["shadow"]
    assert shadow["version"] == "v2"
    assert shadow["scored"] == 20
    # v2 puts everything at or above v1's low/moderate boundary in HIGH: it can only disagree
    # with v1 where v1 answered MODERATE.
    moderate = sum(1 for a in shadowed if a.band == triage_pb2.MODERATE)
    assert shadow["disagreements"] <= moderate
    if moderate:
        assert shadow["disagreements"] >= 1
    m = served.metrics.registry
    assert sum(
        float(m.get_sample_value("triage_shadow_disagreements_total", {"facility": f}) or 0)
        for f in ("other", "unknown")
    ) == float(shadow["disagreements"])
    with urllib.request.urlopen(
        f"http://127.0.0.1:{served.metrics_port}/metrics", timeout=10
    ) as response:
        text = response.read().decode()
    assert "triage_shadow_fairness_group_rate{" in text
    assert 'model="shadow"' in text
    assert "triage_shadow_model_info{" in text
    # Outcomes reach the shadow's missed-MACE figures.
    served.stub.ReportOutcome(
        triage_pb2.OutcomeReport(audit_id=shadowed[0].audit_id, mace=True), timeout=30
    )
    shadow_groups = served.engine.shadow_report()["shadow"]["facilities"]
    assert any(g["mace"] == 1 for f in shadow_groups.values() for g in f["groups"])
    cleared = served.admin.SetShadowModel(
        triage_pb2.SetShadowModelRequest(), metadata=AUTH, timeout=30
    )
    assert not cleared.HasField("shadow")


def test_an_outcome_reported_before_the_shadow_scored_still_reaches_it(
    serve: Callable[..., Any], registry: Path, example_bundles: list[bytes]
) -> None:
    """The outcome lands between the commit of the record and the candidate's scoring (the
    interleaving is forced: the report runs inside the shadow step, before the original)."""
    served = serve(admin_token=TOKEN, model_registry=registry)
    engine = served.engine
    engine.set_shadow("v2")
    score_shadow = engine._score_shadow

    def outcome_first(shadow: Any, decision: Any, *rest: Any) -> None:
        engine.report_outcome(
            audit_id=decision.audit_id, encounter_reference=None, mace=True, occurred_at=None
        )
        score_shadow(shadow, decision, *rest)

    engine._score_shadow = outcome_first
    answer = _assess(served, example_bundles[0], "outcome-races-shadow")
    report = engine.shadow_report()
    for model in ("shadow", "active"):
        groups = [g for f in report[model]["facilities"].values() for g in f["groups"]]
        assert any(g["mace"] == 1 for g in groups), model
    assert engine._store.outcome_of(answer.audit_id) is True


def test_a_less_fair_candidate_is_refused(
    serve: Callable[..., Any], registry: Path, example_bundles: list[bytes]
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry, promotion_fairness_tolerance=0.02)
    active = Registry(registry).load(NAME).manifest.metrics["worst_group_sensitivity"]
    data = (registry / NAME / "v1" / "model.onnx").read_bytes()
    worse = _register(registry, data, worst_group_sensitivity=active - 0.05)
    served.admin.SetShadowModel(
        triage_pb2.SetShadowModelRequest(version=worse), metadata=AUTH, timeout=30
    )
    for i, bundle in enumerate(example_bundles[:5]):
        _assess(served, bundle, f"r-{i}")
    with pytest.raises(grpc.RpcError) as err:
        served.admin.ActivateShadow(triage_pb2.ActivateShadowRequest(), metadata=AUTH, timeout=30)
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert dict(err.value.trailing_metadata())["triage-error-reason"] == "shadow_less_fair"
    assert "manifest_worst_group_sensitivity=FAIL" in (err.value.details() or "")
    assert served.engine.model_ref.version == "v1"
    assert Registry(registry).active_version(NAME) == "v1"
    assert served.engine.shadow_ref is not None  # still shadowing: nothing changed
    refused = served.metrics.registry.get_sample_value("triage_shadow_promotions_refused_total", {})
    assert refused == 1.0


def test_a_candidate_within_tolerance_is_activated(
    serve: Callable[..., Any], registry: Path
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry, registry_poll_s=0)
    active = Registry(registry).load(NAME).manifest.metrics["worst_group_sensitivity"]
    data = (registry / NAME / "v1" / "model.onnx").read_bytes()
    close = _register(registry, data, worst_group_sensitivity=active - 0.01)
    served.engine.set_shadow(close)
    status = served.admin.ActivateShadow(
        triage_pb2.ActivateShadowRequest(), metadata=AUTH, timeout=30
    )
    assert status.active.version == close
    assert not status.HasField("shadow")
    reg = Registry(registry)
    assert reg.active_version(NAME) == close
    assert reg.history(NAME)[-1] == "v1"
    assert served.engine.rollback().version == "v1"


def test_activate_without_a_shadow_is_a_clear_refusal(
    serve: Callable[..., Any], registry: Path
) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry)
    with pytest.raises(grpc.RpcError) as err:
        served.admin.ActivateShadow(triage_pb2.ActivateShadowRequest(), metadata=AUTH, timeout=30)
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert dict(err.value.trailing_metadata())["triage-error-reason"] == "no_shadow_model"


def _view(difference: float, fnr: float) -> WindowView:
    def group(name: str, rate: float) -> GroupRate:
        return GroupRate(name, 100, int(rate * 100), rate, 0.0, 1.0, True, 50, 40, fnr)

    return WindowView(
        "other",
        200,
        OK,
        (
            ParityResult(
                "sex",
                "moderate",
                difference,
                None,
                (group("female", 0.2), group("male", 0.2 + difference)),
                True,
            ),
            ParityResult("sex", "all", 0.0, None, (group("female", 0.3), group("male", 0.3)), True),
        ),
    )


@pytest.mark.parametrize(
    ("shadow_difference", "shadow_fnr", "failed"),
    [
        (0.05, 0.05, ()),
        (0.065, 0.06, ()),  # within the 0.02 tolerance
        (0.10, 0.05, ("within_stratum_parity_difference",)),
        (0.05, 0.10, ("live_worst_group_sensitivity",)),
    ],
)
def test_the_live_fairness_comparison(
    shadow_difference: float, shadow_fnr: float, failed: tuple[str, ...]
) -> None:
    check = check_promotion(
        version="v9",
        active_metrics={"worst_group_sensitivity": 0.95},
        candidate_metrics={"worst_group_sensitivity": 0.95},
        active_views=[_view(0.05, 0.05)],
        shadow_views=[_view(shadow_difference, shadow_fnr)],
        tolerance=0.02,
        min_mace=30,
    )
    assert check.failed == failed
    assert check.passed is (not failed)


def test_the_within_stratum_parity_ignores_groups_below_the_minimum_count() -> None:
    def group(name: str, count: int, rate: float, sufficient: bool) -> GroupRate:
        return GroupRate(name, count, int(rate * count), rate, 0.0, 1.0, sufficient)

    groups = (
        group("white", 40, 0.5, True),
        group("black_or_african_american", 40, 0.5, True),
        group("asian", 1, 1.0, False),  # one patient: not evidence of anything
    )
    view = WindowView("f", 81, OK, (ParityResult("race", "low", 0.5, 0.5, groups, True),))
    assert worst_within_stratum_parity([view]) == 0.0
    alone = WindowView("f", 41, OK, (ParityResult("race", "low", 0.5, 0.5, groups[1:], False),))
    assert worst_within_stratum_parity([alone]) is None


def test_a_candidate_without_a_recorded_sensitivity_is_refused() -> None:
    check = check_promotion(
        version="v9",
        active_metrics={"worst_group_sensitivity": 0.95},
        candidate_metrics={},
        active_views=[],
        shadow_views=[],
        tolerance=0.02,
        min_mace=30,
    )
    assert check.failed == ("manifest_worst_group_sensitivity",)


def test_the_admin_cli(serve: Callable[..., Any], registry: Path) -> None:
    served = serve(admin_token=TOKEN, model_registry=registry, registry_poll_s=0)
    env = {**os.environ, "TRIAGE_ADMIN_TOKEN": TOKEN}

    def admin(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "service", "admin", "--target", served.target, *args],
            capture_output=True,
            text=True,
            check=False,
            env={**env, **extra},
            timeout=60,
        )

    status = admin("status")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["active"]["version"] == "v1"
    assert json.loads(admin("reload", "v2").stdout)["active"]["version"] == "v2"
    assert json.loads(admin("shadow", "v1").stdout)["shadow"]["version"] == "v1"
    refused = admin("rollback")
    assert refused.returncode == 1
    assert "FAILED_PRECONDITION nothing_to_roll_back" in refused.stderr
    wrong = admin("status", TRIAGE_ADMIN_TOKEN="a-wrong-admin-token")
    assert wrong.returncode == 1
    assert "UNAUTHENTICATED" in wrong.stderr
    assert TOKEN not in wrong.stderr + wrong.stdout
