"""A joerl node with Erlang distribution and real erl nodes: connecting, both ways, with both port
mappers (Erlang's own epmd: standard requests only; and joerl's), wrong cookies, simultaneous
connect, ticks and net_ticktime."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from time import monotonic
from typing import Any

import gevent
import pytest
from erl_shell import Epmd, ErlShell, erlang_node

from joerl.epmd import EpmdServer
from joerl.erlang import Atom
from joerl.errors import NodeUnreachable
from joerl.node.erl_node import ErlangConfig
from joerl.testing import wait_until

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

PY = Atom("py@127.0.0.1")


@pytest.fixture(scope="module", params=["erlang-epmd", "joerl-epmd"])
def epmd_port(request: Any, erl: str) -> Iterator[int]:
    """Both port mappers: Erlang's own epmd, and joerl's daemon (in this process)."""
    if request.param == "erlang-epmd":
        e = Epmd()
        yield e.port
        e.kill()
    else:
        server = EpmdServer("127.0.0.1:0")
        server.start()
        yield server.port
        server.stop()


def test_erl_pings_the_joerl_node_and_lists_it_hidden(py_node: Any, e1: ErlShell) -> None:
    assert e1.eval("net_adm:ping('py@127.0.0.1')") == Atom("pong")
    assert e1.eval("nodes(hidden)") == [PY]
    assert e1.eval("nodes()") == []  # a hidden node (the default)
    wait_until(lambda: "e1@127.0.0.1" in py_node.nodes("hidden"), timeout=10, what="py lists e1")
    assert "e1@127.0.0.1" not in py_node.nodes()  # Erlang's nodes(): visible ones only


def test_the_joerl_node_dials_erl_found_at_the_port_mapper(py_node: Any, epmd_port: int) -> None:
    e2 = ErlShell(epmd_port, "e2")
    other = erlang_node(epmd_port, "plain@127.0.0.1", erlang=False)
    try:
        assert py_node.erlang.is_erlang("e2@127.0.0.1")
        assert not py_node.erlang.is_erlang("plain@127.0.0.1")  # a joerl node: joerl's protocol
        assert py_node.connect_to_node("e2@127.0.0.1", timeout=10)
        assert e2.eval("nodes(hidden)") == [PY]
        py_node.connect_to_node("plain@127.0.0.1", timeout=10)
        assert "plain@127.0.0.1" in py_node.nodes() and "plain@127.0.0.1" not in py_node.erlang.nodes()
    finally:
        other.shutdown()
        e2.close()
    wait_until(lambda: "e2@127.0.0.1" not in py_node.nodes("hidden"), timeout=10, what="e2's link gone")


def test_a_wrong_cookie_is_refused_both_ways_and_logged_once(
    py_node: Any, epmd_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    bad = ErlShell(epmd_port, "bad", "NOT-THE-COOKIE")
    try:
        with caplog.at_level(logging.WARNING, logger="joerl.node"):
            assert bad.eval("net_adm:ping('py@127.0.0.1')") == Atom("pang")  # it dialled us: refused
            assert bad.eval("net_adm:ping('py@127.0.0.1')") == Atom("pang")
            for _ in range(2):  # we dial it: refused
                with pytest.raises(NodeUnreachable):
                    py_node.connect_to_node("bad@127.0.0.1", timeout=10)
        lines = [r.getMessage() for r in caplog.records if "bad@127.0.0.1" in r.getMessage()]
        assert len(lines) == 1 and "cookie" in lines[0], lines
        assert "bad@127.0.0.1" not in py_node.nodes("hidden")
    finally:
        bad.close()


def test_simultaneous_connect_ends_with_one_link(py_node: Any, epmd_port: int) -> None:
    e3 = ErlShell(epmd_port, "e3")
    try:
        for _ in range(3):
            e3.eval(
                "P = self(), register(dialer, spawn(fun() -> "
                "receive go -> P ! {done, net_kernel:connect_node('py@127.0.0.1')} end end))"
            )
            ours = gevent.spawn(py_node.connect_to_node, "e3@127.0.0.1", 10)
            e3.eval("dialer ! go")  # both dial at once
            assert e3.eval("receive {done, R} -> R after 10000 -> timeout end") is True
            assert ours.get(timeout=15) is True
            assert e3.eval("nodes(hidden)") == [PY]
            assert py_node.nodes("hidden").count("e3@127.0.0.1") == 1
            e3.eval("erlang:disconnect_node('py@127.0.0.1')")
            wait_until(lambda: "e3@127.0.0.1" not in py_node.nodes("hidden"), timeout=10, what="link down")
    finally:
        e3.close()


def test_ticks_keep_an_idle_link_and_a_silent_peer_is_down_within_net_ticktime(epmd_port: int) -> None:
    node = erlang_node(epmd_port, "ticker@127.0.0.1", erlang=ErlangConfig(tick_time=4.0))
    e4 = ErlShell(epmd_port, "e4", "JOERLTEST", "-kernel", "net_ticktime", "4")
    try:
        assert node.connect_to_node("e4@127.0.0.1", timeout=10)
        link = node.erlang.links.peers["e4@127.0.0.1"].link
        wait_until(lambda: link.ticks_in >= 3 and link.ticks_out >= 3, timeout=20, what="ticks both ways")
        assert not link.closed and node.erlang.links.peers["e4@127.0.0.1"].link is link  # idle, still up
        e4.proc.send_signal(signal.SIGSTOP)  # silent from now on
        stopped = monotonic()
        try:
            wait_until(lambda: link.closed, timeout=15, what="the silent peer declared down")
            waited = monotonic() - stopped
        finally:
            e4.proc.send_signal(signal.SIGCONT)
        assert 3.0 <= waited <= 8.0, waited
        assert "net_tick_timeout" in (link.reason or "")
    finally:
        e4.close()
        node.shutdown()


def test_a_dialler_without_v4_nc_and_unlink_id_is_refused_with_a_clear_error(
    py_node: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from gevent import socket

    from joerl.erlang import dflags
    from joerl.erlang.handshake import ErlangHandshake, Role
    from joerl.errors import HandshakeRefused
    from joerl.node.erl_link import run_handshake

    old = dflags.DEFAULT_FLAGS & ~dflags.V4_NC & ~dflags.UNLINK_ID  # what OTP 22 would offer
    hs = ErlangHandshake(
        Role.INITIATOR, "old@127.0.0.1", "JOERLTEST", 1, flags=old, required_flags=0, expected_peer="py@127.0.0.1"
    )
    with (
        caplog.at_level(logging.WARNING, logger="joerl.node"),
        socket.create_connection(("127.0.0.1", py_node.listen_port), timeout=10) as sock,
    ):
        with pytest.raises(HandshakeRefused, match="not_allowed"):
            run_handshake(sock, hs, 10.0)
        wait_until(lambda: any("old@127.0.0.1" in r.getMessage() for r in caplog.records), timeout=10)
    line = next(r.getMessage() for r in caplog.records if "old@127.0.0.1" in r.getMessage())
    assert "UNLINK_ID" in line and "V4_NC" in line, line


def test_allowed_nodes_applies_to_erlang_nodes(epmd_port: int, e1: ErlShell) -> None:
    guarded = erlang_node(epmd_port, "guarded@127.0.0.1", allowed_nodes=["e1@127.0.0.1"])
    e6 = ErlShell(epmd_port, "e6")
    try:
        assert e1.eval("net_adm:ping('guarded@127.0.0.1')") == Atom("pong")
        assert e6.eval("net_adm:ping('guarded@127.0.0.1')") == Atom("pang")  # refused: not allowed
        with pytest.raises(NodeUnreachable, match="allowed_nodes"):
            guarded.connect_to_node("e6@127.0.0.1", timeout=10)
        assert guarded.nodes("hidden") == ["e1@127.0.0.1"]
    finally:
        e6.close()
        guarded.shutdown()


def test_a_published_node_is_a_visible_one(epmd_port: int) -> None:
    from joerl.message import NodeUp
    from joerl.testing import Probe

    node = erlang_node(epmd_port, "pub@127.0.0.1", erlang=ErlangConfig(published=True))
    visible = ErlShell(epmd_port, "v", hidden=False)
    try:
        with Probe(node, timeout=10) as watcher:
            node.monitor_nodes(watcher.pid)  # visible nodes only, as Erlang's monitor_nodes
            assert visible.eval("net_adm:ping('pub@127.0.0.1')") == Atom("pong")
            assert visible.eval("nodes()") == [Atom("pub@127.0.0.1")]
            assert watcher.receive(NodeUp) == NodeUp("v@127.0.0.1")
            assert node.nodes() == ["v@127.0.0.1"] and node.nodes("hidden") == []
    finally:
        visible.close()
        node.shutdown()
