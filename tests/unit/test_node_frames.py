"""Byte vectors for link frames (joerl/node/frames.py, joerl/node/frame_decoder.py).

Every message round-trips; the decoder is fed whole, one byte at a time, and
followed by extra bytes; bad frames are reported in place and skipped; random
bytes into the decoder give only our protocol errors.
"""

from __future__ import annotations

import itertools
import struct
import time
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joerl.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from joerl.node import protocol as p
from joerl.node.protocol import (
    FrameDecoder,
    FrameEncoder,
    FrameError,
    OversizedFrame,
    encode_frame,
)
from joerl.pid import Pid, Ref

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
    p.CallReply(R1, b"\xa2ok", True),
    p.Call(P1, P2, R1, b"\x92\xa3get\x01"),
    p.Call(Pid(1, 0, 3), P2, R1, b""),
    p.Call(P1, P2, R1, (("get", 7),)),  # a request that is a plain term travels as itself
    p.CallReply(R1, (None,), True),
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
        {"a": [1]},  # a dict is a plain term when flat (str or bytes keys, scalar values)
        {"a": {}},
        {1: "a"},
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
    assert FrameEncoder(maps=False).term({"a": 1}) is None  # a peer without FLAG_TERM_MAPS: the codec
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
    (msgpack.packb([16, P2_ROUTE, {"a": [1]}]), "SEND_TERMS: msg must be a plain term"),
    (msgpack.packb([16, P2_ROUTE, {"a": {"b": 1}}]), "SEND_TERMS: msg must be a plain term"),
    (msgpack.packb([16, P2_ROUTE, {f"{i}": i for i in range(33)}]), "SEND_TERMS: msg must be a plain term"),
    (msgpack.packb([16, P2_ROUTE, {1: 2}]), "not msgpack"),  # (msgpack's strict map keys: str or bin)
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
    st.builds(p.CallReply, refs, blobs, st.booleans()),
    st.builds(p.Call, pids, pids, refs, blobs),
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


CALL_FRAMES = [
    p.Monitor(P1, P2, Ref(1, 7, 3)),
    p.Monitor(P1, "server", Ref(1, 8, 3)),
    p.Demonitor(P1, P2, Ref(1, 7, 3)),
]
CALL_FRAMES += [p.CallReply(Ref(4, 9, 6), b"\x01"), p.Monitor(P1, P2, Ref(0xFFFFFFFF, 2**64 - 1, 0xFFFFFFFF))]
CALL_FRAMES += [p.Call(P1, P2, Ref(1, 10, 3), b"\x01"), p.CallReply(Ref(4, 10, 6), b"\x02", True)]


def test_a_calls_frames_decode_alike_with_pids_known_or_not() -> None:
    """MONITOR, DEMONITOR and CALL_REPLY take a fast path once their pids are
    known to the link: the same messages, and the same errors for bad refs."""
    stream = b"".join(encode_frame(m) for m in CALL_FRAMES)
    dec = FrameDecoder()
    assert dec.feed(stream) == CALL_FRAMES  # pids new: the general path
    assert dec.feed(stream) == CALL_FRAMES  # pids known: the fast one
    for ref in ([0, 1, 1], [1, -1, 1], [1, True, 1], [1, 1.0, 1], [1, 1, 2**32], [2**32, 1, 1], [1, 1], "ref"):
        for body in ([8, [1, 2, 3], [4, 5, 6], ref], [9, [1, 2, 3], "name", ref], [15, ref, b"x"]):
            (out,) = dec.feed(_raw_frame(msgpack.packb(body)))
            assert isinstance(out, FrameError) and "ref" in str(out), (body, out)
    (out,) = dec.feed(_raw_frame(msgpack.packb([15, [1, 2, 3], "text"])))
    assert isinstance(out, FrameError) and "payload must be bin" in str(out)
    (out,) = dec.feed(_raw_frame(msgpack.packb([8, [1, 2, 3], [7, 7, 7], [1, 2, 3]])))  # a new pid, still checked
    assert out == p.Monitor(P1, Pid(7, 7, 7), Ref(1, 2, 3))
    (out,) = dec.feed(_raw_frame(msgpack.packb([8, [1, 2, 3], [0, 7, 7], [1, 2, 3]])))
    assert isinstance(out, FrameError) and "to must be a pid" in str(out)


def test_a_calls_frames_fed_one_per_read_decode_as_in_a_stream() -> None:
    """A read of one CALL or CALL_REPLY frame (a remote call's) takes feed's
    fast path once its route is known: the same messages as a stream's."""
    dec = FrameDecoder()
    for _ in range(2):  # routes and pids new, then known
        assert [m for frame in CALL_FRAMES for m in dec.feed(encode_frame(frame))] == CALL_FRAMES
    assert dec.frames == 2 * len(CALL_FRAMES) and dec.buffered() == 0


def test_call_byte_vector_and_its_reply() -> None:
    """CALL: [19, route (to, sender), ref, payload]; a released CALL_REPLY has a
    trailing true, which a decoder ignores as any trailing field (released False)."""
    frame = encode_frame(p.Call(P1, P2, R1, b"hi"))
    body = bytes.fromhex("94 13 c420") + P2_ROUTE + P1_ROUTE + bytes.fromhex("93 01 63 03 c402 6869")
    assert frame == struct.pack(">I", len(body)) + body
    assert FrameEncoder().call(P1, P2, R1, b"hi") == frame
    assert FrameEncoder().call(P1, P2, (1, 99, 3), b"hi") == frame  # (the runtime's triple of a ref)
    released = encode_frame(p.CallReply(R1, b"x", True))
    body = bytes.fromhex("94 0f 93 01 63 03 c401 78 c3")
    assert released == struct.pack(">I", len(body)) + body
    dec = FrameDecoder()
    assert dec.feed(_raw_frame(msgpack.packb([15, [1, 99, 3], b"x", "what"]))) == [p.CallReply(R1, b"x", False)]
    assert dec.feed(released) == [p.CallReply(R1, b"x", True)]


def test_bad_call_frames_are_frame_errors_and_refused_on_encode() -> None:
    dec = FrameDecoder()
    assert dec.feed(encode_frame(p.Call(P1, P2, R1, b"x"))) == [p.Call(P1, P2, R1, b"x")]  # (the route known)
    to_only = b"\xc4\x10" + P2_ROUTE
    for body, what in (
        ([19, to_only[2:], [1, 2, 3], b"x"], "sender"),  # a route without the caller
        ([19, (P2_ROUTE + P1_ROUTE), [0, 2, 3], b"x"], "ref"),
        ([19, (P2_ROUTE + P1_ROUTE), [1, 2, 3], "x"], "payload must be bin"),
        ([19, (P2_ROUTE + P1_ROUTE), [1, 2, 3], [[1, [2]]]], "payload must be bin or [plain term]"),
        ([19, (P2_ROUTE + P1_ROUTE), [1, 2, 3], [1, 2]], "payload must be bin or [plain term]"),
        ([19, (P2_ROUTE + P1_ROUTE), [1, 2, 3]], "CALL needs 3 fields"),
    ):
        (out,) = dec.feed(_raw_frame(msgpack.packb(body)))
        assert isinstance(out, FrameError) and what in str(out), (body, out)
    (out,) = dec.feed(_raw_frame(msgpack.packb([15, [1, 2, 3], [{"a": [1]}], True])))
    assert isinstance(out, FrameError) and "payload must be bin or [plain term]" in str(out)
    enc = FrameEncoder()
    with pytest.raises(LocalProtocolError):
        enc.encode(p.Call(P1, P2, R1, ([1],)))  # (a payload (term,) must hold a plain term)
    for args in (
        (None, P2, R1, b"x"), (P1, P2, Ref(0, 1, 0), b"x"), (P1, P2, R1, "x"), (Pid(0, 1, 0), P2, R1, b"x"),
        (P1, P2, (0, 1, 0), b"x"), (P1, P2, (), b"x"),
    ):  # fmt: skip
        with pytest.raises(LocalProtocolError):
            enc.call(*args)  # type: ignore[arg-type]


def test_send_terms_checks_hold_on_the_fast_path_of_a_known_route() -> None:
    """One pair in SEND_TERMS is checked inline once its route is known: the
    same messages, and the same bad frames, as the general path's."""
    dec = FrameDecoder()
    route = b"\xc4\x10" + P2_ROUTE
    assert dec.feed(_raw_frame(b"\x93\x10" + route + msgpack.packb(("ping", 1)))) == [
        p.SendTerms(None, P2, (("ping", 1),))
    ]
    assert dec.feed(_raw_frame(b"\x93\x10" + route + msgpack.packb(("ping", 2)))) == [
        p.SendTerms(None, P2, (("ping", 2),))
    ]
    for msg, what in (
        (("x", b"y" * (p.MAX_TERMS_BYTES + 100)), "over"),
        (("x", [1]), "plain term"),
        ((msgpack.ExtType(5, b""), 1), "plain term"),
    ):
        (out,) = dec.feed(_raw_frame(b"\x93\x10" + route + msgpack.packb(msg)))
        assert isinstance(out, FrameError) and what in str(out), (msg, out)


@pytest.mark.parametrize("body, match", BAD_BODIES, ids=[f"{i}-{m}" for i, (_, m) in enumerate(BAD_BODIES)])
def test_a_frame_fed_alone_is_checked_as_in_a_stream(body: bytes, match: str) -> None:
    """A read of one whole small frame takes feed's fast path: the same errors,
    route known or not, and the frames after it decode."""
    ping = _raw_frame(b"\x93\x10\xc4\x10" + P2_ROUTE + msgpack.packb(("ping", 1)))
    for known in (False, True):
        dec = FrameDecoder()
        if known:
            assert dec.feed(ping) == [p.SendTerms(None, P2, (("ping", 1),))]
        (out,) = dec.feed(_raw_frame(body))
        assert isinstance(out, FrameError) and out.size == len(body) and match in str(out), (known, out)
        assert dec.feed(ping) == [p.SendTerms(None, P2, (("ping", 1),))]
        assert dec.feed(encode_frame(p.Link(P1, P2))) == [p.Link(P1, P2)]
        assert dec.frames == 3 + known and dec.buffered() == 0
