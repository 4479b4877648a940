"""Several ``triage serve`` processes sharing ONE data dir (one audit.sqlite in WAL mode, one
pseudonym key), as TRIAGE_REUSE_PORT scale-out runs them: a retry that lands on another
process replays the first answer, and an outcome is found whichever process recorded the
decision. Two real processes on their own ports, so that which one answers is chosen."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from triage.v1 import triage_pb2, triage_pb2_grpc

pytestmark = pytest.mark.slow


def _stub(channel: grpc.Channel) -> triage_pb2_grpc.TriageServiceStub:
    return triage_pb2_grpc.TriageServiceStub(channel)


def test_two_processes_on_one_data_dir_share_idempotency_and_outcomes(
    start_cli_server: Callable[..., Any],
    example_bundles: list[bytes],
    example_cases: list[Any],
    tmp_path: Path,
) -> None:
    first, second = start_cli_server(), start_cli_server()  # both use tmp_path / "cli-data"
    first.wait_serving()
    second.wait_serving()
    with (
        grpc.insecure_channel(first.target) as one,
        grpc.insecure_channel(second.target) as two,
    ):
        a, b = _stub(one), _stub(two)

        # A retry on the other process: the first answer, one record.
        request = triage_pb2.AssessRequest(fhir_bundle=example_bundles[0], request_id="retry-1")
        answer = a.Assess(request, timeout=30)
        assert b.Assess(request, timeout=30) == answer
        reused = triage_pb2.AssessRequest(fhir_bundle=example_bundles[1], request_id="retry-1")
        with pytest.raises(grpc.RpcError) as err:
            b.Assess(reused, timeout=30)
        assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS

        # An outcome for a decision the other process recorded: found, once.
        ack = b.ReportOutcome(triage_pb2.OutcomeReport(audit_id=answer.audit_id, mace=True))
        assert (list(ack.audit_ids), ack.duplicate) == ([answer.audit_id], False)
        again = a.ReportOutcome(triage_pb2.OutcomeReport(audit_id=answer.audit_id, mace=True))
        assert again.duplicate
        with pytest.raises(grpc.RpcError) as err:
            a.ReportOutcome(triage_pb2.OutcomeReport(audit_id=answer.audit_id, mace=False))
        assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS

        # By encounter reference, through the process that did not record it.
        by_b = b.Assess(
            triage_pb2.AssessRequest(fhir_bundle=example_bundles[2], request_id="enc-1"),
            timeout=30,
        )
        reference = f"Encounter/{example_cases[2].encounter_id}"
        ack = a.ReportOutcome(triage_pb2.OutcomeReport(encounter_reference=reference, mace=False))
        assert list(ack.audit_ids) == [by_b.audit_id]

        # Both writing at once, each retry sent to the other process: no lock error, one
        # record per request_id.
        def both(i: int) -> tuple[str, str]:
            bundle = example_bundles[3 + i % 20]
            request = triage_pb2.AssessRequest(fhir_bundle=bundle, request_id=f"load-{i}")
            here, there = (a, b) if i % 2 else (b, a)
            return here.Assess(request, timeout=30).audit_id, there.Assess(
                request, timeout=30
            ).audit_id

        with ThreadPoolExecutor(8) as pool:
            pairs = list(pool.map(both, range(40)))
        assert all(x == y for x, y in pairs)

    assert first.terminate() == 0
    assert second.terminate() == 0
    store = tmp_path / "cli-data" / "audit.sqlite"
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*) FROM assessments").fetchone() == (42,)
        assert conn.execute("SELECT COUNT(*) FROM outcomes").fetchone() == (2,)
    conn.close()
