"""The phase of a node link's ticks (joerl/node/ticks.py): on a grid of wall-clock time; and
the tick check, which counts bytes waiting in the socket as heard."""

from __future__ import annotations

import time

import gevent
import pytest
from gevent import socket as gsocket

from joerl.node.config import LinkConfig
from joerl.node.frames import TICK_FRAME
from joerl.node.ticks import first_tick, unread
from joerl.testing import linked_pair, wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("interval", "now", "wait"),
    [
        (1.0, 100.25, 0.75),
        (1.0, 100.0, 1.0),  # on a grid point: the next one, never 0
        (1.0, 100.995, 1.005),  # closer than a hundredth: the one after
        (1.0, 100.98, 0.02),
        (15.0, 7.0, 8.0),
        (0.25, 3.1, 0.15),
    ],
)
def test_first_tick_is_the_next_grid_point(interval: float, now: float, wait: float) -> None:
    assert first_tick(interval, now) == pytest.approx(wait)
    assert (now + first_tick(interval, now)) / interval == pytest.approx(round((now + wait) / interval))


def test_first_tick_defaults_to_the_wall_clock() -> None:
    wait = first_tick(0.5)
    assert 0.005 <= wait <= 0.505


def test_links_started_apart_tick_in_one_pass_of_the_hub() -> None:
    """Two links of a node, started 0.1 s apart, fire their tick timers at the same
    instants (one wake-up for both), and an idle link still ticks."""
    cfg = LinkConfig(tick_time=1.0)
    with linked_pair(config=cfg) as one:
        gevent.sleep(0.1)  # the offset the test is about: the second link starts 0.1 s after the first
        with linked_pair(config=cfg) as two:
            interval = one.initiator.tick_interval
            assert interval == two.initiator.tick_interval == 0.25
            timers = [c._tick_timer for c in (*one, *two)]
            phases = [(t.at - timers[0].at) / interval for t in timers]
            assert all(p == pytest.approx(round(p), abs=0.02) for p in phases), phases
            wait_until(lambda: two.acceptor.stats.ticks_in >= 3 and one.acceptor.stats.ticks_in >= 3, timeout=5)


def test_unread_sees_bytes_and_the_end_of_the_stream_waiting() -> None:
    mine, theirs = gsocket.socketpair()
    try:
        assert not unread(mine)
        theirs.sendall(b"x")
        assert unread(mine)
        assert mine.recv(1) == b"x" and not unread(mine)
        theirs.close()
        assert unread(mine), "the end of the stream waits to be read too"
    finally:
        mine.close()
        theirs.close()
    assert not unread(mine), "a closed socket: nothing"


def test_a_hub_kept_busy_past_the_tick_time_does_not_call_a_peer_that_spoke_silent() -> None:
    """Both ends' hub is held (one blocking call) longer than the tick time
    just after each end wrote: the tick timer then runs before the read of the
    same pass, and finds the bytes waiting in the socket (ticks.unread): the
    link stays up."""
    cfg = LinkConfig(tick_time=1.0)
    with linked_pair(config=cfg) as pair:
        ends = (pair.initiator, pair.acceptor)
        assert all(end.flush(timeout=5) for end in ends)  # (nothing queued: a tick may go on the wire as is)
        for end in ends:
            end.sock.sendall(TICK_FRAME)
        assert all(unread(end.sock) for end in ends)
        time.sleep(1.5 * cfg.tick_time)  # the hub held: nothing yields
        before = [end.stats.ticks_in for end in ends]
        wait_until(lambda: all(end.stats.ticks_in > n + 1 for end, n in zip(ends, before, strict=True)), timeout=5)
        assert not any(end.closed for end in ends)
        assert [end.stats.tick_timeouts for end in ends] == [0, 0]
