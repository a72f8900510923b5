"""Control messages of a node link: their types, op codes and field bounds (sans-IO).

Wire layout: after the handshake every link frame is ``Len:32 | Body`` (see
``frames.py``), Body a msgpack array ``[op, field, ...]``. This module owns
the ``op`` codes and what each message carries::

    op  message         fields after op
    1   SEND            route: bin, payload: bin, payload, ...
    2   REG_SEND        sender: pid|nil, to_name: str, payload: bin
    3   LINK            sender: pid, to: pid
    4   UNLINK          sender: pid, to: pid, id: u64 (0: no ack wanted)
    5   UNLINK_ACK      sender: pid, to: pid, id: u64
    6   EXIT            sender: pid, to: pid, reason: bin   (a link broke)
    7   EXIT2           sender: pid|nil, to: pid, reason: bin   (exit(pid, reason))
    8   MONITOR         sender: pid, to: pid|str, ref
    9   DEMONITOR       sender: pid, to: pid|str, ref
    10  DOWN            sender: pid|str (the monitored), to: pid, ref, reason: bin
    11  SPAWN_REQUEST   ref, sender: pid, factory: str, args: bin, link: bool, monitor: bool
    12  SPAWN_REPLY     ref, to: pid, result: pid (spawned) | str (error)
    13  ALIVE_REQUEST   ref, pid
    14  ALIVE_REPLY     ref, alive: bool
    15  CALL_REPLY      ref, payload: bin | [term][, released: bool]
    16  SEND_TERMS      route: bin, msg: plain term, msg, ...
    17  FLOW            dest: pid, kind: u8 (0 grant, 1 ack, 2 gone), n: u32   (flow control, ``flow.py``)
    18  ACK             taken: u64   (messages taken off the link so far; only with FLAG_ACK)
    19  CALL            route: bin, ref, payload: bin | [term]   (MONITOR + SEND of a call; only with FLAG_CALL)

A pid or ref is ``[node:u32, id:u64, creation:u32]`` with node != 0; a
*plain term* (SEND_TERMS) is a str, bin, int, float, bool or nil, a flat
tuple of at most :data:`MAX_TERM_ITEMS` of them, or (with FLAG_TERM_MAPS) a
flat dict of at most :data:`MAX_TERM_ITEMS` of them under str or bin keys. The full specification is
``joerl/node/protocol.py``'s docstring. Here: one ``NamedTuple`` per message
(:data:`Message` is their union, :class:`Tick` the empty frame), the ``OP_*``
codes and the bounds both codecs check. No codec, no socket, no gevent:
``frames.py`` encodes these, ``frame_decoder.py`` decodes them. Import the
names from :mod:`joerl.node.protocol`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeGuard

from ..pid import Pid, Ref

__all__ = [
    "Ack",
    "AliveReply",
    "AliveRequest",
    "Call",
    "CallReply",
    "Demonitor",
    "Down",
    "Exit",
    "Exit2",
    "Flow",
    "Link",
    "MAX_MESSAGES_PER_FRAME",
    "MAX_TERMS_BYTES",
    "MAX_TERM_ITEMS",
    "Message",
    "Monitor",
    "OP_NAMES",
    "RegSend",
    "Send",
    "SendTerms",
    "SpawnReply",
    "SpawnRequest",
    "TERM_KEYS",
    "TERM_SCALARS",
    "Tick",
    "U32",
    "U64",
    "Unlink",
    "UnlinkAck",
    "is_uint",
    "plain_terms",
]

#: The bounds of the wire's unsigned fields (node ids, creations, flags, ids).
U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF


def is_uint(value: Any, top: int) -> TypeGuard[int]:
    """Whether ``value`` is an int (not a bool, not a float) in ``0..top``."""
    return type(value) is int and 0 <= value <= top


OP_SEND = 1
OP_REG_SEND = 2
OP_LINK = 3
OP_UNLINK = 4
OP_UNLINK_ACK = 5
OP_EXIT = 6
OP_EXIT2 = 7
OP_MONITOR = 8
OP_DEMONITOR = 9
OP_DOWN = 10
OP_SPAWN_REQUEST = 11
OP_SPAWN_REPLY = 12
OP_ALIVE_REQUEST = 13
OP_ALIVE_REPLY = 14
OP_CALL_REPLY = 15
OP_SEND_TERMS = 16
OP_FLOW = 17
OP_ACK = 18
OP_CALL = 19

#: The most items a plain term's tuple may hold (SEND_TERMS); longer ones take SEND.
MAX_TERM_ITEMS = 32
#: The most messages one SEND or SEND_TERMS frame carries.
MAX_MESSAGES_PER_FRAME = 1024
#: The most bytes of messages one SEND_TERMS frame carries (a larger plain
#: term takes SEND, and the serialization codec's limits).
MAX_TERMS_BYTES = 256 * 1024
#: The types a plain term (or each item of its tuple) may have: exact types only.
TERM_SCALARS = frozenset({str, bytes, int, float, bool, type(None)})
#: The types of a plain term's dict keys (what msgpack's strict map keys allow).
TERM_KEYS: frozenset[type] = frozenset({str, bytes})


class Send(NamedTuple):
    """SEND: a message to a pid. ``payload`` is the codec's bytes."""

    sender: Pid | None
    to: Pid
    payload: bytes


class SendTerms(NamedTuple):
    """SEND_TERMS: plain terms from one sender to one pid, in order (see the
    docstring of ``protocol.py``); ``msgs`` is a tuple of the messages themselves."""

    sender: Pid | None
    to: Pid
    msgs: tuple[Any, ...]


class RegSend(NamedTuple):
    """REG_SEND: a message to the process registered as ``to_name`` on the peer."""

    sender: Pid | None
    to_name: str
    payload: bytes


class Link(NamedTuple):
    """LINK: ``sender`` links to ``to``."""

    sender: Pid
    to: Pid


class Unlink(NamedTuple):
    """UNLINK: ``sender`` unlinks from ``to``; a nonzero ``id`` asks for UNLINK_ACK."""

    sender: Pid
    to: Pid
    id: int = 0


class UnlinkAck(NamedTuple):
    """UNLINK_ACK: ``sender`` (the unlinked) acknowledges UNLINK ``id`` from ``to``."""

    sender: Pid
    to: Pid
    id: int


class Exit(NamedTuple):
    """EXIT: ``sender`` died with ``reason`` (codec bytes) and was linked to ``to``."""

    sender: Pid
    to: Pid
    reason: bytes


class Exit2(NamedTuple):
    """EXIT2: ``exit(to, reason)`` called by ``sender`` (None: from outside any process)."""

    sender: Pid | None
    to: Pid
    reason: bytes


class Monitor(NamedTuple):
    """MONITOR: ``sender`` monitors ``to``, a pid or a registered name, under ``ref``."""

    sender: Pid
    to: Pid | str
    ref: Ref


class Demonitor(NamedTuple):
    """DEMONITOR: ``sender`` drops its monitor ``ref`` on ``to``."""

    sender: Pid
    to: Pid | str
    ref: Ref


class Down(NamedTuple):
    """DOWN: the monitored ``sender`` (pid or name) ended; tell monitor ``ref`` of ``to``."""

    sender: Pid | str
    to: Pid
    ref: Ref
    reason: bytes


class SpawnRequest(NamedTuple):
    """SPAWN_REQUEST: ``sender`` asks for a process made by the factory registered as ``factory``."""

    ref: Ref
    sender: Pid
    factory: str
    args: bytes
    link: bool = False
    monitor: bool = False


class SpawnReply(NamedTuple):
    """SPAWN_REPLY to ``to`` for request ``ref``: the new pid, or an error string."""

    ref: Ref
    to: Pid
    result: Pid | str


class AliveRequest(NamedTuple):
    """ALIVE_REQUEST: is ``pid`` (a process of the peer) alive? Answer ALIVE_REPLY ``ref``."""

    ref: Ref
    pid: Pid


class AliveReply(NamedTuple):
    """ALIVE_REPLY to request ``ref``."""

    ref: Ref
    alive: bool


class CallReply(NamedTuple):
    """CALL_REPLY: a reply for whoever waits on ``ref`` on the receiving node.

    ``released``: the reply answers a CALL and the sending node has dropped
    that call's monitor as the reply went through it, so the caller sends no
    DEMONITOR (a trailing field: a node that does not know it ignores it).
    ``payload``: the codec's bytes, or (in a released reply only) a 1-tuple
    ``(value,)`` of a plain term, which travels as itself (a 1-array).
    """

    ref: Ref
    payload: bytes | tuple[Any]
    released: bool = False


class Call(NamedTuple):
    """CALL: a GenServer call from ``sender`` to ``to`` in one frame (``FLAG_CALL``).

    Means what ``MONITOR(sender, to, ref)`` then ``SEND`` of ``(CALL,
    (sender, ref), request)`` mean, ``payload`` being the codec's bytes of
    ``request`` alone (the receiving node builds the rest), or a 1-tuple
    ``(request,)`` of a plain term, which travels as itself. A sender whose
    id is 0 is plain code: the message is delivered without a sender. The
    node of ``to`` drops the monitor when it sends the reply itself (a
    CALL_REPLY with ``released``); else the caller sends DEMONITOR.
    """

    sender: Pid
    to: Pid
    ref: Ref
    payload: bytes | tuple[Any]


class Flow(NamedTuple):
    """FLOW: flow control for the bounded process ``dest`` (``kind``: 0 grant ``n`` credit, 1 ack, 2 gone)."""

    dest: Pid
    kind: int
    n: int = 0


class Ack(NamedTuple):
    """ACK: the receiver of a link has taken ``taken`` messages (each message
    of a SEND or SEND_TERMS, each REG_SEND) off it since the link came up."""

    taken: int


class Tick(NamedTuple):
    """A tick: the zero-length frame an idle link sends. Never decoded as a message."""


Message = (
    Send
    | SendTerms
    | RegSend
    | Link
    | Unlink
    | UnlinkAck
    | Exit
    | Exit2
    | Monitor
    | Demonitor
    | Down
    | SpawnRequest
    | SpawnReply
    | AliveRequest
    | AliveReply
    | CallReply
    | Call
    | Flow
    | Ack
)  # fmt: skip


OP_NAMES = {
    OP_SEND: "SEND", OP_REG_SEND: "REG_SEND", OP_LINK: "LINK", OP_UNLINK: "UNLINK",
    OP_UNLINK_ACK: "UNLINK_ACK", OP_EXIT: "EXIT", OP_EXIT2: "EXIT2", OP_MONITOR: "MONITOR",
    OP_DEMONITOR: "DEMONITOR", OP_DOWN: "DOWN", OP_SPAWN_REQUEST: "SPAWN_REQUEST",
    OP_SPAWN_REPLY: "SPAWN_REPLY", OP_ALIVE_REQUEST: "ALIVE_REQUEST", OP_ALIVE_REPLY: "ALIVE_REPLY",
    OP_CALL_REPLY: "CALL_REPLY", OP_SEND_TERMS: "SEND_TERMS", OP_FLOW: "FLOW", OP_ACK: "ACK",
    OP_CALL: "CALL",
}  # fmt: skip
"""Each op code's name, for error messages."""


def plain_terms(msgs: tuple[Any, ...]) -> bool:
    """Whether every one of ``msgs`` is a plain term (what SEND_TERMS carries)."""
    for m in msgs:
        cls = m.__class__
        if cls is tuple:
            n = len(m)
            if n == 2:  # the commonest, ("ping", 7): unrolled (a loop costs a tuple iterator)
                a, b = m
                if a.__class__ not in TERM_SCALARS or b.__class__ not in TERM_SCALARS:
                    return False
            elif n > MAX_TERM_ITEMS:
                return False
            else:
                for item in m:
                    if item.__class__ not in TERM_SCALARS:
                        return False
        elif cls is dict:
            n = len(m)
            if n == 1:  # {"ping": 7}: no items view
                for k in m:
                    if k.__class__ not in TERM_KEYS or m[k].__class__ not in TERM_SCALARS:
                        return False
            elif n > MAX_TERM_ITEMS:
                return False
            else:
                for k, v in m.items():
                    if k.__class__ not in TERM_KEYS or v.__class__ not in TERM_SCALARS:
                        return False
        elif cls not in TERM_SCALARS:
            return False
    return True
