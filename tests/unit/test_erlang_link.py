"""joerl.node.erl_link.ErlangLink over a socket pair: frames in (leftover bytes first), a handler
that raises does not stop it, bad frames are counted, ticks go out when idle, a silent peer is
down within tick_time (but not one whose bytes wait unread), and a peer that does not read holds senders back (bounded queue)."""

from __future__ import annotations

from typing import Any

import gevent
import pytest
from gevent import socket

from joerl.erlang.control import TICK, Send, encode_frame
from joerl.erlang.handshake import Connected
from joerl.erlang.terms import Atom, ErlangPid
from joerl.errors import LinkDown
from joerl.node.erl_link import ErlangLink
from joerl.testing import wait_until

TO = ErlangPid(Atom("py@h"), 1, 0, 1)


def make(tick: float = 60.0, leftover: bytes = b"", **kw: Any) -> tuple[ErlangLink, Any, list[Any], list[str]]:
    ours, theirs = socket.socketpair()
    got: list[Any] = []
    closed: list[str] = []

    def handler(link: ErlangLink, msg: Any) -> None:
        if msg.message == b"raise":
            raise RuntimeError("a bad handler")
        got.append(msg)

    link = ErlangLink(
        ours,
        Connected("e@h", 0, 7, 0, leftover),
        tick_time=tick,
        handler=handler,
        on_closed=lambda _link, why: closed.append(why),
        max_frame_size=1 << 20,
        **kw,
    )
    link.start()
    return link, theirs, got, closed


def test_frames_in_leftover_first_a_raising_handler_and_a_bad_frame_do_not_stop_it() -> None:
    link, peer, got, closed = make(leftover=encode_frame(Send(TO, 1)))
    try:
        bad = b"\x00\x00\x00\x03p\x83\xff"  # a frame whose term does not decode
        peer.sendall(encode_frame(Send(TO, "raise")) + bad + TICK + encode_frame(Send(TO, 2)))
        wait_until(lambda: len(got) == 2, timeout=5)
        assert [m.message for m in got] == [1, 2] and link.bad_frames == 2 and link.ticks_in == 1
        assert not closed
    finally:
        link.close("test over")
        peer.close()
    assert closed == ["test over"]


def test_ticks_when_idle_and_a_silent_peer_is_down_within_tick_time() -> None:
    link, peer, _, closed = make(tick=0.4)
    try:
        with gevent.Timeout(5):
            assert peer.recv(4) == TICK  # nothing else to send: a tick
        wait_until(lambda: bool(closed), timeout=5, what="declared down")
        assert closed[0].startswith("net_tick_timeout")
        with pytest.raises(LinkDown):
            link.send(Send(TO, 1))
    finally:
        peer.close()


def test_a_peer_whose_bytes_wait_unread_is_not_silent_and_close_stops_the_ticker() -> None:
    link, peer, _, closed = make(tick=0.4)
    try:
        peer.sendall(TICK)  # heard, but never read: the reader is kept from running below
        link._last_in -= 10.0  # as if our hub had been late for ten seconds
        link._greenlets[0].kill()  # the reader
        ticks = link.ticks_out
        wait_until(lambda: link.ticks_out >= ticks + 2, timeout=5, what="two more ticks")
        assert not closed  # the peer's tick waits in the socket: it spoke (ticks.unread)
        link.close("test over")
        assert not link._tick_timer.active  # the ticker is a libev timer: closed with the link
    finally:
        peer.close()
    assert closed == ["test over"]


def test_a_peer_that_does_not_read_holds_senders_back() -> None:
    link, peer, _, _ = make(max_queue_bytes=256 * 1024)
    big = Send(TO, b"x" * 65536)
    sent = [0, 0]

    def sender(i: int) -> None:
        for _ in range(200):
            link.send(big)
            sent[i] += 1

    workers = [gevent.spawn(sender, 0), gevent.spawn(sender, 1)]
    try:
        wait_until(lambda: sum(sent) > 0, timeout=10, what="sending")
        for _ in range(100):
            gevent.idle()  # every runnable greenlet runs until it blocks: senders not held back would go on
        # 400 frames of 64 KiB (26 MiB) would be queued; what is held is the bound, two frames, the socket buffers.
        assert sum(sent) < 60, sent
        assert link.queued <= link.max_queue_bytes + 2 * len(encode_frame(big)), link.queued
        total = 0
        with gevent.Timeout(30):
            while total < 400 * len(encode_frame(big)):
                data = peer.recv(1 << 20)
                assert data
                total += len(data)
        gevent.joinall(workers, timeout=10, raise_error=True)
        assert sent == [200, 200]
    finally:
        gevent.killall(workers)
        link.close()
        peer.close()
