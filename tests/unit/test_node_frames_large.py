"""Big frames (joerl/node/frames.py, joerl/node/frame_decoder.py, joerl/node/link_writer.py).

A big bytes field (a payload, a reason) is not copied into the Packer: the
frame made around it must be the very bytes the Packer makes of the fields,
and the limits and compression must hold for it as for any frame.
"""

from __future__ import annotations

from typing import Any

import gevent
import msgpack
import pytest
from gevent import socket as gsocket

from joerl.errors import MessageTooLarge
from joerl.node import protocol as p
from joerl.node.compression import Compressor, Decompressor
from joerl.node.config import LinkConfig
from joerl.node.connection import LinkStats
from joerl.node.frame_bodies import BODY, BYTES_AT
from joerl.node.frames import SPLIT_AT, FrameEncoder
from joerl.node.link_writer import LinkWriter
from joerl.node.protocol import FrameDecoder
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
    writer._send_now = lambda data: direct.append(len(data)) or send_now(data)  # type: ignore[misc]
    loop = gevent.spawn(writer.run)
    try:
        gevent.sleep(0)  # the writer waits: the link is idle
        small, big = (
            FrameEncoder().encode(p.RegSend(P1, "x", b"hi")),
            FrameEncoder().encode(p.RegSend(P1, "x", BIG * 16)),
        )
        writer.send_frame(small)  # (written at once)
        gevent.sleep(0)
        writer.send_frame(big)
        assert _read(b, len(small) + len(big)) == small + big
        assert direct == [len(small)]
        assert writer.flush(10)
    finally:
        writer.stop("done")
        loop.join(10)
        a.close()
        b.close()
