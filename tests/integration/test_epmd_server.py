"""The port mapper daemon over loopback (port 0), spoken to with raw bytes:
Erlang's requests as erl and epmd send them, joerl's extension, keep-alive
expiry on an injected clock, limits, and a matrix of malformed input that
must close only the offending connection."""

from __future__ import annotations

import resource
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import msgpack
import pytest
from gevent import socket

from joerl.epmd import EpmdClient, RegistrationRefused
from joerl.epmd import protocol as p
from joerl.epmd.server import EpmdServer
from joerl.testing import FakeClock, live_greenlets, wait_until

WAIT = 3.0


@pytest.fixture
def make_server(clock: FakeClock) -> Iterator[Callable[..., EpmdServer]]:
    gevent.get_hub()
    before = live_greenlets()
    servers: list[EpmdServer] = []

    def make(**kw: Any) -> EpmdServer:
        kw.setdefault("clock", clock)
        kw.setdefault("packet_timeout", 10.0)
        s = EpmdServer("127.0.0.1:0", **kw)
        s.start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
        assert s.connection_count == 0
    gevent.sleep(0)
    leaked = [g for g in live_greenlets() - before if not g.dead]
    assert leaked == [], f"greenlets left behind: {leaked}"


@pytest.fixture
def server(make_server: Callable[..., EpmdServer]) -> EpmdServer:
    return make_server()


@pytest.fixture
def socks() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for s in opened:
        s.close()


def connect(server: EpmdServer, socks: list[socket.socket]) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    socks.append(s)
    return s


def read_until_closed(s: socket.socket, timeout: float = WAIT) -> bytes:
    s.settimeout(timeout)
    out = b""
    while True:
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return out
        if not data:
            return out
        out += data


def call(server: EpmdServer, data: bytes, socks: list[socket.socket]) -> bytes:
    """Send one request, return everything the daemon said before closing."""
    s = connect(server, socks)
    s.sendall(data)
    return read_until_closed(s)


def alive2(
    server: EpmdServer, socks: list[socket.socket], name: str, port: int = 5000, high: int = 6, low: int = 5
) -> tuple[socket.socket, bytes]:
    s = connect(server, socks)
    s.sendall(p.Alive2Req(port, name, 77, 0, high, low).encode())
    size = 6 if high >= 6 else 4
    reply = b""
    while len(reply) < size:
        chunk = s.recv(size - len(reply))
        assert chunk, f"connection closed after {reply!r}"
        reply += chunk
    return s, reply


def ext(s: socket.socket, req: Any) -> Any:
    s.sendall(req.encode() if not isinstance(req, bytes) else req)
    dec = p.ExtReplyDecoder()
    while True:
        data = s.recv(65536)
        assert data, "connection closed without a reply"
        replies = dec.feed(data)
        if replies:
            assert len(replies) == 1
            return replies[0]


def names(server: EpmdServer, socks: list[socket.socket]) -> list[tuple[str, int]]:
    dec = p.ClassicReplyDecoder(p.NamesReq())
    assert dec.feed(call(server, b"\x00\x01n", socks)) is None
    reply = dec.feed_eof()
    assert reply.epmd_port == server.port
    return list(reply.nodes)


# -- Erlang's protocol ------------------------------------------------------------


def test_alive2_registration_lives_as_long_as_its_connection(server: EpmdServer, socks: list) -> None:
    s, reply = alive2(server, socks, "reg1", 40229)
    assert reply[:2] == b"v\x00"
    creation = struct.unpack(">I", reply[2:])[0]
    assert creation >= 4
    hit = call(server, p.PortPlease2Req("reg1").encode(), socks)
    assert hit == bytes.fromhex("77 00 9d25 4d 00 0006 0005 0004") + b"reg1\x00\x00"
    assert names(server, socks) == [("reg1", 40229)]
    node = server.lookup("reg1")
    assert node is not None and node.kind == "erlang" and node.creation == creation and node.host == ""
    s.close()
    wait_until(lambda: server.lookup("reg1") is None, what="name gone after close")
    assert call(server, p.PortPlease2Req("reg1").encode(), socks) == b"w\x01"


def test_any_byte_on_a_registration_ends_it(server: EpmdServer, socks: list) -> None:
    s, _ = alive2(server, socks, "junky")
    s.sendall(b"junk")
    assert read_until_closed(s) == b""
    wait_until(lambda: server.lookup("junky") is None)


def test_taken_name_is_refused_with_1_99(server: EpmdServer, socks: list) -> None:
    alive2(server, socks, "dup")
    _, reply = alive2(server, socks, "dup")
    assert reply == bytes.fromhex("76 01 00000063")
    _, reply = alive2(server, socks, "dup", high=5)
    assert reply == bytes.fromhex("79 01 0063")
    assert [n.name for n in server.nodes()] == ["dup"]


@pytest.mark.parametrize("name", [b"n" * 256, b"\xff\xfe", b"a@b", b"a\nb", b"a\rb", b"\x1b[2J", b"a\xc2\x85b"])
def test_refused_alive2_names(server: EpmdServer, socks: list, name: bytes) -> None:
    body = struct.pack(">BHBBHHH", 120, 5, 77, 0, 6, 5, len(name)) + name + b"\x00\x00"
    s = connect(server, socks)
    s.sendall(struct.pack(">H", len(body)) + body)
    assert s.recv(6) == bytes.fromhex("76 01 00000063")
    assert server.nodes() == []


def test_creations_as_epmd_assigns_them(make_server: Callable[..., EpmdServer], socks: list) -> None:
    server = make_server(wallclock=lambda: 1795681269.0)
    s, reply = alive2(server, socks, "c")
    assert struct.unpack(">I", reply[2:]) == (1795681270,)  # time + 1, as epmd 25
    s.close()
    wait_until(lambda: server.lookup("c") is None)
    s, reply = alive2(server, socks, "c")
    assert struct.unpack(">I", reply[2:]) == (1795681271,)  # remembered name: + 1
    s.close()
    wait_until(lambda: server.lookup("c") is None)
    _, reply = alive2(server, socks, "c", high=5)  # a v5 node gets cr % 3 + 1 as 16 bits
    assert reply == b"y\x00" + struct.pack(">H", 1795681272 % 3 + 1)
    _, reply = alive2(server, socks, "other")
    assert struct.unpack(">I", reply[2:]) == (1795681270,)


def test_names_newest_first_and_both_kinds(server: EpmdServer, socks: list) -> None:
    alive2(server, socks, "first", 1001)
    s = connect(server, socks)
    assert isinstance(ext(s, p.Register("second", "10.1.1.1", 1002, {"k": 1})), p.Registered)
    alive2(server, socks, "third", 1003)
    assert names(server, socks) == [("third", 1003), ("second", 1002), ("first", 1001)]
    listed = ext(connect(server, socks), p.ListNodes())
    assert [(n.name, n.kind, n.host) for n in listed.nodes] == [
        ("first", "erlang", ""),
        ("second", "joerl", "10.1.1.1"),
        ("third", "erlang", ""),
    ]
    hit = call(server, p.PortPlease2Req("second").encode(), socks)
    assert p.ClassicReplyDecoder(p.PortPlease2Req("second")).feed(hit).node.port == 1002


def test_dump(server: EpmdServer, socks: list) -> None:
    s, _ = alive2(server, socks, "gone", 7)
    s.close()
    wait_until(lambda: server.lookup("gone") is None)
    alive2(server, socks, "live", 8)
    raw = call(server, b"\x00\x01d", socks)
    dec = p.ClassicReplyDecoder(p.DumpReq())
    dec.feed(raw)
    dump = dec.feed_eof()
    assert dump.epmd_port == server.port
    assert dump.lines[0].startswith("active name     <live> at port 8, fd = ") and dump.lines[0].endswith("\n")
    assert dump.lines[1].startswith("old/unused name <gone>, port = 7, fd = ") and dump.lines[1].endswith(" \n")


def test_kill_refused_while_names_live(server: EpmdServer, socks: list) -> None:
    alive2(server, socks, "holder")
    assert call(server, b"\x00\x01k", socks) == b"NO"
    assert server.running


def test_kill_with_no_names_stops_the_daemon(server: EpmdServer, socks: list) -> None:
    assert call(server, b"\x00\x01k", socks) == b"OK"
    assert server.wait(WAIT)


def test_kill_in_relaxed_mode(make_server: Callable[..., EpmdServer], socks: list) -> None:
    server = make_server(relaxed_command_check=True)
    s, _ = alive2(server, socks, "holder")
    assert call(server, b"\x00\x01k", socks) == b"OK"
    assert server.wait(WAIT)
    assert read_until_closed(s) == b""


def test_stop_only_in_relaxed_mode(make_server: Callable[..., EpmdServer], socks: list) -> None:
    strict = make_server()
    alive2(strict, socks, "holder")
    assert call(strict, p.StopReq("holder").encode(), socks) == b""
    assert strict.lookup("holder") is not None
    relaxed = make_server(relaxed_command_check=True)
    s, _ = alive2(relaxed, socks, "holder")
    assert call(relaxed, p.StopReq("holder").encode(), socks) == b"STOPPED"
    assert relaxed.lookup("holder") is None
    assert read_until_closed(s) == b""  # the node's registration connection is closed
    assert call(relaxed, p.StopReq("nobody").encode(), socks) == b"NOEXIST"


def test_non_local_peers(make_server: Callable[..., EpmdServer], socks: list, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server()
    alive2(server, socks, "here", 99)
    monkeypatch.setattr(server, "_peer_is_local", lambda sock, peer: False)
    for request in (p.Alive2Req(1, "remote").encode(), b"\x00\x01d", b"\x00\x01k", p.StopReq("here").encode()):
        assert call(server, request, socks) == b""  # refused without a word
    assert names(server, socks) == [("here", 99)]  # NAMES and PORT_PLEASE2 are open to all
    assert call(server, p.PortPlease2Req("here").encode(), socks)[:2] == b"w\x00"
    reply = ext(connect(server, socks), p.Register("remote@h9", "10.0.0.9", 5))
    assert isinstance(reply, p.ExtError) and reply.code == "not_allowed" and "--shared" in reply.message
    shared = make_server(cookie=b"cluster-cookie")
    monkeypatch.setattr(shared, "_peer_is_local", lambda sock, peer: False)
    reply = ext(connect(shared, socks), p.Register("remote@h9", "10.0.0.9", 5))
    assert isinstance(reply, p.ExtError) and reply.code == "auth_failed", "no HMAC: refused"
    address = f"127.0.0.1:{shared.port}"
    with pytest.raises(RegistrationRefused) as info:
        EpmdClient(address).register("stranger@h9", "10.0.0.9", 5, cookie=b"another-cookie")
    assert info.value.code == "auth_failed" and shared.lookup("stranger@h9") is None
    with pytest.raises(RegistrationRefused) as info:
        EpmdClient(address).register("bare", "10.0.0.9", 5, cookie=b"cluster-cookie")
    assert info.value.code == "not_allowed", "a node on another host registers its full name"
    with EpmdClient(address) as member:
        node = member.register("remote@h9", "10.0.0.9", 5, cookie=b"cluster-cookie")
        assert node.name == "remote@h9" and shared.lookup("remote@h9") is not None
        assert EpmdClient(address).lookup("remote@h9") is not None, "looked up by its full name"
    wait_until(lambda: shared.lookup("remote@h9") is None, timeout=5, what="unregistered by its owner")


def test_peer_locality_rules(server: EpmdServer) -> None:
    class Sock:
        def getsockname(self) -> tuple[str, int]:
            return ("192.0.2.7", 4369)

    local = server._peer_is_local
    assert local(Sock(), ("127.0.0.1", 1)) and local(Sock(), ("127.8.9.10", 1))
    assert local(Sock(), ("::1", 1, 0, 0)) and local(Sock(), ("::ffff:127.0.0.1", 1, 0, 0))
    assert local(Sock(), ("192.0.2.7", 1))  # from the daemon's own address
    assert not local(Sock(), ("192.0.2.8", 1)) and not local(Sock(), ("::2", 1, 0, 0))
    assert not local(Sock(), ("garbage",))


def test_request_split_across_segments(server: EpmdServer, socks: list) -> None:
    alive2(server, socks, "split", 1234)
    s = connect(server, socks)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in p.PortPlease2Req("split").encode():
        s.sendall(bytes([b]))
        gevent.sleep(0.005)  # pacing, not synchronisation: each byte its own TCP segment
    assert read_until_closed(s)[:4] == b"w\x00\x04\xd2"


# -- malformed input: only the offending connection suffers ----------------------------

BAD_INPUT = {
    "length 0": b"\x00\x00",
    "length 0xFFFF": b"\xff\xffn",
    "length 3058": b"\x0b\xf2n",
    "unknown opcode": b"\x00\x01Q",
    "two NAMES in one write": b"\x00\x01n\x00\x01n",
    "bytes after PORT_PLEASE2": b"\x00\x02zx\xff",
    "alive2 too short": b"\x00\x0dx" + b"\x00" * 12,
    "alive2 nlen too big": struct.pack(">HBHBBHHH", 15, 120, 1, 77, 0, 6, 5, 99) + b"abcd",
    "alive2 NUL in name": struct.pack(">HBHBBHHH", 16, 120, 1, 77, 0, 6, 5, 3) + b"a\x00b\x00\x00",
    "port_please empty": b"\x00\x01z",
    "port_please bad utf8": b"\x00\x03z\xff\xfe",
    "stop empty": b"\x00\x01s",
    "ext garbage": b"\x00\x02J\xc1",
    "ext not a map": b"\x00\x02J\x01",
    "ext wrong field type": struct.pack(">HB", 20, 74) + msgpack.packb({"op": "lookup", "name": 1.5}),
    "ext then classic": p.Ping().encode() + b"\x00\x01n",
    "ext length beyond data then close": b"\x01\x00J\x80",
    "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "tls hello": bytes.fromhex("16030100a5010000a10303") + b"\x00" * 40,
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_malformed_input_closes_only_that_connection(server: EpmdServer, socks: list, case: str) -> None:
    holder, _ = alive2(server, socks, "bystander", 4242)
    watcher = connect(server, socks)
    assert isinstance(ext(watcher, p.Register("watcher", "h", 4243)), p.Registered)
    s = connect(server, socks)
    s.sendall(BAD_INPUT[case])
    if case == "ext length beyond data then close":
        s.shutdown(socket.SHUT_WR)
    reply = read_until_closed(s)
    assert reply == b"", f"{case}: got a reply {reply!r}"
    assert names(server, socks) == [("watcher", 4243), ("bystander", 4242)]
    assert isinstance(ext(watcher, p.KeepAlive("watcher")), p.KeepAliveAck)
    assert server.running


def test_a_failing_handler_never_takes_the_daemon_down(
    server: EpmdServer, socks: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(epmd_port: int) -> bytes:
        raise RuntimeError("injected")

    monkeypatch.setattr(server._table, "names_reply", boom)
    assert call(server, b"\x00\x01n", socks) == b""
    monkeypatch.undo()
    assert names(server, socks) == []


# -- joerl's extension ---------------------------------------------------------------


def test_extension_session(server: EpmdServer, socks: list) -> None:
    s = connect(server, socks)
    assert ext(s, p.Ping()).daemon == "joerl-epmd"
    reg = ext(s, p.Register("ext1", "10.0.0.5", 7000, {"role": "db"}))
    assert isinstance(reg, p.Registered) and reg.node.creation >= 4 and reg.node.kind == "joerl"
    assert ext(s, p.Lookup("ext1")).node == reg.node
    assert ext(s, p.Lookup("nobody")).node is None
    assert ext(s, p.KeepAlive("ext1")) == p.KeepAliveAck()
    again = ext(s, p.Register("ext2", "h", 1))
    assert isinstance(again, p.ExtError) and again.code == "already_registered"
    other = connect(server, socks)
    taken = ext(other, p.Register("ext1", "h", 1))
    assert isinstance(taken, p.ExtError) and taken.code == "name_in_use"
    assert ext(other, p.Unregister("ext1")) == p.Unregistered("ext1", False)  # not its name
    assert ext(other, p.KeepAlive("ext1")).code == "not_registered"
    assert ext(s, p.Unregister("ext1")) == p.Unregistered("ext1", True)
    assert server.lookup("ext1") is None
    body = msgpack.packb({"op": "teleport"})
    unknown = ext(s, struct.pack(">HB", len(body) + 1, 74) + body)
    assert isinstance(unknown, p.ExtError) and unknown.code == "unknown_op"
    assert ext(s, p.Ping()).daemon == "joerl-epmd"  # the connection survived the refusals


def test_one_shot_queries_are_closed_by_the_daemon(server: EpmdServer, socks: list) -> None:
    alive2(server, socks, "n", 77)
    for req in (p.Lookup("n", close=True), p.ListNodes(close=True), p.Ping(close=True)):
        raw = call(server, req.encode(), socks)  # the reply, then the daemon closes
        (reply,) = p.ExtReplyDecoder().feed(raw)
        assert not isinstance(reply, p.ExtError)
    assert call(server, p.Ping(close=True).encode() + p.Ping().encode(), socks) == b""  # nothing after it


@pytest.mark.parametrize(
    "req, code",
    [
        (p.Register("x", "h", 0), "bad_request"),
        (p.Register("x", "h" * 256, 1), "too_large"),
        (p.Register("x", "h", 1, {"blob": b"x" * 20000}), "too_large"),
        (p.Register("x", "h", 1, extra=b"e" * 1021), "too_large"),
    ],
)
def test_extension_limits(server: EpmdServer, socks: list, req: p.Register, code: str) -> None:
    reply = ext(connect(server, socks), req)
    assert isinstance(reply, p.ExtError) and reply.code == code, reply


def test_extension_invalid_name(server: EpmdServer, socks: list) -> None:
    body = msgpack.packb({"op": "register", "name": "a@b@c", "host": "h", "port": 1})
    reply = ext(connect(server, socks), struct.pack(">HB", len(body) + 1, 74) + body)
    assert isinstance(reply, p.ExtError) and reply.code == "invalid_name" and "'@'" in reply.message


def test_keepalive_expiry_on_injected_clock(
    server: EpmdServer, socks: list, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    live = connect(server, socks)
    ext(live, p.Register("live", "h", 1))
    silent = connect(server, socks)
    ext(silent, p.Register("silent", "h", 2))  # then says nothing: a half-open connection
    alive2(server, socks, "erlnode")  # ALIVE2 registrations need no keep-alive
    clock.advance(50)
    assert ext(live, p.KeepAlive("live")) == p.KeepAliveAck()
    assert server.last_seen("live") == clock.now
    assert server.expire_stale() == []
    clock.advance(11)
    with caplog.at_level("WARNING", logger="joerl.epmd"):
        assert server.expire_stale() == ["silent"]
    assert "expired silent" in caplog.text
    assert read_until_closed(silent) == b""  # its connection is closed too
    assert sorted(n.name for n in server.nodes()) == ["erlnode", "live"]


def test_expiry_sweeper_runs_by_itself(make_server: Callable[..., EpmdServer], socks: list, clock: FakeClock) -> None:
    server = make_server(keepalive_timeout=60, sweep_interval=0.02)
    s = connect(server, socks)
    ext(s, p.Register("swept", "h", 1))
    clock.advance(61)
    wait_until(lambda: server.lookup("swept") is None, what="sweeper expired the name")


def test_idle_connections_are_closed(make_server: Callable[..., EpmdServer], socks: list) -> None:
    server = make_server(packet_timeout=0.3)
    holder, _ = alive2(server, socks, "holder")
    ext_holder = connect(server, socks)
    ext(ext_holder, p.Register("extholder", "h", 1))
    idle = connect(server, socks)
    half = connect(server, socks)
    half.sendall(b"\x00\x05zab")
    t0 = time.monotonic()
    assert read_until_closed(idle) == b""
    assert read_until_closed(half) == b""
    assert 0.2 < time.monotonic() - t0 < 2.5
    assert sorted(n.name for n in server.nodes()) == ["extholder", "holder"]  # registered: never timed out


# -- load and limits -----------------------------------------------------------------------


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"needs {need} file descriptors, hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def test_1000_concurrent_connections(server: EpmdServer, socks: list) -> None:
    n = 1000
    _raise_fd_limit(2 * n + 200)

    def register(i: int) -> bytes:
        return alive2(server, socks, f"n{i}", 10000 + i)[1]

    jobs = [gevent.spawn(register, i) for i in range(n)]
    gevent.joinall(jobs, timeout=30, raise_error=True)
    assert all(j.value[:2] == b"v\x00" for j in jobs)
    assert len(server.nodes()) == n
    listed = names(server, socks)
    assert sorted(listed) == sorted((f"n{i}", 10000 + i) for i in range(n))

    def lookup(i: int) -> bytes:
        s = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        try:
            s.sendall(p.PortPlease2Req(f"n{i}").encode())
            return read_until_closed(s)
        finally:
            s.close()

    jobs = [gevent.spawn(lookup, i) for i in range(n)]
    gevent.joinall(jobs, timeout=30, raise_error=True)
    assert all(j.value[:4] == b"w\x00" + struct.pack(">H", 10000 + i) for i, j in enumerate(jobs))
    for s in socks:
        s.close()
    wait_until(lambda: not server.nodes(), timeout=10, what="every name gone")


def test_connection_limit_queues_then_serves(make_server: Callable[..., EpmdServer], socks: list) -> None:
    server = make_server(max_connections=3)
    held = [alive2(server, socks, f"h{i}")[0] for i in range(3)]
    waiting = connect(server, socks)  # accepted by the kernel, not served yet
    waiting.sendall(b"\x00\x01n")
    waiting.settimeout(0.3)
    with pytest.raises(socket.timeout):
        waiting.recv(10)
    held[0].close()
    assert read_until_closed(waiting)[4:] == b"name h2 at port 5000\nname h1 at port 5000\n"


# -- per-address limits (issue 7) -------------------------------------------------


def test_per_address_limits_close_what_is_over_and_serve_the_rest() -> None:
    """With the limits applied to loopback, a burst past the rate and past the
    live-connection cap is closed at once; the daemon still serves a client."""
    from gevent import socket as gsocket

    from joerl.epmd import EpmdClient, EpmdServer

    clock = [0.0]
    server = EpmdServer(
        "127.0.0.1:0", limit_loopback=True, max_per_address=5, rate_per_address=10.0, clock=lambda: clock[0]
    )
    server.start()
    socks = []
    try:
        for _ in range(12):
            socks.append(gsocket.create_connection(("127.0.0.1", server.port)))
        wait_until(lambda: server.refused >= 7, timeout=5)
        assert server.refused == 7  # 5 live connections admitted, the rest closed
        for sock in socks:
            sock.close()
        socks.clear()
        clock[0] += 1.0  # a second later the rate allows more
        wait_until(lambda: server._admission.live() == 0, timeout=5)
        with EpmdClient(f"127.0.0.1:{server.port}", timeout=5) as client:
            assert client.ping()
            assert client.list_nodes() == []
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def test_loopback_is_not_limited_by_default() -> None:
    from joerl.epmd import EpmdServer

    server = EpmdServer("127.0.0.1:0", max_per_address=1, rate_per_address=1.0)
    assert not server.limit_loopback


FORGED = "x at port 1\nname forged"  # what a name with a newline would write into NAMES


def test_names_with_control_characters_never_reach_the_listing(server: EpmdServer, socks: list) -> None:
    """A raw registration whose name holds a newline would forge a line in
    every NAMES reply (and break every client's names()): both protocols
    refuse it, and the listing stays whole."""
    from joerl.epmd import EpmdClient

    honest, _ = alive2(server, socks, "honest", 4000)
    raw = FORGED.encode()
    body = struct.pack(">BHBBHHH", 120, 6000, 77, 0, 6, 5, len(raw)) + raw + b"\x00\x00"
    s = connect(server, socks)
    s.sendall(struct.pack(">H", len(body)) + body)
    assert s.recv(6) == bytes.fromhex("76 01 00000063")
    packed = msgpack.packb({"op": "register", "name": FORGED, "host": "h", "port": 6001})
    reply = ext(connect(server, socks), struct.pack(">HB", len(packed) + 1, 74) + packed)
    assert isinstance(reply, p.ExtError) and reply.code == "invalid_name" and "U+000A" in reply.message
    assert names(server, socks) == [("honest", 4000)]
    assert [n.name for n in server.nodes()] == ["honest"]
    with EpmdClient(f"127.0.0.1:{server.port}", timeout=WAIT) as client:
        assert client.names() == [("honest", 4000)]
        with pytest.raises(p.InvalidName, match="U\\+000A"):
            client.register(FORGED, "h", 6002)
    honest.close()
