"""The port mapper daemon: Erlang's EPMD protocol and joerl's extension on gevent.

This module owns the daemon's state (one table of registered names, Erlang's
and joerl's alike, and the remembered old names that decide creations) and
the connection handling on a :class:`gevent.server.StreamServer`: which
request each connection may make, and what the daemon answers. The bytes are
:mod:`joerl.epmd.protocol`'s business, the name table (creations, old names)
:mod:`._table`'s, and the per-address limits :mod:`._admission`'s.

Behaviour, as Erlang's ``epmd`` 25 has it:

- one Erlang request per connection; the daemon replies and closes, except
  after ALIVE2, whose connection holds the registration: when it closes, or
  sends any byte, the name is gone;
- creations: per name, ``max(4, now + 1)`` the first time, plus one at each
  new registration; a node of protocol version < 6 gets ``cr % 3 + 1``;
- a taken name is refused (``v 1 99``); malformed input closes the
  connection without a reply; ALIVE2, KILL, STOP and DUMP are served to
  loopback peers only (and to peers connecting from the daemon's own address);
- an unregistered connection idle for ``packet_timeout`` is closed.

Strangers cannot lock clients out (issue 15), though loopback peers are
exempt from the per-address limits: a connection must send a whole first
request within ``request_timeout`` (a few seconds; a client sends it as soon
as it connects), and a new connection that fills the daemon
(``max_connections``) evicts the oldest one that has not sent a whole
request yet, else the oldest that holds no registration (see
:class:`._admission.Occupancy`). Registrations are never evicted.

joerl's extension registrations last as long as their connection *and* their
keep-alives: one that sends none for ``keepalive_timeout`` (measured on the
injectable ``clock``) is dropped, so a half-open connection cannot hold a
name for ever. They are accepted from the daemon's own host only, and, when
the daemon is a cluster's shared port mapper (``cookie``), from other hosts
that prove the cookie with an HMAC (:mod:`._auth`; see docs/epmd.md).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket as _stdsocket
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.server import StreamServer
from gevent.socket import socket as GSocket

from ..ratelimit import TokenBucket
from . import protocol as p
from ._admission import Admission, Occupancy
from ._classic_service import ClassicService
from ._ext_service import EXT_TYPES, ExtService
from ._table import REMEMBERED_NAMES, Entry, NameTable

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_MAX_CONNECTIONS", "DEFAULT_REQUEST_TIMEOUT", "REMEMBERED_NAMES", "EpmdServer"]

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1:4369"
DEFAULT_MAX_CONNECTIONS = 4096
DEFAULT_MAX_PER_ADDRESS = 256  # connections at once from one remote address
DEFAULT_RATE_PER_ADDRESS = 100.0  # new connections per second from one remote address
DEFAULT_REQUEST_TIMEOUT = 2.0  # seconds a new connection has to send a whole first request


class _Conn:
    """One accepted connection and the registration it holds, if any."""

    __slots__ = ("sock", "peer", "local", "fd", "entry", "nonce")

    def __init__(self, sock: GSocket, peer: Any, local: bool) -> None:
        self.sock = sock
        self.peer = peer
        self.local = local
        self.fd = sock.fileno()
        self.entry: Entry | None = None
        self.nonce: bytes | None = None

    def describe(self) -> str:
        return _peer_text(self.peer)

    def shutdown(self) -> None:
        """Wake the handler reading this connection (it then cleans up)."""
        try:
            self.sock.shutdown(_stdsocket.SHUT_RDWR)
        except OSError:
            pass


class _Stop(Exception):
    """End this connection (quietly)."""


class EpmdServer:
    """The port mapper daemon.

    Args:
        address: ``"host:port"`` to listen on (port 0 picks a free one).
        keepalive_timeout: seconds without a keep-alive after which a joerl
            registration is dropped.
        packet_timeout: seconds an unregistered connection may stay idle.
        request_timeout: seconds a new connection has to send a whole first
            request (at most ``packet_timeout``).
        max_connections: connections served at once; a new connection that
            reaches this many evicts the oldest one that has not sent a
            whole request, else the oldest that holds no registration;
            with nothing to evict, further ones wait in the listen backlog.
        max_metadata: largest metadata (bytes of msgpack) in a registration.
        cookie: the cluster's cookie: a shared port mapper, which accepts
            registrations from other hosts that carry its HMAC (None: from
            its own host only).
        relaxed_command_check: obey KILL with live names and STOP (as
            ``epmd -relaxed_command_check``).
        clock: monotonic seconds, for keep-alive expiry (tests inject one).
        wallclock: seconds since the epoch, for creations.
        sweep_interval: seconds between expiry sweeps (default:
            ``keepalive_timeout / 4``, at most 10).
        backlog: listen backlog.
        max_per_address: connections served at once from one remote address.
        rate_per_address: new connections per second from one remote address
            (in bursts of as many; 0 admits none).
        limit_loopback: apply the two per-address limits to loopback peers too
            (by default local nodes and tools are trusted, as epmd trusts them).
    """

    def __init__(
        self,
        address: str | tuple[str, int] = DEFAULT_ADDRESS,
        *,
        keepalive_timeout: float = 60.0,
        packet_timeout: float = 60.0,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_metadata: int = p.MAX_METADATA,
        cookie: bytes | None = None,
        relaxed_command_check: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        sweep_interval: float | None = None,
        backlog: int = 1024,
        max_per_address: int = DEFAULT_MAX_PER_ADDRESS,
        rate_per_address: float = DEFAULT_RATE_PER_ADDRESS,
        limit_loopback: bool = False,
    ) -> None:
        self._bind = p.parse_address(address)
        self.keepalive_timeout = keepalive_timeout
        self.packet_timeout = packet_timeout
        if not request_timeout > 0:
            raise ValueError(f"request_timeout must be positive, got {request_timeout!r}")
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self._clock = clock
        self._sweep_interval = sweep_interval or min(10.0, keepalive_timeout / 4)
        self._backlog = backlog
        self.limit_loopback = limit_loopback
        self._admission = Admission(max_per_address, rate_per_address, clock)
        self.refused = 0  # connections closed by the per-address limits
        self.request_timeouts = 0  # connections closed: no whole first request within request_timeout
        self._refusal_log = TokenBucket(1.0 / _Listener.LOG_INTERVAL, burst=1)
        self._evicted_unlogged = self._refused_unlogged = 0
        self._table = NameTable(clock, wallclock)
        self._classic_service = ClassicService(
            self._table, relaxed_command_check=relaxed_command_check, kill=lambda: gevent.spawn(self.stop)
        )
        self._ext_service = ExtService(self._table, clock, cookie=cookie, max_metadata=max_metadata)
        self._conns: Occupancy[_Conn] = Occupancy(max_connections, lambda c: c.entry is not None)
        self._server: StreamServer | None = None
        self._sweeper: gevent.Greenlet | None = None
        self._stopped = Event()
        self._stopped.set()

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Bind and start serving (returns at once).

        Raises:
            OSError: the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("server already started")
        host, port = self._bind
        family = _stdsocket.AF_INET6 if ":" in host else _stdsocket.AF_INET
        listener = GSocket(family, _stdsocket.SOCK_STREAM)
        try:
            listener.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(self._backlog)
        except OSError:
            listener.close()
            raise
        self._server = _Listener(listener, self._handle, spawn=Pool(self.max_connections))
        self._server.start()
        self._stopped.clear()
        self._sweeper = gevent.spawn(self._sweep_loop)
        log.info("listening on %s", p.format_address(*self.address))

    def stop(self, timeout: float = 1.0) -> None:
        """Stop listening, drop every connection (and so every name) and return."""
        server, self._server = self._server, None
        if server is None:
            return
        if self._sweeper is not None:
            self._sweeper.kill()
            self._sweeper = None
        server.close()
        for conn in list(self._conns):
            conn.shutdown()
        server.stop(timeout=timeout)
        self._stopped.set()
        log.info("stopped")

    def serve_forever(self) -> None:
        """Start if needed, and block until :meth:`stop` (or a KILL request)."""
        if self._server is None:
            self.start()
        self._stopped.wait()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the server stops; True if it did within ``timeout``."""
        return bool(self._stopped.wait(timeout))

    def __enter__(self) -> EpmdServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` actually listened on."""
        if self._server is None:
            return self._bind
        host, port = self._server.socket.getsockname()[:2]
        return host, port

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def relaxed_command_check(self) -> bool:
        """Whether KILL with live names, and STOP, are obeyed."""
        return self._classic_service.relaxed_command_check

    @property
    def shared(self) -> bool:
        """Whether registrations from other hosts that carry the cookie's HMAC are accepted."""
        return self._ext_service.shared

    @property
    def max_metadata(self) -> int:
        """Largest metadata (bytes of msgpack) in a registration."""
        return self._ext_service.max_metadata

    @property
    def max_per_address(self) -> int:
        """Connections served at once from one remote address."""
        return self._admission.max_per_address

    @property
    def rate_per_address(self) -> float:
        """New connections per second from one remote address."""
        return self._admission.rate_per_address

    # -- state ----------------------------------------------------------------

    def nodes(self) -> list[p.NodeInfo]:
        """The registered nodes, oldest first."""
        return self._table.nodes()

    def lookup(self, name: str) -> p.NodeInfo | None:
        e = self._table.get(name)
        return None if e is None else e.node

    def last_seen(self, name: str) -> float | None:
        """When (on ``clock``) the registration of ``name`` last showed life."""
        e = self._table.get(name)
        return None if e is None else e.last_seen

    @property
    def connection_count(self) -> int:
        """Connections served now."""
        return len(self._conns)

    @property
    def evictions(self) -> int:
        """Connections evicted to make room for newer ones (at ``max_connections``)."""
        return self._conns.evictions

    def expire_stale(self) -> list[str]:
        """Drop joerl registrations whose last keep-alive is older than the
        timeout (on ``clock``); return their names. The sweeper calls this."""
        stale = self._table.stale(self._clock() - self.keepalive_timeout)
        for e in stale:
            log.warning("expired %s: no keep-alive for %.0fs", e.node.name, self.keepalive_timeout)
            self._table.evict(e, why=None)
        return [e.node.name for e in stale]

    def _sweep_loop(self) -> None:
        while True:
            gevent.sleep(self._sweep_interval)
            try:
                self.expire_stale()
            except Exception:  # never let the sweeper die
                log.exception("expiry sweep failed")

    # -- connections ------------------------------------------------------------

    def _peer_is_local(self, sock: GSocket, peer: Any) -> bool:
        """Loopback peers, and peers connecting from the daemon's own address."""
        try:
            ip = ipaddress.ip_address(peer[0].split("%")[0])
            if ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback):
                return True
            return bool(peer[0] == sock.getsockname()[0])
        except (OSError, ValueError, IndexError, TypeError):
            return False

    def _handle(self, sock: GSocket, peer: Any) -> None:
        local = self._peer_is_local(sock, peer)
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        limited = self.limit_loopback or not local
        if limited and not self._admission.admit(ip):
            self.refused += 1
            self._refused_unlogged += 1
            self._log_pressure(_peer_text(peer))
            sock.close()
            return
        conn = _Conn(sock, peer, local)
        victim = self._conns.add(conn)
        if victim is not None:
            self._evicted_unlogged += 1
            self._log_pressure(_peer_text(peer))
            victim.shutdown()
        why = "connection closed"
        try:
            self._serve(conn)
        except _Stop as stop:
            why = str(stop) or why
        except p.EpmdProtocolError as exc:
            why = f"protocol error: {exc}"
            log.debug("closing %s: %s", _peer_text(peer), exc)
        except (OSError, gevent.Timeout) as exc:
            why = f"connection lost: {exc}"
        except Exception:  # a handler never takes the daemon down
            why = "internal error"
            log.exception("error serving %s", _peer_text(peer))
        finally:
            self._conns.discard(conn)
            if limited:
                self._admission.release(ip)
            if conn.entry is not None:
                self._table.remove(conn.entry, why)
                conn.entry = None
            sock.close()

    def _log_pressure(self, peer: str) -> None:
        """One line per interval for refusals and evictions (not one per connection)."""
        if self._refusal_log.take():
            log.warning(
                "under connection pressure (latest from %s): %d connection(s) refused by the per-address "
                "limits and %d evicted at max_connections=%d since the last report",
                peer,
                self._refused_unlogged,
                self._evicted_unlogged,
                self.max_connections,
            )
            self._refused_unlogged = self._evicted_unlogged = 0

    def _serve(self, conn: _Conn) -> None:
        sock = conn.sock
        deadline = time.monotonic() + min(self.request_timeout, self.packet_timeout)
        decoder = p.RequestDecoder()
        first = True
        while True:
            if first:  # the whole first request within request_timeout, however it trickles in
                sock.settimeout(max(0.001, deadline - time.monotonic()))  # 0 would mean non-blocking
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if first:
                    self.request_timeouts += 1
                    raise _Stop("no whole request in time") from None
                raise _Stop("idle timeout") from None
            if not data:
                return
            requests = decoder.feed(data)
            if not requests:
                continue
            self._conns.heard(conn)
            if first and not isinstance(requests[0], EXT_TYPES):
                # Erlang's requests: exactly one per connection, nothing after it.
                if len(requests) > 1 or decoder.buffered:
                    raise p.EpmdProtocolError("bytes after a one-shot request")
                self._classic(conn, requests[0])
                return
            first = False
            out = []
            for i, req in enumerate(requests):
                if not isinstance(req, EXT_TYPES):
                    raise p.EpmdProtocolError(f"{type(req).__name__} after an extension request")
                if getattr(req, "close", False) and (i < len(requests) - 1 or decoder.buffered):
                    raise p.EpmdProtocolError("bytes after a request that asked to close")
                out.append(self._ext_service.answer(conn, req))
            sock.sendall(b"".join(out))
            if getattr(requests[-1], "close", False):
                return  # a one-shot query: the daemon closes, as after Erlang's requests
            sock.settimeout(None if conn.entry is not None else self.packet_timeout)

    def _classic(self, conn: _Conn, req: p.Request) -> None:
        """Answer one of Erlang's requests; after an ALIVE2 reply, hold the connection."""
        assert not isinstance(req, EXT_TYPES)
        reply = self._classic_service.answer(conn, req, self.port)
        if not reply:
            return
        sock = conn.sock
        sock.sendall(reply)
        if not isinstance(req, (p.Alive2Req, p.Alive2Rejected)):
            return
        # epmd keeps the socket; the registration ends with the first byte or EOF.
        sock.settimeout(None if conn.entry is not None else self.packet_timeout)
        try:
            data = sock.recv(1)
        except TimeoutError:
            raise _Stop("idle timeout") from None
        if data:
            raise _Stop("node sent bytes on its registration connection")


def _peer_text(peer: Any) -> str:
    try:
        return p.format_address(peer[0], peer[1])
    except (IndexError, TypeError):
        return str(peer)


#: Accept errors that mean "out of a resource for now", not a broken listener.
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _Listener(StreamServer):  # type: ignore[misc]  # gevent is untyped
    """A StreamServer that rides out a shortage of file descriptors.

    gevent logs a traceback for every failed ``accept``; with the process out
    of file descriptors that is one traceback per attempt. Here a shortage
    pauses accepting for a moment (doubling up to a second while it lasts)
    and is logged as one line per interval with the count of refused
    attempts; the connections already open are served all along, and
    accepting resumes as soon as descriptors are free again.
    """

    PAUSE_MIN, PAUSE_MAX, LOG_INTERVAL = 0.05, 1.0, 10.0

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._pause = self.PAUSE_MIN
        self._refused = 0
        self._log_gate = TokenBucket(1.0 / self.LOG_INTERVAL, burst=1)

    def do_read(self) -> Any:
        try:
            args = super().do_read()
        except OSError as exc:
            if exc.errno not in _EXHAUSTED:
                raise
            self._refused += 1
            if self._log_gate.take():
                log.error(
                    "cannot accept connections: %s (%d attempts refused since the last report); "
                    "serving the open connections and retrying",
                    exc.strerror or exc,
                    self._refused,
                )
                self._refused = 0
            self.stop_accepting()
            self._timer = self.loop.timer(self._pause)
            self._timer.start(self._start_accepting_if_started)
            self._pause = min(self.PAUSE_MAX, self._pause * 2)
            return None
        self._pause = self.PAUSE_MIN
        return args
