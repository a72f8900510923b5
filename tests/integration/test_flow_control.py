"""Flow control across a link (issue 15): a flood to a full bounded mailbox never blocks the link.

Node A floods a bounded mailbox on node B whose reader is held back, while
another pair of processes exchanges round trips on the same link: no
NodeDown, round trips continue, the flood's sender is paused (credit) and
resumes, every flooded message arrives in order. A bounded mailbox shows in
its pid, so a tight loop of sends is charged from its first message: the
receiving node's queue never holds more than the window, whether the link
was up or came up under the burst. ``try_send`` to the paused
destination raises ``MailboxFull``; the destination dying with messages
queued counts them. And ``max_mailbox`` kills a process whose mailbox grows
past its limit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent.event import Event

from joerl import DistributedSystem
from joerl.actor import ActorContext
from joerl.errors import MailboxFull
from joerl.message import Down, NodeDown
from joerl.node.flow import DEFAULT_WINDOW
from joerl.pid import BOUNDED_MAILBOX
from joerl.system import ActorSystem
from joerl.testing import Probe, node_cluster, wait_until

BOUND = 10
FLOOD = 2000


@pytest.fixture
def pair() -> Iterator[list[DistributedSystem]]:
    with node_cluster("a", "b", tick_time=4.0, global_names=False) as nodes:
        yield nodes


def _echo(ctx: ActorContext) -> None:
    while True:
        msg = ctx.receive()
        ctx.send(msg[0], ("pong", msg[1]))


def _gated_consumer(go: Event, got: list[Any]) -> Any:
    def body(ctx: ActorContext) -> None:
        go.wait()
        while True:
            got.append(ctx.receive())

    return body


def _flooder(dest: Any, sent: list[int], n: int) -> Any:
    """Sends ``n`` messages to ``dest`` in a tight loop, counting them in ``sent[0]``."""

    def body(ctx: ActorContext) -> None:
        for i in range(n):
            ctx.send(dest, ("f", i))
            sent[0] = i + 1

    return body


def _flood(a: DistributedSystem, b: DistributedSystem, n: int = FLOOD) -> tuple[Event, list[Any], Any, Any, list[int]]:
    go: Event = Event()
    got: list[Any] = []
    consumer = b.system.spawn_fn(_gated_consumer(go, got), mailbox_size=BOUND)
    gcons = b.global_pid(consumer.pid)
    sent = [0]
    a.system.spawn_fn(_flooder(gcons, sent, n))
    return go, got, consumer, gcons, sent


def _paused(sent: list[int]) -> int:
    """Wait until the flooder's count stays put (it waits for credit); its count."""
    last = [-1]

    def still() -> bool:
        now, last[0] = last[0], sent[0]
        return now == sent[0] and sent[0] > 1

    wait_until(still, timeout=10, interval=0.2, what="the flooder to pause")
    return sent[0]


def test_a_flood_to_a_full_mailbox_pauses_its_sender_and_the_link_flows_on(pair: list[DistributedSystem]) -> None:
    a, b = pair
    downs = Probe(a)
    a.monitor_node(downs.pid, "b")
    go, got, _consumer, _gcons, sent = _flood(a, b)
    paused_at = _paused(sent)
    # The sender is held back: the window (the bound's messages earn less than a grant's batch).
    assert paused_at <= DEFAULT_WINDOW, paused_at
    # Meanwhile round trips between another pair on the same link go on.
    pinger = Probe(a)
    echo = b.system.spawn_fn(_echo)
    slowest = 0.0
    for i in range(200):
        start = time.monotonic()
        pinger.ctx.send(b.global_pid(echo.pid), (pinger.pid, i))
        assert pinger.receive(timeout=5) == ("pong", i)
        slowest = max(slowest, time.monotonic() - start)
    assert slowest < 1.0, slowest
    assert sent[0] == paused_at  # still paused
    go.set()  # the consumer reads: the flood resumes and ends
    wait_until(lambda: len(got) == FLOOD, timeout=60, what="every flooded message")
    assert got == [("f", i) for i in range(FLOOD)]
    assert sent[0] == FLOOD
    downs.expect_nothing(0.2, NodeDown)


@pytest.mark.parametrize("link_up", [True, False], ids=["link-up", "link-comes-up-under-the-burst"])
def test_a_tight_loop_is_charged_from_its_first_message_and_never_overruns_the_window(
    pair: list[DistributedSystem], link_up: bool
) -> None:
    """5,000 sends in a tight loop to a bounded mailbox that does not read: no
    GRANT is needed to start, so nothing goes uncharged; B's queue for it never
    holds more than the window, the sender pauses within it, and once the
    consumer reads every message arrives in order."""
    a, b = pair
    n = 5000
    if link_up:
        a.connect_to_node("b")
    go, got, consumer, gcons, sent = _flood(a, b, n)
    assert gcons.id & BOUNDED_MAILBOX  # the pid says "bounded" before any message
    paused_at = _paused(sent)
    assert paused_at <= DEFAULT_WINDOW, paused_at
    flow = b._dispatch.flow
    wait_until(lambda: flow.queued() + BOUND >= sent[0], timeout=10, what="the burst to land")
    assert sent[0] <= DEFAULT_WINDOW, sent[0]  # (still held back once all of it is there)
    assert flow.peak(consumer.pid) <= DEFAULT_WINDOW, flow.peak(consumer.pid)
    go.set()
    wait_until(lambda: len(got) == n, timeout=60, what="every message")
    assert got == [("f", i) for i in range(n)]
    # The high-water mark of B's queue for it, over the whole flood.
    assert flow.peak(consumer.pid) <= DEFAULT_WINDOW, flow.peak(consumer.pid)
    assert not flow.queued()


def test_try_send_to_a_paused_destination_raises_mailbox_full(pair: list[DistributedSystem]) -> None:
    a, b = pair
    go, got, _consumer, gcons, sent = _flood(a, b)
    _paused(sent)
    with pytest.raises(MailboxFull):
        a.system.try_send(gcons, "one more")
    go.set()
    wait_until(lambda: len(got) == FLOOD, timeout=60)
    assert got == [("f", i) for i in range(FLOOD)]
    a.system.try_send(gcons, "after")  # credit came back: it goes
    wait_until(lambda: got[-1:] == ["after"], timeout=10)


def test_the_destination_dying_with_messages_queued_counts_them_and_frees_its_senders(
    pair: list[DistributedSystem],
) -> None:
    a, b = pair
    _go, got, consumer, _gcons, sent = _flood(a, b)
    paused_at = _paused(sent)
    watcher = Probe(b)
    watcher.ctx.monitor(consumer.pid)
    before = b.system.stats.dropped
    consumer.stop("kill")
    assert isinstance(watcher.receive(Down, timeout=5), Down)
    # What was queued for it (in its mailbox and in the node's queue) is counted, and the
    # flooder, released by GONE, sends the rest, each counted as a message to a dead process.
    wait_until(lambda: sent[0] == FLOOD, timeout=30, what="the flooder to be released")
    wait_until(lambda: b.system.stats.dropped - before == FLOOD, timeout=30, what="every message counted")
    assert not got
    assert b.system.stats.dropped_by_reason.get("exited", 0) >= paused_at - 1


def test_a_flood_to_a_bounded_pid_that_already_ended_is_counted_and_never_holds_its_sender(
    pair: list[DistributedSystem],
) -> None:
    """No queue, no credit coming back: the receiving node answers GONE for a
    message to an ended bounded pid, so the sender never waits forever."""
    a, b = pair
    gone = b.system.spawn_fn(lambda ctx: None, mailbox_size=BOUND)
    wait_until(lambda: not b.system.is_process_alive(gone.pid), timeout=10)
    before = b.system.stats.dropped_by_reason.get("noproc", 0)
    n = DEFAULT_WINDOW * 5
    sent = [0]
    a.system.spawn_fn(_flooder(b.global_pid(gone.pid), sent, n))
    wait_until(lambda: sent[0] == n, timeout=30, what="the sender to get through")
    wait_until(lambda: b.system.stats.dropped_by_reason.get("noproc", 0) - before == n, timeout=30)


def test_a_flood_to_a_bounded_pid_on_a_node_that_went_away_never_holds_its_sender(
    pair: list[DistributedSystem],
) -> None:
    """Charged to a link that never comes up: the dial's failure (or the
    backoff's drop) gives the credit back, and every message is counted."""
    a, b = pair
    consumer = b.system.spawn_fn(lambda ctx: ctx.receive(), mailbox_size=BOUND)
    gcons = b.global_pid(consumer.pid)
    a.connect_to_node("b")
    downs = Probe(a)
    a.monitor_node(downs.pid, "b")
    b.shutdown()
    downs.receive(NodeDown, timeout=10)
    before = a.stats.dropped_unreachable
    n = DEFAULT_WINDOW * 3
    sent = [0]
    a.system.spawn_fn(_flooder(gcons, sent, n))
    wait_until(lambda: sent[0] == n, timeout=60, what="the sender to get through")
    wait_until(lambda: a.stats.dropped_unreachable - before == n, timeout=30, what="every message counted")


def test_a_call_to_a_paused_server_times_out_within_its_timeout(pair: list[DistributedSystem]) -> None:
    a, b = pair
    _go, _got, _consumer, gcons, sent = _flood(a, b)
    _paused(sent)
    caller = Probe(a)
    start = time.monotonic()
    with pytest.raises(Exception) as info:
        a.system.call(gcons, "hello", timeout=0.5)
    assert type(info.value).__name__ == "CallTimeout"
    assert time.monotonic() - start < 3.0
    caller.stop()


def test_unbounded_destinations_take_no_credit(pair: list[DistributedSystem]) -> None:
    a, b = pair
    inbox = Probe(b)
    for i in range(FLOOD):
        a.system.send(inbox.gpid, i)
    wait_until(lambda: len(inbox.pending()) == FLOOD, timeout=30)
    assert inbox.pending() == list(range(FLOOD))
    assert not a._routing.paced  # (no FLOW frame for an unbounded mailbox)


# -- max_mailbox ------------------------------------------------------------------------


def test_max_mailbox_kills_a_process_whose_mailbox_grows_past_the_limit() -> None:
    system = ActorSystem()
    try:
        stuck = Event()
        proc = system.spawn_fn(lambda ctx: stuck.wait(), max_mailbox=100)
        watcher = Probe(system)
        watcher.ctx.monitor(proc.pid)
        for i in range(100):
            system.send(proc.pid, i)
        watcher.expect_nothing(0.05, Down)
        system.send(proc.pid, "one too many")
        down = watcher.receive(Down, timeout=5)
        assert down.reason == ("max_mailbox", 100)
        assert system.stats.dropped_by_reason.get("exited") == 101
    finally:
        system.shutdown()


def test_a_system_wide_max_mailbox_applies_to_every_spawn_and_a_remote_flood_trips_it() -> None:
    with pytest.raises(ValueError, match="max_mailbox"):
        ActorSystem(max_mailbox=0)
    with node_cluster("a", "b", global_names=False) as (a, b):
        b.system.max_mailbox = 500
        stuck = Event()
        proc = b.system.spawn_fn(lambda ctx: stuck.wait())
        other = b.system.spawn_fn(lambda ctx: stuck.wait(), max_mailbox=10_000)
        watcher = Probe(b)
        watcher.ctx.monitor(proc.pid)
        watcher.ctx.monitor(other.pid)
        for i in range(600):
            a.system.send(b.global_pid(proc.pid), i)
            a.system.send(b.global_pid(other.pid), i)
        down = watcher.receive(Down, timeout=10)
        assert down.pid == proc.pid and down.reason == ("max_mailbox", 500)
        watcher.expect_nothing(0.2, Down)  # the other's own limit is higher
        stuck.set()
        gevent.sleep(0)
