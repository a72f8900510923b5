"""A node's dial to an IP literal skips gevent's resolver (and its thread pool)."""

from __future__ import annotations

from typing import Any

import gevent
import pytest
from gevent import socket as gsocket
from gevent.server import StreamServer

from joerl.node import link_setup

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def listener() -> Any:
    server = StreamServer(("127.0.0.1", 0), lambda sock, addr: sock.recv(1))
    server.start()
    yield server
    server.stop()


def test_an_ip_literal_is_not_resolved(monkeypatch: pytest.MonkeyPatch, listener: Any) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"resolver called for {args!r}")

    monkeypatch.setattr(gsocket, "getaddrinfo", refuse)
    with gevent.Timeout(5):
        sock = link_setup._connect_tcp("127.0.0.1", listener.server_port)
    try:
        assert sock.getpeername() == ("127.0.0.1", listener.server_port)
    finally:
        sock.close()


def test_a_host_name_is_resolved(monkeypatch: pytest.MonkeyPatch, listener: Any) -> None:
    asked: list[str] = []
    real = gsocket.getaddrinfo

    def spy(host: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(gsocket, "getaddrinfo", spy)
    with gevent.Timeout(5):
        sock = link_setup._connect_tcp("a-name.invalid", listener.server_port)
    sock.close()
    assert asked == ["a-name.invalid"]


def test_a_refused_connect_is_an_os_error() -> None:
    probe = gsocket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # (nothing listens there now)
    with gevent.Timeout(5), pytest.raises(OSError):
        link_setup._connect_tcp("127.0.0.1", port)
