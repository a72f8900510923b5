"""One running node link: its socket and greenlets, once the handshake is done.

This module owns the IO of an established link to one peer node and its life
cycle: a :class:`Connection` reads with its
:class:`~joerl.node.link_reader.LinkReader` (``recv -> FrameDecoder.feed ->
handler``, in the hub where the handler allows), keeps an idle link alive and
declares a silent peer down with a tick timer (in the hub), and closes once, telling why
(:class:`~joerl.errors.LinkClosed`: this node closed it;
:class:`~joerl.errors.ConnectionLost`: it broke). What it sends goes through
its :class:`~joerl.node.link_writer.LinkWriter` (the queue, backpressure and
the writer greenlet, which coalesces every frame waiting into one write), and
the messages one process sends another meanwhile share one frame
(:attr:`Connection.send_term` for plain terms, :attr:`Connection.send_payload`
for the codec's payloads; the batching is ``batching.py``'s, sans-IO).
:class:`LinkConfig` (``config.py``) holds the settings of a link, handshake
included. Setting a link up (the handshake over a socket) belongs to
``link_setup.py``; routing, the node tables (one link per peer, reconnection)
and payload serialization to the node layer; the bytes to ``protocol.py``.

Typical use by a node, with a connection from
:func:`~joerl.node.link_setup.dial` or :func:`~joerl.node.link_setup.accept_handshake`::

    node.register(conn)          # before start(): no message arrives before it
    conn.start()
    if not conn.send_term(sender_pid, to_pid, msg):    # a plain term travels as itself
        conn.send_payload(sender_pid, to_pid, codec.encode(msg))
    conn.send(Link(sender_pid, to_pid))                # any other control message
    ...
    conn.flush()
    conn.close()
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import Any

import gevent
from gevent import socket as gsocket
from gevent.event import Event

from ..errors import ConnectionLost, LinkDown
from ..pid import Pid
from .compression import for_link
from .config import LinkConfig
from .delivery import Acknowledger, report_unconfirmed
from .hello import FLAG_TERM_MAPS
from .link_reader import LinkReader
from .link_writer import LinkWriter
from .protocol import (
    FLAG_ACK,
    FLAG_SEND_TERMS,
    TICK_FRAME,
    Established,
    FrameDecoder,
    FrameEncoder,
    Message,
    NodeIdentity,
    PeerHello,
    RegSend,
    Role,
    Send,
    Tick,
)
from .ticks import first_tick, unread

__all__ = [
    "Connection",
    "LinkConfig",
    "LinkStats",
]

log = logging.getLogger(__name__)

#: ``handler(conn, message)``: runs in the link's reader greenlet (or in the
#: hub, for the classes in its ``hub_safe``), once per control message, in arrival order.
Handler = Callable[["Connection", Message], None]
#: ``on_closed(conn, reason)``: runs once, in the greenlet that closed the link.
ClosedCallback = Callable[["Connection", Any], None]


@dataclass
class LinkStats:
    """Counters of one link (plain ints, read them any time)."""

    frames_in: int = 0  #: control messages and bad frames received (ticks excluded)
    frames_out: int = 0  #: frames written (ticks included)
    bytes_in: int = 0
    bytes_out: int = 0
    writes: int = 0  #: ``sendall`` calls: frames_out / writes is the batching factor
    bad_frames: int = 0  #: frames dropped: undecodable, or refused by the handler's decoding
    handler_errors: int = 0  #: other exceptions raised by the handler (logged)
    ticks_in: int = 0
    ticks_out: int = 0
    tick_timeouts: int = 0  #: 1 once the link was declared down for the peer's silence


class Connection:
    """An established link to one peer node.

    Made by :func:`~joerl.node.link_setup.dial` or
    :func:`~joerl.node.link_setup.accept_handshake` (not started); call
    :meth:`start` once the node has registered it. Frames queued before
    ``start`` are kept and written then.

    Args:
        sock: the connected (gevent) socket, handshake done; the connection owns it.
        local: our identity.
        established: the handshake's result (its leftover bytes are decoded first).
        role: which side dialled.
        config: link settings.
        handler: ``handler(conn, msg)`` for every control message; runs in the
            reader greenlet, so a slow handler stalls this link's reads (or in
            the hub, for the message classes in ``handler.hub_safe``, if it
            has that attribute: see ``link_reader.py``). A
            ``SerializationError`` or ``ProtocolError`` it raises counts the
            frame as bad (logged, dropped); any other exception is logged and
            counted in ``stats.handler_errors``. The link survives both.
        on_closed: ``on_closed(conn, reason)``, called exactly once when the
            link closes, in the greenlet that closed it, before
            :meth:`wait_closed` returns. ``reason`` is what :meth:`close` got:
            ``"normal"`` by default, or a ``ConnectionLost`` (peer closed,
            write failed, tick timeout, send queue stuck), an
            ``OversizedFrame``, ...

    Attributes:
        peer: the peer's HELLO (name, node_id, creation, flags, tick_ms, max_frame).
        peer_name: ``peer.name``.
        flags: capabilities in use (both sides' flags ANDed).
        version: protocol version in use.
        status: ``"ok"`` or ``"ok_simultaneous"``.
        encoder: a :class:`FrameEncoder` bounded by the peer's max frame size.
        stats: a :class:`LinkStats`.
        closed: True once :meth:`close` ran (for whatever reason).
        close_reason: why the link closed (None while open).
        acks, messages_in, unconfirmed, inbound, outbound: delivery acknowledgement
            (``delivery.py``): whether it is on, messages taken off the link, set
            at close: those handed to it not acknowledged; the decoder, the queue.
        send_term: ``send_term(sender, to, msg) -> bool``: queue ``msg`` if it
            is a plain term (``FrameEncoder.term``); False when it is not
            (encode it with the serialization codec and use ``send_payload``).
            Plain terms queued one after another from one sender to one
            process, while the writer is busy, go out as one SEND_TERMS frame
            (``OutboundBatcher.term``). Backpressure and errors as :meth:`send_frame`.
        send_payload: ``send_payload(sender, to, payload)``: queue a message
            whose serialization codec bytes are ``payload``; a burst of them
            to one process shares one SEND frame (``OutboundBatcher.payload``).
            Backpressure and errors as :meth:`send_frame`.

    Sending on a closed link raises :class:`~joerl.errors.LinkClosed` when
    this node closed it (``close`` got a term: ``"normal"``, ``"shutdown"``,
    ``"noconnection"`` for a replaced link, ...) and
    :class:`~joerl.errors.ConnectionLost` when it broke (``close`` got an
    exception: the peer closed, a read or write failed, missed ticks, a full
    queue, an oversized frame). Catch :class:`~joerl.errors.LinkDown` for both.
    """

    def __init__(
        self,
        sock: Any,
        local: NodeIdentity,
        established: Established,
        role: Role,
        config: LinkConfig | None = None,
        *,
        handler: Handler | None = None,
        on_closed: ClosedCallback | None = None,
    ) -> None:
        self.sock = sock
        self.local = local
        self.role = role
        self.config = config = config or LinkConfig()
        self.peer: PeerHello = established.peer
        self.peer_name: str = established.peer.name
        self.flags: int = established.flags
        self.version: int = established.version
        self.status: str = established.status
        self.handler = handler
        self.on_closed = on_closed
        self.stats = LinkStats()
        self.encoder = FrameEncoder(
            self.peer.max_frame,
            terms=bool(self.flags & FLAG_SEND_TERMS),
            maps=bool(self.flags & FLAG_TERM_MAPS),
            peer=self.peer.name,
        )
        self.close_reason: Any = None
        self.acks = bool(self.flags & FLAG_ACK)
        self.messages_in = 0
        self.unconfirmed = 0
        self.acknowledger: Acknowledger | None = None
        peer_tick = self.peer.tick_ms / 1000.0 if self.peer.tick_ms else config.tick_time
        #: Seconds between checks of the ticker: a tick goes out when nothing
        #: was written during one interval.
        self.tick_interval: float = min(config.tick_time, peer_tick) / 4.0
        self.inbound = self._decoder = FrameDecoder(config.max_frame_size)
        compressor, self._decoder.inflate = for_link(config, self.peer.compression)  # (off unless both offer)
        self.encoder.compress_with(compressor)
        # Immediate writes (see link_writer.py) only on a plain gevent TCP socket,
        # whose send() takes a zero timeout; a TLS socket always uses the writer.
        self._direct_ok = config.wrap_socket is None and type(sock) is gsocket.socket
        self._writer = LinkWriter(
            sock, self.encoder, config, self.stats, self.peer_name, f"{local.name} -> {self.peer_name}",
            direct=self._direct_ok, on_broken=self.close,
        )  # fmt: skip
        # The hot path, bound straight to the queue (see the class docstring).
        self.outbound = queue = self._writer.queue
        self.send_term: Callable[[Pid | None, Pid, Any], bool] = queue.term
        self.send_payload: Callable[[Pid | None, Pid, bytes], None] = queue.payload
        self._reading = LinkReader(self, established.leftover, self._writer, direct=self._direct_ok)
        self._closed_event = Event()
        #: A plain attribute (read once per message received, link_reader.py): only close() sets it.
        self.closed = False
        self._started = False
        self._greenlets: list[gevent.Greenlet] = []
        self._reader: gevent.Greenlet | None = None
        self._tick_timer: Any = None  # a repeating libev timer: ticks cost no greenlet (see _tick)
        self._tick_mark = -1

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("up" if self._started else "new")
        return f"<Connection {self.local.name}->{self.peer_name} {self.role.value} {state}>"

    @property
    def queued_bytes(self) -> int:
        """What the outgoing queue holds, in bytes (``OutboundBatcher.queued_bytes``)."""
        return self._writer.queue.queued_bytes

    @property
    def silent_for(self) -> float:
        """Seconds since the peer was last heard from (a frame or a tick)."""
        return monotonic() - self._reading.last_read

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Spawn the reader and writer greenlets; start the tick timer.

        Raises:
            ValueError: no handler was given.
            RuntimeError: already started.
            LinkDown: the connection was closed before it started.
        """
        if self.handler is None:
            raise ValueError("set a handler before starting the connection")
        if self._started:
            raise RuntimeError(f"{self!r} is already started")
        if self.closed:
            raise self._writer.down_error()
        self._started = True
        self._reading.last_read = monotonic()
        self._reader = gevent.spawn(self._reading.run)
        writer = gevent.spawn(self._writer.run)
        self._tick_timer = timer = gevent.get_hub().loop.timer(first_tick(self.tick_interval), self.tick_interval)
        timer.start(self._tick)
        if self.acks:
            self.acknowledger = Acknowledger(self, self.config.ack_interval)
        self._writer.no_wait = (self._reader,)
        self._greenlets = [self._reader, writer]
        for g, what in zip(self._greenlets, ("reader", "writer"), strict=False):
            g.name = f"joerl-link-{what}:{self.local.name}->{self.peer_name}"

    def close(self, reason: Any = "normal") -> None:
        """Close the link (idempotent); frames still queued are dropped.

        Closes the socket, which ends the reader and writer; then calls
        ``on_closed(self, reason)`` once. Use :meth:`flush` first for a
        graceful close. Never blocks.
        """
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        if self._tick_timer is not None:
            self._tick_timer.close()
        self.outbound.clear()  # (first: what joined its open batch uncounted counts in handed)
        if self.acks:
            self.unconfirmed = report_unconfirmed(self, reason)  # (and stops the ACK timer)
        self._reading.stop()  # (before the socket closes: reads in the hub watch its fd)
        self._writer.stop(reason)
        try:
            self.sock.close()
        except OSError:  # pragma: no cover - closing a socket hardly fails
            pass
        if reason == "normal" or reason == "shutdown":
            log.debug("link %s -> %s closed: %s", self.local.name, self.peer_name, reason)
        else:
            log.warning("link %s -> %s closed: %s", self.local.name, self.peer_name, reason)
        callback = self.on_closed
        if callback is not None:
            try:
                callback(self, reason)
            except Exception:
                log.exception("on_closed callback of %r failed", self)
        self._closed_event.set()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the link is closed and its greenlets have ended.

        Returns:
            True if so within ``timeout`` seconds.
        """
        deadline = None if timeout is None else monotonic() + timeout
        if not self._closed_event.wait(timeout):
            return False
        current = gevent.getcurrent()
        others = [g for g in self._greenlets if g is not current]
        remaining = None if deadline is None else max(0.0, deadline - monotonic())
        gevent.joinall(others, timeout=remaining)
        return all(g.dead for g in others)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued frame, and an ACK of what this side took
        off the link, has been handed to the socket.

        Returns:
            True when the queue drained, False on timeout or if the link closed.
        """
        if self.acknowledger is not None:
            self.acknowledger.flush()
        return self._writer.flush(timeout)

    # -- sending ---------------------------------------------------------------

    def send(self, item: Message | Tick | bytes) -> None:
        """Queue a control message (encoded here) or an already encoded frame.

        Never blocks on the socket; blocks cooperatively only while the
        outgoing queue is full (see :meth:`send_frame`).

        Raises:
            LocalProtocolError: the message cannot be encoded or is too large for the peer.
            LinkDown: the link is closed (:class:`LinkClosed` when this node
                closed it, else ``ConnectionLost``; see the class docstring).
        """
        self.send_frame(item if item.__class__ is bytes else self.encoder.encode(item))  # type: ignore[arg-type]
        self.outbound.handed += item.__class__ is RegSend or item.__class__ is Send  # (what ACK counts)

    def send_later(self, msg: Message) -> None:
        """:meth:`send` for a message nobody waits for (a call's ``Demonitor``):
        it leaves with the next frame, or when this greenlet yields (``LinkWriter.send_later``)."""
        self._writer.send_later(self.encoder.encode(msg))

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
            LocalProtocolError: the frame exceeds the peer's max frame size.
            LinkClosed: this node closed the link.
            ConnectionLost: the link broke, or was dropped for either reason.
        """
        self._writer.send_frame(frame)

    def _tick(self) -> None:
        """Every ``tick_interval``, in the hub (a libev timer's callback: an
        idle link costs no greenlet switch and no timer made per tick): a peer
        silent for the tick time is declared down; a tick goes out when
        nothing was written during the interval."""
        if self.closed:
            return
        limit = self.config.tick_time
        stats = self.stats
        reading = self._reading
        silent = monotonic() - reading.last_read
        if silent > limit and not reading.dispatching and not unread(self.sock):
            # (Time our reader spends delivering, e.g. waiting on a full
            # bounded mailbox, is ours, not the peer's silence; so is what
            # waits in the socket while our hub was late: ticks.py.)
            stats.tick_timeouts += 1
            reason = ConnectionLost(
                f"node {self.peer_name!r} sent nothing for {silent:.1f}s (tick time {limit}s): declared down"
            )
            self._tick_timer.close()
            gevent.spawn(self.close, reason)  # on_closed may block: not in the hub
            return
        if stats.bytes_out == self._tick_mark and not self._writer.queue:
            stats.ticks_out += 1
            before = stats.bytes_out
            try:
                self.send_frame(TICK_FRAME)
            except LinkDown:
                return
            # Idle again next time means nothing but this tick went out (it
            # may have been written at once, or be queued for the writer).
            self._tick_mark = before + len(TICK_FRAME)
        else:
            self._tick_mark = stats.bytes_out
