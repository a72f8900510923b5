"""EpmdClient against joerl's daemon over loopback (port 0): registration,
lookup, listing, duplicate names, keep-alives, a registered process killed
with -9, the daemon restarted under live clients, errors and timeouts."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from gevent import socket, subprocess

from joerl.epmd import (
    EpmdClient,
    EpmdClientClosed,
    EpmdConnectionError,
    EpmdProtocolError,
    EpmdServer,
    EpmdTimeout,
    InvalidName,
    NameInUse,
    NodeInfo,
    RegistrationRefused,
    ping,
)
from joerl.errors import EpmdError
from joerl.testing import FakeClock, live_greenlets, wait_until

WAIT = 3.0


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    """Servers and clients to close after the test; then no greenlet may be left."""
    socket.getaddrinfo("127.0.0.1", 1)  # start the resolver's threads before counting
    before = live_greenlets()
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        thing.close() if isinstance(thing, EpmdClient) else thing.stop()
    gevent.sleep(0)
    leaked = [g for g in live_greenlets() - before if not g.dead]
    assert leaked == [], f"greenlets left behind: {leaked}"


@pytest.fixture
def server(cleanup: list[Any], clock: FakeClock) -> EpmdServer:
    s = EpmdServer("127.0.0.1:0", clock=clock)
    s.start()
    cleanup.append(s)
    return s


@pytest.fixture
def make_client(cleanup: list[Any], server: EpmdServer) -> Callable[..., EpmdClient]:
    def make(address: str | None = None, **kw: Any) -> EpmdClient:
        kw.setdefault("timeout", WAIT)
        c = EpmdClient(address or f"127.0.0.1:{server.port}", **kw)
        cleanup.append(c)
        return c

    return make


def test_register_lookup_list_unregister(server: EpmdServer, make_client: Callable[..., EpmdClient]) -> None:
    a, b = make_client(), make_client()
    info = a.register("alpha", "10.0.0.1", 5001, metadata={"role": "web", "v": [1, 2]})
    assert isinstance(info, NodeInfo)
    assert (info.name, info.host, info.port, info.metadata, info.kind) == (
        "alpha",
        "10.0.0.1",
        5001,
        {"role": "web", "v": [1, 2]},
        "joerl",
    )
    assert info.creation >= 4 and info.address == "10.0.0.1:5001"
    assert b.lookup("alpha") == info
    assert b.lookup("nobody") is None
    b.register("beta", "10.0.0.2", 5002)
    assert [n.name for n in a.list_nodes()] == ["alpha", "beta"]
    assert a.names() == [("beta", 5002), ("alpha", 5001)]
    assert a.registration("alpha") == info and a.registration("beta") is None
    assert a.daemon_kind == "joerl" and a.probe() == "joerl" and a.ping()
    assert a.unregister("alpha") is True
    assert b.lookup("alpha") is None  # gone when unregister returns
    assert a.unregister("alpha") is False
    assert a.registration("alpha") is None


def test_erlang_registrations_are_listed_with_the_daemons_host(
    server: EpmdServer, make_client: Callable[..., EpmdClient]
) -> None:
    from joerl.epmd import protocol as p

    s = socket.create_connection(("127.0.0.1", server.port))
    try:
        s.sendall(p.Alive2Req(40229, "erl1").encode())
        assert s.recv(6)[:2] == b"v\x00"
        c = make_client()
        (node,) = c.list_nodes()
        assert (node.name, node.host, node.port, node.kind, node.lowest_version) == (
            "erl1",
            "127.0.0.1",
            40229,
            "erlang",
            5,
        )
        assert c.lookup("erl1") == node
        assert c.port_please("erl1").port == 40229
    finally:
        s.close()


def test_duplicate_names(server: EpmdServer, make_client: Callable[..., EpmdClient]) -> None:
    a, b = make_client(), make_client()
    a.register("dup", "h", 1)
    with pytest.raises(NameInUse) as info:
        b.register("dup", "h", 2)
    assert info.value.name == "dup" and "already registered" in str(info.value)
    with pytest.raises(NameInUse, match="by this client"):
        a.register("dup", "h", 3)
    assert b.registration("dup") is None and b.lookup("dup").port == 1


def test_invalid_names_and_ports(make_client: Callable[..., EpmdClient]) -> None:
    c = make_client()
    with pytest.raises(InvalidName, match="'@'"):
        c.register("node@host@x", "h", 1)
    with pytest.raises(InvalidName, match="'@'"):
        c.port_please("node@host")  # Erlang's requests hold alive names only
    with pytest.raises(InvalidName):
        c.lookup("")
    with pytest.raises(ValueError, match="port"):
        c.register("n", "h", 0)


def test_refusals_carry_their_code(server: EpmdServer, make_client: Callable[..., EpmdClient]) -> None:
    with pytest.raises(RegistrationRefused) as info:
        make_client().register("big", "h", 1, {"blob": b"x" * 20000})
    assert info.value.code == "too_large"


def test_several_clients_and_greenlets_do_not_interfere(
    server: EpmdServer, make_client: Callable[..., EpmdClient]
) -> None:
    clients = [make_client(keepalive_interval=0.05) for _ in range(5)]
    for i, c in enumerate(clients):
        c.register(f"n{i}", "h", 1000 + i)
    reader = make_client()
    jobs = [gevent.spawn(reader.lookup, f"n{i % 5}") for i in range(50)]
    gevent.joinall(jobs, timeout=10, raise_error=True)
    assert [j.value.port for j in jobs] == [1000 + i % 5 for i in range(50)]
    clients[0].close()
    assert [n.name for n in reader.list_nodes()] == ["n1", "n2", "n3", "n4"]
    with pytest.raises(EpmdClientClosed):
        clients[0].lookup("n1")


def test_keepalives_keep_a_registration(
    server: EpmdServer, clock: FakeClock, make_client: Callable[..., EpmdClient]
) -> None:
    c = make_client(keepalive_interval=0.05)
    c.register("kept", "h", 1)
    for _ in range(3):
        clock.advance(50)
        wait_until(lambda: server.last_seen("kept") == clock.now, what="a keep-alive arrived")
        assert server.expire_stale() == []


def test_expired_client_registers_again(
    server: EpmdServer, clock: FakeClock, make_client: Callable[..., EpmdClient]
) -> None:
    seen: list[NodeInfo] = []
    c = make_client(keepalive_interval=30, retry_interval=0.05, on_registered=seen.append)
    first = c.register("late", "h", 1)
    clock.advance(61)  # no keep-alive in time: the daemon drops the name and the connection
    assert server.expire_stale() == ["late"]
    wait_until(lambda: len(seen) == 2, what="registered again")
    assert seen[0] == first and seen[1].creation == first.creation + 1
    assert c.registration("late") == seen[1] == server.lookup("late")


def test_daemon_restart_under_live_clients(cleanup: list[Any]) -> None:
    first = EpmdServer("127.0.0.1:0", wallclock=lambda: 1_000_000.0)
    first.start()
    cleanup.append(first)
    port = first.port
    seen: dict[str, list[NodeInfo]] = {"a": [], "b": []}
    clients = []
    for name in ("a", "b"):
        c = EpmdClient(
            f"127.0.0.1:{port}", keepalive_interval=0.5, retry_interval=0.05, on_registered=seen[name].append
        )
        cleanup.append(c)
        c.register(name, "h", 7000 + len(clients), {"n": name})
        clients.append(c)
    first.stop()
    wait_until(
        lambda: all(c.registration(n) is None for c, n in zip(clients, "ab", strict=False)), what="clients noticed"
    )
    second = EpmdServer(("127.0.0.1", port), wallclock=lambda: 2_000_000.0)
    second.start()
    cleanup.append(second)
    t0 = time.monotonic()
    wait_until(lambda: all(len(v) == 2 for v in seen.values()), what="clients registered again")
    assert time.monotonic() - t0 < 0.5  # within one keep-alive interval
    for name in "ab":
        assert [i.creation for i in seen[name]] == [1_000_001, 2_000_001]
        assert second.lookup(name).metadata == {"n": name}


def test_daemon_gone_then_back_later(cleanup: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    s = EpmdServer("127.0.0.1:0")
    s.start()
    cleanup.append(s)
    port = s.port
    c = EpmdClient(f"127.0.0.1:{port}", keepalive_interval=0.2, retry_interval=0.05)
    cleanup.append(c)
    c.register("phoenix", "h", 1)
    s.stop()
    assert not c.ping()
    with pytest.raises(EpmdConnectionError, match="cannot reach"):
        c.lookup("phoenix")
    with caplog.at_level("WARNING", logger="joerl.epmd"):
        wait_until(lambda: caplog.text.count("registering phoenix again") >= 2, what="retries failed")
    s2 = EpmdServer(("127.0.0.1", port))
    s2.start()
    cleanup.append(s2)
    wait_until(lambda: s2.lookup("phoenix") is not None, what="registered again")


CHILD = textwrap.dedent("""
    import sys
    from gevent.event import Event
    from joerl.epmd import EpmdClient
    c = EpmdClient(sys.argv[1], keepalive_interval=30)
    info = c.register("victim", "127.0.0.1", 6123, {"pid": 1})
    print("READY creation=%d" % info.creation, flush=True)
    Event().wait()  # registered until killed
""")


def test_registered_process_killed_with_9_disappears_at_once(
    server: EpmdServer, make_client: Callable[..., EpmdClient]
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, f"127.0.0.1:{server.port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        with gevent.Timeout(20):
            line = proc.stdout.readline().decode()
        assert line.startswith("READY"), proc.stderr.read().decode()
        c = make_client()
        assert c.lookup("victim").port == 6123
        os.kill(proc.pid, signal.SIGKILL)
        t0 = time.monotonic()
        wait_until(lambda: c.lookup("victim") is None, what="victim gone")
        assert time.monotonic() - t0 < 1.0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def test_callback_may_close_the_client(
    server: EpmdServer, clock: FakeClock, make_client: Callable[..., EpmdClient]
) -> None:
    c = make_client(keepalive_interval=30, retry_interval=0.05)
    calls: list[NodeInfo] = []

    def on_registered(info: NodeInfo) -> None:
        calls.append(info)
        if len(calls) == 2:
            c.close()

    c.on_registered = on_registered
    c.register("selfclose", "h", 1)
    clock.advance(61)
    assert server.expire_stale() == ["selfclose"]
    wait_until(lambda: len(calls) == 2 and c.registration("selfclose") is None)
    wait_until(lambda: server.lookup("selfclose") is None)


def test_a_failing_callback_is_logged(
    server: EpmdServer, make_client: Callable[..., EpmdClient], caplog: pytest.LogCaptureFixture
) -> None:
    def boom(info: NodeInfo) -> None:
        raise RuntimeError("callback bug")

    c = make_client(on_registered=boom)
    with caplog.at_level("ERROR", logger="joerl.epmd"):
        c.register("cb", "h", 1)
    assert "on_registered callback failed" in caplog.text
    assert c.registration("cb") is not None


# -- errors -------------------------------------------------------------------------


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_nothing_listening(cleanup: list[Any]) -> None:
    address = f"127.0.0.1:{_free_port()}"
    c = EpmdClient(address, timeout=1)
    cleanup.append(c)
    for call in (lambda: c.lookup("x"), lambda: c.register("x", "h", 1), c.list_nodes, c.names):
        with pytest.raises(EpmdConnectionError, match="cannot reach the port mapper"):
            call()
    assert not c.ping() and not ping(address)


def test_silent_daemon_times_out(cleanup: list[Any]) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(10)
    accepted: list[socket.socket] = []

    def accept_and_stay_silent() -> None:
        while True:
            accepted.append(listener.accept()[0])

    g = gevent.spawn(accept_and_stay_silent)
    try:
        c = EpmdClient(f"127.0.0.1:{listener.getsockname()[1]}", timeout=0.2)
        t0 = time.monotonic()
        with pytest.raises(EpmdTimeout, match="no reply within 0.2s") as info:
            c.lookup("x")
        assert isinstance(info.value, TimeoutError) and isinstance(info.value, EpmdError)
        assert time.monotonic() - t0 < 1.0
        with pytest.raises(EpmdTimeout):
            c.register("x", "h", 1)
    finally:
        g.kill()
        for s in accepted:
            s.close()
        listener.close()


def test_garbage_daemon_gives_protocol_errors(cleanup: list[Any]) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(10)

    def answer_garbage() -> None:
        while True:
            s, _ = listener.accept()
            s.recv(1024)
            s.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            s.close()

    g = gevent.spawn(answer_garbage)
    try:
        c = EpmdClient(f"127.0.0.1:{listener.getsockname()[1]}", timeout=1)
        with pytest.raises(EpmdProtocolError, match="bad reply to Lookup"):
            c.lookup("x")
        with pytest.raises(EpmdProtocolError):
            c.register("x", "h", 1)
        with pytest.raises(EpmdProtocolError):
            c.names()
        assert not c.ping()
    finally:
        g.kill()
        listener.close()
