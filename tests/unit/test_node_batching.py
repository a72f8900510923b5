"""Byte vectors for the link's outgoing queue (joerl/node/batching.py).

A burst from one sender to one process becomes one SEND_TERMS or SEND frame;
anything in between (another route, another kind, a frame) starts a new one;
the bytes taken decode to the messages fed, in order, whole, one byte at a
time and followed by extra bytes. No socket, no greenlet.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joerl.errors import LocalProtocolError, MessageTooLarge
from joerl.node import protocol as p
from joerl.node.batching import CLOSED, NO_LANE, TERM_COST, OutboundBatcher
from joerl.node.protocol import FrameDecoder, FrameEncoder
from joerl.pid import Pid

P1, P2, P3 = Pid(1, 2, 3), Pid(4, 5, 6), Pid(7, 8, 9)
# A pid as a route holds it: node:u32 | id:u64 | creation:u32.
P1_ROUTE = bytes.fromhex("00000001 0000000000000002 00000003")
P2_ROUTE = bytes.fromhex("00000004 0000000000000005 00000006")


def batcher(**kw: Any) -> tuple[OutboundBatcher, list[int]]:
    """A batcher over a fresh encoder, and the costs its ``on_item`` saw."""
    items: list[int] = []
    enc = FrameEncoder(
        kw.pop("max_frame_size", p.DEFAULT_MAX_FRAME_SIZE), terms=kw.pop("terms", True), maps=kw.pop("maps", True)
    )
    return OutboundBatcher(enc, "peer", on_item=items.append), items


def decode(data: bytes) -> list[Any]:
    return FrameDecoder().feed(data)


def test_a_burst_of_terms_is_one_send_terms_frame() -> None:
    b, items = batcher()
    assert b.term(P1, P2, ("ping", 1)) is True
    assert b.term(P1, P2, 7) is True
    assert b.term(P1, P2, None) is True
    assert len(b) == 1 and len(items) == 1  # one item: the batch the first term opened
    data, frames = b.take()
    body = bytes.fromhex("95 10 c420") + P2_ROUTE + P1_ROUTE + bytes.fromhex("92 a470696e67 01") + b"\x07\xc0"
    assert data == len(body).to_bytes(4, "big") + body
    assert frames == 1
    assert decode(data) == [p.SendTerms(P1, P2, (("ping", 1), 7, None))]
    assert len(b) == 0 and b.queued_bytes == 0 and b.take() == (b"", 0)


def test_a_burst_of_payloads_is_one_send_frame() -> None:
    b, items = batcher()
    b.payload(None, P2, b"ab")
    b.payload(None, P2, b"")
    data, frames = b.take()
    body = bytes.fromhex("94 01 c410") + P2_ROUTE + bytes.fromhex("c4026162 c400")
    assert data == len(body).to_bytes(4, "big") + body and frames == 1 and len(items) == 1
    assert decode(data) == [p.Send(None, P2, b"ab"), p.Send(None, P2, b"")]


def test_a_lone_message_has_the_bytes_of_its_own_frame() -> None:
    b, _ = batcher()
    b.term(P1, P2, ("ping", 1))
    assert b.take()[0] == p.encode_frame(p.SendTerms(P1, P2, (("ping", 1),)))
    b.payload(P1, P2, b"x")
    assert b.take()[0] == p.encode_frame(p.Send(P1, P2, b"x"))


def test_anything_in_between_starts_a_new_frame_and_order_is_kept() -> None:
    b, items = batcher()
    b.term(P1, P2, 1)
    b.term(P1, P2, 2)
    b.term(P3, P2, 3)  # another sender
    b.term(P3, P1, 4)  # another destination
    b.payload(P3, P1, b"five")  # another kind
    b.term(P3, P1, 6)
    link = p.encode_frame(p.Link(P1, P2))
    b.frame(link)  # a control frame: later messages queue behind it
    b.term(P3, P1, 7)
    data, frames = b.take()
    assert frames == 7 and len(items) == 7
    assert decode(data) == [
        p.SendTerms(P1, P2, (1, 2)), p.SendTerms(P3, P2, (3,)), p.SendTerms(P3, P1, (4,)),
        p.Send(P3, P1, b"five"), p.SendTerms(P3, P1, (6,)), p.Link(P1, P2), p.SendTerms(P3, P1, (7,)),
    ]  # fmt: skip


def test_take_is_decodable_whole_bytewise_and_with_extra_bytes() -> None:
    b, _ = batcher()
    for i in range(10):
        b.term(P1, P2, ("n", i))
    b.payload(P1, P2, b"payload")
    data, _ = b.take()
    expected = [p.SendTerms(P1, P2, tuple(("n", i) for i in range(10))), p.Send(P1, P2, b"payload")]
    assert decode(data) == expected
    dec = FrameDecoder()
    out: list[Any] = []
    for i in range(len(data)):
        out += dec.feed(data[i : i + 1])
    assert out == expected and dec.buffered() == 0
    dec = FrameDecoder()
    assert dec.feed(data + data[:5]) == expected and dec.buffered() == 5


NOT_PLAIN = [
    ("x",) * 33,  # a tuple over MAX_TERM_ITEMS
    ((1, 2),),  # nested
    [1, 2],  # a list (arrays are tuples in SEND_TERMS: lists take the codec)
    {"a": [1]},  # a dict's value must be a scalar
    {"a": 1, "b": [1]},
    {"a": (1,)},
    {"a": {"b": 1}},
    {1: "a"},  # a dict's keys must be str or bytes
    {True: "a"},
    {("a",): 1},
    {f"k{i}": i for i in range(33)},  # a dict over MAX_TERM_ITEMS
    2**64,  # past msgpack's ints
    "\ud800",  # a lone surrogate
    Pid(1, 2, 3),
]


@pytest.mark.parametrize("msg", NOT_PLAIN, ids=repr)
def test_not_a_plain_term_queues_nothing(msg: Any) -> None:
    b, items = batcher()
    assert b.term(P1, P2, msg) is False
    assert FrameEncoder().term(msg) is None  # (batcher.term has an inline copy of FrameEncoder.term)
    assert len(b) == 0 and items == [] and b.queued_bytes == 0
    assert b.term(P1, P2, ("ok", 1)) is True  # the packer was reset after a failed pack
    assert decode(b.take()[0]) == [p.SendTerms(P1, P2, (("ok", 1),))]
    off, _ = batcher(terms=False)
    assert off.term(P1, P2, 1) is False and len(off) == 0


PLAIN = [
    1, -(2**63), 2**64 - 1, 1.5, True, None, "s", b"b", (), ("ping", 7), ("x",) * 32,
    {}, {"ping": 7}, {b"k": b"v", "f": 1.5, "n": None, "t": True}, {f"k{i}": i for i in range(32)},
]  # fmt: skip


@pytest.mark.parametrize("msg", PLAIN, ids=repr)
def test_plain_terms_arrive_equal_and_of_the_same_types(msg: Any) -> None:
    b, _ = batcher()
    assert b.term(P1, P2, msg) is True
    assert FrameEncoder().term(msg) == msgpack.packb(msg, use_bin_type=True)
    (got,) = decode(b.take()[0])
    assert got == p.SendTerms(P1, P2, (msg,))
    assert type(got.msgs[0]) is type(msg)
    if isinstance(msg, dict):
        assert [(type(k), type(v)) for k, v in got.msgs[0].items()] == [(type(k), type(v)) for k, v in msg.items()]
        assert list(got.msgs[0]) == list(msg)  # in order


def test_a_burst_of_dicts_is_one_send_terms_frame() -> None:
    b, _ = batcher()
    assert b.term(P1, P2, {"ping": 1}) is True
    assert b.term(P1, P2, {"ping": 2, b"k": None}) is True
    assert b.term(P1, P2, ("ping", 3)) is True  # mixed with tuples and scalars in one frame
    data, frames = b.take()
    body = (
        bytes.fromhex("95 10 c420") + P2_ROUTE + P1_ROUTE
        + bytes.fromhex("81 a470696e67 01")  # {"ping": 1}
        + bytes.fromhex("82 a470696e67 02 c4016b c0")  # {"ping": 2, b"k": None}
        + bytes.fromhex("92 a470696e67 03")  # ("ping", 3)
    )  # fmt: skip
    assert data == len(body).to_bytes(4, "big") + body and frames == 1
    assert decode(data) == [p.SendTerms(P1, P2, ({"ping": 1}, {"ping": 2, b"k": None}, ("ping", 3)))]


def test_dicts_take_the_codec_when_the_peer_takes_no_maps() -> None:
    b, items = batcher(maps=False)
    assert b.term(P1, P2, {"ping": 1}) is False and len(b) == 0 and items == []
    assert FrameEncoder(maps=False).term({"ping": 1}) is None
    assert b.term(P1, P2, ("ping", 1)) is True  # tuples still do


def test_queued_bytes_counts_joins_when_the_batch_closes() -> None:
    b, items = batcher()
    b.term(P1, P2, 1)  # 1 byte of msgpack
    assert items == [1 + TERM_COST] and b.queued_bytes == 1 + TERM_COST
    b.term(P1, P2, 2)
    assert b.queued_bytes == 1 + TERM_COST  # joined: counted when the batch closes
    b.frame(b"\x00\x00\x00\x00")
    assert b.queued_bytes == 2 * (1 + TERM_COST) + 4 and items[-1] == 4
    b.clear()
    assert len(b) == 0 and b.queued_bytes == 0 and b.take() == (b"", 0)


def test_a_batch_is_bounded_by_count_and_bytes() -> None:
    b, _ = batcher()
    n = p.MAX_MESSAGES_PER_FRAME + 10
    for _ in range(n):
        b.term(None, P2, True)
    data, frames = b.take()
    assert frames == 2
    msgs = decode(data)
    assert [len(m.msgs) for m in msgs] == [b.batch_room // (1 + TERM_COST), n - b.batch_room // (1 + TERM_COST)]
    assert all(len(m.msgs) <= p.MAX_MESSAGES_PER_FRAME for m in msgs)
    big = "x" * 20_000  # a batch has room for 2 of them (1024 x (1 + TERM_COST) bytes)
    for _ in range(5):
        b.term(P1, P2, big)
    data, frames = b.take()
    assert frames == 3
    assert [len(m.msgs) for m in decode(data)] == [2, 2, 1]
    huge = "x" * 100_000  # bigger than a batch's room: alone in its frame
    b.term(P1, P2, huge)
    b.term(P1, P2, huge)
    assert b.take()[1] == 2


def test_a_big_payload_goes_alone_as_send() -> None:
    b, items = batcher()
    b.payload(P1, P2, b"a")
    big = b"B" * (b.batch_room + 1)
    b.payload(P1, P2, big)
    b.payload(P1, P2, b"c")
    data, frames = b.take()
    assert frames == 3 and items[1] == len(p.encode_frame(p.Send(P1, P2, big)))
    assert decode(data) == [p.Send(P1, P2, b"a"), p.Send(P1, P2, big), p.Send(P1, P2, b"c")]


def test_the_peers_frame_limit_holds() -> None:
    b, items = batcher(max_frame_size=1024)
    assert b.batch_room == 1024 - 38
    with pytest.raises(MessageTooLarge, match="exceeds the limit of node 'peer' \\(1024 bytes\\)"):
        b.term(P1, P2, "x" * 1000)
    with pytest.raises(MessageTooLarge, match="exceeds the peer's limit of 1024 bytes"):
        b.payload(P1, P2, b"x" * 1000)
    assert len(b) == 0 and items == []
    for _ in range(100):
        b.term(P1, P2, "y" * 50)
    data, frames = b.take()
    assert all(len(f) <= 1024 + 4 for f in _split_frames(data)) and frames > 1


def test_bad_fields_raise_local_protocol_errors() -> None:
    b, _ = batcher()
    with pytest.raises(LocalProtocolError, match="node 0"):
        b.term(P1, Pid(0, 1, 0), 1)
    with pytest.raises(LocalProtocolError, match="payload must be bytes"):
        b.payload(P1, P2, "text")  # type: ignore[arg-type]
    assert len(b) == 0


def test_on_item_may_take_and_may_raise() -> None:
    taken: list[bytes] = []
    enc = FrameEncoder()
    b = OutboundBatcher(enc, on_item=lambda cost: taken.append(b.take()[0]))
    b.term(P1, P2, 1)  # the hook takes it at once (the link's immediate write)
    b.term(P1, P2, 2)  # so this one opens a new batch, also taken
    assert [decode(t) for t in taken] == [[p.SendTerms(P1, P2, (1,))], [p.SendTerms(P1, P2, (2,))]]

    def closed(cost: int) -> None:
        b2.clear()
        raise RuntimeError("closed")

    b2 = OutboundBatcher(enc, on_item=closed)
    with pytest.raises(RuntimeError, match="closed"):
        b2.term(P1, P2, 1)
    assert len(b2) == 0


def _split_frames(data: bytes) -> list[bytes]:
    out, off = [], 0
    while off < len(data):
        size = int.from_bytes(data[off : off + 4], "big")
        out.append(data[off : off + 4 + size])
        off += 4 + size
    return out


scalars = st.one_of(
    st.text(max_size=8), st.binary(max_size=8), st.integers(-(2**63), 2**64 - 1), st.booleans(), st.none(),
    st.floats(allow_nan=False),
)  # fmt: skip
terms = st.one_of(scalars, st.tuples(scalars, scalars), st.dictionaries(st.text(max_size=2), scalars, max_size=2))
routes = st.sampled_from([(P1, P2), (None, P2), (P3, P1)])
ops = st.lists(st.tuples(st.sampled_from(["term", "payload", "frame"]), routes, terms), max_size=40)


@settings(max_examples=200, deadline=None, database=None)
@given(ops)
def test_whatever_is_fed_decodes_to_the_same_messages_in_order(fed: list[tuple[str, Any, Any]]) -> None:
    b, _ = batcher()
    expected: list[Any] = []
    for kind, (sender, to), msg in fed:
        if kind == "term" and b.term(sender, to, msg):
            expected.append(("term", sender, to, msg))
            continue
        if kind == "frame":
            b.frame(p.encode_frame(p.Exit2(sender, to, b"r")))
            expected.append(p.Exit2(sender, to, b"r"))
            continue
        payload = msgpack.packb(msg, use_bin_type=True)
        b.payload(sender, to, payload)
        expected.append(p.Send(sender, to, payload))
    got: list[Any] = []
    for m in decode(b.take()[0]):
        if m.__class__ is p.SendTerms:
            got += [("term", m.sender, m.to, t) for t in m.msgs]
        else:
            got.append(m)
    assert got == expected


def test_an_idle_link_gets_a_lone_message_as_its_own_frame_at_once() -> None:
    # While the link says idle, a message that finds the queue empty goes to
    # write_now as the very frame take() would have made; no batch opens.
    q, items = batcher()
    reference, _ = batcher()
    written: list[bytes] = []
    q.write_now = written.append
    q.idle = True
    assert q.term(P2, P1, ("ping", 1))
    q.payload(None, P1, b"\x01\x02")
    assert reference.term(P2, P1, ("ping", 1))
    first = reference.take()[0]
    reference.payload(None, P1, b"\x01\x02")
    assert written == [first, reference.take()[0]]
    assert len(q) == 0 and items == [] and q.handed == 2
    assert decode(b"".join(written)) == [p.SendTerms(P2, P1, (("ping", 1),)), p.Send(None, P1, b"\x01\x02")]
    with pytest.raises(LocalProtocolError):
        q.term(P2, Pid(0, 1, 0), ("ping", 3))  # a bad pid raises on this path too, nothing counted
    assert q.handed == 2 and len(written) == 2
    q.frame(p.TICK_FRAME)  # a frame too
    assert written[2:] == [p.TICK_FRAME] and len(q) == 0
    q.idle = False  # (the link clears it once it wrote: the rest of a burst queues)
    q.frame(p.TICK_FRAME)
    q.idle = True  # something queued: the next message queues behind it, as ever
    assert q.term(P2, P1, ("ping", 2)) and len(q) == 2 and len(written) == 3
    alone, _ = batcher()
    alone.idle = True  # (the default write_now queues: without a link, nothing writes)
    assert alone.term(P2, P1, ("ping", 3)) and len(alone) == 1 and not alone.idle


def test_handed_counts_every_message_queued_joins_included() -> None:
    b, _ = batcher()
    for i in range(5):
        b.term(P1, P2, i)  # one batch: the first opens it, four join
    assert b.handed == 5
    b.handed += 1  # (the link counts its REG_SENDs so)
    assert b.handed == 6
    b.payload(P1, P2, b"x")  # closes the batch
    b.term(P1, P3, 1)
    b.term(P1, P3, 2)
    assert b.handed == 9
    b.take()
    assert b.handed == 9
    b.term(P1, P2, 1)
    b.term(P1, P2, 2)
    b.clear()  # dropped, but handed to the link all the same
    assert b.handed == 11
    off, _ = batcher(terms=False)
    assert off.term(P1, P2, 1) is False and off.handed == 0


def test_a_lane_appends_to_the_open_batch_until_it_closes_and_is_counted_then() -> None:
    """What a feeder's lane may do (``open_terms``, ``Routing.route_send``):
    append packed terms, taking their cost off ``room``; the batch's room
    turns CLOSED however it closes, and what joined uncounted is counted in
    ``handed`` and handed to ``on_joined`` once."""
    joined: list[int] = []
    for close in ("take", "clear", "frame", "payload", "other sender"):
        b, _ = batcher()
        b.on_joined = joined.append
        assert b.open_terms() is None
        b.term(P1, P2, ("ping", 0))  # opens the batch (counted: handed 1)
        lane = b.open_terms()
        assert lane is not None and lane.to is P2 and lane.sender is P1 and b.handed == 1
        for i in range(1, 4):
            body = b.pack(("ping", i))
            lane.append(body)
            lane.room -= len(body) + TERM_COST
        b.term(P1, P2, ("ping", 4))  # the full path joins the same batch (counted: handed 2)
        assert b.open_terms() is lane and b.handed == 2 and joined == []
        if close == "take":
            data, frames = b.take()
            assert frames == 1 and decode(data)[0].msgs == tuple(("ping", i) for i in range(5))
        elif close == "clear":
            b.clear()
        elif close == "frame":
            b.frame(b"\x00\x00\x00\x01\x00")
        elif close == "payload":
            b.payload(P1, P2, msgpack.packb([1]))
        else:
            b.term(P3, P2, ("ping", 5))
        assert lane.room == CLOSED and b.open_terms() is not lane, close
        assert joined == [3] and b.handed == 5 + (close in ("payload", "other sender")), close
        joined.clear()
        b.take()  # (nothing more to count: closed once)
        assert joined == []
    assert NO_LANE.room == CLOSED and NO_LANE.to is not None
