"""The outgoing queue of one link, and the batching of bursts into frames (sans-IO).

Wire layout: what leaves is link frames (``frames.py``), back to back::

    frame | frame | ...     frame = Len:32 | [op, field, ...]
    a burst of messages from one sender to one process, queued in a row:
        SEND_TERMS  [16, route, term, term, ...]       (plain terms: scalars, flat tuples, flat dicts)
        SEND        [1, route, payload, payload, ...]  (codec payloads)
    each frame at most MAX_MESSAGES_PER_FRAME messages and the peer's max_frame

This module owns that queue: :class:`OutboundBatcher` is fed messages and
encoded frames, in order, and hands the bytes of everything queued to whoever
writes them (:meth:`~OutboundBatcher.take`). Messages from one sender to one
process queued one after another, while nothing else came between them, join
one open batch that becomes one SEND_TERMS or SEND frame when taken. It
counts what is queued, so that the link can apply backpressure; when to
write, wait or wake a writer is the link's (``connection.py``). Opens no
socket, imports no gevent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ..errors import MessageTooLarge
from ..pid import Pid
from .frames import FrameEncoder
from .messages import MAX_MESSAGES_PER_FRAME, MAX_TERM_ITEMS, MAX_TERMS_BYTES, TERM_KEYS, TERM_SCALARS

__all__ = ["CLOSED", "NO_LANE", "TERM_COST", "OutboundBatcher"]

#: What a queued message costs beyond its bytes (a bytes object and a list
#: slot): counted in ``queued_bytes``, so that a bound on it holds for memory.
TERM_COST = 48
# A SEND or SEND_TERMS frame's head (at most 4 bytes) and route (at most 34).
_FRAME_OVERHEAD = 38
#: The ``room`` of a batch that was closed (taken, cleared, or followed by
#: another item): no message fits, so that whoever kept it sees it closed.
CLOSED = -(1 << 40)


class _Batch(list[bytes]):
    """Messages queued along one route, that become one frame."""

    __slots__ = ("sender", "to", "route", "room", "start", "key", "counted")
    sender: Pid | None  # the messages' sender and destination (as objects: compared with "is")
    to: Pid
    route: bytes
    room: int  # what more messages may add (each counts its bytes and TERM_COST); CLOSED once closed
    start: int  # room when opened: start - room is what joined since
    key: Any  # the feeder's own (the routing's lane: its sender as the runtime passed it)
    counted: int  # messages counted in handed as they joined; the others are counted when it closes

    @staticmethod
    def frame(encoder: FrameEncoder, route: bytes, items: list[bytes]) -> bytes:
        raise NotImplementedError


class _Terms(_Batch):
    """Plain terms (``FrameEncoder.term``): one SEND_TERMS frame."""

    __slots__ = ()
    frame = staticmethod(FrameEncoder.send_terms)  # type: ignore[assignment]


class _Sends(_Batch):
    """Codec payloads (``FrameEncoder.payload``): one SEND frame."""

    __slots__ = ()
    frame = staticmethod(FrameEncoder.send_many)  # type: ignore[assignment]


#: A batch closed from the start, for no one: a feeder's lane when it has none.
NO_LANE: Final = _Terms()
NO_LANE.sender = NO_LANE.to = NO_LANE.key = object()  # type: ignore[assignment]
NO_LANE.room = CLOSED


class OutboundBatcher:
    """The queue of frames and batches waiting to go out on one link.

    Feed it with :meth:`term`, :meth:`payload` and :meth:`frame`, in the
    order the messages must arrive; :meth:`take` returns the bytes of
    everything queued and empties the queue. ``len()`` is the number of
    items queued (frames and batches; a batch becomes one frame).

    A message that joins the open batch only appends to it: that is the hot
    path, a few dict-free checks and an append. Anything that adds an item
    to the queue (a frame, or a batch opened) then calls ``on_item(cost)``,
    as its last step: the link's hook to apply backpressure or wake its
    writer. The hook may call :meth:`take` or :meth:`clear`, or raise (the
    exception reaches the feeder).

    Args:
        encoder: the link's encoder (bounded by the peer's max frame size,
            its ``terms`` flag saying whether the peer takes SEND_TERMS).
        peer: the peer's name, for error messages.
        on_item: ``on_item(cost)``, called after an item was queued.

    Attributes:
        queued_bytes: what the queue costs, in bytes (each message of a batch
            counts ``TERM_COST`` more). For speed, what joins the open batch
            is counted when the batch closes (another item follows it, or
            :meth:`take`); it can be smaller than the truth by one batch's
            room (at most ``batch_room``).
        idle: set by the link while it may write a frame at once (its writer
            idle): :meth:`term`, :meth:`payload` and :meth:`frame` then hand
            a message or frame that finds the queue empty to ``write_now`` as
            its own frame, opening no batch (``write_now`` queues, with
            :meth:`frame`, what the socket did not take: the link clears
            ``idle`` before).
        handed: messages queued by :meth:`term` and :meth:`payload` so far
            (one each; the link adds the REG_SENDs it queues), and those a
            feeder's lane added to a batch (:meth:`open_terms`: counted as
            the batch closes): what the link's peer acknowledges (ACK), what
            is unconfirmed at link down.
        batch_room: what one batch may hold, in bytes and ``TERM_COST`` per
            message: it bounds the frame's bytes and its number of messages.
    """

    def __init__(
        self, encoder: FrameEncoder, peer: str = "the peer", on_item: Callable[[int], None] | None = None
    ) -> None:
        self.encoder = encoder
        self.peer = peer
        self.on_item: Callable[[int], None] = on_item or _ignore
        #: ``on_joined(n)``: ``n`` messages that joined a batch through a
        #: feeder's lane (:meth:`open_terms`), uncounted, as it closed.
        self.on_joined: Callable[[int], None] = _ignore
        #: Set by the link while its queue may skip batching: a lone message's
        #: frame goes to ``write_now(frame)`` at once (which queues what the socket did not take).
        self.idle = False
        self.write_now: Callable[[bytes], None] = self._queue_frame
        self.queued_bytes = 0
        self.handed = 0  # (a plain attribute: the link adds to it once per remote call)
        self._items: list[bytes | _Batch] = []
        self._max_term = encoder.max_frame_size - _FRAME_OVERHEAD
        self.batch_room = min(MAX_TERMS_BYTES, self._max_term, MAX_MESSAGES_PER_FRAME * (TERM_COST + 1))
        # The _Batch at the end of _items, open to more messages (one of the two, or neither).
        self._terms: _Terms | None = None
        self._sends: _Sends | None = None
        self._maps = self.maps = encoder.maps
        self._pack = self.pack = encoder._pack  # msgpack's pack (public: the routing's lane packs with it)
        if not encoder.terms:
            self.term = _no_term  # type: ignore[method-assign]

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<OutboundBatcher {len(self._items)} items, {self.queued_bytes} bytes>"

    def term(self, sender: Pid | None, to: Pid, msg: Any) -> bool:
        """Queue ``msg`` from ``sender`` to ``to`` if it is a plain term (see
        ``FrameEncoder.term``); False when it is not, or the peer takes none
        (encode it with the serialization codec and use :meth:`payload`).

        Raises:
            LocalProtocolError: a pid cannot be encoded, or the message does
                not fit the peer's frame limit.
            Exception: what ``on_item`` raised.
        """
        # FrameEncoder.term, inlined (a call less on every send): keep the two alike
        # (tests/unit/test_node_batching.py checks they agree).
        cls = msg.__class__
        if cls is tuple:
            n = len(msg)
            if n == 2:  # the commonest, ("ping", 7): unrolled (a loop costs a tuple iterator)
                a, b = msg
                if a.__class__ not in TERM_SCALARS or b.__class__ not in TERM_SCALARS:
                    return False
            elif n > MAX_TERM_ITEMS:
                return False
            else:
                for item in msg:
                    if item.__class__ not in TERM_SCALARS:
                        return False
        elif cls not in TERM_SCALARS:
            if not (cls is dict and self._maps):
                return False
            n = len(msg)
            if n == 1:  # {"ping": 7}: no items view
                for k in msg:
                    if k.__class__ not in TERM_KEYS or msg[k].__class__ not in TERM_SCALARS:
                        return False
            elif n > MAX_TERM_ITEMS:
                return False
            else:
                for k, v in msg.items():
                    if k.__class__ not in TERM_KEYS or v.__class__ not in TERM_SCALARS:
                        return False
        try:
            pack = self._pack  # (an attribute read: a bound method called via LOAD_METHOD costs a lookup)
            body: bytes = pack(msg)
        except (OverflowError, UnicodeEncodeError):  # a big int, a lone surrogate: the codec's business
            self.encoder._packer.reset()
            return False
        batch = self._terms
        if batch is not None and to is batch.to and sender is batch.sender:
            room = batch.room - len(body) - TERM_COST
            if room >= 0:  # (so the body is within MAX_TERMS_BYTES, as batch_room is)
                # The hot path: a burst to one process. Its bytes are counted by _close_batch.
                batch.append(body)
                batch.room = room
                batch.counted += 1
                self.handed += 1
                return True
        if len(body) > MAX_TERMS_BYTES:
            return False
        if self.idle and not self._items and len(body) <= self._max_term:
            # An idle link's latency path: its frame goes to write_now, no batch is opened.
            write_now = self.write_now  # (as pack above)
            write_now(self.encoder.one_term(sender, to, body))
            self.handed += 1
            return True
        self._open(_Terms, sender, to, body, len(body) + TERM_COST)
        self.handed += 1  # (not when _open raised: the feeder counts that one dropped)
        return True

    def payload(self, sender: Pid | None, to: Pid, payload: bytes) -> None:
        """Queue a message from ``sender`` to ``to``, ``payload`` being its
        serialization codec bytes: a burst of them to one process shares one
        SEND frame; one too big for a batch is a SEND frame of its own.

        Raises:
            LocalProtocolError: ``payload`` is not bytes, a pid cannot be
                encoded, or the frame is too large for the peer.
            Exception: what ``on_item`` raised.
        """
        size = len(payload) + TERM_COST + 5  # and its bin header
        if self.idle and not self._items:  # an idle link's latency path (see term)
            self.write_now(self.encoder.send(sender, to, payload))
            self.handed += 1
            return
        if size > self.batch_room:
            self.frame(self.encoder.send(sender, to, payload))
            self.handed += 1
            return
        body = self.encoder.payload(payload)
        batch = self._sends
        if batch is not None and to is batch.to and sender is batch.sender and batch.room >= size:
            batch.append(body)
            batch.room -= size
            batch.counted += 1
            self.handed += 1
            return
        self._open(_Sends, sender, to, body, size)
        self.handed += 1

    def frame(self, frame: bytes) -> None:
        """Queue ``frame`` (encoded bytes, or the unsent rest of some) after
        everything queued: later messages queue behind it.

        Raises:
            Exception: what ``on_item`` raised.
        """
        if self.idle and not self._items:  # an idle link's latency path (see term)
            self.write_now(frame)
            return
        self._close_batch()
        self._items.append(frame)
        size = len(frame)
        self.queued_bytes += size
        self.on_item(size)

    def open_terms(self) -> _Batch | None:
        """The open batch of plain terms (last in the queue, more may join it), or None.

        A feeder may keep it (its lane) and append a packed term (``pack``)
        to it while its ``room`` allows, as :meth:`term` does, taking
        ``len(body) + TERM_COST`` off ``room``, and counting nothing: when
        the batch closes (another item follows it, or :meth:`take`, or
        :meth:`clear`) ``room`` turns :data:`CLOSED`, and what joined it so
        is counted in ``handed`` and handed to ``on_joined(n)``.
        """
        return self._terms

    def _queue_frame(self, frame: bytes) -> None:
        """The default ``write_now``: no writing here, queue it."""
        self.idle = False
        self.frame(frame)

    def take(self) -> tuple[bytes, int]:
        """The bytes of everything queued, and how many frames they are; the queue empties."""
        items = self._items
        self._items = []
        self.queued_bytes = 0
        batch = self._terms or self._sends
        if batch is not None:
            self._terms = self._sends = None
            self._closed(batch)
        encoder = self.encoder
        if len(items) == 1:  # an idle link's latency path: one frame, or one batch
            f = items[0]
            return (f if f.__class__ is bytes else f.frame(encoder, f.route, f)), 1  # type: ignore[union-attr, arg-type]
        frames = [f if f.__class__ is bytes else f.frame(encoder, f.route, f) for f in items]  # type: ignore[union-attr, arg-type]
        return b"".join(frames), len(frames)

    def clear(self) -> None:
        """Drop everything queued."""
        self._items = []
        self.queued_bytes = 0
        batch = self._terms or self._sends
        if batch is not None:
            self._terms = self._sends = None
            self._closed(batch)

    def _open(self, kind: type[_Batch], sender: Pid | None, to: Pid, body: bytes, size: int) -> None:
        """Queue a new batch of ``kind`` holding ``body``."""
        route = self.encoder.route(sender, to)
        if len(body) > self._max_term:
            raise MessageTooLarge(len(body) + len(route) + 4, self.encoder.max_frame_size, self.peer)
        if self._terms is not None or self._sends is not None:
            self._close_batch()
        batch = kind((body,))
        batch.sender = sender  # (set here rather than by an __init__: this is every idle send's path)
        batch.to = to
        batch.route = route
        batch.room = batch.start = self.batch_room - size
        batch.counted = 1  # (the feeder counts this one in handed once _open returned)
        if kind is _Terms:
            self._terms = batch  # type: ignore[assignment]
        else:
            self._sends = batch  # type: ignore[assignment]
        self._items.append(batch)
        self.queued_bytes += size
        self.on_item(size)

    def _close_batch(self) -> None:
        """No more messages join the open batch: count what joined it since it
        opened (the hot paths leave that to here) in ``queued_bytes``."""
        batch = self._terms or self._sends
        if batch is not None:
            self.queued_bytes += batch.start - batch.room
            self._terms = self._sends = None
            self._closed(batch)

    def _closed(self, batch: _Batch) -> None:
        """``batch`` closed: no message may join it now; what joined it
        uncounted (a feeder's lane: :meth:`open_terms`) is counted in
        ``handed`` and handed to ``on_joined``."""
        batch.room = CLOSED
        n = len(batch) - batch.counted
        if n:
            self.handed += n
            self.on_joined(n)


def _no_term(sender: Pid | None, to: Pid, msg: Any) -> bool:
    """OutboundBatcher.term when the peer takes no SEND_TERMS."""
    return False


def _ignore(cost: int) -> None:
    """The default ``on_item``: nothing to do."""
