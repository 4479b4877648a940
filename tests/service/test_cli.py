"""The ``triage`` command line: assess (screen and --json), serve's port lines, demo, usage."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from relaxed_gates import RELAXED_GATES
from triage.v1 import triage_pb2

from service import cli
from service.screen import render
from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={
            **os.environ,
            "TRIAGE_PROMOTION_GATES": json.dumps(dataclasses.asdict(RELAXED_GATES)),
            **(env or {}),
        },
        timeout=120,
    )


@pytest.fixture
def bundle_file(tmp_path: Path, example_bundles: list[bytes]) -> Path:
    path = tmp_path / "bundle.json"
    path.write_bytes(example_bundles[0])
    return path


def test_assess_prints_a_triage_screen(
    bundle_file: Path, tmp_path: Path, model_registry: Path
) -> None:
    result = _run(
        "assess",
        str(bundle_file),
        "--data-dir",
        str(tmp_path / "d"),
        "--registry",
        str(model_registry),
    )
    assert result.returncode == 0, result.stderr
    screen = result.stdout
    for label in ("Risk band", "ESI", "Actions", "HEART", "Basis", "Fairness", "Model", "Recorded"):
        assert label in screen, label
    assert "not clinically validated" in screen


def test_assess_json_is_the_protobuf_json(
    bundle_file: Path, tmp_path: Path, model_registry: Path
) -> None:
    from google.protobuf import json_format
    from triage.v1 import triage_pb2

    result = _run(
        "assess",
        str(bundle_file),
        "--json",
        "--request-id",
        "cli-json-1",
        "--data-dir",
        str(tmp_path / "d"),
        "--registry",
        str(model_registry),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["requestId"] == "cli-json-1"
    parsed = json_format.Parse(result.stdout, triage_pb2.Assessment())
    assert parsed.band in (triage_pb2.LOW, triage_pb2.MODERATE, triage_pb2.HIGH)
    assert parsed.model.name


def test_assess_reports_a_bad_bundle_without_a_traceback(
    tmp_path: Path, model_registry: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = _run(
        "assess", str(bad), "--data-dir", str(tmp_path / "d"), "--registry", str(model_registry)
    )
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr
    assert "Traceback" not in result.stderr


def test_assess_without_a_model_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    bundle.write_text('{"resourceType": "Bundle", "type": "collection", "entry": []}')
    (tmp_path / "empty").mkdir()
    result = _run(
        "assess", str(bundle), "--data-dir", str(tmp_path / "d"),
        "--registry", str(tmp_path / "empty"),
    )  # fmt: skip
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr
    assert "no_active_version" in result.stderr
    assert "Traceback" not in result.stderr


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_PORT", "6000")
    monkeypatch.setenv("TRIAGE_METRICS_PORT", "6001")
    monkeypatch.setenv("TRIAGE_DATA_DIR", "/tmp/from-env")
    args = cli._parser().parse_args(["serve", "--port", "7000"])
    settings = cli._settings(args, **cli._SERVE_FLAGS)
    assert settings.port == 7000
    assert settings.metrics_port == 6001
    assert settings.data_dir == Path("/tmp/from-env")
    assert Settings().port == 6000


def test_invalid_setting_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_WORKERS", "0")
    assert cli.main(["serve"]) == cli.USAGE


def test_a_misspelt_variable_is_refused_naming_it_not_its_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was ignored: a typo in TRIAGE_PSEUDONYM_KEY silently gave each host a key of its own."""
    monkeypatch.setenv("TRIAGE_PSEUDONYM_KY", "a-secret-worth-keeping-1")
    assert cli.main(["serve"]) == cli.USAGE
    err = capsys.readouterr().err
    assert "TRIAGE_PSEUDONYM_KY" in err
    assert "a-secret-worth-keeping-1" not in err


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRIAGE_GRACE_PERIOD_S", "1e12"),  # was: OverflowError at shutdown, store left open
        ("TRIAGE_REGISTRY_POLL_S", "1e10"),  # was: the watcher thread died at its first wait
        ("TRIAGE_FAIRNESS_REPORT_INTERVAL_S", "inf"),
        ("TRIAGE_VITALS_STALENESS_HOURS", "inf"),  # was: a raw OverflowError at start
        ("TRIAGE_MAX_BUNDLE_BYTES", "600000000"),  # 4x would exceed gRPC's 32-bit limit
        ("TRIAGE_FAIRNESS_WARN_DIFFERENCE", "0.5"),  # above the alert difference (0.20)
        ("TRIAGE_FACILITY_ALLOW_LIST", "[not json"),  # was: a traceback
    ],
)
def test_out_of_range_and_unreadable_settings_are_usage_errors(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, value)
    assert cli.main(["serve"]) == cli.USAGE
    err = capsys.readouterr().err
    assert err.startswith("triage: invalid settings:")
    assert "Traceback" not in err


def test_a_data_dir_that_cannot_be_made_fails_to_start_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("TRIAGE_DATA_DIR", str(blocker / "data"))
    assert cli.main(["serve"]) == cli.FAILED
    err = capsys.readouterr().err
    assert err.startswith("triage: cannot start:")
    assert str(blocker) not in err


@pytest.mark.parametrize("token", ["ünïcödé-token-0123456", "token with spaces 0123"])
def test_an_admin_token_no_client_can_send_is_refused(
    token: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was accepted, turning admin on with a credential gRPC refuses to put in a header."""
    monkeypatch.setenv("TRIAGE_ADMIN_TOKEN", token)
    assert cli.main(["serve"]) == cli.USAGE
    err = capsys.readouterr().err
    assert "admin_token" in err
    assert token not in err


@pytest.mark.parametrize("variable", ["TRIAGE_ADMIN_TOKEN", "TRIAGE_PSEUDONYM_KEY"])
@pytest.mark.parametrize("secret", ["", "short-secret-15", " " * 20])
def test_weak_secrets_are_refused_without_being_printed(
    variable: str, secret: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An empty admin token used to turn admin on with "Bearer " as the credential.
    monkeypatch.setenv(variable, secret)
    assert cli.main(["serve"]) == cli.USAGE
    err = capsys.readouterr().err
    assert variable.removeprefix("TRIAGE_").lower() in err
    assert "at least 16 characters" in err
    assert secret == "" or secret not in err
    monkeypatch.setenv(variable, "sixteen-chars-ok")
    assert Settings().model_dump()[variable.removeprefix("TRIAGE_").lower()] is not None


def test_serve_prints_ports_first_and_env_vars_work(
    start_cli_server: Callable[..., Any],
) -> None:
    server = start_cli_server()
    assert server.stdout_lines[0].startswith("grpc_port=")
    assert server.stdout_lines[1].startswith("metrics_port=")
    assert server.grpc_port > 0
    assert server.metrics_port > 0
    server.wait_serving()
    assert server.terminate() == 0
    logged = [json.loads(line) for line in server.stderr_lines if line.startswith("{")]
    serving = [line for line in logged if line["msg"] == "serving"]
    assert serving
    assert serving[0]["execution_provider"].endswith("ExecutionProvider")


def test_serve_reads_ports_from_the_environment(tmp_path: Path, model_registry: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env={
            **os.environ,
            "TRIAGE_PORT": "0",
            "TRIAGE_METRICS_PORT": "0",
            "TRIAGE_DATA_DIR": str(tmp_path / "env-data"),
            "TRIAGE_MODEL_REGISTRY": str(model_registry),
        },
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("grpc_port=")
        assert proc.stdout.readline().startswith("metrics_port=")
        assert (tmp_path / "env-data" / "audit.sqlite").exists()
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()
    assert code == 0


def test_demo_sends_the_stories_through_a_running_server(
    serve: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    served = serve()
    assert cli.main(["demo", "--target", served.target]) == cli.OK
    out = capsys.readouterr().out
    assert "Man, shoulder pain, hypertension, family history" in out
    assert "Woman, dyspnea and nausea, no chest pain" in out
    assert out.count("Risk band") >= 5


def test_demo_fails_when_no_server_answers(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--target", "127.0.0.1:1", "--timeout", "0.5"]) == cli.FAILED


def test_docs_list_every_setting() -> None:
    """docs/service.md documents every Settings field with its environment variable."""
    text = (REPO / "docs" / "service.md").read_text()
    missing = [
        name
        for name in Settings.model_fields
        if f"`{name}`" not in text or f"`TRIAGE_{name.upper()}`" not in text
    ]
    assert not missing, missing


def test_the_screen_never_clips_the_basis() -> None:
    long_value = "<10 ng/L (0.25 x URL)"
    msg = triage_pb2.Assessment(
        top_features=[
            triage_pb2.Contribution(
                feature="known_atherosclerosis", value="present", weight=0.94, status="present"
            ),
            triage_pb2.Contribution(
                feature="troponin",
                value=long_value,
                weight=-0.29,
                status="present",
                source_ids=["Observation/trop-1"],
            ),
        ]
    )
    lines = render(msg).splitlines()
    rows = [line for line in lines if "known_atherosclerosis" in line or long_value in line]
    assert len(rows) == 2
    assert "Observation/trop-1" in rows[1]
    # the weight column lines up under the header
    header = next(line for line in lines if line.startswith("Basis"))
    assert rows[0].index("+0.94") <= header.index("weight") + len("weight")


def test_an_unusable_key_file_fails_to_start_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "pseudonym.key").write_bytes(b"short")
    (data / "pseudonym.key").chmod(0o600)
    monkeypatch.setenv("TRIAGE_DATA_DIR", str(data))
    bundle = tmp_path / "bundle.json"
    bundle.write_text('{"resourceType": "Bundle"}')
    assert cli.main(["assess", str(bundle)]) == cli.FAILED
    err = capsys.readouterr().err
    assert err.startswith("triage: cannot start: pseudonym key file must hold exactly")


def test_kubernetes_service_links_are_not_taken_for_typos(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Service named triage-grpc injects these into every pod of the namespace; they made
    start-up fail once unknown TRIAGE_* variables were refused."""
    for name, value in {
        "TRIAGE_GRPC_SERVICE_HOST": "10.0.0.7",
        "TRIAGE_GRPC_SERVICE_PORT": "50051",
        "TRIAGE_GRPC_SERVICE_PORT_GRPC": "50051",
        "TRIAGE_GRPC_PORT": "tcp://10.0.0.7:50051",
        "TRIAGE_GRPC_PORT_50051_TCP": "tcp://10.0.0.7:50051",
        "TRIAGE_GRPC_PORT_50051_TCP_ADDR": "10.0.0.7",
    }.items():
        monkeypatch.setenv(name, value)
    assert Settings().port == 50051
    monkeypatch.setenv("TRIAGE_METRIC_PORT", "9464")  # a typo is still one
    with pytest.raises(ValidationError, match="TRIAGE_METRIC_PORT"):
        Settings()


def test_a_settings_error_never_carries_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: the unknown-variable error's input value held the whole input, secrets too."""
    secret = "admin-token-never-shown-0123"
    monkeypatch.setenv("TRIAGE_ADMIN_TOKEN", secret)
    monkeypatch.setenv("TRIAGE_TYPO", "x")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert secret not in str(refused.value)
    assert secret[-10:] not in str(refused.value)


def test_a_weak_secret_is_not_quoted_by_the_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_PSEUDONYM_KEY", "short-key-15chr")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "short-key-15chr" not in str(refused.value)


def test_the_screen_says_what_a_weight_is_measured_against() -> None:
    """A clinical review read "chest_pain present -0.72" as "chest pain is reassuring"."""
    msg = triage_pb2.Assessment(
        top_features=[
            triage_pb2.Contribution(
                feature="chest_pain", value="present", weight=-0.72, status="present"
            )
        ]
    )
    assert "against the item not recorded" in render(msg)


def test_the_screen_lists_the_evidence_with_its_sources() -> None:
    msg = triage_pb2.Assessment(
        evidence=[
            triage_pb2.Evidence(
                finding="troponin_above_url_in_window", source_ids=["Observation/tn0"]
            )
        ]
    )
    assert "Evidence    troponin_above_url_in_window: Observation/tn0" in render(msg)
