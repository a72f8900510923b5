"""Byte vectors for the node-link protocol (joerl/node/protocol.py): handshake and frames.

Every decoder is fed whole, one byte at a time, and followed by extra bytes;
random bytes into every decoder give only our protocol errors.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import struct
import time
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joerl.errors import AuthenticationError, HandshakeError, LocalProtocolError, ProtocolError, RemoteProtocolError
from joerl.node import protocol as p
from joerl.node.protocol import (
    Established,
    FrameDecoder,
    FrameEncoder,
    FrameError,
    Handshake,
    HandshakeProtocolError,
    HandshakeRefused,
    HandshakeState,
    HelloReceived,
    NodeIdCollision,
    NodeIdentity,
    OversizedFrame,
    Role,
    SimultaneousConnect,
    encode_frame,
)
from joerl.pid import Pid, Ref

COOKIE = b"secret-cookie"
A = NodeIdentity("alpha", 0x0A0A0A0A, creation=7)
B = NodeIdentity("beta", 0x0B0B0B0B, creation=9)


def fixed_bytes(seed: int) -> Callable[[int], bytes]:
    """A deterministic random_bytes, so handshakes are byte-for-byte reproducible."""
    return lambda n: bytes((seed + i) & 0xFF for i in range(n))


def engines(
    local_i: NodeIdentity = A, local_a: NodeIdentity = B, cookie_i: bytes = COOKIE, cookie_a: bytes = COOKIE, **kw: Any
) -> tuple[Handshake, Handshake]:
    kw_i = {k[2:]: v for k, v in kw.items() if k.startswith("i_")}
    kw_a = {k[2:]: v for k, v in kw.items() if k.startswith("a_")}
    ini = Handshake(Role.INITIATOR, local_i, cookie_i, random_bytes=fixed_bytes(1), **kw_i)
    acc = Handshake(Role.ACCEPTOR, local_a, cookie_a, random_bytes=fixed_bytes(101), **kw_a)
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
        "beta", B.node_id, 9, p.DEFAULT_FLAGS, 2, p.DEFAULT_TICK_MS, p.DEFAULT_MAX_FRAME_SIZE
    )
    assert est_a.peer.name == "alpha" and est_a.peer.node_id == A.node_id and est_a.peer.creation == 7
    assert est_i.version == est_a.version == 2
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
        "t": "hello", "v": 2, "name": "alpha", "id": 0x0A0A0A0A, "creation": 7, "flags": p.DEFAULT_FLAGS,
        "challenge": fixed_bytes(1)(32), "tick_ms": 60000, "max_frame": 64 * 1024 * 1024,
    }  # fmt: skip
    assert hello_i_raw[:2] == struct.pack(">H", len(hello_i_raw) - 2)
    (status_raw, status), (hello_a_raw, hello_a) = split_messages(wire[1])
    assert status == {"t": "status", "status": "ok", "reason": ""}
    assert hello_a["name"] == "beta" and hello_a["challenge"] == fixed_bytes(101)(32)
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
    reflected = p.Handshake._frame({"t": "ack", "mac": body["mac"]})
    with pytest.raises(AuthenticationError):
        ini.feed(reflected)


def test_replayed_reply_fails() -> None:
    """A REPLY recorded from one handshake is useless in the next (fresh challenge)."""
    ini, acc = engines()
    wire = handshake(ini, acc)["wire"]
    ini2 = Handshake(Role.INITIATOR, A, b"wrong", random_bytes=fixed_bytes(1))
    acc2 = Handshake(Role.ACCEPTOR, B, COOKIE, random_bytes=fixed_bytes(55))
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
    ini, acc = engines(a_version=4, a_min_version=3)
    with pytest.raises(HandshakeRefused, match="version 2 is too old") as local:
        acc.feed(ini.data_to_send())
    assert local.value.status == "not_allowed"
    with pytest.raises(HandshakeRefused, match="not_allowed"):
        ini.feed(acc.data_to_send())


def test_version_mismatch_refused_by_initiator() -> None:
    ini, acc = engines(i_version=3, i_min_version=3)
    acc.feed(ini.data_to_send())  # the acceptor speaks 2, which it may use
    acc.accept()
    with pytest.raises(HandshakeRefused, match="too old"):
        ini.feed(acc.data_to_send())
    with pytest.raises(HandshakeRefused, match="not_allowed") as remote:
        acc.feed(ini.data_to_send())
    assert remote.value.by_peer


def test_newer_peer_version_negotiates_down() -> None:
    ini, acc = engines(i_version=5)
    result = handshake(ini, acc)
    assert result["initiator"].version == result["acceptor"].version == 2


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
    [{"cookie": b""}, {"tick_ms": -1}, {"max_frame_size": 10}, {"min_version": 3}, {"challenge_size": 8}],
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


# -- handshake: garbage --------------------------------------------------------------


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
        (Handshake._frame({"t": "ack", "mac": 1}), "unexpected handshake message 'ack'"),
        (Handshake._frame({"t": "hello", "v": 2}), "HELLO name"),
    ],
)
def test_garbage_into_acceptor(data: bytes, match: str) -> None:
    acc = Handshake(Role.ACCEPTOR, B, COOKIE)
    with pytest.raises(HandshakeProtocolError, match=match):
        acc.feed(data)
    assert acc.state is HandshakeState.CLOSED


def _hello(**override: Any) -> bytes:
    body = {"t": "hello", "v": 2, "name": "x", "id": 5, "creation": 0, "flags": 0, "challenge": b"c" * 16}
    body.update(override)
    return Handshake._frame(body)


@pytest.mark.parametrize(
    "override",
    [
        {"v": 0}, {"v": "1"}, {"name": 5}, {"name": ""}, {"id": 0}, {"id": 2**32}, {"creation": -1},
        {"flags": -1}, {"challenge": b"short"}, {"challenge": "x" * 20}, {"tick_ms": -5}, {"max_frame": 12},
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
        ini.feed(Handshake._frame({"t": "status", "status": "maybe", "reason": ""}))


OUR_ERRORS = (ProtocolError, HandshakeError)


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=300), st.sampled_from(["initiator", "acceptor", "acceptor_after_hello"]))
def test_random_bytes_into_handshake_give_only_our_errors(data: bytes, where: str) -> None:
    ini, acc = engines()
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


# -- frames ----------------------------------------------------------------------------

P1, P2 = Pid(1, 2, 3), Pid(4, 5, 6)
R1 = Ref(1, 99, 3)
ALL_MESSAGES: list[Any] = [
    p.Send(P1, P2, b"hi"),
    p.Send(None, P2, b""),
    p.RegSend(P1, "logger", b"\x01\x02"),
    p.RegSend(None, "net_kernel", b"x"),
    p.Link(P1, P2),
    p.Unlink(P1, P2),
    p.Unlink(P1, P2, 2**64 - 1),
    p.UnlinkAck(P2, P1, 7),
    p.Exit(P1, P2, b"reason"),
    p.Exit2(None, P2, b"kill"),
    p.Exit2(P1, P2, b"shutdown"),
    p.Monitor(P1, P2, R1),
    p.Monitor(P1, "registered", R1),
    p.Demonitor(P1, P2, R1),
    p.Demonitor(P1, "registered", R1),
    p.Down(P2, P1, R1, b"noproc"),
    p.Down("registered", P1, R1, b"normal"),
    p.SpawnRequest(R1, P1, "echo", b"\x90", link=True, monitor=False),
    p.SpawnRequest(R1, P1, "echo", b"\x90"),
    p.SpawnReply(R1, P1, P2),
    p.SpawnReply(R1, P1, "unknown_factory"),
    p.AliveRequest(R1, P2),
    p.AliveReply(R1, True),
    p.AliveReply(R1, False),
    p.CallReply(R1, b"\xa2ok"),
    p.Send(Pid(2**32 - 1, 2**64 - 1, 2**32 - 1), Pid(1, 0, 0), b"max"),
    p.SendTerms(P1, P2, (("ping", 1),)),
    p.SendTerms(None, P2, ("text", b"bin", 0, -(2**63), 2**64 - 1, 1.5, True, None, (), ("a",) * 32)),
    p.SendTerms(P1, P2, tuple(range(p.MAX_MESSAGES_PER_FRAME))),
]
# A pid as a route holds it: node:u32 | id:u64 | creation:u32.
P1_ROUTE = bytes.fromhex("00000001 0000000000000002 00000003")
P2_ROUTE = bytes.fromhex("00000004 0000000000000005 00000006")


def test_send_byte_vector() -> None:
    frame = encode_frame(p.Send(P1, P2, b"hi"))
    body = bytes.fromhex("93 01 c420") + P2_ROUTE + P1_ROUTE + bytes.fromhex("c402 6869")
    assert frame == struct.pack(">I", len(body)) + body
    assert FrameEncoder().send(P1, P2, b"hi") == frame


def test_a_send_of_several_payloads() -> None:
    enc = FrameEncoder()
    route = enc.route(P1, P2)
    frame = enc.send_many(route, [enc.payload(b"a"), enc.payload(b""), enc.payload(b"c" * 300)])
    body = bytes.fromhex("95 01 c420") + P2_ROUTE + P1_ROUTE + bytes.fromhex("c401 61  c400  c5012c") + b"c" * 300
    assert frame == struct.pack(">I", len(body)) + body
    sends = [p.Send(P1, P2, b"a"), p.Send(P1, P2, b""), p.Send(P1, P2, b"c" * 300)]
    assert FrameDecoder().feed(frame) == sends
    dec = FrameDecoder()  # the general path (a route not seen yet), then the fast one
    assert dec.feed(frame) + dec.feed(frame) == sends * 2 and dec.frames == 6
    many = [enc.payload(bytes([i % 256])) for i in range(p.MAX_MESSAGES_PER_FRAME)]
    assert len(FrameDecoder().feed(enc.send_many(route, many))) == p.MAX_MESSAGES_PER_FRAME
    with pytest.raises(LocalProtocolError, match="payload must be bytes"):
        enc.payload("text")  # type: ignore[arg-type]
    for empty in ([1, route[2:]], [16, route[2:]]):  # a known route, no message: a bad frame all the same
        [err] = dec.feed(_raw_frame(msgpack.packb(empty)))
        assert isinstance(err, FrameError) and "needs 2 fields, got 1" in str(err)


def test_send_terms_byte_vector() -> None:
    frame = encode_frame(p.SendTerms(P1, P2, (("ping", 1), 7)))
    body = bytes.fromhex("94 10 c420") + P2_ROUTE + P1_ROUTE + bytes.fromhex("92 a470696e67 01  07")
    assert frame == struct.pack(">I", len(body)) + body
    enc = FrameEncoder()
    bodies = [enc.term(("ping", 1)), enc.term(7)]
    assert enc.send_terms(enc.route(P1, P2), bodies) == frame  # type: ignore[arg-type]
    many = encode_frame(p.SendTerms(None, P2, (1,) * 14))  # 16 array items: an array16 header
    assert many[4:9] == bytes.fromhex("dc 0010 10 c4")


@pytest.mark.parametrize(
    "msg",
    ["s", b"b", 1, -1, 2**64 - 1, -(2**63), 0.5, True, None, (), ("ping", 1), tuple(range(p.MAX_TERM_ITEMS))],
    ids=repr,
)
def test_plain_terms_are_packed_as_themselves(msg: Any) -> None:
    body = FrameEncoder().term(msg)
    assert body == msgpack.packb(msg)
    assert FrameEncoder(terms=False).term(msg) is None  # the peer takes no SEND_TERMS


def test_a_big_plain_term_takes_send() -> None:
    enc = FrameEncoder()
    assert enc.term(b"x" * (p.MAX_TERMS_BYTES - 5)) is not None
    assert enc.term(b"x" * (p.MAX_TERMS_BYTES - 4)) is None  # with its 5-byte bin header: over


class _Str(str):
    pass


@pytest.mark.parametrize(
    "msg",
    [
        [1],
        {"a": 1},
        (1, [2]),
        ((1,),),
        (1, {}),
        P1,
        R1,
        2**64,
        -(2**63) - 1,
        "\ud800",
        (b"x", "\udc00"),
        _Str("sub"),
        tuple(range(p.MAX_TERM_ITEMS + 1)),
        frozenset(),
        1j,
    ],
    ids=repr,
)
def test_anything_else_is_not_a_plain_term(msg: Any) -> None:
    enc = FrameEncoder()
    assert enc.term(msg) is None
    assert enc.term(("after", 1)) == msgpack.packb(("after", 1))  # a failed pack leaves no residue


def test_control_byte_vectors() -> None:
    assert encode_frame(p.Link(P1, P2)) == bytes.fromhex("0000000a 93 03 93010203 93040506")
    assert encode_frame(p.Monitor(P1, "ab", R1)) == bytes.fromhex("0000000d 94 08 93010203 a26162 93016303")
    assert encode_frame(p.AliveReply(R1, True)) == bytes.fromhex("00000007 93 0e 93016303 c3")
    assert encode_frame(p.Send(None, P2, b"")) == bytes.fromhex("00000016 93 01 c410") + P2_ROUTE + b"\xc4\x00"
    assert encode_frame(p.Tick()) == p.TICK_FRAME == b"\x00\x00\x00\x00"


@pytest.mark.parametrize("msg", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(msg: Any) -> None:
    frame = encode_frame(msg)
    assert FrameDecoder().feed(frame) == [msg]
    decoded = FrameDecoder().feed(frame)[0]
    assert type(decoded) is type(msg)
    for a, b in zip(decoded, msg, strict=False):
        assert type(a) is type(b)


ALL_FRAMES = b"".join(encode_frame(m) for m in ALL_MESSAGES)


def test_stream_fed_whole_bytewise_and_with_extra_bytes() -> None:
    stream = ALL_FRAMES + p.TICK_FRAME + ALL_FRAMES
    dec = FrameDecoder()
    assert dec.feed(stream) == ALL_MESSAGES * 2 and dec.ticks == 1 and dec.buffered() == 0
    dec = FrameDecoder()
    out: list[Any] = []
    for i in range(len(stream)):
        out += dec.feed(stream[i : i + 1])
    assert out == ALL_MESSAGES * 2 and dec.ticks == 1 and dec.frames == 2 * len(ALL_MESSAGES)
    dec = FrameDecoder()
    extra = encode_frame(ALL_MESSAGES[0])
    assert dec.feed(ALL_FRAMES + extra[:5]) == ALL_MESSAGES
    assert dec.buffered() == 5
    assert dec.feed(extra[5:]) == [ALL_MESSAGES[0]]
    assert dec.buffered() == 0


def test_ticks_are_counted_not_returned() -> None:
    dec = FrameDecoder()
    assert dec.feed(p.TICK_FRAME * 3 + b"\x00\x00") == []
    assert dec.feed(b"\x00\x00") == [] and dec.ticks == 4


def test_trailing_extra_fields_are_ignored() -> None:
    """(Not by SEND and SEND_TERMS, whose fields after the route are all messages.)"""
    body = msgpack.packb([3, [1, 2, 3], [4, 5, 6], "future"])
    assert FrameDecoder().feed(struct.pack(">I", len(body)) + body) == [p.Link(P1, P2)]


def _raw_frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


BAD_BODIES = [
    (b"\xc1", "not msgpack"),
    (b"\x92\x01", "not msgpack"),  # truncated array
    (msgpack.packb({"op": 1}), "not an array"),
    (msgpack.packb([]), "not an array"),
    (msgpack.packb(["send"]), "not an array"),
    (msgpack.packb([99, 1, 2]), "unknown control message type 99"),
    (msgpack.packb([1, P2_ROUTE]), "SEND needs 2 fields, got 1"),
    (msgpack.packb([1, P2_ROUTE, "text"]), "payload must be bin"),
    (msgpack.packb([1, P2_ROUTE, b"ok", "text"]), "payload must be bin"),  # all or nothing
    (msgpack.packb([1, P2_ROUTE, *[b""] * (p.MAX_MESSAGES_PER_FRAME + 1)]), "not msgpack"),  # over max_array_len
    (msgpack.packb([1, bytes(4) + P2_ROUTE[4:], b"x"]), "SEND: to in a route has node 0"),
    (msgpack.packb([1, P2_ROUTE + bytes(16), b"x"]), "SEND: sender in a route has node 0"),
    (msgpack.packb([1, P2_ROUTE[:15], b"x"]), "route must be a bin of 16 or 32 bytes"),
    (msgpack.packb([1, P2_ROUTE * 3, b"x"]), "route must be a bin of 16 or 32 bytes"),
    (msgpack.packb([1, [4, 5, 6], b"x"]), "route must be a bin"),
    (msgpack.packb([1, {"a": 1}, b"x"]), "SEND"),
    (msgpack.packb([1, "route", b"x"]), "route must be a bin"),
    (msgpack.packb([16, P2_ROUTE]), "SEND_TERMS needs 2 fields, got 1"),
    (msgpack.packb([16, P2_ROUTE, {"a": 1}]), "SEND_TERMS: msg must be a plain term"),
    (msgpack.packb([16, P2_ROUTE, "ok", [[1]]]), "SEND_TERMS: msg must be a plain term"),
    (msgpack.packb([16, P2_ROUTE, list(range(33))]), "SEND_TERMS: msg must be a plain term"),
    (msgpack.packb([16, P2_ROUTE, msgpack.ExtType(5, b"")]), "SEND_TERMS: msg must be a plain term"),
    (msgpack.packb([16, P2_ROUTE, 1, 2, msgpack.Timestamp(1)]), "SEND_TERMS: msg must be a plain term"),
    (msgpack.packb([16, P2_ROUTE[:3], "x"]), "SEND_TERMS: route must be a bin"),
    (msgpack.packb([16, P2_ROUTE, *range(p.MAX_MESSAGES_PER_FRAME + 1)]), "not msgpack"),  # over max_array_len
    (msgpack.packb([16, P2_ROUTE, b"x" * (p.MAX_TERMS_BYTES + 100)]), "SEND_TERMS: a frame of 262269 bytes, over"),
    (msgpack.packb([3, [1, 2, 3], "x"]), "LINK: to must be a pid"),
    (msgpack.packb([8, [1, 2, 3], "", [1, 2, 3]]), "MONITOR"),
    (msgpack.packb([8, [1, 2, 3], [4, 5, 6], [1, 2]]), "expected a ref"),
    (msgpack.packb([11, [1, 2, 3], [1, 2, 3], "f", b"", 1, False]), "link must be a bool"),
    (msgpack.packb([4, [1, 2, 3], [4, 5, 6], -1]), "unlink id"),
    (msgpack.packb([14, [1, 2, 3], 1]), "alive must be a bool"),
    (msgpack.packb([2, None, "", b"x"]), "to_name"),
    (msgpack.packb([1, P2_ROUTE, b"x"]) + b"\x00", "not msgpack"),  # extra data
    (b"\xd4\x05\x00", "not an array"),  # an ext type
    (b"\xdd\x0f\xff\xff\xff", "not msgpack"),  # declares a 268M-element array: refused, not allocated
    (b"\x94\x01\xc6\x7f\xff\xff\xff", "not msgpack"),  # a 2 GiB bin in a 7-byte body
]


@pytest.mark.parametrize("body, match", BAD_BODIES, ids=[f"{i}-{m}" for i, (_, m) in enumerate(BAD_BODIES)])
def test_bad_frame_is_reported_and_skipped(body: bytes, match: str) -> None:
    good = encode_frame(p.Link(P1, P2))
    stream = good + _raw_frame(body) + good
    for chunks in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
        dec = FrameDecoder()
        out = [m for c in chunks for m in dec.feed(c)]
        assert len(out) == 3
        assert out[0] == out[2] == p.Link(P1, P2)
        assert isinstance(out[1], FrameError) and isinstance(out[1], RemoteProtocolError)
        assert out[1].size == len(body)
        assert match in str(out[1])


def test_oversized_frame_breaks_the_stream() -> None:
    dec = FrameDecoder(max_frame_size=1024)
    good = encode_frame(p.Link(P1, P2))
    with pytest.raises(OversizedFrame, match="frame of 1025 bytes exceeds the limit of 1024") as exc:
        dec.feed(good + struct.pack(">I", 1025))  # raised on the prefix alone
    assert exc.value.messages == [p.Link(P1, P2)]
    assert exc.value.size == 1025 and exc.value.limit == 1024
    with pytest.raises(OversizedFrame):
        dec.feed(b"")
    ok = FrameDecoder(max_frame_size=1024)
    assert ok.feed(_raw_frame(msgpack.packb([15, [1, 2, 3], b"x" * 1015]))) != []


def test_encode_errors() -> None:
    with pytest.raises(LocalProtocolError, match="payload must be bytes"):
        encode_frame(p.Send(P1, P2, "text"))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="node 0"):
        encode_frame(p.Send(Pid(0, 1, 0), P2, b""))
    with pytest.raises(LocalProtocolError, match="node 0"):
        FrameEncoder().send(P1, Pid(0, 5, 0), b"")
    with pytest.raises(LocalProtocolError, match="must be a Pid"):
        encode_frame(p.Link(P1, "x"))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="must be a Ref"):
        encode_frame(p.AliveRequest(P1, P2))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="bool"):
        encode_frame(p.AliveReply(R1, 1))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="not a control message"):
        encode_frame((1, 2))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="exceeds the peer's limit of 1024"):
        FrameEncoder(1024).send(P1, P2, b"x" * 1024)
    with pytest.raises(LocalProtocolError, match="exceeds the peer's limit of 1024"):
        FrameEncoder(1024).send_terms(FrameEncoder().route(P1, P2), [msgpack.packb(b"x" * 1000)])
    with pytest.raises(LocalProtocolError, match="not a plain term"):
        encode_frame(p.SendTerms(P1, P2, ("ok", [1])))
    with pytest.raises(LocalProtocolError, match="carries 1 to 1024 messages, not 0"):
        encode_frame(p.SendTerms(P1, P2, ()))
    with pytest.raises(LocalProtocolError, match="node 0"):
        FrameEncoder().route(None, Pid(0, 5, 0))


def test_pid_cache_is_bounded_and_correct() -> None:
    dec = FrameDecoder(pid_cache_size=4)
    msgs = [p.Send(Pid(1, i, 0), Pid(2, i % 3, 1), b"") for i in range(50)]
    assert dec.feed(b"".join(encode_frame(m) for m in msgs)) == msgs
    assert len(dec._pids) <= 4 and len(dec._routes) <= 4


def test_feeding_is_linear() -> None:
    """An 8 MiB frame in 1 KiB pieces, and 200k tiny frames in 64 KiB pieces: no quadratic copying."""
    big = encode_frame(p.CallReply(R1, b"z" * (8 * 1024 * 1024)))
    dec = FrameDecoder()
    t0 = time.perf_counter()
    out: list[Any] = []
    for i in range(0, len(big), 1024):
        out += dec.feed(big[i : i + 1024])
    assert out == [p.CallReply(R1, b"z" * (8 * 1024 * 1024))]
    small = encode_frame(p.Send(P1, P2, b"x")) * 200_000
    for i in range(0, len(small), 65536 + 3):
        out += dec.feed(small[i : i + 65536 + 3])
    assert len(out) == 200_001
    assert time.perf_counter() - t0 < 10  # quadratic copying would take minutes


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=400), st.integers(1, 50))
def test_random_bytes_into_frame_decoder_give_only_our_errors(data: bytes, step: int) -> None:
    dec = FrameDecoder(max_frame_size=1024)
    try:
        for i in range(0, len(data), step):
            for item in dec.feed(data[i : i + step]):
                assert isinstance(item, (FrameError, *_MESSAGE_TYPES))
    except ProtocolError:
        pass


_MESSAGE_TYPES = tuple({type(m) for m in ALL_MESSAGES})

pids = st.builds(Pid, st.integers(1, 2**32 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))
refs = st.builds(Ref, st.integers(1, 2**32 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))
names = st.text(min_size=1, max_size=8)
blobs = st.binary(max_size=30)
messages = st.one_of(
    st.builds(p.Send, st.none() | pids, pids, blobs),
    st.builds(p.RegSend, st.none() | pids, names, blobs),
    st.builds(p.Link, pids, pids),
    st.builds(p.Unlink, pids, pids, st.integers(0, 2**64 - 1)),
    st.builds(p.Exit2, st.none() | pids, pids, blobs),
    st.builds(p.Monitor, pids, pids | names, refs),
    st.builds(p.Down, pids | names, pids, refs, blobs),
    st.builds(p.SpawnRequest, refs, pids, names, blobs, st.booleans(), st.booleans()),
    st.builds(p.SpawnReply, refs, pids, pids | names),
    st.builds(p.AliveReply, refs, st.booleans()),
    st.builds(p.CallReply, refs, blobs),
)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(messages, max_size=20), st.data())
def test_round_trip_in_random_pieces(msgs: list[Any], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    dec = FrameDecoder()
    out: list[Any] = []
    for a, b in itertools.pairwise([0, *cuts, len(stream)]):
        out += dec.feed(stream[a:b])
    assert out == msgs and dec.buffered() == 0
