"""No lockout by strangers, for the port mapper (issue 15).

The port mapper limits connections per remote address but exempts loopback
by default (local nodes and tools are trusted, as Erlang's ``epmd`` trusts
them), so anyone on the host can open as many connections as it likes. It
must still serve the legitimate clients: a connection has ``request_timeout``
to send a whole first request, and past ``max_connections`` the oldest
connection that holds no registration and is waiting for a request is
evicted to make room for the newest (registrations are never evicted).

The attackers (``_reliakit.ATTACKER``, the program of the node listener's
lockout test) run in a child process and bind to 127.0.0.2 and up, one
address or many, and open twice as many connections as the daemon serves at
once (``max_connections=512``): idle ones that send two bytes of a request
length and hold, slowloris ones that then send a byte every 0.5 s, and
silent ones; each is reopened as soon as the daemon closes it. Meanwhile
legitimate clients on 127.0.0.1 register names, look them up and list them,
one after another: every one of those requests must be answered within 2 s.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from _reliakit import start_attacker

from joerl.epmd import EpmdClient
from joerl.epmd.server import EpmdServer
from joerl.testing import wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

ROUNDS = 20
DEADLINE = 2.0
MAX_CONNECTIONS = 512
CLIENT_TIMEOUT = 5.0  # a request not answered by then counts as failed (inf)

SOURCES = {"one address": "127.0.0.2", "many addresses": "127.0.0.2 to 127.0.0.13"}
ATTACKS: dict[str, Callable[[int], list[str]]] = {
    "one address": lambda n: [
        f"idle:127.0.0.2:{n // 2}",
        f"slowloris:127.0.0.2:{n // 4}",
        f"silent:127.0.0.2:{n // 4}",
    ],
    "many addresses": lambda n: [
        f"{mode}:127.0.0.{2 + i}:{n // 36}" for i in range(12) for mode in ("idle", "slowloris", "silent")
    ],
}


@pytest.fixture
def daemon() -> Iterator[EpmdServer]:
    server = EpmdServer("127.0.0.1:0", max_connections=MAX_CONNECTIONS)
    with server:
        yield server


def _timed(op: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.monotonic()
    try:
        value = op()
    except Exception:  # noqa: BLE001 - a failed request is what the test counts
        return float("inf"), None
    return time.monotonic() - t0, value


def _legit_rounds(address: str, rounds: int) -> dict[str, list[float]]:
    """``rounds`` times (every 0.25 s, the attack going on): a fresh client
    registers a name, another looks it up and lists the names. How long each
    request took (inf: failed or wrong answer)."""
    times: dict[str, list[float]] = {"register": [], "lookup": [], "list": []}
    for i in range(rounds):
        gevent.sleep(0.25)  # pacing: the rounds spread over many of the attackers' reconnect cycles
        name = f"legit{i}"
        owner = EpmdClient(address, timeout=CLIENT_TIMEOUT)
        asker = EpmdClient(address, timeout=CLIENT_TIMEOUT)
        try:
            t, info = _timed(lambda: owner.register(name, "127.0.0.1", 40000 + i))
            times["register"].append(t if info is not None and info.name == name else float("inf"))
            t, found = _timed(lambda: asker.lookup(name))
            times["lookup"].append(t if found is not None and found.port == 40000 + i else float("inf"))
            t, nodes = _timed(asker.list_nodes)
            times["list"].append(t if nodes is not None and name in {n.name for n in nodes} else float("inf"))
        finally:
            owner.close()
            asker.close()
    return times


@pytest.mark.parametrize("where", list(ATTACKS))
def test_legitimate_clients_are_served_within_2s_while_strangers_flood_the_port_mapper(
    where: str, daemon: EpmdServer, scenario: Any
) -> None:
    plan = ATTACKS[where](2 * MAX_CONNECTIONS)
    attacking = sum(int(item.split(":")[2]) for item in plan)
    rec = scenario(
        f"epmd_lockout_{where.replace(' ', '_')}",
        f"No lockout of the port mapper by strangers ({where})",
        f"{attacking} idle (two bytes, reopened when closed), slowloris and silent connections to a port "
        f"mapper serving {MAX_CONNECTIONS} at once, from {where} ({SOURCES[where]}: loopback, so exempt from the "
        f"per-address limits), while {ROUNDS} rounds of legitimate clients on 127.0.0.1 register a name, "
        "look it up and list the names, one after another.",
    )
    address = f"127.0.0.1:{daemon.port}"
    holder = EpmdClient(address, timeout=CLIENT_TIMEOUT)
    attacker = None
    try:
        held = holder.register("holder", "127.0.0.1", 39999)  # a registration made before the attack
        attacker = start_attacker(daemon.port, plan)
        wait_until(lambda: daemon.connection_count >= MAX_CONNECTIONS // 2, timeout=30)  # the attack is on
        rec.figure("attack_connections", attacking, "attacking connections, each reopened when closed")
        rec.figure("connections_at_start", daemon.connection_count, "connections served when the clients began")
        times = _legit_rounds(address, ROUNDS)
        every = [t for ts in times.values() for t in ts]
        ok = [t for t in every if t <= DEADLINE]
        rec.figure("legit_ok", len(ok), f"legitimate requests answered within {DEADLINE:g} s", f"of {len(every)}")
        for op, ts in times.items():
            finite = sorted(t for t in ts if t != float("inf"))
            if finite:
                rec.figure(f"{op}_median", finite[len(finite) // 2], f"median {op} time", "s")
                rec.figure(f"{op}_max", finite[-1], f"slowest {op}", "s")
        rec.figure("evictions", getattr(daemon, "evictions", 0), "connections evicted for newer ones")
        rec.figure("request_timeouts", getattr(daemon, "request_timeouts", 0), "connections closed: no request in time")
        assert attacker.proc.poll() is None, "the attacker stopped before the clients were done"
        late = {op: [round(t, 3) for t in ts if t > DEADLINE] for op, ts in times.items()}
        rec.check(len(ok) == len(every), f"every legitimate request answered within {DEADLINE:g} s (late: {late})")
        rec.check(daemon.connection_count <= MAX_CONNECTIONS, "connections stay within max_connections")
        rec.check(
            holder.registration("holder") == held and daemon.lookup("holder") is not None,
            "the registration made before the attack survived it (registrations are never evicted)",
        )
    finally:
        if attacker is not None:
            attacker.close()
        holder.close()
    rec.verify()


def test_a_connection_without_a_whole_request_is_closed_after_request_timeout() -> None:
    from gevent import socket

    with EpmdServer("127.0.0.1:0", request_timeout=0.5) as server:
        silent = socket.create_connection(("127.0.0.1", server.port))
        trickle = socket.create_connection(("127.0.0.1", server.port))
        t0 = time.monotonic()
        trickle.sendall(b"\x00\x05")  # a length, then a byte at a time: never a whole request in time
        for sock in (silent, trickle):
            sock.settimeout(10)
        with contextlib.suppress(OSError):  # (on a loaded machine the daemon may have closed it already)
            for _ in range(3):
                gevent.sleep(0.1)  # the trickle's pace (the test's own client, not a synchronisation)
                trickle.sendall(b"z")
        assert silent.recv(1) == b""
        assert trickle.recv(1) == b""
        assert time.monotonic() - t0 < 5.0  # well before packet_timeout (60 s)
        silent.close()
        trickle.close()
        wait_until(lambda: server.request_timeouts == 2 and server.connection_count == 0, timeout=5)
        with EpmdClient(f"127.0.0.1:{server.port}", timeout=5) as client:
            assert client.list_nodes() == []
