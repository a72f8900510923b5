"""Byte vectors for the link handshake (joerl/node/hello.py, joerl/node/handshake.py).

Every engine is fed whole, one byte at a time, and followed by extra bytes
(the first link frames); random bytes and random maps into it give only our
protocol errors.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

import msgpack
import pytest

from joerl.errors import AuthenticationError, LocalProtocolError
from joerl.node import protocol as p
from joerl.node.hello import pack_message
from joerl.node.protocol import (
    Established,
    FrameDecoder,
    Handshake,
    HandshakeProtocolError,
    HandshakeRefused,
    HandshakeState,
    HelloReceived,
    NodeIdCollision,
    NodeIdentity,
    Role,
    SimultaneousConnect,
    encode_frame,
)
from joerl.pid import Pid
from joerl.testing import fixed_random

COOKIE = b"secret-cookie"
A = NodeIdentity("alpha", 0x0A0A0A0A, creation=7, incarnation=0xA1A2A3A4A5A6A7A8)
B = NodeIdentity("beta", 0x0B0B0B0B, creation=9, incarnation=0xB1B2B3B4B5B6B7B8)


def engines(
    local_i: NodeIdentity = A, local_a: NodeIdentity = B, cookie_i: bytes = COOKIE, cookie_a: bytes = COOKIE, **kw: Any
) -> tuple[Handshake, Handshake]:
    kw_i = {k[2:]: v for k, v in kw.items() if k.startswith("i_")}
    kw_a = {k[2:]: v for k, v in kw.items() if k.startswith("a_")}
    ini = Handshake(Role.INITIATOR, local_i, cookie_i, random_bytes=fixed_random(1), **kw_i)
    acc = Handshake(Role.ACCEPTOR, local_a, cookie_a, random_bytes=fixed_random(101), **kw_a)
    return ini, acc


def feed_split(engine: Handshake, data: bytes, mode: str) -> list[Any]:
    """Feed ``data`` whole or one byte at a time; collect the events."""
    if mode == "whole":
        return engine.feed(data)
    events: list[Any] = []
    for i in range(len(data)):
        events += engine.feed(data[i : i + 1])
    if not data:
        events += engine.feed(b"")
    return events


def handshake(ini: Handshake, acc: Handshake, mode: str = "whole", after_ack: bytes = b"") -> dict[str, Any]:
    """Pump bytes between two engines, accepting every HELLO; return the events and the wire."""
    wire: list[bytes] = []
    ev_a = feed_split(acc, _take(ini, wire), mode)
    assert [type(e) for e in ev_a] == [HelloReceived]
    assert acc.state is HandshakeState.AWAIT_DECISION
    acc.accept()
    ev_i = feed_split(ini, _take(acc, wire), mode)
    assert [type(e) for e in ev_i] == [HelloReceived]
    ini.accept()
    ev_a = feed_split(acc, _take(ini, wire), mode)
    assert [type(e) for e in ev_a] == [Established]
    ev_i = feed_split(ini, _take(acc, wire) + after_ack, mode)
    assert [type(e) for e in ev_i] == [Established]
    return {"initiator": ev_i[0], "acceptor": ev_a[0], "wire": wire}


def _take(engine: Handshake, wire: list[bytes]) -> bytes:
    out = engine.data_to_send()
    wire.append(out)
    return out


def split_messages(data: bytes) -> list[tuple[bytes, dict[str, Any]]]:
    """Cut handshake bytes into (raw message, decoded body)."""
    out = []
    while data:
        (n,) = struct.unpack(">H", data[:2])
        raw, data = data[: 2 + n], data[2 + n :]
        out.append((raw, msgpack.unpackb(raw[2:])))
    return out


# -- handshake: the happy path ------------------------------------------------------


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_handshake_establishes_both_sides(mode: str) -> None:
    ini, acc = engines()
    result = handshake(ini, acc, mode)
    est_i: Established = result["initiator"]
    est_a: Established = result["acceptor"]
    assert est_i.peer == p.PeerHello(
        "beta", B.node_id, 9, p.DEFAULT_FLAGS, 3, p.DEFAULT_TICK_MS, p.DEFAULT_MAX_FRAME_SIZE, B.incarnation, 3
    )
    assert est_a.peer.name == "alpha" and est_a.peer.node_id == A.node_id and est_a.peer.creation == 7
    assert est_a.peer.incarnation == 0xA1A2A3A4A5A6A7A8
    assert est_i.version == est_a.version == 3
    assert est_i.status == est_a.status == "ok"
    assert est_i.leftover == est_a.leftover == b""
    assert ini.state is acc.state is HandshakeState.DONE
    with pytest.raises(LocalProtocolError):
        ini.feed(b"x")


def test_handshake_byte_vectors() -> None:
    """The layout on the wire, and MACs recomputed independently from the spec."""
    ini, acc = engines()
    wire = handshake(ini, acc)["wire"]
    hello_i_raw, hello_i = split_messages(wire[0])[0]
    assert hello_i == {
        "t": "hello", "v": 3, "vmin": 3, "name": "alpha", "id": 0x0A0A0A0A, "creation": 7,
        "incarnation": 0xA1A2A3A4A5A6A7A8, "flags": p.DEFAULT_FLAGS,
        "challenge": fixed_random(1)(32), "tick_ms": 60000, "max_frame": 64 * 1024 * 1024,
    }  # fmt: skip
    # the incarnation id travels as a msgpack uint 64: cf + 8 bytes, big-endian
    assert bytes.fromhex("ab 696e6361726e6174696f6e cf a1a2a3a4a5a6a7a8") in hello_i_raw
    assert hello_i_raw[:2] == struct.pack(">H", len(hello_i_raw) - 2)
    (status_raw, status), (hello_a_raw, hello_a) = split_messages(wire[1])
    assert status == {"t": "status", "status": "ok", "reason": ""}
    assert hello_a["name"] == "beta" and hello_a["challenge"] == fixed_random(101)(32)
    [(_, reply)] = split_messages(wire[2])
    [(_, ack)] = split_messages(wire[3])
    transcript = hello_i_raw + hello_a_raw
    mac_i = hmac.new(COOKIE, b"joerl-dist initiator\x00" + transcript, hashlib.sha256).digest()
    mac_a = hmac.new(COOKIE, b"joerl-dist acceptor\x00" + transcript, hashlib.sha256).digest()
    assert reply == {"t": "reply", "mac": mac_i}
    assert ack == {"t": "ack", "mac": mac_a}
    assert all(COOKIE not in chunk for chunk in wire), "the cookie must never travel"
    # Deterministic given the injected randomness.
    ini2, acc2 = engines()
    assert handshake(ini2, acc2)["wire"] == wire


def test_str_cookie_is_utf8() -> None:
    ini, acc = engines(cookie_i="sécret".encode(), cookie_a="sécret")  # type: ignore[arg-type]
    handshake(ini, acc)


def test_frames_right_after_ack_are_not_lost() -> None:
    frames = encode_frame(p.Send(Pid(2, 1, 0), Pid(1, 1, 0), b"x")) + p.TICK_FRAME + b"\x00\x00"
    ini, acc = engines()
    est = handshake(ini, acc, "whole", after_ack=frames)["initiator"]
    assert est.leftover == frames
    dec = FrameDecoder()
    assert dec.feed(est.leftover) == [p.Send(Pid(2, 1, 0), Pid(1, 1, 0), b"x")]
    assert dec.ticks == 1 and dec.buffered() == 2


def test_frames_after_ack_bytewise() -> None:
    """Byte by byte: the handshake stops exactly at the end of ACK; the rest is the decoder's."""
    frame = encode_frame(p.Send(Pid(2, 1, 0), Pid(1, 1, 0), b"x"))
    ini, acc = engines()
    acc.feed(ini.data_to_send())
    acc.accept()
    ini.feed(acc.data_to_send())
    ini.accept()
    [est_a] = acc.feed(ini.data_to_send())
    stream = acc.data_to_send() + frame + frame
    dec = FrameDecoder()
    out: list[Any] = []
    established = None
    for i in range(len(stream)):
        if established is None:
            events = ini.feed(stream[i : i + 1])
            if events:
                [established] = events
                assert established.leftover == b""
                assert i == len(stream) - 2 * len(frame) - 1
        else:
            out += dec.feed(stream[i : i + 1])
    assert out == [p.Send(Pid(2, 1, 0), Pid(1, 1, 0), b"x")] * 2


def test_all_handshake_input_at_once() -> None:
    """STATUS, HELLO_A and trailing bytes in one feed; processing pauses at HelloReceived."""
    ini, acc = engines()
    acc.feed(ini.data_to_send())
    acc.accept()
    events = ini.feed(acc.data_to_send())
    assert [type(e) for e in events] == [HelloReceived]
    ini.accept()
    assert ini.feed(b"") == []


def test_bytes_during_decision_are_kept() -> None:
    ini, acc = engines()
    hello = ini.data_to_send()
    assert [type(e) for e in acc.feed(hello + b"\x00")] == [HelloReceived]
    assert acc.feed(b"\x05") == []  # buffered while the decision is pending
    acc.accept()
    with pytest.raises(HandshakeProtocolError):  # a 5-byte message that never was a REPLY
        acc.feed(b"12345")


# -- handshake: authentication ------------------------------------------------------


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_wrong_cookie_refused_on_both_sides(mode: str) -> None:
    ini, acc = engines(cookie_a=b"another-cookie")
    acc.feed(ini.data_to_send())
    acc.accept()
    ini.feed(acc.data_to_send())
    ini.accept()
    with pytest.raises(AuthenticationError, match="failed the cookie challenge"):
        feed_split(acc, ini.data_to_send(), mode)
    assert acc.state is HandshakeState.CLOSED
    abort = acc.data_to_send()
    [(_, body)] = split_messages(abort)
    assert body["t"] == "abort" and body["status"] == "auth_failed"
    assert b"another-cookie" not in abort and COOKIE not in abort
    with pytest.raises(AuthenticationError, match="cookie does not match"):
        feed_split(ini, abort, mode)
    assert ini.state is HandshakeState.CLOSED


def test_forged_ack_is_refused_by_initiator() -> None:
    """An acceptor that does not know the cookie cannot fake its ACK."""
    ini, acc = engines()
    acc.feed(ini.data_to_send())
    acc.accept()
    ini.feed(acc.data_to_send())
    ini.accept()
    reply = ini.data_to_send()
    [(_, body)] = split_messages(reply)
    # Reflect the initiator's own MAC back as the ACK: the label differs.
    reflected = pack_message({"t": "ack", "mac": body["mac"]})
    with pytest.raises(AuthenticationError):
        ini.feed(reflected)


def test_replayed_reply_fails() -> None:
    """A REPLY recorded from one handshake is useless in the next (fresh challenge)."""
    ini, acc = engines()
    wire = handshake(ini, acc)["wire"]
    ini2 = Handshake(Role.INITIATOR, A, b"wrong", random_bytes=fixed_random(1))
    acc2 = Handshake(Role.ACCEPTOR, B, COOKIE, random_bytes=fixed_random(55))
    acc2.feed(ini2.data_to_send())
    acc2.accept()
    with pytest.raises(AuthenticationError):
        acc2.feed(wire[2])


# -- handshake: refusals -------------------------------------------------------------


def test_id_collision_refused_on_both_sides() -> None:
    twin = NodeIdentity("gamma", A.node_id, creation=1)
    ini, acc = engines(local_a=twin)
    with pytest.raises(NodeIdCollision, match="rename one") as local:
        acc.feed(ini.data_to_send())
    assert local.value.status == "id_collision" and not local.value.by_peer and local.value.peer == "alpha"
    with pytest.raises(NodeIdCollision, match="refused the link: id_collision") as remote:
        ini.feed(acc.data_to_send())
    assert remote.value.by_peer and remote.value.peer is None


def test_id_collision_with_another_linked_node_via_refuse() -> None:
    """The node's tables find another peer with this id: refuse('id_collision')."""
    ini, acc = engines()
    [event] = acc.feed(ini.data_to_send())
    acc.refuse("id_collision", f"node 'delta' already has id {event.peer.node_id:#x}")
    with pytest.raises(NodeIdCollision, match="delta"):
        ini.feed(acc.data_to_send())


def test_initiator_refuses_id_collision_of_acceptor() -> None:
    ini, acc = engines()
    [event] = acc.feed(ini.data_to_send())
    acc.accept()
    [event] = ini.feed(acc.data_to_send())
    ini.refuse("id_collision", "beta's id is taken here")
    with pytest.raises(NodeIdCollision) as exc:
        acc.feed(ini.data_to_send())
    assert exc.value.by_peer and exc.value.peer == "alpha"


def test_version_mismatch_refused_by_acceptor() -> None:
    """An acceptor of versions 5..6 refuses an initiator of 3: both raise
    IncompatibleVersion naming both ranges."""
    ini, acc = engines(a_version=6, a_min_version=5)
    with pytest.raises(
        p.IncompatibleVersion, match=r"this node speaks versions 5\.\.6, node 'alpha' speaks version 3"
    ) as local:
        acc.feed(ini.data_to_send())
    assert (local.value.status, local.value.by_peer, local.value.peer) == ("not_allowed", False, "alpha")
    assert (local.value.local_versions, local.value.peer_versions) == ((5, 6), (3, 3))
    wire = acc.data_to_send()
    [(_, refusal)] = split_messages(wire)
    assert refusal["t"] == "status" and refusal["status"] == "not_allowed" and refusal["versions"] == [5, 6]
    with pytest.raises(
        p.IncompatibleVersion, match=r"this node speaks version 3, the peer speaks versions 5\.\.6"
    ) as remote:
        ini.feed(wire)
    assert remote.value.by_peer and remote.value.local_versions == (3, 3) and remote.value.peer_versions == (5, 6)
    assert isinstance(remote.value, HandshakeRefused) and ini.state is acc.state is HandshakeState.CLOSED


def test_version_mismatch_seen_through_the_peers_vmin() -> None:
    """An acceptor of 3 meets an initiator of 4..4: the overlap is empty, and
    the acceptor sees it from the HELLO's vmin and refuses at once."""
    ini, acc = engines(i_version=4, i_min_version=4)
    with pytest.raises(p.IncompatibleVersion) as local:
        acc.feed(ini.data_to_send())
    assert local.value.local_versions == (3, 3) and local.value.peer_versions == (4, 4)
    with pytest.raises(p.IncompatibleVersion, match="speaks version 3"):
        ini.feed(acc.data_to_send())


def test_version_mismatch_abort_carries_versions() -> None:
    """The initiator refuses the acceptor's HELLO: an ABORT with its versions."""
    ini, acc = engines(i_version=4, i_min_version=4, a_version=3, a_min_version=3)
    acc_msg = ini.data_to_send()
    hello_i = split_messages(acc_msg)[0][1]
    # What an acceptor that does not check vmin (protocol 2) would do: accept.
    acc.feed(pack_message({**hello_i, "vmin": 3}))
    acc.accept()
    with pytest.raises(p.IncompatibleVersion) as local:
        ini.feed(acc.data_to_send())
    assert not local.value.by_peer and local.value.peer_versions == (3, 3)
    [(_, abort)] = split_messages(ini.data_to_send())
    assert abort == {"t": "abort", "status": "not_allowed", "reason": abort["reason"], "versions": [4, 4]}
    with pytest.raises(p.IncompatibleVersion, match="speaks version 4") as remote:
        acc.feed(pack_message(abort))
    assert remote.value.by_peer


def test_refusal_without_versions_is_a_plain_refusal() -> None:
    """A not_allowed refusal from a peer that sends no versions (protocol 2)
    stays a HandshakeRefused with the peer's reason."""
    ini = Handshake(Role.INITIATOR, A, COOKIE)
    with pytest.raises(HandshakeRefused, match="too old") as exc:
        ini.feed(pack_message({"t": "status", "status": "not_allowed", "reason": "protocol version 3 is too old"}))
    assert not isinstance(exc.value, p.IncompatibleVersion)


def test_newer_peer_version_negotiates_down() -> None:
    ini, acc = engines(i_version=5)
    result = handshake(ini, acc)
    assert result["initiator"].version == result["acceptor"].version == 3
    assert result["acceptor"].peer.version == 5 and result["acceptor"].peer.min_version == 3


def test_same_name_refused() -> None:
    ini, acc = engines(local_a=NodeIdentity("alpha", 99))
    with pytest.raises(HandshakeRefused, match="own name"):
        acc.feed(ini.data_to_send())


def test_expected_peer_mismatch_refused_by_initiator() -> None:
    ini, acc = engines(i_expected_peer="gamma")
    acc.feed(ini.data_to_send())
    acc.accept()
    with pytest.raises(HandshakeRefused, match="dialled 'gamma' but 'beta' answered"):
        ini.feed(acc.data_to_send())


def test_mandatory_flags() -> None:
    ini, acc = engines(local_i=NodeIdentity("alpha", 1, flags=p.FLAG_LINKS), a_mandatory_flags=p.FLAG_SPAWN)
    with pytest.raises(HandshakeRefused, match="mandatory capability flags 0x8"):
        acc.feed(ini.data_to_send())


def test_flags_in_use_are_the_and() -> None:
    ini, acc = engines(local_i=NodeIdentity("alpha", 1, flags=p.FLAG_LINKS | p.FLAG_SPAWN))
    result = handshake(ini, acc)
    assert result["initiator"].flags == result["acceptor"].flags == p.FLAG_LINKS | p.FLAG_SPAWN


def test_busy_refusal() -> None:
    ini, acc = engines()
    acc.feed(ini.data_to_send())
    acc.refuse("busy", "a link with 'alpha' is up")
    assert acc.state is HandshakeState.CLOSED
    with pytest.raises(HandshakeRefused, match="busy") as exc:
        ini.feed(acc.data_to_send())
    assert exc.value.status == "busy" and not isinstance(exc.value, SimultaneousConnect)


def test_local_misuse_raises_local_protocol_error() -> None:
    ini, acc = engines()
    with pytest.raises(LocalProtocolError):
        acc.accept()
    acc.feed(ini.data_to_send())
    with pytest.raises(LocalProtocolError):
        acc.refuse("ok")
    with pytest.raises(LocalProtocolError):
        acc.refuse("nok")
    acc.accept()
    [event] = ini.feed(acc.data_to_send())
    with pytest.raises(LocalProtocolError):
        ini.accept(dialing=True)


@pytest.mark.parametrize(
    "kwargs",
    [{"cookie": b""}, {"tick_ms": -1}, {"max_frame_size": 10}, {"min_version": 4}, {"challenge_size": 8}],
)
def test_bad_arguments(kwargs: dict[str, Any]) -> None:
    args = {"cookie": COOKIE, **kwargs}
    cookie = args.pop("cookie")
    with pytest.raises(ValueError):
        Handshake(Role.INITIATOR, A, cookie, **args)


def test_bad_identity() -> None:
    for bad in [("", 1), ("x" * 256, 1), ("a\nb", 1), ("a", 0), ("a", 2**32)]:
        with pytest.raises(ValueError):
            NodeIdentity(*bad)
    with pytest.raises(ValueError):
        NodeIdentity("a", 1, creation=-1)
    for incarnation in (0, -1, 2**64):
        with pytest.raises(ValueError, match="incarnation"):
            NodeIdentity("a", 1, incarnation=incarnation)
    # the default incarnation is random, new for every identity (every start of a node)
    assert NodeIdentity("a", 1).incarnation != NodeIdentity("a", 1).incarnation


# -- handshake: simultaneous connect -------------------------------------------------


def test_dial_survives_rule() -> None:
    assert p.dial_survives("beta", "alpha") and not p.dial_survives("alpha", "beta")
    assert p.dial_survives("b", "a@host") and p.dial_survives("é", "z")  # UTF-8 bytes


@pytest.mark.parametrize("order", ["small_first", "large_first"])
def test_simultaneous_connect_converges_to_one_link(order: str) -> None:
    """alpha and beta dial each other at once: only beta's dial (the larger name) survives."""
    a_dials = Handshake(Role.INITIATOR, A, COOKIE, expected_peer="beta")
    b_dials = Handshake(Role.INITIATOR, B, COOKIE, expected_peer="alpha")
    b_accepts = Handshake(Role.ACCEPTOR, B, COOKIE)  # receives alpha's dial
    a_accepts = Handshake(Role.ACCEPTOR, A, COOKIE)  # receives beta's dial
    hello_a, hello_b = a_dials.data_to_send(), b_dials.data_to_send()

    def at_beta() -> None:
        b_accepts.feed(hello_a)
        assert b_accepts.accept(dialing=True) == "nok"  # beta > alpha: its own dial wins
        assert b_accepts.state is HandshakeState.CLOSED
        with pytest.raises(SimultaneousConnect) as exc:
            a_dials.feed(b_accepts.data_to_send())
        assert exc.value.by_peer and exc.value.status == "nok"

    def at_alpha() -> None:
        a_accepts.feed(hello_b)
        assert a_accepts.accept(dialing=True) == "ok_simultaneous"

    for step in (at_beta, at_alpha) if order == "large_first" else (at_alpha, at_beta):
        step()
    [event] = b_dials.feed(a_accepts.data_to_send())
    b_dials.accept()
    [est_a] = a_accepts.feed(b_dials.data_to_send())
    [est_b] = b_dials.feed(a_accepts.data_to_send())
    assert est_a.status == est_b.status == "ok_simultaneous"
    assert est_a.peer.name == "beta" and est_b.peer.name == "alpha"
    assert a_dials.state is b_accepts.state is HandshakeState.CLOSED
