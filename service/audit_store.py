"""The durable audit trail: one SQLite file in WAL mode, embedded, nothing to install.

Durability: every write is a single statement (or one ``BEGIN IMMEDIATE`` transaction) that
is committed before the method returns. In WAL mode ``synchronous=NORMAL`` keeps every
committed record across a process crash (SIGKILL) and costs ~10 us per commit;
``synchronous=FULL`` also survives power loss or a kernel crash at ~0.1 ms. The default is
FULL: nothing acknowledged may be lost (the setting ``audit_synchronous`` chooses).

Fail closed: any error while writing (disk full, read-only file, lock held longer than the
busy timeout, store closed) and any sign that the file written is no longer the file at
``path`` (deleted, or its directory replaced: SQLite would keep writing to an unlinked inode)
raises ``AuditStoreUnavailable``. The engine then answers UNAVAILABLE, never an unrecorded
recommendation.

Threads: one connection guarded by one lock. Writes serialise inside SQLite anyway, and a
Python lock held for ~10-20 us is cheaper than SQLite's busy-wait between per-thread
connections (measured: docs/engine.md).

Processes: several server processes on one host may share the file (SQLite's WAL locks
serialise their writes; the busy timeout is how long one waits for another). Every write
is one autocommit statement or one ``BEGIN IMMEDIATE`` transaction, so a writer never holds
a stale snapshot; opening (WAL switch, schema, migration) is safe when they start together.
Not on a network file system: WAL needs shared memory.

Privacy: the directory (when created here) is 0700 and the files 0600.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from service.assessment import Assessment
from service.assessment_codec import assessment_from_json
from service.errors import AuditStoreUnavailable, IdempotencyConflict
from service.labels import GroupLabels

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assessments (
    audit_id            TEXT PRIMARY KEY,
    request_id          TEXT NOT NULL UNIQUE,
    bundle_sha256       TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    created_epoch       REAL NOT NULL,
    patient_pseudonym   TEXT NOT NULL,
    encounter_pseudonym TEXT,
    model_name          TEXT NOT NULL,
    model_version       TEXT NOT NULL,
    model_sha256        TEXT NOT NULL,
    execution_provider  TEXT NOT NULL,
    features_json       TEXT NOT NULL,
    mace_probability    REAL NOT NULL,
    band                TEXT NOT NULL,
    heart_band          TEXT NOT NULL,
    esi_level           INTEGER NOT NULL,
    escalated           INTEGER NOT NULL,
    recommendation_json TEXT NOT NULL,
    facility            TEXT NOT NULL,
    race                TEXT NOT NULL,
    ethnicity           TEXT NOT NULL,
    sex                 TEXT NOT NULL,
    age_band            TEXT NOT NULL,
    fairness_json       TEXT,
    assessment_json     TEXT NOT NULL,
    requested_encounter TEXT,
    facility_pseudonym  TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS assessments_encounter ON assessments (encounter_pseudonym);
CREATE INDEX IF NOT EXISTS assessments_time ON assessments (facility, created_epoch);
CREATE TABLE IF NOT EXISTS outcomes (
    audit_id    TEXT PRIMARY KEY REFERENCES assessments (audit_id),
    mace        INTEGER NOT NULL,
    occurred_at TEXT,
    reported_at TEXT NOT NULL
) STRICT;
"""

_INSERT = """
INSERT INTO assessments (
    audit_id, request_id, bundle_sha256, created_at, created_epoch, patient_pseudonym,
    encounter_pseudonym, model_name, model_version, model_sha256, execution_provider,
    features_json, mace_probability, band, heart_band, esi_level, escalated,
    recommendation_json, facility, race, ethnicity, sex, age_band, fairness_json,
    assessment_json, requested_encounter, facility_pseudonym
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (request_id) DO NOTHING
"""

# The most recent decisions per facility inside the time window, with outcomes, in the order
# they were written (rowid): the order the live windows added them in, since a decision is
# written while its window holds it. created_epoch is taken when a request starts, so under
# concurrency it can be out of commit order, and a window refilled by it would evict
# different decisions from the one it replaces.
_RECENT = """
SELECT audit_id, created_epoch, facility, race, ethnicity, sex, age_band, heart_band, band,
       escalated, mace_probability, mace
FROM (
    SELECT a.*, a.rowid AS written, o.mace,
           ROW_NUMBER() OVER (PARTITION BY a.facility ORDER BY a.rowid DESC) AS rank
    FROM assessments a LEFT JOIN outcomes o ON o.audit_id = a.audit_id
    WHERE a.created_epoch >= ?
)
WHERE rank <= ?
ORDER BY written
"""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """Everything written for one assessment."""

    assessment: Assessment
    assessment_json: str
    bundle_sha256: str
    patient_pseudonym: str
    encounter_pseudonym: str | None
    features_json: str  # clinical values: fine for the audit store, never for logs
    recommendation_json: str
    fairness_json: str | None
    labels: GroupLabels
    heart_band: str
    # Keyed pseudonym of the encounter the request named; "" when it named none.
    requested_encounter: str
    # Keyed pseudonym of the facility reference (not only its label); None when none named.
    facility_pseudonym: str | None


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """What idempotency needs: the bytes' hash, the encounter the request named (None for
    records written before schema 2, which did not keep it) and the Assessment to replay."""

    bundle_sha256: str
    requested_encounter: str | None
    assessment: Assessment


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One stored decision as the fairness windows and the outcome metrics need it."""

    audit_id: str
    at: float
    labels: GroupLabels
    heart_band: str
    band: str
    escalated: bool
    mace_probability: float
    outcome: bool | None


@dataclass(frozen=True, slots=True)
class EncounterRow:
    """An assessment an encounter reference matched, and whose it is."""

    audit_id: str
    patient_pseudonym: str
    facility: str  # the facility label
    facility_pseudonym: str | None  # None: none named, or recorded before schema 3


@dataclass(frozen=True, slots=True)
class OutcomeResult:
    audit_ids: tuple[str, ...]
    newly_recorded: tuple[str, ...]  # the ids this call wrote (empty on a replay)


class AuditStore:
    def __init__(
        self,
        path: Path,
        *,
        synchronous: Literal["normal", "full"] = "full",
        busy_timeout_ms: int = 2000,
    ) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            _owner_only(path)
            conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
            )
        except (OSError, sqlite3.Error) as exc:
            raise AuditStoreUnavailable("open_failed", type(exc).__name__) from exc
        try:
            mode = _journal_mode_wal(conn, busy_timeout_ms)
            if mode != "wal":
                raise AuditStoreUnavailable("wal_unavailable")
            conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys=ON")
            _create_or_migrate(conn)
        except (sqlite3.Error, AuditStoreUnavailable) as exc:
            conn.close()  # a half-opened store must not keep the file open
            if isinstance(exc, AuditStoreUnavailable):
                raise
            raise AuditStoreUnavailable("open_failed", type(exc).__name__) from exc
        self._conn: sqlite3.Connection | None = conn
        self._identity = _file_identity(path)
        logger.info("audit store open (WAL, synchronous=%s)", synchronous)

    # --- writes ------------------------------------------------------------------------------
    def insert(self, record: AuditRecord) -> StoredRequest | None:
        """Write the record durably. None when written; the stored request when a record with
        the same request_id already exists (a concurrent duplicate: nothing is written)."""
        a = record.assessment
        params = (
            a.audit_id,
            a.request_id,
            record.bundle_sha256,
            a.created_at.isoformat(),
            a.created_at.timestamp(),
            record.patient_pseudonym,
            record.encounter_pseudonym,
            a.model.name,
            a.model.version,
            a.model.sha256,
            a.model.execution_provider,
            record.features_json,
            a.mace_probability,
            a.recommendation.band.value,
            record.heart_band,
            a.recommendation.esi_level,
            int(a.recommendation.escalated),
            record.recommendation_json,
            record.labels.facility,
            record.labels.race,
            record.labels.ethnicity,
            record.labels.sex,
            record.labels.age_band,
            record.fairness_json,
            record.assessment_json,
            record.requested_encounter,
            record.facility_pseudonym,
        )
        with self._writing() as conn:
            inserted = conn.execute(_INSERT, params).rowcount == 1
            self._check_same_file()
            if inserted:
                return None
            return self._find(conn, a.request_id)

    def record_outcome(
        self,
        audit_ids: tuple[str, ...],
        mace: bool,
        occurred_at: datetime | None,
        reported_at: datetime,
    ) -> OutcomeResult:
        """Join an outcome to decisions, all or nothing. Reporting the same outcome again is a
        no-op; a different MACE value or occurrence time (when one is given) for an already
        reported decision is a conflict: the acknowledgement must not echo what was not
        stored."""
        new: list[str] = []
        occurred = None if occurred_at is None else occurred_at.astimezone(UTC).isoformat()
        with self._writing() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for audit_id in audit_ids:
                    row = conn.execute(
                        "SELECT mace, occurred_at FROM outcomes WHERE audit_id = ?", (audit_id,)
                    ).fetchone()
                    if row is not None:
                        if bool(row[0]) != mace or occurred not in (None, row[1]):
                            raise IdempotencyConflict("outcome_already_reported")
                        continue
                    conn.execute(
                        "INSERT INTO outcomes (audit_id, mace, occurred_at, reported_at)"
                        " VALUES (?, ?, ?, ?)",
                        (
                            audit_id,
                            int(mace),
                            occurred,
                            reported_at.isoformat(),
                        ),
                    )
                    new.append(audit_id)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._check_same_file()
        return OutcomeResult(audit_ids, tuple(new))

    # --- reads -------------------------------------------------------------------------------
    def find(self, request_id: str) -> StoredRequest | None:
        with self._reading() as conn:
            found = self._find(conn, request_id)
            # A record in a file no longer at ``path`` (deleted, moved) is not recorded: a
            # retry must not be answered OK from it.
            self._check_same_file()
            return found

    def encounter_assessments(self, encounter_pseudonyms: tuple[str, ...]) -> list[EncounterRow]:
        """The assessments recorded for any of these encounter pseudonyms, oldest first, with
        whose they are: an encounter id is only unique within one EHR, so one reference can
        match other patients' visits (the caller decides what that means)."""
        with self._reading() as conn:
            rows = [
                row
                for key in dict.fromkeys(encounter_pseudonyms)
                for row in conn.execute(
                    "SELECT created_epoch, audit_id, patient_pseudonym, facility,"
                    " facility_pseudonym FROM assessments WHERE encounter_pseudonym = ?",
                    (key,),
                )
            ]
        rows.sort(key=lambda r: (r[0], r[1]))
        return [
            EncounterRow(str(r[1]), str(r[2]), str(r[3]), None if r[4] is None else str(r[4]))
            for r in rows
        ]

    def has_audit_id(self, audit_id: str) -> bool:
        with self._reading() as conn:
            row = conn.execute(
                "SELECT 1 FROM assessments WHERE audit_id = ?", (audit_id,)
            ).fetchone()
        return row is not None

    def outcome_of(self, audit_id: str) -> bool | None:
        """The MACE outcome reported for this decision; None while none is."""
        with self._reading() as conn:
            row = conn.execute(
                "SELECT mace FROM outcomes WHERE audit_id = ?", (audit_id,)
            ).fetchone()
        return None if row is None else bool(row[0])

    def decisions(self, audit_ids: tuple[str, ...]) -> list[DecisionRow]:
        """The stored decisions with these ids (for the outcome metrics)."""
        with self._reading() as conn:
            rows = [
                conn.execute(
                    "SELECT a.audit_id, a.created_epoch, a.facility, a.race, a.ethnicity, a.sex,"
                    " a.age_band, a.heart_band, a.band, a.escalated, a.mace_probability, o.mace"
                    " FROM assessments a LEFT JOIN outcomes o ON o.audit_id = a.audit_id"
                    " WHERE a.audit_id = ?",
                    (audit_id,),
                ).fetchone()
                for audit_id in audit_ids
            ]
        return [_decision_row(r) for r in rows if r is not None]

    def recent_decisions(self, since_epoch: float, per_facility: int) -> list[DecisionRow]:
        """At most ``per_facility`` decisions per facility at or after ``since_epoch``, the last
        written, in the order they were written, each with its outcome: what the fairness
        windows held before a restart."""
        with self._reading() as conn:
            rows = conn.execute(_RECENT, (since_epoch, per_facility)).fetchall()
        return [_decision_row(r) for r in rows]

    def count(self) -> int:
        with self._reading() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM assessments").fetchone()[0])

    # --- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Checkpoint the WAL into the main file and close. Idempotent."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                # Committed records are in the WAL and are replayed on the next open.
                logger.warning("WAL checkpoint at close failed: %s", type(exc).__name__)
            finally:
                conn.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    # --- internals ---------------------------------------------------------------------------
    def _writing(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._connection("write_failed")

    def _reading(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._connection("read_failed")

    @contextmanager
    def _connection(self, failure: str) -> Iterator[sqlite3.Connection]:
        """The open connection, under the store lock; a SQLite error becomes
        ``AuditStoreUnavailable(failure)``."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise AuditStoreUnavailable("store_closed")
            try:
                yield conn
            except sqlite3.Error as exc:
                # The class name only: SQLite messages can quote values.
                raise AuditStoreUnavailable(failure, type(exc).__name__) from exc

    def _find(self, conn: sqlite3.Connection, request_id: str) -> StoredRequest | None:
        row = conn.execute(
            "SELECT bundle_sha256, requested_encounter, assessment_json FROM assessments"
            " WHERE request_id = ?",
            (request_id,),
        ).fetchone()
        if row is None:
            return None
        return StoredRequest(row[0], row[1], assessment_from_json(row[2]))

    def _check_same_file(self) -> None:
        """A committed write only counts if it went to the file at ``path``."""
        if _file_identity(self.path) != self._identity:
            raise AuditStoreUnavailable("store_file_replaced")


def _journal_mode_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> str:
    """Switch a new file to WAL. Several processes opening a new store at once: SQLite
    answers "locked" at once here, without its busy handler, so retry within the busy
    timeout (measured: 5 of 300 simultaneous opens failed to start without this)."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _create_or_migrate(conn: sqlite3.Connection) -> None:
    """Schema and migration in one ``BEGIN IMMEDIATE`` transaction: processes sharing the
    data dir may open the store at once, and two that both saw the old schema would both
    alter it (the second then fails to start). Statement by statement: ``executescript``
    would commit the transaction first."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        _migrate(conn)
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
            conn.execute("ROLLBACK")
        raise


def _owner_only(path: Path) -> None:
    """The store holds clinical values: its directory (when created here) and its files are
    the service user's only. The database file is created 0600 before SQLite opens it, and
    SQLite gives its -wal and -shm files the database file's mode. A store created with
    looser modes (by an older version, or by hand) is tightened, with a warning."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Exists: an existing store, or another process sharing the data dir created it now.
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(os.stat(name).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            # The file name only: a data dir's path can name a site or a person.
            fields = {"file": name.name, "mode": oct(mode)}
            try:
                os.chmod(name, mode & 0o700)
            except OSError as exc:  # another user's file: it stays as open as it was
                fields["error"] = type(exc).__name__
                logger.warning(
                    "audit store file is readable by group or others", extra={"fields": fields}
                )
                continue
            logger.warning(
                "audit store file was readable by group or others; now owner-only",
                extra={"fields": fields},
            )


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a store written by an older version up to ``SCHEMA_VERSION`` in place. Each
    step looks for what it adds rather than trusting ``user_version``: a crash between a
    step and the version bump, or an older release reopening the store (it writes its own
    version), must not make the next open fail on a step already done."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(assessments)")}
    if columns and "requested_encounter" not in columns:  # none: a new store
        # 2: the encounter the request named, so that a retry naming another one is a
        # conflict, not a replay. Older rows keep NULL: not compared.
        conn.execute("ALTER TABLE assessments ADD COLUMN requested_encounter TEXT")
    if columns and "facility_pseudonym" not in columns:
        # 3: a keyed hash of the facility reference, so that two facilities outside the
        # allow-list (both labelled "other") are told apart when joining outcomes by
        # encounter. Older rows keep NULL: compared by label only.
        conn.execute("ALTER TABLE assessments ADD COLUMN facility_pseudonym TEXT")


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _decision_row(r: tuple[object, ...]) -> DecisionRow:
    (audit_id, at, facility, race, ethnicity, sex, age_band, heart_band, band, esc, p, mace) = r
    return DecisionRow(
        audit_id=str(audit_id),
        at=float(str(at)),
        labels=GroupLabels(str(facility), str(race), str(ethnicity), str(sex), str(age_band)),
        heart_band=str(heart_band),
        band=str(band),
        escalated=bool(esc),
        mace_probability=float(str(p)),
        outcome=None if mace is None else bool(mace),
    )
