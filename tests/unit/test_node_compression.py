"""Frame compression (joerl/node/compression.py): byte vectors, negotiation,
the encoder and decoder around it, and two real nodes that agree on it."""

from __future__ import annotations

import json
import os
import struct
import zlib
from typing import Any

import msgpack
import pytest

from joerl.errors import FrameError, MessageTooLarge
from joerl.node import protocol as p
from joerl.node.compression import (
    COMPRESSED,
    CompressionError,
    Compressor,
    Decompressor,
    available,
    check_offer,
    choose,
    parse_offer,
)
from joerl.node.config import LinkConfig
from joerl.node.frame_decoder import FrameDecoder
from joerl.node.frames import FrameEncoder
from joerl.node.hello import parse_hello
from joerl.pid import Pid, Ref
from joerl.testing import Probe, fixed_random, node_cluster

P1, P2 = Pid(7, 1, 1), Pid(9, 2, 3)
TEXT = json.dumps([{"user": f"name-{i}", "tags": ["a", "b", "c"], "score": i % 17} for i in range(400)]).encode()


def zlib_body(raw: bytes) -> bytes:
    return bytes([0xC1, 1]) + struct.pack(">I", len(raw)) + zlib.compress(raw, 1)


# -- the codec, byte by byte ---------------------------------------------------------------


def test_a_compressed_body_is_c1_codec_rawlen_data() -> None:
    c = Compressor("zlib", 64)
    assert c.body(TEXT) == zlib_body(TEXT)
    assert c.frames == 1 and c.saved == len(TEXT) - len(zlib_body(TEXT))


def test_below_the_threshold_or_without_savings_nothing_is_compressed() -> None:
    c = Compressor("zlib", 64)
    assert c.body(b"a" * 63) is None  # short: no attempt
    assert c.body(os.urandom(4096)) is None  # does not shrink
    assert c.frames == 0 and c.saved == 0


def test_decompress_round_trip_and_bounds() -> None:
    d = Decompressor(("zlib",), max_size=len(TEXT))
    assert d.body(zlib_body(TEXT)) == TEXT
    with pytest.raises(CompressionError, match="allowed 1"):
        Decompressor(("zlib",), max_size=len(TEXT) - 1).body(zlib_body(TEXT))
    with pytest.raises(CompressionError, match="codec 2 was not offered"):
        d.body(bytes([0xC1, 2]) + zlib_body(TEXT)[2:])
    with pytest.raises(CompressionError, match="codec 9"):
        d.body(bytes([0xC1, 9]) + zlib_body(TEXT)[2:])
    with pytest.raises(CompressionError, match="no room for its header"):
        d.body(b"\xc1\x01\x00")
    lying = bytes([0xC1, 1]) + struct.pack(">I", 10) + zlib.compress(TEXT)  # says 10 bytes, holds more
    with pytest.raises(CompressionError, match="exactly 10 bytes"):
        d.body(lying)
    with pytest.raises(CompressionError, match="corrupt zlib"):
        d.body(bytes([0xC1, 1]) + struct.pack(">I", 100) + b"not zlib at all")
    trailing = zlib_body(TEXT) + b"extra"
    with pytest.raises(CompressionError, match="exactly"):
        d.body(trailing)


def test_a_bomb_is_stopped_at_the_announced_length() -> None:
    bomb = zlib.compress(b"\0" * (50 << 20))
    d = Decompressor(("zlib",), max_size=1 << 20)
    with pytest.raises(CompressionError, match="exactly 1024 bytes"):
        d.body(bytes([0xC1, 1]) + struct.pack(">I", 1024) + bomb)


@pytest.mark.skipif("zstd" not in available(), reason="zstandard is not installed (the zstd extra)")
def test_zstd_round_trip() -> None:
    c = Compressor("zstd", 64)
    body = c.body(TEXT)
    assert body is not None and body[:2] == b"\xc1\x02" and struct.unpack(">I", body[2:6]) == (len(TEXT),)
    assert Decompressor(("zstd",), len(TEXT)).body(body) == TEXT
    with pytest.raises(CompressionError):
        Decompressor(("zstd",), len(TEXT)).body(body[:6] + b"garbage" + body[13:])


def test_offers_and_the_choice() -> None:
    assert "zlib" in available()
    assert check_offer(("zlib",)) == ("zlib",)
    for bad in (["zlib"], ("zlib", "zlib"), ("brotli",), ("zlib", 1)):
        with pytest.raises(ValueError):
            check_offer(bad)
    with pytest.raises(ValueError):
        LinkConfig(compression=("nope",))
    with pytest.raises(ValueError):
        LinkConfig(compress_min=0)
    assert parse_offer(None) == ()
    assert parse_offer(["zstd", "lz9", "zlib"]) == ("zstd", "zlib")  # unknown names ignored
    for bad in ("zlib", [1], ["a"] * 9):
        with pytest.raises(ValueError):
            parse_offer(bad)
    assert choose(("zstd", "zlib"), ("zlib", "zstd")) == "zstd"  # the sender's preference
    assert choose(("zlib",), ("zstd",)) is None
    assert choose((), ("zlib",)) is None


# -- in the HELLO ---------------------------------------------------------------------


def hello_body(compression: tuple[str, ...]) -> dict[str, Any]:
    hs = p.Handshake(
        p.Role.INITIATOR, p.NodeIdentity("alpha", 10, creation=1, incarnation=5), b"cookie",
        random_bytes=fixed_random(1), compression=compression,
    )  # fmt: skip
    out = hs.data_to_send()
    body: dict[str, Any] = msgpack.unpackb(out[2:], raw=False)
    return body


def test_the_hello_offers_the_codecs_only_when_enabled() -> None:
    assert "compress" not in hello_body(())
    body = hello_body(("zlib",))
    assert body["compress"] == ["zlib"]
    assert parse_hello(body).compression == ("zlib",)
    assert parse_hello(hello_body(())).compression == ()
    body["compress"] = "zlib"
    with pytest.raises(p.HandshakeProtocolError, match="compress must be a list"):
        parse_hello(body)


# -- frames --------------------------------------------------------------------------


def encoder(min_size: int = 256) -> FrameEncoder:
    enc = FrameEncoder()
    enc.compress_with(Compressor("zlib", min_size))
    return enc


def decoder() -> FrameDecoder:
    dec = FrameDecoder()
    dec.inflate = Decompressor(("zlib",), dec.max_frame_size).body
    return dec


def test_small_frames_are_the_same_bytes_with_or_without_compression() -> None:
    plain, packed = FrameEncoder(), encoder()
    for msg in (p.Send(P1, P2, b"small"), p.Link(P1, P2), p.Tick()):
        assert packed.encode(msg) == plain.encode(msg)
    route = plain.route(P1, P2)
    items = [plain.term(("ping", i)) for i in range(5)]
    assert packed.send_terms(packed.route(P1, P2), items) == plain.send_terms(route, items)  # type: ignore[arg-type]


def test_a_big_frame_is_compressed_and_decodes_whole_byte_by_byte_and_with_trailing_bytes() -> None:
    enc = encoder()
    frame = enc.send(P1, P2, TEXT)
    raw = FrameEncoder().send(P1, P2, TEXT)
    assert len(frame) < len(raw) // 3
    assert frame[4:] == zlib_body(raw[4:]) and struct.unpack(">I", frame[:4]) == (len(frame) - 4,)
    want = [p.Send(P1, P2, TEXT)]
    assert decoder().feed(frame) == want
    dec = decoder()
    got: list[Any] = []
    for i in range(len(frame)):
        got += dec.feed(frame[i : i + 1])
    assert got == want
    tail = p.encode_frame(p.Link(P1, P2))
    assert decoder().feed(frame + tail + frame) == [*want, p.Link(P1, P2), *want]


def test_batches_and_control_messages_are_compressed_too() -> None:
    enc = encoder()
    items = [enc.term(("word", "x" * 40, i)) for i in range(100)]
    frame = enc.send_terms(enc.route(P1, P2), items)  # type: ignore[arg-type]
    assert frame[4] == COMPRESSED
    (event,) = decoder().feed(frame)
    assert isinstance(event, p.SendTerms) and len(event.msgs) == 100
    reply = p.CallReply(Ref(7, 5, 1), TEXT)
    assert enc.encode(reply)[4] == COMPRESSED and decoder().feed(enc.encode(reply)) == [reply]


def test_a_compressed_frame_where_none_was_offered_or_a_corrupt_one_is_a_bad_frame_only() -> None:
    frame = encoder().send(P1, P2, TEXT)
    after = p.encode_frame(p.Link(P1, P2))
    (bad, ok) = FrameDecoder().feed(frame + after)  # not offered: not msgpack
    assert isinstance(bad, FrameError) and ok == p.Link(P1, P2)
    corrupt = frame[:20] + bytes(64) + frame[84:]
    (bad, ok) = decoder().feed(corrupt + after)
    assert isinstance(bad, FrameError) and "bad compressed frame" in str(bad) and ok == p.Link(P1, P2)


def test_the_size_limit_holds_for_the_uncompressed_bytes() -> None:
    enc = FrameEncoder(max_frame_size=4096)
    enc.compress_with(Compressor("zlib", 256))
    with pytest.raises(MessageTooLarge, match="exceeds the peer's limit of 4096"):
        enc.send(P1, P2, b"a" * 5000)  # would compress to a few bytes: still refused
    big = FrameEncoder().send(P1, P2, b"a" * 5000)
    dec = FrameDecoder(max_frame_size=4096)
    dec.inflate = Decompressor(("zlib",), 4096).body
    packed = Compressor("zlib", 1).body(big[4:])
    assert packed is not None
    (bad,) = dec.feed(struct.pack(">I", len(packed)) + packed)
    assert isinstance(bad, FrameError) and "allowed 1..4096" in str(bad)


# -- two nodes ------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_two_nodes_that_both_offer_zlib_compress_big_messages() -> None:
    config = LinkConfig(compression=("zlib",))
    doc = json.loads(TEXT)
    with node_cluster("a", "b", cookie="c", global_names=False, link_config=config) as (a, b):
        inbox = Probe(b)
        a.connect_to_node(b.node_name)
        conn = a._peers[b.node_name].link
        assert conn is not None and conn.encoder.compressor is not None
        for _ in range(3):
            a.system.send(inbox.gpid, doc)
        a.system.send(inbox.gpid, "small")
        assert [inbox.receive() for _ in range(4)] == [doc, doc, doc, "small"]
        assert conn.encoder.compressor.frames >= 1
        assert conn.stats.bytes_out < len(TEXT)  # three copies of it, and less than one crossed


def test_one_side_offering_is_no_compression() -> None:
    with node_cluster("a", "b", cookie="c", global_names=False) as (a, b):
        only_a = LinkConfig(compression=("zlib",))
        c = type(a)("c", "127.0.0.1:0", a.epmd_address, cookie="c", start_epmd=False, global_names=False,
                    link_config=only_a)  # fmt: skip
        try:
            inbox = Probe(b)
            c.connect_to_node(b.node_name)
            conn = c._peers[b.node_name].link
            assert conn is not None and conn.encoder.compressor is None
            c.system.send(inbox.gpid, TEXT)
            assert inbox.receive() == TEXT
        finally:
            c.shutdown()
