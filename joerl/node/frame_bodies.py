"""The fields of the control messages a :class:`~joerl.node.frames.FrameEncoder` packs (sans-IO).

``BODY`` maps each message class but SEND, SEND_TERMS and CALL (which
``frames.py`` builds by hand) to a function giving the msgpack array of its
frame body, each field checked (``Bad`` names the one that is wrong);
``BYTES_AT`` says which field of those may be big bytes (a payload, a reason,
spawn arguments), which ``FrameEncoder`` does not copy into its Packer. The
decoding twin is ``frame_fields.py``. Opens no socket, imports no gevent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._describe import describe as _describe
from ..pid import Pid, Ref
from .messages import (
    OP_ACK,
    OP_ALIVE_REPLY,
    OP_ALIVE_REQUEST,
    OP_CALL_REPLY,
    OP_DEMONITOR,
    OP_DOWN,
    OP_EXIT,
    OP_EXIT2,
    OP_FLOW,
    OP_LINK,
    OP_MONITOR,
    OP_REG_SEND,
    OP_SPAWN_REPLY,
    OP_SPAWN_REQUEST,
    OP_UNLINK,
    OP_UNLINK_ACK,
    U32,
    U64,
    Ack,
    AliveReply,
    AliveRequest,
    CallReply,
    Demonitor,
    Down,
    Exit,
    Exit2,
    Flow,
    Link,
    Monitor,
    RegSend,
    SpawnReply,
    SpawnRequest,
    Unlink,
    UnlinkAck,
    is_uint,
    plain_terms,
)

__all__ = ["BODY", "BYTES_AT", "Bad", "ebytes", "epid", "eref", "term1"]


class Bad(Exception):
    """Internal: a field could not be encoded or decoded."""


def epid(p: Any, what: str = "pid") -> tuple[int, int, int]:
    if p.__class__ is not Pid:
        raise Bad(f"{what} must be a Pid, not {type(p).__name__}")
    if p.node == 0:
        raise Bad(f"{what} {p} has node 0 ('this node'): give it the local node id before it leaves")
    return (p.node, p.id, p.creation)


def eopt_pid(p: Any, what: str) -> tuple[int, int, int] | None:
    return None if p is None else epid(p, what)


def eref(r: Any) -> tuple[int, int, int]:
    if r.__class__ is not Ref:
        raise Bad(f"ref must be a Ref, not {type(r).__name__}")
    if r.node == 0:
        raise Bad(f"ref {r} has node 0 ('this node'): give it the local node id before it leaves")
    return (r.node, r.id, r.creation)


def ebytes(b: Any, what: str) -> bytes:
    if b.__class__ is not bytes:
        raise Bad(f"{what} must be bytes (encoded by the serialization codec), not {type(b).__name__}")
    return b


def ename(n: Any, what: str) -> str:
    if n.__class__ is not str or not n:
        raise Bad(f"{what} must be a non-empty str, got {_describe(n)}")
    return n


def etarget(t: Any, what: str) -> Any:
    return t if t.__class__ is str and t else epid(t, what)


def ebool(b: Any, what: str) -> bool:
    if b.__class__ is not bool:
        raise Bad(f"{what} must be a bool, got {_describe(b)}")
    return b


def euint(i: Any, top: int, what: str) -> int:
    if not is_uint(i, top):
        raise Bad(f"{what} must be an int in 0..{top}, got {_describe(i)}")
    return i


def monitor_body(op: int) -> Callable[[Any], tuple[Any, ...]]:
    """MONITOR's or DEMONITOR's fields: the usual checked inline, the rest by the checks that name it."""

    def body(m: Any) -> tuple[Any, ...]:
        s, t, r = m
        if s.__class__ is Pid and s.node and r.__class__ is Ref and r.node:
            if t.__class__ is Pid and t.node:
                return (op, (s.node, s.id, s.creation), (t.node, t.id, t.creation), (r.node, r.id, r.creation))
            if t.__class__ is str and t:
                return (op, (s.node, s.id, s.creation), t, (r.node, r.id, r.creation))
        return (op, epid(s, "sender"), etarget(t, "to"), eref(r))

    return body


def term1(x: Any) -> bool:
    return x.__class__ is tuple and len(x) == 1 and plain_terms(x)


def call_reply_body(m: Any) -> tuple[Any, ...]:
    r, payload, released = m  # (payload: the codec's bytes, or (term,): a plain term as itself)
    if r.__class__ is Ref and r.node and (payload.__class__ is bytes or term1(payload)) and released.__class__ is bool:
        fields = (OP_CALL_REPLY, (r.node, r.id, r.creation), payload)
        return fields + (True,) if released else fields
    fields = (OP_CALL_REPLY, eref(r), ebytes(payload, "payload"))
    return fields + (True,) if ebool(released, "released") else fields


BODY: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    RegSend: lambda m: (
        OP_REG_SEND, eopt_pid(m.sender, "sender"), ename(m.to_name, "to_name"), ebytes(m.payload, "payload")
    ),
    Link: lambda m: (OP_LINK, epid(m.sender, "sender"), epid(m.to, "to")),
    Unlink: lambda m: (OP_UNLINK, epid(m.sender, "sender"), epid(m.to, "to"), euint(m.id, U64, "unlink id")),
    UnlinkAck: lambda m: (OP_UNLINK_ACK, epid(m.sender, "sender"), epid(m.to, "to"), euint(m.id, U64, "unlink id")),
    Exit: lambda m: (OP_EXIT, epid(m.sender, "sender"), epid(m.to, "to"), ebytes(m.reason, "reason")),
    Exit2: lambda m: (OP_EXIT2, eopt_pid(m.sender, "sender"), epid(m.to, "to"), ebytes(m.reason, "reason")),
    Monitor: monitor_body(OP_MONITOR),
    Demonitor: monitor_body(OP_DEMONITOR),
    Down: lambda m: (
        OP_DOWN, etarget(m.sender, "sender"), epid(m.to, "to"), eref(m.ref), ebytes(m.reason, "reason")
    ),
    SpawnRequest: lambda m: (
        OP_SPAWN_REQUEST, eref(m.ref), epid(m.sender, "sender"), ename(m.factory, "factory"),
        ebytes(m.args, "args"), ebool(m.link, "link"), ebool(m.monitor, "monitor"),
    ),
    SpawnReply: lambda m: (
        OP_SPAWN_REPLY, eref(m.ref), epid(m.to, "to"),
        ename(m.result, "result") if m.result.__class__ is str else epid(m.result, "result"),
    ),
    AliveRequest: lambda m: (OP_ALIVE_REQUEST, eref(m.ref), epid(m.pid, "pid")),
    AliveReply: lambda m: (OP_ALIVE_REPLY, eref(m.ref), ebool(m.alive, "alive")),
    CallReply: call_reply_body,
    Flow: lambda m: (OP_FLOW, epid(m.dest, "dest"), euint(m.kind, 2, "FLOW kind"), euint(m.n, U32, "FLOW n")),
    Ack: lambda m: (OP_ACK, euint(m.taken, U64, "ACK taken")),
}  # fmt: skip

#: The index in ``BODY``'s fields of a bytes field that may be big (a payload, a reason, args).
BYTES_AT = {RegSend: 3, CallReply: 2, Exit: 3, Exit2: 3, Down: 4, SpawnRequest: 4}
