"""The codec's fast paths give the bytes and answers of its general path:
a message that is one registered message (written and read without msgpack),
the depth check through msgpack's own stack limit, and the Pid caches of a
codec without hooks."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from zope.interface import implementer

from joerl.errors import DecodeError, UnknownMessageType
from joerl.pid import Pid
from joerl.serialization import Codec, ISerializableMessage, Limits, MessageRegistry, pid_from_bytes, pid_to_bytes
from joerl.serialization._idents import SAMPLE
from joerl.serialization._limits import _SKIP_ONLY, _STACK_DEPTH, _walk, exceeds_depth
from joerl.serialization._wire import EXT_MESSAGE, ext_head

pytestmark = pytest.mark.timeout(60)


@implementer(ISerializableMessage)
class Blob:
    message_type_id = "fast::Blob"

    def __init__(self, data: bytes, pid: Pid | None = None) -> None:
        self.data = data
        self.pid = pid

    def serialize(self) -> bytes:
        return self.data + (pid_to_bytes(self.pid) if self.pid is not None else b"")


def _blob(data: bytes) -> Blob:
    if len(data) >= 16 and data[:1] == b"P":
        return Blob(data[:-16], pid_from_bytes(data[-16:]))
    return Blob(data)


@pytest.fixture
def codec() -> Codec:
    reg = MessageRegistry()
    reg.register(Blob.message_type_id, _blob)
    return Codec(reg)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 6, 11, 200, 245, 246, 300, 70_000])
def test_one_message_is_the_bytes_packer_makes(codec: Codec, size: int) -> None:
    body = bytes((len(Blob.message_type_id),)) + Blob.message_type_id.encode() + b"x" * size
    wire = msgpack.packb(msgpack.ExtType(EXT_MESSAGE, body))
    assert codec.encode(Blob(b"x" * size)) == wire == ext_head(EXT_MESSAGE, len(body)) + body
    assert codec.encode(Blob(b"x" * size)) == wire  # the class is learned: the fast path
    got = codec.decode(wire)
    assert type(got) is Blob and got.data == b"x" * size
    nested = codec.encode([Blob(b"x" * size)])  # the general path, inside a list
    assert nested == b"\x91" + wire and codec.decode(nested)[0].data == b"x" * size


def test_ext_head_is_msgpacks_for_every_length() -> None:
    for size in [*range(300), 65_535, 65_536]:
        data = b"y" * size
        assert ext_head(EXT_MESSAGE, size) + data == msgpack.packb(msgpack.ExtType(EXT_MESSAGE, data))


def test_one_message_maps_pids_through_the_hooks() -> None:
    reg = MessageRegistry()
    reg.register(Blob.message_type_id, _blob)
    out = Codec(reg, encode_pid=lambda p: Pid(7, p.id, 1) if p.node == 0 else p)
    back = Codec(reg, decode_pid=lambda p: Pid(0, p.id, 0) if p.node == 7 else p)
    wire = out.encode(Blob(b"P", Pid(0, 5, 0)))
    assert wire.endswith(struct.pack(">IQI", 7, 5, 1))
    got = back.decode(wire)
    assert got.pid == Pid(0, 5, 0) and got.data == b"P"


@pytest.mark.parametrize(
    "wire",
    [
        b"\xc7",
        b"\xc7\x00",
        b"\xc7\x00\x04",  # no type id
        b"\xc7\x05\x04\x0afast",  # a type id cut short
        b"\xc7\x03\x04\x02\xff\xfe",  # not UTF-8
        b"\xc7\x06\x04\x0afast::Blob",  # a length that is not the rest
        b"\xc7\x0b\x04\x0afast::Blob\x00",  # trailing bytes
    ],
)
def test_one_message_malformed_is_a_decode_error(codec: Codec, wire: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.decode(wire)


def test_one_message_unknown_type(codec: Codec) -> None:
    with pytest.raises(UnknownMessageType):
        codec.decode(msgpack.packb(msgpack.ExtType(EXT_MESSAGE, b"\x09fast::Nop")))


def test_one_message_over_max_bytes_is_refused() -> None:
    reg = MessageRegistry()
    reg.register(Blob.message_type_id, _blob)
    codec = Codec(reg, limits=Limits(max_bytes=64))
    with pytest.raises(DecodeError, match="max_bytes"):
        codec.decode(codec.encode(Blob(b"x" * 100)))


def _nested(depth: int) -> bytes:
    return b"\x92\x01" * depth + b"\xc0"  # two bytes a level: more opener bytes than levels


@pytest.mark.parametrize("limit", [1, 2, 64, 128, 1000, 1023])
def test_the_stack_depth_check_is_exact(limit: int) -> None:
    assert _STACK_DEPTH == 1024
    for depth in (limit - 1, limit, limit + 1, limit + 5):
        if depth < 0:
            continue
        wire = _nested(depth) + b"\x90" * (limit + 1)  # trailing opener bytes: not counted
        assert exceeds_depth(wire, limit) is (depth > limit) is _walk(wire, limit)
    wide = msgpack.packb([[[i]] for i in range(2000)])  # 4001 opener bytes, depth 3
    assert exceeds_depth(wide, 3) is False and exceeds_depth(wide, 2) is True


def test_the_depth_check_of_a_big_message_is_exact_too() -> None:
    blob = b"\x9f" * (_SKIP_ONLY + 1)  # opener bytes inside a bin: counted by translate, not levels
    for depth in (3, 4, 5):
        value: Any = blob
        for _ in range(depth):
            value = [value]
        wire = msgpack.packb(value)
        assert len(wire) > _SKIP_ONLY
        assert exceeds_depth(wire, 4) is (depth > 4) is _walk(wire, 4)
    assert exceeds_depth(b"\x91" * 300 + b"\xc1" * _SKIP_ONLY, 10) is True  # malformed past the limit


def test_the_depth_check_above_the_stack_walks() -> None:
    assert exceeds_depth(_nested(1500), 1400) is True
    assert exceeds_depth(_nested(1400), 1400) is False


def test_the_depth_check_leaves_malformed_input_to_the_decoder() -> None:
    assert exceeds_depth(b"\x92\xc1" + b"\x91" * 300, 10) is False  # the unused byte comes first
    assert exceeds_depth(b"\x91" * 300, 10) is True  # cut short past the limit: too deep all the same


def test_a_plain_codec_caches_a_pid_sent_again(codec: Codec) -> None:
    pid = Pid(0, 9, 0)
    for _ in range(SAMPLE + 1):
        wire = codec.encode({"to": pid})
        assert codec.decode(wire) == {"to": pid}
    assert codec.idents.pid_out and codec.idents.pid_in
    fresh: list[Any] = [Pid(0, 100 + i, 0) for i in range(4 * SAMPLE)]
    assert [codec.decode(codec.encode(p)) for p in fresh] == fresh
    assert len(codec.idents.pid_out) <= 1 + 4
