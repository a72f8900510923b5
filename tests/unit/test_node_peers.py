"""The peer table: a peer's states, lookups by name and id, id collisions, resolving ids."""

from __future__ import annotations

from typing import Any

import gevent
import pytest

from joerl.errors import DistributionError, InvalidNodeName
from joerl.message import NodeUp
from joerl.node.config import node_id_of
from joerl.node.names import node_name as full
from joerl.node.peers import BACKING_OFF, DIALING, IDLE, SWEEP_FLOOR, UP, NodeWatchers, Peer, PeerTable
from joerl.pid import Pid


def table(names: list[str] | None = None, own: str = "me@h") -> PeerTable:
    return PeerTable(own, node_id_of(own), lambda: list(names or []))


def colliding_names() -> tuple[str, str]:
    """Two node names whose ids collide (searched among short names)."""
    seen: dict[int, str] = {}
    for i in range(1_000_000):
        name = f"n{i}@h"
        other = seen.setdefault(node_id_of(name), name)
        if other != name:
            return other, name
    pytest.skip("no colliding ids found")


class _FakeLink:
    closed = False


def test_a_peer_goes_idle_dialing_up_idle() -> None:
    peer = Peer("b")
    assert peer.node_id == node_id_of("b") and peer.state(0.0) == IDLE
    peer.connecting = object()
    assert peer.state(0.0) == DIALING
    peer.link = _FakeLink()  # type: ignore[assignment]
    peer.connecting = None
    assert peer.state(0.0) == DIALING, "registered but not flushed yet"
    peer.conn = peer.link
    peer.up.set()
    assert peer.state(0.0) == UP
    old_up = peer.up
    peer.link_lost()
    assert peer.state(0.0) == IDLE and peer.link is None and peer.conn is None
    assert old_up.is_set() and not peer.up.is_set(), "a fresh event for the next link"


def test_a_failed_dial_backs_off_and_drops_the_queue() -> None:
    peer = Peer("b")
    peer.pending = ["m1", "m2"]
    peer.pending_bytes = 64
    lost = peer.dial_failed(100.0, "refused")
    assert lost == ["m1", "m2"] and peer.pending == [] and peer.pending_bytes == 0
    assert peer.last_error == "refused"
    assert peer.state(100.0) == BACKING_OFF and peer.next_attempt > 100.0
    assert peer.state(peer.next_attempt) == IDLE
    first = peer.next_attempt - 100.0
    peer.dial_failed(200.0, "refused")
    assert peer.next_attempt - 200.0 >= first, "the back-off grows"
    peer.link_lost()
    assert peer.state(0.0) == IDLE


def test_a_peer_is_unused_only_when_nothing_needs_it() -> None:
    peer = Peer("b")
    assert peer.unused(0.0)
    for attr, value in [
        ("link", _FakeLink()),
        ("connecting", object()),
        ("pending", ["m"]),
        ("flushing", True),
        ("handshaking", True),
    ]:
        old = getattr(peer, attr)
        setattr(peer, attr, value)
        assert not peer.unused(0.0), attr
        setattr(peer, attr, old)
    peer.calls.add(object())  # type: ignore[arg-type]
    assert not peer.unused(0.0)
    peer.calls.clear()
    peer.dial_failed(100.0, "refused")
    assert not peer.unused(100.0), "still backing off"
    assert peer.unused(peer.next_attempt)


def test_a_forgotten_peer_leaves_both_indexes_and_its_name_is_still_known() -> None:
    peers = table()
    b = peers.peer("b@h")
    assert peers.forget(b, 0.0)
    assert "b@h" not in peers and b.node_id not in peers.by_id and len(peers) == 0
    assert peers.name_of(b.node_id) == "b@h"  # (node_of a pid of a departed node)
    assert not peers.forget(b, 0.0), "forgotten once"
    again = peers.peer("b@h")
    assert again is not b and peers.by_id[b.node_id] is again
    again.pending.append("m")
    assert not peers.forget(again, 0.0) and peers["b@h"] is again


def test_the_table_stays_bounded_as_nodes_come_and_go() -> None:
    peers = table()
    busy = peers.peer("busy@h")
    busy.link = _FakeLink()  # type: ignore[assignment]
    backing_off = peers.peer("backing-off@h")
    backing_off.next_attempt = float("inf")
    sizes = []
    for i in range(10_000):
        peers.peer(f"gone{i}@h")  # each used once, then nothing needs it
        sizes.append(len(peers))
    assert max(sizes) <= 2 * SWEEP_FLOOR + 2
    assert peers["busy@h"] is busy and peers["backing-off@h"] is backing_off, "a peer in use is kept"


def test_peers_are_found_by_name_and_by_id() -> None:
    peers = table()
    b = peers.peer("b@h")
    assert peers.peer("b") is b and peers.get("b") is b, "a name without a host gets this node's"
    assert peers.peer("b@h") is b and peers["b@h"] is b and peers.get("b@h") is b and "b@h" in peers
    assert peers.by_id[node_id_of("b@h")] is b and peers.name_of(node_id_of("b@h")) == "b@h"
    assert peers.get("c@h") is None and peers.name_of(12345) is None
    assert [p.name for p in peers] == ["b@h"] and len(peers) == 1


def test_this_node_and_bad_names_are_no_peers() -> None:
    peers = table()
    with pytest.raises(DistributionError):
        peers.peer("me@h")
    with pytest.raises(DistributionError):
        peers.peer("me")
    for bad in ["", "a@", "@h", "a@b@c", "a b@h", "a@h!"]:
        with pytest.raises(InvalidNodeName):
            peers.peer(bad)


def test_connected_lists_the_peers_that_are_up() -> None:
    peers = table()
    peers.peer("c@h").conn = _FakeLink()  # type: ignore[assignment]
    peers.peer("b@h")
    peers.peer("a@h").conn = _FakeLink()  # type: ignore[assignment]
    assert peers.connected() == ["a@h", "c@h"]


def test_an_id_collision_keeps_the_first_peer_and_refuses_the_second() -> None:
    first, second = colliding_names()
    peers = table()
    p1 = peers.peer(first)
    p2 = peers.peer(second)
    assert p1 is not p2 and peers.by_id[p1.node_id] is p1, "pids with that id still name the first"
    assert peers.collision(first, p1.node_id) is None
    why = peers.collision(second, p2.node_id)
    assert why is not None and first in why


def test_a_peer_announcing_our_own_id_is_refused() -> None:
    peers = table()
    assert peers.collision("impostor", node_id_of("me@h")) is not None
    assert peers.collision("b@h", node_id_of("b@h")) is None, "an unknown node with its own id is fine"


def test_an_unknown_id_is_resolved_at_the_port_mapper() -> None:
    peers = table(["me@h", "x@h", "y@h"])
    y = peers.for_id(node_id_of("y@h"))
    assert y is not None and y.name == "y@h" and peers.by_id[y.node_id] is y
    assert peers.for_id(424242) is None


def test_the_hub_never_asks_the_port_mapper() -> None:
    asked: list[int] = []

    def names() -> list[str]:
        asked.append(1)
        return ["y@h"]

    peers = PeerTable("me@h", node_id_of("me@h"), names)
    result: list[Any] = []
    gevent.get_hub().loop.run_callback(lambda: result.append(peers.for_id(node_id_of("y@h"))))
    gevent.sleep(0)
    assert result == [None] and asked == []


def test_an_unreachable_port_mapper_means_unknown() -> None:
    def names() -> list[str]:
        raise OSError("connection refused")

    assert PeerTable("me@h", node_id_of("me@h"), names).for_id(node_id_of("y@h")) is None


class _Inbound:
    def __init__(self, alive: set[Pid]) -> None:
        self.alive = alive
        self.got: list[tuple[Pid, Any]] = []

    def signal(self, pid: Pid, msg: Any, sender: Pid | None = None) -> bool:
        if pid not in self.alive:
            return False
        self.got.append((pid, msg))
        return True


def test_node_watchers_hear_of_their_nodes_and_dead_ones_are_forgotten() -> None:
    p1, p2, p3 = Pid(0, 1, 0), Pid(0, 2, 0), Pid(0, 3, 0)
    inbound = _Inbound({p1, p2})
    watchers = NodeWatchers(inbound)  # type: ignore[arg-type]
    watchers.watch_all(p1, True)
    assert watchers.watch(p2, full("b"), True)
    assert not watchers.watch(p1, full("b"), True), "p1 hears of every node already"
    watchers.watch_all(p3, True)
    watchers.notify(NodeUp(full("b")))
    watchers.notify(NodeUp(full("c")))
    assert inbound.got == [(p1, NodeUp(full("b"))), (p2, NodeUp(full("b"))), (p1, NodeUp(full("c")))]
    inbound.got.clear()
    inbound.alive.add(p3)
    watchers.notify(NodeUp(full("c")))
    assert inbound.got == [(p1, NodeUp(full("c")))], "p3 was dead at the first event: forgotten"
