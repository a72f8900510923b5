"""Link frames out: the frame layout and :class:`FrameEncoder` (sans-IO).

Wire layout, after the handshake (every integer big-endian)::

    Len:32 | Body        Len == 0 is a tick (no body); 1 <= Len <= max_frame
    Body = msgpack array [op, field, ...]       (ops: see ``messages.py``)
    SEND / SEND_TERMS:  [op, route, msg, ...]   route = bin of to:16 [| sender:16]
                        a pid in a route is node:u32 | id:u64 | creation:u32

This module owns the frame layout (length prefix, tick, route, limits) and
encoding: :class:`FrameEncoder` / :func:`encode_frame` turn control messages
(``messages.py``; their fields: ``frame_bodies.py``) into frames, with the
SEND and SEND_TERMS hot path (:meth:`FrameEncoder.route`,
:meth:`~FrameEncoder.term`, :meth:`~FrameEncoder.send_terms`, ...) that
``batching.py`` builds on. A big payload is copied once, into its frame.
Decoding is ``frame_decoder.py``. Opens no socket, imports no gevent. The
full specification is ``joerl/node/protocol.py``'s docstring; import these
names from :mod:`joerl.node.protocol`.
"""

from __future__ import annotations

import struct
from typing import Any, cast

import msgpack

from .._describe import describe as _describe
from ..errors import LocalProtocolError, MessageTooLarge
from ..pid import Pid, Ref
from .compression import Compressor
from .frame_bodies import BODY as _BODY
from .frame_bodies import BYTES_AT as _BYTES_AT
from .frame_bodies import Bad as _Bad
from .frame_bodies import ebytes as _ebytes
from .frame_bodies import epid as _epid
from .frame_bodies import eref as _eref
from .frame_bodies import term1 as _term1
from .messages import (
    MAX_MESSAGES_PER_FRAME,
    MAX_TERM_ITEMS,
    MAX_TERMS_BYTES,
    OP_SEND,
    OP_SEND_TERMS,
    TERM_KEYS,
    TERM_SCALARS,
    Call,
    Message,
    Send,
    SendTerms,
    Tick,
)

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "MAX_TERMS_FRAME",
    "MIN_MAX_FRAME_SIZE",
    "ROUTE_PID",
    "TICK_FRAME",
    "FrameEncoder",
    "encode_frame",
]

#: The largest link frame body accepted unless configured otherwise: 64 MiB.
#: Room for big messages (the issue asks for 1 MiB ones) while bounding what a
#: peer can make us buffer; the length prefix is checked before any body byte.
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024

#: The smallest ``max_frame`` a HELLO may announce (or ``Handshake`` be given).
MIN_MAX_FRAME_SIZE = 1024

#: A tick: a link frame of length zero.
TICK_FRAME = b"\x00\x00\x00\x00"

#: The largest SEND_TERMS body: its messages, head (<= 4 bytes) and route (<= 34).
MAX_TERMS_FRAME = MAX_TERMS_BYTES + 40

#: A pid in a route: node, id, creation.
ROUTE_PID = struct.Struct(">IQI")

_pack_len32 = struct.Struct(">I").pack
_BIN8 = [b"\xc4" + bytes([n]) for n in range(256)]
_ROUTE_TO_ONLY = b"\xc4\x10"  # bin of 16 bytes: to
_ROUTE_BOTH = b"\xc4\x20"  # bin of 32 bytes: to, sender

#: A bytes field past this is not copied into the Packer's buffer: the fields
#: around it are packed, and the frame joined from them and it (one copy).
SPLIT_AT = 64 * 1024


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
            ``max_frame``); larger frames raise :class:`~joerl.errors.MessageTooLarge`
            (a ``LocalProtocolError``) before anything is written.
        pid_cache_size: packed pids kept; the cache is cleared when full.
        terms: whether the peer takes SEND_TERMS (``FLAG_SEND_TERMS`` in
            use); when False, :meth:`term` always answers None.
        maps: whether the peer takes flat dicts as plain terms
            (``FLAG_TERM_MAPS`` in use); when False, a dict is no plain term.
        peer: the peer's name, for :class:`~joerl.errors.MessageTooLarge`.
    """

    def __init__(
        self,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        *,
        pid_cache_size: int = 4096,
        terms: bool = True,
        maps: bool = True,
        peer: str | None = None,
    ) -> None:
        self.max_frame_size = max_frame_size
        self.terms = terms
        self.maps = maps
        self.peer = peer
        #: Compresses big frames (``compress_with``); None: none are.
        self.compressor: Compressor | None = None
        self._check_at = max_frame_size  # bodies past this take _large (limit, compression)
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
            return self.send(*msg)
        if cls is Call:  # (payload (term,): one plain term, packed as itself)
            s, t, r, pl = cast(Call, msg)
            term = pl.__class__ is tuple
            return self.call(s, t, r, _term1(pl) and self.term(pl[0]) if term else pl, term)  # type: ignore[arg-type]
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
        at = _BYTES_AT.get(cls)
        if at is not None and len(big := fields[at]) > SPLIT_AT and big.__class__ is bytes:
            return self._split(fields, at)
        body: bytes = self._packer.pack(fields)
        size = len(body)
        if size > self._check_at:
            return self._large(body)
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
        if size > self._check_at:
            if size > self.max_frame_size:  # (before joining: nothing is copied)
                raise self._too_large(size)
            return self._large(b"".join((b"\x93\x01", route, header, payload)))
        return b"".join((_pack_len32(size), b"\x93\x01", route, header, payload))

    def call(self, sender: Pid, to: Pid, ref: Ref | tuple[int, int, int], payload: bytes, term: bool = False) -> bytes:
        """The CALL frame (``ref``: a Ref or its triple; ``term``: ``payload`` is from :meth:`term`, not the codec)."""
        r = ref if ref.__class__ is tuple else (ref.node, ref.id, ref.creation) if ref.__class__ is Ref else ()
        if not r or not r[0] or payload.__class__ is not bytes or sender is None:
            try:
                _eref(ref), _ebytes(payload, "payload"), _epid(sender, "sender")
            except _Bad as exc:
                raise LocalProtocolError(f"cannot encode Call: {exc}") from None
        route = self._route if to is self._route_to and sender is self._route_sender else self.route(sender, to)
        r = self._pack(r)
        size = 2 + len(route) + len(r) + len(header := b"\x91" if term else _bin_header(len(payload))) + len(payload)
        parts = (b"\x94\x13", route, r, header, payload)  # [CALL (19), ...]; past _check_at: the limit, compression
        return self._large(b"".join(parts)) if size > self._check_at else _pack_len32(size) + b"".join(parts)

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
        if cls is tuple:  # plain_terms((msg,)), inlined: this is every send's path
            if len(msg) > MAX_TERM_ITEMS:
                return None
            for item in msg:
                if item.__class__ not in TERM_SCALARS:
                    return None
        elif cls not in TERM_SCALARS:
            if not (cls is dict and self.maps and len(msg) <= MAX_TERM_ITEMS):
                return None
            for k, v in msg.items():
                if k.__class__ not in TERM_KEYS or v.__class__ not in TERM_SCALARS:
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

    def one_term(self, sender: Pid | None, to: Pid, body: bytes) -> bytes:
        """The SEND_TERMS frame of one message (``body`` from :meth:`term`)
        from ``sender`` to ``to``: ``send_terms(route(sender, to), [body])``
        in one call (an idle link's latency path).

        Raises:
            LocalProtocolError: as :meth:`route`, or the frame is too large for the peer.
        """
        route = self._route if to is self._route_to and sender is self._route_sender else self.route(sender, to)
        size = 2 + len(route) + len(body)
        if size > self._check_at:
            return self._large(b"".join((b"\x93\x10", route, body)))
        return b"".join((_pack_len32(size), b"\x93\x10", route, body))  # [SEND_TERMS (16), route, body]

    def _many(self, op: int, route: bytes, items: list[bytes]) -> bytes:
        n = len(items) + 2
        head = bytes((0x90 | n, op)) if n < 16 else b"\xdc" + n.to_bytes(2, "big") + bytes((op,))
        data = b"".join(items)
        size = len(head) + len(route) + len(data)
        if size > self._check_at:
            return self._large(b"".join((head, route, data)))
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
            packed = ROUTE_PID.pack(*_epid(pid, what))
        except _Bad as exc:
            raise LocalProtocolError(f"cannot encode a route: {exc}") from None
        pids = self._pids
        if len(pids) >= self._pid_cache_size:
            pids.clear()
        pids[id(pid)] = (pid, packed)
        return packed

    def compress_with(self, compressor: Compressor | None) -> None:
        """Compress the frames of ``compressor.min_size`` bytes or more (None: none)."""
        self.compressor = compressor
        self._check_at = (
            self.max_frame_size if compressor is None else min(self.max_frame_size, compressor.min_size - 1)
        )

    def _split(self, fields: tuple[Any, ...], at: int) -> bytes:
        """The frame of ``fields`` whose ``fields[at]`` is big bytes: the Packer
        packs the fields around it (an array's items are packed one after the
        other), the frame is joined from those and it, which is copied once."""
        pack = self._pack
        big = fields[at]
        n = len(fields)
        head = b"".join((bytes((0x90 | n,)), *map(pack, fields[:at]), _bin_header(len(big))))  # (n < 16)
        tail = b"".join(map(pack, fields[at + 1 :]))
        size = len(head) + len(big) + len(tail)
        if size > self._check_at:
            if size > self.max_frame_size:  # (before joining: nothing is copied)
                raise self._too_large(size)
            return self._large(b"".join((head, big, tail)))
        return b"".join((_pack_len32(size), head, big, tail))

    def _large(self, body: bytes) -> bytes:
        """The frame of a body past ``_check_at``: refused over the peer's
        limit (which holds for the uncompressed bytes), else compressed when
        that saves bytes."""
        size = len(body)
        if size > self.max_frame_size:
            raise self._too_large(size)
        if self.compressor is not None:
            packed = self.compressor.body(body)
            if packed is not None:
                return _pack_len32(len(packed)) + packed
        return _pack_len32(size) + body

    def _too_large(self, size: int) -> MessageTooLarge:
        return MessageTooLarge(size, self.max_frame_size, self.peer)


def encode_frame(msg: Message | Tick, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """The link frame for ``msg`` (``Len:32 | msgpack body``; a tick is 4 zero bytes).

    Raises:
        LocalProtocolError: see :meth:`FrameEncoder.encode`.
    """
    return FrameEncoder(max_frame_size).encode(msg)
