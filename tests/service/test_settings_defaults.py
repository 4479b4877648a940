"""Defaults that carry a promise: "nothing acknowledged is ever lost" needs synchronous=FULL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from triage.v1 import triage_pb2

from service.settings import Settings


def test_audit_synchronous_defaults_to_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIAGE_AUDIT_SYNCHRONOUS", raising=False)
    assert Settings().audit_synchronous == "full"
    monkeypatch.setenv("TRIAGE_AUDIT_SYNCHRONOUS", "normal")  # the explicit opt-out stays
    assert Settings().audit_synchronous == "normal"


def test_default_store_commits_with_synchronous_full(
    serve: Callable[..., Any], example_bundles: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's own connection (synchronous is per connection: another one would show
    SQLite's compiled-in default, not what the service runs with)."""
    monkeypatch.delenv("TRIAGE_AUDIT_SYNCHRONOUS", raising=False)
    served = serve()
    served.stub.Assess(
        triage_pb2.AssessRequest(fhir_bundle=example_bundles[0], request_id="sync-1"), timeout=10
    )
    conn: sqlite3.Connection = served.engine._store._conn  # the connection the service writes on
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
