"""The engine end to end: real bundles, the real ONNX model, a real SQLite store."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from fhir_adapters.errors import BundleRejected, BundleTooLarge
from fhir_adapters.pseudonym import pseudonym
from models.registry import RegisteredModel
from service.assessment import RiskBand
from service.engine import Engine
from service.errors import (
    AuditStoreUnavailable,
    DeadlineExceeded,
    IdempotencyConflict,
    InvalidRequest,
    ModelNotReady,
    UnknownReference,
)
from service.metrics import Metrics
from service.policy import HEART_PATHWAY_DISCHARGE
from service.settings import Settings

Factory = Callable[..., Engine]


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _assessment_rows(engine: Engine) -> int:
    with sqlite3.connect(engine._settings.audit_db_path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM assessments").fetchone()[0])


def test_assess_returns_a_recorded_assessment(
    engine_factory: Factory, example_bundles: list[bytes], registered_model: RegisteredModel
) -> None:
    engine = engine_factory()
    a = engine.assess(example_bundles[0], request_id="r1")
    assert a.request_id == "r1"
    assert 0.0 <= a.mace_probability <= 1.0
    assert a.model.sha256 == registered_model.sha256
    assert a.model.execution_provider.endswith("ExecutionProvider")
    assert 1 <= a.recommendation.esi_level <= 5
    assert a.heart.total == sum(
        (a.heart.history, a.heart.ecg, a.heart.age, a.heart.risk_factors, a.heart.troponin)
    )
    assert a.contributions
    assert all(c.status in {"present", "missing", "stale", "implausible"} for c in a.contributions)
    assert a.fairness_audit is not None
    assert a.fairness_audit.counterfactual is not None
    assert a.fairness_audit.counterfactual.race_ethnicity_invariant
    assert len(a.fairness_audit.counterfactual.variants) == 20
    assert _assessment_rows(engine) == 1


def test_every_bundle_race_ethnicity_never_changes_the_recommendation(
    engine_factory: Factory, example_bundles: list[bytes]
) -> None:
    engine = engine_factory()
    for i, bundle in enumerate(example_bundles[:30]):
        audit = engine.assess(bundle, request_id=f"cf-{i}").fairness_audit
        assert audit is not None
        assert audit.counterfactual is not None
        assert audit.counterfactual.race_ethnicity_invariant


def test_repeated_request_id_replays_the_same_assessment_and_records_once(
    engine_factory: Factory, example_bundles: list[bytes]
) -> None:
    engine = engine_factory()
    first = engine.assess(example_bundles[1], request_id="same")
    again = engine.assess(example_bundles[1], request_id="same")
    assert again == first
    assert _assessment_rows(engine) == 1
    with pytest.raises(IdempotencyConflict):
        engine.assess(example_bundles[2], request_id="same")


def test_a_bundle_only_the_slow_json_parser_reads_replays_too(
    engine_factory: Factory, example_bundles: list[bytes]
) -> None:
    """A number beyond a double (orjson refuses it) is read by the standard library: the
    retry's replay maps sources back through the same parse, not a not_json error."""
    doc = orjson.loads(example_bundles[1])
    doc["meta"] = {"versionId": "__HUGE__"}
    bundle = orjson.dumps(doc).replace(b'"__HUGE__"', b"1e309")
    engine = engine_factory()
    first = engine.assess(bundle, request_id="huge")
    assert engine.assess(bundle, request_id="huge") == first


def test_the_store_keeps_pseudonyms_not_the_bundles_identifiers(
    engine_factory: Factory, example_bundles: list[bytes]
) -> None:
    engine = engine_factory()
    bundle = example_bundles[1]
    doc = orjson.loads(bundle)
    references = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in doc["entry"]}
    birth_date = next(
        e["resource"]["birthDate"]
        for e in doc["entry"]
        if e["resource"]["resourceType"] == "Patient"
    )
    first = engine.assess(bundle, request_id="deid")
    cited = {s for c in first.contributions for s in c.sources}
    assert cited & references  # the answer cites the bundle's resources ...
    with sqlite3.connect(engine._settings.audit_db_path) as conn:
        row = " ".join(str(v) for v in conn.execute("SELECT * FROM assessments").fetchone())
    for reference in references:  # ... the store none of them
        assert reference not in row
    assert birth_date not in row
    assert pseudonym(engine._key, next(iter(cited))) in row
    # A retry gets exactly the first answer back: the bundle maps the pseudonyms back.
    assert engine.assess(bundle, request_id="deid") == first


def test_a_retry_naming_another_encounter_is_a_conflict_not_a_replay(
    engine_factory: Factory, example_bundles: list[bytes]
) -> None:
    engine = engine_factory()
    bundle = example_bundles[1]
    encounter_id = next(
        e["resource"]["id"]
        for e in orjson.loads(bundle)["entry"]
        if e["resource"]["resourceType"] == "Encounter"
    )
    first = engine.assess(bundle, request_id="enc", encounter_id=encounter_id)
    assert engine.assess(bundle, request_id="enc", encounter_id=encounter_id) == first
    # the same encounter written as a reference is the same question
    assert (
        engine.assess(bundle, request_id="enc", encounter_id=f"Encounter/{encounter_id}") == first
    )
    with pytest.raises(IdempotencyConflict):
        engine.assess(bundle, request_id="enc")
    with pytest.raises(IdempotencyConflict):
        engine.assess(bundle, request_id="enc", encounter_id="another")
    unnamed = engine.assess(bundle, request_id="unnamed")
    with pytest.raises(IdempotencyConflict):
        engine.assess(bundle, request_id="unnamed", encounter_id=encounter_id)
    assert engine.assess(bundle, request_id="unnamed") == unnamed
    assert _assessment_rows(engine) == 2


def test_a_retry_replays_even_when_the_limits_changed_since(
    engine_factory: Factory, example_bundles: list[bytes]
) -> None:
    bundle = example_bundles[1]
    first = engine_factory().assess(bundle, request_id="limits")
    # The same store, reopened with limits the bundle is now above and strict validation on:
    # the recorded answer is still the answer (reading its sources back needs no limits).
    stricter = engine_factory(max_bundle_bytes=1024, strict_validation=True)
    assert stricter.assess(bundle, request_id="limits") == first
    with pytest.raises(BundleTooLarge):
        stricter.assess(bundle, request_id="new")


def test_missing_request_id_is_invalid(
    engine_factory: Factory, example_bundles: list[bytes]
) -> None:
    with pytest.raises(InvalidRequest) as err:
        engine_factory().assess(example_bundles[0], request_id="")
    assert err.value.reason == "missing_request_id"


def test_bad_bundle_errors_pass_through_and_record_nothing(engine_factory: Factory) -> None:
    engine = engine_factory()
    with pytest.raises(BundleRejected):
        engine.assess(b"not json", request_id="bad")
    assert _assessment_rows(engine) == 0


def test_expired_deadline_is_refused_before_anything_is_recorded(
    engine_factory: Factory, example_bundles: list[bytes]
) -> None:
    engine = engine_factory()
    with pytest.raises(DeadlineExceeded):
        engine.assess(example_bundles[0], request_id="late", deadline=time.monotonic() - 1)
    assert _assessment_rows(engine) == 0
    assert engine.assess(example_bundles[0], request_id="late").request_id == "late"


def test_unwritable_store_fails_closed_and_takes_the_decision_back(
    make_settings: Callable[..., Settings], example_bundles: list[bytes]
) -> None:
    settings = make_settings()
    metrics = Metrics()
    engine = Engine.create(settings, metrics)
    try:
        engine.assess(example_bundles[0], request_id="ok")
        before = sum(v.size for v in engine._monitor.views())
        shutil.move(settings.data_dir, settings.data_dir.with_name("moved"))
        settings.data_dir.mkdir()
        with pytest.raises(AuditStoreUnavailable):
            engine.assess(example_bundles[1], request_id="lost")
        assert sum(v.size for v in engine._monitor.views()) == before
        assert _sample(metrics, "triage_audit_store_failures_total") == 1.0
    finally:
        engine.close()


def test_outcome_by_audit_id_and_by_encounter_reference(
    engine_factory: Factory, example_bundles: list[bytes], example_cases: list[Any]
) -> None:
    engine = engine_factory()
    a = engine.assess(example_bundles[3], request_id="o1")
    ack = engine.report_outcome(
        audit_id=a.audit_id, encounter_reference=None, mace=True, occurred_at=None
    )
    assert (ack.audit_id, ack.duplicate) == (a.audit_id, False)
    assert engine.report_outcome(
        audit_id=a.audit_id, encounter_reference=None, mace=True, occurred_at=None
    ).duplicate
    with pytest.raises(IdempotencyConflict):
        engine.report_outcome(
            audit_id=a.audit_id, encounter_reference=None, mace=False, occurred_at=None
        )
    b = engine.assess(example_bundles[4], request_id="o2")
    encounter = example_cases[4].encounter_id
    for reference in (encounter, f"Encounter/{encounter}"):
        ack = engine.report_outcome(
            audit_id=None, encounter_reference=reference, mace=False, occurred_at=None
        )
        assert ack.audit_ids == (b.audit_id,)
    with pytest.raises(UnknownReference):
        engine.report_outcome(
            audit_id="nope", encounter_reference=None, mace=True, occurred_at=None
        )
    with pytest.raises(UnknownReference):
        engine.report_outcome(
            audit_id=None, encounter_reference="Encounter/none", mace=True, occurred_at=None
        )
    with pytest.raises(InvalidRequest):
        engine.report_outcome(audit_id=None, encounter_reference=None, mace=True, occurred_at=None)


def test_restart_restores_fairness_windows_and_replays_old_requests(
    make_settings: Callable[..., Settings], example_bundles: list[bytes]
) -> None:
    settings = make_settings()
    first = Engine.create(settings, Metrics())
    answers = [first.assess(b, request_id=f"s{i}") for i, b in enumerate(example_bundles[:12])]
    first.report_outcome(
        audit_id=answers[0].audit_id, encounter_reference=None, mace=True, occurred_at=None
    )
    windows = {v.facility: v.size for v in first._monitor.views()}
    first.close()

    second = Engine.create(settings, Metrics())
    try:
        assert {v.facility: v.size for v in second._monitor.views()} == windows
        assert second.assess(example_bundles[5], request_id="s5") == answers[5]
    finally:
        second.close()


def test_metrics_count_assessments_by_band_and_group(
    make_settings: Callable[..., Settings], example_bundles: list[bytes]
) -> None:
    metrics = Metrics()
    engine = Engine.create(make_settings(), metrics)
    try:
        answers = [engine.assess(b, request_id=f"m{i}") for i, b in enumerate(example_bundles[:10])]
        total = sum(
            _sample(metrics, "triage_assessments_total", facility=f, band=b.value, escalated=e)
            for f in ("other", "unknown")
            for b in RiskBand
            for e in ("true", "false")
        )
        assert total == 10
        escalated = sum(a.recommendation.escalated for a in answers)
        by_sex = sum(
            _sample(
                metrics,
                "triage_assessments_by_group_total",
                facility=f,
                attribute="sex",
                group=g,
                stratum=s,
                escalated="true",
            )
            for f in ("other", "unknown")
            for g in ("female", "male", "unknown")
            for s in ("low", "moderate", "high")
        )
        assert by_sex == escalated
        assert _sample(metrics, "triage_stage_latency_seconds_count", stage="total") == 10
        assert _sample(metrics, "triage_model_loaded") == 1.0
    finally:
        engine.close()
    assert _sample(metrics, "triage_model_loaded") == 0.0


def test_swap_model_replaces_the_served_model_as_one_value(
    engine_factory: Factory, registered_model: RegisteredModel
) -> None:
    engine = engine_factory()
    before = engine._model
    ref = engine.swap_model(registered_model)
    assert engine._model is not before
    assert engine.model_ref == ref
    assert engine._model is not None
    assert engine._model.ref.sha256 == engine._model.registered.sha256


def test_engine_without_a_model_is_not_ready(
    make_settings: Callable[..., Settings], tmp_path: Any, example_bundles: list[bytes]
) -> None:
    settings = make_settings(model_registry=tmp_path / "empty")
    metrics = Metrics()
    with pytest.raises(ModelNotReady):
        Engine.create(settings, metrics)
    assert _sample(metrics, "triage_model_load_failures_total", reason="no_active_version") == 1
    engine = Engine.create(settings, Metrics(), require_model=False)
    try:
        assert not engine.ready
        with pytest.raises(ModelNotReady):
            engine.assess(example_bundles[0], request_id="x")
    finally:
        engine.close()


def _window_size(engine: Engine) -> int:
    return sum(v.size for v in engine._monitor.views())


def test_a_failed_write_at_a_full_window_loses_no_recorded_decision(
    make_settings: Callable[..., Settings], example_bundles: list[bytes]
) -> None:
    settings = make_settings(fairness_window_count=10)
    engine = Engine.create(settings, Metrics())
    try:
        for i in range(10):
            engine.assess(example_bundles[i % len(example_bundles)], request_id=f"r{i}")
        assert _window_size(engine) == 10
        # a repeat at a full window replays and leaves the window alone
        engine.assess(example_bundles[9 % len(example_bundles)], request_id="r9")
        assert _window_size(engine) == 10
        shutil.move(settings.data_dir, settings.data_dir.with_name("moved"))
        settings.data_dir.mkdir()
        with pytest.raises(AuditStoreUnavailable):
            engine.assess(example_bundles[0], request_id="lost")
        assert _window_size(engine) == 10  # the oldest recorded decision was put back
    finally:
        engine.close()


def test_concurrent_duplicates_record_once_and_audit_only_recorded_decisions(
    engine_factory: Factory, example_bundles: list[bytes]
) -> None:
    engine = engine_factory()
    engine.assess(example_bundles[1], request_id="earlier")
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: engine.assess(example_bundles[0], request_id="dup"), range(8))
        )
    assert len({a.audit_id for a in answers}) == 1
    assert _assessment_rows(engine) == 2
    assert _window_size(engine) == 2
    # the stored audit counted the earlier decision and this one: no phantom duplicates
    assert {a.fairness_audit.window_size for a in answers} == {2}


def test_a_repeated_outcome_reaches_a_window_that_missed_it(
    engine_factory: Factory, example_bundles: list[bytes]
) -> None:
    engine = engine_factory()
    a = engine.assess(example_bundles[3], request_id="o1")
    # The outcome was committed but the request failed before the window heard of it (as
    # when the store cannot be read back): only the store has it.
    engine._store.record_outcome((a.audit_id,), True, None, datetime.now(UTC))
    outcome = {d.audit_id: o for v in engine._monitor.views(with_rows=True) for d, o in v.rows}
    assert outcome[a.audit_id] is None
    ack = engine.report_outcome(
        audit_id=a.audit_id, encounter_reference=None, mace=True, occurred_at=None
    )
    assert ack.duplicate
    outcome = {d.audit_id: o for v in engine._monitor.views(with_rows=True) for d, o in v.rows}
    assert outcome[a.audit_id] is True


def _chest_pain_woman_or_man(gender: str) -> bytes:
    """40 years old, chest pain, normal vitals and ECG taken for this visit (before the
    encounter starts: nothing after its start counts), and an hs-TnI of
    20 ng/L against the lab's one limit of 26 ng/L (above the female 99th percentile, 16)."""
    now = datetime.now(UTC)

    def ago(minutes: int) -> str:
        return (now - timedelta(minutes=minutes)).isoformat()

    def obs(id: str, code: str, **value: Any) -> dict[str, Any]:
        return {
            "resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": ago(40), **value,
        }  # fmt: skip

    def qty(value: float, unit: str) -> dict[str, Any]:
        return {"value": value, "system": "http://unitsofmeasure.org", "code": unit}

    snomed = "http://snomed.info/sct"
    resources = [
        {"resourceType": "Patient", "id": "p1", "gender": gender,
         "birthDate": f"{now.year - 40}-01-01"},
        {"resourceType": "Encounter", "id": "e1", "status": "in-progress",
         "class": {"code": "EMER"}, "subject": {"reference": "Patient/p1"},
         "period": {"start": ago(30)},
         "reasonCode": [{"coding": [{"system": snomed, "code": "29857009"}]}]},
        obs("hr", "8867-4", valueQuantity=qty(72, "/min")),
        obs("rr", "9279-1", valueQuantity=qty(14, "/min")),
        obs("spo2", "59408-5", valueQuantity=qty(98, "%")),
        obs("temp", "8310-5", valueQuantity=qty(36.8, "Cel")),
        obs("bp", "85354-9", component=[
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": qty(122, "mm[Hg]")},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": qty(78, "mm[Hg]")}]),
        obs("ecg", "11524-6",
            valueCodeableConcept={"coding": [{"system": snomed, "code": "164854000"}]}),
        obs("tn", "89579-7", valueQuantity=qty(20, "ng/L"),
            referenceRange=[{"high": qty(26, "ng/L")}]),
    ]  # fmt: skip
    return orjson.dumps(
        {"resourceType": "Bundle", "type": "collection",
         "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]}
    )  # fmt: skip


def test_a_womans_troponin_within_a_limit_that_ignores_sex_is_not_sent_home(
    engine_factory: Factory,
) -> None:
    """The mission's case end to end: the same story, the same troponin. The lab's one limit
    calls 20 ng/L normal; by the female 99th percentile it is raised, so she is not offered
    early discharge; he (male 99th percentile 34 ng/L) is."""
    engine = engine_factory()
    woman = engine.assess(_chest_pain_woman_or_man("female"), request_id="woman")
    man = engine.assess(_chest_pain_woman_or_man("male"), request_id="man")
    for answer in (woman, man):  # the premise: a low-risk chest pain the pathway is for
        assert answer.recommendation.band is RiskBand.LOW
        assert answer.heart.total <= 3
    assert HEART_PATHWAY_DISCHARGE in man.recommendation.actions
    assert HEART_PATHWAY_DISCHARGE not in woman.recommendation.actions
    assert "sex-specific 99th percentile" in " ".join(woman.recommendation.rationale)
    (troponin,) = (c for c in woman.contributions if c.feature.startswith("troponin"))
    assert troponin.value.endswith("; 1.25 x sex-specific URL)")


def test_a_store_that_cannot_be_read_counts_as_a_store_failure(
    make_settings: Callable[..., Settings], example_bundles: list[bytes]
) -> None:
    """Was: the look-up of a retried request_id failed before the write, so a store that
    failed on every statement never moved the counter the critical page watches."""
    metrics = Metrics()
    engine = Engine.create(make_settings(), metrics)
    try:
        engine._store.close()  # every statement now fails
        with pytest.raises(AuditStoreUnavailable):
            engine.assess(example_bundles[0], request_id="unreadable")
        assert _sample(metrics, "triage_audit_store_failures_total") == 1.0
    finally:
        engine.close()


def test_refused_requests_are_in_the_total_latency(
    engine_factory: Factory, example_bundles: list[bytes], registered_model: RegisteredModel
) -> None:
    """Was: "total" was observed only for answers, so the slowest requests (those that ran
    out of time) were missing from its tail."""
    engine = engine_factory()
    metrics = engine._metrics
    with pytest.raises(DeadlineExceeded):
        engine.assess(example_bundles[0], request_id="late", deadline=time.monotonic() - 1)
    engine.assess(example_bundles[0], request_id="answered")
    engine.assess(example_bundles[0], request_id="answered")  # a replay is an answer too
    assert _sample(metrics, "triage_stage_latency_seconds_count", stage="total") == 3


def test_every_facility_exports_its_assessment_series_before_any_request(
    make_settings: Callable[..., Settings],
) -> None:
    """A replica whose every request fails still exports the error ratio's denominator."""
    metrics = Metrics()
    engine = Engine.create(make_settings(facility_allow_list=("site-a",)), metrics)
    try:
        for facility in ("site-a", "other", "unknown"):
            for band in ("low", "moderate", "high"):
                for escalated in ("true", "false"):
                    labels = {"facility": facility, "band": band, "escalated": escalated}
                    assert (
                        metrics.registry.get_sample_value("triage_assessments_total", labels) == 0.0
                    )
    finally:
        engine.close()


def test_a_retry_is_not_answered_from_a_deleted_store(
    make_settings: Callable[..., Settings], example_bundles: list[bytes]
) -> None:
    """Was: the first attempt was refused (its record went to the unlinked file), and the retry
    with the same request_id was answered OK from that file, which vanished with the process."""
    settings = make_settings()
    engine = Engine.create(settings, Metrics())
    try:
        engine.assess(example_bundles[0], request_id="before")
        settings.audit_db_path.unlink()
        for _attempt in range(2):
            with pytest.raises(AuditStoreUnavailable) as refused:
                engine.assess(example_bundles[1], request_id="after")
            assert refused.value.reason == "store_file_replaced"
    finally:
        engine.close()


@pytest.mark.parametrize("field", [b'"id":"p1"', b'"reference":"Organization/'])
def test_ids_and_references_that_are_not_unicode_text_are_assessed_not_internal_errors(
    engine_factory: Factory, field: bytes
) -> None:
    """Was INTERNAL (UnicodeEncodeError hashing the pseudonym, TypeError storing it): a lone
    surrogate escape ("\\ud800") is valid JSON but not Unicode text."""
    data = _chest_pain_woman_or_man("female")
    if field.startswith(b'"reference"'):  # a serviceProvider: the facility's pseudonym
        data = data.replace(b'"status":"in-progress"', b'"status":"in-progress",'
                            b'"serviceProvider":{"reference":"Organization/o1"}', 1)  # fmt: skip
    at = data.index(field) + len(field) - 1
    data = data[:at] + b"\\ud800" + data[at:]
    answer = engine_factory().assess(data, request_id="surrogate")
    assert answer.request_id == "surrogate"
    assert answer.fairness_audit is not None


def test_an_outcome_repeated_with_another_occurrence_time_is_a_conflict(
    engine_factory: Factory, example_bundles: list[bytes]
) -> None:
    """Was acknowledged as a duplicate echoing the new occurred_at, which was never stored."""
    engine = engine_factory()
    a = engine.assess(example_bundles[3], request_id="o1")
    first = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def report(occurred_at: datetime | None) -> bool:
        return engine.report_outcome(
            audit_id=a.audit_id, encounter_reference=None, mace=True, occurred_at=occurred_at
        ).duplicate

    assert not report(first)
    assert report(first)
    assert report(first.astimezone(timezone(timedelta(hours=-5))))  # the same instant
    assert report(None)  # not given: nothing to contradict
    with pytest.raises(IdempotencyConflict):
        report(first + timedelta(days=30))


def test_a_request_id_longer_than_an_idempotency_key_is_refused(
    engine_factory: Factory, example_bundles: list[bytes]
) -> None:
    """Was stored and echoed whatever its size (1 MB was accepted)."""
    engine = engine_factory()
    with pytest.raises(InvalidRequest) as refused:
        engine.assess(example_bundles[0], request_id="x" * 129)
    assert refused.value.reason == "request_id_too_long"
    assert _assessment_rows(engine) == 0
    assert engine.assess(example_bundles[0], request_id="x" * 128).request_id == "x" * 128


def test_the_store_holds_no_bundle_identifier_in_clear(engine_factory: Factory) -> None:
    """Every resource id and reference of a bundle that fires every rule with sources (the
    sex-specific troponin among them): none may reach a stored row unhashed. Was: the
    sex-specific troponin's sources were stored verbatim."""
    canary = "CANARYID"
    data = _chest_pain_woman_or_man("female")
    for local in (b"p1", b"e1", b"hr", b"rr", b"spo2", b"temp", b"bp", b"ecg", b"tn"):
        for before in (b'"', b"/", b":"):
            data = data.replace(before + local + b'"', before + canary.encode() + local + b'"')
    engine = engine_factory()
    answer = engine.assess(data, request_id="canary")
    assert any(canary in s for c in answer.contributions for s in c.sources)  # the answer has them
    with sqlite3.connect(engine._settings.audit_db_path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        stored = " ".join(
            str(value) for table in tables for row in conn.execute(f"SELECT * FROM {table}")
            for value in row
        )  # fmt: skip
    assert "sex_specific_url" in stored  # the features that carry the sources were stored
    assert canary not in stored


def test_the_evidence_behind_a_safety_rule_is_in_the_answer_and_replays(
    engine_factory: Factory,
) -> None:
    """Was named in words only: an earlier result that escalated was on no list a clinician
    could follow back to the record."""
    engine = engine_factory()
    data = _chest_pain_woman_or_man("female")
    first = engine.assess(data, request_id="evidence")
    assert [(e.finding, e.sources) for e in first.evidence] == [
        ("troponin_above_sex_specific_url", ("Observation/tn",))
    ]
    assert engine.assess(data, request_id="evidence") == first  # stored pseudonymised, mapped back
