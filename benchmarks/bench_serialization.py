"""Serialization benchmarks: joerl's Codec beside raw msgpack, in one run.

Every figure is a round-trip rate (encode, then decode) of one small message,
measured interleaved with its baseline: raw ``msgpack.packb`` + ``unpackb`` of
the same fields, the Pid spelled as a plain ``[node, id, creation]`` list. The
raw side builds no Python object but lists and dicts; ours rebuilds Pids and
message objects, which is where the gap comes from.

* ``dict``: ``{"count": n, "reply_to": pid}`` through ``Codec()``.
* ``dict, hooks``: the same through a codec with node-layer style pid hooks
  (node 0 -> node 7 out, node 7 -> node 0 in), as two nodes would run it.
* ``dict, distinct pids``: a new Pid in every message (the pid caches miss).
* ``PingMsg``: the seed's message: ``@implementer(ISerializableMessage)``,
  hand-written ``serialize()`` (struct + ``pid_to_bytes``), registered
  deserializer.
* ``@serializable``: the same fields as a ``@serializable`` dataclass.

* ``big decode``: decoding a JSON-like nested dict of about 1 MiB (the
  large-message benchmark's document) beside raw ``unpackb`` of the same
  bytes: the depth check and the hooks on a message of many containers.

Targets (issue 17): 0.6x for the message types and the plain dict, 0.5x for
the dict with a new Pid each message; the big decode is reported.

Extras record the reused-``Packer`` raw rate (faster than ``packb``), the
encoded sizes, and for the message types a third figure: raw msgpack plus
building the same objects by hand (``PingMsg(d["count"], Pid(*d["reply_to"]))``),
which is what a hand-rolled msgpack codec returning real messages costs.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
from zope.interface import implementer

from joerl.pid import Pid
from joerl.serialization import (
    Codec,
    DecodeError,
    ISerializableMessage,
    MessageRegistry,
    pid_from_bytes,
    pid_to_bytes,
    serializable,
)

from .harness import Row, interleaved

TARGET = 0.6
TARGETS = {"dict, distinct pids": 0.5}
_COUNT = struct.Struct(">I")


@implementer(ISerializableMessage)
class PingMsg:
    """The seed's PingMsg: a counter and the pid to answer."""

    message_type_id = "bench::PingMsg"
    __slots__ = ("count", "reply_to")

    def __init__(self, count: int, reply_to: Pid) -> None:
        self.count = count
        self.reply_to = reply_to

    def serialize(self) -> bytes:
        return _COUNT.pack(self.count) + pid_to_bytes(self.reply_to)


def deserialize_ping(data: bytes) -> PingMsg:
    if len(data) != 20:
        raise DecodeError(f"PingMsg takes 20 bytes, not {len(data)}")
    return PingMsg(_COUNT.unpack_from(data)[0], pid_from_bytes(data[4:]))


_REGISTRY = MessageRegistry()
_REGISTRY.register(PingMsg.message_type_id, deserialize_ping)


@serializable("bench::PingRecord", registry=_REGISTRY)
@dataclass(frozen=True)
class PingRecord:
    count: int
    reply_to: Pid


def _round_trips(codec: Codec, make: Callable[[int], Any]) -> Callable[[int], None]:
    encode, decode = codec.encode, codec.decode

    def run(n: int) -> None:
        for i in range(n):
            decode(encode(make(i)))

    return run


def _raw_packb(make: Callable[[int], Any]) -> Callable[[int], None]:
    packb, unpackb = msgpack.packb, msgpack.unpackb

    def run(n: int) -> None:
        for i in range(n):
            unpackb(packb(make(i)))

    return run


def _raw_packer(make: Callable[[int], Any]) -> Callable[[int], None]:
    pack, unpackb = msgpack.Packer().pack, msgpack.unpackb

    def run(n: int) -> None:
        for i in range(n):
            unpackb(pack(make(i)))

    return run


def _raw_with_objects(build: Callable[[Any], Any]) -> Callable[[int], None]:
    packb, unpackb = msgpack.packb, msgpack.unpackb
    fields = {"count": 7, "reply_to": [0, 12345, 0]}

    def run(n: int) -> None:
        for _ in range(n):
            build(unpackb(packb(fields)))

    return run


def _ping_from(d: Any) -> PingMsg:
    return PingMsg(d["count"], Pid._unchecked(*d["reply_to"]))


def _record_from(d: Any) -> PingRecord:
    return PingRecord(d["count"], Pid._unchecked(*d["reply_to"]))


def run(quick: bool) -> list[Row]:
    """Measure each message shape beside raw msgpack; see the module docstring."""
    n, repeats = (50_000, 5) if quick else (200_000, 7)
    pid = Pid(0, 12345, 0)
    fields = [0, 12345, 0]
    pids = [Pid(0, 100_000 + i, 0) for i in range(n)]
    plain = Codec(_REGISTRY)
    hooked = Codec(
        _REGISTRY,
        encode_pid=lambda p: Pid(7, p.id, 1) if p.node == 0 else p,
        decode_pid=lambda p: Pid(0, p.id, 0) if p.node == 7 and p.creation == 1 else p,
    )
    builders: dict[str, Callable[[Any], Any]] = {"PingMsg": _ping_from, "@serializable": _record_from}
    shapes: list[tuple[str, Codec, Callable[[int], Any], Callable[[int], Any], str]] = [
        (
            "dict",
            plain,
            lambda i: {"count": 7, "reply_to": pid},
            lambda i: {"count": 7, "reply_to": fields},
            "plain dict with a Pid",
        ),
        (
            "dict, hooks",
            hooked,
            lambda i: {"count": 7, "reply_to": pid},
            lambda i: {"count": 7, "reply_to": fields},
            "plain dict, pid hooks set as a node sets them",
        ),
        (
            "dict, distinct pids",
            plain,
            lambda i: {"count": i, "reply_to": pids[i]},
            lambda i: {"count": i, "reply_to": [0, 100_000 + i, 0]},
            "a new Pid in every message: pid caches miss",
        ),
        (
            "PingMsg",
            plain,
            lambda i: PingMsg(7, pid),
            lambda i: {"count": 7, "reply_to": fields},
            "seed PingMsg: hand-written serialize(), registered deserializer",
        ),
        (
            "@serializable",
            plain,
            lambda i: PingRecord(7, pid),
            lambda i: {"count": 7, "reply_to": fields},
            "the same fields as a @serializable dataclass",
        ),
    ]
    rows = []
    for name, codec, make, make_raw, note in shapes:
        fns = {
            name: _round_trips(codec, make),
            "raw packb+unpackb": _raw_packb(make_raw),
            "raw Packer+unpackb": _raw_packer(make_raw),
        }
        if name in builders:
            fns["raw + objects"] = _raw_with_objects(builders[name])
        figs = interleaved(fns, n, repeats=repeats, unit="round trips/s")
        extra: dict[str, Any] = {
            "n": n,
            "bytes": len(codec.encode(make(0))),
            "raw_bytes": len(msgpack.packb(make_raw(0))),
            "raw_reused_packer": figs["raw Packer+unpackb"].median,
            "vs_reused_packer": figs[name].median / figs["raw Packer+unpackb"].median,
        }
        if "raw + objects" in figs:
            extra["raw_plus_objects"] = figs["raw + objects"].median
            extra["vs_raw_plus_objects"] = figs[name].median / figs["raw + objects"].median
        target = TARGETS.get(name, TARGET)
        rows.append(Row("serialization", figs[name], figs["raw packb+unpackb"], target, note=note, extra=extra))
        print(f"  serialization/{name}: {figs[name].median:,.0f}/s", file=sys.stderr, flush=True)
    rows.append(_big_decode(plain, 3 if quick else 7))
    return rows


def _big_decode(codec: Codec, repeats: int) -> Row:
    from ._large_peer import document

    wire = codec.encode(document(1 << 20))
    decode, unpackb = codec.decode, msgpack.unpackb

    def ours(n: int) -> None:
        for _ in range(n):
            decode(wire)

    def raw(n: int) -> None:
        for _ in range(n):
            unpackb(wire)

    figs = interleaved({"big decode": ours, "raw unpackb": raw}, 5, repeats=repeats, unit="decodes/s")
    mib = len(wire) / (1 << 20)
    extra = {"bytes": len(wire), "s_per_mib": 1 / figs["big decode"].median / mib}
    extra["raw_s_per_mib"] = 1 / figs["raw unpackb"].median / mib
    print(f"  serialization/big decode: {extra['s_per_mib']:.3f} s/MiB", file=sys.stderr, flush=True)
    return Row(
        "serialization", figs["big decode"], figs["raw unpackb"], None, note="a JSON-like ~1 MiB document", extra=extra
    )


if __name__ == "__main__":
    for row in run(quick="--full" not in sys.argv):
        base = row.baseline.median if row.baseline else 0.0
        print(
            f"{row.figure.name:22s} {row.figure.median:>11,.0f}/s (±{row.figure.spread:.0%})  "
            f"raw {base:>11,.0f}/s  ratio {row.ratio:.2f}  target {row.target}  "
            f"{'ok' if row.ok else 'BELOW' if row.ok is False else ''}  bytes {row.extra['bytes']}"
            + (f" (raw {row.extra['raw_bytes']})" if "raw_bytes" in row.extra else "")
            + (f"  vs reused Packer {row.extra['vs_reused_packer']:.2f}" if "vs_reused_packer" in row.extra else "")
            + (f"  vs raw+objects {row.extra['vs_raw_plus_objects']:.2f}" if "vs_raw_plus_objects" in row.extra else "")
        )
