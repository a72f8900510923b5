"""The daemon-side decoder (joerl.epmd._requests): both protocols' requests, whole, byte by
byte and followed by extra bytes; malformed input and random bytes give only EpmdProtocolError."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from _epmd_vectors import (  # tests/unit/_epmd_vectors.py
    ERL_ALIVE2,
    MODES,
    PING_FRAME,
    only_protocol_errors,
    requests_fed,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from joerl.epmd import protocol as p
from joerl.epmd.protocol import (
    Alive2Req,
    DumpReq,
    EpmdProtocolError,
    KeepAlive,
    KillReq,
    ListNodes,
    Lookup,
    NamesReq,
    Ping,
    PortPlease2Req,
    Register,
    RequestDecoder,
    StopReq,
    Unregister,
)
from joerl.errors import EpmdError, RemoteProtocolError


def test_request_followed_by_extra_bytes_keeps_them_buffered() -> None:
    dec = RequestDecoder()
    assert dec.feed(ERL_ALIVE2 + b"\x00\x04zpy") == [Alive2Req(0x9D25, "reg1", 77, 0, 6, 5)]
    assert dec.buffered == 5
    assert dec.feed(b"x") == [PortPlease2Req("pyx")]
    assert dec.buffered == 0


def test_two_requests_in_one_feed() -> None:
    assert RequestDecoder().feed(PING_FRAME + Lookup("a").encode()) == [Ping(), Lookup("a")]


@pytest.mark.parametrize("how", MODES)
@pytest.mark.parametrize(
    "data, expected",
    [
        (b"\x00\x06zpyone", PortPlease2Req("pyone")),
        (b"\x00\x07zpyone\x00", PortPlease2Req("pyone")),  # one trailing NUL tolerated
        (b"\x00\x01n", NamesReq()),
        (b"\x00\x05njunk", NamesReq()),  # junk after the opcode is ignored
        (b"\x00\x01d", DumpReq()),
        (b"\x00\x01k", KillReq()),
        (b"\x00\x07sholder", StopReq("holder")),
        ("\x00\x04zé@".encode("latin-1")[:2] + "zé@".encode(), PortPlease2Req("é@")),
        (PING_FRAME, Ping()),
    ],
)
def test_request_vectors(data: bytes, expected: Any, how: str) -> None:
    reqs, dec = requests_fed(data, how)
    assert reqs == [expected]
    assert dec.buffered == 0


@pytest.mark.parametrize(
    "req",
    [
        PortPlease2Req("pyone"),
        NamesReq(),
        DumpReq(),
        KillReq(),
        StopReq("x"),
        Alive2Req(1, "a", 72, 0, 5, 5, b"hello"),
        Register("n", "h", 5, {"k": [1, 2.5, None, True, b"b", {"x": "y"}]}, 72, 0, 6, 6, b"e"),
        Unregister("n"),
        Lookup("n"),
        ListNodes(),
        Ping(),
        KeepAlive("n"),
        Lookup("n", close=True),
        ListNodes(close=True),
        Ping(close=True),
    ],
)
def test_encode_then_decode_roundtrip(req: Any) -> None:
    data = req.encode()
    assert RequestDecoder().feed(data) == [req]
    assert requests_fed(data, "bytewise")[0] == [req]


def _alive2(name: bytes = b"ab", nlen: int | None = None, elen: int = 0, tail: bytes = b"") -> bytes:
    body = struct.pack(">BHBBHHH", 120, 5, 77, 0, 6, 5, len(name) if nlen is None else nlen)
    body += name + struct.pack(">H", elen) + tail
    return struct.pack(">H", len(body)) + body


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _ext(obj: Any) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True) if not isinstance(obj, bytes) else obj
    return struct.pack(">HB", len(body) + 1, 74) + body


MALFORMED = {
    "length 0": b"\x00\x00",
    "length over 3057": b"\x0b\xf2n" + b"x" * 3057,
    "length 0xFFFF": b"\xff\xffn",
    "unknown opcode": b"\x00\x01Q",
    "alive2 too short": b"\x00\x0dx" + b"\x00" * 12,
    "alive2 nlen past end": _alive2(nlen=200),
    "alive2 elen past end": _alive2(elen=9),
    "alive2 NUL in name": _alive2(b"a\x00b"),
    "alive2 empty name": _alive2(b"", tail=b"zz"),
    "port_please empty": b"\x00\x01z",
    "port_please only NUL": b"\x00\x02z\x00",
    "port_please NUL inside": b"\x00\x04za\x00b",
    "port_please bad utf8": b"\x00\x03z\xff\xfe",
    "port_please 256 chars": struct.pack(">H", 257) + b"z" + b"n" * 256,
    "stop empty": b"\x00\x01s",
    "ext not msgpack": _ext(b"\xc1"),
    "ext truncated msgpack": _ext(b"\x82\xa2op"),
    "ext trailing msgpack": _ext(msgpack.packb({"op": "ping"}) + b"\x00"),
    "ext not a map": _ext([1, 2]),
    "ext no op": _ext({"name": "x"}),
    "ext op not str": _ext({"op": 3}),
    "ext int map key": _ext(b"\x81\x01\x02"),
    "ext lookup name missing": _ext({"op": "lookup"}),
    "ext lookup name int": _ext({"op": "lookup", "name": 3}),
    "ext lookup close not bool": _ext({"op": "lookup", "name": "a", "close": 1}),
    "ext register port str": _ext({"op": "register", "name": "a", "port": "1"}),
    "ext register port bool": _ext({"op": "register", "name": "a", "port": True}),
    "ext register port big": _ext({"op": "register", "name": "a", "port": 70000}),
    "ext register extra str": _ext({"op": "register", "name": "a", "port": 1, "extra": "x"}),
    "ext register metadata list": _ext({"op": "register", "name": "a", "port": 1, "metadata": [1]}),
    "ext metadata int key": _ext(b"\x84\xa2op\xa8register\xa4name\xa1a\xa4port\x01\xa8metadata\x81\x01\x01"),
    "ext metadata timestamp": _ext(
        b"\x84\xa2op\xa8register\xa4name\xa1a\xa4port\x01\xa8metadata\x81\xa1t\xd6\xff\x00\x00\x00\x01"
    ),
    "ext metadata ext type": _ext(b"\x84\xa2op\xa8register\xa4name\xa1a\xa4port\x01\xa8metadata\x81\xa1t\xd4\x05\x00"),
    "ext metadata too deep": _ext({"op": "register", "name": "a", "port": 1, "metadata": {"a": _nested(40)}}),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("how", MODES)
def test_malformed_requests_raise_protocol_error(case: str, how: str) -> None:
    with pytest.raises(EpmdProtocolError):
        requests_fed(MALFORMED[case], how)


def test_protocol_error_is_remote_and_epmd_error_and_sticks() -> None:
    dec = RequestDecoder()
    with pytest.raises(EpmdProtocolError) as info:
        dec.feed(b"\x00\x01Q")
    assert isinstance(info.value, RemoteProtocolError) and isinstance(info.value, EpmdError)
    assert "unknown opcode" in str(info.value)
    with pytest.raises(EpmdProtocolError):
        dec.feed(b"\x00\x01n")


def test_oversized_classic_length_fails_before_the_body_arrives() -> None:
    with pytest.raises(EpmdProtocolError, match="3057"):
        RequestDecoder().feed(b"\x0b\xf2n")
    assert RequestDecoder().feed(b"\x0b\xf1n") == []  # 3057: still waiting for the body


def test_extension_length_limit() -> None:
    with pytest.raises(EpmdProtocolError):
        RequestDecoder(max_ext_len=100).feed(b"\x00\x65J")


def only_protocol_errors(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except EpmdProtocolError:
        pass


@given(st.binary(max_size=300))
@settings(max_examples=400, deadline=None)
def test_random_bytes_into_request_decoder(data: bytes) -> None:
    only_protocol_errors(lambda: RequestDecoder().feed(data))
    only_protocol_errors(lambda: p.decode_request_body(data))
    # and the same bytes as the body of each opcode, to get past the dispatch
    for op in (120, 122, 110, 115, 74):
        only_protocol_errors(lambda: RequestDecoder().feed(struct.pack(">HB", len(data) + 1, op) + data))
