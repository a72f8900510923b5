"""Fuzzing the port mapper protocol: random and mutated bytes into the sans-IO
request and reply decoders (whole and in random pieces), then into a live
:class:`EpmdServer`, which must close each bad connection, keep a registration
held meanwhile, and still serve a well-behaved :class:`EpmdClient`.
"""

from __future__ import annotations

import logging
import random
import socket as stdsocket
import struct
from typing import Any

import gevent
import pytest
from _fuzzkit import (
    CLASSIC_REQUEST_OBJECTS,
    EPMD_CLASSIC_REPLIES,
    EPMD_REQUESTS,
    cut_points,
    epmd_ext_reply_streams,
    epmd_request_streams,
    fuzz_settings,
    mutated,
    nested,
    outcome,
    split,
)
from gevent import socket
from gevent.server import StreamServer
from hypothesis import given
from hypothesis import strategies as st

from joerl.epmd import EpmdClient
from joerl.epmd import protocol as p
from joerl.epmd.server import EpmdServer
from joerl.errors import EpmdError
from joerl.testing import wait_until

REQUEST_TYPES = (p.Alive2Req, p.Alive2Rejected, p.PortPlease2Req, p.NamesReq, p.DumpReq, p.KillReq, p.StopReq,
                 p.Register, p.Unregister, p.Lookup, p.ListNodes, p.Ping, p.KeepAlive, p.UnknownExt)  # fmt: skip
EXT_REPLY_TYPES = (p.Registered, p.Unregistered, p.LookupResult, p.NodeList, p.Pong, p.KeepAliveAck, p.ExtError)
CLASSIC_REPLY_TYPES = (p.Alive2Resp, p.Port2Resp, p.NamesResp, p.DumpResp, p.KillResp, p.StopResp)


def feed_all(decoder: Any, pieces: list[bytes]) -> tuple[list[Any], Any]:
    """Feed ``pieces``; return what came out and the protocol error that ended it (or None)."""
    out: list[Any] = []
    try:
        for piece in pieces:
            out += decoder.feed(piece)
    except p.EpmdProtocolError as exc:
        return out, exc
    return out, None


# -- sans-IO decoders ------------------------------------------------------------------


@fuzz_settings(600)
@given(st.data())
def test_request_decoder_gives_only_protocol_errors_however_split(data: st.DataObject) -> None:
    stream = data.draw(epmd_request_streams)
    cuts = data.draw(cut_points(len(stream)))
    whole, whole_err = feed_all(p.RequestDecoder(), [stream])
    dec = p.RequestDecoder()
    pieces, pieces_err = feed_all(dec, split(stream, cuts))
    assert all(isinstance(r, REQUEST_TYPES) for r in pieces)
    # The split does not change the verdict: the same requests, or the same error
    # (fed whole, the requests completed in the call that failed are not returned).
    assert outcome(pieces_err) == outcome(whole_err)
    if whole_err is None:
        assert pieces == whole
    else:
        assert whole == []
        try:  # a failed decoder keeps refusing
            dec.feed(b"")
            raise AssertionError("a failed RequestDecoder accepted more input")
        except p.EpmdProtocolError as again:
            assert again is pieces_err


@fuzz_settings(400)
@given(st.binary(max_size=300) | mutated(st.sampled_from([r[2:] for r in EPMD_REQUESTS])))
def test_decode_request_body_gives_only_protocol_errors(body: bytes) -> None:
    try:
        req = p.decode_request_body(body)
    except p.EpmdProtocolError:
        return
    assert isinstance(req, REQUEST_TYPES)


@fuzz_settings(500)
@given(st.data())
def test_ext_reply_decoder_gives_only_protocol_errors_however_split(data: st.DataObject) -> None:
    stream = data.draw(epmd_ext_reply_streams)
    cuts = data.draw(cut_points(len(stream)))
    whole, whole_err = feed_all(p.ExtReplyDecoder(max_len=4096), [stream])
    pieces, pieces_err = feed_all(p.ExtReplyDecoder(max_len=4096), split(stream, cuts))
    assert all(isinstance(r, EXT_REPLY_TYPES) for r in pieces)
    assert outcome(pieces_err) == outcome(whole_err)
    if whole_err is None:
        assert pieces == whole


@fuzz_settings(500)
@given(st.data())
def test_classic_reply_decoder_gives_only_protocol_errors(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(sorted(CLASSIC_REQUEST_OBJECTS, key=lambda k: k.__name__)))
    stream = data.draw(st.binary(max_size=120) | mutated(st.sampled_from(EPMD_CLASSIC_REPLIES[kind])))
    cuts = data.draw(cut_points(len(stream)))
    dec = p.ClassicReplyDecoder(CLASSIC_REQUEST_OBJECTS[kind], max_size=4096)
    try:
        reply = None
        for piece in split(stream, cuts):
            reply = dec.feed(piece) or reply
        reply = reply or dec.feed_eof()
    except p.EpmdProtocolError:
        return
    assert isinstance(reply, CLASSIC_REPLY_TYPES)


# -- a live daemon ---------------------------------------------------------------------


def _send_and_drain(port: int, payload: bytes, pieces: int) -> bytes:
    """Connect, send ``payload`` (in ``pieces`` writes), send EOF, and read until
    the daemon closes. Fails if it does not close within the deadline: a
    daemon must never hang on a connection whose peer is done."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    received = bytearray()
    try:
        try:
            step = max(1, len(payload) // pieces)
            for i in range(0, len(payload), step):
                sock.sendall(payload[i : i + step])
            sock.shutdown(stdsocket.SHUT_WR)
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass  # the daemon closed on us mid-send: as good as a close
        except TimeoutError:
            raise AssertionError(f"the daemon kept a finished connection open; it got {payload!r}") from None
    finally:
        sock.close()
    return bytes(received)


def assert_daemon_serves(server: EpmdServer, name: str) -> None:
    """A well-behaved client registers, looks up, lists and unregisters."""
    address = f"127.0.0.1:{server.port}"
    with EpmdClient(address, timeout=5.0) as client:
        info = client.register(name, "127.0.0.1", 4242, metadata={"role": "fuzz-check"})
        assert info.name == name and info.creation > 0
        found = client.lookup(name)
        assert found is not None and found.port == 4242 and found.metadata == {"role": "fuzz-check"}
        listed = {n.name for n in client.list_nodes()}
        assert name in listed
        assert (name, 4242) in client.names()
        assert client.unregister(name)
        assert client.lookup(name) is None


def test_live_daemon_survives_fuzzed_connections(epmd_server: EpmdServer) -> None:
    port = epmd_server.port
    keeper = EpmdClient(f"127.0.0.1:{port}", timeout=5.0)
    try:
        held = keeper.register("fuzz-keeper", "127.0.0.1", 1111)
        sent = 0

        @fuzz_settings(150)
        @given(st.lists(st.tuples(epmd_request_streams, st.integers(1, 3)), min_size=1, max_size=4))
        def fuzz(connections: list[tuple[bytes, int]]) -> None:
            nonlocal sent
            jobs = [gevent.spawn(_send_and_drain, port, payload, pieces) for payload, pieces in connections]
            gevent.joinall(jobs, timeout=15, raise_error=True)
            assert all(j.dead for j in jobs)
            sent += len(jobs)
            assert epmd_server.running, "a fuzzed request stopped the daemon"
            assert epmd_server.lookup("fuzz-keeper") is not None, "a fuzzed request took the keeper's name"

        fuzz()
        assert sent > 150
        # Every fuzzed connection is gone; the keeper's registration is intact.
        wait_until(lambda: epmd_server.connection_count == 1, what="fuzzed connections closed")
        kept = epmd_server.lookup("fuzz-keeper")
        assert kept is not None and kept.creation == held.creation
        assert_daemon_serves(epmd_server, "fuzz-good")
    finally:
        keeper.close()


def test_live_daemon_survives_a_burst_of_garbage_connections(
    epmd_server: EpmdServer, caplog: pytest.LogCaptureFixture
) -> None:
    """200 connections at once, each random bytes, a random-length prefix, or a
    deeply nested extension request; each is a protocol error (nothing logged
    as a failure of the daemon), and the daemon still serves."""
    rng = random.Random(7)
    payloads = []
    for i in range(200):
        kind = i % 3
        if kind == 0:
            payloads.append(rng.randbytes(rng.randint(0, 64)))
        elif kind == 1:
            payloads.append(struct.pack(">H", rng.randint(0, 0xFFFF)) + rng.randbytes(rng.randint(0, 8)))
        else:  # a well-framed extension map nested past repr's limit, or past msgpack's
            body = b"J\x83\xa2op\xa8register\xa4name\xa1x\xa4port" + nested(1010 if i % 2 else 1100)
            payloads.append(struct.pack(">H", len(body)) + body)
    caplog.set_level("DEBUG", logger="joerl.epmd")
    jobs = [gevent.spawn(_send_and_drain, epmd_server.port, data, 1) for data in payloads]
    gevent.joinall(jobs, timeout=30, raise_error=True)
    assert epmd_server.running
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, failures[:3]
    wait_until(lambda: epmd_server.connection_count == 0, what="garbage connections closed")
    assert_daemon_serves(epmd_server, "fuzz-after-burst")


# -- a client against a lying daemon ----------------------------------------------------------


def test_client_facing_a_garbage_daemon_raises_only_epmd_errors() -> None:
    """A "daemon" that answers every request with fuzzed bytes and closes: the
    client's calls return or raise an ``EpmdError``, nothing else."""
    replies: list[bytes] = [b""]

    def handle(sock: Any, _addr: Any) -> None:
        try:
            sock.recv(65536)
            sock.sendall(replies[0])
        except OSError:
            pass

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    try:
        client = EpmdClient(f"127.0.0.1:{server.server_port}", timeout=2.0)
        calls = [
            lambda: client.lookup("node"),
            lambda: client.port_please("node"),
            lambda: client.list_nodes(),
            lambda: client.names(),
            lambda: client.probe(),
            lambda: client.register("node", "127.0.0.1", 4000),
        ]

        @fuzz_settings(120)
        @given(
            epmd_ext_reply_streams
            | st.sampled_from([b"", b"OK", b"w\x01"])
            | mutated(st.sampled_from([r for rs in EPMD_CLASSIC_REPLIES.values() for r in rs])),
            st.integers(0, len(calls) - 1),
        )
        def fuzz(reply: bytes, which: int) -> None:
            replies[0] = reply
            client.daemon_kind = None
            try:
                calls[which]()
            except EpmdError:
                pass
            finally:
                client.unregister("node")  # in case the garbage was a valid registration reply

        fuzz()
        client.close()
    finally:
        server.stop()


def test_request_with_a_deeply_nested_field_is_a_protocol_error() -> None:
    body = b"J\x83\xa2op\xa8register\xa4name\xa1x\xa4port" + nested(1010)  # {"op": "register", "port": [[[...]]]}
    with pytest.raises(p.EpmdProtocolError):
        p.RequestDecoder().feed(struct.pack(">H", len(body)) + body)


def test_reply_with_a_deeply_nested_field_is_a_protocol_error() -> None:
    body = b"\x82\xa2op\xa6lookup\xa4node\x82\xa4name\xa1x\xa4port" + nested(1010)
    with pytest.raises(p.EpmdProtocolError):
        p.ExtReplyDecoder().feed(struct.pack(">BI", p.OP_JOERL, len(body)) + body)


def test_reply_with_deep_fields_in_every_node_field_is_a_protocol_error() -> None:
    """Every int, str, bin and map field of a node map, nested past repr's limit."""
    for key in (
        b"\xa4port",
        b"\xa8creation",
        b"\xa4type",
        b"\xa5proto",
        b"\xa4high",
        b"\xa3low",
        b"\xa4host",
        b"\xa4kind",
        b"\xa5extra",
        b"\xa8metadata",
    ):
        body = b"\x82\xa2op\xa6lookup\xa4node\x82\xa4name\xa1x" + key + nested(1010)
        with pytest.raises(p.EpmdProtocolError) as info:
            p.ExtReplyDecoder().feed(struct.pack(">BI", p.OP_JOERL, len(body)) + body)
        assert len(str(info.value)) < 200


def test_error_text_shows_a_bounded_rendering_of_the_value() -> None:
    """A bad int field is named with its value, truncated; a bad op likewise."""
    body = b"\x82\xa2op\xa6lookup\xa4node\x82\xa4name\xa1x\xa4port\xda\x10\x00" + b"y" * 4096
    with pytest.raises(
        p.EpmdProtocolError,
        match=r"field 'port' must be an int in 0\.\.65535, got 'y{40}'\.\.\. "
        r"\(4096 long\)",
    ):
        p.ExtReplyDecoder().feed(struct.pack(">BI", p.OP_JOERL, len(body)) + body)
    body = p.Pong().encode()[5:].replace(b"\xa4pong", b"\xa4gnop")
    with pytest.raises(p.EpmdProtocolError, match="unknown extension reply op 'gnop'"):
        p.ExtReplyDecoder().feed(struct.pack(">BI", p.OP_JOERL, len(body)) + body)


def test_client_lookup_of_a_deeply_nested_reply_raises_an_epmd_error() -> None:
    """What escapes ``EpmdClient.lookup`` when a daemon answers with a node map
    nested past repr's limit is an ``EpmdError`` (the node's dialler catches
    only those), not a ``RecursionError``."""
    body = b"\x82\xa2op\xa6lookup\xa4node\x82\xa4name\xa1x\xa4port" + nested(1010)
    reply = struct.pack(">BI", p.OP_JOERL, len(body)) + body

    def handle(sock: Any, _addr: Any) -> None:
        try:
            sock.recv(65536)
            sock.sendall(reply)
        except OSError:
            pass

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    client = EpmdClient(f"127.0.0.1:{server.server_port}", timeout=5.0)
    try:
        with pytest.raises(p.EpmdProtocolError, match="bad reply to Lookup: field 'port'"):
            client.lookup("x")
    finally:
        client.close()
        server.stop()
