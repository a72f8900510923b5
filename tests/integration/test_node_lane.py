"""The lane of ``Routing.route_send`` (issue 17): a burst from one process to one
process of another node joins the open SEND_TERMS batch without the full
path's checks, and stops doing so whenever what those checks depend on changes.

Each burst runs in one greenlet that does not yield between its sends, so
that the batch it opened stays open (the link's writer runs only when the
sender yields); the tests look at the lane and the batch from there. Real
nodes on loopback in one process; every wait has a deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gevent.event import AsyncResult
from test_node import cluster, make_node, no_leaks, remote  # noqa: F401 - fixtures

from joerl import MessageTooLarge
from joerl.actor import ActorContext
from joerl.node.batching import CLOSED, NO_LANE
from joerl.node.config import LinkConfig
from joerl.node.connection import Connection
from joerl.node.node import DistributedSystem
from joerl.testing import Probe, node_cluster, wait_until

COOKIE = "lane-test-cookie"
WAIT = 15

# Messages the lane's check must judge as OutboundBatcher.term does: its own
# shapes (pairs, one-entry dicts) with every kind of item, and others.
SHAPES: list[Any] = [
    ("s", 1), (b"b", 2.5), (True, None), (0, -1), ("é", "x" * 300), (1 << 63, -(1 << 63)),
    (1 << 64, 1), ((1, 2), 3), ([1], 2), ("one",), ("a", 1, 2), (), {"k": 1}, {b"k": "v"}, {1: 2},
    {"k": [1]}, {"k": (1,)}, {"a": 1, "b": 2}, {}, "text", 7, None, [1, 2],
]  # fmt: skip


@pytest.fixture
def pair() -> Iterator[tuple[DistributedSystem, DistributedSystem]]:
    with node_cluster("a", "b", cookie=COOKIE, global_names=False) as (a, b):
        yield a, b


def up(node: DistributedSystem, peer: DistributedSystem) -> Connection:
    """``node``'s link to ``peer``, up and open to direct sends (messages
    queued while it came up are on it: sends no longer wait in the peer's queue)."""
    node.connect_to_node(peer.node_name)
    wait_until(lambda: node._peers[peer.node_name].conn is not None, timeout=WAIT)
    conn = node._peers[peer.node_name].conn
    assert conn is not None
    return conn


def in_actor(node: DistributedSystem, body: Callable[[ActorContext], Any]) -> Any:
    """Run ``body(ctx)`` in a process of ``node``; its result (or its exception)."""
    out: AsyncResult = AsyncResult()

    def run(ctx: ActorContext) -> None:
        try:
            out.set(body(ctx))
        except BaseException as exc:
            out.set_exception(exc)

    node.spawn_fn(run)
    return out.get(timeout=WAIT)


def test_the_lane_judges_and_packs_every_message_as_the_batcher_does(
    pair: tuple[DistributedSystem, DistributedSystem],
) -> None:
    a, b = pair
    inbox = Probe(b)
    routing = a._routing
    conn = up(a, b)

    to = inbox.gpid

    def burst(ctx: ActorContext) -> list[Any]:
        seen = []
        for i, msg in enumerate(SHAPES):
            ctx.send(to, ("warm", i))
            ctx.send(to, ("warm", i))  # (the first may have gone out at once: a batch is open now)
            lane = routing._lane
            assert lane is conn.outbound.open_terms() and lane.to is to and lane.key is ctx.pid
            ctx.send(to, msg)
            body = conn.encoder.term(msg)
            if body is None:  # the codec's: a SEND batch of its own closed the lane's
                assert lane.room == CLOSED and conn.outbound.open_terms() is None
            else:  # joined the same batch, packed as the encoder packs it
                assert conn.outbound.open_terms() is lane and lane[-1] == body
            seen.append(body is not None)
        return seen

    seen = in_actor(a, burst)
    assert seen[:7] == [True] * 6 + [False]  # (an int past 64 bits: the codec's)
    expected = [m for i, msg in enumerate(SHAPES) for m in (("warm", i), ("warm", i), msg)]
    wait_until(lambda: len(inbox.pending()) == len(expected), timeout=WAIT)
    assert inbox.pending() == expected
    wait_until(lambda: a.stats.sent == len(expected), timeout=WAIT)
    assert a.link_stats()[b.node_name]["messages_out"] == len(expected)


def test_order_holds_when_codec_messages_and_other_senders_interleave(
    pair: tuple[DistributedSystem, DistributedSystem],
) -> None:
    a, b = pair
    inbox = Probe(b)
    up(a, b)
    other = Probe(a)
    to = inbox.gpid  # (one object: the lane knows a burst's destination by identity)

    def burst(ctx: ActorContext) -> None:
        for i in range(3000):
            ctx.send(to, ("p", i))
            if i % 7 == 0:
                ctx.send(to, ["codec", i])  # not a plain term: SEND, in order
            if i % 11 == 0:
                other.ctx.send(to, ("other", i))  # another sender between two of ours
            if i % 13 == 0:
                ctx.send(to, {"d": i})

    in_actor(a, burst)
    n = 3000 + len(range(0, 3000, 7)) + len(range(0, 3000, 11)) + len(range(0, 3000, 13))
    wait_until(lambda: len(inbox.pending()) == n, timeout=WAIT)
    got = inbox.pending()
    ours = [m for m in got if not (m.__class__ is tuple and m[0] == "other")]
    expected = []
    for i in range(3000):
        expected.append(("p", i))
        if i % 7 == 0:
            expected.append(["codec", i])
        if i % 13 == 0:
            expected.append({"d": i})
    assert ours == expected
    assert [m for m in got if m.__class__ is tuple and m[0] == "other"] == [("other", i) for i in range(0, 3000, 11)]
    wait_until(lambda: a.stats.sent == n, timeout=WAIT)
    assert a.stats.dropped_unreachable == a.stats.dropped_stale == 0


def test_the_lane_closes_with_its_link_and_the_burst_goes_on_over_the_next(
    pair: tuple[DistributedSystem, DistributedSystem],
) -> None:
    a, b = pair
    inbox = Probe(b)
    routing = a._routing
    old = up(a, b)

    to = inbox.gpid

    def burst(ctx: ActorContext) -> Any:
        for i in range(100):
            ctx.send(to, ("before", i))
        lane = routing._lane
        assert lane is old.outbound.open_terms() and len(lane) > 50
        old.close("test")  # (the batch is dropped with the link, as whatever was queued)
        assert lane.room == CLOSED
        for i in range(100):
            ctx.send(to, ("after", i))  # queued while the link comes up again
        return lane

    lane = in_actor(a, burst)
    wait_until(
        lambda: [m for m in inbox.pending() if m[0] == "after"] == [("after", i) for i in range(100)], timeout=WAIT
    )
    assert lane.room == CLOSED and routing._lane is not lane
    before = [m for m in inbox.pending() if m[0] == "before"]
    assert before == [("before", i) for i in range(len(before))]  # a prefix: the rest went with the link
    assert a._peers[b.node_name].link is not old
    # Each message counted once: sent (handed to a link, even the one that went down) or dropped.
    wait_until(lambda: a.stats.sent + a.stats.dropped_unreachable == 200, timeout=WAIT)


def test_a_restarted_peer_gets_nothing_through_the_lane_of_its_earlier_incarnation(
    cluster: list[DistributedSystem], make_node: Any
) -> None:
    a = cluster[0]
    d1 = make_node("d")
    inbox1 = Probe(d1)
    old = inbox1.gpid  # (one object: the lane knows a burst's destination by identity)
    sender = Probe(a)
    routing = a._routing
    up(a, d1)
    for i in range(50):
        sender.ctx.send(old, ("one", i))
    lane = routing._lane
    assert lane.to is old and lane.key is sender.pid
    wait_until(lambda: len(inbox1.pending()) == 50, timeout=WAIT)
    d1.shutdown()
    d = make_node("d")
    assert d.creation != d1.creation
    inbox = Probe(d)
    up(a, d)
    stale = a.stats.dropped_stale
    for i in range(50):
        sender.ctx.send(old, ("stale", i))  # the old incarnation's pid: dropped, counted, never sent
    sender.ctx.send(inbox.gpid, ("new", 0))
    assert inbox.receive(timeout=WAIT) == ("new", 0)
    assert a.stats.dropped_stale == stale + 50
    assert inbox.pending() == []


def test_no_lane_to_a_bounded_mailbox(pair: tuple[DistributedSystem, DistributedSystem]) -> None:
    a, b = pair
    got: list[Any] = []
    done = AsyncResult()

    def sink(ctx: ActorContext) -> None:
        while len(got) < 200:
            got.append(ctx.receive())
        done.set(True)

    bounded = remote(b, b.spawn_fn(sink, mailbox_size=1000).pid)
    up(a, b)

    def burst(ctx: ActorContext) -> Any:
        for i in range(200):
            ctx.send(bounded, ("b", i))
        return a._routing._lane

    assert in_actor(a, burst) is NO_LANE  # flow control checks every message to it
    assert done.get(timeout=WAIT) and got == [("b", i) for i in range(200)]


def test_a_message_too_large_is_refused_with_the_lane_open_and_order_holds() -> None:
    config = LinkConfig(max_frame_size=64 * 1024)
    with node_cluster("a", "b", cookie=COOKIE, global_names=False, link_config=config) as (a, b):
        inbox = Probe(b)
        up(a, b)
        to = inbox.gpid

        def burst(ctx: ActorContext) -> Any:
            for i in range(10):
                ctx.send(to, ("x", i))
            assert a._routing._lane.to is to
            with pytest.raises(MessageTooLarge):
                ctx.send(to, ("big", b"z" * 100_000))
            for i in range(10, 20):
                ctx.send(to, ("x", i))
            assert a._routing._lane.to is to

        in_actor(a, burst)
        wait_until(lambda: len(inbox.pending()) == 20, timeout=WAIT)
        assert inbox.pending() == [("x", i) for i in range(20)]
        wait_until(lambda: a.stats.sent == 20, timeout=WAIT)


def test_the_lane_is_never_set_on_another_senders_batch(pair: tuple[DistributedSystem, DistributedSystem]) -> None:
    """While a message waits inside the link's queue (for room, or a yield to
    the writer), another process may open the next batch to the same
    destination: the lane must not take that batch for the first sender's."""
    a, b = pair
    got: list[Any] = []

    def sink(ctx: ActorContext) -> None:
        while True:
            got.append((ctx.receive(), ctx.sender))

    to = remote(b, b.spawn_fn(sink).pid)
    conn = up(a, b)
    other = Probe(a)
    plain_send_term = conn.send_term

    def send_term(sender: Any, dest: Any, msg: Any) -> bool:
        queued = plain_send_term(sender, dest, msg)
        if msg == ("a", 5):  # as if another process ran while this one waited in the queue
            other.ctx.send(to, ("b", 0))
        return queued

    conn.send_term = send_term  # type: ignore[method-assign]

    def burst(ctx: ActorContext) -> Any:
        for i in range(5):
            ctx.send(to, ("a", i))
        ctx.send(to, ["codec"])  # (closes the batch: the next message takes the full path)
        for i in range(5, 10):
            ctx.send(to, ("a", i))
        return ctx.pid

    me = remote(a, in_actor(a, burst))
    wait_until(lambda: len(got) == 12, timeout=WAIT)
    assert [m for m, s in got if s == me] == [("a", i) for i in range(5)] + [["codec"]] + [
        ("a", i) for i in range(5, 10)
    ]
    assert [m for m, s in got if s != me] == [("b", 0)]
