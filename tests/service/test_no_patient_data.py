"""No patient data in logs, errors or metric labels.

Bundles carry canary names, identifiers, a birth date, contact details and free-text notes;
valid ones are assessed, malformed ones are refused. Every server log line (stdout and stderr
of ``triage serve`` at DEBUG), every error message, trailer and rich detail, the fairness
report and the /metrics page are searched for the canaries and the patient id.
"""

from __future__ import annotations

import signal
import urllib.request
from collections.abc import Callable
from typing import Any

import grpc
import orjson
import pytest
from grpc_status import rpc_status
from triage.v1 import triage_pb2, triage_pb2_grpc

pytestmark = pytest.mark.slow

NAME = "CANARYNAME-7f3a"
GIVEN = "CANARYGIVEN-22e1"
MRN = "CANARYMRN-91b2"
PATIENT_ID = "CANARYPID-c41d"
NOTE = "CANARYNOTE-5d0c"
PHONE = "555-0199-CANARY"
STREET = "CANARYSTREET-3b9e"
ENCOUNTER = "CANARYENC-88aa"
BIRTH_DATE = "1951-07-23"
CANARIES = (NAME, GIVEN, MRN, PATIENT_ID, NOTE, PHONE, STREET, ENCOUNTER, BIRTH_DATE, "CANARY")


def _canary_bundle(case: Any) -> bytes:
    from models.cohort.bundles import build_bundle

    raw = build_bundle(case, validate=False).replace(case.patient_id.encode(), PATIENT_ID.encode())
    bundle = orjson.loads(raw)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["name"] = [{"family": NAME, "given": [GIVEN], "text": f"{GIVEN} {NAME}"}]
            resource["identifier"] = [
                {"system": "https://ehr.example.org/fhir/mrn", "value": MRN},
            ]
            resource["birthDate"] = BIRTH_DATE
            resource["telecom"] = [{"system": "phone", "value": PHONE}]
            resource["address"] = [{"line": [STREET], "city": "Springfield"}]
        elif resource["resourceType"] in ("Condition", "Observation"):
            resource["note"] = [{"text": f"{NOTE}: patient {NAME} reports pain since Tuesday"}]
        elif resource["resourceType"] == "Encounter":
            resource["text"] = {"status": "generated", "div": f"<div>{NAME} {MRN}</div>"}
    return orjson.dumps(bundle)


def _malformed() -> list[tuple[str, bytes, str]]:
    patient = {"resourceType": "Patient", "id": PATIENT_ID, "name": [{"family": NAME}]}
    entry = {"fullUrl": f"urn:uuid:{PATIENT_ID}", "resource": patient}
    return [
        ("truncated", orjson.dumps({"resourceType": "Bundle", "entry": [entry]})[:-5], ""),
        ("not_utf8", f'{{"x": "{NAME}'.encode() + b"\xff\xfe", ""),
        ("not_a_bundle", orjson.dumps({"resourceType": NAME, "id": MRN}), ""),
        ("entry_not_list", orjson.dumps({"resourceType": "Bundle", "entry": NAME}), ""),
        (
            "no_patient",
            orjson.dumps(
                {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [
                        {"resource": {"resourceType": "Observation", "id": MRN, "note": [NOTE]}}
                    ],
                }
            ),
            "",
        ),
        (
            "two_patients",
            orjson.dumps(
                {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [entry, {**entry, "fullUrl": f"urn:{MRN}"}],
                }
            ),
            "",
        ),
        (
            "too_deep",
            orjson.dumps({"resourceType": "Bundle", "entry": [entry]})
            .replace(b'"name":', b'"name":' + b"[" * 200)
            .replace(b"}]}]}", b"}]}]}" + b"]" * 200),
            "",
        ),
        ("too_large", orjson.dumps({"resourceType": "Bundle", "entry": [entry] * 2000}), ""),
    ]


def _error_text(err: grpc.RpcError) -> str:
    parts = [str(err.code()), err.details() or "", repr(err.trailing_metadata())]  # type: ignore[attr-defined]
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is not None:
        parts.append(repr(status))
    return "\n".join(parts)


def test_no_canary_in_logs_errors_or_metrics(
    start_cli_server: Callable[..., Any], example_cases: list[Any]
) -> None:
    server = start_cli_server(
        env={"TRIAGE_LOG_LEVEL": "DEBUG", "TRIAGE_MAX_BUNDLE_BYTES": str(256 * 1024)}
    )
    server.wait_serving()
    seen: list[str] = []
    with grpc.insecure_channel(server.target) as channel:
        stub = triage_pb2_grpc.TriageServiceStub(channel)
        canary_bundle = _canary_bundle(example_cases[0])
        answer = stub.Assess(
            triage_pb2.AssessRequest(fhir_bundle=canary_bundle, request_id="canary-ok"),
            timeout=20,
        )
        assert answer.audit_id, "the canary bundle must be assessed for the test to mean much"
        # An encounter id that does not exist, carrying a canary.
        with pytest.raises(grpc.RpcError) as err:
            stub.Assess(
                triage_pb2.AssessRequest(
                    fhir_bundle=canary_bundle, request_id="canary-enc", encounter_id=ENCOUNTER
                ),
                timeout=20,
            )
        seen.append(_error_text(err.value))
        for i, (label, bundle, _) in enumerate(_malformed()):
            with pytest.raises(grpc.RpcError) as err:
                stub.Assess(
                    triage_pb2.AssessRequest(fhir_bundle=bundle, request_id=f"canary-bad-{i}"),
                    timeout=20,
                )
            assert err.value.code() in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            ), label
            seen.append(_error_text(err.value))
        stream = stub.AssessStream(
            iter(
                [
                    triage_pb2.AssessRequest(fhir_bundle=b, request_id=f"canary-s-{i}")
                    for i, (_, b, _) in enumerate(_malformed())
                ]
            ),
            timeout=30,
        )
        for result in stream:
            assert result.WhichOneof("result") == "error"
            seen.append(str(result.error))
        with pytest.raises(grpc.RpcError) as err:
            stub.ReportOutcome(
                triage_pb2.OutcomeReport(encounter_reference=f"Encounter/{ENCOUNTER}", mace=True),
                timeout=20,
            )
        seen.append(_error_text(err.value))
        seen.append(stub.GetFairnessReport(triage_pb2.FairnessReportRequest(), timeout=20).json)
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as page:
        metrics_page = page.read().decode()
    assert "triage_errors_total" in metrics_page
    assert server.terminate(signal.SIGTERM) == 0

    logs = "".join(server.stdout_lines + server.stderr_lines)
    assert logs.count("\n") >= 5, "expected log lines to search"
    haystacks = {"logs": logs, "errors": "\n".join(seen), "metrics": metrics_page}
    for where, text in haystacks.items():
        for canary in CANARIES:
            assert canary not in text, f"{canary!r} found in {where}"
