"""Start-up of ``triage serve`` in process: a start that fails part-way leaves nothing
bound or open behind it."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from service.app import App
from service.engine import Engine
from service.settings import Settings


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _can_bind(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.parametrize("taken", ["grpc", "metrics"])
def test_a_failed_start_leaves_nothing_open(
    make_settings: Callable[..., Settings], taken_port: int, taken: str, monkeypatch: Any
) -> None:
    free = _free_port()
    if taken == "grpc":
        settings = make_settings(port=taken_port, metrics_port=free)
    else:
        settings = make_settings(port=free, metrics_port=taken_port)
    closed: list[Engine] = []
    original_close = Engine.close

    def close(engine: Engine) -> None:
        closed.append(engine)
        original_close(engine)

    monkeypatch.setattr(Engine, "close", close)
    with pytest.raises(OSError, match=r"in use|could not bind"):
        App.start(settings)
    assert len(closed) == 1  # the audit store was flushed and closed
    assert _can_bind(free)  # the other listener, started or not, is gone


def test_start_and_stop(make_settings: Callable[..., Settings]) -> None:
    app = App.start(make_settings())
    try:
        assert app.grpc_port > 0
        assert app.metrics_port > 0
        assert not _can_bind(app.grpc_port)
    finally:
        app.stop()
    assert _can_bind(app.grpc_port)
    assert _can_bind(app.metrics_port)
