"""The SQLite audit store: durable writes, idempotency, outcomes, fail-closed, restart."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from assessments import assessment, record

from service.assessment_codec import assessment_from_json, assessment_to_json
from service.audit_store import SCHEMA_VERSION, AuditStore
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


def test_encounter_assessments_list_every_match_oldest_first_with_whose(
    store: AuditStore,
) -> None:
    t0 = datetime.now(UTC)
    a = assessment("a", created_at=t0)
    b = assessment("b", created_at=t0 + timedelta(seconds=1))
    c = assessment("c", created_at=t0 + timedelta(seconds=2))
    store.insert(record(c, encounter_pseudonym="by-full-url"))
    store.insert(record(b))
    store.insert(record(a))
    rows = store.encounter_assessments(("enc-pseudonym", "by-full-url"))
    assert [r.audit_id for r in rows] == [a.audit_id, b.audit_id, c.audit_id]
    assert {(r.patient_pseudonym, r.facility) for r in rows} == {("patient-pseudonym", "other")}
    assert store.encounter_assessments(("other",)) == []


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


def test_recent_decisions_come_back_in_the_order_they_were_written(store: AuditStore) -> None:
    """A window evicts in the order it added decisions, which is the order they were
    written; created_at is taken when a request starts. Was: refilled by created_at, so
    after a restart a busy facility's window held a different set."""
    now = datetime.now(UTC)
    started = [now - timedelta(seconds=s) for s in (1.0, 3.0, 2.0, 5.0, 4.0)]
    written = [assessment(f"r{i}", created_at=t) for i, t in enumerate(started)]
    for value in written:
        store.insert(record(value))
    rows = store.recent_decisions((now - timedelta(days=1)).timestamp(), per_facility=3)
    assert [r.audit_id for r in rows] == [v.audit_id for v in written[-3:]]


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
    with sqlite3.connect(path) as conn:  # what version 1 wrote: neither column added since
        conn.execute("ALTER TABLE assessments DROP COLUMN requested_encounter")
        conn.execute("ALTER TABLE assessments DROP COLUMN facility_pseudonym")
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
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        # An older release reopening the store writes its own version (or a crash came
        # between a step and the version bump): the next open must not redo the step.
        conn.execute("PRAGMA user_version=1")
    conn.close()
    again = AuditStore(path)
    assert again.count() == 2
    again.close()


def test_a_schema_2_store_gains_facility_pseudonyms_in_place(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    s = AuditStore(path)
    s.insert(record(assessment("old"), facility_pseudonym=None))
    s.close()
    with sqlite3.connect(path) as conn:  # what version 2 wrote: no facility_pseudonym
        conn.execute("ALTER TABLE assessments DROP COLUMN facility_pseudonym")
        conn.execute("PRAGMA user_version=2")
    conn.close()
    migrated = AuditStore(path)
    migrated.insert(record(assessment("new"), facility_pseudonym="site-a"))
    rows = migrated.encounter_assessments(("enc-pseudonym",))
    assert [r.facility_pseudonym for r in rows] == [None, "site-a"]  # old row: not known
    migrated.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    conn.close()


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


# --- file modes: clinical values are the service user's only -------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_store_is_owner_only_with_its_wal_and_shm(tmp_path: Path) -> None:
    """Were 0755 / 0644 under the usual umask 022: world-readable clinical values."""
    old_umask = os.umask(0o022)
    try:
        data_dir = tmp_path / "new" / "data"
        s = AuditStore(data_dir / "audit.sqlite")
        s.insert(record(assessment()))  # the -wal and -shm files exist from the first write
        assert _mode(data_dir) == 0o700
        for name in ("audit.sqlite", "audit.sqlite-wal", "audit.sqlite-shm"):
            assert _mode(data_dir / name) == 0o600, name
        s.close()
    finally:
        os.umask(old_umask)


def test_an_existing_data_dir_keeps_its_mode(tmp_path: Path) -> None:
    """Only a directory the store creates is made 0700: an operator's directory is theirs."""
    tmp_path.chmod(0o750)
    AuditStore(tmp_path / "audit.sqlite").close()
    assert _mode(tmp_path) == 0o750


def test_an_existing_world_readable_store_is_tightened_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.sqlite"
    with sqlite3.connect(path) as conn:  # as an older version left it: 0644 under umask 022
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            name.chmod(0o644)
        caplog.set_level(logging.WARNING, logger="service.audit_store")
        s = AuditStore(path)
    conn.close()
    s.insert(record(assessment()))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        assert _mode(name) == 0o600, name.name
    warned = [r for r in caplog.records if "owner-only" in r.getMessage()]
    assert len(warned) == 3
    assert all(str(tmp_path) not in r.getMessage() + str(vars(r)) for r in warned)
    s.close()


# --- several processes sharing one store ----------------------------------------------------


def test_two_stores_opening_an_old_schema_at_once_both_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Processes sharing a data dir may start together. Was: both saw the old schema, both
    ran ALTER TABLE, and the second failed with open_failed (duplicate column)."""
    path = tmp_path / "audit.sqlite"
    AuditStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE assessments DROP COLUMN requested_encounter")
        conn.execute("PRAGMA user_version=1")
    conn.close()
    other: list[AuditStore | AuditStoreUnavailable] = []
    racers: list[threading.Thread] = []

    def open_other() -> None:
        try:
            other.append(AuditStore(path))
        except AuditStoreUnavailable as exc:
            other.append(exc)

    class Racing(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql.startswith("ALTER TABLE") and not racers:
                # The other process opens the store between this one's look at the schema
                # and its ALTER, given the time to finish if nothing holds it back.
                racers.append(threading.Thread(target=open_other))
                racers[0].start()
                racers[0].join(0.5)
            return super().execute(sql, *args)

    connect = sqlite3.connect

    def first_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        monkeypatch.setattr(sqlite3, "connect", connect)  # the other process: a plain one
        return connect(*args, **kwargs, factory=Racing)

    monkeypatch.setattr(sqlite3, "connect", first_connect)
    first = AuditStore(path)
    racers[0].join(10)
    (second,) = other
    assert isinstance(second, AuditStore), second
    first.insert(record(assessment("r")))
    assert second.find("r") is not None
    first.close()
    second.close()


def test_a_new_store_opened_by_several_processes_at_once_waits_for_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite answers "database is locked" at once (no busy handler) to a process switching a
    new file to WAL while another does (measured: 5 of 300 simultaneous opens). Was:
    open_failed, so one of several processes started together on a new data dir died."""
    attempts: list[str] = []

    class Locked(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql == "PRAGMA journal_mode=WAL" and len(attempts) < 3:
                attempts.append(sql)
                exc = sqlite3.OperationalError("database is locked")
                exc.sqlite_errorcode = sqlite3.SQLITE_BUSY
                raise exc
            return super().execute(sql, *args)

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, **k, factory=Locked))
    s = AuditStore(tmp_path / "audit.sqlite")
    assert len(attempts) == 3
    s.insert(record(assessment()))
    s.close()
    # A lock held past the busy timeout still fails closed.
    monkeypatch.setattr(
        sqlite3,
        "connect",
        lambda *a, **k: connect(*a, **k, factory=_always_locked()),
    )
    with pytest.raises(AuditStoreUnavailable, match="open_failed"):
        AuditStore(tmp_path / "other.sqlite", busy_timeout_ms=50)


def _always_locked() -> type[sqlite3.Connection]:
    class AlwaysLocked(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql == "PRAGMA journal_mode=WAL":
                exc = sqlite3.OperationalError("database is locked")
                exc.sqlite_errorcode = sqlite3.SQLITE_BUSY
                raise exc
            return super().execute(sql, *args)

    return AlwaysLocked
