"""No lockout by strangers: legitimate nodes link while others flood the listener (issue 15).

Anyone who can open TCP connections to a node's port used to be able to block
every new link: 64 idle connections that sent two bytes and were reopened as
soon as the node closed them filled the global cap of handshakes in progress,
and 0 of 20 legitimate dials got through in 30 s. Admission is now per source
address and counts only unfinished handshakes; past a generous global bound
the oldest silent handshake is evicted, and a connection must send its first
bytes within ``first_bytes_timeout``.

The attackers run in a child process and bind to 127.0.0.2 and up (one
address, or many); the legitimate nodes run in this process and dial from
127.0.0.1, while the attack goes on. Every legitimate dial must succeed
within 2 s. Attacks:

* ``idle``: connect, send two bytes (a HELLO's length), hold; reopen when closed;
* ``slowloris``: connect, then one byte every 0.5 s, never a whole HELLO;
* ``silent``: connect and send nothing (a half-open connection); reopen when closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from _reliakit import COOKIE, start_attacker

from joerl.node.node import DistributedSystem
from joerl.testing import ChildProcess, running_epmd, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(240)]

LEGIT_DIALS = 20
DIAL_DEADLINE = 2.0


@pytest.fixture
def epmd_address() -> Iterator[str]:
    with running_epmd() as address:
        yield address


def _node(name: str, epmd: str, **options: Any) -> DistributedSystem:
    return DistributedSystem(name, "127.0.0.1:0", epmd, cookie=COOKIE, start_epmd=False, global_names=False, **options)


def _attack(target: DistributedSystem, plan: list[str]) -> ChildProcess:
    return start_attacker(target.listen_port, plan)


def _legit_dials(target: DistributedSystem, epmd: str, count: int) -> list[float]:
    """``count`` fresh nodes dial ``target``, one every 0.25 s (the attack goes on
    meanwhile): how long each took (inf: failed)."""
    times: list[float] = []
    for i in range(count):
        gevent.sleep(0.25)  # pacing: the dials spread over several of the attackers' reconnect cycles
        node = _node(f"legit{i}", epmd)
        try:
            t0 = time.monotonic()
            try:
                node.connect_to_node(target.node_name, timeout=10.0)
                times.append(time.monotonic() - t0)
            except Exception:  # noqa: BLE001 - a failed dial is what the test counts
                times.append(float("inf"))
        finally:
            node.shutdown()
    return times


ATTACKS: dict[str, Callable[[int], list[str]]] = {
    # 64 as in the probe, and then some: past the old global cap of 64 from one address.
    "one address": lambda n: [f"idle:127.0.0.2:{n}", f"slowloris:127.0.0.2:{n // 2}", f"silent:127.0.0.2:{n // 2}"],
    # Past the global bound (1024) from many addresses: eviction of the oldest silent handshake.
    "many addresses": lambda n: [
        f"{mode}:127.0.0.{2 + i}:{n // 4}" for i in range(12) for mode in ("idle", "slowloris", "silent")
    ],
}


@pytest.mark.parametrize("where", list(ATTACKS))
def test_legitimate_nodes_link_within_2s_while_strangers_flood_the_listener(
    where: str, epmd_address: str, scenario: Any
) -> None:
    rec = scenario(
        f"lockout_{where.replace(' ', '_')}",
        f"No lockout by strangers ({where})",
        "idle (two bytes, reopened when closed), slowloris and silent connections to a node's port "
        f"from {where} (127.0.0.2 and up) while {LEGIT_DIALS} fresh nodes dial it from 127.0.0.1, one after another",
    )
    target = _node("target", epmd_address)
    plan = ATTACKS[where](128)
    attacker = None
    try:
        attacker = _attack(target, plan)
        attacking = sum(int(p.split(":")[2]) for p in plan)
        wait_until(lambda: target._links.handshakes >= 60, timeout=30)  # the attack is on
        rec.figure("attack_connections", attacking, "attacking connections held open at once")
        rec.figure("handshakes_at_start", target._links.handshakes, "unfinished handshakes when the dials began")
        times = _legit_dials(target, epmd_address, LEGIT_DIALS)
        ok = [t for t in times if t <= DIAL_DEADLINE]
        rec.figure("legit_ok", len(ok), f"legitimate dials linked within {DIAL_DEADLINE}s", f"of {LEGIT_DIALS}")
        finite = sorted(t for t in times if t != float("inf"))
        if finite:
            rec.figure("dial_median", finite[len(finite) // 2], "median dial time", "s")
            rec.figure("dial_max", finite[-1], "slowest dial", "s")
        admission = getattr(target._links, "admission", None)  # (absent before issue 15: the figures of the old code)
        rec.figure("evictions", getattr(admission, "evictions", 0), "handshakes evicted for newer ones")
        rec.figure("refused", target.stats.refused_connections, "connections closed unauthenticated")
        assert attacker.proc.poll() is None, "the attacker stopped before the dials were done"
        rec.check(len(ok) == LEGIT_DIALS, f"every legitimate dial linked within {DIAL_DEADLINE}s: {times}")
        rec.check(target._links.handshakes <= 1024, "unfinished handshakes stay within the global bound")
    finally:
        if attacker is not None:
            attacker.close()
        target.shutdown()
    rec.verify()


def test_eighty_nodes_meshing_at_once_from_one_address_are_never_refused(epmd_address: str, scenario: Any) -> None:
    rec = scenario(
        "lockout_mesh_80",
        "80 nodes dialling one node at once from one address",
        "80 nodes of this process (all from 127.0.0.1) connect to one node at the same moment",
    )
    target = _node("hub", epmd_address)
    nodes: list[DistributedSystem] = []
    try:
        nodes = [_node(f"n{i}", epmd_address) for i in range(80)]
        dials = [gevent.spawn(n.connect_to_node, "hub", 30.0) for n in nodes]
        gevent.joinall(dials, timeout=120)
        linked = sum(1 for g in dials if g.successful() and g.value is True)
        rec.figure("linked", linked, "nodes linked", "of 80")
        rec.figure("refused", target.stats.refused_connections, "connections refused")
        rec.check(linked == 80, "all 80 linked")
        rec.check(target.stats.refused_connections == 0, "none refused")
        rec.check(len(target.nodes()) == 80, "the hub sees 80 links")
    finally:
        for n in nodes:
            n.shutdown()
        target.shutdown()
    rec.verify()


def test_a_silent_connection_is_closed_after_first_bytes_timeout(epmd_address: str) -> None:
    from gevent import socket

    target = _node("quiet", epmd_address, first_bytes_timeout=0.5)
    try:
        sock = socket.create_connection(("127.0.0.1", target.listen_port))
        sock.settimeout(10)
        t0 = time.monotonic()
        assert sock.recv(1) == b""  # closed by the node, without a byte
        assert time.monotonic() - t0 < 5.0  # well before the handshake deadline (7 s)
        sock.close()
        wait_until(lambda: target.stats.refused_connections == 1, timeout=5)
        wait_until(lambda: target._links.handshakes == 0, timeout=5)
    finally:
        target.shutdown()
