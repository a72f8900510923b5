#!/usr/bin/env python
"""atheris harness: the message codec (joerl/serialization ``Codec.decode``).

Input layout: ``mode:8 | bytes``. The bytes are decoded by a codec whose
registry holds a versioned ``@serializable`` record and a hand-written
``ISerializableMessage``; ``mode`` odd uses tight ``Limits``. Only
``SerializationError`` subclasses may come out; whatever decodes must
re-encode to a fixed point and (tight limits) stay within the limits.

    python fuzz/fuzz_codec.py --selftest
    python fuzz/fuzz_codec.py -max_total_time=600 /tmp/joerl-fuzz/codec
"""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass
from typing import Any

from _harness import instrumented, main

with instrumented():
    from zope.interface import implementer

    from joerl.errors import SerializationError
    from joerl.pid import Pid, Ref
    from joerl.serialization import Codec, ISerializableMessage, Limits, MessageRegistry, serializable

REGISTRY = MessageRegistry()


@serializable("fuzz::Point", version=2, upgrade=lambda v, f: {"x": f.get("x", 0), "y": f.get("y", 0)},
              registry=REGISTRY)  # fmt: skip
@dataclass(frozen=True)
class Point:
    x: Any
    y: Any = 0


@implementer(ISerializableMessage)
class Blob:
    message_type_id = "fuzz::Blob"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return struct.pack(">H", len(self.data)) + self.data


def _blob(raw: bytes) -> Blob:
    (n,) = struct.unpack_from(">H", raw)
    if len(raw) != n + 2:
        raise ValueError("length mismatch")
    return Blob(raw[2:])


REGISTRY.register("fuzz::Blob", _blob)
TIGHT = Limits(max_bytes=512, max_depth=6, max_container_len=8, max_str_len=16, max_bin_len=16, max_int_bytes=12)
CODECS = [Codec(REGISTRY), Codec(REGISTRY, limits=TIGHT)]


def _within(value: Any, lim: Limits, depth: int = 0) -> bool:
    if isinstance(value, (list, tuple, dict)):
        items = [x for kv in value.items() for x in kv] if isinstance(value, dict) else list(value)
        return (
            depth < lim.max_depth
            and len(value) <= lim.max_container_len
            and all(_within(x, lim, depth + 1) for x in items)
        )
    if isinstance(value, Point):
        return depth + 1 < lim.max_depth and all(_within(v, lim, depth + 2) for v in (value.x, value.y))
    if isinstance(value, str):
        return len(value.encode("utf-8")) <= lim.max_str_len
    if isinstance(value, bytes):
        return len(value) <= lim.max_bin_len
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**64 or (value.bit_length() + 8) // 8 <= lim.max_int_bytes
    return True


def test_one_input(data: bytes) -> None:
    if not data:
        return
    codec = CODECS[data[0] & 1]
    try:
        value = codec.decode(data[1:])
    except SerializationError:
        return
    wire = codec.encode(value)
    assert codec.encode(codec.decode(wire)) == wire
    if codec.limits is TIGHT:
        assert _within(value, TIGHT), value


_c = CODECS[0]
SEEDS = [bytes([0]) + _c.encode(v) for v in (
    None, True, -1, 2**70, -(2**100), 1.5, "text", b"bin", [1, [2, [3]]], {"k": {"n": None}, 1: (2, 3)},
    (Pid(1, 2, 3), Ref(4, 5, 6)), datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc),
    Point(1, (2, "x")), [Point(Point(0), Blob(b"abc"))], {Pid(0, 1, 0): [Blob(b"")]},
)] + [bytes([1]) + _c.encode(v) for v in ([1, 2, 3], {"a": "b" * 16}, Point([1], {"x": 2}))]  # fmt: skip

if __name__ == "__main__":
    main(test_one_input, SEEDS)
