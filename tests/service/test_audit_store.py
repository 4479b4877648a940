"""The SQLite audit store: durable writes, idempotency, outcomes, fail-closed, restart."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from assessments import assessment, record

from service.assessment_codec import assessment_from_json, assessment_to_json
from service.audit_store import AuditStore
from service.errors import AuditStoreUnavailable, IdempotencyConflict


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    s = AuditStore(tmp_path / "audit.sqlite")
    yield s
    s.close()


def test_codec_round_trips_a_fully_populated_assessment() -> None:
    value = assessment()
    assert assessment_from_json(assessment_to_json(value)) == value


def test_store_runs_in_wal_mode_with_the_configured_synchronous(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    AuditStore(path, synchronous="full").close()
    s = AuditStore(path, synchronous="full")
    conn = s._conn
    assert conn is not None
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    s.close()


def test_insert_is_visible_to_another_connection_when_it_returns(store: AuditStore) -> None:
    value = assessment()
    assert store.insert(record(value)) is None
    with sqlite3.connect(store.path) as other:
        row = other.execute(
            "SELECT request_id, band, esi_level, escalated, race, sex, facility, model_sha256"
            " FROM assessments"
        ).fetchone()
    assert row == ("req-1", "moderate", 2, 1, "white", "female", "other", "ab" * 32)


def test_same_request_id_returns_the_stored_request_and_writes_once(store: AuditStore) -> None:
    first = assessment("r")
    store.insert(record(first))
    existing = store.insert(record(assessment("r")))
    assert existing is not None
    assert existing.assessment == first
    assert store.count() == 1
    found = store.find("r")
    assert found is not None
    assert found.bundle_sha256 == "0" * 64


def test_outcome_is_idempotent_and_a_different_value_conflicts(store: AuditStore) -> None:
    value = assessment()
    store.insert(record(value))
    now = datetime.now(UTC)
    first = store.record_outcome((value.audit_id,), True, None, now)
    again = store.record_outcome((value.audit_id,), True, None, now)
    assert (first.newly_recorded, again.newly_recorded) == ((value.audit_id,), ())
    with pytest.raises(IdempotencyConflict):
        store.record_outcome((value.audit_id,), False, None, now)
    (row,) = store.decisions((value.audit_id,))
    assert row.outcome is True


def test_outcome_for_an_unknown_audit_id_is_refused_by_the_foreign_key(store: AuditStore) -> None:
    with pytest.raises(AuditStoreUnavailable):
        store.record_outcome(("nope",), True, None, datetime.now(UTC))


def test_audit_ids_for_encounter_lists_every_assessment_oldest_first(store: AuditStore) -> None:
    t0 = datetime.now(UTC)
    a = assessment("a", created_at=t0)
    b = assessment("b", created_at=t0 + timedelta(seconds=1))
    store.insert(record(b))
    store.insert(record(a))
    assert store.audit_ids_for_encounter("enc-pseudonym") == (a.audit_id, b.audit_id)
    assert store.audit_ids_for_encounter("other") == ()


def test_recent_decisions_keep_the_latest_per_facility_inside_the_window(
    store: AuditStore,
) -> None:
    now = datetime.now(UTC)
    old = assessment("old", created_at=now - timedelta(days=30))
    store.insert(record(old))
    recent = [assessment(f"r{i}", created_at=now - timedelta(seconds=10 - i)) for i in range(5)]
    for value in recent:
        store.insert(record(value))
    store.record_outcome((recent[-1].audit_id,), True, None, now)
    rows = store.recent_decisions((now - timedelta(days=7)).timestamp(), per_facility=3)
    assert [r.audit_id for r in rows] == [v.audit_id for v in recent[-3:]]
    assert [r.outcome for r in rows] == [None, None, True]
    assert rows[0].labels.race == "white"
    assert rows[0].heart_band == "moderate"


def test_reopen_after_close_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    s = AuditStore(path)
    values = [assessment(f"r{i}") for i in range(3)]
    for value in values:
        s.insert(record(value))
    s.record_outcome((values[0].audit_id,), False, datetime.now(UTC), datetime.now(UTC))
    s.close()
    s.close()  # idempotent
    reopened = AuditStore(path)
    assert reopened.count() == 3
    found = reopened.find("r1")
    assert found is not None
    assert found.assessment == values[1]
    assert reopened.decisions((values[0].audit_id,))[0].outcome is False
    reopened.close()


def test_a_schema_1_store_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    s = AuditStore(path)
    old = assessment("old")
    s.insert(record(old))
    s.close()
    with sqlite3.connect(path) as conn:  # what version 1 wrote: no requested_encounter
        conn.execute("ALTER TABLE assessments DROP COLUMN requested_encounter")
        conn.execute("PRAGMA user_version=1")
    conn.close()
    migrated = AuditStore(path)
    found = migrated.find("old")
    assert found is not None
    assert found.assessment == old
    assert found.requested_encounter is None  # not kept then: a retry is not compared on it
    migrated.insert(record(assessment("new"), requested_encounter="enc"))
    new = migrated.find("new")
    assert new is not None
    assert new.requested_encounter == "enc"
    migrated.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        # An older release reopening the store writes its own version (or a crash came
        # between a step and the version bump): the next open must not redo the step.
        conn.execute("PRAGMA user_version=1")
    conn.close()
    again = AuditStore(path)
    assert again.count() == 2
    again.close()


def test_closed_store_fails_closed(store: AuditStore) -> None:
    store.close()
    with pytest.raises(AuditStoreUnavailable) as err:
        store.insert(record(assessment()))
    assert err.value.reason == "store_closed"


def test_deleted_database_file_fails_closed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    s = AuditStore(data / "audit.sqlite")
    s.insert(record(assessment("before")))
    # Replace the data directory: SQLite would go on writing to the unlinked inode.
    shutil.move(data, tmp_path / "moved")
    data.mkdir()
    with pytest.raises(AuditStoreUnavailable) as err:
        s.insert(record(assessment("after")))
    assert err.value.reason == "store_file_replaced"
    s.close()


def test_disk_full_fails_closed(store: AuditStore) -> None:
    conn = store._conn
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")  # the file may not grow: SQLITE_FULL

    def fill() -> None:
        for i in range(200):
            store.insert(record(assessment(f"fill-{i}")))

    with pytest.raises(AuditStoreUnavailable) as err:
        fill()
    assert err.value.reason == "write_failed"
    assert "fill" not in str(err.value)


def test_lock_held_too_long_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    s = AuditStore(path, busy_timeout_ms=50)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(AuditStoreUnavailable):
            s.insert(record(assessment()))
        assert time.monotonic() - started < 5
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert s.insert(record(assessment())) is None  # recovers once the lock is released
    s.close()


def test_concurrent_writers_from_threads_record_everything(store: AuditStore) -> None:
    def write(thread: int) -> None:
        for i in range(50):
            store.insert(record(assessment(f"t{thread}-{i}")))

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 200
