"""The port mapper under faults: killed and restarted under live nodes, and
hammered by a thousand clients of which a tenth send garbage.

The port mapper is a real process (``python -m joerl.epmd 127.0.0.1:PORT``);
to restart it on the same port, the port is picked with
:func:`joerl.testing.free_port`. Nodes are ``serve`` processes of
``tests/multiprocess/node_main.py``.
"""

from __future__ import annotations

import os
import random
import socket as _stdsocket
import struct
import time
from collections.abc import Callable
from typing import Any

import gevent
import pytest
from _reliakit import COOKIE, WAIT, epmd_argv, node_argv, rss_kb
from gevent import socket
from gevent.event import Event
from gevent.queue import Empty, Queue

from joerl.actor import ActorContext
from joerl.epmd import EpmdClient
from joerl.epmd.client import DEFAULT_KEEPALIVE, DEFAULT_RETRY
from joerl.errors import EpmdError
from joerl.node.names import node_name as full
from joerl.node.node import DistributedSystem
from joerl.testing import ChildProcess, fields, free_port

pytestmark = pytest.mark.reliability


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Pongs:
    """A process of the test's node that hands every ``("pong", n)`` to a queue."""

    def __init__(self, node: DistributedSystem) -> None:
        self.queue: Queue = Queue()
        ready = Event()

        def body(ctx: ActorContext) -> None:
            ready.set()
            while True:
                self.queue.put(ctx.receive())

        self.pid = node.spawn_fn(body).pid
        assert ready.wait(WAIT)

    def collect(self, wanted: set[int], timeout: float) -> set[int]:
        """Wait (at most ``timeout``) for the pongs numbered ``wanted``; return those missing."""
        missing = set(wanted)
        deadline = time.monotonic() + timeout
        while missing:
            try:
                msg = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                break
            if msg.__class__ is tuple and msg[0] == "pong":
                missing.discard(msg[1])
        return missing


@pytest.mark.timeout(90)
def test_port_mapper_killed_and_restarted_under_10_live_nodes(
    start: Callable[[list[str]], ChildProcess], scenario: Any
) -> None:
    n_nodes = 10
    rec = scenario(
        "epmd_restart",
        "the port mapper killed and restarted under 10 live nodes",
        f"{n_nodes} `serve` node processes and this process's node on a port mapper process; links "
        "this node -> each node and node i -> node i+1 (a ring, through `fwd`); rounds of 20 pings over "
        "those links every 50 ms throughout; kill -9 of the port mapper, 1 s down, restart on the same "
        f"port. The nodes' registration keep-alive is the default ({DEFAULT_KEEPALIVE:.0f} s; a lost "
        f"registration is retried every {DEFAULT_RETRY:.0f} s): DistributedSystem does not expose "
        "either, so the defaults are what is measured.",
    )
    address = f"127.0.0.1:{free_port()}"
    daemon = start(epmd_argv(address))
    daemon.wait_line("READY")
    names = [f"n{i}" for i in range(n_nodes)]
    t0 = time.monotonic()
    nodes = [start(node_argv(name, address, "serve")) for name in names]
    ports = {full(name): int(child.wait_ready()["port"]) for name, child in zip(names, nodes, strict=False)}
    rec.figure("start_s", time.monotonic() - t0, f"time to start {n_nodes} node processes", "s")
    here = DistributedSystem("tester", "127.0.0.1:0", address, cookie=COOKIE, start_epmd=False)
    try:
        pongs = Pongs(here)
        send = here.system.send
        seq = iter(range(10**9))
        # Every link: this node to each node, and node i to node i + 1.
        routes = [("echo", name) for name in names]
        routes += [(("echo", names[i]), names[(i + 1) % n_nodes]) for i in range(n_nodes)]  # type: ignore[misc]

        def ping_round() -> tuple[int, set[int]]:
            wanted = set()
            for route in routes:
                n = next(seq)
                wanted.add(n)
                if isinstance(route[1], str) and route[0] == "echo":
                    send(route, ("ping", n, pongs.pid))
                else:
                    send(route[0], ("fwd", route[1], ("ping", n, pongs.pid)))
            return len(wanted), pongs.collect(wanted, timeout=10.0)

        sent, missing = ping_round()  # brings every link up (dials need the port mapper)
        assert not missing, f"links did not come up: {len(missing)} pings unanswered"
        rounds: list[tuple[float, float, int, int]] = []  # (start, seconds, sent, lost)
        stop = Event()

        def pinger() -> None:
            while not stop.is_set():
                t = time.monotonic()
                sent, missing = ping_round()
                rounds.append((t, time.monotonic() - t, sent, len(missing)))
                stop.wait(0.05)  # the pace of the load, not a synchronisation

        g = gevent.spawn(pinger)
        try:
            probe = EpmdClient(address, timeout=2.0)
            registered = {info.name for info in probe.list_nodes()}
            assert registered >= {full(n) for n in [*names, "tester"]}, registered
            rss_before = rss_kb(daemon.pid)

            t_kill = time.monotonic()
            daemon.proc.kill()
            daemon.wait()
            stop.wait(1.0)  # the outage: the links must carry on without the port mapper
            try:
                probe.lookup("n0")
                down_refused = False
            except EpmdError:
                down_refused = True
            t_restart = time.monotonic()
            daemon = start(epmd_argv(address))
            daemon.wait_line("READY")
            t_up = time.monotonic()

            seen: dict[str, float] = {}

            def everyone_back() -> bool:
                try:
                    infos = probe.list_nodes()
                except EpmdError:
                    return False
                now = time.monotonic()
                for info in infos:
                    seen.setdefault(info.name, now)
                    if info.name in ports:
                        assert info.port == ports[info.name], f"{info.name} registered another port"
                return {full(n) for n in [*names, "tester"]} <= set(seen)

            deadline = t_up + DEFAULT_KEEPALIVE
            while not everyone_back():
                if time.monotonic() > deadline:
                    break
                stop.wait(0.05)  # no event announces a registration at a daemon in another process
            back = {name: seen[name] - t_up for name in seen}
            stop.wait(0.5)  # a few more rounds with the port mapper back
        finally:
            stop.set()
            g.join(15)
        # New links after the restart (they need lookups): node i -> node i + 5.
        wanted = set()
        for i in range(n_nodes // 2):
            n = next(seq)
            wanted.add(n)
            send(("echo", names[i]), ("fwd", names[i + n_nodes // 2], ("ping", n, pongs.pid)))
        new_links_missing = pongs.collect(wanted, timeout=10.0)
        probe.close()
    finally:
        here.shutdown()

    outage = [r for r in rounds if t_kill <= r[0] <= t_up]
    rec.figure("nodes", n_nodes + 1, "nodes registered (10 processes + this one)")
    rec.figure("down_ms", ms(t_restart - t_kill), "port mapper down (kill -9 to restart)", "ms")
    rec.figure("restart_ms", ms(t_up - t_restart), "restart to READY", "ms")
    rec.figure("reregistered", len([n for n in back if n in ports or n == "tester"]), "nodes registered again")
    rec.figure(
        "reregister_ms_median",
        ms(percentile(list(back.values()), 0.5)) if back else None,
        "restart to a node registered again (median)",
        "ms",
    )
    rec.figure(
        "reregister_ms", ms(max(back.values())) if back else None, "restart to every node registered again", "ms"
    )
    rec.figure("pings", sum(r[2] for r in rounds), "pings over live links during the test")
    rec.figure("pings_lost", sum(r[3] for r in rounds), "pings unanswered")
    rec.figure("pings_during_outage", sum(r[2] for r in outage), "pings while the port mapper was down")
    rec.figure("pings_lost_during_outage", sum(r[3] for r in outage), "of which unanswered")
    rec.figure("round_ms_max", ms(max(r[1] for r in rounds)), "slowest round of 20 pings", "ms")
    rec.figure("new_links_after", n_nodes // 2 - len(new_links_missing), "new links made after the restart (of 5)")
    rec.figure("epmd_rss_kb", rss_before, "port mapper RSS before the kill", "KiB")
    rec.check(down_refused, "the port mapper was really down (a lookup failed)")
    rec.check(outage and sum(r[3] for r in outage) == 0, "every ping over a live link answered during the outage")
    rec.check(sum(r[3] for r in rounds) == 0, "every ping answered, before, during and after")
    rec.check({full(n) for n in [*names, "tester"]} <= set(back), "all 11 nodes registered again")
    rec.check(
        back and max(back.values()) < DEFAULT_KEEPALIVE,
        f"registered again within a keep-alive interval ({DEFAULT_KEEPALIVE:.0f} s)",
    )
    rec.check(not new_links_missing, "new links work after the restart (lookups served)")
    rec.verify()


# -- a thousand clients ----------------------------------------------------------------------------


def _garbage(kind: int, rng: random.Random) -> tuple[bytes, bool]:
    """(bytes to send, hold the connection open afterwards)."""
    if kind == 0:  # noise
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))), False
    if kind == 1:  # a length of 65535 and a few bytes: never completes
        return struct.pack(">H", 0xFFFF) + os.urandom(100), True
    if kind == 2:  # an extension request whose body is not msgpack
        body = b"J\xc1\xc1garbage"
        return struct.pack(">H", len(body)) + body, False
    if kind == 3:  # one byte, then silence (slowloris)
        return b"\x00", True
    if kind == 4:  # ALIVE2 with a name length running past the body
        body = b"x" + struct.pack(">HBBHHH", 4000, 77, 0, 6, 6, 500) + b"abc"
        return struct.pack(">H", len(body)) + body, False
    return b"\x00\x00", False  # an empty request


@pytest.mark.timeout(90)
def test_1000_concurrent_port_mapper_clients_10_percent_garbage(
    start: Callable[[list[str]], ChildProcess], scenario: Any
) -> None:
    n_clients, garbage_share = 1000, 0.10
    n_bad = int(n_clients * garbage_share)
    rec = scenario(
        "epmd_clients",
        "1000 concurrent port mapper clients, 10% sending garbage",
        f"a port mapper process with 10 registered names; {n_clients} clients started at once from this "
        f"process (greenlets, one connection each): {n_clients - n_bad} good ones (joerl lookup, "
        f"PORT_PLEASE2, NAMES, joerl list, in turn) and {n_bad} sending garbage (noise, a frame that "
        "never completes, a bad extension body, one byte then silence, a malformed ALIVE2, an empty "
        "request).",
    )
    daemon = start(epmd_argv("127.0.0.1:0"))
    address = f"127.0.0.1:{fields(daemon.wait_line('READY'))['port']}"
    owner = EpmdClient(address)
    services = {f"svc{i}": 20000 + i for i in range(10)}
    try:
        for name, port in services.items():
            owner.register(name, "127.0.0.1", port)
        rss_before = rss_kb(daemon.pid)
        go = Event()
        latencies: list[float] = []
        failures: list[str] = []
        bad_outcomes = {"closed_by_daemon": 0, "answered": 0, "not_closed": 0, "held_open": 0}
        held: list[Any] = []
        host, port_text = address.rsplit(":", 1)

        def good(i: int) -> None:
            client = EpmdClient(address, timeout=20.0)
            name = f"svc{i % 10}"
            go.wait()
            t = time.monotonic()
            try:
                kind = i % 4
                if kind == 0:
                    info = client.lookup(name)
                    ok = info is not None and info.port == services[name]
                elif kind == 1:
                    info = client.port_please(name)
                    ok = info is not None and info.port == services[name]
                elif kind == 2:
                    ok = set(services) <= {n for n, _ in client.names()}
                else:
                    ok = set(services) <= {n.name for n in client.list_nodes()}
                latencies.append(time.monotonic() - t)
                if not ok:
                    failures.append(f"client {i}: wrong answer")
            except Exception as exc:  # noqa: BLE001 - every failure is a figure
                failures.append(f"client {i}: {type(exc).__name__}: {exc}")

        def bad(i: int) -> None:
            data, hold = _garbage((i // 10) % 6, random.Random(i))
            go.wait()
            sock = socket.create_connection((host, int(port_text)), timeout=20.0)
            try:
                sock.sendall(data)
                if hold:
                    held.append(sock)
                    bad_outcomes["held_open"] += 1
                    sock = None
                    return
                sock.shutdown(_stdsocket.SHUT_WR)  # what a client does when it is done
                sock.settimeout(10.0)
                got = b""
                while True:
                    try:
                        chunk = sock.recv(4096)
                    except TimeoutError:
                        bad_outcomes["not_closed"] += 1
                        return
                    except OSError:  # reset by the daemon
                        chunk = b""
                    if not chunk:
                        break
                    got += chunk
                bad_outcomes["answered" if got else "closed_by_daemon"] += 1
            finally:
                if sock is not None:
                    sock.close()

        kinds = [bad if i % 10 == 9 else good for i in range(n_clients)]
        assert kinds.count(bad) == n_bad
        greenlets = [gevent.spawn(kind, i) for i, kind in enumerate(kinds)]
        gevent.sleep(0)  # let every client reach the start line
        t0 = time.monotonic()
        go.set()
        gevent.joinall(greenlets, timeout=60)
        wall = time.monotonic() - t0
        unfinished = sum(1 for g in greenlets if not g.dead)
        crashed = [g.exception for g in greenlets if g.dead and g.exception is not None]
        rss_after = rss_kb(daemon.pid)
        still_serving = EpmdClient(address, timeout=5.0).lookup("svc3")
        for sock in held:
            sock.close()
        gevent.killall([g for g in greenlets if not g.dead])
    finally:
        owner.close()

    n_good = n_clients - n_bad
    rec.figure("clients", n_clients, "clients")
    rec.figure("good", n_good, "good clients")
    rec.figure(
        "served", len(latencies) - sum(1 for f in failures if "wrong answer" in f), "good clients served correctly"
    )
    rec.figure("failed", len(failures), "good clients failed")
    rec.figure("garbage", n_bad, "garbage clients")
    labels = {
        "closed_by_daemon": "garbage clients: closed by the daemon without a reply",
        "answered": "garbage clients: answered (an error reply), then closed",
        "not_closed": "garbage clients: half-closed, yet the daemon kept the connection 10 s",
        "held_open": "garbage clients holding an unfinished request open (the daemon waits up to its "
        "packet timeout, 60 s)",
    }
    for key, value in bad_outcomes.items():
        rec.figure(f"garbage_{key}", value, labels[key])
    rec.figure("wall_ms", ms(wall), "all clients done", "ms")
    rec.figure("latency_ms_p50", ms(percentile(latencies, 0.5)), "good client latency, median", "ms")
    rec.figure("latency_ms_p99", ms(percentile(latencies, 0.99)), "good client latency, 99th percentile", "ms")
    rec.figure("latency_ms_max", ms(max(latencies)), "good client latency, worst", "ms")
    rec.figure("epmd_rss_growth_kb", rss_after - rss_before, "port mapper RSS growth", "KiB")
    if failures:
        rec.note(f"{len(failures)} good clients failed, e.g.: {'; '.join(failures[:3])}")
    rec.check(not failures and len(latencies) == n_good, "every good client served, with the right answer")
    rec.check(unfinished == 0 and not crashed, "every client finished")
    rec.check(daemon.alive() and still_serving is not None, "the port mapper still serves")
    rec.check(bad_outcomes["not_closed"] == 0, "every garbage connection that ended was closed by the daemon")
    rec.verify()
