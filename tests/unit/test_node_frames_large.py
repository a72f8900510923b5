"""Big frames (joerl/node/frames.py, frame_big.py, frame_decoder.py, link_writer.py).

A big bytes field (a payload, a reason) is not copied into the Packer: the
frame made around it must be the very bytes the Packer makes of the fields,
and the limits and compression must hold for it as for any frame. A big frame
in is read into a buffer of its size and decoded from it: the same messages,
errors and limits as the streaming path, however the bytes are split.
"""

from __future__ import annotations

import random
import sys
import tracemalloc
from typing import Any

import gevent
import msgpack
import pytest
from gevent import socket as gsocket

from joerl.errors import FrameError, MessageTooLarge, OversizedFrame
from joerl.node import protocol as p
from joerl.node.compression import Compressor, Decompressor
from joerl.node.config import LinkConfig
from joerl.node.connection import LinkStats
from joerl.node.frame_big import LARGE_BODY
from joerl.node.frame_bodies import BODY, BYTES_AT
from joerl.node.frames import SPLIT_AT, FrameEncoder
from joerl.node.link_writer import LinkWriter
from joerl.node.protocol import FrameDecoder, encode_frame
from joerl.pid import Pid, Ref

P1, P2 = Pid(1, 2, 3), Pid(4, 5, 6)
R1 = Ref(1, 99, 3)
BIG = bytes(range(256)) * (SPLIT_AT // 256 + 1)  # just past SPLIT_AT
BIG_MESSAGES: list[Any] = [
    p.RegSend(P1, "sink", BIG),
    p.RegSend(None, "net_kernel", BIG),
    p.CallReply(R1, BIG),
    p.CallReply(R1, BIG, True),
    p.Exit(P1, P2, BIG),
    p.Exit2(None, P2, BIG),
    p.Down(P2, P1, R1, BIG),
    p.Down("registered", P1, R1, BIG),
    p.SpawnRequest(R1, P1, "echo", BIG, link=True, monitor=False),
]


def test_every_big_field_is_listed() -> None:
    assert {type(m) for m in BIG_MESSAGES} == set(BYTES_AT)


@pytest.mark.parametrize("msg", BIG_MESSAGES, ids=lambda m: type(m).__name__)
def test_a_big_field_makes_the_frame_the_packer_makes(msg: Any) -> None:
    fields = BODY[type(msg)](msg)
    assert fields[BYTES_AT[type(msg)]] is BIG
    body = msgpack.packb(fields, use_bin_type=True)
    frame = FrameEncoder().encode(msg)
    assert frame == len(body).to_bytes(4, "big") + body
    assert FrameDecoder().feed(frame) == [msg]


def test_a_big_field_over_the_peer_limit_is_refused_before_any_copy() -> None:
    enc = FrameEncoder(max_frame_size=SPLIT_AT)
    with pytest.raises(MessageTooLarge):
        enc.encode(p.RegSend(P1, "sink", BIG))
    exact = FrameEncoder(max_frame_size=len(FrameEncoder().encode(p.RegSend(P1, "sink", BIG))) - 4)
    assert exact.encode(p.RegSend(P1, "sink", BIG))  # (the limit is the body's size: met exactly)


def test_a_big_field_is_compressed_when_the_link_compresses() -> None:
    enc = FrameEncoder()
    enc.compress_with(Compressor("zlib", 1024))
    msg = p.RegSend(P1, "sink", b"x" * (2 * SPLIT_AT))
    frame = enc.encode(msg)
    assert len(frame) < 4096
    dec = FrameDecoder()
    dec.inflate = Decompressor(("zlib",), dec.max_frame_size).body
    assert dec.feed(frame) == [msg]


def _read(sock: Any, n: int, deadline: float = 10.0) -> bytes:
    got = bytearray()
    with gevent.Timeout(deadline):
        while len(got) < n:
            chunk = sock.recv(n - len(got))
            assert chunk
            got += chunk
    return bytes(got)


@pytest.mark.timeout(30)
def test_a_big_frame_on_an_idle_link_goes_to_the_writer_whole() -> None:
    # The direct path would write part of it and copy the rest to queue it;
    # a big frame is queued whole, and the writer sends it from a view.
    a, b = gsocket.socketpair()
    writer = LinkWriter(a, FrameEncoder(), LinkConfig(), LinkStats(), "peer", "me -> peer", direct=True,
                        on_broken=lambda reason: None)  # fmt: skip
    direct: list[int] = []
    send_now = writer._send_now
    assert send_now is not None

    def counted(data: bytes) -> int:
        direct.append(len(data))
        return send_now(data)  # type: ignore[no-any-return]

    writer._send_now = counted
    loop = gevent.spawn(writer.run)
    try:
        gevent.sleep(0)  # the writer waits: the link is idle
        small, big = (
            FrameEncoder().encode(p.RegSend(P1, "x", b"hi")),
            FrameEncoder().encode(p.RegSend(P1, "x", BIG * 80)),
        )
        writer.send_frame(small)  # (written at once)
        gevent.sleep(0)
        writer.send_frame(big)
        assert _read(b, len(small) + len(big)) == small + big
        assert direct == [len(small)]
        assert writer.flush(10)
        gevent.sleep(0)  # (the writer is back waiting)
        assert sys.getrefcount(big) == 2  # (big, and getrefcount's argument): over 4 MiB, not kept by the writer
    finally:
        writer.stop("done")
        loop.join(10)
        a.close()
        b.close()


# -- big frames in (frame_big.py) ------------------------------------------------------

BIG_IN: list[Any] = [p.RegSend(P1, "sink", bytes(range(256)) * 4096), p.Send(P1, P2, b"y" * (LARGE_BODY + 1))]
SMALL_IN: list[Any] = [p.Link(P1, P2), p.SendTerms(P1, P2, (("ping", 1),))]


def _feed_in(dec: FrameDecoder, data: bytes, step: int) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(data), step):
        out += dec.feed(data[i : i + step])
    return out


@pytest.mark.parametrize("step", [1000, 4100, 65536, 256 * 1024, 1 << 30])
def test_big_frames_among_small_ones_decode_however_the_bytes_are_split(step: int) -> None:
    msgs = [SMALL_IN[0], BIG_IN[0], SMALL_IN[1], BIG_IN[1], BIG_IN[0], SMALL_IN[0]]
    data = b"".join(encode_frame(m) for m in msgs) + p.TICK_FRAME
    dec = FrameDecoder()
    assert _feed_in(dec, data, step) == msgs
    assert dec.ticks == 1 and dec.frames == len(msgs) and dec.buffered() == 0


def test_a_big_frame_is_buffered_whole_and_nothing_of_it_is_kept() -> None:
    frame = encode_frame(BIG_IN[0])
    dec = FrameDecoder()
    assert dec.feed(frame[:1000]) == [] and dec.buffered() == 1000
    assert dec.feed(frame[1000:-1]) == [] and dec.buffered() == len(frame) - 1
    tracemalloc.start()
    try:
        assert dec.feed(frame[-1:]) == [BIG_IN[0]]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < len(frame) + 64 * 1024  # the message's payload, and no buffer as large
    assert dec.buffered() == 0


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"\xc1" + b"\x00" * LARGE_BODY, "not msgpack"),
        (msgpack.packb([p.OP_LINK, [1, 2, 3], [4, 5, 6]]) + b"\x00" * LARGE_BODY, "extra data"),
        (msgpack.packb([99, b"z" * LARGE_BODY]), "unknown control message"),
    ],
)
def test_a_bad_big_frame_is_reported_in_place(body: bytes, match: str) -> None:
    data = encode_frame(SMALL_IN[0]) + len(body).to_bytes(4, "big") + body + encode_frame(SMALL_IN[1])
    out = _feed_in(FrameDecoder(), data, 65536)
    assert out[0] == SMALL_IN[0] and out[2] == SMALL_IN[1]
    assert isinstance(out[1], FrameError) and match in str(out[1])


def test_a_big_compressed_frame_is_inflated_and_a_bad_one_reported() -> None:
    noise = random.Random(7).randbytes(LARGE_BODY)
    msg = p.RegSend(P1, "sink", noise + bytes(4 * LARGE_BODY))
    enc = FrameEncoder()
    enc.compress_with(Compressor("zlib", 1024))
    frame = enc.encode(msg)
    assert LARGE_BODY < len(frame) < len(encode_frame(msg))
    dec = FrameDecoder()
    dec.inflate = Decompressor(("zlib",), dec.max_frame_size).body
    bad = frame[:-100] + bytes(100)
    out = _feed_in(dec, frame + bad + encode_frame(SMALL_IN[0]), 65536)
    assert out[0] == msg and isinstance(out[1], FrameError) and out[2] == SMALL_IN[0]
    assert "bad compressed frame" in str(out[1])


def test_an_oversized_frame_after_a_big_one_keeps_the_big_ones_messages() -> None:
    dec = FrameDecoder(max_frame_size=2 * LARGE_BODY)
    frame = encode_frame(BIG_IN[1])
    with pytest.raises(OversizedFrame) as info:
        dec.feed(frame[:100])
        dec.feed(frame[100:] + encode_frame(SMALL_IN[0]) + (4 * LARGE_BODY).to_bytes(4, "big"))
    assert info.value.messages == [BIG_IN[1], SMALL_IN[0]]
    with pytest.raises(OversizedFrame):
        dec.feed(b"\x00")


def test_an_announced_big_frame_holds_only_the_bytes_that_came() -> None:
    dec = FrameDecoder()
    tracemalloc.start()
    try:
        assert dec.feed((dec.max_frame_size).to_bytes(4, "big") + b"\x93" + bytes(LARGE_BODY)) == []
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert dec.buffered() == 4 + 1 + LARGE_BODY
    assert held < 4 * LARGE_BODY  # (not the 64 MiB announced)
