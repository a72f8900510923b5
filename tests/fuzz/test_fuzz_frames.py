"""Fuzzing the link frame decoder: random and mutated frame streams in random
pieces (only ``OversizedFrame`` may be raised, everything else is a message or
a ``FrameError`` in place, however the bytes are split, and a bad frame never
desynchronises the frames after it); then a live, authenticated link whose
peer sends a stream of garbage frames: the node counts them as bad, keeps the
link, and still talks to a well-behaved node.
"""

from __future__ import annotations

import socket as stdsocket
import struct
from typing import Any

import gevent
import pytest
from _fuzzkit import (
    body_of,
    control_messages,
    cut_points,
    frame,
    frame_bodies,
    frame_streams,
    fuzz_settings,
    mutated,
    nested,
    outcome,
    packb,
    split,
)
from gevent import socket as gsocket
from gevent.event import Event
from gevent.queue import Empty, Queue
from hypothesis import given
from hypothesis import strategies as st

from joerl.errors import ConnectionLost, SerializationError
from joerl.node import protocol as dp
from joerl.node.config import node_id_of
from joerl.node.connection import Connection, LinkConfig
from joerl.node.link_setup import dial
from joerl.node.names import node_name as full
from joerl.node.protocol import FrameDecoder, FrameError, OversizedFrame
from joerl.pid import Pid, Ref
from joerl.serialization import Codec
from joerl.testing import node_cluster, wait_until

MESSAGE_TYPES = (dp.Send, dp.SendTerms, dp.RegSend, dp.Link, dp.Unlink, dp.UnlinkAck, dp.Exit, dp.Exit2, dp.Monitor,
                 dp.Demonitor, dp.Down, dp.SpawnRequest, dp.SpawnReply, dp.AliveRequest, dp.AliveReply,
                 dp.CallReply)  # fmt: skip
LIMIT = 1024  # a small max_frame_size, so that fuzzed length prefixes often exceed it
CLUSTER_COOKIE = b"fuzz-cluster-cookie"  # conftest's cluster cookie
ECHO = "fuzz-echo-target"  # conftest's echo process


def decode_all(pieces: list[bytes]) -> tuple[list[Any], Any, FrameDecoder]:
    """Everything a fresh decoder yields for ``pieces``, and the OversizedFrame that ended it."""
    dec = FrameDecoder(max_frame_size=LIMIT)
    out: list[Any] = []
    for piece in pieces:
        try:
            out += dec.feed(piece)
        except OversizedFrame as exc:
            out += exc.messages
            try:  # a broken stream stays broken
                dec.feed(b"")
                raise AssertionError("a broken FrameDecoder accepted more input")
            except OversizedFrame as again:
                assert again is exc
            return out, exc, dec
    return out, None, dec


@fuzz_settings(600)
@given(st.data())
def test_frame_decoder_gives_only_frame_errors_however_split(data: st.DataObject) -> None:
    stream = data.draw(frame_streams)
    cuts = data.draw(cut_points(len(stream)))
    whole, whole_err, whole_dec = decode_all([stream])
    pieces, pieces_err, dec = decode_all(split(stream, cuts))
    assert all(isinstance(m, (FrameError, *MESSAGE_TYPES)) for m in pieces)
    assert [outcome(m) for m in pieces] == [outcome(m) for m in whole]
    assert outcome(pieces_err) == outcome(whole_err)
    assert dec.ticks == whole_dec.ticks
    if whole_err is None:  # (a broken stream's buffer is of no interest)
        assert dec.buffered() == whole_dec.buffered()


@st.composite
def mixed_streams(draw: st.DrawFn) -> list[bytes]:
    """Frame bodies, valid and bad, in an order hypothesis chooses."""
    return draw(st.lists(control_messages.map(body_of) | frame_bodies, min_size=1, max_size=12))


@fuzz_settings(400)
@given(mixed_streams(), st.data())
def test_a_bad_frame_never_disturbs_its_neighbours(bodies: list[bytes], data: st.DataObject) -> None:
    """One decoder over the whole stream says what a fresh decoder says of each
    frame alone: the streaming Unpacker's state never leaks from a bad frame
    into the next."""
    expected: list[Any] = []
    for body in bodies:
        alone = FrameDecoder(max_frame_size=LIMIT).feed(frame(body))
        assert len(alone) == (1 if body else 0)
        expected += alone
    stream = b"".join(frame(b) for b in bodies)
    got, err, _ = decode_all(split(stream, data.draw(cut_points(len(stream)))))
    assert err is None
    assert [outcome(m) for m in got] == [outcome(m) for m in expected]


def test_a_deeply_nested_frame_body_is_a_frame_error() -> None:
    out = FrameDecoder().feed(frame(nested(1010, opener=b"\x81\xa1k")))
    assert len(out) == 1 and isinstance(out[0], FrameError)


_DEEP = nested(1010)  # arrays nested past repr's limit (msgpack allows 1023)
_PID = packb([1, 2, 3])
_REF = packb([1, 4, 5])
_ROUTE = packb(bytes.fromhex("00000001 0000000000000002 00000003"))


@pytest.mark.parametrize(
    "body",
    [
        nested(1010),  # the body itself: op is an array
        b"\x92" + _DEEP + b"\x01",  # [[[...]], 1]
        b"\x93\x01" + _DEEP + b"\xc4\x00",  # SEND, route
        b"\x93\x01" + _ROUTE + _DEEP,  # SEND, payload
        b"\x94\x10" + _ROUTE + b"\x01" + _DEEP,  # SEND_TERMS, a msg
        b"\x94\x02\xc0" + _DEEP + b"\xc4\x00",  # REG_SEND, to_name
        b"\x94\x04" + _PID + _PID + _DEEP,  # UNLINK, id
        b"\x94\x08" + _PID + _DEEP + _REF,  # MONITOR, to
        b"\x94\x08" + _PID + _PID + _DEEP,  # MONITOR, ref
        b"\x97\x0b" + _REF + _PID + b"\xa1f\xc4\x00" + _DEEP + b"\xc2",  # SPAWN_REQUEST, link
        b"\x94\x0c" + _REF + _PID + _DEEP,  # SPAWN_REPLY, result
        b"\x93\x0e" + _REF + _DEEP,  # ALIVE_REPLY, alive
    ],
    ids=[
        "body",
        "op",
        "send-route",
        "send-payload",
        "send_terms-msg",
        "reg_send-to_name",
        "unlink-id",
        "monitor-to",
        "monitor-ref",
        "spawn_request-link",
        "spawn_reply-result",
        "alive_reply-alive",
    ],
)
def test_a_field_nested_deep_is_a_short_frame_error(body: bytes) -> None:
    """Wherever it sits, a value nested past repr's limit makes a frame error
    whose text stays short; the frame after it decodes."""
    ok = dp.AliveReply(Ref(1, 2, 3), True)
    out = FrameDecoder().feed(frame(body) + dp.encode_frame(ok))
    assert len(out) == 2 and isinstance(out[0], FrameError) and out[1] == ok, out
    assert "Recursion" not in str(out[0]) and len(str(out[0])) < 200, str(out[0])


# -- a live link sending garbage -----------------------------------------------------------


class RawPeer:
    """An authenticated link to the target made by hand (``dial``), through which
    the test sends raw frames and reads what comes back."""

    def __init__(self, target: Any, name: str = "fz-raw", creation: int = 5) -> None:
        name = full(name)  # a HELLO claims a full name, name@host
        self.identity = dp.NodeIdentity(name, node_id_of(name), creation)
        self.inbox: Queue = Queue()
        self.closed = Event()
        self.conn: Connection = dial(
            ("127.0.0.1", target.listen_port), self.identity, CLUSTER_COOKIE, expected_peer=target.node_name,
            config=LinkConfig(handshake_timeout=5.0), handler=lambda c, m: self.inbox.put(m),
            on_closed=self._on_closed,
        )  # fmt: skip
        self.conn.start()
        self.target = target
        self.refs = 0
        wait_until(lambda: name in target.nodes(), what=f"{name} linked")
        self.link: Connection = target._peers[name].link  # the target's end of this link

    def _on_closed(self, conn: Connection, reason: Any) -> None:
        self.closed.set()
        self.inbox.put(("closed", reason))  # wakes a round trip waiting in vain

    def pid(self, n: int = 1) -> Pid:
        return Pid(self.identity.node_id, n, self.identity.creation)

    def round_trip(self, about: Pid) -> bool:
        """ALIVE_REQUEST -> ALIVE_REPLY: every frame sent before has been handled."""
        self.refs += 1
        ref = Ref(self.identity.node_id, self.refs, self.identity.creation)
        self.conn.send(dp.AliveRequest(ref, about))
        while True:
            try:
                msg = self.inbox.get(timeout=10.0)
            except Empty:
                raise AssertionError("no ALIVE_REPLY: the link stopped answering") from None
            if isinstance(msg, dp.AliveReply) and msg.ref == ref:
                return msg.alive
            if isinstance(msg, tuple) and msg[:1] == ("closed",):
                raise AssertionError(f"the link closed: {msg[1]}")

    def close(self) -> None:
        self.conn.close()
        self.conn.wait_closed(5.0)
        wait_until(lambda: self.identity.name not in self.target.nodes(), what="raw link gone")


def _wire_pid(node: Any, name: str) -> Pid:
    local = node.whereis(name)
    return Pid(node.node_id, local.id, node.creation)


def _undecodable(codec: Codec, payload: bytes) -> bool:
    try:
        codec.decode(payload)
    except SerializationError:
        return True
    return False


def _expected_bad(body: bytes, echo: Pid, codec: Codec) -> int:
    """Whether the node counts this frame as bad: an undecodable frame, or a
    payload it has to decode (to the echo process, or a DOWN's reason) that is
    not valid codec bytes."""
    if not body:
        return 0  # a tick
    [msg] = FrameDecoder().feed(frame(body))
    if isinstance(msg, FrameError):
        return 1
    if isinstance(msg, dp.Send) and msg.to == echo or isinstance(msg, dp.RegSend) and msg.to_name == ECHO:
        return int(_undecodable(codec, msg.payload))
    if isinstance(msg, dp.Down):
        return int(_undecodable(codec, msg.reason))
    return 0


def _to_echo(echo: Pid) -> st.SearchStrategy[bytes]:
    """Frames for the echo process with junk payloads (they reach the node's codec)."""
    payloads = st.binary(max_size=40) | mutated(st.sampled_from([packb(["x", 1]), Codec().encode(("ping", 1))]))
    return st.one_of(
        st.builds(lambda p: body_of(dp.Send(None, echo, p)), payloads),
        st.builds(lambda p: body_of(dp.RegSend(None, ECHO, p)), payloads),
        st.builds(lambda r, p: body_of(dp.Down("gone", Pid(7, 7, 7), r, p)), st.just(Ref(7, 1, 7)), payloads),
    )


def _foreign(body: bytes, target: Any) -> bool:
    """Keep fuzzed control messages away from the target's own processes (a
    real EXIT2 would kill them, as it should: the peer holds the cookie)."""
    return target.node_id.to_bytes(4, "big") not in body


def test_linked_peer_sending_garbage_frames(cluster: Any, good_peer_talks: Any) -> None:
    target, good = cluster
    good_peer_talks(0)
    raw = RawPeer(target)
    try:
        echo = _wire_pid(target, ECHO)
        codec = Codec()
        sent = expected = 0

        @fuzz_settings(150)
        @given(st.lists(frame_bodies.filter(lambda b: _foreign(b, target)) | _to_echo(echo), min_size=1, max_size=10))
        def fuzz(bodies: list[bytes]) -> None:
            nonlocal sent, expected
            for body in bodies:
                raw.conn.send_frame(frame(body))
                expected += _expected_bad(body, echo, codec)
            sent += len(bodies)
            assert raw.round_trip(echo) is True  # in order, so every frame before it was handled
            assert not raw.link.closed, raw.link.close_reason
            assert raw.link.stats.bad_frames == expected

        fuzz()
        assert sent >= 150 and expected > 0
        # The link is in sync both ways: a real message to the echo process comes back.
        raw.conn.send(dp.Send(raw.pid(), echo, Codec().encode(("ping", 42))))
        while True:
            msg = raw.inbox.get(timeout=10.0)
            if isinstance(msg, dp.SendTerms) and msg.to == raw.pid():  # a plain term comes back as itself
                assert msg.msgs == (("pong", 42),)
                break
        good_peer_talks(1)
        assert raw.link.stats.handler_errors == 0
    finally:
        raw.close()
    good_peer_talks(2)


def test_oversized_frame_closes_only_that_link(cluster: Any, good_peer_talks: Any) -> None:
    """A length prefix over max_frame_size (64 MiB here) closes the link at once,
    before any body byte; the node and its other links carry on, and the same
    peer can link again."""
    target, good = cluster
    good_peer_talks(0)
    raw = RawPeer(target)
    link = raw.link
    raw.conn.send_frame(struct.pack(">I", dp.DEFAULT_MAX_FRAME_SIZE + 1))
    assert raw.closed.wait(10.0)
    assert isinstance(link.close_reason, OversizedFrame)
    assert isinstance(raw.conn.close_reason, ConnectionLost)
    wait_until(lambda: full("fz-raw") not in target.nodes())
    good_peer_talks(1)
    again = RawPeer(target, creation=6)
    try:
        assert again.round_trip(_wire_pid(target, ECHO)) is True
    finally:
        again.close()


def test_deeply_nested_frame_is_counted_not_fatal(cluster: Any) -> None:
    target, _ = cluster
    raw = RawPeer(target)
    try:
        raw.conn.send_frame(frame(nested(1010, opener=b"\x81\xa1k")))
        assert raw.round_trip(_wire_pid(target, ECHO)) is True
        assert raw.link.stats.bad_frames == 1 and not raw.link.closed
    finally:
        raw.close()


def _silent_link(target: Any, name: str, rcvbuf: int | None = 4096) -> Any:
    """A link to ``target`` made by hand over a plain socket, whose peer (this
    test) sends frames but never reads again after the handshake."""
    name = full(name)  # a HELLO claims a full name, name@host
    identity = dp.NodeIdentity(name, node_id_of(name), 1)
    engine = dp.Handshake(dp.Role.INITIATOR, identity, CLUSTER_COOKIE, expected_peer=target.node_name)
    sock = gsocket.create_connection(("127.0.0.1", target.listen_port), timeout=5.0)
    if rcvbuf is not None:
        sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, rcvbuf)
    sock.sendall(engine.data_to_send())
    while engine.state is not dp.HandshakeState.DONE:
        for event in engine.feed(sock.recv(4096)):
            if isinstance(event, dp.HelloReceived):
                engine.accept()
        sock.sendall(engine.data_to_send())
    wait_until(lambda: name in target.nodes(), what=f"{name} linked")
    return sock


def test_outgoing_queue_stays_bounded_when_the_peer_does_not_read(caplog: pytest.LogCaptureFixture) -> None:
    config = LinkConfig(handshake_timeout=3.0, max_queue_bytes=64 * 1024)
    with node_cluster("fz-target", cookie=CLUSTER_COOKIE.decode(), link_config=config) as (target,):
        echo = target.system.spawn_fn(lambda ctx: ctx.receive()).pid
        sock = _silent_link(target, "fz-flood")
        try:
            link = target._peers["fz-flood"].link
            me = node_id_of(full("fz-flood"))
            about = Pid(target.node_id, echo.id, target.creation)
            encoder = dp.FrameEncoder()
            reply_size = len(dp.encode_frame(dp.AliveReply(Ref(me, 2**40, 1), True)))
            bound = config.max_queue_bytes + reply_size
            sent = 0
            # Rounds of 20k requests (kernel buffers take the first few MB of replies),
            # until the node drops the link, or queues well past its bound.
            for _ in range(40):
                batch = b"".join(encoder.encode(dp.AliveRequest(Ref(me, sent + i, 1), about)) for i in range(20_000))
                try:
                    sock.sendall(batch)
                except OSError:
                    break  # the node dropped the link: the bound held
                sent += 20_000
                wait_until(lambda: link.closed or link.stats.frames_in >= sent, timeout=20.0, what="requests handled")
                if link.closed or link.queued_bytes > 4 * bound:
                    break
            assert link.closed or link.queued_bytes <= bound, (
                f"{link.queued_bytes} bytes queued for a peer that does not read (bound {bound}) after {sent} requests"
            )
            assert "peer not reading" in str(link.close_reason), link.close_reason
            wait_until(lambda: full("fz-flood") not in target.nodes(), what="the node dropped the flooding peer")
            assert link.stats.handler_errors == 0  # the reply that hit the limit is no handler failure
            assert not [r for r in caplog.records if "handler failed" in r.getMessage()]
        finally:
            sock.close()


def _reading_link(target: Any, name: str) -> tuple[Any, list[int], Any]:
    """A link made by hand like ``_silent_link``, whose peer reads all the time:
    returns the socket, ``[ALIVE_REPLY frames read]`` and the reading greenlet."""
    sock = _silent_link(target, name, rcvbuf=None)
    got = [0]

    def read() -> None:
        decoder = FrameDecoder()
        try:
            while True:
                data = sock.recv(1 << 20)
                if not data:
                    return
                got[0] += sum(isinstance(m, dp.AliveReply) for m in decoder.feed(data))
        except OSError:
            return

    return sock, got, gevent.spawn(read)


def test_a_peer_that_reads_may_pipeline_many_requests() -> None:
    """The hard limit is no trap for a peer that reads: 60,000 ALIVE_REQUESTs
    sent in bursts to a node with a 64 KiB queue (one recv brings far more
    than 128 KiB of replies' worth) are all answered, the link stays up."""
    config = LinkConfig(handshake_timeout=3.0, max_queue_bytes=64 * 1024)
    with node_cluster("fz-target", cookie=CLUSTER_COOKIE.decode(), link_config=config) as (target,):
        echo = target.system.spawn_fn(lambda ctx: ctx.receive()).pid
        sock, got, reader = _reading_link(target, "fz-pipeline")
        try:
            link = target._peers["fz-pipeline"].link
            me = node_id_of(full("fz-pipeline"))
            about = Pid(target.node_id, echo.id, target.creation)
            encoder = dp.FrameEncoder()
            for burst in range(3):
                sock.sendall(b"".join(
                    encoder.encode(dp.AliveRequest(Ref(me, burst * 20_000 + i, 1), about)) for i in range(20_000)
                ))  # fmt: skip
            wait_until(lambda: got[0] == 60_000 or link.closed, timeout=30.0, what="every request answered")
            assert not link.closed, link.close_reason
            assert got[0] == 60_000
        finally:
            sock.close()
            reader.join(5.0)


def test_frames_queued_by_the_hub_past_the_hard_limit_drop_the_link() -> None:
    """The hub cannot wait either: frames it queues for a peer that does not
    read close the link at twice max_queue_bytes, with a clear reason, and
    the node drops the peer."""
    config = LinkConfig(handshake_timeout=3.0, max_queue_bytes=64 * 1024)
    with node_cluster("fz-target", cookie=CLUSTER_COOKIE.decode(), link_config=config) as (target,):
        sock = _silent_link(target, "fz-deaf")
        try:
            link = target._peers["fz-deaf"].link
            payload = dp.encode_frame(dp.Send(None, Pid(node_id_of(full("fz-deaf")), 1, 1), b"h" * 8192))
            done = Event()
            outcome: dict[str, Any] = {"sent": 0, "most": 0}

            def from_the_hub() -> None:
                try:
                    for _ in range(10_000):
                        link.send_frame(payload)
                        outcome["sent"] += 1
                        outcome["most"] = max(outcome["most"], link.queued_bytes)
                except ConnectionLost as exc:
                    outcome["error"] = exc
                finally:
                    done.set()

            gevent.get_hub().loop.run_callback(from_the_hub)
            assert done.wait(10.0)
            assert isinstance(outcome.get("error"), ConnectionLost), outcome
            assert "peer not reading" in str(outcome["error"])
            wait_until(lambda: link.closed, what="the link closed (from a greenlet: not in the hub)")
            assert "peer not reading" in str(link.close_reason)
            assert outcome["most"] <= config.queue_hard_limit
            assert outcome["sent"] >= config.max_queue_bytes // len(payload)
            wait_until(lambda: full("fz-deaf") not in target.nodes(), what="the node dropped the deaf peer")
        finally:
            sock.close()
