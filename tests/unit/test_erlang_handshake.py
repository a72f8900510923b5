"""Erlang's handshake v6 engine: byte vectors (whole, byte by byte, with
trailing bytes), digests, flags, simultaneous connect, wrong cookies, and
telling an Erlang dialler from a joerl one."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joerl.erlang import dflags
from joerl.erlang.handshake import (
    ERLANG,
    JOERL,
    UNKNOWN,
    Connected,
    ErlangHandshake,
    NameReceived,
    Role,
    detect_protocol,
    digest,
)
from joerl.errors import (
    AuthenticationError,
    HandshakeError,
    HandshakeProtocolError,
    HandshakeRefused,
    LocalProtocolError,
    SimultaneousConnect,
)
from joerl.node.hello import pack_message

A_NAME, B_NAME = "a@host", "b@host"
CA, CB = 0x11111111, 0x22222222  # the initiator's and the acceptor's challenges


def initiator(cookie: str = "C", name: str = A_NAME, peer: str = B_NAME, **kw: object) -> ErlangHandshake:
    return ErlangHandshake(Role.INITIATOR, name, cookie, 5, expected_peer=peer, random_u32=lambda: CA, **kw)  # type: ignore[arg-type]


def acceptor(cookie: str = "C", name: str = B_NAME, **kw: object) -> ErlangHandshake:
    return ErlangHandshake(Role.ACCEPTOR, name, cookie, 6, random_u32=lambda: CB, **kw)  # type: ignore[arg-type]


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


F = dflags.DEFAULT_FLAGS
SEND_NAME = frame(b"N" + struct.pack(">QIH", F, 5, 6) + b"a@host")
STATUS_OK = frame(b"sok")
CHALLENGE = frame(b"N" + struct.pack(">QIIH", F, CB, 6, 6) + b"b@host")
REPLY = frame(b"r" + struct.pack(">I", CA) + digest(b"C", CB))
ACK = frame(b"a" + digest(b"C", CA))


def test_digest_vectors_checked_against_erlang_md5() -> None:
    assert digest(b"C", 4294967295).hex().upper() == "57E5AA134C1B0C99CCBE407EF4B372D4"
    assert digest(b"SECRETCOOKIE", 123456789).hex().upper() == "C115295CCC44642DB67858DDB86C2585"
    assert digest(b"abc", 0).hex().upper() == "577571BE4DE9DCCE85A041BA0410F29F"


def test_send_name_matches_otp_25_bytes() -> None:
    hs = ErlangHandshake(Role.INITIATOR, "e1@vm", "C", 0x6B07ECB0, flags=0xD07DF7FBD, expected_peer="x@vm")
    assert hs.data_to_send() == bytes.fromhex("00144e0000000d07df7fbd6b07ecb00005") + b"e1@vm"


@pytest.mark.parametrize("split", ["whole", "bytewise"])
def test_byte_vectors_both_roles(split: str) -> None:
    def chunks(data: bytes) -> list[bytes]:
        return [data] if split == "whole" else [data[i : i + 1] for i in range(len(data))]

    a = initiator()
    assert a.data_to_send() == SEND_NAME
    b = acceptor()
    events: list[object] = []
    for c in chunks(SEND_NAME):
        events += b.feed(c)
    assert events == [NameReceived(A_NAME, F, 5)]
    assert b.accept() == "ok"
    assert b.data_to_send() == STATUS_OK + CHALLENGE
    events = []
    for c in chunks(STATUS_OK + CHALLENGE):
        events += a.feed(c)
    assert events == [] and a.data_to_send() == REPLY
    events = []
    for c in chunks(REPLY):
        events += b.feed(c)
    assert events == [Connected(A_NAME, F, 5, F, b"")] and b.done
    assert b.data_to_send() == ACK
    events = []
    for c in chunks(ACK):
        events += a.feed(c)
    assert events == [Connected(B_NAME, F, 6, F, b"")] and a.done
    with pytest.raises(LocalProtocolError):
        a.feed(b"x")


def test_trailing_bytes_become_leftover() -> None:
    a, b = initiator(), acceptor()
    b.feed(a.data_to_send())
    b.accept()
    a.feed(b.data_to_send())
    tick = b"\x00\x00\x00\x00"
    [done] = b.feed(a.data_to_send() + tick)
    assert isinstance(done, Connected) and done.leftover == tick
    [done] = a.feed(b.data_to_send() + tick + b"p")
    assert isinstance(done, Connected) and done.leftover == tick + b"p"
    b2 = acceptor()  # a name message followed by more: processing stops at the decision
    assert b2.feed(SEND_NAME + b"\x00\x01x") == [NameReceived(A_NAME, F, 5)]
    b2.accept()
    with pytest.raises(HandshakeProtocolError, match="unexpected"):
        b2.feed(b"")  # the buffered bytes are processed after the decision


def test_wrong_cookie_refused_on_both_sides() -> None:
    a, b = initiator(cookie="ONE"), acceptor(cookie="TWO")
    b.feed(a.data_to_send())
    b.accept()
    a.feed(b.data_to_send())
    with pytest.raises(AuthenticationError, match="cookie"):
        b.feed(a.data_to_send())
    assert b.data_to_send() == b""  # no ack: Erlang closes, as we do
    assert isinstance(a.closed_error(), AuthenticationError)
    a2, b2 = initiator(), acceptor()
    b2.feed(a2.data_to_send())
    b2.accept()
    a2.feed(b2.data_to_send())
    b2.feed(a2.data_to_send())
    with pytest.raises(AuthenticationError):
        a2.feed(frame(b"a" + digest(b"OTHER", CA)))


def test_missing_flags_are_refused_with_a_clear_error() -> None:
    b = acceptor()
    old = dflags.MANDATORY_25 & ~dflags.UTF8_ATOMS | dflags.UNLINK_ID | dflags.V4_NC
    with pytest.raises(HandshakeRefused, match="UTF8_ATOMS"):
        b.feed(frame(b"N" + struct.pack(">QIH", old, 5, 6) + b"a@host"))
    assert b.data_to_send() == frame(b"snot_allowed")
    b = acceptor()
    with pytest.raises(HandshakeRefused, match="V4_NC"):  # OTP 26 requires it; so do we
        b.feed(frame(b"N" + struct.pack(">QIH", dflags.MANDATORY_25 | dflags.UNLINK_ID, 5, 6) + b"a@host"))
    digest_only = dflags.MANDATORY_25_DIGEST | dflags.UNLINK_ID | dflags.V4_NC
    assert acceptor().feed(frame(b"N" + struct.pack(">QIH", digest_only, 5, 6) + b"a@host"))
    a = initiator()
    a.feed(STATUS_OK)
    with pytest.raises(HandshakeRefused, match="UNLINK_ID"):
        a.feed(frame(b"N" + struct.pack(">QIIH", dflags.MANDATORY_25 | dflags.V4_NC, CB, 6, 6) + b"b@host"))
    with pytest.raises(HandshakeRefused, match="not_allowed"):
        initiator().feed(frame(b"snot_allowed"))


def test_simultaneous_connect_decided_by_name_as_erlang_does() -> None:
    big = acceptor(name="z@host")  # our name is greater: our dial survives
    big.feed(SEND_NAME)
    assert big.accept(dialing=True) == "nok" and big.data_to_send() == frame(b"snok")
    small = acceptor(name="0@host")
    small.feed(SEND_NAME)
    assert small.accept(dialing=True) == "ok_simultaneous"
    assert small.data_to_send().startswith(frame(b"sok_simultaneous"))
    with pytest.raises(SimultaneousConnect):
        initiator().feed(frame(b"snok"))
    a = initiator()
    a.data_to_send()
    assert a.feed(frame(b"sok_simultaneous") + CHALLENGE) == [] and a.data_to_send() == REPLY


def test_alive_status_and_the_answer() -> None:
    a, b = initiator(), acceptor()
    b.feed(a.data_to_send())
    assert b.accept(connected=True) == "alive"
    assert b.data_to_send() == frame(b"salive")
    a.feed(frame(b"salive"))
    assert a.data_to_send() == frame(b"strue")  # we are dialling: the peer's connection is stale
    assert b.feed(frame(b"strue")) == []
    assert b.data_to_send() == CHALLENGE
    b2 = acceptor()
    b2.feed(SEND_NAME)
    b2.accept(connected=True)
    with pytest.raises(HandshakeRefused, match="alive"):
        b2.feed(frame(b"sfalse"))


def test_refuse_and_bad_input() -> None:
    b = acceptor()
    b.feed(SEND_NAME)
    b.refuse()
    assert b.data_to_send() == frame(b"snot_allowed")
    with pytest.raises(LocalProtocolError):
        acceptor().accept()
    with pytest.raises(HandshakeProtocolError, match="name@host"):
        acceptor().feed(frame(b"N" + struct.pack(">QIH", F, 5, 4) + b"noat"))
    with pytest.raises(HandshakeProtocolError, match="version 5"):
        acceptor().feed(frame(b"n\x00\x05" + b"\x00" * 4 + b"a@host"))
    with pytest.raises(HandshakeProtocolError, match="cut short"):
        acceptor().feed(frame(b"N" + struct.pack(">QIH", F, 5, 60) + b"a@host"))
    with pytest.raises(HandshakeProtocolError, match="bytes"):
        acceptor().feed(b"\x00\x00")
    with pytest.raises(HandshakeRefused, match="answered"):
        initiator(peer="c@host").feed(STATUS_OK + CHALLENGE)
    with pytest.raises(HandshakeProtocolError, match="status"):
        initiator().feed(frame(b"snamed:"))
    with pytest.raises(ValueError):
        ErlangHandshake(Role.INITIATOR, "a@host", "C", 1)  # no expected_peer
    with pytest.raises(ValueError):
        ErlangHandshake(Role.ACCEPTOR, "nohost", "C", 1)
    with pytest.raises(ValueError):
        ErlangHandshake(Role.ACCEPTOR, "a@host", "", 1)


def test_detect_protocol_by_first_bytes() -> None:
    assert detect_protocol(SEND_NAME[:3]) == ERLANG
    assert detect_protocol(b"\x00\x10n") == ERLANG
    assert detect_protocol(pack_message({"t": "hello", "v": 3})[:3]) == JOERL
    assert detect_protocol(b"\x16\x03\x01") == UNKNOWN  # e.g. TLS
    assert detect_protocol(b"\x00") is None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80), st.sampled_from([Role.INITIATOR, Role.ACCEPTOR]))
def test_fuzz_random_bytes_give_only_handshake_errors(data: bytes, role: Role) -> None:
    hs = initiator() if role is Role.INITIATOR else acceptor()
    try:
        for event in hs.feed(data):
            if isinstance(event, NameReceived):
                hs.accept()
                hs.feed(b"")
    except HandshakeError:
        pass
