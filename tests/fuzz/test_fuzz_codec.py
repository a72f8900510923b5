"""Fuzzing the message codec: random bytes, mutated encodings of rich messages
(records, registered types, pids, refs, tuples, big ints, datetimes) and
crafted ext types into ``Codec.decode``. Only ``SerializationError``
subclasses come out; whatever decodes re-encodes to a fixed point; and with
tight ``Limits`` nothing that decodes exceeds them.
"""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from zope.interface import implementer

from joerl.errors import DecodeError, SerializationError
from joerl.pid import Pid, Ref
from joerl.serialization import Codec, ISerializableMessage, Limits, MessageRegistry, serializable

from _fuzzkit import fuzz_settings, msgpack_values, mutated, nested, packb

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
    st.tuples(st.sampled_from([b"fuzz::Point", b"fuzz::Envelope", b"fuzz::Blob", b"no::Such", b"\xff::x"]),
              st.binary(max_size=20)).map(lambda t: ext(4, bytes([len(t[0])]) + t[0] + t[1])),  # fmt: skip
    st.tuples(st.integers(0, 5), st.sampled_from([b"fuzz::Point", b"fuzz::Envelope", b"no::Such"]),
              st.dictionaries(st.sampled_from(["x", "y", "to", "body", "tags", "zz"]) | st.integers(0, 2),
                              msgpack_values, max_size=4)).map(  # fmt: skip
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
@given(inputs | mutated(messages.map(TIGHT_CODEC.encode).filter(lambda b: len(b) <= 512)))
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


@pytest.mark.xfail(
    strict=True,
    reason="bug: Limits.max_depth does not count nesting through registered-message payloads: an ext 4 "
    "of a @serializable type is decoded by RecordSpec.from_bytes with a fresh depth budget, so records "
    "wrapped in ext 4 nest until Python's recursion limit. A 7 MiB message so nested ~150 times (under "
    "max_bytes) took 4 s and 2.1 GB of memory to decode, against 7 ms flat",
)
def test_max_depth_bounds_nesting_through_registered_messages() -> None:
    codec = Codec(REGISTRY, limits=Limits(max_depth=8))
    data = _wrapped(codec.encode(Point(1, 2)), b"fuzz::Point", 20)
    assert isinstance(decode_or_error(codec, data), DecodeError)
