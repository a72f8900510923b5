"""Link frames: the control messages and their codec (sans-IO).

The control message types (:class:`Send`, :class:`SendTerms`, ... :class:`Tick`),
:class:`FrameEncoder` / :func:`encode_frame` (messages to bytes) and
:class:`FrameDecoder` (bytes to messages, :class:`FrameError` and
:class:`OversizedFrame`). Opens no socket, imports no gevent. The wire layout,
op codes and plain terms are specified in ``joerl/node/protocol.py``'s
docstring; import these names from :mod:`joerl.node.protocol`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import msgpack

from .._describe import describe
from ..errors import FrameError, LocalProtocolError, OversizedFrame
from ..pid import Pid, Ref

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "AliveReply",
    "AliveRequest",
    "CallReply",
    "Demonitor",
    "Down",
    "Exit",
    "Exit2",
    "FrameDecoder",
    "FrameEncoder",
    "FrameError",
    "Link",
    "MAX_TERM_ITEMS",
    "MAX_TERMS_BYTES",
    "MAX_MESSAGES_PER_FRAME",
    "Message",
    "Monitor",
    "OversizedFrame",
    "RegSend",
    "Send",
    "SendTerms",
    "SpawnReply",
    "SpawnRequest",
    "TICK_FRAME",
    "Tick",
    "Unlink",
    "UnlinkAck",
    "encode_frame",
]

#: The largest link frame body accepted unless configured otherwise: 64 MiB.
#: Room for big messages (the issue asks for 1 MiB ones) while bounding what a
#: peer can make us buffer; the length prefix is checked before any body byte.
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF
_LEN32 = struct.Struct(">I")
_pack_len32 = _LEN32.pack
_unpack_len32 = _LEN32.unpack_from
_new_tuple = tuple.__new__

#: A tick: a link frame of length zero.
TICK_FRAME = b"\x00\x00\x00\x00"


_describe = describe  # bounded renderings of the peer's values (joerl/_describe.py)


def _is_uint(value: Any, top: int) -> bool:
    return type(value) is int and 0 <= value <= top


# -- errors ------------------------------------------------------------------
# All subclass the error tree of joerl.errors.


# -- control messages ------------------------------------------------------------

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

#: The most items a plain term's tuple may hold (SEND_TERMS); longer ones take SEND.
MAX_TERM_ITEMS = 32
#: The most messages one SEND or SEND_TERMS frame carries.
MAX_MESSAGES_PER_FRAME = 1024
#: The most bytes of messages one SEND_TERMS frame carries (a larger plain
#: term takes SEND, and the serialization codec's limits).
MAX_TERMS_BYTES = 256 * 1024
_MAX_TERMS_FRAME = MAX_TERMS_BYTES + 40  # and its head (<= 4 bytes) and route (<= 34)
#: The types a plain term (or each item of its tuple) may have: exact types only.
TERM_SCALARS = frozenset({str, bytes, int, float, bool, type(None)})


class Send(NamedTuple):
    """SEND: a message to a pid. ``payload`` is the codec's bytes."""

    sender: Pid | None
    to: Pid
    payload: bytes


class SendTerms(NamedTuple):
    """SEND_TERMS: plain terms from one sender to one pid, in order (see the
    module docstring); ``msgs`` is a tuple of the messages themselves."""

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
    """CALL_REPLY: a reply for whoever waits on ``ref`` on the receiving node."""

    ref: Ref
    payload: bytes


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
)  # fmt: skip


# -- encoding ----------------------------------------------------------------------


class _Bad(Exception):
    """Internal: a field could not be encoded or decoded."""


def _epid(p: Any, what: str = "pid") -> tuple[int, int, int]:
    if p.__class__ is not Pid:
        raise _Bad(f"{what} must be a Pid, not {type(p).__name__}")
    if p.node == 0:
        raise _Bad(f"{what} {p} has node 0 ('this node'): give it the local node id before it leaves")
    return (p.node, p.id, p.creation)


def _eopt_pid(p: Any, what: str) -> tuple[int, int, int] | None:
    return None if p is None else _epid(p, what)


def _eref(r: Any) -> tuple[int, int, int]:
    if r.__class__ is not Ref:
        raise _Bad(f"ref must be a Ref, not {type(r).__name__}")
    if r.node == 0:
        raise _Bad(f"ref {r} has node 0 ('this node'): give it the local node id before it leaves")
    return (r.node, r.id, r.creation)


def _ebytes(b: Any, what: str) -> bytes:
    if b.__class__ is not bytes:
        raise _Bad(f"{what} must be bytes (encoded by the serialization codec), not {type(b).__name__}")
    return b


def _ename(n: Any, what: str) -> str:
    if n.__class__ is not str or not n:
        raise _Bad(f"{what} must be a non-empty str, got {_describe(n)}")
    return n


def _etarget(t: Any, what: str) -> Any:
    return t if t.__class__ is str and t else _epid(t, what)


def _ebool(b: Any, what: str) -> bool:
    if b.__class__ is not bool:
        raise _Bad(f"{what} must be a bool, got {_describe(b)}")
    return b


def _eid(i: Any) -> int:
    if not _is_uint(i, _U64):
        raise _Bad(f"unlink id must be an int in 0..{_U64}, got {_describe(i)}")
    return i


# The fields of each message but SEND (FrameEncoder.send builds SEND by hand).
_BODY: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    RegSend: lambda m: (
        OP_REG_SEND, _eopt_pid(m.sender, "sender"), _ename(m.to_name, "to_name"), _ebytes(m.payload, "payload")
    ),
    Link: lambda m: (OP_LINK, _epid(m.sender, "sender"), _epid(m.to, "to")),
    Unlink: lambda m: (OP_UNLINK, _epid(m.sender, "sender"), _epid(m.to, "to"), _eid(m.id)),
    UnlinkAck: lambda m: (OP_UNLINK_ACK, _epid(m.sender, "sender"), _epid(m.to, "to"), _eid(m.id)),
    Exit: lambda m: (OP_EXIT, _epid(m.sender, "sender"), _epid(m.to, "to"), _ebytes(m.reason, "reason")),
    Exit2: lambda m: (OP_EXIT2, _eopt_pid(m.sender, "sender"), _epid(m.to, "to"), _ebytes(m.reason, "reason")),
    Monitor: lambda m: (OP_MONITOR, _epid(m.sender, "sender"), _etarget(m.to, "to"), _eref(m.ref)),
    Demonitor: lambda m: (OP_DEMONITOR, _epid(m.sender, "sender"), _etarget(m.to, "to"), _eref(m.ref)),
    Down: lambda m: (
        OP_DOWN, _etarget(m.sender, "sender"), _epid(m.to, "to"), _eref(m.ref), _ebytes(m.reason, "reason")
    ),
    SpawnRequest: lambda m: (
        OP_SPAWN_REQUEST, _eref(m.ref), _epid(m.sender, "sender"), _ename(m.factory, "factory"),
        _ebytes(m.args, "args"), _ebool(m.link, "link"), _ebool(m.monitor, "monitor"),
    ),
    SpawnReply: lambda m: (
        OP_SPAWN_REPLY, _eref(m.ref), _epid(m.to, "to"),
        _ename(m.result, "result") if m.result.__class__ is str else _epid(m.result, "result"),
    ),
    AliveRequest: lambda m: (OP_ALIVE_REQUEST, _eref(m.ref), _epid(m.pid, "pid")),
    AliveReply: lambda m: (OP_ALIVE_REPLY, _eref(m.ref), _ebool(m.alive, "alive")),
    CallReply: lambda m: (OP_CALL_REPLY, _eref(m.ref), _ebytes(m.payload, "payload")),
}  # fmt: skip


_BIN8 = [b"\xc4" + bytes([n]) for n in range(256)]
_IDENT = struct.Struct(">IQI")  # a pid in a route: node, id, creation
_ROUTE_TO_ONLY = b"\xc4\x10"  # bin of 16 bytes: to
_ROUTE_BOTH = b"\xc4\x20"  # bin of 32 bytes: to, sender


def _no_term(msg: Any) -> None:
    """FrameEncoder.term when the peer takes no SEND_TERMS."""
    return None


def _bin_header(n: int) -> bytes:
    """The msgpack bin header for ``n`` bytes."""
    if n < 256:
        return _BIN8[n]
    if n < 0x10000:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


class FrameEncoder:
    """Turns control messages into link frames (``Len:32 | msgpack body``).

    One encoder per link, used from one thread (any greenlets). It keeps a
    msgpack ``Packer`` and, for the SEND hot path, the packed form of the pids
    it has seen (bounded), so :meth:`send` is a few dict lookups and a join.

    Args:
        max_frame_size: the largest body the peer accepts (its HELLO's
            ``max_frame``); larger frames raise ``LocalProtocolError``.
        pid_cache_size: packed pids kept; the cache is cleared when full.
        terms: whether the peer takes SEND_TERMS (``FLAG_SEND_TERMS`` in
            use); when False, :meth:`term` always answers None.
    """

    def __init__(
        self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, *, pid_cache_size: int = 4096, terms: bool = True
    ) -> None:
        self.max_frame_size = max_frame_size
        self.terms = terms
        if not terms:
            self.term = _no_term  # type: ignore[method-assign]
        self._packer = msgpack.Packer(use_bin_type=True)
        self._pack = self._packer.pack
        self._pids: dict[int, tuple[Pid, bytes]] = {}  # id(pid) -> (pid, its 16 route bytes)
        self._pid_cache_size = pid_cache_size
        self._route = b""  # the last route made, for _route_to from _route_sender
        self._route_to: Any = None
        self._route_sender: Any = None

    def encode(self, msg: Message | Tick) -> bytes:
        """The frame for ``msg``.

        Raises:
            LocalProtocolError: a field has the wrong type (a payload that is
                not bytes, a pid with node 0, ...), or the frame is too large.
        """
        cls = msg.__class__
        if cls is Tick:
            return TICK_FRAME
        if cls is Send:
            return self.send(*msg)  # type: ignore[misc]
        if cls is SendTerms:
            sender, to, msgs = cast(SendTerms, msg)
            if not msgs or len(msgs) > MAX_MESSAGES_PER_FRAME:
                raise LocalProtocolError(f"SendTerms carries 1 to {MAX_MESSAGES_PER_FRAME} messages, not {len(msgs)}")
            bodies = [self.term(m) for m in msgs]
            if None in bodies:
                bad = msgs[bodies.index(None)]
                raise LocalProtocolError(
                    f"cannot encode SendTerms: not a plain term (or terms are off): {_describe(bad)}"
                )
            return self.send_terms(self.route(sender, to), bodies)  # type: ignore[arg-type]
        try:
            fields = _BODY[cls](msg)
        except KeyError:
            raise LocalProtocolError(f"not a control message: {type(msg).__name__}") from None
        except (_Bad, AttributeError) as exc:
            raise LocalProtocolError(f"cannot encode {type(msg).__name__}: {exc}") from None
        body = self._packer.pack(fields)
        size = len(body)
        if size > self.max_frame_size:
            raise self._too_large(size)
        return _pack_len32(size) + body

    def send(self, sender: Pid | None, to: Pid, payload: bytes) -> bytes:
        """The SEND frame, without building a :class:`Send` first (the hot path).

        Raises:
            LocalProtocolError: as :meth:`encode`.
        """
        if payload.__class__ is not bytes:
            raise LocalProtocolError(
                f"cannot encode Send: payload must be bytes (encoded by the serialization codec), "
                f"not {type(payload).__name__}"
            )
        route = self._route if to is self._route_to and sender is self._route_sender else self.route(sender, to)
        header = _bin_header(len(payload))
        size = 2 + len(route) + len(header) + len(payload)
        if size > self.max_frame_size:
            raise self._too_large(size)
        return b"".join((_pack_len32(size), b"\x93\x01", route, header, payload))

    def payload(self, payload: bytes) -> bytes:
        """``payload`` (the codec's bytes) as one of the items of :meth:`send_many`.

        Raises:
            LocalProtocolError: ``payload`` is not bytes.
        """
        if payload.__class__ is not bytes:
            raise LocalProtocolError(
                f"cannot encode Send: payload must be bytes (encoded by the serialization codec), "
                f"not {type(payload).__name__}"
            )
        return _bin_header(len(payload)) + payload

    def send_many(self, route: bytes, items: list[bytes]) -> bytes:
        """The SEND frame of several payloads (each from :meth:`payload`, 1 to
        ``MAX_MESSAGES_PER_FRAME`` of them) along ``route`` (:meth:`route`).

        Raises:
            LocalProtocolError: the frame is too large for the peer.
        """
        return self._many(OP_SEND, route, items)

    def term(self, msg: Any) -> bytes | None:
        """``msg`` packed for :meth:`send_terms`, or None when it is not a plain
        term or the peer takes none (then encode it with the serialization
        codec and use :meth:`send`)."""
        cls = msg.__class__
        if cls is tuple:  # _plain_terms((msg,)), inlined: this is every send's path
            if len(msg) > MAX_TERM_ITEMS:
                return None
            for item in msg:
                if item.__class__ not in TERM_SCALARS:
                    return None
        elif cls not in TERM_SCALARS:
            return None
        try:
            body: bytes = self._pack(msg)
        except (OverflowError, UnicodeEncodeError):  # a big int, a lone surrogate: the codec's business
            self._packer.reset()
            return None
        return body if len(body) <= MAX_TERMS_BYTES else None

    def send_terms(self, route: bytes, bodies: list[bytes]) -> bytes:
        """The SEND_TERMS frame of ``bodies`` (from :meth:`term`, 1 to
        ``MAX_MESSAGES_PER_FRAME``) along ``route`` (from :meth:`route`).

        Raises:
            LocalProtocolError: the frame is too large for the peer.
        """
        return self._many(OP_SEND_TERMS, route, bodies)

    def _many(self, op: int, route: bytes, items: list[bytes]) -> bytes:
        n = len(items) + 2
        head = bytes((0x90 | n, op)) if n < 16 else b"\xdc" + n.to_bytes(2, "big") + bytes((op,))
        data = b"".join(items)
        size = len(head) + len(route) + len(data)
        if size > self.max_frame_size:
            raise self._too_large(size)
        return b"".join((_pack_len32(size), head, route, data))

    def route(self, sender: Pid | None, to: Pid) -> bytes:
        """The route of a SEND or SEND_TERMS frame from ``sender`` to ``to``:
        ``to``'s 16 bytes, then the sender's, in a msgpack bin. The last one
        is kept: a stream reuses it (compare with ``is``).

        Raises:
            LocalProtocolError: a pid is not a Pid, or has node 0.
        """
        if to is self._route_to and sender is self._route_sender:
            return self._route
        to_b = self._pid_bytes(to, "to")
        if sender is None:
            route = _ROUTE_TO_ONLY + to_b
        else:
            route = _ROUTE_BOTH + to_b + self._pid_bytes(sender, "sender")
        self._route, self._route_to, self._route_sender = route, to, sender
        return route

    def _pid_bytes(self, pid: Any, what: str) -> bytes:
        """A pid's 16 route bytes, cached (the same few pids recur on a link)."""
        hit = self._pids.get(id(pid))  # by identity: Pid's own hash is Python code
        if hit is not None and hit[0] is pid:
            return hit[1]
        try:
            packed = _IDENT.pack(*_epid(pid, what))
        except _Bad as exc:
            raise LocalProtocolError(f"cannot encode a route: {exc}") from None
        pids = self._pids
        if len(pids) >= self._pid_cache_size:
            pids.clear()
        pids[id(pid)] = (pid, packed)
        return packed

    def _too_large(self, size: int) -> LocalProtocolError:
        return LocalProtocolError(f"frame of {size} bytes exceeds the peer's limit of {self.max_frame_size} bytes")


def encode_frame(msg: Message | Tick, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """The link frame for ``msg`` (``Len:32 | msgpack body``; a tick is 4 zero bytes).

    Raises:
        LocalProtocolError: see :meth:`FrameEncoder.encode`.
    """
    return FrameEncoder(max_frame_size).encode(msg)


# -- decoding ----------------------------------------------------------------------


def _dref(x: Any) -> Ref:
    if type(x) is tuple and len(x) == 3:
        n, i, c = x
        if _is_uint(n, _U32) and n and _is_uint(i, _U64) and _is_uint(c, _U32):
            return Ref._unchecked(n, i, c)
    raise _Bad(f"expected a ref [node>0, id, creation], got {_describe(x)}")


def _dbytes(x: Any, what: str) -> bytes:
    if type(x) is not bytes:
        raise _Bad(f"{what} must be bin, got {type(x).__name__}")
    return x


def _dname(x: Any, what: str) -> str:
    if type(x) is not str or not x:
        raise _Bad(f"{what} must be a non-empty str, got {_describe(x)}")
    return x


def _plain_terms(msgs: tuple[Any, ...]) -> bool:
    """Whether every one of ``msgs`` is a plain term (see SEND_TERMS)."""
    for m in msgs:
        cls = m.__class__
        if cls is tuple:
            if len(m) > MAX_TERM_ITEMS:
                return False
            for item in m:
                if item.__class__ not in TERM_SCALARS:
                    return False
        elif cls not in TERM_SCALARS:
            return False
    return True


def _bins(t: tuple[Any, ...]) -> bool:
    """Whether every field of ``t`` after its first two is bytes (SEND's payloads)."""
    for p in t[2:]:
        if p.__class__ is not bytes:
            return False
    return True


def _dpayloads(t: tuple[Any, ...]) -> tuple[bytes, ...]:
    payloads = t[2:]  # (at most MAX_MESSAGES_PER_FRAME: the Unpacker's max_array_len)
    for p in payloads:
        _dbytes(p, "payload")
    return payloads


def _dterms(t: tuple[Any, ...]) -> tuple[Any, ...]:
    msgs = t[2:]  # (at most MAX_MESSAGES_PER_FRAME: the Unpacker's max_array_len)
    if not _plain_terms(msgs):
        bad = next(m for m in msgs if not _plain_terms((m,)))
        raise _Bad(
            f"msg must be a plain term (a scalar, or a flat array of at most {MAX_TERM_ITEMS}), got {_describe(bad)}"
        )
    return msgs


def _dbool(x: Any, what: str) -> bool:
    if type(x) is not bool:
        raise _Bad(f"{what} must be a bool, got {_describe(x)}")
    return x


_OP_NAMES = {
    OP_SEND: "SEND", OP_REG_SEND: "REG_SEND", OP_LINK: "LINK", OP_UNLINK: "UNLINK",
    OP_UNLINK_ACK: "UNLINK_ACK", OP_EXIT: "EXIT", OP_EXIT2: "EXIT2", OP_MONITOR: "MONITOR",
    OP_DEMONITOR: "DEMONITOR", OP_DOWN: "DOWN", OP_SPAWN_REQUEST: "SPAWN_REQUEST",
    OP_SPAWN_REPLY: "SPAWN_REPLY", OP_ALIVE_REQUEST: "ALIVE_REQUEST", OP_ALIVE_REPLY: "ALIVE_REPLY",
    OP_CALL_REPLY: "CALL_REPLY", OP_SEND_TERMS: "SEND_TERMS",
}  # fmt: skip
_ARITY = {
    OP_SEND: 3, OP_REG_SEND: 4, OP_LINK: 3, OP_UNLINK: 4, OP_UNLINK_ACK: 4, OP_EXIT: 4, OP_EXIT2: 4,
    OP_MONITOR: 4, OP_DEMONITOR: 4, OP_DOWN: 5, OP_SPAWN_REQUEST: 7, OP_SPAWN_REPLY: 4,
    OP_ALIVE_REQUEST: 3, OP_ALIVE_REPLY: 3, OP_CALL_REPLY: 3, OP_SEND_TERMS: 3,
}  # fmt: skip


class FrameDecoder:
    """Turns the bytes of a link (after the handshake) into control messages.

    Feeding is O(n) in the bytes fed, however they are split: complete frames
    are decoded straight from the input, and only an incomplete tail is kept.
    Bodies go through one streaming msgpack ``Unpacker`` (much cheaper per
    frame than ``unpackb``), checked to consume exactly the frame's length;
    SEND with known pids takes an inlined fast path.

    Args:
        max_frame_size: the largest frame body accepted; a larger length
            prefix raises :class:`OversizedFrame` before any body byte is read.
        pid_cache_size: decoded pids are cached per link (the same few pids
            recur on a link); the cache is cleared when it holds this many.

    Attributes:
        ticks: ticks received so far (they are counted, not returned).
        frames: control messages and bad frames returned so far (a SEND of
            several payloads counts one for each; ticks do not count).
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, *, pid_cache_size: int = 4096) -> None:
        self.max_frame_size = max_frame_size
        self.ticks = 0
        self.frames = 0
        self._buf = bytearray()
        self._broken: OversizedFrame | None = None
        self._pids: dict[Any, Pid] = {}
        self._routes: dict[bytes, tuple[Pid | None, Pid]] = {}  # SEND's route -> (sender, to)
        self._pid_cache_size = pid_cache_size
        self._pos = 0
        self._new_unpacker()
        self._ops: dict[int, Callable[[tuple[Any, ...]], Message]] = {
            OP_SEND: lambda t: [Send(*route, p) for route in (self._route(t[1]),) for p in _dpayloads(t)],
            OP_REG_SEND: lambda t: RegSend(
                self._opt_pid(t[1], "sender"), _dname(t[2], "to_name"), _dbytes(t[3], "payload")
            ),
            OP_LINK: lambda t: Link(self._pid(t[1], "sender"), self._pid(t[2], "to")),
            OP_UNLINK: lambda t: Unlink(self._pid(t[1], "sender"), self._pid(t[2], "to"), self._id(t[3])),
            OP_UNLINK_ACK: lambda t: UnlinkAck(self._pid(t[1], "sender"), self._pid(t[2], "to"), self._id(t[3])),
            OP_EXIT: lambda t: Exit(self._pid(t[1], "sender"), self._pid(t[2], "to"), _dbytes(t[3], "reason")),
            OP_EXIT2: lambda t: Exit2(self._opt_pid(t[1], "sender"), self._pid(t[2], "to"), _dbytes(t[3], "reason")),
            OP_MONITOR: lambda t: Monitor(self._pid(t[1], "sender"), self._target(t[2], "to"), _dref(t[3])),
            OP_DEMONITOR: lambda t: Demonitor(self._pid(t[1], "sender"), self._target(t[2], "to"), _dref(t[3])),
            OP_DOWN: lambda t: Down(
                self._target(t[1], "sender"), self._pid(t[2], "to"), _dref(t[3]), _dbytes(t[4], "reason")
            ),
            OP_SPAWN_REQUEST: lambda t: SpawnRequest(
                _dref(t[1]), self._pid(t[2], "sender"), _dname(t[3], "factory"), _dbytes(t[4], "args"),
                _dbool(t[5], "link"), _dbool(t[6], "monitor"),
            ),
            OP_SPAWN_REPLY: lambda t: SpawnReply(
                _dref(t[1]), self._pid(t[2], "to"), _dname(t[3], "result") if type(t[3]) is str
                else self._pid(t[3], "result"),
            ),
            OP_ALIVE_REQUEST: lambda t: AliveRequest(_dref(t[1]), self._pid(t[2], "pid")),
            OP_ALIVE_REPLY: lambda t: AliveReply(_dref(t[1]), _dbool(t[2], "alive")),
            OP_CALL_REPLY: lambda t: CallReply(_dref(t[1]), _dbytes(t[2], "payload")),
            OP_SEND_TERMS: lambda t: SendTerms(*self._route(t[1]), _dterms(t)),
        }  # fmt: skip

    def buffered(self) -> int:
        """How many bytes of an incomplete frame are waiting for the rest."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message | FrameError]:
        """Take bytes from the link; return the messages of every complete frame.

        A frame that cannot be decoded (not msgpack, unknown op, wrong fields)
        is returned as a :class:`FrameError` in its place: log it, count it,
        go on; the frames around it are unaffected.

        Raises:
            OversizedFrame: a length prefix exceeds ``max_frame_size``. The
                stream is broken: close the link. The messages decoded before
                it in this call are in the exception's ``messages``; every
                later call raises it again.
        """
        if self._broken is not None:
            raise self._broken
        buf = self._buf
        if buf:
            buf += data
            src: bytes | bytearray = buf
        else:
            src = data
        end_all = len(src)
        off = 0
        out: list[Message | FrameError] = []
        append = out.append
        limit = self.max_frame_size
        feed, unpack, tell = self._feed, self._unpack, self._tell
        routes = self._routes
        pos = self._pos  # bytes fed to the Unpacker (its tell() must agree)
        while end_all - off >= 4:
            (size,) = _unpack_len32(src, off)
            if size == 0:
                self.ticks += 1
                off += 4
                continue
            if size > limit:
                self._pos = pos
                err = OversizedFrame(size, limit)
                err.messages = out
                self._broken = err
                raise err
            end = off + 4 + size
            if end > end_all:
                break
            # One streaming Unpacker per link: far cheaper per frame than unpackb.
            if size <= 4096:
                feed(src[off + 4 : end])
            else:
                with memoryview(src) as mv, mv[off + 4 : end] as body:
                    feed(body)
            off = end
            pos += size
            try:
                t = unpack()
            except Exception as exc:
                append(self._reset(f"body is not msgpack ({type(exc).__name__}: {exc})", size))
                feed, unpack, tell, pos = self._feed, self._unpack, self._tell, 0
                continue
            if tell() != pos:
                append(self._reset("body is not msgpack (extra data after the message)", size))
                feed, unpack, tell, pos = self._feed, self._unpack, self._tell, 0
                continue
            # The SEND and SEND_TERMS hot path, inlined: a known route, exact
            # types; anything else (a new route, a bad field) takes the general path.
            try:
                op = t[0]
                if op.__class__ is int and (op == OP_SEND_TERMS or op == OP_SEND):
                    sender, to = routes[t[1]]
                    if op == OP_SEND_TERMS:
                        msgs = t[2:]
                        if size <= _MAX_TERMS_FRAME and msgs and _plain_terms(msgs):
                            append(_new_tuple(SendTerms, (sender, to, msgs)))
                            continue
                    elif len(t) == 3:
                        if (payload := t[2]).__class__ is bytes:
                            append(_new_tuple(Send, (sender, to, payload)))
                            continue
                    elif len(t) > 3 and _bins(t):
                        for payload in t[2:]:
                            append(_new_tuple(Send, (sender, to, payload)))
                        continue
            except (LookupError, TypeError):
                pass
            event = self._decode(t, size)
            if event.__class__ is list:  # a SEND of several payloads
                out += event  # type: ignore[arg-type]
            else:
                append(event)  # type: ignore[arg-type]
        self._pos = pos
        self.frames += len(out)
        if src is buf:
            del buf[:off]
        elif off < end_all:
            buf += src[off:]
        return out

    def _new_unpacker(self) -> None:
        # Limits bound what a declared length can make msgpack allocate up front.
        unpacker = msgpack.Unpacker(
            use_list=False,
            raw=False,
            max_buffer_size=max(self.max_frame_size, 1 << 20),
            max_bin_len=self.max_frame_size,
            max_str_len=self.max_frame_size,  # a str allocates nothing before its bytes arrive
            # Bounds what one array header makes msgpack allocate, and the
            # messages of one SEND or SEND_TERMS frame (op, route, messages).
            max_array_len=MAX_MESSAGES_PER_FRAME + 2,
            max_map_len=64,
            max_ext_len=64,
        )
        self._feed, self._unpack, self._tell = unpacker.feed, unpacker.unpack, unpacker.tell
        self._pos = 0

    def _reset(self, message: str, size: int) -> FrameError:
        """Drop the Unpacker's state after a bad body; framing is unaffected."""
        self._new_unpacker()
        return FrameError(message, size=size)

    def _decode(self, t: Any, size: int) -> Message | FrameError | list[Send]:
        if t.__class__ is not tuple or not t or t[0].__class__ is not int:
            return FrameError(f"body is not an array [op, ...]: {_describe(t)}", size=size)
        op = t[0]
        fn = self._ops.get(op)
        if fn is None:
            return FrameError(f"unknown control message type {op}", size=size, op=op)
        if len(t) < _ARITY[op]:
            return FrameError(f"{_OP_NAMES[op]} needs {_ARITY[op] - 1} fields, got {len(t) - 1}", size=size, op=op)
        if op == OP_SEND_TERMS and size > _MAX_TERMS_FRAME:
            return FrameError(f"SEND_TERMS: a frame of {size} bytes, over {_MAX_TERMS_FRAME}", size=size, op=op)
        try:
            return fn(t)
        except _Bad as exc:
            return FrameError(f"{_OP_NAMES[op]}: {exc}", size=size, op=op)
        except Exception as exc:  # e.g. an unhashable pid triple: still just a bad frame
            return FrameError(f"{_OP_NAMES[op]}: {type(exc).__name__}: {exc}", size=size, op=op)

    def _pid(self, x: Any, what: str) -> Pid:
        # Cached by triple: the same pids recur on a link. A cached triple is
        # one that was valid; a numerically equal one (1.0 for 1) maps to it.
        p = self._pids.get(x)
        if p is None:
            if type(x) is tuple and len(x) == 3:
                n, i, c = x
                if _is_uint(n, _U32) and n and _is_uint(i, _U64) and _is_uint(c, _U32):
                    p = Pid._unchecked(n, i, c)
                    if len(self._pids) >= self._pid_cache_size:
                        self._pids.clear()
                    self._pids[x] = p
                    return p
            raise _Bad(f"{what} must be a pid [node>0, id, creation], got {_describe(x)}")
        return p

    def _route(self, x: Any) -> tuple[Pid | None, Pid]:
        """A SEND / SEND_TERMS route (``to``'s 16 bytes, then the sender's, if any) -> (sender, to)."""
        r = self._routes.get(x) if x.__class__ is bytes else None
        if r is not None:
            return r
        if x.__class__ is not bytes or len(x) not in (16, 32):
            raise _Bad(f"route must be a bin of 16 or 32 bytes (to, sender), got {_describe(x)}")
        to = self._route_pid(x, 0, "to")
        r = (self._route_pid(x, 16, "sender") if len(x) == 32 else None, to)
        if len(self._routes) >= self._pid_cache_size:
            self._routes.clear()
        self._routes[x] = r
        return r

    def _route_pid(self, x: bytes, offset: int, what: str) -> Pid:
        node, id_, creation = _IDENT.unpack_from(x, offset)
        if not node:
            raise _Bad(f"{what} in a route has node 0")
        return self._pid((node, id_, creation), what)

    def _opt_pid(self, x: Any, what: str) -> Pid | None:
        return None if x is None else self._pid(x, what)

    def _target(self, x: Any, what: str) -> Pid | str:
        return x if type(x) is str and x else self._pid(x, what)

    @staticmethod
    def _id(x: Any) -> int:
        if not _is_uint(x, _U64):
            raise _Bad(f"unlink id must be an int in 0..{_U64}, got {_describe(x)}")
        return x
