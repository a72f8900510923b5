"""Where the running codec is kept (one slot per greenlet's context), and how
``@serializable`` records are rebuilt: without ``__init__`` when it would
only store the fields, through it otherwise; and the codec's caches of type
ids and ext 4 headers give the bytes of its general path."""

from __future__ import annotations

import contextvars
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import gevent
import msgpack
import pytest
from gevent.event import Event
from zope.interface import implementer

from joerl.errors import DecodeError
from joerl.pid import Pid
from joerl.serialization import (
    Codec,
    ISerializableMessage,
    MessageRegistry,
    active_codec,
    decode,
    encode,
    pid_from_bytes,
    pid_to_bytes,
    serializable,
)
from joerl.serialization._wire import EXT_MESSAGE, ext_head

pytestmark = pytest.mark.timeout(60)

MAPPED = Pid(7, 5, 1)


def _hooked(registry: MessageRegistry) -> Codec:
    return Codec(registry, encode_pid=lambda p: MAPPED if p.node == 0 else p)


# -- the running codec, per greenlet -------------------------------------------


def test_a_frame_is_seen_by_its_own_greenlet_only_even_through_a_copied_context() -> None:
    registry = MessageRegistry()
    codec = _hooked(registry)
    inside, resume = Event(), Event()
    seen: dict[str, Any] = {}

    @implementer(ISerializableMessage)
    class Pausing:
        message_type_id = "frames::Pausing"

        def serialize(self) -> bytes:
            inside.set()
            assert resume.wait(timeout=10)  # the other greenlet runs while this frame is open
            seen["own after the switch"] = (active_codec(), pid_to_bytes(Pid(0, 5, 0)))
            return b""

    @implementer(ISerializableMessage)
    class Quick:
        message_type_id = "frames::Quick"

        def serialize(self) -> bytes:
            seen["quick"] = (active_codec(), pid_to_bytes(Pid(0, 5, 0)))
            return b""

    def owner() -> None:
        codec.encode(Quick())  # this greenlet's context gets its slot
        copied = contextvars.copy_context()  # shares the slot object
        other = gevent.spawn(copied.run, bystander)
        codec.encode(Pausing())
        other.join(timeout=10)

    def bystander() -> None:
        assert inside.wait(timeout=10)
        seen["outside"] = (active_codec(), pid_to_bytes(Pid(0, 5, 0)))
        plain = Codec(registry)
        plain.encode(Quick())  # enters a frame of its own while the owner's is open
        resume.set()

    registry.register(Pausing.message_type_id, lambda data: None)
    registry.register(Quick.message_type_id, lambda data: None)
    gevent.spawn(owner).join(timeout=20)
    mapped = pid_to_bytes(MAPPED)
    assert seen["outside"] == (None, pid_to_bytes(Pid(0, 5, 0)))  # not the owner's frame
    assert seen["quick"][0] is not codec  # the bystander's own codec
    assert seen["own after the switch"] == (codec, mapped)
    assert active_codec() is None


def test_a_deserializer_sees_its_codec_and_nested_frames_unwind() -> None:
    registry = MessageRegistry()
    codec = _hooked(registry)
    log: list[Any] = []

    @implementer(ISerializableMessage)
    class Outer:
        message_type_id = "frames::Outer"

        def serialize(self) -> bytes:
            inner = Codec(registry).encode(Outer2())  # another codec, nested
            log.append(active_codec())
            return inner

    @implementer(ISerializableMessage)
    class Outer2:
        message_type_id = "frames::Outer2"

        def serialize(self) -> bytes:
            log.append(active_codec())
            return b""

    def read(data: bytes) -> Any:
        log.append(active_codec())
        return pid_from_bytes(pid_to_bytes(Pid(0, 1, 0)))

    registry.register(Outer.message_type_id, read)
    registry.register(Outer2.message_type_id, read)
    wire = codec.encode(Outer())
    assert log[0] is not codec and log[1] is codec
    assert codec.decode(wire) == MAPPED and log[2] is codec
    assert active_codec() is None


# -- @serializable records rebuilt ----------------------------------------------


def _codec_for(*classes: type) -> Codec:
    reg = MessageRegistry()
    for cls in classes:
        reg.register_class(cls)
    return Codec(reg)


def test_a_plain_record_is_rebuilt_without_init_and_equals_the_original() -> None:
    reg = MessageRegistry()

    @serializable("frames::Plain", registry=reg)
    @dataclass(frozen=True)
    class Plain:
        count: int
        reply_to: Pid
        note: str = ""
        tags: tuple[str, ...] = ()
        extra: dict[str, int] = field(default_factory=dict, hash=False)

    assert Plain.__joerl_record__.plain  # type: ignore[attr-defined]
    codec = Codec(reg)
    msg = Plain(7, Pid(0, 3, 0), "n", ("a",), {"k": 1})
    for _ in range(2):  # the record's head is learned: the second decode takes the fast path
        got = codec.decode(codec.encode(msg))
        assert got == msg and type(got) is Plain and hash(got) == hash(msg)
        assert vars(got) == vars(msg)
        with pytest.raises(dataclasses.FrozenInstanceError):
            got.count = 8  # type: ignore[misc]
    # A field missing (a sender's older class): __init__ fills the default.
    older = msgpack.packb([Plain.__joerl_record__.head, {"count": 1, "reply_to": [0, 1, 0]}])  # type: ignore[attr-defined]
    got = codec.decode(older)
    assert got.note == "" and got.tags == () and got.extra == {}
    # An unknown field: the class refuses it, as its __init__ would.
    extra = codec.encode(msg).replace(b"\xa4note", b"\xa4nope")
    with pytest.raises(DecodeError, match="nope"):
        codec.decode(extra)


def test_records_that_need_init_go_through_it() -> None:
    reg = MessageRegistry()
    calls: list[str] = []

    @serializable("frames::Post", registry=reg)
    @dataclass
    class Post:
        n: int

        def __post_init__(self) -> None:
            calls.append("post")

    @serializable("frames::OwnInit", registry=reg)
    @dataclass(init=False)
    class OwnInit:
        n: int

        def __init__(self, n: int) -> None:
            calls.append("init")
            self.n = n

    @serializable("frames::Slotted", registry=reg)
    @dataclass(frozen=True, slots=True)
    class Slotted:
        n: int

    @serializable("frames::Checked", registry=reg)
    @dataclass
    class Checked:
        n: int

        def __setattr__(self, name: str, value: Any) -> None:
            calls.append("setattr")
            object.__setattr__(self, name, value)

    classes: tuple[Any, ...] = (Post, OwnInit, Slotted, Checked)
    assert not any(c.__joerl_record__.plain for c in classes)
    codec = Codec(reg)
    for cls in classes:
        calls.clear()
        msg = cls(3)
        calls.clear()
        for _ in range(2):
            got = codec.decode(codec.encode(msg))
            assert type(got) is cls and got.n == 3
        assert len(calls) == (0 if cls is Slotted else 2)


def test_a_small_record_at_the_top_that_is_not_head_and_fields() -> None:
    reg = MessageRegistry()

    @serializable("frames::R", registry=reg)
    @dataclass(frozen=True)
    class R:
        n: int

    codec = Codec(reg)
    head = R.__joerl_record__.head  # type: ignore[attr-defined]
    assert codec.decode(codec.encode(R(1))) == R(1)  # the head is met
    for bad in ([head, 5], [head, [1]], [head, {"n": 1}, 2]):
        with pytest.raises(DecodeError):
            codec.decode(msgpack.packb(bad))
    with pytest.raises(DecodeError):  # a record marker where the fields go
        codec.decode(msgpack.packb([head, head]))
    with pytest.raises(DecodeError):  # trailing bytes
        codec.decode(codec.encode(R(1)) + b"\x00")


# -- the type id and header caches ----------------------------------------------


@implementer(ISerializableMessage)
class Sized:
    def __init__(self, type_id: str, data: bytes) -> None:
        self.message_type_id = type_id
        self.data = data

    def serialize(self) -> bytes:
        return self.data


@pytest.mark.parametrize("type_id", ["a::b", "frames::Sized", "ü::ß" * 20])
def test_cached_headers_give_the_bytes_packer_makes(type_id: str) -> None:
    reg = MessageRegistry()
    reg.register(type_id, lambda data: ("got", data))
    codec = Codec(reg)
    raw = type_id.encode()
    for size in (0, 1, 5, 200, 250 - len(raw), 251 - len(raw), 300, 70_000, 5, 0):
        body = bytes((len(raw),)) + raw + b"y" * size
        wire = msgpack.packb(msgpack.ExtType(EXT_MESSAGE, body))
        assert wire == ext_head(EXT_MESSAGE, len(body)) + body
        for _ in range(2):
            assert codec.encode(Sized(type_id, b"y" * size)) == wire
            assert codec.decode(wire) == ("got", b"y" * size)


def test_instances_of_one_class_with_other_type_ids() -> None:
    reg = MessageRegistry()
    reg.register("x::One", lambda data: ("one", data))
    reg.register("x::Two", lambda data: ("two", data))
    codec = Codec(reg)
    for _ in range(2):
        assert codec.decode(codec.encode(Sized("x::One", b"1"))) == ("one", b"1")
        assert codec.decode(codec.encode(Sized("x::Two", b"2"))) == ("two", b"2")
    reg.unregister("x::Two")
    reg.register("x::Two", lambda data: ("new two", data))
    assert codec.decode(codec.encode(Sized("x::Two", b"2"))) == ("new two", b"2")


@pytest.mark.parametrize("type_id", ["a::b", "abcdefgh::ij", "frames::Head", "x::" + "y" * 200])
def test_a_record_at_the_top_has_the_bytes_of_its_array(type_id: str) -> None:
    reg = MessageRegistry()

    @serializable(type_id, registry=reg)
    @dataclass(frozen=True)
    class Rec:
        n: int
        p: Pid

    codec = Codec(reg)
    head = Rec.__joerl_record__.head  # type: ignore[attr-defined]
    msg = Rec(1, Pid(0, 2, 0))
    wire = msgpack.packb([head, {"n": 1, "p": msgpack.ExtType(1, bytes(4) + (2).to_bytes(8, "big") + bytes(4))}])
    for _ in range(3):  # learned after the first: the record's own path each way
        assert codec.encode(msg) == wire
        assert codec.decode(wire) == msg
        assert codec.encode([msg]) == b"\x91" + wire and codec.decode(b"\x91" + wire) == [msg]


def test_a_record_encoded_inside_a_serialize_while_the_packer_is_busy() -> None:
    reg = MessageRegistry()

    @serializable("frames::Inner", registry=reg)
    @dataclass(frozen=True)
    class Inner:
        n: int

    @implementer(ISerializableMessage)
    class Holder:
        message_type_id = "frames::Holder"

        def serialize(self) -> bytes:
            return encode(Inner(5))  # the codec's Packer is busy with the list around this message

    reg.register(Holder.message_type_id, lambda data: ("held", decode(data)))
    codec = Codec(reg)
    for _ in range(2):
        assert codec.decode(codec.encode([Holder(), Inner(6)])) == [("held", Inner(5)), Inner(6)]
