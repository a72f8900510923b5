"""joerl's extension (joerl.epmd._ext): request defaults, unknown ops, reply round trips fed
whole, one byte at a time and followed by extra bytes, and refused replies."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from _epmd_vectors import (  # tests/unit/_epmd_vectors.py
    MODES,
    NODE,
    names,
    plain,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from joerl.epmd.protocol import (
    EpmdProtocolError,
    ExtError,
    ExtReplyDecoder,
    KeepAliveAck,
    LookupResult,
    NodeInfo,
    NodeList,
    Pong,
    Register,
    Registered,
    RequestDecoder,
    UnknownExt,
    Unregistered,
)


def test_register_defaults_and_unknown_keys() -> None:
    body = msgpack.packb({"op": "register", "name": "n", "port": 9, "future": 1})
    req = RequestDecoder().feed(struct.pack(">HB", len(body) + 1, 74) + body)[0]
    assert req == Register("n", "", 9, {}, 77, 0, 6, 6, b"")


def test_unknown_extension_op_is_an_event_not_an_error() -> None:
    body = msgpack.packb({"op": "teleport"})
    assert RequestDecoder().feed(struct.pack(">HB", len(body) + 1, 74) + body) == [UnknownExt("teleport")]


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


@given(names, st.text(max_size=30), st.integers(1, 65535), st.dictionaries(st.text(max_size=8), plain, max_size=5))
@settings(max_examples=150, deadline=None)
def test_register_roundtrip_property(name: str, host: str, port: int, metadata: dict[str, Any]) -> None:
    req = Register(name, host, port, metadata)
    assert RequestDecoder().feed(req.encode()) == [req]
    node = NodeInfo(name, host, port, metadata, 5, kind="joerl")
    assert ExtReplyDecoder().feed(Registered(node).encode()) == [Registered(node)]
