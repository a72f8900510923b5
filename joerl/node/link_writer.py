"""The sending half of one node link: its queue, backpressure and writer greenlet.

This module owns the IO of what a :class:`~joerl.node.connection.Connection`
sends. Messages and frames go into the sans-IO queue (an
:class:`~joerl.node.batching.OutboundBatcher`, which batches a burst to one
process into one frame); :class:`LinkWriter` applies backpressure when the
queue is full (a sender waits; the link's reader and ticker and the hub never
wait, and past twice the bound they drop the link), wakes its writer
greenlet, which puts everything queued on the socket in one go, and on an
idle plain-TCP link tries the first frame of a burst on the socket at once,
without blocking (as asyncio's transports do). Reading, ticking and the link's
life cycle are ``connection.py``'s; the bytes are ``protocol.py``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import monotonic
from typing import Any

import gevent
from gevent.event import Event

from ..errors import ConnectionLost, LinkClosed, LinkDown, MessageTooLarge
from .batching import OutboundBatcher
from .config import LinkConfig
from .protocol import FrameEncoder

__all__ = ["LinkWriter"]

_WRITE_PIECE = 256 * 1024  # bytes per send() of the writer (progress is noted per piece)
_YIELD_AT = 64 * 1024  # queued bytes past which a sender yields to the writer
_DIRECT_MAX = 256 * 1024  # a bigger frame goes to the writer whole (an unsent end would be copied)
# Bytes written, past which the writer drops them before it waits (else they stay referenced
# until its next write: an idle link would keep its last big frame). Smaller ones stay: freed at
# once, malloc gave their memory back and the next message faulted it in again (1 MiB
# messages: 0.51 -> 1.28 ms of CPU per message sent).
_KEEP_MAX = 4 * 1024 * 1024
log = logging.getLogger("joerl.node.connection")


class LinkWriter:
    """What a link sends: the queue, backpressure, immediate writes, the writer greenlet.

    Made by the :class:`~joerl.node.connection.Connection`, which spawns
    :meth:`run` as the link's writer greenlet and calls :meth:`stop` when the
    link closes. Fed through :attr:`queue` (``queue.term``, ``queue.payload``:
    the hot path, no layer of its own) and :meth:`send_frame`.

    Args:
        sock: the link's socket (the connection owns it).
        encoder: the link's encoder, bounded by the peer's max frame size.
        config: link settings (``max_queue_bytes``, ``send_timeout``).
        stats: the link's counters (``frames_out``, ``bytes_out``, ``writes``).
        peer_name: for errors and logs.
        label: ``"local -> peer"``, for logs.
        direct: whether the socket may take immediate writes (a plain gevent
            TCP socket, whose ``send()`` takes a zero timeout).
        on_broken: ``on_broken(reason)``: close the link (a write failed, the
            peer does not read).

    Attributes:
        queue: the :class:`~joerl.node.batching.OutboundBatcher`.
        no_wait: greenlets that must never wait for room (the link's reader
            and ticker; the hub never waits either).
        closed: True once :meth:`stop` ran.
        close_reason: what :meth:`stop` got.
    """

    def __init__(
        self,
        sock: Any,
        encoder: FrameEncoder,
        config: LinkConfig,
        stats: Any,
        peer_name: str,
        label: str,
        *,
        direct: bool,
        on_broken: Callable[[Any], None],
    ) -> None:
        self.sock = sock
        self.config = config
        self.stats = stats
        self.peer_name = peer_name
        self._label = label
        self._on_broken = on_broken
        self.queue = OutboundBatcher(encoder, peer_name, on_item=self._added)
        self.queue.write_now = self._write_now  # (while queue.idle: see _write_now)
        self.no_wait: tuple[Any, ...] = ()
        self.closed = False
        self.close_reason: Any = None
        self._max_queue = config.max_queue_bytes
        self._hard_limit = config.queue_hard_limit
        self._max_frame = encoder.max_frame_size
        self._max_out_frame = encoder.max_frame_size + 4
        self._writer_waiting = False
        self._writing = False
        self._direct_ok = direct
        # The direct path's send: the gevent socket's own non-blocking socket
        # (EAGAIN raises at once, as send() with a zero timeout does, one Python call less).
        self._send_now = getattr(sock, "_sock", sock).send if direct else None
        self._direct_spent = False
        self._held = False  # the queue holds only frames of send_later, the writer not woken for them
        self._loop_hub = hub = gevent.get_hub()
        self._loop = hub.loop
        self._wake = Event()
        self._space = Event()
        self._drained = Event()
        self._progress_at = monotonic()  # when the socket last took bytes from the writer

    @property
    def full(self) -> bool:
        """Whether the queue holds ``max_queue_bytes`` or more."""
        return self.queue.queued_bytes >= self._max_queue

    def stop(self, reason: Any) -> None:
        """The link is closing: drop what is queued, release every waiter and the writer."""
        self.closed = True
        self.close_reason = reason
        self._held = False
        self.queue.idle = False
        self.queue.clear()
        self._wake.set()
        self._space.set()
        self._drained.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued frame has been handed to the socket.

        Returns:
            True when the queue drained, False on timeout or if the link closed.
        """
        deadline = None if timeout is None else monotonic() + timeout
        while not self.closed:
            if not self.queue and not self._writing:
                return True
            self._drained.clear()
            remaining = None if deadline is None else deadline - monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._drained.wait(remaining)
        return False

    def send_frame(self, frame: bytes) -> None:
        """Queue one encoded frame (``Len:32 | body``, e.g. from :attr:`encoder`).

        When the queue holds ``max_queue_bytes`` or more, the caller waits
        until the writer takes it (backpressure), except the link's own
        reader and ticker greenlets and the hub, which never wait (a handler
        answering on its own link cannot deadlock two nodes). A wait longer
        than ``send_timeout`` drops the link and raises ``ConnectionLost``.
        A frame from one that cannot wait, which would take the queue past
        ``queue_hard_limit`` (twice ``max_queue_bytes``), drops the link at
        once and raises ``ConnectionLost``: the peer is not reading.

        Raises:
            MessageTooLarge: the frame exceeds the peer's max frame size (nothing is queued).
            LinkClosed: this node closed the link.
            ConnectionLost: the link broke, or was dropped for either reason.
        """
        if self.closed:
            raise self.down_error()
        size = len(frame)
        if size > self._max_out_frame:
            raise MessageTooLarge(size - 4, self._max_frame, self.peer_name)
        self.queue.frame(frame)  # (which calls _added)

    def _added(self, cost: int) -> None:
        """The queue's ``on_item``: a new item (``cost`` bytes) is last in the
        queue. Apply backpressure, or write it at once on an idle link, or wake
        the writer; raise if the link is closed."""
        out = self.queue
        if self.closed:
            out.clear()
            raise self.down_error()
        before = out.queued_bytes - cost  # (exact: the open batch closed before this item came)
        if self._held:
            if not before:
                return  # a frame of send_later: it waits for the next one, or for _release
            self._held = False
            before = 0  # the held frames leave with this one, in one write if the link is idle
        if before >= self._max_queue:
            self._wait_for_space()
        elif not before and self._writer_waiting and self._direct_ok and not self._direct_spent:
            self._write_now(out.take()[0])  # the latency path (see _write_now)
            return
        self._queued()

    def send_later(self, frame: bytes) -> None:
        """Queue ``frame`` to leave with the next frame queued, or once the
        current greenlet yields to the hub, whichever comes first: a frame
        nobody waits for (a call's ``Demonitor``) costs no write or wake-up of
        its own when more follows at once. On a busy link, as :meth:`send_frame`.

        Raises:
            MessageTooLarge, LinkClosed, ConnectionLost: as :meth:`send_frame`.
        """
        if self.queue or not self._writer_waiting or not self._direct_ok or len(frame) > self._max_out_frame:
            self.send_frame(frame)
            return
        if self.closed:
            raise self.down_error()
        self._held = True
        self.queue.idle = False  # (held, not written at once)
        self.queue.frame(frame)  # (_added leaves it be)
        self._loop.run_callback(self._release)

    def _release(self) -> None:
        """In the hub: held frames nothing followed go out now."""
        if self._held:
            self._held = False
            if self.queue and not self.closed:
                self._queued()

    def down_error(self) -> LinkDown:
        """The error for a send on the closed link: :class:`LinkClosed` when this
        node closed it (``close`` got a term: "normal", "shutdown", ...),
        :class:`ConnectionLost` when it broke (``close`` got an exception)."""
        reason = self.close_reason
        text = f"link to node {self.peer_name!r} is closed: {reason}"
        return ConnectionLost(text) if isinstance(reason, BaseException) else LinkClosed(text)

    def _queued(self) -> None:
        """More waits in the queue: wake the writer, maybe yield to it."""
        if self._writer_waiting:
            self._writer_waiting = False
            self.queue.idle = False
            self._wake.set()
        if self.queue.queued_bytes >= _YIELD_AT and self._yield_ok():
            # A burst is piling up: let the writer put it on the wire now, so
            # the peer decodes while we keep producing (the two overlap).
            gevent.sleep(0)

    def _yield_ok(self) -> bool:
        current = gevent.getcurrent()
        return current not in self.no_wait and current is not self._loop_hub

    def _write_now(self, frame: bytes) -> None:
        """Latency path: the link is idle (the queue empty: ``queue.idle``), so
        try the socket at once, never blocking.

        As asyncio's transports do, the first frame after an idle spell goes
        straight to the socket (sparing a switch to the writer and back); the
        rest of the same burst queues for the writer, which coalesces it.
        What the socket did not take is queued (first: the queue was empty),
        which wakes the writer.
        """
        self._direct_spent = True
        self.queue.idle = False
        self._loop.run_callback(self._refresh_direct)
        if len(frame) > _DIRECT_MAX:
            # A big frame: the socket would take part of it, and the rest be
            # copied to queue it. Queued whole, the writer sends it from a view.
            self.queue.frame(frame)
            return
        try:
            sent = self._send_now(frame)  # type: ignore[misc]
        except OSError:  # EAGAIN, or a broken socket the writer will report
            self.queue.frame(frame)  # (which comes back to _added, and wakes the writer)
            return
        stats = self.stats
        stats.writes += 1
        stats.bytes_out += sent
        if sent == len(frame):
            stats.frames_out += 1
        else:
            self.queue.frame(frame[sent:])

    def _refresh_direct(self) -> None:
        self._direct_spent = False
        self.queue.idle = self._writer_waiting and self._direct_ok and not self.closed

    def _wait_for_space(self) -> None:
        """The queue is full: wait for the writer to take it (or drop the link)."""
        out = self.queue
        current = gevent.getcurrent()
        hub = gevent.get_hub()
        if current in self.no_wait or current is hub:
            # These cannot wait (a reader waiting for its writer could deadlock
            # two nodes whose peers do the same); bound them instead.
            if out.queued_bytes > self._hard_limit:
                reason = ConnectionLost(
                    f"send queue to node {self.peer_name!r} would pass {self._hard_limit} bytes (twice "
                    f"max_queue_bytes) with frames the link's reader, ticker or the hub queue: peer not "
                    "reading; link dropped"
                )
                if current is hub:  # on_closed may block: not in the hub
                    gevent.spawn(self._on_broken, reason)
                    raise ConnectionLost(f"link to node {self.peer_name!r} is closing: {reason}")
                self._on_broken(reason)
                raise ConnectionLost(f"link to node {self.peer_name!r} is closed: {reason}")
            return
        timeout = self.config.send_timeout
        start = monotonic()
        while out.queued_bytes >= self._max_queue and len(out) and not self.closed:
            # The clock runs from the last byte the socket took, not from when
            # the queue filled: only a peer that reads nothing for send_timeout
            # is dropped.
            remaining = max(start, self._progress_at) + timeout - monotonic()
            if remaining <= 0:
                self._on_broken(
                    ConnectionLost(
                        f"send queue to node {self.peer_name!r} stayed full ({self._max_queue} bytes) and "
                        f"the peer took no byte for {timeout}s: the peer is not reading; link dropped"
                    )
                )
                break
            self._space.clear()
            self._space.wait(remaining)
        if self.closed:
            raise self.down_error()

    def run(self) -> None:
        """The writer greenlet: put everything queued on the socket, in one piece per wake-up."""
        sock = self.sock
        stats = self.stats
        out = self.queue
        try:
            while True:
                while not out:
                    if self.closed:
                        return
                    self._drained.set()
                    self._writer_waiting = True
                    out.idle = self._direct_ok and not self._direct_spent and not self.closed
                    self._wake.wait()
                    self._wake.clear()
                if self.closed:
                    return
                was_full = out.queued_bytes >= self._max_queue
                data, frames = out.take()
                self._held = False
                if was_full:
                    self._space.set()
                self._writing = True
                try:
                    # In pieces, noting each one the socket takes: a slow but
                    # steady reader is progress, not a peer that stopped reading.
                    view = memoryview(data)
                    sent, size = 0, len(data)
                    while sent < size:
                        sent += sock.send(view[sent : sent + _WRITE_PIECE])
                        self._progress_at = monotonic()
                finally:
                    self._writing = False
                stats.writes += 1
                stats.frames_out += frames
                stats.bytes_out += size
                if size > _KEEP_MAX:  # (see _KEEP_MAX)
                    del view, data
        except OSError as exc:
            if not self.closed:
                self._on_broken(ConnectionLost(f"writing to node {self.peer_name!r} failed: {exc}"))
        except Exception as exc:  # a bug must not leave a half-dead link behind
            log.exception("link %s: writer failed", self._label)
            self._on_broken(ConnectionLost(f"writer of the link to {self.peer_name!r} failed: {exc!r}"))
