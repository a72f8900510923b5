"""The delivery acknowledgement of a node link (ACK, FLAG_ACK; joerl/node/delivery.py), byte by byte."""

from __future__ import annotations

import msgpack
import pytest

from joerl.errors import ConnectionLost, LocalProtocolError
from joerl.node import protocol as p
from joerl.node.batching import OutboundBatcher
from joerl.node.config import LinkConfig
from joerl.node.frames import FrameEncoder
from joerl.node.hello import next_message
from joerl.node.messages import OP_NAMES
from joerl.pid import Pid
from joerl.testing import ACCEPTOR_IDENTITY, INITIATOR_IDENTITY, handshake_engines, run_handshake

P1, P2 = Pid(1, 2, 3), Pid(4, 5, 6)


def test_ack_frame_bytes() -> None:
    assert p.OP_ACK == 18 and OP_NAMES[18] == "ACK"
    assert p.encode_frame(p.Ack(5)) == bytes.fromhex("00000003 92 12 05")
    assert p.encode_frame(p.Ack(0)) == bytes.fromhex("00000003 92 12 00")
    assert p.encode_frame(p.Ack(300)) == bytes.fromhex("00000005 92 12 cd012c")
    assert p.encode_frame(p.Ack(2**64 - 1)) == bytes.fromhex("0000000b 92 12 cf ffffffffffffffff")


@pytest.mark.parametrize("bad", [-1, 2**64, 1.5, True, "7", None])
def test_ack_refuses_what_is_not_a_u64(bad: object) -> None:
    with pytest.raises(LocalProtocolError, match="ACK taken must be an int"):
        p.encode_frame(p.Ack(bad))  # type: ignore[arg-type]


def test_the_decoder_notes_acks_and_returns_none() -> None:
    dec = p.FrameDecoder()
    assert dec.acked == 0
    terms = p.encode_frame(p.SendTerms(None, P2, ("a", 1)))
    data = terms + p.encode_frame(p.Ack(7)) + p.TICK_FRAME + p.encode_frame(p.Ack(9)) + terms
    out = []
    for i in range(len(data)):  # byte by byte: same result
        out += dec.feed(data[i : i + 1])
    assert out == [p.SendTerms(None, P2, ("a", 1))] * 2
    assert dec.acked == 9 and dec.ticks == 1


@pytest.mark.parametrize("body", [[18], [18, -1], [18, "3"], [18, 1.0], [18, True]])
def test_a_bad_ack_is_a_bad_frame(body: list[object]) -> None:
    raw = msgpack.packb(body)
    dec = p.FrameDecoder()
    dec.feed(p.encode_frame(p.Ack(4)))
    (err,) = dec.feed(len(raw).to_bytes(4, "big") + raw)
    assert isinstance(err, p.FrameError) and "ACK" in str(err)
    assert dec.acked == 4


def test_flag_ack_is_offered_by_default_and_in_the_hello_bytes() -> None:
    assert p.FLAG_ACK == 0x100
    assert p.DEFAULT_FLAGS == 0x7FF and p.DEFAULT_FLAGS & p.FLAG_ACK
    ini, _ = handshake_engines()
    raw = ini.data_to_send()
    assert bytes.fromhex("a5") + b"flags" + bytes.fromhex("cd 07 ff") in raw
    got = next_message(bytearray(raw))
    assert got is not None and p.parse_hello(got[1]).flags & p.FLAG_ACK


def test_a_peer_without_flag_ack_gets_none() -> None:
    old = p.NodeIdentity("old", 0x4444, flags=0xFF, incarnation=3)  # a joerl before ACK
    for ini, acc in ((old, ACCEPTOR_IDENTITY), (INITIATOR_IDENTITY, old)):
        t = run_handshake(*handshake_engines(initiator=ini, acceptor=acc))
        assert not t.initiator.flags & p.FLAG_ACK and not t.acceptor.flags & p.FLAG_ACK
    t = run_handshake(*handshake_engines())
    assert t.initiator.flags & p.FLAG_ACK and t.acceptor.flags & p.FLAG_ACK


def test_the_queue_counts_each_message_handed() -> None:
    q = OutboundBatcher(FrameEncoder())
    for i in range(5):
        assert q.term(P1, P2, i)  # one batch
    q.payload(P1, P2, b"\x01")
    q.frame(p.encode_frame(p.Link(P1, P2)))  # a control frame: not a message
    q.payload(None, P1, b"x" * 300_000)  # a frame of its own
    assert q.handed == 7
    q.take()
    q.clear()
    assert q.handed == 7  # cumulative: what the link was handed, sent or not


def test_a_message_the_queue_refuses_is_not_counted() -> None:
    def full(cost: int) -> None:
        raise ConnectionLost("link down")  # what on_item raises when the link closed

    q = OutboundBatcher(FrameEncoder(), on_item=full)
    with pytest.raises(ConnectionLost):
        q.term(P1, P2, 1)
    with pytest.raises(ConnectionLost):
        q.payload(P1, P2, b"\x01")
    assert q.handed == 0


def test_ack_interval_is_checked() -> None:
    assert LinkConfig().ack_interval == 0.1
    for bad in (0, -1.0, 61.0):
        with pytest.raises(ValueError, match="ack_interval"):
            LinkConfig(ack_interval=bad)
