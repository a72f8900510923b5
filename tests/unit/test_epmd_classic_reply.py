"""Erlang's EPMD replies (joerl.epmd._classic_reply): byte vectors fed whole, one byte at a
time and followed by extra bytes; random bytes give only EpmdProtocolError."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from _epmd_vectors import (  # tests/unit/_epmd_vectors.py
    ERL_NAMES,
    ERL_PORT2_HIT,
    MODES,
    only_protocol_errors,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from joerl.epmd.protocol import (
    Alive2Req,
    Alive2Resp,
    ClassicReplyDecoder,
    DumpReq,
    DumpResp,
    EpmdProtocolError,
    ExtReplyDecoder,
    KillReq,
    KillResp,
    NamesReq,
    NamesResp,
    NodeInfo,
    Ping,
    Port2Resp,
    PortPlease2Req,
    StopReq,
    StopResp,
)
from joerl.errors import LocalProtocolError


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


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_random_bytes_into_reply_decoders(data: bytes) -> None:
    for req in (Alive2Req(1, "a"), PortPlease2Req("a"), NamesReq(), DumpReq(), KillReq(), StopReq("a")):

        def run(req: Any = req) -> None:
            dec = ClassicReplyDecoder(req)
            if dec.feed(data) is None:
                dec.feed_eof()

        only_protocol_errors(run)
    only_protocol_errors(lambda: ExtReplyDecoder().feed(data))
    only_protocol_errors(lambda: ExtReplyDecoder().feed(b"J" + struct.pack(">I", len(data)) + data))


@pytest.mark.parametrize("how", ["whole", "bytewise"])
def test_names_listing_with_a_forged_line_keeps_the_valid_ones(how: str) -> None:
    """A daemon that let ``evil\\nname forged`` register lists it over two lines:
    the client keeps every valid line and counts the rest."""
    text = b"name good at port 5000\nname evil\nname forged at port 1 at port 6000\nname x at port p\nname b\x1bc at port 7\n"
    reply, _ = replies_fed(NamesReq(), b"\x00\x00\x11\x11" + text, how, True)
    assert reply == NamesResp(0x1111, (("good", 5000), ("forged at port 1", 6000)), skipped=3)
    reply, _ = replies_fed(NamesReq(), b"\x00\x00\x11\x11name one at port 99999\n", how, True)
    assert reply == NamesResp(0x1111, (), skipped=1)  # (no such port)
