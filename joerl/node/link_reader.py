"""The receiving half of one node link: reading, decoding, dispatching.

This module owns the IO of what a :class:`~joerl.node.connection.Connection`
receives: ``recv -> FrameDecoder.feed -> handler``, once per control message,
in arrival order. On a plain gevent TCP socket, whose handler says which
messages it can take in the hub (``handler.hub_safe``, a set of message
classes: ``Dispatch.on_frame`` lists SEND, SEND_TERMS, REG_SEND and
CALL_REPLY, which only append to a mailbox or wake a waiter, and never wait),
the reading is a libev watcher's callback, in the hub, as raw gevent's own
``recv`` wake-ups are: a message costs no greenlet switch to a reader and
back, only the wake-up of the process it is for (hub -> process -> hub, as a
raw gevent request-response loop). Anything else (another control message,
a bad frame, the end of the stream, an error) is handed, with what follows
it, to the link's reader greenlet, which may wait (the handler's
business), and the watcher stays off until it is done: order on the link is
kept. On any other socket (TLS), or with another handler, the reader
greenlet does it all (``recv``, decode, dispatch, then a wait for readability).
The life cycle and ticks are ``connection.py``'s; the bytes ``protocol.py``'s.
"""

from __future__ import annotations

import logging
from time import monotonic
from typing import Any

import gevent
from gevent.hub import Waiter

from ..errors import ConnectionLost, LinkDown, ProtocolError, SerializationError
from .protocol import FrameError, Message, OversizedFrame

__all__ = ["LinkReader"]

log = logging.getLogger("joerl.node.connection")


class LinkReader:
    """What a link receives: the reader greenlet, and the hub's reads where they may be.

    Made by the :class:`~joerl.node.connection.Connection`, which spawns
    :meth:`run` as the link's reader greenlet and calls :meth:`stop` when the
    link closes (before it closes the socket).

    Args:
        conn: the connection (its ``sock``, ``handler``, ``stats``,
            ``inbound`` decoder, ``acknowledger``, ``messages_in``,
            ``close``, ``closed``, ``config.recv_size``).
        leftover: bytes the handshake read past its end (decoded first).
        writer: the link's :class:`~joerl.node.link_writer.LinkWriter` (a
            reader delivering replies faster than the writer writes yields to it).
        direct: whether the socket is a plain gevent TCP socket.

    Attributes:
        last_read: ``monotonic()`` of the last read delivered (the peer was heard).
        dispatching: True while the reader greenlet delivers (its wait, on a
            full queue say, is not the peer's silence).
        in_hub: True once reads run in the hub.
    """

    __slots__ = (
        "_conn", "_leftover", "_writer", "_direct", "_io", "_parked", "_recv", "_safe", "_size",
        "last_read", "dispatching", "in_hub",
    )  # fmt: skip

    def __init__(self, conn: Any, leftover: bytes, writer: Any, *, direct: bool) -> None:
        self._conn = conn
        self._leftover = leftover
        self._writer = writer
        self._direct = direct
        self._io: Any = None
        self._parked: Waiter | None = None
        self._recv: Any = None
        self._safe: Any = ()
        self._size: int = conn.config.recv_size
        self.last_read = monotonic()
        self.dispatching = False
        self.in_hub = False

    def stop(self) -> None:
        """The link is closing: no more reads in the hub; a parked reader greenlet ends."""
        io = self._io
        if io is not None:
            io.close()
        parked = self._parked
        if parked is not None:
            self._parked = None
            gevent.get_hub().loop.run_callback(parked.switch, None)

    # -- the reader greenlet ----------------------------------------------------------

    def run(self) -> None:
        """The reader greenlet."""
        conn = self._conn
        try:
            if self._leftover:
                data, self._leftover = self._leftover, b""
                if not self.deliver(data):
                    return
            sock = conn.sock
            safe = getattr(conn.handler, "hub_safe", None)
            raw = getattr(sock, "_sock", None) if self._direct else None
            if safe and raw is not None:
                self._run_hub(raw, safe)
            else:
                self._run_greenlet(sock)
        except OSError as exc:
            if not conn.closed:
                conn.close(ConnectionLost(f"reading from node {conn.peer_name!r} failed: {exc}"))
        except Exception as exc:  # a bug must not leave a half-dead link behind
            log.exception("link %s -> %s: reader failed", conn.local.name, conn.peer_name)
            conn.close(ConnectionLost(f"reader of the link to {conn.peer_name!r} failed: {exc!r}"))

    def _run_greenlet(self, sock: Any) -> None:
        """Everything in this greenlet: recv, decode, dispatch, wait for more."""
        conn = self._conn
        recv_size = self._size
        # A plain gevent TCP socket buffers nothing itself, so its fd being
        # readable is the whole story (a TLS one may hold decrypted bytes). Its
        # own read watcher is waited on, the way its recv() waits, so that
        # closing the socket ends the wait as it ends a recv.
        readable = getattr(sock, "_read_event", None) if self._direct else None
        wait: Any = getattr(sock, "_wait", None)
        if wait is None:
            readable = None
        while not conn.closed:
            data = sock.recv(recv_size)
            if not data:
                self._eof()
                return
            if not self.deliver(data):  # (which notes the time of this read)
                return
            if len(data) == recv_size:
                # More is surely waiting: let the rest of the node run
                # (timers, other links) before reading on.
                gevent.idle()
            elif readable is not None:
                # The socket is drained: wait until it is readable rather
                # than try a recv that fails (EAGAIN) first, as gevent's
                # recv would. Less work between a message and its reply.
                wait(readable)

    def _run_hub(self, raw: Any, safe: Any) -> None:
        """Reads in the hub (:meth:`_on_readable`); this greenlet takes what
        they hand it (what the hub may not run) and parks in between."""
        conn = self._conn
        try:  # the first read here, at once, as gevent's recv would (a peer that closed at once is seen now)
            data = raw.recv(self._size)
        except BlockingIOError:
            pass
        else:
            if not data:
                self._eof()
                return
            if not self.deliver(data):
                return
        self._recv = raw.recv
        self._safe = safe
        hub = gevent.get_hub()
        self._io = io = hub.loop.io(raw.fileno(), 1)
        self.in_hub = True
        try:
            while not conn.closed:
                self._parked = waiter = Waiter(hub)
                io.start(self._on_readable)
                work = waiter.get()  # (the watcher is stopped when work comes)
                if work is None:
                    return  # stop(): the link closed
                work[0](*work[1:])
        finally:
            self._parked = None
            io.close()

    def _eof(self) -> None:
        conn = self._conn
        conn.close(ConnectionLost(f"node {conn.peer_name!r} closed the connection"))

    def _failed(self, exc: BaseException) -> None:
        conn = self._conn
        if isinstance(exc, OSError):
            if not conn.closed:
                conn.close(ConnectionLost(f"reading from node {conn.peer_name!r} failed: {exc}"))
        else:
            conn.close(ConnectionLost(f"reader of the link to {conn.peer_name!r} failed: {exc!r}"))

    def _oversized(self, exc: OversizedFrame) -> None:
        self.dispatch(exc.messages)
        self._conn.close(exc)

    def _rest(self, messages: list[Message | FrameError], start: int) -> None:
        """Messages the hub may not deliver, from ``messages[start]`` on."""
        self.dispatching = True
        try:
            self.dispatch(messages, start)
        finally:
            self.dispatching = False
            self.last_read = monotonic()
        self._acknowledge()

    # -- the hub ----------------------------------------------------------------------

    def _hand(self, *work: Any) -> None:
        """In the hub: ``work[0](*work[1:])`` is for the reader greenlet (reads stop until it is done)."""
        self._io.stop()
        parked = self._parked
        if parked is not None:
            self._parked = None
            parked.switch(work)

    def _on_readable(self) -> None:
        """In the hub, the socket readable: recv, decode, deliver (see the module docstring)."""
        conn = self._conn
        recv = self._recv  # (a slot read: no method lookup)
        try:
            data = recv(self._size)
        except BlockingIOError:
            return
        except OSError as exc:
            self._hand(self._failed, exc)
            return
        if not data:
            self._hand(self._eof)
            return
        try:
            stats = conn.stats
            stats.bytes_in += len(data)
            decoder = conn.inbound
            try:
                messages = decoder.feed(data)
            except OversizedFrame as exc:
                self._hand(self._oversized, exc)
                return
            stats.ticks_in = decoder.ticks
            stats.frames_in += len(messages)
            safe = self._safe
            handler = conn.handler
            i = 0
            for msg in messages:
                if msg.__class__ not in safe:
                    self._hand(self._rest, messages, i)
                    return
                i += 1
                try:
                    handler(conn, msg)
                except (SerializationError, ProtocolError) as exc:
                    self._bad_frame(exc)
                except LinkDown:
                    if not conn.closed:  # another link's: the handler's business
                        self._handler_failed(msg)
                except Exception:
                    self._handler_failed(msg)
                if conn.closed:
                    return
            self.last_read = monotonic()
            acker = conn.acknowledger
            if acker is not None and not acker.armed and conn.messages_in != acker.sent:
                acker.arm()  # one ACK per ack_interval, not one per read
        except Exception as exc:  # a bug must not leave a half-dead link behind
            log.exception("link %s -> %s: reader failed", conn.local.name, conn.peer_name)
            self._hand(self._failed, exc)

    # -- both -------------------------------------------------------------------------

    def deliver(self, data: bytes) -> bool:
        """Decode and dispatch (in the reader greenlet); False when the link closed meanwhile."""
        conn = self._conn
        conn.stats.bytes_in += len(data)
        decoder = conn.inbound
        try:
            messages = decoder.feed(data)
        except OversizedFrame as exc:
            self._oversized(exc)
            return False
        conn.stats.ticks_in = decoder.ticks
        conn.stats.frames_in += len(messages)
        self._rest(messages, 0)
        return not conn.closed

    def dispatch(self, messages: list[Message | FrameError], start: int = 0) -> None:
        """``handler(conn, msg)`` for each of ``messages[start:]``, in the reader greenlet."""
        conn = self._conn
        handler = conn.handler
        for msg in messages[start:] if start else messages:
            if msg.__class__ is FrameError:
                self._bad_frame(msg)
                continue
            try:
                handler(conn, msg)
            except (SerializationError, ProtocolError) as exc:
                self._bad_frame(exc)
            except LinkDown:
                if not conn.closed:  # another link's: the handler's business
                    self._handler_failed(msg)
            except Exception:
                self._handler_failed(msg)
            if conn.closed:
                return
            if self._writer.full:
                # Replies fill the queue faster than the writer gets to run:
                # let it (a yield, never a wait; see send_frame).
                gevent.sleep(0)
                if conn.closed:  # (the sleep may have closed it)
                    return

    def _acknowledge(self) -> None:
        conn = self._conn
        acker = conn.acknowledger
        if acker is not None and not acker.armed and conn.messages_in != acker.sent:
            acker.arm()  # one ACK per ack_interval, not one per read

    def _handler_failed(self, msg: Any) -> None:
        conn = self._conn
        conn.stats.handler_errors += 1
        log.exception("link %s -> %s: handler failed on %s", conn.local.name, conn.peer_name, type(msg).__name__)

    def _bad_frame(self, exc: BaseException) -> None:
        conn = self._conn
        stats = conn.stats
        stats.bad_frames += 1
        n = stats.bad_frames
        if n <= 10 or n % 1000 == 0:
            log.warning("link %s -> %s: dropped a bad frame (%d so far): %s", conn.local.name, conn.peer_name, n, exc)
