"""One link with an Erlang node: its handshake over a socket, its reader, writer and ticker.

The sibling of :mod:`~joerl.node.connection` for Erlang's distribution
protocol. The wire is the sans-IO modules' (:mod:`joerl.erlang.handshake`,
:mod:`joerl.erlang.control`); this module only moves bytes:

* :func:`run_handshake` drives an :class:`~joerl.erlang.handshake.ErlangHandshake`
  over a socket within a deadline, asking the node's ``decide(name)`` when a
  dialler names itself;
* :class:`ErlangLink` reads frames (``FrameDecoder``) and hands each control
  message to the node's handler, writes frames (from the writer greenlet,
  which takes everything queued when the sender yields: one ``sendall`` a
  burst; a sender waits while more than ``max_queue_bytes`` are queued), and ticks: a tick goes out when nothing was
  written for a quarter of ``tick_time``, and a peer silent for ``tick_time`` is down
  (Erlang's ``net_ticktime``). The ticker is a repeating libev timer run in
  the hub, on the wall-clock grid the node's own links use (:mod:`~joerl.node.ticks`):
  an idle link costs no greenlet and no timer made per tick.

A bad frame is counted and skipped; a handler that raises is logged and the
link carries on; an oversized frame or a broken socket closes the link once,
with ``on_closed(link, reason)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import monotonic
from typing import Any

import gevent
from gevent import get_hub, getcurrent
from gevent.event import Event

from ..erlang.control import TICK, FrameDecoder, Tick, Unsupported, encode_frame
from ..erlang.decoder import Decoder
from ..erlang.handshake import Connected, ErlangHandshake, NameReceived
from ..errors import ConnectionLost, FrameError, HandshakeError, LinkClosed, OversizedFrame, SimultaneousConnect
from ..ratelimit import TokenBucket
from .ticks import first_tick, unread

__all__ = ["Decision", "ErlangLink", "run_handshake"]

log = logging.getLogger("joerl.node")

_RECV = 65536

#: ``decide(peer_name)`` -> ``"ok"``, ``"dialing"``, ``"connected"`` or ``"refuse"``.
Decision = Callable[[str], str]


def run_handshake(sock: Any, hs: ErlangHandshake, timeout: float, decide: Decision | None = None) -> Connected:
    """Drive ``hs`` over ``sock`` until :class:`Connected` (or raise), within ``timeout`` seconds.

    Raises:
        HandshakeError: refused, wrong cookie, protocol violation, timeout or a
            broken connection (the socket is left to the caller to close).
    """
    timer = gevent.Timeout(timeout)
    timer.start()
    try:
        while True:
            out = hs.data_to_send()
            if out:
                sock.sendall(out)
            data = sock.recv(4096)
            if not data:
                raise hs.closed_error()
            events = hs.feed(data)
            while events:
                event = events.pop(0)
                if isinstance(event, Connected):
                    out = hs.data_to_send()
                    if out:
                        sock.sendall(out)
                    return event
                if isinstance(event, NameReceived):
                    _answer(hs, decide(event.name) if decide is not None else "ok")
                    sock.sendall(hs.data_to_send())
                    events += hs.feed(b"")
    except gevent.Timeout as t:
        if t is not timer:
            raise
        raise HandshakeError(f"the Erlang handshake did not complete within {timeout}s") from None
    except HandshakeError:
        _send_quietly(sock, hs.data_to_send())
        raise
    except OSError as exc:
        raise HandshakeError(f"the connection broke during the Erlang handshake: {exc}") from None
    finally:
        timer.close()


def _answer(hs: ErlangHandshake, decision: str) -> None:
    if decision == "refuse":
        hs.refuse()
    else:
        status = hs.accept(dialing=decision == "dialing", connected=decision == "connected")
        if status == "nok":
            raise SimultaneousConnect("nok", "simultaneous connect: this node's own dial survives", by_peer=False)


def _send_quietly(sock: Any, data: bytes) -> None:
    if data:
        try:
            sock.sendall(data)
        except OSError:
            pass


class ErlangLink:
    """A running link with an Erlang node (see the module docstring).

    Args:
        sock: the connected socket, after the handshake.
        connected: the handshake's result (peer name, creation, flags, leftover bytes).
        tick_time: Erlang's ``net_ticktime``, in seconds.
        handler: ``handler(link, message)`` for every control message (the reader greenlet).
        on_closed: ``on_closed(link, reason)``, once, when the link closes.
        max_frame_size: the largest frame accepted.
        max_queue_bytes: bytes queued behind a write in progress past which a
            sending greenlet waits for the writer (backpressure; the hub never waits).
        none_atom: the atom that is Python's ``None`` both ways (``"nil"`` for Elixir).
    """

    def __init__(
        self,
        sock: Any,
        connected: Connected,
        *,
        tick_time: float,
        handler: Callable[[ErlangLink, Any], None],
        on_closed: Callable[[ErlangLink, str], None],
        max_frame_size: int,
        max_queue_bytes: int = 8 * 1024 * 1024,
        none_atom: str = "undefined",
    ) -> None:
        self.sock = sock
        self.peer_name = connected.peer
        self.peer_creation = connected.peer_creation
        self.flags = connected.flags
        self.tick_time = tick_time
        self.closed = False
        self.reason: str | None = None
        #: Frames whose bytes did not decode, and operations joerl does not handle (both dropped).
        self.bad_frames = 0
        self.unsupported = 0
        #: Ticks received and sent.
        self.ticks_in = 0
        self.ticks_out = 0
        self._handler = handler
        self._on_closed = on_closed
        self._frames = FrameDecoder(max_frame_size, Decoder(none_atom=none_atom))
        self.none_atom = none_atom
        self._leftover = connected.leftover
        self._out: list[bytes] = []
        self._queued = 0
        self.max_queue_bytes = max_queue_bytes
        self._drained = Event()
        self._busy = False
        self._wake = Event()
        self._done = Event()
        self._hub = get_hub()
        self._last_in = self._last_out = monotonic()
        self._greenlets: list[gevent.Greenlet] = []
        self._tick_timer: Any = None
        self._log_limit = TokenBucket(0.2, 3.0)  # a bad peer's frames: a few lines, then one every 5 s

    def __repr__(self) -> str:
        return f"<ErlangLink to {self.peer_name}{' closed' if self.closed else ''}>"

    @property
    def queued(self) -> int:
        """Bytes waiting behind the write in progress."""
        return self._queued

    def start(self) -> None:
        """Spawn the reader and writer greenlets; start the tick timer."""
        self._greenlets = [gevent.spawn(self._read), gevent.spawn(self._write)]
        interval = self.tick_time / 4.0  # Erlang's ticker period: net_ticktime / 4
        self._tick_timer = timer = self._hub.loop.timer(first_tick(interval), interval)
        timer.start(self._tick)

    # -- sending ----------------------------------------------------------------------

    def send(self, msg: Any) -> None:
        """Send one control message (encoded here: a term with no Erlang form raises at once).

        Raises:
            TermEncodeError: the message has no Erlang form.
            LinkDown: the link is closed.
        """
        self.send_bytes(encode_frame(msg, self.none_atom))

    def send_bytes(self, data: bytes) -> None:
        """Write whole frames, in order with every other write.

        Raises:
            LinkDown: the link is closed.
        """
        if self.closed:
            raise LinkClosed(f"the link to {self.peer_name} is closed ({self.reason})")
        self._out.append(data)
        self._queued += len(data)
        if not self._busy:
            self._wake.set()  # the writer takes everything queued when this greenlet yields: one sendall a burst
        if self._queued > self.max_queue_bytes and getcurrent() is not self._hub:
            self._drained.clear()
            self._drained.wait()  # backpressure: the peer reads slower than we send (the hub never waits)
            if self.closed:
                raise LinkClosed(f"the link to {self.peer_name} closed ({self.reason})")

    def flush(self, timeout: float = 1.0) -> bool:
        """Wait (up to ``timeout`` seconds) until what is queued is written; False if it was not."""
        if getcurrent() is self._hub:
            return not self._out
        while (self._out or self._busy) and not self.closed:
            self._drained.clear()
            self._wake.set()
            if not self._drained.wait(timeout):
                return False
        return not self._out

    def _drain(self) -> None:
        self._busy = True
        try:
            while self._out:
                chunk = b"".join(self._out) if len(self._out) > 1 else self._out[0]
                self._out.clear()
                self._queued = 0
                self.sock.sendall(chunk)
            self._last_out = monotonic()
        except OSError as exc:
            self._busy = False
            self._drained.set()
            self.close(f"write failed: {exc}")
            raise ConnectionLost(f"the link to {self.peer_name} broke: {exc}") from None
        self._busy = False
        self._drained.set()

    def _write(self) -> None:
        while not self.closed:
            self._wake.wait()
            self._wake.clear()
            if not self._busy and self._out and not self.closed:
                try:
                    self._drain()
                except ConnectionLost:
                    return

    # -- receiving ----------------------------------------------------------------------

    def _read(self) -> None:
        reason = "closed by the peer"
        data = self._leftover
        self._leftover = b""
        try:
            while not self.closed:
                if data:
                    self._last_in = monotonic()
                    try:
                        events = self._frames.feed(data)
                    except OversizedFrame as exc:
                        self._handle(exc.messages)
                        reason = str(exc)
                        break
                    self._handle(events)
                data = self.sock.recv(_RECV)
                if not data:
                    break
        except OSError as exc:
            reason = f"read failed: {exc}"
        self.close(reason)

    def _handle(self, events: list[Any]) -> None:
        for event in events:
            cls = event.__class__
            if cls is Tick:
                self.ticks_in += 1
                continue
            if cls is FrameError:
                self.bad_frames += 1
                if self._log_limit.take():
                    log.warning("link to %s: dropped a frame that does not decode: %s (%d in all)",
                                self.peer_name, event, self.bad_frames)  # fmt: skip
                continue
            if cls is Unsupported:
                self.unsupported += 1
                log.debug("link to %s: dropped unsupported operation %d", self.peer_name, event.op)
                continue
            try:
                self._handler(self, event)
            except Exception:  # noqa: BLE001 - a bad message never takes the link down
                self.bad_frames += 1
                if self._log_limit.take():
                    log.exception("link to %s: dropped a %s it could not apply (%d bad in all)",
                                  self.peer_name, cls.__name__, self.bad_frames)  # fmt: skip

    def _tick(self) -> None:
        """Every quarter tick time, in the hub (the timer's callback): a peer
        silent for ``tick_time`` is down; a tick goes out when nothing was
        written for the interval."""
        if self.closed:
            return
        now = monotonic()
        silent = now - self._last_in
        if silent > self.tick_time and not unread(self.sock):  # (bytes unread while our hub was late: ticks.py)
            self._tick_timer.close()
            gevent.spawn(self.close, f"net_tick_timeout: nothing heard for {self.tick_time}s")  # on_closed may block
            return
        if now - self._last_out >= self.tick_time / 4.0 and not self._out and not self._busy:
            try:
                self.send_bytes(TICK)  # (in the hub: queued for the writer, never waits)
                self.ticks_out += 1
            except LinkClosed:
                return

    # -- closing --------------------------------------------------------------------------

    def close(self, reason: str = "closed") -> None:
        """Close the link (once): the socket, the greenlets, then ``on_closed``."""
        if self.closed:
            return
        self.closed = True
        self.reason = reason
        if self._tick_timer is not None:
            self._tick_timer.close()
        try:
            self.sock.close()
        except OSError:  # pragma: no cover
            pass
        current = getcurrent()
        for g in self._greenlets:
            if g is not current:
                g.kill(block=False)
        self._wake.set()
        self._drained.set()
        self._done.set()
        log.info("link to Erlang node %s closed: %s", self.peer_name, reason)
        self._on_closed(self, reason)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until the link is closed (True), or ``timeout`` passes (False)."""
        return bool(self._done.wait(timeout))
