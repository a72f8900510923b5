"""A hidden node in the handshake: its HELLO clears FLAG_PUBLISHED, and the link's flags (the AND) lack it.

Byte by byte: the ``flags`` field of a hidden node's HELLO lacks bit 0x01
(with protocol 3's eight flags, the msgpack uint ``0xfe``: ``cc fe``, where a
visible node sends ``cc ff``); either side's engine sees the peer's flags as
sent and ends with their AND.
"""

from __future__ import annotations

import msgpack
import pytest

from joerl.node import protocol as p
from joerl.node.hello import next_message
from joerl.testing import ACCEPTOR_IDENTITY, INITIATOR_IDENTITY, handshake_engines, run_handshake

HIDDEN = p.NodeIdentity("hidden-cli", 0x3333, creation=5, flags=p.HIDDEN_FLAGS, incarnation=0x0A0B)


def test_hidden_flags() -> None:
    assert p.FLAG_PUBLISHED == 0x01
    assert p.DEFAULT_FLAGS & p.FLAG_PUBLISHED and p.HIDDEN_FLAGS == p.DEFAULT_FLAGS & ~p.FLAG_PUBLISHED


def test_a_hidden_hello_byte_vector() -> None:
    # The literal vector, for the eight flags of protocol 3 (0xff visible, 0xfe hidden): cc fe.
    eight = p.NodeIdentity("hidden-cli", 0x3333, creation=5, flags=0xFE, incarnation=0x0A0B)
    assert (
        bytes.fromhex("a5") + b"flags" + bytes.fromhex("cc fe") in handshake_engines(initiator=eight)[0].data_to_send()
    )
    # This release's HIDDEN_FLAGS (whatever more capabilities it offers), whole, with a trailing byte.
    ini, _ = handshake_engines(initiator=HIDDEN)
    raw = ini.data_to_send()
    assert bytes.fromhex("a5") + b"flags" + msgpack.packb(p.HIDDEN_FLAGS) in raw
    assert msgpack.unpackb(raw[2:])["flags"] == p.HIDDEN_FLAGS
    for data in (raw, raw + b"\x00"):
        buf = bytearray(data)
        got = next_message(buf)
        assert got is not None and p.parse_hello(got[1]).flags == p.HIDDEN_FLAGS
        assert bytes(buf) == data[len(raw) :]
    visible, _ = handshake_engines()
    assert bytes.fromhex("a5") + b"flags" + msgpack.packb(p.DEFAULT_FLAGS) in visible.data_to_send()


@pytest.mark.parametrize("hidden_side", ["initiator", "acceptor"])
def test_the_link_of_a_hidden_node_is_hidden_on_both_sides(hidden_side: str) -> None:
    if hidden_side == "initiator":
        t = run_handshake(*handshake_engines(initiator=HIDDEN, acceptor=ACCEPTOR_IDENTITY))
    else:
        t = run_handshake(*handshake_engines(initiator=INITIATOR_IDENTITY, acceptor=HIDDEN))
    for end in (t.initiator, t.acceptor):
        assert not end.flags & p.FLAG_PUBLISHED  # what links.py reads: the link is hidden
        assert end.flags == p.HIDDEN_FLAGS
    hidden_peer = t.acceptor.peer if hidden_side == "initiator" else t.initiator.peer
    assert hidden_peer.flags == p.HIDDEN_FLAGS and hidden_peer.name == "hidden-cli"


def test_a_hidden_hello_fed_byte_by_byte() -> None:
    ini, acc = handshake_engines(initiator=HIDDEN)
    raw = ini.data_to_send()
    events = []
    for i in range(len(raw)):
        events += acc.feed(raw[i : i + 1])
    assert [e.peer.flags for e in events] == [p.HIDDEN_FLAGS]
