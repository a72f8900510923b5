"""The handshake's messages (joerl/node/hello.py): framing, HELLO fields, garbage.

Malformed and foreign input (an HTTP request, Erlang's send_name, bad HELLO
fields, unknown statuses) is refused with ``HandshakeProtocolError``; random
bytes and random maps into either engine give only our protocol errors.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joerl.errors import HandshakeError, ProtocolError
from joerl.node import protocol as p
from joerl.node.hello import next_message, pack_message
from joerl.node.protocol import Handshake, HandshakeProtocolError, HandshakeState, NodeIdentity, Role

COOKIE = b"secret-cookie"
A = NodeIdentity("alpha", 0x0A0A0A0A, creation=7)
B = NodeIdentity("beta", 0x0B0B0B0B, creation=9)


def test_message_framing_byte_vector() -> None:
    raw = pack_message({"t": "ack", "mac": b"m"})
    assert raw == bytes.fromhex("000e 82 a174 a361636b a36d6163 c4016d")
    buf = bytearray(raw[:3])
    assert next_message(buf) is None and buf == raw[:3]  # incomplete: left as it is
    buf += raw[3:] + b"\x00"
    assert next_message(buf) == (raw, {"t": "ack", "mac": b"m"})
    assert buf == b"\x00"  # the extra byte stays for the next message
    assert next_message(buf) is None


@pytest.mark.parametrize(
    "data, match",
    [
        (b"GET / HTTP/1.1\r\n\r\n", "does not speak joerl"),
        (b"\x00\x00", "0 bytes"),
        (
            bytes.fromhex("0014 4e 0000000d07df7fbd 6b07ecb0 0005") + b"e1@vm",
            "not a map|undecodable",
        ),  # Erlang's send_name
        (b"\x00\x01\xc1", "undecodable"),
        (b"\x00\x03" + msgpack.packb([1, 2]), "not a map"),
        (pack_message({"t": "ack", "mac": 1}), "unexpected handshake message 'ack'"),
        (pack_message({"t": "hello", "v": 2}), "HELLO name"),
    ],
)
def test_garbage_into_acceptor(data: bytes, match: str) -> None:
    acc = Handshake(Role.ACCEPTOR, B, COOKIE)
    with pytest.raises(HandshakeProtocolError, match=match):
        acc.feed(data)
    assert acc.state is HandshakeState.CLOSED


def _hello(**override: Any) -> bytes:
    body = {"t": "hello", "v": 3, "name": "x", "id": 5, "creation": 0, "flags": 0, "challenge": b"c" * 16}
    body.update(override)
    return pack_message(body)


@pytest.mark.parametrize(
    "override",
    [
        {"v": 0}, {"v": "1"}, {"name": 5}, {"name": ""}, {"id": 0}, {"id": 2**32}, {"creation": -1},
        {"flags": -1}, {"challenge": b"short"}, {"challenge": "x" * 20}, {"tick_ms": -5}, {"max_frame": 12},
        {"incarnation": -1}, {"incarnation": 2.5}, {"incarnation": "x"}, {"vmin": 0}, {"vmin": 4}, {"vmin": "3"},
    ],
)  # fmt: skip
def test_malformed_hello_fields(override: dict[str, Any]) -> None:
    acc = Handshake(Role.ACCEPTOR, B, COOKIE)
    with pytest.raises(HandshakeProtocolError):
        acc.feed(_hello(**override))


def test_hello_extra_keys_ignored() -> None:
    acc = Handshake(Role.ACCEPTOR, B, COOKIE)
    [event] = acc.feed(_hello(future="yes"))
    assert event.peer.name == "x" and event.peer.max_frame == p.DEFAULT_MAX_FRAME_SIZE and event.peer.tick_ms == 0


def test_unknown_status_is_protocol_error() -> None:
    ini = Handshake(Role.INITIATOR, A, COOKIE)
    with pytest.raises(HandshakeProtocolError, match="unknown handshake status"):
        ini.feed(pack_message({"t": "status", "status": "maybe", "reason": ""}))


OUR_ERRORS = (ProtocolError, HandshakeError)


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=300), st.sampled_from(["initiator", "acceptor", "acceptor_after_hello"]))
def test_random_bytes_into_handshake_give_only_our_errors(data: bytes, where: str) -> None:
    ini = Handshake(Role.INITIATOR, A, COOKIE, random_bytes=lambda n: b"i" * n)
    acc = Handshake(Role.ACCEPTOR, B, COOKIE, random_bytes=lambda n: b"a" * n)
    if where == "initiator":
        target = ini
    elif where == "acceptor":
        target = acc
    else:
        acc.feed(ini.data_to_send())
        acc.accept()
        target = acc
    try:
        for chunk in (data[:7], data[7:]):
            target.feed(chunk)
            if target.state is HandshakeState.AWAIT_DECISION:
                target.accept()
    except OUR_ERRORS:
        assert target.state is HandshakeState.CLOSED


@settings(max_examples=200, deadline=None, database=None)
@given(st.dictionaries(st.sampled_from(["t", "v", "name", "id", "creation", "flags", "challenge", "tick_ms",
                                        "max_frame", "status", "reason", "mac"]),
                       st.one_of(st.none(), st.booleans(), st.integers(-2, 2**64 - 1), st.text(max_size=5),
                                 st.binary(max_size=40), st.sampled_from(["hello", "status", "reply", "ack",
                                                                          "abort", "ok", "nok"]))))  # fmt: skip
def test_random_maps_into_handshake_give_only_our_errors(body: dict[str, Any]) -> None:
    raw = msgpack.packb(body)
    for role in Role:
        engine = Handshake(role, A, COOKIE)
        try:
            engine.feed(struct.pack(">H", len(raw)) + raw)
        except OUR_ERRORS:
            pass


def test_hello_of_protocol_2_parses_without_incarnation() -> None:
    """A HELLO without vmin and incarnation (protocol 2) parses (incarnation 0:
    unknown), so that its sender can be refused for its version, clearly."""
    peer = p.parse_hello(msgpack.unpackb(_hello(v=2)[2:]))
    assert (peer.version, peer.min_version, peer.incarnation) == (2, 2, 0)
    acc = Handshake(Role.ACCEPTOR, B, COOKIE)
    with pytest.raises(p.IncompatibleVersion, match="speaks version 3, node 'x' speaks version 2"):
        acc.feed(_hello(v=2))


def test_hello_incarnation_byte_vector() -> None:
    """``incarnation`` is a msgpack uint 64 (cf + 8 bytes, big-endian); ``vmin`` a small int."""
    raw = _hello(incarnation=0x0102030405060708, vmin=3)
    assert bytes.fromhex("ab") + b"incarnation" + bytes.fromhex("cf 0102030405060708") in raw
    assert bytes.fromhex("a4") + b"vmin" + bytes.fromhex("03") in raw
    for data in (raw, raw + b"\x00\x01"):
        buf = bytearray(data)
        got = next_message(buf)
        assert got is not None and p.parse_hello(got[1]).incarnation == 0x0102030405060708
        assert bytes(buf) == data[len(raw) :]
    acc = Handshake(Role.ACCEPTOR, B, COOKIE)
    events = []
    for i in range(len(raw)):
        events += acc.feed(raw[i : i + 1])
    assert [e.peer.incarnation for e in events] == [0x0102030405060708]


def test_incompatible_version_message() -> None:
    exc = p.IncompatibleVersion((3, 3), (5, 6), peer="b", by_peer=True)
    assert str(exc) == (
        "node 'b' refused the link: not_allowed (incompatible protocol versions: this node speaks version 3, "
        "node 'b' speaks versions 5..6; upgrade the older node (see 'Compatibility' in docs/distribution.md))"
    )
    assert isinstance(exc, p.HandshakeRefused) and exc.status == "not_allowed"
