"""The fields of a link frame's body, checked: what :class:`~joerl.node.frame_decoder.FrameDecoder` uses (sans-IO).

Each ``d...`` function returns its field as the message holds it or raises
:class:`Bad` naming what is wrong (the decoder turns that into a
:class:`~joerl.errors.FrameError` in the frame's place); :func:`call_msg` is a
remote call's frames (CALL, CALL_REPLY, MONITOR, DEMONITOR) checked in one
call. Split from ``frame_decoder.py``, which keeps the framing and the op table.
"""

from __future__ import annotations

from typing import Any

from .._describe import describe as _describe
from ..pid import Pid, Ref, make_ref
from .messages import (
    MAX_TERM_ITEMS,
    OP_ACK,
    OP_ALIVE_REPLY,
    OP_ALIVE_REQUEST,
    OP_CALL,
    OP_CALL_REPLY,
    OP_DEMONITOR,
    OP_DOWN,
    OP_EXIT,
    OP_EXIT2,
    OP_FLOW,
    OP_LINK,
    OP_MONITOR,
    OP_REG_SEND,
    OP_SEND,
    OP_SEND_TERMS,
    OP_SPAWN_REPLY,
    OP_SPAWN_REQUEST,
    OP_UNLINK,
    OP_UNLINK_ACK,
    TERM_SCALARS,
    U32,
    U64,
    Call,
    CallReply,
    Demonitor,
    Message,
    Monitor,
    is_uint,
    plain_terms,
)

__all__ = [
    "ARITY", "Bad", "bins", "call_msg", "dbool", "dbytes", "dname", "dpayload", "dpayloads", "dref", "dterms",
    "duint", "term1",
]  # fmt: skip

_new_tuple = tuple.__new__


class Bad(Exception):
    """Internal: a field could not be decoded."""


def dref(x: Any) -> Ref:
    if type(x) is tuple and len(x) == 3:
        n, i, c = x
        if is_uint(n, U32) and n and is_uint(i, U64) and is_uint(c, U32):
            ref: Ref = make_ref(n, i, c)
            return ref
    raise Bad(f"expected a ref [node>0, id, creation], got {_describe(x)}")


def dbytes(x: Any, what: str) -> bytes:
    if type(x) is not bytes:
        raise Bad(f"{what} must be bin, got {type(x).__name__}")
    return x


def dpayload(x: Any) -> bytes | tuple[Any]:
    """A CALL's or CALL_REPLY's payload: the codec's bytes, or [term], one plain term as itself."""
    if type(x) is bytes or (type(x) is tuple and len(x) == 1 and plain_terms(x)):
        return x
    raise Bad(f"payload must be bin or [plain term], got {_describe(x)}")


def term1(x: Any) -> bool:
    """Whether ``x`` is [term], one scalar (inline) or other plain term (``plain_terms``)."""
    return x.__class__ is tuple and len(x) == 1 and (x[0].__class__ in TERM_SCALARS or plain_terms(x))


def dname(x: Any, what: str) -> str:
    if type(x) is not str or not x:
        raise Bad(f"{what} must be a non-empty str, got {_describe(x)}")
    return x


def bins(t: tuple[Any, ...]) -> bool:
    """Whether every field of ``t`` after its first two is bytes (SEND's payloads)."""
    for p in t[2:]:
        if p.__class__ is not bytes:
            return False
    return True


def dpayloads(t: tuple[Any, ...]) -> tuple[bytes, ...]:
    payloads = t[2:]  # (at most MAX_MESSAGES_PER_FRAME: the Unpacker's max_array_len)
    for p in payloads:
        dbytes(p, "payload")
    return payloads


def dterms(t: tuple[Any, ...]) -> tuple[Any, ...]:
    msgs = t[2:]  # (at most MAX_MESSAGES_PER_FRAME: the Unpacker's max_array_len)
    if not plain_terms(msgs):
        bad = next(m for m in msgs if not plain_terms((m,)))
        raise Bad(
            f"msg must be a plain term (a scalar, or a flat array of at most {MAX_TERM_ITEMS}), got {_describe(bad)}"
        )
    return msgs


def duint(x: Any, top: int, what: str) -> int:
    if not is_uint(x, top):
        raise Bad(f"{what} must be an int in 0..{top}, got {_describe(x)}")
    return x


def dbool(x: Any, what: str) -> bool:
    if type(x) is not bool:
        raise Bad(f"{what} must be a bool, got {_describe(x)}")
    return x


#: Each op's fields, the op counted: fewer is a bad frame.
ARITY = {
    OP_SEND: 3, OP_REG_SEND: 4, OP_LINK: 3, OP_UNLINK: 4, OP_UNLINK_ACK: 4, OP_EXIT: 4, OP_EXIT2: 4,
    OP_MONITOR: 4, OP_DEMONITOR: 4, OP_DOWN: 5, OP_SPAWN_REQUEST: 7, OP_SPAWN_REPLY: 4,
    OP_ALIVE_REQUEST: 3, OP_ALIVE_REPLY: 3, OP_CALL_REPLY: 3, OP_SEND_TERMS: 3, OP_FLOW: 4, OP_ACK: 2, OP_CALL: 4,
}  # fmt: skip


def call_msg(
    t: tuple[Any, ...], op: int, routes: dict[bytes, tuple[Pid | None, Pid]], pids: dict[Any, Pid]
) -> Message | None:
    """CALL, MONITOR, DEMONITOR or CALL_REPLY with exact types and known
    pids (a known route: ``routes`` and ``pids`` are the decoder's caches)
    in one call; None: the general path decides (and
    names what is wrong).

    Raises:
        LookupError, TypeError: the same (an unknown route, an unhashable field).
    """
    r = t[2] if op == OP_CALL else t[1] if op == OP_CALL_REPLY else t[3]
    if r.__class__ is not tuple or len(r) != 3:
        return None
    n, i, c = r
    if not (
        n.__class__ is int and i.__class__ is int and c.__class__ is int and 0 < n <= U32 and 0 <= i <= U64
        and 0 <= c <= U32
    ):  # fmt: skip
        return None  # (as dref's is_uint checks)
    if op == OP_CALL:
        caller, server = routes[t[1]]
        payload = t[3]
        # ([one scalar], a call's usual payload: term1's first test, inline)
        one = payload.__class__ is tuple and len(payload) == 1 and payload[0].__class__ in TERM_SCALARS
        if caller is None or not (payload.__class__ is bytes or one or term1(payload)):
            return None
        return _new_tuple(Call, (caller, server, make_ref(n, i, c), payload))
    if op == OP_CALL_REPLY:
        payload = t[2]
        one = payload.__class__ is tuple and len(payload) == 1 and payload[0].__class__ in TERM_SCALARS  # (as CALL's)
        if not (payload.__class__ is bytes or one or term1(payload)):
            return None
        return _new_tuple(CallReply, (make_ref(n, i, c), payload, len(t) > 3 and t[3] is True))
    # (a triple found in pids is a valid pid's: see FrameDecoder._pid)
    sender = pids.get(t[1])
    to = t[2]
    if to.__class__ is not str or not to:
        to = pids.get(to)
    if sender is None or to is None:
        return None
    return _new_tuple(Monitor if op == OP_MONITOR else Demonitor, (sender, to, make_ref(n, i, c)))  # type: ignore[return-value]
