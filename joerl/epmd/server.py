"""The port mapper daemon: Erlang's EPMD protocol and joerl's extension on gevent.

This module owns the daemon's state (one table of registered names, Erlang's
and joerl's alike, and the remembered old names that decide creations) and
the connection handling on a :class:`gevent.server.StreamServer`. The bytes
are :mod:`joerl.epmd.protocol`'s business.

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

joerl's extension registrations last as long as their connection *and* their
keep-alives: one that sends none for ``keepalive_timeout`` (measured on the
injectable ``clock``) is dropped, so a half-open connection cannot hold a
name for ever. They are accepted from loopback only, unless the daemon runs
with ``allow_remote_register`` (see docs/epmd.md for that trust decision).
"""

from __future__ import annotations

import ipaddress
import logging
import socket as _stdsocket
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import gevent
import msgpack
from gevent.event import Event
from gevent.pool import Pool
from gevent.server import StreamServer
from gevent.socket import socket as GSocket

from . import protocol as p

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_MAX_CONNECTIONS", "EpmdServer"]

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1:4369"
DEFAULT_MAX_CONNECTIONS = 4096
DEFAULT_MAX_PER_ADDRESS = 256  # connections at once from one remote address
DEFAULT_RATE_PER_ADDRESS = 100.0  # new connections per second from one remote address
REMEMBERED_NAMES = 1000  # epmd's MAX_UNREG_COUNT
_U32 = 0xFFFFFFFF


class _Conn:
    """One accepted connection and the registration it holds, if any."""

    __slots__ = ("sock", "peer", "local", "fd", "entry")

    def __init__(self, sock: GSocket, peer: Any, local: bool) -> None:
        self.sock = sock
        self.peer = peer
        self.local = local
        self.fd = sock.fileno()
        self.entry: _Entry | None = None

    def shutdown(self) -> None:
        """Wake the handler reading this connection (it then cleans up)."""
        try:
            self.sock.shutdown(_stdsocket.SHUT_RDWR)
        except OSError:
            pass


class _Entry:
    __slots__ = ("node", "conn", "last_seen")

    def __init__(self, node: p.NodeInfo, conn: _Conn, last_seen: float) -> None:
        self.node = node
        self.conn = conn
        self.last_seen = last_seen


class _Stop(Exception):
    """End this connection (quietly)."""


class EpmdServer:
    """The port mapper daemon.

    Args:
        address: ``"host:port"`` to listen on (port 0 picks a free one).
        keepalive_timeout: seconds without a keep-alive after which a joerl
            registration is dropped.
        packet_timeout: seconds an unregistered connection may stay idle.
        max_connections: connections served at once; further ones wait in
            the listen backlog.
        max_metadata: largest metadata (bytes of msgpack) in a registration.
        allow_remote_register: accept joerl registrations from other hosts.
        relaxed_command_check: obey KILL with live names and STOP (as
            ``epmd -relaxed_command_check``).
        clock: monotonic seconds, for keep-alive expiry (tests inject one).
        wallclock: seconds since the epoch, for creations.
        sweep_interval: seconds between expiry sweeps (default:
            ``keepalive_timeout / 4``, at most 10).
        backlog: listen backlog.
        max_per_address: connections served at once from one remote address.
        rate_per_address: new connections per second from one remote address
            (in bursts of as many).
        limit_loopback: apply the two per-address limits to loopback peers too
            (by default local nodes and tools are trusted, as epmd trusts them).
    """

    def __init__(
        self,
        address: str | tuple[str, int] = DEFAULT_ADDRESS,
        *,
        keepalive_timeout: float = 60.0,
        packet_timeout: float = 60.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_metadata: int = p.MAX_METADATA,
        allow_remote_register: bool = False,
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
        self.max_connections = max_connections
        self.max_metadata = max_metadata
        self.allow_remote_register = allow_remote_register
        self.relaxed_command_check = relaxed_command_check
        self._clock = clock
        self._wallclock = wallclock
        self._sweep_interval = sweep_interval or min(10.0, keepalive_timeout / 4)
        self._backlog = backlog
        self.max_per_address = max_per_address
        self.rate_per_address = rate_per_address
        self.limit_loopback = limit_loopback
        self._per_address: dict[str, list[float]] = {}  # ip -> [live connections, tokens, stamp]
        self.refused = 0  # connections closed by the per-address limits
        self._entries: dict[str, _Entry] = {}  # registration order
        self._old: OrderedDict[str, tuple[int, int, int]] = OrderedDict()  # name -> (creation, port, fd)
        self._conns: set[_Conn] = set()
        self._names_cache: bytes | None = None
        self._list_cache: bytes | None = None
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
        self._server = StreamServer(listener, self._handle, spawn=Pool(self.max_connections))
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

    # -- state ----------------------------------------------------------------

    def nodes(self) -> list[p.NodeInfo]:
        """The registered nodes, oldest first."""
        return [e.node for e in self._entries.values()]

    def lookup(self, name: str) -> p.NodeInfo | None:
        e = self._entries.get(name)
        return None if e is None else e.node

    def last_seen(self, name: str) -> float | None:
        """When (on ``clock``) the registration of ``name`` last showed life."""
        e = self._entries.get(name)
        return None if e is None else e.last_seen

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    def expire_stale(self) -> list[str]:
        """Drop joerl registrations whose last keep-alive is older than the
        timeout (on ``clock``); return their names. The sweeper calls this."""
        deadline = self._clock() - self.keepalive_timeout
        stale = [e for e in self._entries.values() if e.node.kind == "joerl" and e.last_seen < deadline]
        for e in stale:
            log.warning("expired %s: no keep-alive for %.0fs", e.node.name, self.keepalive_timeout)
            self._remove(e, why=None)
            e.conn.entry = None
            e.conn.shutdown()
        return [e.node.name for e in stale]

    def _sweep_loop(self) -> None:
        while True:
            gevent.sleep(self._sweep_interval)
            try:
                self.expire_stale()
            except Exception:  # never let the sweeper die
                log.exception("expiry sweep failed")

    def _next_creation(self, name: str) -> int:
        old = self._old.pop(name, None)
        if old is None:
            return max(4, int(self._wallclock()) + 1) & _U32 or 4
        cr = old[0] + 1
        return cr if 4 <= cr <= _U32 else 4

    def _add(self, node: p.NodeInfo, conn: _Conn) -> _Entry:
        entry = _Entry(node, conn, self._clock())
        self._entries[node.name] = entry
        conn.entry = entry
        self._names_cache = self._list_cache = None
        log.info(
            "registered %s port=%d creation=%d (%s) from %s",
            node.name,
            node.port,
            node.creation,
            node.kind,
            _peer_text(conn.peer),
        )
        return entry

    def _remove(self, entry: _Entry, why: str | None) -> None:
        name = entry.node.name
        if self._entries.get(name) is not entry:
            return
        del self._entries[name]
        self._names_cache = self._list_cache = None
        self._old[name] = (entry.node.creation, entry.node.port, entry.conn.fd)
        while len(self._old) > REMEMBERED_NAMES:
            self._old.popitem(last=False)
        if why:
            log.info("unregistered %s (%s)", name, why)

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

    def _admit(self, ip: str) -> bool:
        """Per-address limits: live connections and new connections per second."""
        now = self._clock()
        slot = self._per_address.get(ip)
        if slot is None:
            if len(self._per_address) > 65536:  # forget idle addresses
                for key in [k for k, v in self._per_address.items() if v[0] == 0]:
                    del self._per_address[key]
            slot = self._per_address[ip] = [0, self.rate_per_address, now]
        slot[1] = min(self.rate_per_address, slot[1] + (now - slot[2]) * self.rate_per_address)
        slot[2] = now
        if slot[0] >= self.max_per_address or slot[1] < 1.0:
            return False
        slot[0] += 1
        slot[1] -= 1.0
        return True

    def _handle(self, sock: GSocket, peer: Any) -> None:
        local = self._peer_is_local(sock, peer)
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        limited = self.limit_loopback or not local
        if limited and not self._admit(ip):
            self.refused += 1
            log.warning("closing a connection from %s: over the per-address limits", _peer_text(peer))
            sock.close()
            return
        conn = _Conn(sock, peer, local)
        self._conns.add(conn)
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
                self._per_address[ip][0] -= 1
            if conn.entry is not None:
                self._remove(conn.entry, why)
                conn.entry = None
            sock.close()

    def _serve(self, conn: _Conn) -> None:
        sock = conn.sock
        sock.settimeout(self.packet_timeout)
        decoder = p.RequestDecoder()
        first = True
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise _Stop("idle timeout") from None
            if not data:
                return
            requests = decoder.feed(data)
            if not requests:
                continue
            if first and not isinstance(requests[0], _EXT_TYPES):
                # Erlang's requests: exactly one per connection, nothing after it.
                if len(requests) > 1 or decoder.buffered:
                    raise p.EpmdProtocolError("bytes after a one-shot request")
                self._classic(conn, requests[0])
                return
            first = False
            out = []
            for i, req in enumerate(requests):
                if not isinstance(req, _EXT_TYPES):
                    raise p.EpmdProtocolError(f"{type(req).__name__} after an extension request")
                if getattr(req, "close", False) and (i < len(requests) - 1 or decoder.buffered):
                    raise p.EpmdProtocolError("bytes after a request that asked to close")
                out.append(self._ext(conn, req))
            sock.sendall(b"".join(out))
            if getattr(requests[-1], "close", False):
                return  # a one-shot query: the daemon closes, as after Erlang's requests
            sock.settimeout(None if conn.entry is not None else self.packet_timeout)

    # -- Erlang's requests -------------------------------------------------------

    def _classic(self, conn: _Conn, req: p.Request) -> None:
        sock = conn.sock
        if isinstance(req, p.PortPlease2Req):
            e = self._entries.get(req.name)
            sock.sendall(p.Port2Resp(None if e is None else e.node).encode())
        elif isinstance(req, p.NamesReq):
            sock.sendall(self._names_reply())
        elif isinstance(req, (p.Alive2Req, p.Alive2Rejected)):
            self._alive2(conn, req)
        elif not conn.local:
            log.warning("refused %s from non-local %s", type(req).__name__, _peer_text(conn.peer))
        elif isinstance(req, p.DumpReq):
            old = [(n, port, fd) for n, (_, port, fd) in self._old.items()]
            active = [(e.node.name, e.node.port, e.conn.fd) for e in reversed(self._entries.values())]
            sock.sendall(p.encode_dump(self.port, active, old))
        elif isinstance(req, p.KillReq):
            if self._entries and not self.relaxed_command_check:
                log.warning("refused KILL: live names")
                sock.sendall(b"NO")
            else:
                sock.sendall(b"OK")
                log.info("killed by a KILL request from %s", _peer_text(conn.peer))
                gevent.spawn(self.stop)
        elif isinstance(req, p.StopReq):
            if not self.relaxed_command_check:
                log.warning("refused STOP %s: not in relaxed mode", req.name)
                return
            e = self._entries.get(req.name)
            if e is None:
                sock.sendall(b"NOEXIST")
                return
            self._remove(e, "stopped by a STOP request")
            e.conn.entry = None
            e.conn.shutdown()
            sock.sendall(b"STOPPED")

    def _alive2(self, conn: _Conn, req: p.Alive2Req | p.Alive2Rejected) -> None:
        sock = conn.sock
        if not conn.local:
            log.warning("refused ALIVE2 from non-local %s", _peer_text(conn.peer))
            return
        extended = req.highest_version >= 6
        if isinstance(req, p.Alive2Rejected):
            log.warning("refused ALIVE2: %s", req.reason)
            entry = None
        elif req.name in self._entries:
            log.warning("refused ALIVE2 %s: name in use", req.name)
            entry = None
        else:
            cr = self._next_creation(req.name)
            creation = cr if extended else cr % 3 + 1
            node = p.NodeInfo(
                req.name,
                "",
                req.port,
                {},
                creation,
                req.node_type,
                req.protocol,
                req.highest_version,
                req.lowest_version,
                req.extra,
                "erlang",
            )
            entry = self._add(node, conn)
        if entry is None:
            sock.sendall(p.Alive2Resp(1, p.ALIVE2_ERROR_CREATION, extended).encode())
        else:
            sock.sendall(p.Alive2Resp(0, entry.node.creation, extended).encode())
        # epmd keeps the socket; the registration ends with the first byte or EOF.
        sock.settimeout(None if entry is not None else self.packet_timeout)
        try:
            data = sock.recv(1)
        except TimeoutError:
            raise _Stop("idle timeout") from None
        if data:
            raise _Stop("node sent bytes on its registration connection")

    def _names_reply(self) -> bytes:
        if self._names_cache is None:
            newest_first = [(e.node.name, e.node.port) for e in reversed(self._entries.values())]
            self._names_cache = p.encode_names(self.port, newest_first)
        return self._names_cache

    # -- joerl's extension --------------------------------------------------------

    def _ext(self, conn: _Conn, req: p.Request) -> bytes:
        entry = conn.entry
        if entry is not None:
            entry.last_seen = self._clock()
        if isinstance(req, p.Lookup):
            e = self._entries.get(req.name)
            return p.LookupResult(None if e is None else e.node).encode()
        if isinstance(req, p.KeepAlive):
            if entry is None or (req.name and req.name != entry.node.name):
                return p.ExtError("not_registered", f"{req.name!r} is not registered on this connection").encode()
            return _KEEPALIVE_ACK
        if isinstance(req, p.ListNodes):
            if self._list_cache is None:
                self._list_cache = p.NodeList(tuple(self.nodes())).encode()
            return self._list_cache
        if isinstance(req, p.Ping):
            return _PONG
        if isinstance(req, p.Register):
            return self._ext_register(conn, req)
        if isinstance(req, p.Unregister):
            if entry is None or entry.node.name != req.name:
                return p.Unregistered(req.name, False).encode()
            self._remove(entry, "unregistered by its owner")
            conn.entry = None
            return p.Unregistered(req.name, True).encode()
        assert isinstance(req, p.UnknownExt)
        return p.ExtError("unknown_op", f"unknown op {req.op!r}").encode()

    def _ext_register(self, conn: _Conn, req: p.Register) -> bytes:
        if not conn.local and not self.allow_remote_register:
            log.warning("refused register %s from non-local %s", req.name, _peer_text(conn.peer))
            return p.ExtError(
                "not_allowed",
                "this daemon accepts registrations from its own host only "
                "(start it with --allow-remote-register to change that)",
            ).encode()
        if conn.entry is not None:
            return p.ExtError("already_registered", f"this connection already holds {conn.entry.node.name!r}").encode()
        problem = p.name_problem(req.name)
        if problem:
            return p.ExtError("invalid_name", f"node name {req.name!r} {problem}").encode()
        if not 1 <= req.port <= 0xFFFF:
            return p.ExtError("bad_request", f"port {req.port} is not 1..65535").encode()
        if len(req.host.encode("utf-8", "surrogatepass")) > p.MAX_HOST_BYTES:
            return p.ExtError("too_large", f"host is over {p.MAX_HOST_BYTES} bytes").encode()
        if len(req.extra) > p.MAX_EXTRA:
            return p.ExtError("too_large", f"extra is over {p.MAX_EXTRA} bytes").encode()
        if req.metadata and len(msgpack.packb(req.metadata, use_bin_type=True)) > self.max_metadata:
            return p.ExtError("too_large", f"metadata is over {self.max_metadata} bytes").encode()
        if req.name in self._entries:
            log.warning("refused register %s: name in use", req.name)
            return p.ExtError("name_in_use", f"the name {req.name!r} is already registered").encode()
        node = p.NodeInfo(
            req.name,
            req.host,
            req.port,
            req.metadata,
            self._next_creation(req.name),
            req.node_type,
            req.protocol,
            req.highest_version,
            req.lowest_version,
            req.extra,
            "joerl",
        )
        self._add(node, conn)
        return p.Registered(node).encode()


_EXT_TYPES = (p.Register, p.Unregister, p.Lookup, p.ListNodes, p.Ping, p.KeepAlive, p.UnknownExt)
_KEEPALIVE_ACK = p.KeepAliveAck().encode()


def _version() -> str:
    try:
        from .. import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - partial installs
        return ""


_PONG = p.Pong("joerl-epmd", _version()).encode()


def _peer_text(peer: Any) -> str:
    try:
        return p.format_address(peer[0], peer[1])
    except (IndexError, TypeError):
        return str(peer)
