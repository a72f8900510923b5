"""joerl.serialization: the contract, the registry, @serializable, the envelope,
and the Codec's byte layout, errors, limits and pid hooks.

Property tests (hypothesis round trips, random bytes) are in
``test_serialization_props.py``.
"""

from __future__ import annotations

import datetime
import enum
import importlib.util
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import gevent
import msgpack
import pytest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from joerl.errors import DecodeError, NotSerializable, SerializationError, UnknownMessageType
from joerl.pid import Pid, Ref
from joerl.serialization import (
    BrokenMessageType,
    Codec,
    ISerializableMessage,
    Limits,
    MessageRegistry,
    MessageTypeTaken,
    SerializableEnvelope,
    active_codec,
    decode,
    default_registry,
    encode,
    pid_from_bytes,
    pid_to_bytes,
    ref_from_bytes,
    ref_to_bytes,
    register_message_type,
    serializable,
)
from joerl.serialization._limits import ExtWalk, _walk, ext_depths

ROOT = Path(__file__).resolve().parents[2]

# -- message types used below -----------------------------------------------------------


@implementer(ISerializableMessage)
class PingMsg:
    """The seed's PingMsg in its Python form: hand-written serializer and all."""

    message_type_id = "example::PingMsg"

    def __init__(self, count: int, reply_to: Pid) -> None:
        self.count = count
        self.reply_to = reply_to

    def serialize(self) -> bytes:
        return struct.pack(">I", self.count) + pid_to_bytes(self.reply_to)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PingMsg) and (self.count, self.reply_to) == (other.count, other.reply_to)

    def __repr__(self) -> str:
        return f"PingMsg({self.count}, {self.reply_to!r})"


def deserialize_ping(data: bytes) -> PingMsg:
    if len(data) != 20:
        raise DecodeError(f"PingMsg takes 20 bytes, not {len(data)}")
    (count,) = struct.unpack_from(">I", data)
    return PingMsg(count, pid_from_bytes(data[4:]))


@pytest.fixture
def registry() -> MessageRegistry:
    """A private registry holding PingMsg (tests never touch the default one
    without cleaning up)."""
    reg = MessageRegistry()
    reg.register(PingMsg.message_type_id, deserialize_ping)
    return reg


@pytest.fixture
def codec(registry: MessageRegistry) -> Codec:
    return Codec(registry)


def define_records(reg: MessageRegistry) -> dict[str, type]:
    """Fresh @serializable classes registered in ``reg``."""

    @serializable("test::Point", registry=reg)
    @dataclass(frozen=True)
    class Point:
        x: int
        y: int

    @serializable("test::Task", registry=reg)
    @dataclass
    class Task:
        name: str
        owner: Pid
        handler: Any = None
        where: Point | None = None
        tags: tuple[str, ...] = ()
        extra: dict[Any, Any] = field(default_factory=dict)

    return {"Point": Point, "Task": Task}


@pytest.fixture
def records(registry: MessageRegistry) -> dict[str, type]:
    return define_records(registry)


def roundtrip(codec: Codec, value: Any) -> Any:
    return codec.decode(codec.encode(value))


# -- the contract ---------------------------------------------------------------------


def test_every_example_message_type_passes_verify_object(records: dict[str, type]) -> None:
    pid = Pid(0, 1, 0)
    assert verifyObject(ISerializableMessage, PingMsg(1, pid))
    assert verifyObject(ISerializableMessage, records["Point"](1, 2))
    assert verifyObject(ISerializableMessage, records["Task"]("t", pid))
    spec = importlib.util.spec_from_file_location(
        "serialization_example", ROOT / "examples" / "serialization_example.py"
    )
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    sys.modules["serialization_example"] = example
    try:
        spec.loader.exec_module(example)
        assert verifyObject(ISerializableMessage, example.PingMsg(1, pid))
        assert verifyObject(ISerializableMessage, example.Job("j", pid))
    finally:
        del sys.modules["serialization_example"]
        for type_id in ("example::PingMsg", "example::Job"):
            default_registry().unregister(type_id)


def test_a_class_that_claims_the_interface_but_lacks_serialize_is_refused(codec: Codec) -> None:
    @implementer(ISerializableMessage)
    class NoSerialize:
        message_type_id = "test::NoSerialize"

    with pytest.raises(BrokenMessageType) as info:
        codec.encode({"m": [NoSerialize()]})
    assert info.value.path == "msg['m'][0]"
    assert info.value.value_type is NoSerialize
    assert "serialize" in str(info.value) and "claims ISerializableMessage" in str(info.value)
    assert isinstance(info.value, NotSerializable)
    with pytest.raises(BrokenMessageType, match="serialize"):
        SerializableEnvelope.wrap(NoSerialize())


def test_a_class_that_claims_the_interface_but_lacks_the_type_id_is_refused(codec: Codec) -> None:
    @implementer(ISerializableMessage)
    class NoId:
        def serialize(self) -> bytes:
            return b""

    with pytest.raises(BrokenMessageType, match="message_type_id"):
        codec.encode(NoId())
    with pytest.raises(BrokenMessageType, match="message_type_id"):
        SerializableEnvelope.wrap(NoId())


@pytest.mark.parametrize("type_id", ["PingMsg", "a::", "::b", "a b::c", 42, "x::" + "y" * 300])
def test_a_message_with_an_invalid_type_id_is_refused(codec: Codec, type_id: Any) -> None:
    @implementer(ISerializableMessage)
    class Bad:
        message_type_id = type_id

        def serialize(self) -> bytes:
            return b""

    with pytest.raises(BrokenMessageType, match="message_type_id"):
        codec.encode(Bad())


def test_serialize_that_raises_or_returns_non_bytes_is_reported(codec: Codec) -> None:
    @implementer(ISerializableMessage)
    class Raises:
        message_type_id = "test::Raises"

        def serialize(self) -> bytes:
            raise RuntimeError("boom")

    @implementer(ISerializableMessage)
    class ReturnsStr:
        message_type_id = "test::ReturnsStr"

        def serialize(self) -> bytes:
            return "nope"  # type: ignore[return-value]

    with pytest.raises(BrokenMessageType, match="boom") as info:
        codec.encode([1, Raises()])
    assert info.value.path == "msg[1]"
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(BrokenMessageType, match="returned str, not bytes"):
        codec.encode((ReturnsStr(),))


def test_an_object_that_does_not_declare_the_interface_is_not_a_message(codec: Codec) -> None:
    class Duck:
        message_type_id = "test::Duck"

        def serialize(self) -> bytes:
            return b""

    with pytest.raises(NotSerializable) as info:
        codec.encode(Duck())
    assert info.value.value_type is Duck and not isinstance(info.value, BrokenMessageType)


# -- the registry ---------------------------------------------------------------------


def test_registering_the_same_deserializer_twice_is_harmless(registry: MessageRegistry) -> None:
    registry.register("example::PingMsg", deserialize_ping)
    assert registry.lookup("example::PingMsg").deserializer is deserialize_ping
    assert "example::PingMsg" in registry and len(registry) == 1


def test_a_different_deserializer_under_a_taken_id_raises_unless_replacing(registry: MessageRegistry) -> None:
    def other(data: bytes) -> Any:
        return data

    with pytest.raises(MessageTypeTaken) as info:
        registry.register("example::PingMsg", other)
    assert info.value.type_id == "example::PingMsg" and info.value.existing is deserialize_ping
    assert isinstance(info.value, SerializationError)
    registry.register("example::PingMsg", other, replace=True)
    assert registry.lookup("example::PingMsg").deserializer is other


@pytest.mark.parametrize(
    ("type_id", "error"), [(1, TypeError), ("Ping", ValueError), ("a::b c", ValueError), ("", ValueError)]
)
def test_register_validates_the_type_id(registry: MessageRegistry, type_id: Any, error: type) -> None:
    with pytest.raises(error):
        registry.register(type_id, deserialize_ping)


def test_register_wants_a_callable(registry: MessageRegistry) -> None:
    with pytest.raises(TypeError, match="callable"):
        registry.register("test::X", b"not callable")  # type: ignore[arg-type]


def test_unregister_copy_fallback_and_type_ids(registry: MessageRegistry) -> None:
    child = MessageRegistry(fallback=registry)
    assert child.lookup("example::PingMsg").deserializer is deserialize_ping  # via the fallback
    assert "example::PingMsg" in child and len(child) == 0
    snapshot = registry.copy()
    assert registry.unregister("example::PingMsg") is True
    assert registry.unregister("example::PingMsg") is False
    assert "example::PingMsg" not in child
    assert snapshot.type_ids() == ["example::PingMsg"]
    with pytest.raises(UnknownMessageType) as info:
        registry.lookup("example::PingMsg")
    assert info.value.type_id == "example::PingMsg"


def test_register_message_type_uses_the_default_registry() -> None:
    register_message_type("test::DefaultPing", deserialize_ping)
    try:
        register_message_type("test::DefaultPing", deserialize_ping)
        msg = PingMsg(5, Pid(0, 3, 0))
        msg.message_type_id = "test::DefaultPing"
        got = decode(encode(msg))  # module-level helpers: a plain codec on the default registry
        assert got == msg
        assert Codec().registry is default_registry()
    finally:
        assert default_registry().unregister("test::DefaultPing")


def test_registries_in_one_process_differ(registry: MessageRegistry) -> None:
    other = Codec(MessageRegistry())
    data = Codec(registry).encode(PingMsg(1, Pid(0, 2, 0)))
    with pytest.raises(UnknownMessageType) as info:
        other.decode(data)
    assert info.value.type_id == "example::PingMsg"


# -- byte layout ----------------------------------------------------------------------

PID_123 = bytes.fromhex("d80100000001000000000000000200000003")


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (Pid(1, 2, 3), PID_123),
        (Ref(1, 2, 3), bytes.fromhex("d80200000001000000000000000200000003")),
        ((1, "a"), bytes.fromhex("93 c70003 01 a161")),
        ((), bytes.fromhex("91 c70003")),
        (((),), bytes.fromhex("92 c70003 91c70003")),
        ([(1,)], bytes.fromhex("91 92c70003 01")),
        (2**64, bytes.fromhex("c709 05 010000000000000000")),
        (-(2**63) - 1, bytes.fromhex("c709 05 ff7fffffffffffffff")),
        (2**64 - 1, bytes.fromhex("cf ffffffffffffffff")),
        ({(1, 2): None}, bytes.fromhex("81 93c70003 0102 c0")),
        (datetime.datetime(1970, 1, 1, 0, 0, 1, tzinfo=datetime.timezone.utc), bytes.fromhex("d6ff 00000001")),
    ],
)
def test_byte_vectors(codec: Codec, value: Any, wire: bytes) -> None:
    assert codec.encode(value) == wire
    got = codec.decode(wire)
    assert got == value and type(got) is type(value)


def test_hand_written_message_bytes(codec: Codec) -> None:
    wire = codec.encode(PingMsg(7, Pid(1, 2, 3)))
    payload = b"\x10example::PingMsg" + struct.pack(">I", 7) + PID_123[2:]
    assert wire == b"\xc7" + bytes([len(payload)]) + b"\x04" + payload
    assert SerializableEnvelope.wrap(PingMsg(7, Pid(1, 2, 3))).to_bytes() == payload


def test_record_bytes(codec: Codec, records: dict[str, type]) -> None:
    wire = codec.encode(records["Point"](1, -1))
    head = struct.pack(">I", 1) + b"test::Point"
    assert wire == b"\x92" + b"\xc7" + bytes([len(head)]) + b"\x06" + head + bytes.fromhex("82 a178 01 a179 ff")


def test_every_proper_prefix_fails_and_trailing_bytes_fail(codec: Codec, records: dict[str, type]) -> None:
    msg = {"ping": PingMsg(7, Pid(1, 2, 3)), "p": records["Point"](1, 2), "t": (1, (2, [3])), "big": -(2**100)}
    wire = codec.encode(msg)
    assert codec.decode(wire) == msg  # whole
    for end in range(len(wire)):  # one byte at a time: no prefix decodes
        with pytest.raises(DecodeError):
            codec.decode(wire[:end])
    for extra in (b"\x00", b"\xc0", wire):  # followed by extra bytes
        with pytest.raises(DecodeError, match="extra"):
            codec.decode(wire + extra)


def test_decode_accepts_bytearray_and_memoryview_only(codec: Codec) -> None:
    wire = codec.encode([1, Pid(0, 1, 0)])
    assert codec.decode(bytearray(wire)) == codec.decode(memoryview(wire)) == [1, Pid(0, 1, 0)]
    with pytest.raises(TypeError):
        codec.decode("text")  # type: ignore[arg-type]


# -- plain data -----------------------------------------------------------------------


def test_plain_values_round_trip_with_their_types(codec: Codec) -> None:
    pid, ref = Pid(4, 5, 6), Ref(0, 9, 0)
    values = [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        2**64,
        -(2**63) - 1,
        3**500,
        -(7**300),
        0.0,
        -0.0,
        1.5,
        float("inf"),
        "",
        "héllo ✓",
        b"",
        b"\x00\xff",
        [],
        [1, [2, [3]]],
        (),
        (1,),
        ((1, 2), [3, (4,)]),
        {},
        {"a": 1},
        pid,
        ref,
        [pid, (ref,)],
    ]
    for value in values:
        got = roundtrip(codec, value)
        assert got == value and type(got) is type(value), value
    assert str(roundtrip(codec, -0.0)) == "-0.0"


def test_dict_keys_may_be_any_hashable_plain_value(codec: Codec, records: dict[str, type]) -> None:
    pid = Pid(1, 2, 3)
    point = records["Point"](1, 2)  # frozen, so hashable
    value = {
        "s": 1,
        2: "int",
        None: 0,
        True: "bool",
        1.5: "f",
        b"b": 3,
        (1, (2, "x")): "tuple",
        pid: "pid",
        Ref(0, 1, 0): "ref",
        point: "record",
    }
    got = roundtrip(codec, value)
    assert got == value
    assert [type(k) for k in got] == [type(k) for k in value]


def test_bytearray_and_memoryview_arrive_as_bytes(codec: Codec) -> None:
    assert roundtrip(codec, [bytearray(b"ab"), memoryview(b"cd")]) == [b"ab", b"cd"]


def test_aware_datetimes_arrive_in_utc(codec: Codec) -> None:
    tz = datetime.timezone(datetime.timedelta(hours=5))
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=tz)
    got = roundtrip(codec, when)
    assert got == when and got.tzinfo == datetime.timezone.utc


def test_ints_beyond_the_limit_are_refused_at_send_time_never_truncated() -> None:
    codec = Codec(MessageRegistry(), limits=Limits(max_int_bytes=16))
    ok = 2**127 - 1
    assert roundtrip(codec, ok) == ok
    with pytest.raises(NotSerializable, match="int of 128 bits") as info:
        codec.encode({"n": [2**127]})
    assert info.value.path == "msg['n'][0]" and info.value.value_type is int
    with pytest.raises(DecodeError):  # a peer with a larger limit sent it
        codec.decode(Codec(MessageRegistry()).encode(2**200))


# -- NotSerializable ------------------------------------------------------------------


def test_not_serializable_names_the_type_and_the_path(codec: Codec, records: dict[str, type]) -> None:
    Task = records["Task"]

    def handler() -> None:
        pass

    msg = {"items": [1, 2, "three", Task("t", Pid(0, 1, 0), handler=handler)]}
    with pytest.raises(NotSerializable) as info:
        codec.encode(msg)
    assert info.value.path == "msg['items'][3].handler"
    assert info.value.value_type is type(handler)
    assert "builtins.function at msg['items'][3].handler" in str(info.value)


class Color(enum.IntEnum):
    RED = 1


class Pair(NamedTuple):
    a: int
    b: int


@pytest.mark.parametrize(
    ("msg", "path", "value_type"),
    [
        ([{1, 2}], "msg[0]", set),
        ({"c": Color.RED}, "msg['c']", Color),
        ((1, Pair(1, 2)), "msg[1]", Pair),
        ([object()], "msg[0]", object),
        ({"k": {(1, frozenset()): 0}}, "msg['k']<key (1, frozenset())>[1]", frozenset),
        (["ok", "\ud800"], "msg[1]", str),
        ({"at": datetime.datetime(2024, 1, 1)}, "msg['at']", datetime.datetime),
        (object(), "msg", object),
    ],
)
def test_not_serializable_cases(codec: Codec, msg: Any, path: str, value_type: type) -> None:
    with pytest.raises(NotSerializable) as info:
        codec.encode(msg)
    assert (info.value.path, info.value.value_type) == (path, value_type)


def test_a_reference_cycle_is_reported(codec: Codec) -> None:
    loop: list[Any] = [1]
    loop.append({"again": loop})
    with pytest.raises(SerializationError, match=r"cycle at msg\[1\]\['again'\]"):
        codec.encode(loop)


def test_the_codec_is_usable_after_an_error(codec: Codec) -> None:
    with pytest.raises(NotSerializable):
        codec.encode([1, 2, object()])
    assert codec.encode([1]) == b"\x91\x01"


# -- the seed's PingMsg and pid mapping -------------------------------------------------

NODE_A, NODE_B = 7, 9


def node_codec(registry: MessageRegistry, me: int, calls: list[Pid] | None = None) -> Codec:
    def out(pid: Pid) -> Pid:
        if calls is not None:
            calls.append(pid)
        return Pid(me, pid.id, 1) if pid.node == 0 else pid

    def back(pid: Pid) -> Pid:
        return Pid(0, pid.id, 0) if (pid.node, pid.creation) == (me, 1) else pid

    return Codec(registry, encode_pid=out, decode_pid=back)


def test_seed_ping_msg_round_trips(codec: Codec) -> None:
    msg = PingMsg(42, Pid(3, 99, 2))
    assert roundtrip(codec, msg) == msg
    envelope = SerializableEnvelope.wrap(msg)
    assert envelope.type_id == "example::PingMsg" and len(envelope.data) == 20
    assert SerializableEnvelope.from_bytes(envelope.to_bytes()).unwrap(codec.registry) == msg


def test_a_local_pid_names_the_same_process_once_it_arrives_elsewhere(
    registry: MessageRegistry, records: dict[str, type]
) -> None:
    a, b = node_codec(registry, NODE_A), node_codec(registry, NODE_B)
    local = Pid(0, 5, 0)
    Task = records["Task"]
    msg = {
        "ping": PingMsg(1, local),
        "task": Task("t", local, where=records["Point"](1, 2)),
        "t": (local,),
        local: [local],
    }
    at_b = b.decode(a.encode(msg))
    seen = Pid(NODE_A, 5, 1)
    assert at_b["ping"].reply_to == seen and at_b["task"].owner == seen and at_b["t"] == (seen,)
    assert at_b[seen] == [seen]
    back_at_a = a.decode(b.encode(at_b))  # B replies to the pid it got: A sees its local pid again
    assert back_at_a == msg
    third = node_codec(registry, 11).decode(b.encode(at_b))  # a third node sees A's pid unchanged
    assert third["ping"].reply_to == seen


def test_refs_pass_their_hooks(registry: MessageRegistry) -> None:
    a = Codec(registry, encode_ref=lambda r: r.with_node_id(NODE_A, 1))
    b = Codec(registry, decode_ref=lambda r: Ref(0, r.id, 0) if r.node == NODE_A else r)
    assert b.decode(a.encode([Ref(0, 3, 0)])) == [Ref(0, 3, 0)]
    assert Codec(registry).decode(a.encode(Ref(0, 3, 0))) == Ref(NODE_A, 3, 1)


def test_pid_hooks_are_cached_per_pid(registry: MessageRegistry) -> None:
    calls: list[Pid] = []
    a = node_codec(registry, NODE_A, calls)
    pid = Pid(0, 1, 0)
    for _ in range(3):
        a.encode([pid, pid, PingMsg(1, pid)])
    assert calls == [pid]
    a.clear_caches()
    a.encode(pid)
    assert calls == [pid, pid]


def test_hook_failures(registry: MessageRegistry) -> None:
    def refuse(pid: Pid) -> Pid:
        raise SerializationError("no remote pids here")

    with pytest.raises(SerializationError, match=r"no remote pids here \(at msg\[1\]\)"):
        Codec(registry, encode_pid=refuse).encode([1, Pid(0, 1, 0)])
    with pytest.raises(SerializationError, match="hook failed"):
        Codec(registry, encode_pid=lambda p: 1 / 0).encode(Pid(0, 1, 0))  # type: ignore[arg-type,return-value]
    with pytest.raises(SerializationError, match="hook returned"):
        Codec(registry, encode_pid=lambda p: "x").encode(Pid(0, 1, 0))  # type: ignore[arg-type,return-value]
    with pytest.raises(SerializationError, match="no remote pids here"):  # through pid_to_bytes too
        Codec(registry, encode_pid=refuse).encode(PingMsg(1, Pid(0, 1, 0)))
    wire = Codec(registry).encode([Pid(0, 1, 0)])
    with pytest.raises(DecodeError, match="hook failed"):
        Codec(registry, decode_pid=lambda p: 1 / 0).decode(wire)  # type: ignore[arg-type,return-value]
    with pytest.raises(DecodeError, match="hook returned"):
        Codec(registry, decode_pid=lambda p: Ref(0, 1, 0)).decode(wire)  # type: ignore[arg-type,return-value]


def test_pid_bytes_helpers() -> None:
    pid, ref = Pid(1, 2, 3), Ref(4, 5, 6)
    assert pid_to_bytes(pid) == PID_123[2:]
    assert pid_from_bytes(PID_123[2:]) == pid
    assert pid_from_bytes(bytearray(PID_123[2:])) == pid
    assert ref_from_bytes(ref_to_bytes(ref)) == ref
    with pytest.raises(DecodeError):
        pid_from_bytes(b"\x00" * 15)
    with pytest.raises(DecodeError):
        pid_from_bytes("x" * 16)  # type: ignore[arg-type]
    with pytest.raises(NotSerializable):
        pid_to_bytes(ref)  # type: ignore[arg-type]


# -- re-entrancy ----------------------------------------------------------------------


@implementer(ISerializableMessage)
class Wrapper:
    """A hand-written message whose payload is itself codec-encoded."""

    message_type_id = "test::Wrapper"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def serialize(self) -> bytes:
        assert active_codec() is not None
        return encode(self.inner)  # the active codec: its pid hooks apply

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Wrapper) and self.inner == other.inner


def deserialize_wrapper(data: bytes) -> Wrapper:
    return Wrapper(decode(data))  # the active codec: its registry and hooks apply


def test_serializers_may_use_the_active_codec(registry: MessageRegistry) -> None:
    registry.register(Wrapper.message_type_id, deserialize_wrapper)
    a, b = node_codec(registry, NODE_A), node_codec(registry, NODE_B)
    local = Pid(0, 8, 0)
    msg = Wrapper([local, PingMsg(1, local), Wrapper((local,))])
    at_b = b.decode(a.encode(msg))
    assert at_b.inner[0] == Pid(NODE_A, 8, 1) and at_b.inner[1].reply_to == Pid(NODE_A, 8, 1)
    assert a.decode(b.encode(at_b)) == msg
    assert active_codec() is None


def test_a_serializer_that_yields_while_another_greenlet_encodes() -> None:
    registry = MessageRegistry()
    codec = Codec(registry)

    @implementer(ISerializableMessage)
    class Slow:
        message_type_id = "test::Slow"

        def serialize(self) -> bytes:
            gevent.sleep(0)  # another greenlet runs codec.encode meanwhile
            return encode([Pid(0, 1, 0)])

    registry.register(Slow.message_type_id, lambda data: ("slow", decode(data)))
    results: dict[str, Any] = {}

    def encoder(name: str, msg: Any) -> None:
        results[name] = codec.decode(codec.encode(msg))

    jobs = [gevent.spawn(encoder, "slow", [Slow(), 2]), gevent.spawn(encoder, "fast", {"x": (1, Pid(0, 2, 0))})]
    gevent.joinall(jobs, timeout=5, raise_error=True)
    assert results == {"slow": [("slow", [Pid(0, 1, 0)]), 2], "fast": {"x": (1, Pid(0, 2, 0))}}


# -- @serializable --------------------------------------------------------------------


def test_records_round_trip_nested(codec: Codec, records: dict[str, type]) -> None:
    Point, Task = records["Point"], records["Task"]
    task = Task(
        "job",
        Pid(1, 2, 3),
        where=Point(1, 2),
        tags=("a", "b"),
        extra={"p": [Point(3, 4)], Point(0, 0): PingMsg(1, Pid(0, 1, 0)), "n": 2**80},
    )
    got = roundtrip(codec, [task, (task,)])
    assert got == [task, (task,)]
    assert type(got[0].where) is Point and type(got[0].tags) is tuple


def test_record_class_gets_the_contract(records: dict[str, type]) -> None:
    Point: Any = records["Point"]
    assert Point.message_type_id == "test::Point" and Point.message_version == 1
    assert ISerializableMessage.implementedBy(Point)
    point = Point(1, 2)
    envelope = SerializableEnvelope.wrap(point)
    assert envelope.type_id == "test::Point"
    reg = MessageRegistry()
    reg.register_class(Point)
    reg.register_class(Point)  # twice: harmless
    assert envelope.unwrap(reg) == point
    assert reg.deserialize("test::Point", point.serialize()) == point


def test_record_serialize_and_deserializer_respect_the_active_codec(
    registry: MessageRegistry, records: dict[str, type]
) -> None:
    Task = records["Task"]
    task = Task("t", Pid(0, 4, 0))
    registry.register("test::WrappedTask", deserialize_wrapper)
    wrapped = Wrapper(task)
    wrapped.message_type_id = "test::WrappedTask"
    at_b = node_codec(registry, NODE_B).decode(node_codec(registry, NODE_A).encode(wrapped))
    assert at_b.inner.owner == Pid(NODE_A, 4, 1)


def test_a_subclass_of_a_record_must_be_decorated_itself(codec: Codec, records: dict[str, type]) -> None:
    Point = records["Point"]

    @dataclass(frozen=True)
    class Point3(Point):  # type: ignore[misc,valid-type]
        z: int = 0

    with pytest.raises(BrokenMessageType, match="without its own @serializable") as info:
        codec.encode({"p": Point3(1, 2, 3)})
    assert info.value.path == "msg['p']"


def test_decorator_misuse() -> None:
    reg = MessageRegistry()
    with pytest.raises(TypeError, match="dataclass"):
        serializable("test::NotDc", registry=reg)(type("NotDc", (), {}))
    with pytest.raises(ValueError):
        serializable("NoNamespace", registry=reg)
    with pytest.raises(ValueError, match="version"):
        serializable("test::V", version=0, registry=reg)
    with pytest.raises(TypeError, match="upgrade"):
        serializable("test::V", upgrade=42, registry=reg)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="serialize"):

        @serializable("test::OwnSerialize", registry=reg)
        @dataclass
        class OwnSerialize:
            x: int

            def serialize(self) -> bytes:
                return b""

    with pytest.raises(TypeError, match="message_type_id"):

        @serializable("test::Reserved", registry=reg)
        @dataclass
        class Reserved:
            message_type_id: str

    @serializable("test::Taken", registry=reg)
    @dataclass
    class First:
        x: int

    with pytest.raises(MessageTypeTaken):

        @serializable("test::Taken", registry=reg)
        @dataclass
        class Second:
            x: int

    @serializable("test::Taken", registry=reg, replace=True)
    @dataclass
    class Third:
        x: int

    assert reg.lookup("test::Taken").record.cls is Third


def test_init_false_fields_are_derived_not_sent(codec: Codec, registry: MessageRegistry) -> None:
    @serializable("test::Derived", registry=registry)
    @dataclass
    class Derived:
        a: int
        double: int = field(init=False)

        def __post_init__(self) -> None:
            self.double = self.a * 2

    wire = codec.encode(Derived(4))
    assert b"double" not in wire
    assert codec.decode(wire).double == 8


def _versioned(
    version: int, upgrade: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None
) -> tuple[Codec, type]:
    reg = MessageRegistry()
    if version == 1:

        @serializable("test::Job", version=1, registry=reg)
        @dataclass
        class Job:
            name: str
            timeout_ms: int

        return Codec(reg), Job

    @serializable("test::Job", version=version, upgrade=upgrade, registry=reg)
    @dataclass
    class JobV2:
        name: str
        timeout: float
        owner: Pid | None = None

    return Codec(reg), JobV2


def upgrade_job(version: int, fields: dict[str, Any]) -> dict[str, Any]:
    fields["timeout"] = fields.pop("timeout_ms") / 1000
    return fields


def test_a_newer_version_upgrades_what_an_older_one_wrote() -> None:
    old, Job = _versioned(1)
    new, JobV2 = _versioned(2, upgrade_job)
    got = new.decode(old.encode([Job("x", 1500)]))
    assert got == [JobV2("x", 1.5)]
    with pytest.raises(DecodeError, match="version 2; this node knows up to version 1"):
        old.decode(new.encode(JobV2("y", 2.0)))


def test_upgrade_problems_are_decode_errors() -> None:
    old, Job = _versioned(1)
    wire = old.encode(Job("x", 1500))
    no_upgrade, _ = _versioned(2)
    with pytest.raises(DecodeError, match="cannot build JobV2 from version 1 fields"):
        no_upgrade.decode(wire)
    failing, _ = _versioned(2, lambda v, f: f["missing"])
    with pytest.raises(DecodeError, match="upgrading 'test::Job' from version 1 failed"):
        failing.decode(wire)
    not_dict, _ = _versioned(2, lambda v, f: [1])  # type: ignore[arg-type,return-value]
    with pytest.raises(DecodeError, match="returned list"):
        not_dict.decode(wire)


def test_record_fields_the_class_rejects(codec: Codec, records: dict[str, type]) -> None:
    head = struct.pack(">I", 1) + b"test::Point"
    ext = b"\xc7" + bytes([len(head)]) + b"\x06" + head
    for fields in ({"x": 1}, {"x": 1, "y": 2, "z": 3}, {1: 1, "y": 2}):
        with pytest.raises(DecodeError, match="cannot build Point"):
            codec.decode(b"\x92" + ext + msgpack.packb(fields))
    for bad in (b"\x91" + ext, b"\x93" + ext + b"\x80\x80", b"\x92" + ext + b"\x90"):
        with pytest.raises(DecodeError, match="is not"):
            codec.decode(bad)


def test_a_record_arriving_for_a_bytes_deserializer(codec: Codec, registry: MessageRegistry) -> None:
    other = MessageRegistry()

    @serializable("example::PingMsg", registry=other)
    @dataclass
    class NotPing:
        n: int

    with pytest.raises(DecodeError, match="registered here with a bytes deserializer"):
        codec.decode(Codec(other).encode(NotPing(1)))


# -- the envelope ---------------------------------------------------------------------


def test_envelope_round_trip_and_errors(registry: MessageRegistry) -> None:
    env = SerializableEnvelope("example::PingMsg", b"\x00" * 20)
    assert env.to_bytes() == b"\x10example::PingMsg" + b"\x00" * 20
    assert SerializableEnvelope.from_bytes(env.to_bytes()) == env
    assert env.unwrap(registry) == PingMsg(0, Pid(0, 0, 0))
    for bad in (b"", b"\x00", b"\x05abc", b"\x02\xff\xfe"):
        with pytest.raises(DecodeError):
            SerializableEnvelope.from_bytes(bad)
    with pytest.raises(DecodeError, match="max_bytes"):
        SerializableEnvelope.from_bytes(env.to_bytes(), max_bytes=10)
    with pytest.raises(UnknownMessageType):
        SerializableEnvelope("test::Nobody", b"").unwrap(registry)
    with pytest.raises(DecodeError, match="PingMsg takes 20 bytes"):  # the deserializer's own DecodeError
        SerializableEnvelope("example::PingMsg", b"short").unwrap(registry)
    with pytest.raises(TypeError):
        SerializableEnvelope("x::y", "str")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SerializableEnvelope("x::" + "y" * 300, b"")


def test_a_deserializer_error_is_a_decode_error(codec: Codec) -> None:
    payload = b"\x10example::PingMsg" + b"\x00" * 3
    wire = msgpack.packb(msgpack.ExtType(4, payload))
    with pytest.raises(DecodeError, match="PingMsg takes 20 bytes"):
        codec.decode(wire)
    codec.registry.register("test::Crashes", lambda data: 1 / 0, replace=True)
    crash = msgpack.packb(msgpack.ExtType(4, b"\x0dtest::Crashes"))
    with pytest.raises(DecodeError, match="rejected its payload") as info:
        codec.decode(crash)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


# -- malformed input and limits -------------------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        b"\xc7\x00\x03",  # a tuple marker alone
        b"\x92\x01\xc7\x00\x03",  # not at the head
        b"\x81\xa1k\xc7\x00\x03",  # as a map value
        b"\x81\xc7\x00\x03\x01",  # as a map key
        b"\xd4\x03\x00",  # a tuple marker with a payload
        b"\xd4\x07\x00",  # unknown ext code
        b"\xd4\xfe\x00",  # a negative ext code
        b"\xd4\x01\x00",  # a Pid of 1 byte
        b"\xc7\x00\x05",  # an empty big int
        b"\xc7\x00\x04",  # a message with no type id
        b"\xc7\x03\x04\x05ab",  # a message whose type id is truncated
        b"\xc7\x03\x04\x02\xff\xfe",  # a type id that is not UTF-8
        b"\xd6\x06\x00\x00\x00\x01",  # a record head without a type id
        b"\xd6\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # a bad timestamp
        b"\x81\x91\x01\x02",  # a list as a map key
        b"\xa2\xff\xfe",  # a str that is not UTF-8
        b"\xc1",  # never used
        b"\xdd\xff\xff\xff\xff",  # an array claiming 4 billion items
        b"\xdb\xff\xff\xff\xff",  # a str claiming 4 GiB
    ],
)
def test_malformed_input_is_a_decode_error(codec: Codec, wire: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.decode(wire)


def test_an_unknown_type_is_unknown_message_type(codec: Codec) -> None:
    with pytest.raises(UnknownMessageType) as info:
        codec.decode(msgpack.packb([1, msgpack.ExtType(4, b"\x0atest::Nope")]))
    assert info.value.type_id == "test::Nope"
    head = struct.pack(">I", 1) + b"test::Nope"
    with pytest.raises(UnknownMessageType):
        codec.decode(b"\x92" + msgpack.packb(msgpack.ExtType(6, head)) + b"\x80")


def nested(depth: int, opener: bytes = b"\x91", leaf: bytes = b"\xc0") -> bytes:
    return opener * depth + leaf


def test_depth_limit_is_exact() -> None:
    codec = Codec(MessageRegistry(), limits=Limits(max_depth=10))
    assert codec.decode(nested(10)) is not None
    with pytest.raises(DecodeError, match="max_depth=10"):
        codec.decode(nested(11))
    with pytest.raises(DecodeError, match="max_depth=10"):
        codec.decode(nested(11, b"\x81\xc0"))  # maps nest through their values
    deep_tuple: Any = 1
    for _ in range(11):
        deep_tuple = (deep_tuple,)
    with pytest.raises(DecodeError, match="max_depth"):
        codec.decode(codec.encode(deep_tuple))
    wide = [[i] for i in range(1000)]  # many bytes that open arrays, little depth: walked, accepted
    assert codec.decode(codec.encode(wide)) == wide


def test_depth_walk_reads_every_header_width() -> None:
    codec = Codec(MessageRegistry(), limits=Limits(max_depth=3, max_container_len=1 << 17))
    big = [
        b"x" * 70_000,
        "y" * 70_000,
        "z" * 300,
        b"w" * 300,
        2**70,
        2**200,
        1.5,
        -(2**40),
        255,
        65535,
        2**32,
        [0] * 20,
        list(range(70_000)),
        {i: i for i in range(20)},
        dict.fromkeys(range(70_000)),
        Pid(1, 2, 3),
        datetime.datetime(2300, 1, 1, tzinfo=datetime.timezone.utc),
    ]
    wire = codec.encode([big])  # depth 3, with many array/map opener bytes in its payloads
    assert codec.decode(wire) == [big]
    with pytest.raises(DecodeError, match="max_depth=3"):
        codec.decode(codec.encode([[big]]))


def test_header_walks_stop_where_the_bytes_go_wrong() -> None:
    """The depth walk and ``ExtWalk`` share one header walk: neither reads
    past the top-level object, a length past the end or the unused byte 0xC1,
    and a count cut short still opens a level."""
    assert not _walk(nested(3, leaf=b"\xc1" + b"\x91" * 5), 3)
    assert _walk(nested(4, leaf=b"\xc1"), 3)
    assert _walk(nested(3, leaf=b"\xdc\x00"), 3) and _walk(nested(3, leaf=b"\xdc"), 3)
    assert not _walk(b"\x91\xdb\xff\xff\xff\xff" + b"\x91" * 10, 1)  # a str of 4 GiB: past the end
    assert not _walk(b"\xc0" + nested(10), 1)  # trailing bytes
    pid = b"\xd8\x01" + b"\x91" * 16  # a fixext 16 of opener bytes is one scalar
    assert not _walk(b"\x91" + pid, 1) and _walk(b"\x91" + pid, 0)
    assert ext_depths(b"\x93\xd5\x04ab\x91\xc7\x01\x04z\xc1\xd5\x04ab", 4) == [1, 2]
    assert ext_depths(b"\x91\xc8\x00", 4) == ext_depths(b"\x91\xd5", 4) == []
    assert ext_depths(b"\xd5\x04ab\x91\xd5\x04ab", 4) == [0]
    walk = ExtWalk(b"\x92\xc1\xd5\x04ab", 4)
    assert walk.depth_of(0, 100) is None and walk.headers == 2
    assert walk.depth_of(0, 100) is None and walk.headers == 2  # does not go on past 0xC1


@pytest.mark.parametrize("depth", [129, 1025, 100_000])
def test_hostile_nesting_is_a_decode_error_not_a_crash(codec: Codec, depth: int) -> None:
    for opener in (b"\x91", b"\x81\xc0", b"\x92\xc7\x00\x03", b"\xdc\x00\x01"):
        with pytest.raises(DecodeError):
            codec.decode(nested(depth, opener))
    unbounded = Codec(MessageRegistry(), limits=Limits(max_depth=10**6))  # msgpack's own stack limit still holds
    with pytest.raises(DecodeError):
        unbounded.decode(nested(100_000))


def _map32(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"\xdf" + struct.pack(">I", len(pairs)) + b"".join(k + v for k, v in pairs)


@pytest.mark.timeout(20)
def test_keys_with_colliding_hashes_are_refused_not_hashed_quadratically(codec: Codec) -> None:
    # i * (2**61 - 1) all hash alike: building a dict of 50k of them would take minutes
    m = (1 << 61) - 1
    keys = [codec.encode(i * m) for i in range(1, 50_001)]
    with pytest.raises(DecodeError, match="share hashes"):
        codec.decode(_map32([(k, b"\x00") for k in keys]))
    with pytest.raises(DecodeError, match="share hashes"):  # one key, many times
        codec.decode(_map32([(b"\x01", b"\x00")] * 1000))
    few = _map32([(k, b"\x00") for k in keys[:60]])  # a few collisions are fine
    assert len(codec.decode(few)) == 60


def test_big_maps_with_composite_keys_round_trip(codec: Codec) -> None:
    grid = {(i, j): [i * j] for i in range(40) for j in range(40)}
    mixed = {**grid, **{str(i): i for i in range(100)}, Pid(1, 2, 3): None, 2**70: "big"}
    assert roundtrip(codec, mixed) == mixed
    assert roundtrip(codec, {"m": dict.fromkeys(range(16))}) == {"m": dict.fromkeys(range(16))}


def test_size_limits() -> None:
    lim = Limits(max_bytes=100, max_container_len=3, max_str_len=4, max_bin_len=5)
    small = Codec(MessageRegistry(), limits=lim)
    big = Codec(MessageRegistry())
    assert small.decode(big.encode([1, 2, 3])) == [1, 2, 3]
    cases = {
        "max_bytes": b"\xc4\x64" + b"\x00" * 100,
        "array": big.encode([0] * 4),
        "map": big.encode({i: 0 for i in range(4)}),
        "str": big.encode("abcde"),
        "bin": big.encode(b"abcdef"),
        "tuple": big.encode((1, 2, 3)),  # 3 items and its marker: 4 array slots
    }
    for name, wire in cases.items():
        assert len(wire) <= 102, name
        with pytest.raises(DecodeError):
            small.decode(wire)
    roomy = Codec(MessageRegistry(), limits=Limits(max_container_len=3, max_str_len=4))
    with pytest.raises(DecodeError):  # above the small-message fast path: explicit limits
        roomy.decode(big.encode(["abcde"] + [b"x" * 10]))


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        Limits(max_depth=0)
    with pytest.raises(ValueError, match="max_bytes"):
        Limits(max_bytes=1.5)  # type: ignore[arg-type]


def test_module_helpers_outside_a_codec() -> None:
    assert active_codec() is None
    assert decode(encode((1, [Pid(0, 1, 0)]))) == (1, [Pid(0, 1, 0)])


@pytest.fixture(autouse=True)
def _no_leftover_active_codec() -> Iterator[None]:
    yield
    assert active_codec() is None
