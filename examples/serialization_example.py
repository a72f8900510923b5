"""Messages that cross nodes: the hand-written PingMsg of the
Rust joerl (https://crates.io/crates/joerl, "the seed"), a versioned
``@serializable`` dataclass, plain data, and two codecs standing in for two
nodes that map pids at the boundary.

Run: ``python examples/serialization_example.py`` (no network, no EPMD).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from zope.interface import implementer

from joerl.pid import Pid, Ref
from joerl.serialization import (
    Codec,
    DecodeError,
    ISerializableMessage,
    MessageRegistry,
    NotSerializable,
    SerializableEnvelope,
    pid_from_bytes,
    pid_to_bytes,
    register_message_type,
    serializable,
)

# -- 1. the seed's PingMsg, hand-written serializer and all ---------------------------

_PING = struct.Struct(">BI")  # format version, count; then the 16-byte reply_to


@implementer(ISerializableMessage)
class PingMsg:
    """A ping carrying the pid to answer."""

    message_type_id = "example::PingMsg"

    def __init__(self, count: int, reply_to: Pid) -> None:
        self.count = count
        self.reply_to = reply_to

    def serialize(self) -> bytes:
        # pid_to_bytes applies the sending node's pid mapping (node 0 -> its id)
        return _PING.pack(1, self.count) + pid_to_bytes(self.reply_to)

    def __repr__(self) -> str:
        return f"PingMsg(count={self.count}, reply_to={self.reply_to})"


def deserialize_ping(data: bytes) -> PingMsg:
    """The registered deserializer: bytes -> PingMsg."""
    if len(data) != _PING.size + 16 or data[0] != 1:
        raise DecodeError(f"PingMsg v1 takes {_PING.size + 16} bytes")
    _, count = _PING.unpack_from(data)
    return PingMsg(count, pid_from_bytes(data[_PING.size :]))


register_message_type(PingMsg.message_type_id, deserialize_ping)
register_message_type(PingMsg.message_type_id, deserialize_ping)  # again: harmless


# -- 2. a @serializable dataclass in its second version -------------------------------


def job_v1_to_v2(version: int, fields: dict[str, Any]) -> dict[str, Any]:
    """Version 1 sent ``timeout_ms``; version 2 has ``timeout`` in seconds."""
    fields["timeout"] = fields.pop("timeout_ms") / 1000
    return fields


@serializable("example::Job", version=2, upgrade=job_v1_to_v2)
@dataclass(frozen=True)
class Job:
    name: str
    owner: Pid
    timeout: float = 5.0
    tags: tuple[str, ...] = field(default=())


# -- 3. two nodes in one process ------------------------------------------------------

NODE_A, NODE_B, CREATION = 7, 9, 1


def node_codec(me: int) -> Codec:
    """The codec a node would build: local pids (node 0) leave as ``me``, and
    come back as node 0."""

    def out(pid: Pid) -> Pid:
        return Pid(me, pid.id, CREATION) if pid.node == 0 else pid

    def back(pid: Pid) -> Pid:
        return Pid(0, pid.id, 0) if pid.node == me and pid.creation == CREATION else pid

    return Codec(encode_pid=out, decode_pid=back)


def main() -> None:
    a, b = node_codec(NODE_A), node_codec(NODE_B)
    me = Pid(0, 42, 0)  # a local pid on node A

    ping = PingMsg(1, me)
    wire = a.encode(ping)
    got = b.decode(wire)
    print(f"PingMsg on the wire: {len(wire)} bytes; node B sees reply_to={got.reply_to}")
    back = a.decode(b.encode(got))
    print(f"sent back to node A: reply_to={back.reply_to} (local again: {back.reply_to == me})")

    job = Job("backup", me, 2.5, ("nightly",))
    print(f"Job via node B: {b.decode(a.encode(job))}")

    plain = {"op": "sum", "args": (1, 2, 2**70), "from": me, "ref": Ref(0, 5, 0), None: [b"raw", 1.5]}
    print(f"plain data round trip: {a.decode(a.encode(plain)) == plain}")

    # an old node still sends Job version 1 (timeout in milliseconds)
    old_registry = MessageRegistry()

    @serializable("example::Job", version=1, registry=old_registry)
    @dataclass(frozen=True)
    class JobV1:
        name: str
        owner: Pid
        timeout_ms: int = 5000

    old = Codec(old_registry).encode(JobV1("report", me, 1500))
    print(f"Job v1 upgraded: {a.decode(old)}")

    envelope = SerializableEnvelope.wrap(ping)
    raw = envelope.to_bytes()
    print(f"envelope: {envelope} -> {len(raw)} bytes -> {SerializableEnvelope.from_bytes(raw).unwrap()}")

    try:
        a.encode({"items": [1, 2, 3, Job("x", me, 1.0, (lambda: None,))]})  # type: ignore[arg-type]
    except NotSerializable as exc:
        print(f"refused at send time: {exc.path}")

    try:
        b.decode(b"\x91" * 10_000 + b"\xc0")
    except DecodeError as exc:
        print(f"hostile input refused: {exc}")


if __name__ == "__main__":
    main()
