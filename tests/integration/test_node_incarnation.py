"""A restarted peer is told apart by its 64-bit incarnation id, even when its creation collides (issue 15).

A node's creation is 32 bits (random, as OTP 23+ allows), so two starts of
one node may draw the same one. The handshake also carries a random 64-bit
``incarnation`` id, and the link decisions use both: a start with another
incarnation id replaces a link that still looks alive (it is closed with
``noconnection``: NodeDown, then NodeUp), while the same incarnation dialling
again while its link is up is still answered ``busy`` (one link at a time,
so that nothing arrives out of order).

Here both starts of node ``b`` get the same creation (``choose_creation`` is
patched). The first start "vanishes" without closing its socket: it stops
reading its link to ``a`` (frozen, as after SIGSTOP), so ``a``'s link to it
stays up. The second start registers at a second port mapper (the first
still holds the name ``b``) and dials ``a``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_node import (  # noqa: F401 - fixtures
    COOKIE,
    _dial_as,
    cluster,
    echo,
    link,
    link_stays_up,
    make_node,
    no_leaks,
    remote,
)

import joerl.node.node as node_module
from joerl.epmd import EpmdClient
from joerl.epmd.server import EpmdServer
from joerl.message import NOCONNECTION, Down, Exit, NodeDown, NodeUp
from joerl.node import protocol as P
from joerl.node.names import node_name as full
from joerl.node.node import DistributedSystem
from joerl.testing import Probe, wait_until


@pytest.fixture
def second_mapper(cluster: list[DistributedSystem]) -> Iterator[str]:
    """A second port mapper, where ``a`` is registered too (pointing at ``a``'s listener)."""
    a = cluster[0]
    with EpmdServer("127.0.0.1:0") as server:
        address = f"127.0.0.1:{server.port}"
        info = EpmdClient(a.epmd_address, timeout=10).lookup(a.node_name)
        assert info is not None
        with EpmdClient(address, timeout=10) as registrar:
            registrar.register(a.node_name, "127.0.0.1", a.listen_port, metadata=dict(info.metadata))
            yield address


def _freeze(node: DistributedSystem, peer: str) -> None:
    """``node`` stops reading its link to ``peer`` (it will not see it close): a start that vanished."""
    stale = link(node, peer)
    assert stale._reader is not None
    stale._reader.kill()


def _second_start(
    monkeypatch: pytest.MonkeyPatch, first: DistributedSystem, epmd: str, extra: list[DistributedSystem]
) -> DistributedSystem:
    """Another start of ``first``'s node, on port mapper ``epmd``, drawing the same creation."""
    monkeypatch.setattr(node_module, "choose_creation", lambda registered=0: first.creation)
    node = DistributedSystem(first.node_name, "127.0.0.1:0", epmd, cookie=COOKIE, start_epmd=False, global_names=False)
    extra.append(node)
    assert node.creation == first.creation, "the creation collides"
    return node


@pytest.fixture
def extra() -> Iterator[list[DistributedSystem]]:
    nodes: list[DistributedSystem] = []
    yield nodes
    for node in nodes:
        node.shutdown()


def test_a_new_incarnation_with_the_same_creation_replaces_the_old_link(
    cluster: list[DistributedSystem], second_mapper: str, extra: list[DistributedSystem], monkeypatch: Any
) -> None:
    a, b1, _ = cluster
    watch = Probe(a, trap_exit=True)
    a.monitor_nodes(watch.pid)
    victim = Probe(b1)
    ref = watch.ctx.monitor(victim.gpid)
    watch.ctx.link(victim.gpid)
    assert watch.receive(NodeUp) == NodeUp(full("b"))
    old = link(a, "b")
    first_incarnation = old.peer.incarnation
    assert first_incarnation != 0 and a._peers["b"].incarnation == first_incarnation

    _freeze(b1, "a")
    watch.ctx.send(victim.gpid, "sent to the first start, over its link")  # into the frozen socket
    b2 = _second_start(monkeypatch, b1, second_mapper, extra)
    clone = Probe(b2)
    while clone.pid.id < victim.pid.id:  # a process of the second start under the victim's very id
        clone = Probe(b2)
    assert remote(b2, clone.pid) == victim.gpid, "the first start's pid names a process of the second start"

    assert b2.connect_to_node("a") is True, "a accepts the second start"
    # What crossed the old link fires with noconnection; the node goes down, then up.
    assert watch.receive(Down) == Down(ref, victim.gpid, NOCONNECTION)
    assert watch.receive(Exit) == Exit(victim.gpid, NOCONNECTION)
    assert watch.receive(NodeDown) == NodeDown(full("b"), NOCONNECTION)
    assert watch.receive(NodeUp) == NodeUp(full("b"))
    assert old.closed
    new = link(a, "b")
    assert new is not old
    assert new.peer.incarnation != first_incarnation and new.peer.creation == b1.creation
    assert a._peers["b"].incarnation == new.peer.incarnation
    assert a.nodes() == [full("b")]

    # The new link works both ways; what was sent to the first start over its link never reaches the second.
    b2.system.send(watch.gpid, "from the second start")
    assert watch.receive(str) == "from the second start"
    marker = Probe(b2)
    a.system.send(marker.gpid, "marker")  # on the new link: whatever a moved onto it arrived before this
    assert marker.receive() == "marker"
    assert clone.pending() == [], "nothing addressed to the first start was delivered to the second"
    assert watch.pending() == []


def test_the_same_incarnation_dialling_again_while_its_link_is_up_is_answered_busy(
    cluster: list[DistributedSystem],
) -> None:
    a, b, _ = cluster
    with link_stays_up(a, b) as live:
        again = P.NodeIdentity(b.node_name, b.node_id, b.creation, incarnation=live.peer.incarnation)
        with pytest.raises(P.HandshakeRefused) as refused:
            _dial_as(a.listen_port, a.node_name, again, COOKIE.encode())
        assert refused.value.status == P.STATUS_BUSY


def test_a_forged_new_incarnation_with_the_same_creation_and_the_cookie_replaces_the_link(
    cluster: list[DistributedSystem],
) -> None:
    """The same creation under another incarnation id (and the right cookie):
    a restarted node, although TCP has not said the old link is gone."""
    a, b, _ = cluster
    watch = Probe(a)
    a.monitor_nodes(watch.pid)
    seen = Probe(b)
    a.system.send(seen.gpid, 1)
    assert seen.receive() == 1
    old = link(a, "b")
    reborn = P.NodeIdentity(b.node_name, b.node_id, b.creation)  # a fresh random incarnation id
    assert reborn.incarnation != old.peer.incarnation
    conn = _dial_as(a.listen_port, a.node_name, reborn, COOKIE.encode())
    try:
        assert watch.receive() == NodeUp(full("b"))
        assert watch.receive(NodeDown) == NodeDown(full("b"), NOCONNECTION)
        assert watch.receive(NodeUp) == NodeUp(full("b"))
        assert old.closed
        wait_until(lambda: a._peers["b"].incarnation == reborn.incarnation, what="a to hold the new incarnation")
    finally:
        conn.close()
    assert watch.receive(NodeDown) == NodeDown(full("b"), NOCONNECTION)


@pytest.mark.xfail(
    strict=True,
    reason="a pid carries the 32-bit creation, not the 64-bit incarnation id, and a node's pid ids count "
    "from 1: when two starts draw the same creation (probability 2**-32 with random creations), a pid of "
    "the first start sent to after the second has linked names a process of the second start, and neither "
    "node can tell (the fix belongs to pids or to the id counter, e.g. ids from a random start)",
)
def test_a_message_to_a_pid_of_the_first_start_sent_after_the_swap_never_reaches_the_second(
    cluster: list[DistributedSystem], second_mapper: str, extra: list[DistributedSystem], monkeypatch: Any
) -> None:
    a, b1, _ = cluster
    watch = Probe(a)
    a.monitor_nodes(watch.pid)
    victim = Probe(b1)
    a.system.send(victim.gpid, "hello")
    assert victim.receive() == "hello"
    _freeze(b1, "a")
    b2 = _second_start(monkeypatch, b1, second_mapper, extra)
    clone = Probe(b2)
    while clone.pid.id < victim.pid.id:
        clone = Probe(b2)
    assert b2.connect_to_node("a") is True
    wait_until(lambda: a._peers["b"].incarnation != 0 and link(a, "b").peer.incarnation != 0, what="swap")
    assert watch.receive(NodeDown) == NodeDown(full("b"), NOCONNECTION)
    a.system.send(victim.gpid, "for the first start")
    echo_probe = Probe(b2)
    a.system.send(echo_probe.gpid, "marker")  # after the first message, on the same link: it arrives after it
    assert echo_probe.receive() == "marker"
    assert clone.pending() == [], "the first start's pid reached a process of the second start"
