"""JSON log lines carry no exception text (it may quote bundle values)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from service import logs


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.mark.usefixtures("_restore_logging")
def test_json_lines_without_exception_text() -> None:
    stream = io.StringIO()
    logs.configure("INFO", stream)
    log = logging.getLogger("tests.logs")
    try:
        raise ValueError("CANARYNAME-7f3a")
    except ValueError:
        log.exception("failed %s", "Assess", extra={"fields": {"code": "INTERNAL"}})
    log.info("plain %d", 3)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["msg"] == "failed Assess"
    assert lines[0]["code"] == "INTERNAL"
    assert lines[0]["exc_type"] == "ValueError"
    assert lines[0]["stack"]
    assert "test_logs.py" in lines[0]["stack"][0]
    assert "CANARY" not in stream.getvalue()
    assert lines[1] == {**lines[1], "level": "INFO", "msg": "plain 3"}
