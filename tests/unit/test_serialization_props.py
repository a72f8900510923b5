"""Property tests for joerl.serialization (hypothesis): round trips of plain
values, Pids, Refs, nested registered types and versioned upgrades; random and
mutated bytes into every decoder give only our errors.
"""

from __future__ import annotations

import datetime
import math
import re
import struct
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zope.interface import implementer

from joerl.errors import DecodeError, SerializationError
from joerl.pid import Pid, Ref
from joerl.serialization import (
    Codec,
    ISerializableMessage,
    Limits,
    MessageRegistry,
    SerializableEnvelope,
    decode,
    pid_from_bytes,
    pid_to_bytes,
    ref_from_bytes,
    serializable,
)
from joerl.serialization._limits import _walk, exceeds_depth

SETTINGS = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# -- message types ----------------------------------------------------------------------

REGISTRY = MessageRegistry()


@implementer(ISerializableMessage)
class PingMsg:
    """The seed's PingMsg: a counter and the pid to answer, hand-written bytes."""

    message_type_id = "props::PingMsg"

    def __init__(self, count: int, reply_to: Pid) -> None:
        self.count = count
        self.reply_to = reply_to

    def serialize(self) -> bytes:
        return struct.pack(">I", self.count) + pid_to_bytes(self.reply_to)

    def __eq__(self, other: object) -> bool:
        return type(other) is PingMsg and (self.count, self.reply_to) == (other.count, other.reply_to)

    def __hash__(self) -> int:
        return hash((self.count, self.reply_to))

    def __repr__(self) -> str:
        return f"PingMsg({self.count}, {self.reply_to!r})"


def deserialize_ping(data: bytes) -> PingMsg:
    if len(data) != 20:
        raise DecodeError("PingMsg takes 20 bytes")
    return PingMsg(struct.unpack_from(">I", data)[0], pid_from_bytes(data[4:]))


REGISTRY.register(PingMsg.message_type_id, deserialize_ping)


@serializable("props::Box", registry=REGISTRY)
@dataclass(frozen=True)
class Box:
    label: str
    content: Any
    owner: Pid | None = None


@serializable("props::Pair", registry=REGISTRY)
@dataclass
class Pair:
    left: Any
    right: Any


CODEC = Codec(REGISTRY)

# -- strategies -------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
pids = st.builds(Pid, u32, u64, u32)
refs = st.builds(Ref, u32, u64, u32)
ints = st.one_of(st.integers(-(2**63), 2**64 - 1), st.integers(-(2**8000), 2**8000))
floats = st.floats(allow_nan=False)
texts = st.text(st.characters(codec="utf-8"), max_size=20)  # no lone surrogates
offsets = st.timedeltas(min_value=datetime.timedelta(hours=-23), max_value=datetime.timedelta(hours=23))
datetimes = st.datetimes(
    min_value=datetime.datetime(1, 1, 2),
    max_value=datetime.datetime(9999, 12, 30),
    timezones=st.builds(datetime.timezone, offsets),
)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts, st.binary(max_size=20), pids, refs)
hashables = st.recursive(
    scalars, lambda inner: st.tuples(inner, inner) | st.lists(inner, max_size=3).map(tuple), max_leaves=6
)


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(hashables, inner, max_size=4),
    )


plain = st.recursive(scalars, containers, max_leaves=20)


def messages(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        containers(inner),
        st.builds(PingMsg, u32, pids),
        st.builds(Box, texts, inner, st.none() | pids),
        st.builds(Pair, inner, inner),
    )


registered = st.recursive(st.one_of(scalars, datetimes), messages, max_leaves=15)


def same(a: Any, b: Any) -> bool:
    """``a`` (decoded) equals ``b`` (sent), with the same types all the way down
    (1 != 1.0 != True, list != tuple); datetimes arrive in UTC."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=False))
    if type(a) is dict:
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=False)
        )
    if type(a) in (Box, Pair):
        return all(same(getattr(a, f), getattr(b, f)) for f in a.__joerl_record__.fields)
    if type(a) is datetime.datetime:
        return a == b and a.tzinfo is datetime.timezone.utc
    return bool(a == b)


# -- round trips ------------------------------------------------------------------------


@SETTINGS
@given(plain)
def test_plain_values_round_trip(value: Any) -> None:
    assert same(CODEC.decode(CODEC.encode(value)), value)


@SETTINGS
@given(pids, refs)
def test_pids_and_refs_round_trip(pid: Pid, ref: Ref) -> None:
    assert same(CODEC.decode(CODEC.encode([pid, (ref, pid), {pid: ref}])), [pid, (ref, pid), {pid: ref}])
    assert pid_from_bytes(pid_to_bytes(pid)) == pid


@SETTINGS
@given(registered)
def test_nested_registered_types_round_trip(value: Any) -> None:
    assert same(CODEC.decode(CODEC.encode(value)), value)


@SETTINGS
@given(registered)
def test_pid_hooks_apply_at_every_depth(value: Any) -> None:
    """Whatever the nesting, a pid leaving node A as <0.N.0> arrives as <7.N.1>
    and comes back to A as <0.N.0>."""
    a = Codec(
        REGISTRY,
        encode_pid=lambda p: Pid(7, p.id, 1) if p.node == 0 else p,
        decode_pid=lambda p: Pid(0, p.id, 0) if (p.node, p.creation) == (7, 1) else p,
    )
    b = Codec(REGISTRY)
    local = Pid(0, 42, 0)
    msg = [local, value, Box("b", (local,), local), PingMsg(1, local)]
    at_b = b.decode(a.encode(msg))
    assert at_b[0] == at_b[2].owner == at_b[2].content[0] == at_b[3].reply_to == Pid(7, 42, 1)
    assert same(a.decode(b.encode(at_b))[1:], msg[1:]) or _has_node7_pids(value)


def _has_node7_pids(value: Any) -> bool:
    # Random pids on node 0 or 7 are mapped too (node 0 loses its creation on the way).
    return re.search(r"(?<!Ref)<[07]\.", repr(value)) is not None  # a pid prints as <node.id.creation>


# -- versioned upgrades -----------------------------------------------------------------

OLD, NEW = MessageRegistry(), MessageRegistry()


@serializable("props::Measure", version=1, registry=OLD)
@dataclass(frozen=True)
class MeasureV1:
    value_mm: int
    who: Pid


def measure_upgrade(version: int, fields: dict[str, Any]) -> dict[str, Any]:
    if version == 1:
        fields["value_m"] = fields.pop("value_mm") / 1000
        fields["source"] = "v1"
    return fields


@serializable("props::Measure", version=3, upgrade=measure_upgrade, registry=NEW)
@dataclass(frozen=True)
class MeasureV3:
    value_m: float
    who: Pid
    source: str = "v3"


@SETTINGS
@given(st.integers(-(2**40), 2**40), pids)
def test_versioned_upgrades(value_mm: int, who: Pid) -> None:
    got = Codec(NEW).decode(Codec(OLD).encode({"m": MeasureV1(value_mm, who)}))
    assert got == {"m": MeasureV3(value_mm / 1000, who, "v1")}
    current = MeasureV3(value_mm / 1000, who)
    assert Codec(NEW).decode(Codec(NEW).encode(current)) == current


# -- the depth check -------------------------------------------------------------------


def depth(value: Any) -> int:
    """Nesting as Limits.max_depth counts it."""
    if type(value) in (list, tuple):
        return 1 + max((depth(v) for v in value), default=0)
    if type(value) is dict:
        return 1 + max((max(depth(k), depth(v)) for k, v in value.items()), default=0)
    if type(value) in (Box, Pair):
        return 2 + max(depth(getattr(value, f)) for f in value.__joerl_record__.fields)
    return 0  # scalars, Pids, datetimes, hand-written messages (opaque bytes)


@SETTINGS
@given(registered, st.integers(0, 12))
def test_the_depth_walk_measures_exactly(value: Any, limit: int) -> None:
    wire = CODEC.encode(value)
    assert _walk(wire, limit) is (depth(value) > limit)
    assert exceeds_depth(wire, limit) is (depth(value) > limit)


# -- hostile bytes ----------------------------------------------------------------------

SMALL = Codec(REGISTRY, limits=Limits(max_bytes=512, max_depth=8, max_container_len=16, max_str_len=32, max_bin_len=32))


def only_our_errors(fn: Any, data: bytes) -> None:
    try:
        fn(data)
    except SerializationError:
        pass


DECODERS = {
    "codec": CODEC.decode,
    "small codec": SMALL.decode,
    "module decode": decode,
    "envelope": SerializableEnvelope.from_bytes,
    "envelope unwrap": lambda d: SerializableEnvelope.from_bytes(d).unwrap(REGISTRY),
    "pid": pid_from_bytes,
    "ref": ref_from_bytes,
    "record deserializer": lambda d: REGISTRY.deserialize("props::Box", d),
    "hand-written deserializer": lambda d: REGISTRY.deserialize("props::PingMsg", d),
}


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_give_only_our_errors(data: bytes) -> None:
    for fn in DECODERS.values():
        only_our_errors(fn, data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid encoding with a few bytes flipped, cut or inserted."""
    data = bytearray(CODEC.encode(draw(registered)))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


@SETTINGS
@given(mutated())
def test_mutated_encodings_give_only_our_errors(data: bytes) -> None:
    only_our_errors(CODEC.decode, data)
    only_our_errors(SMALL.decode, data)


@SETTINGS
@given(registered)
def test_no_proper_prefix_decodes(value: Any) -> None:
    wire = CODEC.encode(value)
    for end in range(len(wire)):
        try:
            CODEC.decode(wire[:end])
        except DecodeError:
            continue
        raise AssertionError(f"prefix {wire[:end]!r} of {wire!r} decoded")
