"""One node link over real loopback sockets (joerl/node/link_setup.py sets it up, joerl/node/connection.py runs it).

Listeners are gevent StreamServers on port 0. Tests wait on events (or poll a
condition with a deadline); each cleans up its servers, links and greenlets.
"""

from __future__ import annotations

import logging
import socket as stdsocket
import struct
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from gevent import socket as gsocket
from gevent.event import Event
from gevent.pool import Pool
from gevent.queue import Queue
from gevent.server import StreamServer

from joerl.errors import (
    AuthenticationError,
    ConnectionLost,
    DecodeError,
    HandshakeError,
    LinkClosed,
    LinkDown,
    MessageTooLarge,
    NodeUnreachable,
)
from joerl.node import protocol as p
from joerl.node.connection import Connection, LinkConfig
from joerl.node.link_setup import accept_handshake, dial
from joerl.node.protocol import (
    ACCEPT,
    DIALING,
    Handshake,
    HandshakeProtocolError,
    HandshakeRefused,
    NodeIdCollision,
    NodeIdentity,
    OversizedFrame,
    PeerHello,
    Role,
    SimultaneousConnect,
    Verdict,
)
from joerl.pid import Pid, Ref
from joerl.testing import Received, live_greenlets, wait_until

COOKIE = b"integration-cookie"
A = NodeIdentity("alpha", 0x0A, creation=1)
B = NodeIdentity("beta", 0x0B, creation=2)
PA, PB = Pid(0x0A, 1, 1), Pid(0x0B, 1, 2)
FAST = LinkConfig(handshake_timeout=3.0)


class Closes:
    """An on_closed callback that records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Connection, Any]] = []
        self.event = Event()

    def __call__(self, conn: Connection, reason: Any) -> None:
        self.calls.append((conn, reason))
        self.event.set()

    def wait(self, timeout: float = 5.0) -> Any:
        assert self.event.wait(timeout), "the link did not close"
        return self.calls[0][1]


class Listener:
    """A StreamServer that accepts node links; each outcome lands in ``accepted``."""

    def __init__(
        self,
        net: Net,
        identity: NodeIdentity,
        cookie: bytes,
        config: LinkConfig,
        decide: Callable[[PeerHello], Verdict] | None,
        on_accepted: Callable[[Connection], None] | None,
        start: bool,
    ) -> None:
        self.net, self.identity, self.cookie, self.config = net, identity, cookie, config
        self.decide, self.on_accepted, self.start = decide, on_accepted, start
        self.inbox = Received()
        self.closes = Closes()
        self.accepted: Queue = Queue()
        self.server = StreamServer(("127.0.0.1", 0), self._handle, spawn=Pool(20))
        self.server.start()
        self.address = ("127.0.0.1", self.server.server_port)

    def _handle(self, sock: Any, address: Any) -> None:
        try:
            conn = accept_handshake(
                sock, self.identity, self.cookie, config=self.config, decide=self.decide,
                handler=self.inbox, on_closed=self.closes, address=address,
            )  # fmt: skip
        except Exception as exc:
            self.accepted.put(exc)
            return
        self.net.conns.append(conn)
        if self.on_accepted is not None:
            self.on_accepted(conn)
        self.accepted.put(conn)
        if self.start:
            conn.start()
        conn.wait_closed()

    def next(self, timeout: float = 5.0) -> Any:
        return self.accepted.get(timeout=timeout)


class Net:
    """Owns every listener and connection of a test, and closes them."""

    def __init__(self) -> None:
        self.listeners: list[Listener] = []
        self.conns: list[Connection] = []

    def listen(
        self,
        identity: NodeIdentity = B,
        cookie: bytes = COOKIE,
        config: LinkConfig = FAST,
        decide: Callable[[PeerHello], Verdict] | None = None,
        on_accepted: Callable[[Connection], None] | None = None,
        start: bool = True,
    ) -> Listener:
        listener = Listener(self, identity, cookie, config, decide, on_accepted, start)
        self.listeners.append(listener)
        return listener

    def dial(self, listener: Listener, identity: NodeIdentity = A, cookie: bytes = COOKIE, **kw: Any) -> Connection:
        kw.setdefault("config", FAST)
        kw.setdefault("handler", Received())
        conn = dial(listener.address, identity, cookie, expected_peer=listener.identity.name, **kw)
        self.conns.append(conn)
        return conn

    def close(self) -> None:
        for conn in self.conns:
            conn.close("shutdown")
        for conn in self.conns:
            assert conn.wait_closed(5), f"{conn!r} did not wind down"
        for listener in self.listeners:
            listener.server.stop(timeout=2)


@pytest.fixture
def net() -> Iterator[Net]:
    gevent.get_hub()
    before = live_greenlets()
    n = Net()
    try:
        yield n
    finally:
        n.close()
    try:
        wait_until(lambda: not (live_greenlets() - before), timeout=3, what="no greenlet left behind")
    except AssertionError:
        raise AssertionError(f"greenlets left behind: {live_greenlets() - before}") from None


def seq(i: int) -> bytes:
    return struct.pack(">I", i)


# -- handshake ------------------------------------------------------------------------


def test_handshake_and_messages_both_ways(net: Net) -> None:
    listener = net.listen()
    closes = Closes()
    conn = net.dial(listener, on_closed=closes)
    accepted = listener.next()
    assert isinstance(accepted, Connection)
    assert conn.peer.name == "beta" and conn.peer.node_id == 0x0B and conn.peer.creation == 2
    assert accepted.peer.name == "alpha" and accepted.peer.creation == 1
    assert conn.role is Role.INITIATOR and accepted.role is Role.ACCEPTOR
    assert conn.status == accepted.status == "ok" and conn.flags == p.DEFAULT_FLAGS
    assert accepted.sock.getpeername() == conn.sock.getsockname()
    conn.start()
    conn.send(p.Send(PA, PB, b"hello"))
    conn.send_frame(conn.encoder.send(PA, PB, b"fast path"))
    conn.send(p.RegSend(PA, "logger", b"by name"))
    assert listener.inbox.wait_for(3) == [
        p.Send(PA, PB, b"hello"), p.Send(PA, PB, b"fast path"), p.RegSend(PA, "logger", b"by name")
    ]  # fmt: skip
    accepted.send(p.CallReply(Ref(0x0A, 5, 1), b"reply"))
    assert conn.handler.wait_for(1) == [p.CallReply(Ref(0x0A, 5, 1), b"reply")]  # type: ignore[union-attr]
    # Closing one side closes the other, each on_closed exactly once.
    accepted.close("normal")
    reason = closes.wait()
    assert isinstance(reason, ConnectionLost) and "closed the connection" in str(reason)
    assert listener.closes.wait() == "normal"
    conn.close("again")
    assert len(closes.calls) == 1 and len(listener.closes.calls) == 1
    with pytest.raises(ConnectionLost, match="is closed"):
        conn.send(p.Send(PA, PB, b"late"))
    with pytest.raises(ConnectionLost, match="is closed"):
        conn.send_term(PA, PB, ("late", 1))
    # The side that closed the link gets LinkClosed ("you closed it"), not
    # ConnectionLost ("it broke"); LinkDown catches both.
    for late in (
        lambda: accepted.send(p.Link(PB, PA)),
        lambda: accepted.send_term(PB, PA, ("late", 2)),
        lambda: accepted.send_payload(PB, PA, b"late"),
    ):
        with pytest.raises(LinkClosed, match="is closed: normal"):
            late()
    assert issubclass(LinkClosed, LinkDown) and issubclass(ConnectionLost, LinkDown)
    assert not issubclass(LinkClosed, ConnectionLost)


def test_frames_in_the_same_read_as_the_ack_are_not_lost(net: Net) -> None:
    """A raw acceptor writes ACK and two frames in one sendall: dial() keeps them for the link."""
    frames = p.encode_frame(p.Send(PB, PA, b"first")) + p.TICK_FRAME + p.encode_frame(p.Send(PB, PA, b"second"))
    done = Event()

    def raw_acceptor(sock: Any, address: Any) -> None:
        hs = Handshake(Role.ACCEPTOR, B, COOKIE)
        hs.feed(sock.recv(4096))
        hs.accept()
        sock.sendall(hs.data_to_send())
        events: list[Any] = []
        while not events:
            events = hs.feed(sock.recv(4096))
        sock.sendall(hs.data_to_send() + frames)
        done.wait(5)

    server = StreamServer(("127.0.0.1", 0), raw_acceptor, spawn=Pool(2))
    server.start()
    try:
        inbox = Received()
        conn = dial(("127.0.0.1", server.server_port), A, COOKIE, expected_peer="beta", handler=inbox)
        net.conns.append(conn)
        conn.start()
        assert inbox.wait_for(2) == [p.Send(PB, PA, b"first"), p.Send(PB, PA, b"second")]
        assert conn.stats.ticks_in == 1
    finally:
        done.set()
        server.stop(timeout=2)


def test_wrong_cookie_refused_on_both_sides_and_logged(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="joerl.node")
    listener = net.listen(cookie=b"the-right-one")
    with pytest.raises(AuthenticationError, match="cookie does not match"):
        net.dial(listener, cookie=b"a-wrong-one")
    refused = listener.next()
    assert isinstance(refused, AuthenticationError) and "failed the cookie challenge" in str(refused)
    text = caplog.text
    assert "node alpha refused the link with node 'beta'" in text  # the dialer's log
    assert "node beta refused the link with 'alpha'" in text  # the acceptor's log
    assert listener.inbox.messages == []


def test_wrong_cookie_not_a_single_message_passes(net: Net) -> None:
    """An initiator that streams frames right behind its (wrong) REPLY gets none delivered."""
    listener = net.listen()
    sock = gsocket.create_connection(listener.address)
    try:
        hs = Handshake(Role.INITIATOR, A, b"not-the-cookie")
        sock.sendall(hs.data_to_send())
        events: list[Any] = []
        while not events:
            events = hs.feed(sock.recv(4096))
        hs.accept()
        sock.sendall(hs.data_to_send() + p.encode_frame(p.Send(PA, PB, b"smuggled")) * 50)
        assert isinstance(listener.next(), AuthenticationError)
        rest = b""
        while chunk := sock.recv(4096):
            rest += chunk
        assert b"auth_failed" in rest  # the ABORT, then EOF
    finally:
        sock.close()
    assert listener.inbox.messages == []


def test_id_collision_refused_with_clear_error(net: Net) -> None:
    listener = net.listen(identity=NodeIdentity("beta", A.node_id))
    with pytest.raises(NodeIdCollision, match="id_collision"):
        net.dial(listener)
    local = listener.next()
    assert isinstance(local, NodeIdCollision) and "rename one of them" in str(local)


def test_id_collision_with_another_linked_node(net: Net) -> None:
    """The node's decide() finds the id taken by another peer."""
    linked = {0x0A: "gamma"}

    def decide(peer: PeerHello) -> Verdict:
        other = linked.get(peer.node_id)
        if other is not None and other != peer.name:
            return Verdict.refuse("id_collision", f"node {other!r} already uses id {peer.node_id:#x}")
        return ACCEPT

    listener = net.listen(decide=decide)
    with pytest.raises(NodeIdCollision, match="'gamma' already uses id 0xa"):
        net.dial(listener)
    assert isinstance(listener.next(), NodeIdCollision)


def test_handshake_deadline(net: Net) -> None:
    silent = Event()
    server = StreamServer(("127.0.0.1", 0), lambda sock, addr: silent.wait(5), spawn=Pool(2))
    server.start()
    try:
        t0 = time.monotonic()
        with pytest.raises(HandshakeError, match="did not complete within 0.5s"):
            dial(("127.0.0.1", server.server_port), A, COOKIE, config=LinkConfig(handshake_timeout=0.5))
        assert time.monotonic() - t0 < 2
    finally:
        silent.set()
        server.stop(timeout=2)
    # The acceptor side: a client that connects and says nothing.
    listener = net.listen(config=LinkConfig(handshake_timeout=0.5))
    sock = gsocket.create_connection(listener.address)
    try:
        refused = listener.next()
        assert isinstance(refused, HandshakeError) and "did not complete within 0.5s" in str(refused)
    finally:
        sock.close()


def test_unreachable_and_not_joerl(net: Net) -> None:
    probe = stdsocket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(NodeUnreachable, match="cannot connect"):
        dial(("127.0.0.1", port), A, COOKIE)
    listener = net.listen()
    sock = gsocket.create_connection(listener.address)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        refused = listener.next()
        assert isinstance(refused, HandshakeProtocolError) and "does not speak joerl" in str(refused)
    finally:
        sock.close()
    net.dial(listener)  # the listener still works
    assert isinstance(listener.next(), Connection)


# -- the running link -------------------------------------------------------------------


def test_100k_frames_in_order_with_batching(net: Net) -> None:
    listener = net.listen()
    conn = net.dial(listener)
    conn.start()
    n = 100_000

    def produce() -> None:
        encode = conn.encoder.send
        for i in range(0, n, 100):
            for j in range(i, i + 100):
                conn.send_frame(encode(PA, PB, seq(j)))
            gevent.sleep(0)  # yield, as an actor between messages would

    producer = gevent.spawn(produce)
    messages = listener.inbox.wait_for(n, timeout=60)
    producer.join()
    assert [m.payload for m in messages] == [seq(i) for i in range(n)]
    assert conn.stats.frames_out == n
    assert conn.stats.writes < n // 10, f"{conn.stats.writes} writes for {n} frames: not coalesced"
    assert listener.inbox.messages[0] == p.Send(PA, PB, seq(0))


def test_idle_link_writes_at_once_and_batches_a_burst(net: Net) -> None:
    """The first frame after an idle spell goes straight to the socket; the rest of the burst is one write."""
    listener = net.listen()
    conn = net.dial(listener)
    conn.start()
    assert conn.flush(timeout=5)
    gevent.sleep(0)  # let the link settle into idle
    before = conn.stats.writes
    conn.send(p.Send(PA, PB, seq(0)))
    assert conn.stats.writes == before + 1  # written synchronously, no greenlet switch
    for i in range(1, 1000):
        conn.send(p.Send(PA, PB, seq(i)))
    assert conn.flush(timeout=5)
    assert conn.stats.writes == before + 2, "the burst was not coalesced into one write"
    assert [m.payload for m in listener.inbox.wait_for(1000)] == [seq(i) for i in range(1000)]


def test_bad_frames_are_dropped_and_the_link_survives(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="joerl.node")
    listener = net.listen()
    conn = net.dial(listener)  # not started yet: its socket is ours to write raw bytes
    good = p.encode_frame(p.Send(PA, PB, b"good"))
    not_msgpack = struct.pack(">I", 3) + b"\xc1\xc1\xc1"
    unknown_op = p.encode_frame(p.Link(PA, PB)).replace(b"\x93\x03", b"\x93\x63", 1)
    conn.sock.sendall(good + not_msgpack + good + unknown_op + good)
    accepted = listener.next()
    assert [m.payload for m in listener.inbox.wait_for(3)] == [b"good"] * 3
    wait_until(lambda: accepted.stats.bad_frames == 2)
    assert "dropped a bad frame" in caplog.text and "unknown control message type 99" in caplog.text
    # The link is alive in both directions.
    conn.start()
    conn.send(p.Send(PA, PB, b"after"))
    accepted.send(p.Send(PB, PA, b"back"))
    assert listener.inbox.wait_for(4)[-1] == p.Send(PA, PB, b"after")
    assert conn.handler.wait_for(1) == [p.Send(PB, PA, b"back")]  # type: ignore[union-attr]
    assert not accepted.closed and not conn.closed


def test_payload_the_node_cannot_decode_is_counted_and_dropped(net: Net) -> None:
    """A handler raising SerializationError (e.g. an unknown message type) drops that frame only."""
    got: list[bytes] = []

    def handler(conn: Connection, msg: Any) -> None:
        if msg.payload == b"undecodable":
            raise DecodeError("payload is not a valid encoding")
        got.append(msg.payload)

    listener = net.listen()
    conn = net.dial(listener, handler=handler)
    conn.start()
    accepted = listener.next()
    accepted.handler = handler  # replace before anything arrives on it
    for payload in (b"one", b"undecodable", b"two"):
        accepted.send(p.Send(PB, PA, payload))
    wait_until(lambda: len(got) == 2)
    assert got == [b"one", b"two"] and conn.stats.bad_frames == 1 and not conn.closed


def test_oversized_frame_closes_the_link_with_a_clear_error(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="joerl.node")
    listener = net.listen(config=LinkConfig(max_frame_size=4096))
    closes = Closes()
    conn = net.dial(listener, on_closed=closes)
    assert conn.peer.max_frame == 4096
    # Our own side refuses to send what the peer announced it would refuse.
    with pytest.raises(MessageTooLarge, match="exceeds the limit of node 'beta' \\(4096 bytes\\)"):
        conn.send(p.Send(PA, PB, b"x" * 5000))
    with pytest.raises(MessageTooLarge, match="exceeds the limit of node 'beta' \\(4096 bytes\\)"):
        conn.send_frame(p.encode_frame(p.Send(PA, PB, b"x" * 5000)))
    assert not conn.closed
    # A peer that sends one anyway (raw bytes) gets the link closed.
    conn.sock.sendall(p.encode_frame(p.Send(PA, PB, b"before")) + struct.pack(">I", 10_000_000))
    reason = listener.closes.wait()
    assert isinstance(reason, OversizedFrame)
    assert "frame of 10000000 bytes exceeds the limit of 4096 bytes" in str(reason)
    assert listener.inbox.messages == [p.Send(PA, PB, b"before")]  # what came before is delivered
    assert "exceeds the limit" in caplog.text
    conn.start()
    assert isinstance(closes.wait(), ConnectionLost)


def test_tick_timeout_detects_a_silent_peer(net: Net) -> None:
    listener = net.listen(config=LinkConfig(tick_time=1.0))
    silent = net.dial(listener)  # completes the handshake, then never reads nor writes
    accepted = listener.next()
    t0 = time.monotonic()
    reason = listener.closes.wait(timeout=5)
    elapsed = time.monotonic() - t0
    assert isinstance(reason, ConnectionLost) and "sent nothing for" in str(reason) and "tick time 1.0s" in str(reason)
    assert 0.9 <= elapsed <= 4.0, elapsed
    assert accepted.closed and not silent.closed


def test_an_idle_link_ticks_and_stays_up(net: Net) -> None:
    cfg = LinkConfig(tick_time=1.0)
    listener = net.listen(config=cfg)
    conn = net.dial(listener, config=cfg)
    conn.start()
    accepted = listener.next()
    wait_until(lambda: conn.stats.ticks_in >= 5 and accepted.stats.ticks_in >= 5, timeout=5)
    assert not conn.closed and not accepted.closed
    assert conn.stats.frames_in == accepted.stats.frames_in == 0
    assert conn.tick_interval == 0.25


def test_ticks_follow_the_smaller_tick_time(net: Net) -> None:
    """A 60 s node linked to a 1 s node ticks every 0.25 s, so the 1 s node keeps it."""
    listener = net.listen(config=LinkConfig(tick_time=1.0))
    conn = net.dial(listener, config=LinkConfig(tick_time=60.0))
    conn.start()
    accepted = listener.next()
    assert conn.tick_interval == 0.25
    wait_until(lambda: accepted.stats.ticks_in >= 6, timeout=5)
    assert not accepted.closed


def test_backpressure_then_dropped_when_the_peer_never_reads(net: Net) -> None:
    listener = net.listen(start=False)  # the acceptor never reads
    closes = Closes()
    conn = net.dial(listener, config=LinkConfig(max_queue_bytes=256 * 1024, send_timeout=0.5), on_closed=closes)
    accepted = listener.next()
    accepted.sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 4096)
    conn.sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF, 4096)
    conn.start()
    frame = conn.encoder.send(PA, PB, b"z" * 64 * 1024)
    waits: list[float] = []
    with pytest.raises(ConnectionLost, match="stayed full"):
        for _ in range(100_000):
            t0 = time.monotonic()
            conn.send_frame(frame)
            waits.append(time.monotonic() - t0)
    assert max(waits) < 0.5 <= time.monotonic() - t0  # earlier sends may wait; the last one timed out
    assert "the peer is not reading" in str(closes.wait())
    assert conn.closed


def test_flush_then_close_delivers_everything(net: Net) -> None:
    listener = net.listen()
    conn = net.dial(listener)
    conn.start()
    for i in range(5000):
        conn.send(p.Send(PA, PB, seq(i)))
    assert conn.flush(timeout=5)
    conn.close("shutdown")
    assert conn.wait_closed(5)
    assert [m.payload for m in listener.inbox.wait_for(5000)] == [seq(i) for i in range(5000)]


def test_a_pair_that_lost_its_link_talks_again(net: Net) -> None:
    listener = net.listen()
    closes = Closes()
    first = net.dial(listener, on_closed=closes)
    first.start()
    listener.next().close("simulated failure")
    assert isinstance(closes.wait(), ConnectionLost)
    with pytest.raises(ConnectionLost):
        first.send(p.Send(PA, PB, b"lost"))
    second = net.dial(listener)
    second.start()
    second.send(p.Send(PA, PB, b"again"))
    assert listener.inbox.wait_for(1) == [p.Send(PA, PB, b"again")]


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="at least 1.0s"):
        LinkConfig(tick_time=0.5)
    with pytest.raises(ValueError):
        LinkConfig(send_timeout=0)


# -- simultaneous connect ----------------------------------------------------------------


class MiniNode:
    """The least a node must do for one link per peer (a sketch for node.py)."""

    def __init__(self, net: Net, name: str, node_id: int) -> None:
        self.identity = NodeIdentity(name, node_id, creation=1)
        self.links: dict[str, Connection] = {}
        self.dialing: set[str] = set()
        self.up: defaultdict[str, Event] = defaultdict(Event)
        self.inbox = Received()
        self.net = net
        self.listener = net.listen(self.identity, decide=self.decide, on_accepted=self.register)
        self.listener.inbox = self.inbox

    def decide(self, peer: PeerHello) -> Verdict:
        if peer.name in self.links:
            return Verdict.refuse("busy", "a link with that node is up")
        if peer.name in self.dialing:
            return DIALING
        return ACCEPT

    def register(self, conn: Connection) -> None:
        assert conn.peer_name not in self.links, "two links to one peer"
        self.links[conn.peer_name] = conn
        self.up[conn.peer_name].set()

    def connect(self, other: MiniNode) -> Connection:
        name = other.identity.name
        if name in self.links:
            return self.links[name]
        self.dialing.add(name)
        try:
            conn = dial(other.listener.address, self.identity, COOKIE, expected_peer=name, handler=self.inbox)
        except (SimultaneousConnect, HandshakeRefused) as exc:
            if isinstance(exc, HandshakeRefused) and exc.status not in ("nok", "busy"):
                raise
            assert self.up[name].wait(5), f"{self.identity.name}: the winning link never came"
            return self.links[name]
        finally:
            self.dialing.discard(name)
        self.net.conns.append(conn)
        self.register(conn)
        conn.start()
        return conn


@pytest.mark.parametrize("round_", range(8))
def test_simultaneous_dial_converges_to_one_link(net: Net, round_: int) -> None:
    alpha, beta = MiniNode(net, "alpha", 1), MiniNode(net, "beta", 2)
    first, second = (alpha, beta) if round_ % 2 else (beta, alpha)
    jobs = [gevent.spawn(first.connect, second), gevent.spawn(second.connect, first)]
    gevent.joinall(jobs, timeout=10, raise_error=True)
    assert all(j.successful() for j in jobs), "a dial hung or failed"
    a_link, b_link = alpha.links["beta"], beta.links["alpha"]
    assert list(alpha.links) == ["beta"] and list(beta.links) == ["alpha"]
    assert a_link.sock.getsockname() == b_link.sock.getpeername(), "the two nodes hold different connections"
    # beta's name is greater: its dial survives whenever both dials met.
    if a_link.status == "ok_simultaneous":
        assert b_link.role is Role.INITIATOR
    a_link.send(p.Send(Pid(1, 1, 1), Pid(2, 1, 1), b"a->b"))
    b_link.send(p.Send(Pid(2, 1, 1), Pid(1, 1, 1), b"b->a"))
    assert beta.inbox.wait_for(1)[0].payload == b"a->b"
    assert alpha.inbox.wait_for(1)[0].payload == b"b->a"


def test_simultaneous_dial_really_collides(net: Net) -> None:
    """Both HELLOs are on the wire before either side decides: ok_simultaneous + nok."""
    alpha, beta = MiniNode(net, "alpha", 1), MiniNode(net, "beta", 2)
    alpha.dialing.add("beta")
    beta.dialing.add("alpha")
    gate = Event()
    for node in (alpha, beta):
        decide = node.decide

        def held(peer: PeerHello, decide: Callable[[PeerHello], Verdict] = decide) -> Verdict:
            gate.wait(5)  # hold each acceptor until both dials are in
            return decide(peer)

        node.listener.decide = held
    jobs = [gevent.spawn(alpha.connect, beta), gevent.spawn(beta.connect, alpha)]
    wait_until(lambda: len(alpha.listener.server.pool) == 1 and len(beta.listener.server.pool) == 1)
    gate.set()
    gevent.joinall(jobs, timeout=10, raise_error=True)
    nok = beta.listener.next()
    assert isinstance(nok, SimultaneousConnect) and not nok.by_peer  # beta refused alpha's dial
    assert alpha.links["beta"].status == "ok_simultaneous"
    assert alpha.links["beta"].role is Role.ACCEPTOR and beta.links["alpha"].role is Role.INITIATOR


# -- TLS is not precluded ------------------------------------------------------------------


def test_wrap_socket_hook_carries_tls(net: Net, tmp_path: Any) -> None:
    ssl = pytest.importorskip("gevent.ssl")
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cert)

    def wrap(sock: Any, server_side: bool) -> Any:
        if server_side:
            return server_ctx.wrap_socket(sock, server_side=True)
        return client_ctx.wrap_socket(sock, server_hostname="localhost")

    cfg = LinkConfig(handshake_timeout=5.0, wrap_socket=wrap)
    listener = net.listen(config=cfg)
    conn = net.dial(listener, config=cfg)
    conn.start()
    assert conn.sock.version() is not None  # a TLS socket
    conn.send(p.Send(PA, PB, b"over tls"))
    assert listener.inbox.wait_for(1) == [p.Send(PA, PB, b"over tls")]


def _self_signed(tmp_path: Any) -> tuple[str, str]:
    x509 = pytest.importorskip("cryptography.x509")
    import datetime

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


def test_refusals_of_a_foreign_client_are_logged_once_per_address_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """50 dials by a client that is not a joerl node (Erlang's send_name):
    every one refused, one WARNING line, and the next interval's line
    counts the ones left out."""
    from joerl.node.link_setup import FailureLog
    from joerl.testing import FakeClock

    caplog.set_level(logging.DEBUG, logger="joerl.node")
    clock = FakeClock()
    failures = FailureLog(interval=10.0, clock=clock)
    refused: Queue = Queue()

    def handle(sock: Any, address: Any) -> None:
        try:
            accept_handshake(sock, B, COOKIE, config=FAST, address=address, failure_log=failures)
        except HandshakeError as exc:
            refused.put(exc)

    server = StreamServer(("127.0.0.1", 0), handle, spawn=Pool(20))
    server.start()
    erlang_send_name = bytes.fromhex("0014 4e 0000000d07df7fbd 6b07ecb0 0005") + b"e1@vm"

    def bad_dial() -> None:
        with gsocket.create_connection(("127.0.0.1", server.server_port)) as sock:
            sock.sendall(erlang_send_name)
            assert isinstance(refused.get(timeout=10), HandshakeProtocolError)

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    try:
        for _ in range(50):
            bad_dial()
        assert len(warnings()) == 1, warnings()
        assert "handshake with node at 127.0.0.1:" in warnings()[0] and "undecodable" in warnings()[0]
        clock.advance(10.0)
        for _ in range(3):
            bad_dial()
        lines = warnings()
        assert len(lines) == 2, lines
        assert "49 more from 127.0.0.1 in the last 10s were not logged" in lines[1]
    finally:
        server.stop(timeout=2)


def test_failure_log_keys_are_per_address_and_bounded() -> None:
    from joerl.node.link_setup import FailureLog
    from joerl.testing import FakeClock

    clock = FakeClock()
    failures = FailureLog(interval=5.0, max_keys=3, clock=clock)
    assert failures.allow("a") == 0 and failures.allow("b") == 0
    assert failures.allow("a") is None and failures.allow("a") is None
    clock.advance(5.0)
    assert failures.allow("a") == 2 and failures.allow("a") is None
    for key in "cdefg":  # more addresses than it remembers: still one line each
        assert failures.allow(key) == 0
        assert failures.allow(key) is None


def test_reads_in_the_hub_keep_order_and_hand_the_rest_to_the_reader(net: Net) -> None:
    """A handler that lists message classes as ``hub_safe`` gets those in the
    hub (link_reader.py); anything else, and whatever follows it in the same
    read, in the reader greenlet; order kept; bad and oversized frames as ever."""
    seen: list[tuple[Any, bool]] = []

    def handler(conn: Connection, msg: Any) -> None:
        seen.append((msg, gevent.getcurrent() is gevent.get_hub()))

    handler.hub_safe = frozenset({p.Send})  # type: ignore[attr-defined]
    listener = net.listen()
    closes = Closes()
    conn = net.dial(
        listener, handler=handler, on_closed=closes, config=LinkConfig(handshake_timeout=3.0, max_frame_size=4096)
    )
    conn.start()
    accepted = listener.next()
    wait_until(lambda: conn._reading.in_hub)  # (its first read, at once, is the greenlet's)

    def send(i: int) -> bytes:
        return p.encode_frame(p.Send(PB, PA, b"%d" % i))

    bad = struct.pack(">I", 3) + b"\xc1\xc1\xc1"
    accepted.sock.sendall(send(1) + bad + p.encode_frame(p.Link(PB, PA)) + send(2) + send(3))
    wait_until(lambda: len(seen) == 4 and conn.stats.bad_frames == 1)
    assert [m for m, _ in seen] == [p.Send(PB, PA, b"1"), p.Link(PB, PA), p.Send(PB, PA, b"2"), p.Send(PB, PA, b"3")]
    assert seen[0][1] and not seen[1][1]  # (2 and 3 too, when they came in the same read)
    accepted.sock.sendall(send(4))
    wait_until(lambda: len(seen) == 5)
    assert seen[4] == (p.Send(PB, PA, b"4"), True)  # back in the hub
    accepted.sock.sendall(send(5) + struct.pack(">I", 10_000_000))
    assert isinstance(closes.wait(), OversizedFrame)
    assert seen[5][0] == p.Send(PB, PA, b"5") and len(seen) == 6  # what came before it is delivered
    assert conn.wait_closed(5)
