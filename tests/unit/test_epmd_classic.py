"""Erlang's EPMD requests (joerl.epmd._classic): byte vectors as OTP 25's erl and epmd send
them, fed whole and one byte at a time; ALIVE2 names epmd refuses are events, not errors."""

from __future__ import annotations

import struct

import pytest
from _epmd_vectors import (  # tests/unit/_epmd_vectors.py
    ERL_ALIVE2,
    MODES,
    names,
    requests_fed,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from joerl.epmd.protocol import (
    Alive2Rejected,
    Alive2Req,
    ClassicReplyDecoder,
    NodeInfo,
    Port2Resp,
    PortPlease2Req,
    RequestDecoder,
)


@pytest.mark.parametrize("how", MODES)
def test_alive2_from_erl(how: str) -> None:
    reqs, dec = requests_fed(ERL_ALIVE2, how)
    assert reqs == [
        Alive2Req(port=0x9D25, name="reg1", node_type=77, protocol=0, highest_version=6, lowest_version=5, extra=b"")
    ]
    assert dec.buffered == 0


def test_alive2_encodes_as_erl_does() -> None:
    assert Alive2Req(0x9D25, "reg1", 77, 0, 6, 5).encode() == ERL_ALIVE2


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


@given(names, st.integers(0, 65535), st.integers(0, 255), st.binary(max_size=50))
@settings(max_examples=100, deadline=None)
def test_alive2_and_port2_roundtrip_property(name: str, port: int, ntype: int, extra: bytes) -> None:
    if len(name.encode()) > 255:
        return
    req = Alive2Req(port, name, ntype, 0, 6, 5, extra)
    assert RequestDecoder().feed(req.encode()) == [req]
    node = NodeInfo(name, "", port, {}, 0, ntype, 0, 6, 5, extra, "erlang")
    assert ClassicReplyDecoder(PortPlease2Req(name)).feed(Port2Resp(node).encode()) == Port2Resp(node)
