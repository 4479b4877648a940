"""The committed generated code matches the .proto, and the contract names exist."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from triage.v1 import triage_pb2

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_protos.py"


def test_generated_code_matches_the_proto() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_drift_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check fails when the committed code no longer matches (a field added to the proto)."""
    fake_root = tmp_path / "repo"
    shutil.copytree(ROOT / "protos", fake_root / "protos")
    (fake_root / "scripts").mkdir()
    shutil.copy(SCRIPT, fake_root / "scripts" / "check_protos.py")
    proto = fake_root / "protos" / "triage" / "v1" / "triage.proto"
    proto.write_text(
        proto.read_text().replace(
            "message OutcomeAck {", "message OutcomeAck {\n  string drift = 99;"
        )
    )
    result = subprocess.run(
        [sys.executable, str(fake_root / "scripts" / "check_protos.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "triage_pb2.py" in result.stderr


def test_contract_names() -> None:
    service = triage_pb2.DESCRIPTOR.services_by_name["TriageService"]
    assess = service.methods_by_name["Assess"]
    assert assess.input_type.full_name == "triage.v1.AssessRequest"
    assert assess.output_type.full_name == "triage.v1.Assessment"
    request_fields = triage_pb2.AssessRequest.DESCRIPTOR.fields_by_name
    assert set(request_fields) >= {"fhir_bundle", "request_id", "encounter_id"}
    fields = triage_pb2.Assessment.DESCRIPTOR.fields_by_name
    assert set(fields) >= {
        "request_id",
        "audit_id",
        "mace_probability",
        "band",
        "esi_level",
        "recommended_actions",
        "heart_score",
        "heart",
        "top_features",
        "warnings",
        "model",
        "fairness_audit",
    }
    assert {v.name for v in triage_pb2.RiskBand.DESCRIPTOR.values} == {
        "RISK_BAND_UNSPECIFIED",
        "LOW",
        "MODERATE",
        "HIGH",
    }
    assert triage_pb2.AuditStatus.Name(0) == "AUDIT_STATUS_UNSPECIFIED"


def test_every_field_is_documented() -> None:
    """Every message field and rpc carries a comment in the .proto (leading or inside a oneof)."""
    text = (ROOT / "protos" / "triage" / "v1" / "triage.proto").read_text().splitlines()
    undocumented = []
    for i, line in enumerate(text):
        stripped = line.strip()
        is_field = stripped.endswith(";") and "=" in stripped and not stripped.startswith("//")
        is_rpc = stripped.startswith("rpc ")
        if not (is_field or is_rpc) or stripped.startswith(("syntax", "package", "option")):
            continue
        j = i - 1
        while j >= 0 and text[j].strip().startswith("//"):
            j -= 1
        enum_value = stripped.split()[0].isupper()  # LOW = 1; OK = 1; ... name themselves
        if j == i - 1 and not enum_value:
            undocumented.append(f"{i + 1}: {stripped}")
    assert not undocumented, undocumented
