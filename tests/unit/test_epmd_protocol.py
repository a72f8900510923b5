"""Byte vectors for joerl.epmd.protocol: Erlang's EPMD requests and replies
(bytes as OTP 25's epmd and erl send them) and joerl's extension, each fed
whole, one byte at a time, and followed by extra bytes; random bytes give
only EpmdProtocolError."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joerl.epmd import protocol as p
from joerl.epmd.protocol import (
    Alive2Rejected,
    Alive2Req,
    Alive2Resp,
    ClassicReplyDecoder,
    DumpReq,
    DumpResp,
    EpmdProtocolError,
    ExtError,
    ExtReplyDecoder,
    InvalidName,
    KeepAlive,
    KeepAliveAck,
    KillReq,
    KillResp,
    ListNodes,
    Lookup,
    LookupResult,
    NamesReq,
    NamesResp,
    NodeInfo,
    NodeList,
    Ping,
    Pong,
    Port2Resp,
    PortPlease2Req,
    Register,
    Registered,
    RequestDecoder,
    StopReq,
    StopResp,
    UnknownExt,
    Unregister,
    Unregistered,
)
from joerl.errors import EpmdError, LocalProtocolError, RemoteProtocolError

# Bytes observed on the wire with Erlang/OTP 25 (docs/erlang-protocols digest).
ERL_ALIVE2 = bytes.fromhex("0011 78 9d25 4d 00 0006 0005 0004") + b"reg1" + b"\x00\x00"
ERL_PORT2_HIT = bytes.fromhex("77 00 15b3 4d 00 0006 0006 0005") + b"pyone" + b"\x00\x00"  # high 6, low 6, nlen 5
ERL_NAMES = bytes.fromhex("00003821") + b"name pyx at port 6000\nname pytwo at port 5556\n"
PING_FRAME = bytes.fromhex("000a 4a 81a26f70a470696e67")  # Len, 'J', {"op": "ping"}


def requests_fed(data: bytes, how: str) -> tuple[list[Any], RequestDecoder]:
    dec = RequestDecoder()
    if how == "whole":
        return dec.feed(data), dec
    if how == "bytewise":
        out: list[Any] = []
        for i in range(len(data)):
            got = dec.feed(data[i : i + 1])
            if i < len(data) - 1:
                assert got == [], f"request completed early at byte {i}"
            out += got
        return out, dec
    raise AssertionError(how)


MODES = ["whole", "bytewise"]


# -- requests ----------------------------------------------------------------------


@pytest.mark.parametrize("how", MODES)
def test_alive2_from_erl(how: str) -> None:
    reqs, dec = requests_fed(ERL_ALIVE2, how)
    assert reqs == [
        Alive2Req(port=0x9D25, name="reg1", node_type=77, protocol=0, highest_version=6, lowest_version=5, extra=b"")
    ]
    assert dec.buffered == 0


def test_alive2_encodes_as_erl_does() -> None:
    assert Alive2Req(0x9D25, "reg1", 77, 0, 6, 5).encode() == ERL_ALIVE2


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


def test_register_defaults_and_unknown_keys() -> None:
    body = msgpack.packb({"op": "register", "name": "n", "port": 9, "future": 1})
    req = RequestDecoder().feed(struct.pack(">HB", len(body) + 1, 74) + body)[0]
    assert req == Register("n", "", 9, {}, 77, 0, 6, 6, b"")


def test_unknown_extension_op_is_an_event_not_an_error() -> None:
    body = msgpack.packb({"op": "teleport"})
    assert RequestDecoder().feed(struct.pack(">HB", len(body) + 1, 74) + body) == [UnknownExt("teleport")]


@pytest.mark.parametrize(
    "name, reason",
    [
        (b"a" * 256, "over the limit"),
        (b"\xff\xfe", "encoding"),
        (b"a@b", "'@'"),
    ],
)
def test_alive2_refusable_names_are_rejected_events(name: bytes, reason: str) -> None:
    body = struct.pack(">BHBBHHH", 120, 5, 77, 0, 6, 5, len(name)) + name + b"\x00\x00"
    (ev,) = RequestDecoder().feed(struct.pack(">H", len(body)) + body)
    assert isinstance(ev, Alive2Rejected) and reason in ev.reason and ev.highest_version == 6


def test_alive2_accepts_255_byte_name_and_refuses_long_extra() -> None:
    body = struct.pack(">BHBBHHH", 120, 5, 77, 0, 6, 5, 255) + b"n" * 255 + b"\x00\x00"
    assert RequestDecoder().feed(struct.pack(">H", len(body)) + body)[0].name == "n" * 255
    body = struct.pack(">BHBBHHH", 120, 5, 77, 0, 5, 5, 1) + b"n" + struct.pack(">H", 1021) + b"e" * 1021
    (ev,) = RequestDecoder().feed(struct.pack(">H", len(body)) + body)
    assert isinstance(ev, Alive2Rejected) and ev.highest_version == 5


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


# -- replies -----------------------------------------------------------------------


def replies_fed(request: Any, data: bytes, how: str, eof: bool) -> tuple[Any, ClassicReplyDecoder]:
    dec = ClassicReplyDecoder(request)
    chunks = [data] if how == "whole" else [data[i : i + 1] for i in range(len(data))]
    reply = None
    for i, chunk in enumerate(chunks):
        reply = dec.feed(chunk)
        if reply is not None and i < len(chunks) - 1 and not eof:
            raise AssertionError(f"reply completed early at chunk {i}")
    if eof:
        assert reply is None
        reply = dec.feed_eof()
    return reply, dec


@pytest.mark.parametrize("how", MODES)
@pytest.mark.parametrize(
    "request_, data, expected, eof",
    [
        (Alive2Req(1, "a"), bytes.fromhex("76 01 00000063"), Alive2Resp(1, 99, True), False),
        (Alive2Req(1, "a"), bytes.fromhex("76 00 6b07ecb0"), Alive2Resp(0, 0x6B07ECB0, True), False),
        (Alive2Req(1, "a"), bytes.fromhex("79 00 0002"), Alive2Resp(0, 2, False), False),
        (
            PortPlease2Req("pyone"),
            ERL_PORT2_HIT,
            Port2Resp(NodeInfo("pyone", "", 0x15B3, {}, 0, 77, 0, 6, 6, b"", "erlang")),
            False,
        ),
        (PortPlease2Req("x"), b"w\x01", Port2Resp(None), False),
        (NamesReq(), ERL_NAMES, NamesResp(0x3821, (("pyx", 6000), ("pytwo", 5556))), True),
        (NamesReq(), b"\x00\x00\x11\x11", NamesResp(0x1111, ()), True),
        (
            DumpReq(),
            b"\x00\x00\x38\x21active name     <a> at port 1, fd = 7\n\x00",
            DumpResp(0x3821, ("active name     <a> at port 1, fd = 7\n",)),
            True,
        ),
        (KillReq(), b"OK", KillResp(True), True),
        (KillReq(), b"NO", KillResp(False), True),
        (StopReq("x"), b"NOEXIST", StopResp("NOEXIST"), True),
        (StopReq("x"), b"STOPPED", StopResp("STOPPED"), True),
    ],
)
def test_reply_vectors(request_: Any, data: bytes, expected: Any, eof: bool, how: str) -> None:
    reply, dec = replies_fed(request_, data, how, eof)
    assert reply == expected
    assert dec.trailing == b""
    assert expected.encode() == data


def test_fixed_size_replies_leave_extra_bytes_trailing() -> None:
    dec = ClassicReplyDecoder(PortPlease2Req("pyone"))
    assert dec.feed(ERL_PORT2_HIT + b"more").node.name == "pyone"
    assert dec.trailing == b"more"
    dec = ClassicReplyDecoder(Alive2Req(1, "a"))
    assert dec.feed(bytes.fromhex("76 00 00000005 ff")) == Alive2Resp(0, 5)
    assert dec.trailing == b"\xff"


def test_port2_hit_with_extra() -> None:
    node = NodeInfo("n", "", 7, {}, 0, 72, 0, 6, 6, b"hello", "erlang")
    data = Port2Resp(node).encode()
    assert replies_fed(PortPlease2Req("n"), data, "bytewise", False)[0] == Port2Resp(node)


@pytest.mark.parametrize(
    "request_, data",
    [
        (Alive2Req(1, "a"), b"Q"),
        (Alive2Req(1, "a"), b"v\x00"),  # closed early
        (PortPlease2Req("a"), b"x\x01"),
        (PortPlease2Req("a"), b"w\x00\x00"),  # closed early
        (NamesReq(), b"\x00\x00"),
        (NamesReq(), b"\x00\x00\x00\x01name x at port 1"),  # no newline
        (NamesReq(), b"\x00\x00\x00\x01hello\n"),
        (NamesReq(), b"\x00\x00\x00\x01name x at port p\n"),
        (NamesReq(), b"\x00\x00\x00\x01name \xff at port 1\n"),
        (DumpReq(), b"\x00\x00\x00\x01line without nul"),
        (KillReq(), b"MAYBE"),
        (StopReq("x"), b""),
        (StopReq("x"), b"ST\x00P"),
    ],
)
def test_bad_replies(request_: Any, data: bytes) -> None:
    dec = ClassicReplyDecoder(request_)
    with pytest.raises(EpmdProtocolError):
        if dec.feed(data) is None:
            dec.feed_eof()


def test_reply_size_limit() -> None:
    dec = ClassicReplyDecoder(NamesReq(), max_size=10)
    with pytest.raises(EpmdProtocolError):
        dec.feed(b"\x00" * 11)


def test_classic_decoder_refuses_extension_requests() -> None:
    with pytest.raises(LocalProtocolError):
        ClassicReplyDecoder(Ping())


NODE = NodeInfo("n", "10.0.0.1", 5000, {"role": "db", "tags": ["a"]}, 1795681270, 77, 0, 6, 6, b"", "joerl")


@pytest.mark.parametrize("how", MODES)
@pytest.mark.parametrize(
    "reply",
    [
        Registered(NODE),
        Unregistered("n", True),
        Unregistered("n", False),
        LookupResult(NODE),
        LookupResult(None),
        NodeList((NODE, NODE.with_host("x"))),
        NodeList(()),
        Pong("joerl-epmd", "0.1.0"),
        KeepAliveAck(),
        ExtError("name_in_use", "taken"),
    ],
)
def test_extension_reply_roundtrip(reply: Any, how: str) -> None:
    data = reply.encode()
    assert data[0] == 74 and struct.unpack(">I", data[1:5])[0] == len(data) - 5
    dec = ExtReplyDecoder()
    if how == "whole":
        assert dec.feed(data + b"J") == [reply]
        assert dec.buffered == 1
    else:
        out = []
        for i in range(len(data)):
            out += dec.feed(data[i : i + 1])
        assert out == [reply] and dec.buffered == 0


@pytest.mark.parametrize(
    "data",
    [
        b"Q\x00\x00\x00\x00",
        b"J\x00\x00\x00\x01\xc1",
        b"J\x00\x00\x00\x01\x01",
        b"J" + struct.pack(">I", 9) + msgpack.packb({"op": "what"}),
        b"J" + struct.pack(">I", 17) + msgpack.packb({"op": "lookup", "node": 1}),
        b"J" + struct.pack(">I", 100_000_000),
    ],
)
def test_bad_extension_replies(data: bytes) -> None:
    with pytest.raises(EpmdProtocolError):
        ExtReplyDecoder(max_len=1_000_000).feed(data)


# -- names and addresses ----------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "n" * 255, "é" * 127, "node-1.x_y"])
def test_valid_names(name: str) -> None:
    assert p.check_name(name) == name


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "empty"),
        ("n" * 256, "over the limit"),
        ("é" * 128, "over the limit"),
        ("a\0b", "NUL"),
        ("a@host", "'@'"),
        ("\udcff", "UTF-8"),
        (3, "str"),
    ],
)
def test_invalid_names(name: Any, why: str) -> None:
    with pytest.raises(InvalidName, match=why) as info:
        p.check_name(name)
    assert isinstance(info.value, ValueError) and isinstance(info.value, EpmdError)


def test_encoders_refuse_what_cannot_be_sent() -> None:
    with pytest.raises(InvalidName):
        Register("a@b", "h", 1).encode()
    with pytest.raises(InvalidName):
        PortPlease2Req("").encode()
    with pytest.raises(LocalProtocolError):
        Alive2Req(1, "a", extra=b"x" * 1021).encode()
    with pytest.raises(LocalProtocolError):
        Register("a", "h", 1, {"big": b"x" * 70000}).encode()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("127.0.0.1:4369", ("127.0.0.1", 4369)),
        ("0.0.0.0:14369", ("0.0.0.0", 14369)),
        ("localhost", ("localhost", 4369)),
        ("5000", ("127.0.0.1", 5000)),
        (":0", ("127.0.0.1", 0)),
        ("[::1]:99", ("::1", 99)),
        ("::1", ("::1", 4369)),
        ("[::1]", ("::1", 4369)),
        (("h", 7), ("h", 7)),
    ],
)
def test_parse_address(text: Any, expected: tuple[str, int]) -> None:
    assert p.parse_address(text) == expected


@pytest.mark.parametrize("text", ["h:x", "h:70000", "[::1", "[::1]x", "[::1]:p"])
def test_parse_bad_address(text: str) -> None:
    with pytest.raises(ValueError):
        p.parse_address(text)


def test_format_address_and_node_address() -> None:
    assert p.format_address("::1", 5) == "[::1]:5"
    assert NODE.address == "10.0.0.1:5000"
    assert NodeInfo("n", "", 1).with_host("h").host == "h"


# -- properties --------------------------------------------------------------------

names = st.text(st.characters(blacklist_characters="@\0", blacklist_categories=("Cs",)), min_size=1, max_size=60)
plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.binary(max_size=10),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
    max_leaves=20,
)


@given(names, st.text(max_size=30), st.integers(1, 65535), st.dictionaries(st.text(max_size=8), plain, max_size=5))
@settings(max_examples=150, deadline=None)
def test_register_roundtrip_property(name: str, host: str, port: int, metadata: dict[str, Any]) -> None:
    req = Register(name, host, port, metadata)
    assert RequestDecoder().feed(req.encode()) == [req]
    node = NodeInfo(name, host, port, metadata, 5, kind="joerl")
    assert ExtReplyDecoder().feed(Registered(node).encode()) == [Registered(node)]


@given(names, st.integers(0, 65535), st.integers(0, 255), st.binary(max_size=50))
@settings(max_examples=100, deadline=None)
def test_alive2_and_port2_roundtrip_property(name: str, port: int, ntype: int, extra: bytes) -> None:
    if len(name.encode()) > 255:
        return
    req = Alive2Req(port, name, ntype, 0, 6, 5, extra)
    assert RequestDecoder().feed(req.encode()) == [req]
    node = NodeInfo(name, "", port, {}, 0, ntype, 0, 6, 5, extra, "erlang")
    assert ClassicReplyDecoder(PortPlease2Req(name)).feed(Port2Resp(node).encode()) == Port2Resp(node)


def _only_protocol_errors(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except EpmdProtocolError:
        pass


@given(st.binary(max_size=300))
@settings(max_examples=400, deadline=None)
def test_random_bytes_into_request_decoder(data: bytes) -> None:
    _only_protocol_errors(lambda: RequestDecoder().feed(data))
    _only_protocol_errors(lambda: p.decode_request_body(data))
    # and the same bytes as the body of each opcode, to get past the dispatch
    for op in (120, 122, 110, 115, 74):
        _only_protocol_errors(lambda: RequestDecoder().feed(struct.pack(">HB", len(data) + 1, op) + data))


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_random_bytes_into_reply_decoders(data: bytes) -> None:
    for req in (Alive2Req(1, "a"), PortPlease2Req("a"), NamesReq(), DumpReq(), KillReq(), StopReq("a")):

        def run(req: Any = req) -> None:
            dec = ClassicReplyDecoder(req)
            if dec.feed(data) is None:
                dec.feed_eof()

        _only_protocol_errors(run)
    _only_protocol_errors(lambda: ExtReplyDecoder().feed(data))
    _only_protocol_errors(lambda: ExtReplyDecoder().feed(b"J" + struct.pack(">I", len(data)) + data))
