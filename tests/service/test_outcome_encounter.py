"""ReportOutcome by encounter reference, over real gRPC: an encounter id is only unique within
one EHR, so a reference that matches other patients' (or facilities') assessments is refused
and nothing is written; the fullUrl form Assess accepts works here too."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from grpc_status import rpc_status
from triage.v1 import triage_pb2

from service import errors, grpc_errors

ROOT = Path(__file__).resolve().parents[2]
FULL_URL = "https://ehr.example.org/fhir/Encounter/"
FACILITY = "Organization/facility-border"


def _assess(served: Any, bundle: bytes, request_id: str, **extra: Any) -> Any:
    request = triage_pb2.AssessRequest(fhir_bundle=bundle, request_id=request_id, **extra)
    return served.stub.Assess(request, timeout=10)


def _outcomes(served: Any) -> list[tuple[str, int]]:
    with sqlite3.connect(served.settings.audit_db_path) as conn:
        return list(conn.execute("SELECT audit_id, mace FROM outcomes ORDER BY audit_id"))


def _refused(served: Any, reference: str) -> grpc.RpcError:
    report = triage_pb2.OutcomeReport(encounter_reference=reference, mace=True)
    with pytest.raises(grpc.RpcError) as err:
        served.stub.ReportOutcome(report, timeout=10)
    return err.value


def _same_encounter_other_patient(bundles: list[bytes], cases: list[Any]) -> bytes:
    """Bundle 1 with bundle 0's encounter id: another patient, the same "Encounter/<id>"."""
    return bundles[1].replace(cases[1].encounter_id.encode(), cases[0].encounter_id.encode())


def test_an_encounter_id_of_two_patients_is_refused_and_nothing_is_written(
    serve: Callable[..., Any], example_bundles: list[bytes], example_cases: list[Any]
) -> None:
    served = serve()
    encounter = example_cases[0].encounter_id
    first = _assess(served, example_bundles[0], "pat-a")
    other = _assess(served, _same_encounter_other_patient(example_bundles, example_cases), "pat-b")
    for reference in (encounter, f"Encounter/{encounter}", FULL_URL + encounter):
        err = _refused(served, reference)
        assert err.code() is grpc.StatusCode.FAILED_PRECONDITION
        trailers: dict[str, Any] = dict(cast(Any, err).trailing_metadata())
        assert trailers["triage-error-reason"] == "ambiguous_encounter"
        status = rpc_status.from_call(err)  # type: ignore[arg-type]
        assert status is not None
        # Nothing about the other patient's record leaks: no audit id, no pseudonym.
        for audit_id in (first.audit_id, other.audit_id):
            assert audit_id not in (err.details() or "")
            assert audit_id.encode() not in status.SerializeToString()
    assert _outcomes(served) == []
    # By audit id each patient's outcome still goes where it belongs.
    ack = served.stub.ReportOutcome(
        triage_pb2.OutcomeReport(audit_id=first.audit_id, mace=True), timeout=10
    )
    assert list(ack.audit_ids) == [first.audit_id]
    assert _outcomes(served) == [(first.audit_id, 1)]


def test_an_encounter_of_one_patient_at_two_facilities_is_refused(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    elsewhere = "Organization/facility-other"
    served = serve(facility_allow_list=(FACILITY, elsewhere))
    bundle = example_bundles[0]
    assert FACILITY.encode() in bundle
    _assess(served, bundle, "here")
    _assess(served, bundle.replace(FACILITY.encode(), elsewhere.encode()), "there")
    err = _refused(served, f"Encounter/{_encounter_of(bundle)}")
    assert err.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert _outcomes(served) == []


def test_an_encounter_of_one_patient_id_at_two_unlisted_facilities_is_refused(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    """Was joined: both facilities are outside the allow-list, so both are labelled "other",
    and the same-looking Patient and Encounter ids made two EHRs' patients look like one."""
    served = serve(facility_allow_list=())
    bundle = example_bundles[0]
    _assess(served, bundle, "here")
    _assess(served, bundle.replace(FACILITY.encode(), b"Organization/facility-other"), "there")
    with sqlite3.connect(served.settings.audit_db_path) as conn:
        assert {r[0] for r in conn.execute("SELECT facility FROM assessments")} == {"other"}
    conn.close()
    err = _refused(served, f"Encounter/{_encounter_of(bundle)}")
    assert err.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert _outcomes(served) == []


def test_an_encounter_assessed_before_and_after_schema_3_is_still_joined(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    """A row written before the upgrade has no facility pseudonym: compared by label only."""
    served = serve(facility_allow_list=())
    bundle = example_bundles[0]
    before = _assess(served, bundle, "before")
    with sqlite3.connect(served.settings.audit_db_path) as conn:
        conn.execute("UPDATE assessments SET facility_pseudonym = NULL")
    conn.close()
    after = _assess(served, bundle, "after")
    ack = served.stub.ReportOutcome(
        triage_pb2.OutcomeReport(
            encounter_reference=f"Encounter/{_encounter_of(bundle)}", mace=True
        ),
        timeout=10,
    )
    assert list(ack.audit_ids) == [before.audit_id, after.audit_id]


def _encounter_of(bundle: bytes) -> str:
    import orjson

    for entry in orjson.loads(bundle)["entry"]:
        if entry["resource"]["resourceType"] == "Encounter":
            return str(entry["resource"]["id"])
    raise AssertionError("no encounter")


def test_every_assessment_of_one_patients_encounter_is_joined(
    serve: Callable[..., Any], example_bundles: list[bytes], example_cases: list[Any]
) -> None:
    served = serve()
    encounter = example_cases[2].encounter_id
    answers = [_assess(served, example_bundles[2], f"again-{i}") for i in range(2)]
    ack = served.stub.ReportOutcome(
        triage_pb2.OutcomeReport(encounter_reference=f"Encounter/{encounter}", mace=False),
        timeout=10,
    )
    assert list(ack.audit_ids) == [a.audit_id for a in answers]
    assert ack.audit_id == answers[-1].audit_id


def test_a_full_url_encounter_reference_is_accepted_as_assess_accepts_it(
    serve: Callable[..., Any], example_bundles: list[bytes], example_cases: list[Any]
) -> None:
    """Was NOT_FOUND: only "Encounter/<id>" and the bare id were normalised."""
    served = serve()
    full_url = FULL_URL + example_cases[3].encounter_id
    answer = _assess(served, example_bundles[3], "full-url", encounter_id=full_url)
    assert answer.encounter_selection == "requested"
    ack = served.stub.ReportOutcome(
        triage_pb2.OutcomeReport(encounter_reference=full_url, mace=True), timeout=10
    )
    assert list(ack.audit_ids) == [answer.audit_id]


def test_a_full_url_names_an_encounter_without_an_id_too(
    serve: Callable[..., Any], example_bundles: list[bytes], example_cases: list[Any]
) -> None:
    """An Encounter without an id is pseudonymised under its fullUrl."""
    import orjson

    bundle = orjson.loads(example_bundles[4])
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Encounter":
            del entry["resource"]["id"]
    served = serve()
    full_url = FULL_URL + example_cases[4].encounter_id
    answer = _assess(served, orjson.dumps(bundle), "no-id")
    ack = served.stub.ReportOutcome(
        triage_pb2.OutcomeReport(encounter_reference=full_url, mace=True), timeout=10
    )
    assert list(ack.audit_ids) == [answer.audit_id]


def test_ambiguous_encounter_is_in_the_one_error_table() -> None:
    status = grpc_errors.classify(errors.AmbiguousReference(), "req-1")
    assert (status.code, status.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ambiguous_encounter",
    )
    assert "`ambiguous_encounter`" in (ROOT / "docs" / "service.md").read_text()
