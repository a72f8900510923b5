"""Fuzzing the message codec: random bytes, mutated encodings of rich messages
(records, registered types, pids, refs, tuples, big ints, datetimes) and
crafted ext types into ``Codec.decode``. Only ``SerializationError``
subclasses come out; whatever decodes re-encodes to a fixed point; and with
tight ``Limits`` nothing that decodes exceeds them.
"""

from __future__ import annotations

import datetime
import struct
import time
from dataclasses import dataclass
from typing import Any

import gevent
import msgpack
import pytest
from _fuzzkit import fuzz_settings, msgpack_values, mutated, nested, packb
from hypothesis import event, given
from hypothesis import strategies as st
from zope.interface import implementer

from joerl.errors import DecodeError, NotSerializable, SerializationError
from joerl.pid import Pid, Ref
from joerl.serialization import Codec, ISerializableMessage, Limits, MessageRegistry, serializable
from joerl.serialization._limits import ExtWalk, ext_depths

REGISTRY = MessageRegistry()


@serializable("fuzz::Point", version=2, upgrade=lambda v, f: {"x": f.get("x", 0), "y": f.get("y", 0)},
              registry=REGISTRY)  # fmt: skip
@dataclass(frozen=True)
class Point:
    x: Any
    y: Any = 0


@serializable("fuzz::Envelope", registry=REGISTRY)
@dataclass(frozen=True)
class Envelope:
    to: Any
    body: Any
    tags: tuple = ()


@implementer(ISerializableMessage)
class Blob:
    """A registered type with a hand-written byte form: u16 length, then bytes."""

    message_type_id = "fuzz::Blob"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return struct.pack(">H", len(self.data)) + self.data

    @staticmethod
    def deserialize(raw: bytes) -> Blob:
        (n,) = struct.unpack_from(">H", raw)  # struct.error on short input: the codec must wrap it
        if len(raw) != n + 2:
            raise ValueError("length mismatch")
        return Blob(raw[2:])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Blob) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)


REGISTRY.register("fuzz::Blob", Blob.deserialize)

CODEC = Codec(REGISTRY)
TIGHT = Limits(max_bytes=512, max_depth=6, max_container_len=8, max_str_len=16, max_bin_len=16, max_int_bytes=12)
TIGHT_CODEC = Codec(REGISTRY, limits=TIGHT)
OUR_ERRORS = (SerializationError,)

pids = st.builds(Pid, st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))
refs = st.builds(Ref, st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))
_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**200), 2**200), st.floats(), st.text(max_size=10),
    st.binary(max_size=12), pids, refs,
    st.datetimes(timezones=st.just(datetime.timezone.utc)),
)  # fmt: skip
messages = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=5) | st.integers(-3, 3) | pids, inner, max_size=4),
        st.builds(Point, inner, inner),
        st.builds(Envelope, pids, inner, st.lists(inner, max_size=2).map(tuple)),
        st.builds(Blob, st.binary(max_size=10)),
    ),
    max_leaves=12,
)


def ext(code: int, data: bytes) -> bytes:
    return packb(msgpack.ExtType(code, data))


#: Crafted ext values: joerl's codes with random payloads, inside arrays at the
#: head or elsewhere (a tuple/record marker out of place is malformed).
crafted = st.one_of(
    st.tuples(st.integers(1, 7), st.binary(max_size=24)).map(lambda t: ext(*t)),
    st.tuples(st.integers(1, 7), st.binary(max_size=24), st.lists(msgpack_values, max_size=3)).map(
        lambda t: bytes([0x90 | (len(t[2]) + 1)]) + ext(t[0], t[1]) + b"".join(packb(v) for v in t[2])
    ),
    st.tuples(
        st.sampled_from([b"fuzz::Point", b"fuzz::Envelope", b"fuzz::Blob", b"no::Such", b"\xff::x"]),
        st.binary(max_size=20),
    ).map(lambda t: ext(4, bytes([len(t[0])]) + t[0] + t[1])),  # fmt: skip
    st.tuples(
        st.integers(0, 5),
        st.sampled_from([b"fuzz::Point", b"fuzz::Envelope", b"no::Such"]),
        st.dictionaries(
            st.sampled_from(["x", "y", "to", "body", "tags", "zz"]) | st.integers(0, 2), msgpack_values, max_size=4
        ),
    ).map(  # fmt: skip
        lambda t: b"\x92" + ext(6, struct.pack(">I", t[0]) + t[1]) + packb(t[2])
    ),
)

inputs = st.one_of(
    st.binary(max_size=200),
    mutated(messages.map(CODEC.encode)),
    crafted,
    mutated(crafted, max_mutations=2),
    msgpack_values.map(packb),
)


def decode_or_error(codec: Codec, data: bytes) -> Any:
    """Decode; only our errors may come out (returned, not raised)."""
    try:
        return codec.decode(data)
    except OUR_ERRORS as exc:
        return exc


def _depth(value: Any) -> int:
    """Nesting as Limits counts it: a list, tuple or dict is one level, a record two."""
    if isinstance(value, (list, tuple)):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max((max(_depth(k), _depth(v)) for k, v in value.items()), default=0)
    if isinstance(value, (Point, Envelope)):
        return 2 + max(_depth(v) for v in vars(value).values())
    return 0


def _within(value: Any, lim: Limits) -> bool:
    """No container, str, bin or int in ``value`` exceeds ``lim``."""
    if isinstance(value, (list, tuple, dict)):
        if len(value) > lim.max_container_len:
            return False
        items = [x for kv in value.items() for x in kv] if isinstance(value, dict) else list(value)
        return all(_within(x, lim) for x in items)
    if isinstance(value, (Point, Envelope)):
        return all(_within(v, lim) for v in vars(value).values())
    if isinstance(value, str):
        return len(value.encode("utf-8")) <= lim.max_str_len
    if isinstance(value, bytes):
        return len(value) <= lim.max_bin_len
    if isinstance(value, int) and not isinstance(value, bool):  # beyond 64 bits: ext 5, bounded
        return -(2**63) <= value < 2**64 or (value.bit_length() + 8) // 8 <= lim.max_int_bytes
    return True


@fuzz_settings(1000)
@given(inputs)
def test_decode_gives_only_serialization_errors(data: bytes) -> None:
    value = decode_or_error(CODEC, data)
    event(f"outcome: {type(value).__name__ if isinstance(value, BaseException) else 'decoded'}")
    if isinstance(value, BaseException):
        return
    # Whatever decodes can be sent on, and one round trip reaches a fixed point.
    wire = CODEC.encode(value)
    again = CODEC.decode(wire)
    assert CODEC.encode(again) == wire


@fuzz_settings(600)
def _tight_encode(msg: Any) -> bytes | None:
    """The tight codec's encoding of ``msg``, or None when it refuses it at send time."""
    try:
        return TIGHT_CODEC.encode(msg)
    except NotSerializable:
        return None


@given(inputs | mutated(messages.map(_tight_encode).filter(lambda b: b is not None and len(b) <= 512)))
def test_tight_limits_hold_for_whatever_decodes(data: bytes) -> None:
    value = decode_or_error(TIGHT_CODEC, data)
    event(f"outcome: {type(value).__name__ if isinstance(value, BaseException) else 'decoded'}")
    if isinstance(value, BaseException):
        return
    assert len(data) <= TIGHT.max_bytes
    assert _depth(value) <= TIGHT.max_depth, value
    assert _within(value, TIGHT), value


@fuzz_settings(300)
@given(messages)
def test_garbage_does_not_poison_the_codec(value: Any) -> None:
    """After any amount of garbage, the same codec still decodes a valid message
    (its pid, ref and record-head caches hold only what was valid)."""
    for junk in (b"\xd8\x01" + b"\x00" * 15, b"\xd8\x02" + b"\xff" * 16, b"\x92\xd4\x06\x00\x81\xa1x\x01", b"\xc1"):
        decode_or_error(CODEC, junk)
    wire = CODEC.encode(value)
    assert CODEC.encode(CODEC.decode(wire)) == wire  # (bytes, not values: NaN never equals itself)


@pytest.mark.parametrize("depth", [127, 128, 129, 1023, 5000])
def test_deep_nesting_is_refused_by_the_limit_not_by_recursion(depth: int) -> None:
    data = nested(depth, leaf=b"\x01")
    value = decode_or_error(CODEC, data)
    if depth <= Limits().max_depth:
        assert _depth(value) == depth
    else:
        assert isinstance(value, DecodeError) and "max_depth" in str(value)


def _wrapped(inner: bytes, type_id: bytes, times: int) -> bytes:
    """``inner`` wrapped ``times`` in ext 4 (a registered message) of ``type_id``."""
    for _ in range(times):
        inner = ext(4, bytes([len(type_id)]) + type_id + inner)
    return inner


def test_max_depth_bounds_nesting_through_registered_messages() -> None:
    codec = Codec(REGISTRY, limits=Limits(max_depth=8))
    data = _wrapped(codec.encode(Point(1, 2)), b"fuzz::Point", 20)
    assert isinstance(decode_or_error(codec, data), DecodeError)


def _point_message(point: Point, codec: Codec = CODEC) -> bytes:
    """``point`` as a peer may send it: a registered message (ext 4) whose
    payload is the record's bytes, decoded again by ``RecordSpec.from_bytes``."""
    return _wrapped(codec.encode(point), b"fuzz::Point", 1)


@pytest.mark.parametrize("times, ok", [(5, True), (6, True), (7, False), (20, False)])
def test_each_registered_message_decoded_again_counts_one_level(times: int, ok: bool) -> None:
    """With max_depth 8 a record (2 levels) fits under 6 registered messages (1 each), not 7."""
    codec = Codec(REGISTRY, limits=Limits(max_depth=8))
    value = decode_or_error(codec, _wrapped(codec.encode(Point(1, 2)), b"fuzz::Point", times))
    if ok:
        assert value == Point(1, 2)
    else:
        assert isinstance(value, DecodeError) and "max_depth=8" in str(value), value


@pytest.mark.parametrize("arrays, ok", [(0, True), (4, True), (5, False)])
def test_a_payload_counts_from_where_its_message_sits(arrays: int, ok: bool) -> None:
    """The payload's levels add to the containers around its message (the map,
    ``arrays``, then 1 for the message and 2 for the record: at most 8), not to
    the deepest part of the enclosing message (8 levels, elsewhere)."""
    codec = Codec(REGISTRY, limits=Limits(max_depth=8))
    data = b"\x82\xa1a" + nested(7, leaf=b"\x01") + b"\xa1b" + nested(arrays, leaf=_point_message(Point(1, 2), codec))
    value = decode_or_error(codec, data)
    if ok:
        assert isinstance(value, dict) and _depth(value["a"]) == 7
        inner = value["b"]
        for _ in range(arrays):
            [inner] = inner
        assert inner == Point(1, 2)
    else:
        assert isinstance(value, DecodeError) and "max_depth=8" in str(value), value


def test_a_hand_written_payload_is_not_counted() -> None:
    """A registered type whose deserializer reads bytes itself nests like a leaf."""
    codec = Codec(REGISTRY, limits=Limits(max_depth=8))
    assert codec.decode(codec.encode(nested_list(8, Blob(b"x")))) == nested_list(8, Blob(b"x"))


def nested_list(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


@pytest.mark.parametrize("times, ok", [(32, True), (33, False), (1000, False)])
def test_registered_messages_nest_at_most_32_deep_whatever_max_depth(times: int, ok: bool) -> None:
    """Far from Python's recursion limit: refused by the limit, in any greenlet."""
    codec = Codec(REGISTRY, limits=Limits(max_depth=10_000))
    data = _wrapped(codec.encode(Point(1, 2)), b"fuzz::Point", times)
    value = gevent.spawn(decode_or_error, codec, data).get(timeout=10)
    if ok:
        assert value == Point(1, 2)
    else:
        assert isinstance(value, DecodeError) and "more than 32 deep" in str(value), value


def test_payloads_decoded_again_share_one_max_bytes() -> None:
    """A message of 7 MiB nested 150 times in registered messages (under
    max_bytes) is refused at the second level: its payloads would add up to
    more than max_bytes. It used to cost seconds and gigabytes."""
    limits = Limits()
    point = CODEC.encode(Point("x" * (7 * 1024 * 1024), 1))
    data = _wrapped(point, b"fuzz::Point", 150)
    assert len(data) <= limits.max_bytes
    start = time.process_time()
    value = decode_or_error(CODEC, data)
    assert isinstance(value, DecodeError) and "add up to more than max_bytes" in str(value), value
    assert time.process_time() - start < 1.0
    assert CODEC.decode(_wrapped(point, b"fuzz::Point", 1)) == Point("x" * (7 * 1024 * 1024), 1)


def test_sibling_payloads_share_the_byte_budget() -> None:
    """Payloads side by side are charged once each: a list of them fits when
    the message does; nested twice, the same bytes count twice."""
    codec = Codec(REGISTRY, limits=Limits(max_bytes=1000))
    one = _point_message(Point("y" * 400), codec)
    assert codec.decode(b"\x92" + one + one) == [Point("y" * 400), Point("y" * 400)]
    twice = _wrapped(codec.encode(Point("y" * 400)), b"fuzz::Point", 2)
    assert codec.decode(twice) == Point("y" * 400)
    thrice = _wrapped(codec.encode(Point("y" * 400)), b"fuzz::Point", 3)
    assert isinstance(decode_or_error(codec, thrice), DecodeError)


def test_a_refused_payload_leaves_the_codec_unbounded() -> None:
    """After a nested decode fails, the next message gets the full limits again."""
    codec = Codec(REGISTRY, limits=Limits(max_depth=8))
    assert isinstance(decode_or_error(codec, _wrapped(codec.encode(Point(1, 2)), b"fuzz::Point", 7)), DecodeError)
    assert codec.decode(nested(8, leaf=b"\x01")) == nested_list(8, 1)
    assert codec.decode(_wrapped(codec.encode(Point(1, 2)), b"fuzz::Point", 6)) == Point(1, 2)


def _ext4_depths(value: Any, depth: int, out: list[int]) -> list[int]:
    """Reference for ``ext_depths``: the depth of each ext 4, in packing order."""
    if isinstance(value, msgpack.ExtType):
        if value.code == 4:
            out.append(depth)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _ext4_depths(item, depth + 1, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            _ext4_depths(k, depth + 1, out)
            _ext4_depths(v, depth + 1, out)
    return out


_ext_data = st.binary(max_size=20) | st.sampled_from([b"", b"x", b"ab", b"abcd", b"a" * 8, b"b" * 16, b"c" * 300])
_exts = st.builds(msgpack.ExtType, st.sampled_from([1, 4, 4, 6, 127]), _ext_data)
_ext_trees = st.recursive(
    msgpack_values | _exts,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=3) | _exts, inner, max_size=4),
    max_leaves=25,
)


@fuzz_settings(300)
@given(_ext_trees)
def test_ext_depths_finds_each_ext_where_msgpack_puts_it(value: Any) -> None:
    data = packb(value)
    assert ext_depths(data, 4) == _ext4_depths(value, 0, [])
    seen: list[int] = []
    msgpack.unpackb(data, ext_hook=lambda code, _: seen.append(code), strict_map_key=False)
    assert len(ext_depths(data, 4)) == seen.count(4)


def test_ext_walk_is_resumable_and_bounded() -> None:
    """``depth_of`` reads at most the headers it is allowed, and goes on from
    there when asked again."""
    data = packb([0] * 1000 + [[msgpack.ExtType(4, b"a")], msgpack.ExtType(4, b"b")])
    walk = ExtWalk(data, 4)
    assert walk.depth_of(0, 500) is None and walk.headers == 500
    assert walk.depth_of(0, 10_000) == 2 and walk.headers == 1003
    assert walk.depth_of(1, 1003) is None  # no header more allowed
    assert walk.depth_of(1, 10_000) == 1 and walk.depth_of(2, 10_000) is None
    assert walk.bound == 2


def test_finding_a_payload_among_millions_of_items_costs_a_bounded_walk() -> None:
    """A registered message decoded again after 4 million scalars (nested 100
    deep): where it sits is bounded by the message's array and map headers
    instead of walking every item in Python (seconds), and it decodes."""
    million = b"\xdd" + struct.pack(">I", 1 << 20) + b"\x00" * (1 << 20)
    point = _point_message(Point(1, 2))
    data = nested(100, leaf=b"\x95" + million * 4 + point)
    start = time.process_time()
    value = CODEC.decode(data)
    assert time.process_time() - start < 0.8
    for _ in range(100):
        [value] = value
    assert value[4] == Point(1, 2)
