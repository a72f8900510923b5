"""The node (OTP's net_kernel): listener, port-mapper registration, links, routing.

A :class:`DistributedSystem` is an :class:`~joerl.system.ActorSystem` that
other OS processes can reach. It listens for node links, registers its name
with the port mapper (starting one if none answers, as ``erl`` does), and
routes every message, link, monitor and exit signal addressed to a pid of
another node over one authenticated link per peer, dialled on first use.

Pids at the boundary: locally a pid is ``<0.id.0>``; on the wire it is
``<node_id.id.creation>``. The serialization codec's pid hooks do the mapping
both ways, so a pid inside any message names the same process wherever it
arrives, and a pid of a previous incarnation of this node (another creation)
never reaches a process of this one.

Threading: like ActorSystem, a node lives in one thread (any greenlets).
"""

from __future__ import annotations

import logging
import secrets
import socket as _stdsocket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from time import monotonic
from typing import Any

import gevent
from gevent import getcurrent
from gevent.event import Event
from gevent.hub import Waiter
from gevent.server import StreamServer

from .. import epmd as _epmd
from ..address import parse_address
from ..backoff import Backoff
from ..errors import (
    CallError,
    CallTimeout,
    ConnectionLost,
    DistributionError,
    EpmdError,
    HandshakeError,
    NodeUnreachable,
    NotAllowed,
    SerializationError,
)
from ..message import NOCONNECTION, NOPROC, NodeDown, NodeUp
from ..pid import Pid, Ref
from ..ratelimit import TokenBucket
from ..serialization import Codec, Limits, MessageRegistry, default_registry
from ..system import SYSTEM_PID, ActorSystem, From, RemoteName
from . import protocol as P
from .config import load_cookie, node_id_of, resolve_epmd_address
from .connection import Connection, LinkConfig
from .global_names import GlobalNames
from .link_setup import accept_handshake, dial
from .tls import TlsConfig, tls_wrapper

log = logging.getLogger("joerl.node")

PROTOCOL_NAME = "joerl-dist/1"
_GEN_CALL = "$gen_call"


def _as_gen_call(msg: tuple[Any, ...]) -> tuple[Any, ...]:
    """A call from another node: its ``(pid, ref)`` pair becomes a ``From`` again,
    so that a server sees the same message whether its caller is local or not."""
    from_ = msg[1]
    if from_.__class__ is tuple and len(from_) == 2 and from_[0].__class__ is Pid and from_[1].__class__ is Ref:
        return (msg[0], From(from_[0], from_[1]), msg[2])
    return msg


@dataclass
class NodeStats:
    """Counters of one node's traffic (for tests, benchmarks and operators)."""

    sent: int = 0
    received: int = 0
    dropped_stale: int = 0
    dropped_unreachable: int = 0
    dropped_unknown_node: int = 0
    bad_payloads: int = 0
    connects: int = 0
    connect_failures: int = 0
    refused_connections: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class _Peer:
    """What this node knows of one other node, linked or not."""

    __slots__ = (
        "name",
        "node_id",
        "creation",
        "link",
        "conn",
        "pending",
        "connecting",
        "up",
        "backoff",
        "next_attempt",
        "calls",
        "last_error",
        "flushing",
        "pending_bytes",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.node_id = node_id_of(name)
        self.creation: int | None = None
        self.link: Connection | None = None  # registered link (may still be flushing)
        self.conn: Connection | None = None  # the link, once open for direct sends
        self.pending: list[Any] = []  # protocol messages waiting for the link, in order
        self.connecting: Any = None  # the greenlet dialling
        self.up = Event()
        self.backoff = Backoff()
        self.next_attempt = 0.0
        self.calls: set[Ref] = set()  # local calls waiting on a server of this node
        self.last_error = ""
        self.pending_bytes = 0  # what ``pending`` holds, roughly (payloads + overhead)
        self.flushing = False  # a greenlet is moving ``pending`` onto the link


class DistributedSystem:
    """A node: an actor system reachable from other nodes.

    Args:
        name: the node's name, unique at its port mapper (1-255 bytes, no '@').
        listen_address: ``"host:port"`` to listen on; port 0 picks a free one.
        epmd_address: the port mapper; else ``$JOERL_EPMD_ADDRESS``, else
            ``127.0.0.1:4369``.
        cookie: the shared secret; else ``$JOERL_COOKIE``, else ``~/.joerl.cookie``.
        start_epmd: start a port mapper (a detached ``joerl-epmd --daemon``)
            when none answers at ``epmd_address``.
        tick_time: seconds of silence after which a peer is declared down
            (Erlang's net_ticktime; at least 1).
        registry: the message types this node decodes (default: the process-wide one).
        limits: decoding limits for payloads from peers.
        link_config: link settings (handshake deadline, frame and queue sizes, TLS hook).
        advertise_host: the host peers should dial (default: the listen host,
            or this machine's name when listening on a wildcard address).
        metadata: extra key/values published with the registration.
        global_names: run the cluster-wide name server (``global_register`` & co.).
        tls: certificates for mutual TLS on every link (see docs/distribution.md);
            a TLS node refuses plaintext peers.
        allowed_nodes: if given, only these node names may link with this one;
            any other is refused after authentication (it learns nothing).
        max_handshakes: inbound handshakes in progress at once; more are closed at once.
        max_connections_per_second: inbound connections accepted per second
            (a burst of as many); more are closed at once.

    Raises:
        DistributionError: the name is taken, or the port mapper cannot be reached.
    """

    def __init__(
        self,
        name: str,
        listen_address: str = "127.0.0.1:0",
        epmd_address: str | None = None,
        *,
        cookie: str | bytes | None = None,
        start_epmd: bool = True,
        tick_time: float = 60.0,
        registry: MessageRegistry | None = None,
        limits: Limits | None = None,
        link_config: LinkConfig | None = None,
        advertise_host: str | None = None,
        metadata: dict[str, Any] | None = None,
        epmd_timeout: float = 5.0,
        global_names: bool = True,
        tls: TlsConfig | None = None,
        allowed_nodes: Iterable[str] | None = None,
        max_handshakes: int = 64,
        max_connections_per_second: float = 200.0,
    ) -> None:
        _epmd.check_name(name)
        self.node_name = name
        self.node_id = node_id_of(name)
        self.stats = NodeStats()
        self._cookie = load_cookie(cookie)
        self._config = link_config or LinkConfig(tick_time=tick_time)
        if tls is not None:
            if self._config.wrap_socket is not None:
                raise ValueError("give either tls= or link_config.wrap_socket, not both")
            self._config = replace(self._config, wrap_socket=tls_wrapper(tls))
        self._allowed = None if allowed_nodes is None else frozenset(allowed_nodes)
        if max_handshakes < 1 or max_connections_per_second <= 0:
            raise ValueError("max_handshakes and max_connections_per_second must be positive")
        self._max_handshakes = max_handshakes
        self._handshakes = 0
        self._accept_rate = TokenBucket(max_connections_per_second)
        self._refusal_log = TokenBucket(1.0)  # at most one such warning a second
        if link_config is not None and tick_time != 60.0:
            self._config = replace(link_config, tick_time=tick_time)  # LinkConfig is frozen
        self.system = ActorSystem(name)
        self.system.remote = self
        self._procs = self.system._procs  # the same dict: local pid id -> process
        self._peers: dict[str, _Peer] = {}
        self._peers_by_id: dict[int, _Peer] = {}
        self._dialing: set[str] = set()
        self._unresolved: dict[int, list[Any]] = {}  # node id -> messages waiting for its name
        self._node_watchers: dict[Pid, set[str] | None] = {}  # pid -> names (None: all)
        self._alive_waiters: dict[Ref, Waiter] = {}
        self._factories: dict[str, tuple[Callable[..., Any], bool]] = {}
        self._spawn_waiters: dict[Ref, Waiter] = {}
        self._spawns: dict[Ref, tuple[Any, bool, bool]] = {}
        self._glob_cache: dict[int, Pid] = {}
        self._closed = False
        self.creation = 0
        self._codec = Codec(
            registry or default_registry(),
            encode_pid=self._glob_pid,
            decode_pid=self._local_pid,
            encode_ref=self._glob_ref,
            decode_ref=self._local_ref,
            limits=limits,
        )
        host, port = parse_address(listen_address)
        self._server = StreamServer((host, port), self._handle_inbound)
        self._server.start()
        self.listen_port: int = self._server.server_port
        self.listen_host = host
        if advertise_host is None:
            advertise_host = host if host not in ("0.0.0.0", "::", "") else _stdsocket.gethostname()
        self.advertise_host = advertise_host
        self.epmd_address = resolve_epmd_address(epmd_address)
        try:
            if start_epmd and not _epmd.ping(self.epmd_address, timeout=1.0):
                log.info("no port mapper at %s: starting one", self.epmd_address)
                _epmd.spawn_daemon(self.epmd_address)
            self._epmd = _epmd.EpmdClient(self.epmd_address, timeout=epmd_timeout)
            meta = {"node_id": self.node_id, "protocol": PROTOCOL_NAME}
            meta.update(metadata or {})
            info = self._epmd.register(name, advertise_host, self.listen_port, metadata=meta)
        except BaseException as exc:
            self._server.stop()
            if isinstance(exc, _epmd.NameInUse):
                raise DistributionError(f"node name {name!r} is already registered at {self.epmd_address}") from exc
            if isinstance(exc, EpmdError):
                raise DistributionError(
                    f"cannot register node {name!r} at port mapper {self.epmd_address}: {exc}"
                ) from exc
            raise
        # The incarnation is fixed at first registration: pids handed out
        # stay valid even if the port mapper restarts and hands out another.
        self.creation = info.creation or (secrets.randbits(32) or 1)
        self._identity = P.NodeIdentity(name, self.node_id, self.creation)
        #: Cluster-wide names (Erlang's ``global``); see docs/global_names.md.
        self.global_names: GlobalNames | None = GlobalNames(self) if global_names else None
        log.info(
            "node %s (id %d, creation %d) listening on %s:%d, port mapper %s",
            name,
            self.node_id,
            self.creation,
            host,
            self.listen_port,
            self.epmd_address,
        )

    # -- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> DistributedSystem:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<DistributedSystem {self.node_name} id={self.node_id} port={self.listen_port}>"

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every actor, close every link, unregister from the port mapper."""
        if self._closed:
            return
        self._closed = True
        try:
            self.system.shutdown(timeout)
        finally:
            for peer in list(self._peers.values()):
                if peer.connecting is not None:
                    peer.connecting.kill(block=False)
                link = peer.link
                if link is not None:
                    link.flush(timeout=1.0)
                    link.close("shutdown")
            self._server.stop(timeout=1.0)
            try:
                self._epmd.close()
            except Exception:  # noqa: BLE001 - the port mapper may be gone already
                log.debug("port mapper close failed", exc_info=True)
            log.info("node %s shut down", self.node_name)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the ActorSystem API, for convenience -----------------------------------

    def spawn(self, actor: Any, **kw: Any) -> Any:
        return self.system.spawn(actor, **kw)

    def spawn_fn(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return self.system.spawn_fn(fn, *args, **kw)

    def register(self, name: str, pid: Any) -> None:
        self.system.register(name, pid)

    def whereis(self, name: str) -> Pid | None:
        return self.system.whereis(name)

    # -- cluster-wide names ------------------------------------------------------

    def _global(self) -> GlobalNames:
        if self.global_names is None:
            raise DistributionError(f"node {self.node_name!r} was started with global_names=False")
        return self.global_names

    def global_register(self, name: str, pid: Any) -> bool:
        """Register ``pid`` as ``name`` on every connected node; False if the name is taken."""
        return self._global().register(name, pid)

    def global_whereis(self, name: str) -> Pid | None:
        """The pid registered cluster-wide as ``name`` (a local read), or None."""
        return self._global().whereis(name)

    def global_unregister(self, name: str) -> None:
        """Free the cluster-wide ``name`` on every connected node."""
        self._global().unregister(name)

    def global_send(self, name: str, msg: Any, *, sender: Pid | None = None) -> Pid:
        """Send ``msg`` to the process registered cluster-wide as ``name``.

        Raises:
            NotRegistered: nobody holds the name.
        """
        return self._global().send(name, msg, sender=sender)

    def global_registered(self) -> list[str]:
        """Every cluster-wide name this node knows of."""
        return self._global().registered()

    # -- discovery ---------------------------------------------------------------

    def list_nodes(self) -> list[Any]:
        """Every node the port mapper knows (``NodeInfo`` records), this one included."""
        return self._epmd.list_nodes()

    def nodes(self) -> list[str]:
        """The names of the peers this node has a live link with."""
        return sorted(p.name for p in self._peers.values() if p.conn is not None)

    def connect_to_node(self, name: str, timeout: float | None = None) -> bool:
        """Make sure a link to ``name`` is up (sends connect by themselves; this waits).

        Raises:
            NodeUnreachable: the node cannot be found or reached.
        """
        if name == self.node_name:
            return True
        peer = self._peer(name)
        if peer.conn is not None:
            return True
        peer.next_attempt = 0.0
        self._ensure_connecting(peer)
        g = peer.connecting
        if g is not None:
            g.join(timeout if timeout is not None else self._config.handshake_timeout + 10)
        if peer.conn is None:
            raise NodeUnreachable(name, peer.last_error or "no link")
        return True

    def node_of(self, pid: Pid) -> str | None:
        """The name of the node ``pid`` lives on (None if unknown)."""
        if pid.node == 0 or pid.node == self.node_id:
            return self.node_name
        peer = self._peers_by_id.get(pid.node)
        return peer.name if peer is not None else None

    # -- node monitoring -----------------------------------------------------------

    def monitor_nodes(self, pid: Any, flag: bool = True) -> None:
        """``pid`` receives ``NodeUp(name)`` / ``NodeDown(name, reason)`` for every peer."""
        pid = self.system._resolve(pid)
        if flag:
            self._node_watchers[pid] = None
        else:
            self._node_watchers.pop(pid, None)

    def monitor_node(self, pid: Any, name: str, flag: bool = True) -> None:
        """``pid`` receives ``NodeDown(name, reason)`` (and ``NodeUp``) for node ``name``.

        Like Erlang's ``monitor_node``, a node that is not linked is connected
        to; if that fails, ``NodeDown`` arrives at once.
        """
        pid = self.system._resolve(pid)
        names = self._node_watchers.get(pid, set())
        if names is None:
            return
        if flag:
            names.add(name)
            self._node_watchers[pid] = names
            try:
                self.connect_to_node(name)
            except NodeUnreachable as exc:
                self.system.send(pid, NodeDown(name, exc.reason or NOCONNECTION))
        else:
            names.discard(name)

    def _notify_nodes(self, event: Any) -> None:
        for pid, names in list(self._node_watchers.items()):
            if names is None or event.node in names:
                ctx = self.system.context_of(pid)
                if ctx is None:
                    self._node_watchers.pop(pid, None)
                else:
                    ctx._mailbox.put_signal((event, None))

    # -- pids at the boundary ------------------------------------------------------

    def _glob_pid(self, pid: Pid) -> Pid:
        if pid.node != 0:
            return pid
        g = self._glob_cache.get(pid.id)
        if g is None:
            if len(self._glob_cache) > 65536:
                self._glob_cache.clear()
            g = self._glob_cache[pid.id] = Pid._unchecked(self.node_id, pid.id, self.creation)
        return g

    def _local_pid(self, pid: Pid) -> Pid:
        if pid.node == self.node_id and pid.creation == self.creation:
            return Pid._unchecked(0, pid.id, 0)
        return pid  # another node's, or a stale one of ours (dropped when used)

    def _glob_ref(self, ref: Ref) -> Ref:
        if ref.node != 0:
            return ref
        return Ref._unchecked(self.node_id, ref.id, self.creation)

    def _local_ref(self, ref: Ref) -> Ref:
        if ref.node == self.node_id and ref.creation == self.creation:
            return Ref._unchecked(0, ref.id, 0)
        return ref

    def _glob_opt(self, pid: Pid | None) -> Pid | None:
        return None if pid is None or pid == SYSTEM_PID else self._glob_pid(pid)

    def _local_target(self, pid: Pid) -> Pid | None:
        """A pid addressed to us -> the local pid, or None if stale (another creation)."""
        if pid.node == self.node_id and pid.creation == self.creation:
            return Pid._unchecked(0, pid.id, 0)
        self.stats.dropped_stale += 1
        log.debug("dropping a message for %s: not a process of this incarnation", pid)
        return None

    def _wire_reason(self, reason: Any) -> bytes:
        """Exit reasons cross as data: an exception becomes ``"Type: message"``."""
        if isinstance(reason, BaseException):
            reason = f"{type(reason).__name__}: {reason}"
        try:
            return self._codec.encode(reason)
        except SerializationError:
            return self._codec.encode(repr(reason))

    # -- the router interface the ActorSystem calls --------------------------------

    def send(self, sender: Pid | None, to: Any, msg: Any) -> None:
        """Send ``msg`` from ``sender`` to ``to`` (a local or remote pid, or a name).

        A remote destination is reached over a link dialled on first use;
        messages wait in order while it comes up.

        Raises:
            NotSerializable: the message cannot cross nodes.
        """
        if to.__class__ is not Pid or to.node == 0:
            self.system.send(to, msg, sender=sender)
            return
        self.send_remote(sender, to, msg)

    def send_remote(self, sender: Pid | None, to: Pid, msg: Any) -> None:
        """:meth:`send` to a pid of another node (``to.node != 0``): what
        ``ActorSystem.send`` calls for one."""
        peer = self._peers_by_id.get(to.node)
        if peer is not None:
            conn = peer.conn
            if conn is not None:
                if sender is not None:
                    glob = self._glob_cache.get(sender.id) if sender.node == 0 else sender
                    sender = glob if glob is not None and sender.id else self._glob_opt(sender)
                if to.creation != peer.creation:
                    self._codec.encode(msg)  # NotSerializable all the same
                    self.stats.dropped_stale += 1
                    return
                self.stats.sent += 1
                try:
                    # A plain term (("ping", 7)) travels as itself, skipping the
                    # codec, and a burst of them to one process shares frames.
                    if not conn.send_term(sender, to, msg):
                        conn.send_payload(sender, to, self._codec.encode(msg))
                except ConnectionLost:  # dropped while we waited for room: lost with the link
                    self.stats.dropped_unreachable += 1
                return
        self._route(to.node, P.Send(self._glob_opt(sender), to, self._codec.encode(msg)))

    def send_named(self, sender: Pid | None, name: str, node: str, msg: Any) -> None:
        """Send to the process registered as ``name`` on ``node`` (``{Name, Node} ! Msg``)."""
        if node == self.node_name:
            self.system.send(name, msg, sender=sender)
            return
        payload = self._codec.encode(msg)
        self._enqueue(self._peer(node), P.RegSend(self._glob_opt(sender), name, payload))

    def reply(self, from_: Any, value: Any) -> None:
        ref = from_[1]
        self._route(ref.node, P.CallReply(ref, self._codec.encode(value)))

    def link(self, local: Pid, remote: Pid) -> None:
        self._route(remote.node, P.Link(self._glob_pid(local), remote))

    def unlink(self, local: Pid, remote: Pid) -> None:
        self._route(remote.node, P.Unlink(self._glob_pid(local), remote, 0))

    def link_exit(self, local: Pid, remote: Pid, reason: Any) -> None:
        self._route(remote.node, P.Exit(self._glob_pid(local), remote, self._wire_reason(reason)))

    def exit(self, sender: Pid, to: Pid, reason: Any) -> None:
        self._route(to.node, P.Exit2(self._glob_opt(sender), to, self._wire_reason(reason)))

    def monitor(self, watcher: Any, target: Pid | RemoteName, ref: Ref) -> None:
        """``watcher`` monitors a remote pid, or a ``(name, node)`` (resolved by that node)."""
        if watcher.__class__ is not Pid:
            raise DistributionError("internal monitors of remote processes are not supported")
        if target.__class__ is RemoteName:
            msg = P.Monitor(self._glob_pid(watcher), target.name, self._glob_ref(ref))  # type: ignore[union-attr]
            self._enqueue(self._peer(target.node), msg)  # type: ignore[arg-type]
            return
        self._route(target.node, P.Monitor(self._glob_pid(watcher), target, self._glob_ref(ref)))  # type: ignore[arg-type]

    def demonitor(self, watcher: Any, target: Pid | RemoteName, ref: Ref) -> None:
        if watcher.__class__ is Pid:
            if target.__class__ is RemoteName:
                msg = P.Demonitor(self._glob_pid(watcher), target.name, self._glob_ref(ref))  # type: ignore[union-attr]
                peer = self._peers.get(target.node)  # type: ignore[arg-type]
                if peer is not None:
                    self._enqueue(peer, msg)
                return
            self._route(target.node, P.Demonitor(self._glob_pid(watcher), target, self._glob_ref(ref)))  # type: ignore[arg-type]

    def down(self, watcher: Pid, ref: Ref, pid: Pid, reason: Any) -> None:
        self._route(watcher.node, P.Down(self._glob_pid(pid), watcher, ref, self._wire_reason(reason)))

    def is_process_alive(self, pid: Pid, timeout: float = 5.0) -> bool:
        """A real round trip to the pid's node; False if the node cannot be reached."""
        if pid.node == 0:
            return self.system.is_process_alive(pid)
        if pid.node == self.node_id:
            return False  # a pid of a previous incarnation of this node
        peer = self._peers_by_id.get(pid.node) or self._peer_for_id(pid.node)
        if peer is None:
            return False
        ref = self.system.make_ref()
        waiter = Waiter(self.system._hub)
        self._alive_waiters[ref] = waiter
        peer.calls.add(ref)
        timer = self.system._hub.loop.timer(timeout)
        timer.start(waiter.switch, None)
        try:
            self._enqueue(peer, P.AliveRequest(self._glob_ref(ref), pid))
            result = waiter.get()
        finally:
            timer.close()
            self._alive_waiters.pop(ref, None)
            peer.calls.discard(ref)
        return bool(result)

    def call(self, server: Any, request: Any, timeout: float | None, caller: Pid | None) -> Any:
        """A GenServer call to a process of another node.

        The server is monitored for the duration of the call (by name when
        called as ``(name, node)``), so its death, or the loss of its node,
        fails the call at once; a late reply is dropped.
        """
        system = self.system
        peer: _Peer | None
        if isinstance(server, RemoteName):
            peer = self._peer(server.node)
            target: Any = server.name
        else:
            peer = self._peers_by_id.get(server.node) or self._peer_for_id(server.node)
            target = server
            if peer is None or server.node == self.node_id:
                raise CallError(server, NOPROC)
        ref = system.make_ref()
        gref = self._glob_ref(ref)
        waiter = Waiter(system._hub)
        system._calls[ref] = waiter
        peer.calls.add(ref)
        gcaller = self._glob_pid(caller or SYSTEM_PID)
        # From crosses as a plain (pid, ref) pair (the codec keeps no
        # NamedTuple types); the server's node makes it a From again.
        payload = self._codec.encode((_GEN_CALL, (gcaller, gref), request))
        timer = None
        try:
            monitor = P.Monitor(gcaller, target, gref)
            if isinstance(target, str):
                request_msg: Any = P.RegSend(self._glob_opt(caller), target, payload)
            else:
                request_msg = P.Send(self._glob_opt(caller), target, payload)
            conn = peer.conn
            if conn is not None:
                # Both frames in one write: the server's node wakes up once per call.
                try:
                    conn.send_frame(conn.encoder.encode(monitor) + conn.encoder.encode(request_msg))
                except ConnectionLost:
                    pass  # _on_closed has failed this call with noconnection
            else:
                self._enqueue(peer, monitor)
                self._enqueue(peer, request_msg)
            if timeout is not None:
                timer = system._hub.loop.timer(timeout)
                timer.start(waiter.switch, None)
            result = waiter.get()
        finally:
            if timer is not None:
                timer.close()
            system._calls.pop(ref, None)
            peer.calls.discard(ref)
            if peer.conn is not None:
                peer.conn.send(P.Demonitor(gcaller, target, gref))
        shown = server.name + "@" + server.node if isinstance(server, RemoteName) else server
        if result is None:
            raise CallTimeout(shown, timeout)  # type: ignore[arg-type]
        ok, value = result
        if ok:
            return value
        raise CallError(shown, value)

    # -- remote spawn ------------------------------------------------------------------

    def register_factory(self, name: str, factory: Callable[..., Any], *, function: bool = False) -> None:
        """Let peers spawn processes here by ``name``: no code travels, nothing is pickled.

        Args:
            name: what peers pass to :meth:`spawn_remote`.
            factory: ``factory(*args) -> Actor`` instance; or, with
                ``function=True``, a process body run as ``factory(ctx, *args)``.
        """
        if not callable(factory):
            raise TypeError(f"factory {name!r} must be callable")
        self._factories[name] = (factory, function)

    def spawn_remote(
        self,
        node: str,
        name: str,
        *args: Any,
        link: bool = False,
        monitor: bool = False,
        caller: Any = None,
        timeout: float = 10.0,
    ) -> Any:
        """Spawn the factory registered as ``name`` on ``node``.

        Args:
            link: link the new process to ``caller``, atomically (spawn_link).
            monitor: ``caller`` monitors the new process (spawn_monitor); the
                result is then ``(pid, ref)``, as Erlang's ``spawn_monitor``.
            caller: the local process to link or monitor from (a Pid or an
                ActorContext); required with ``link`` or ``monitor``.

        Returns:
            The new process's pid, or ``(pid, ref)`` with ``monitor=True``.

        Raises:
            NodeUnreachable: the node cannot be reached.
            DistributionError: the node has no such factory, or the spawn failed.
        """
        requester = getattr(caller, "pid", caller)
        if (link or monitor) and (requester is None or self.system.context_of(requester) is None):
            raise ValueError("link/monitor need a live local caller process (pass caller=ctx)")
        if node == self.node_name:
            pid = self._spawn_local(name, args)
            if link:
                self.system.link(requester, pid)
            if monitor:
                return pid, self.system.monitor(requester, pid)
            return pid
        self.connect_to_node(node)
        peer = self._peer(node)
        ref = self.system.make_ref()
        waiter = Waiter(self.system._hub)
        self._spawn_waiters[ref] = waiter
        self._spawns[ref] = (requester, link, monitor)
        peer.calls.add(ref)
        timer = self.system._hub.loop.timer(timeout)
        timer.start(waiter.switch, None)
        try:
            sender = self._glob_pid(requester or SYSTEM_PID)
            self._enqueue(
                peer, P.SpawnRequest(self._glob_ref(ref), sender, name, self._codec.encode(tuple(args)), link, monitor)
            )
            result = waiter.get()
        finally:
            timer.close()
            self._spawn_waiters.pop(ref, None)
            self._spawns.pop(ref, None)
            peer.calls.discard(ref)
        if result is None:
            raise DistributionError(
                f"spawning {name!r} on node {node!r} failed: no answer within {timeout}s or the link was lost"
            )
        if not isinstance(result, Pid):
            raise DistributionError(f"spawning {name!r} on node {node!r} failed: {result}")
        return (result, ref) if monitor else result

    def _spawn_local(self, name: str, args: tuple[Any, ...]) -> Pid:
        entry = self._factories.get(name)
        if entry is None:
            raise DistributionError(f"no factory {name!r} registered on node {self.node_name!r}")
        factory, function = entry
        if function:
            return self.system.spawn_fn(factory, *args).pid
        return self.system.spawn(factory(*args)).pid

    def _on_spawn_reply(self, msg: Any) -> None:
        """Record the link or monitor before any later frame (the child's exit) is read."""
        ref = self._local_ref(msg.ref)
        entry = self._spawns.get(ref)
        if entry is not None and isinstance(msg.result, Pid):
            requester, link, monitor = entry
            ctx = self.system.context_of(requester) if requester is not None else None
            if ctx is not None:
                if link:
                    if ctx._links is None:
                        ctx._links = set()
                    ctx._links.add(msg.result)
                if monitor:
                    if ctx._monitors is None:
                        ctx._monitors = {}
                    ctx._monitors[ref] = msg.result
        self._wake(ref, msg.result)

    # -- links to peers ----------------------------------------------------------------

    def _peer(self, name: str) -> _Peer:
        peer = self._peers.get(name)
        if peer is None:
            if name == self.node_name:
                raise DistributionError(f"{name!r} is this node")
            _epmd.check_name(name)
            peer = self._peers[name] = _Peer(name)
            other = self._peers_by_id.get(peer.node_id)
            if other is None:
                self._peers_by_id[peer.node_id] = peer
            else:
                log.error(
                    "node ids of %r and %r collide (%d): pids of %r cannot be routed",
                    other.name,
                    name,
                    peer.node_id,
                    name,
                )
        return peer

    def _peer_for_id(self, node_id: int) -> _Peer | None:
        """The peer with ``node_id``, asking the port mapper for names when unknown."""
        peer = self._peers_by_id.get(node_id)
        if peer is not None:
            return peer
        if getcurrent() is self.system._hub:
            return None  # cannot block here
        try:
            for info in self._epmd.list_nodes():
                if info.name != self.node_name and node_id_of(info.name) == node_id:
                    return self._peer(info.name)
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot resolve node id %d at the port mapper: %s", node_id, exc)
        return None

    def _route(self, node_id: int, msg: Any) -> None:
        """Queue a protocol message for node ``node_id`` (connecting if needed)."""
        if node_id == self.node_id or node_id == 0:
            self.stats.dropped_stale += 1
            return
        peer = self._peers_by_id.get(node_id)
        if peer is None:
            waiting = self._unresolved.get(node_id)
            if waiting is not None:
                waiting.append(msg)  # in order, behind those already waiting for the name
                return
            if getcurrent() is self.system._hub:
                # The hub (a timer) cannot ask the port mapper: one greenlet per
                # node id does, and routes everything queued for it meanwhile, in order.
                self._unresolved[node_id] = [msg]
                gevent.spawn(self._route_unresolved, node_id)
                return
            peer = self._peer_for_id(node_id)
            if peer is None:
                self._drop_unknown(node_id, [msg])
                return
        self._enqueue(peer, msg)

    def _route_unresolved(self, node_id: int) -> None:
        try:
            peer = self._peer_for_id(node_id)
        finally:
            msgs = self._unresolved.pop(node_id, [])
        if peer is None:
            self._drop_unknown(node_id, msgs)
            return
        for msg in msgs:
            self._enqueue(peer, msg)

    def _drop_unknown(self, node_id: int, msgs: list[Any]) -> None:
        self.stats.dropped_unknown_node += len(msgs)
        log.warning("dropping %d message(s) for node id %d: no such node at the port mapper", len(msgs), node_id)
        for msg in msgs:
            self._fail_unreachable(msg, node_id)

    def _enqueue(self, peer: _Peer, msg: Any) -> None:
        conn = peer.conn
        if conn is not None:
            self.stats.sent += msg.__class__ is P.Send
            try:
                conn.send(msg)
            except ConnectionLost:
                # The link dropped while we waited for room: the message is lost
                # with it, as in Erlang; monitors and NodeDown tell the rest.
                self.stats.dropped_unreachable += msg.__class__ is P.Send
            return
        if self._closed:
            return
        if not peer.pending and peer.connecting is None and monotonic() < peer.next_attempt:
            self.stats.dropped_unreachable += msg.__class__ is P.Send
            self._fail_unreachable(msg, peer.node_id)
            return
        dialing = peer.connecting
        if (
            dialing is not None
            and peer.pending_bytes >= self._config.max_queue_bytes
            and getcurrent() is not self.system._hub
            and getcurrent() is not dialing
        ):
            # Backpressure while the link comes up, as on a full link queue:
            # wait for the dial to end (flushed, or failed and dropped).
            dialing.join(self._config.handshake_timeout + 1.0)
            self._enqueue(peer, msg)
            return
        peer.pending.append(msg)
        peer.pending_bytes += len(getattr(msg, "payload", b"")) + 32
        self._ensure_connecting(peer)

    def _ensure_connecting(self, peer: _Peer) -> None:
        if peer.connecting is None and peer.conn is None and not self._closed:
            peer.connecting = gevent.spawn(self._connect, peer)

    def _connect(self, peer: _Peer) -> None:
        name = peer.name
        try:
            if peer.link is None:
                info = self._epmd.lookup(name)
                if info is None:
                    raise NodeUnreachable(name, f"not registered at port mapper {self.epmd_address}")
                host = info.host or parse_address(self.epmd_address)[0]
                conn = self._dial(peer, (host, info.port))
                if conn is not None:
                    self._register(conn)  # raises NotAllowed for a name off the allow-list
                    conn.start()
            if peer.link is None and not peer.up.wait(self._config.handshake_timeout):
                raise NodeUnreachable(name, "the peer's own connection never came up")
            self._flush(peer)
            peer.backoff.reset()
            self.stats.connects += 1
        except (NodeUnreachable, HandshakeError, EpmdError, OSError) as exc:
            if peer.link is not None and not peer.link.closed:
                # The peer's own dial brought a link up meanwhile: ours is moot.
                log.debug("node %s: own dial to %s ended (%s); the peer's link is up", self.node_name, name, exc)
                try:
                    self._flush(peer)
                except NodeUnreachable:
                    pass
                return
            self.stats.connect_failures += 1
            peer.next_attempt = monotonic() + peer.backoff.delay()
            peer.last_error = exc.reason if isinstance(exc, NodeUnreachable) and exc.reason else str(exc)
            lost, peer.pending = peer.pending, []
            peer.pending_bytes = 0
            self.stats.dropped_unreachable += sum(m.__class__ is P.Send for m in lost)
            log.warning("cannot reach node %r: %s (%d queued messages dropped)", name, exc, len(lost))
            for msg in lost:
                self._fail_unreachable(msg, peer.node_id)
            for ref in list(peer.calls):
                self.system.fail_call(ref, NOCONNECTION)
                self._wake(ref, None)
        finally:
            peer.connecting = None

    def _dial(self, peer: _Peer, address: tuple[str, int]) -> Connection | None:
        """Dial ``peer``: the new link, or None when the peer's own link is the one to wait for.

        A peer that answers ``busy`` holds a link with us: either its own dial
        just brought one up (wait for it), or a link we no longer have and it
        has not yet seen drop (it was frozen, say). It refuses a second link
        until the first is closed, so that nothing arrives out of order: dial
        again, backing off, until the handshake timeout.
        """
        deadline = monotonic() + self._config.handshake_timeout
        delay = 0.01
        while True:
            self._dialing.add(peer.name)
            try:
                return dial(
                    address,
                    self._identity,
                    self._cookie,
                    expected_peer=peer.name,
                    config=self._config,
                    decide=self._decide_outbound,
                    handler=self._on_frame,
                    on_closed=self._on_closed,
                )
            except P.HandshakeRefused as exc:
                if exc.status == P.STATUS_NOK:
                    return None  # the peer's own dial wins: wait for it
                if exc.status != P.STATUS_BUSY:
                    raise
                if peer.up.wait(min(delay, max(0.0, deadline - monotonic()))):
                    return None
                if monotonic() + delay > deadline:
                    raise
                delay = min(delay * 2, 0.5)
            finally:
                self._dialing.discard(peer.name)

    def _flush(self, peer: _Peer) -> None:
        """Move queued messages onto the link, in order, then open it for direct sends.

        One greenlet at a time: another that finds a flush under way leaves
        the queue to it (two could interleave while a full link blocks one).
        """
        conn = peer.link
        if conn is None:
            raise NodeUnreachable(peer.name, "the link closed while it was opening")
        if peer.flushing:
            return
        peer.flushing = True
        try:
            while peer.pending:
                batch, peer.pending = peer.pending, []
                peer.pending_bytes = 0
                for msg in batch:
                    if msg.__class__ is P.Send:  # (a burst to one process shares a frame)
                        self.stats.sent += 1
                        conn.send_payload(*msg)
                    else:
                        conn.send(msg)
        except ConnectionLost as exc:  # what crossed it fires with noconnection (_on_closed)
            raise NodeUnreachable(peer.name, f"the link closed while it was opening: {exc}") from None
        finally:
            peer.flushing = False
        if peer.link is conn and not conn.closed:
            peer.conn = conn

    def _fail_unreachable(self, msg: Any, node_id: int) -> None:
        """What the sender of ``msg`` learns when node ``node_id`` cannot be reached."""
        cls = msg.__class__
        system = self.system
        if cls is P.Link:
            # Later, from the hub: this may run inside the ActorSystem.link()
            # that sent the Link, before it has recorded the link (and in the
            # greenlet of the very process the exit signal is for).
            system._hub.loop.run_callback(system.remote_exit, msg.to, self._local_pid(msg.sender), NOCONNECTION, True)
        elif cls is P.Monitor:
            watcher = self._local_pid(msg.sender)
            ref = self._local_ref(msg.ref)
            if ref in system._calls:
                system.fail_call(ref, NOCONNECTION)
            else:
                pid = msg.to if isinstance(msg.to, Pid) else Pid._unchecked(node_id, 0, 0)  # a (name, node) monitor
                system.remote_down(watcher, ref, pid, NOCONNECTION)
        elif cls is P.AliveRequest or cls is P.SpawnRequest:
            self._wake(self._local_ref(msg.ref), None)  # is_process_alive: False; spawn_remote: failed

    def _decide_outbound(self, hello: Any) -> Any:
        """The handshake of a dial asks: is the node that answered acceptable?"""
        other = self._peers_by_id.get(hello.node_id)
        if other is not None and other.name != hello.name:
            return P.Verdict.refuse("id_collision", f"node id {hello.node_id} is that of {other.name!r}")
        return P.ACCEPT

    def _decide(self, hello: Any) -> Any:
        """The handshake of an inbound link asks: may this peer link with us?"""
        if self._closed:
            return P.Verdict.refuse("not_allowed", "node is shutting down")
        other = self._peers_by_id.get(hello.node_id)
        if other is not None and other.name != hello.name:
            return P.Verdict.refuse("id_collision", f"node id {hello.node_id} is that of {other.name!r}")
        peer = self._peers.get(hello.name)
        if peer is not None and peer.link is not None and not peer.link.closed:
            # A new incarnation may replace the link (the old one is dead even
            # if TCP has not said so), but only once it has proved the cookie:
            # _register closes the old link then, never on a mere HELLO.
            if peer.creation is None or hello.creation == peer.creation:
                return P.Verdict.refuse(P.STATUS_BUSY, "a link with that node is up")
        if hello.name in self._dialing:
            return P.DIALING
        return P.ACCEPT

    def _register(self, conn: Connection) -> None:
        """A link is up (either direction): make it the peer's, announce NodeUp."""
        hello = conn.peer
        if self._allowed is not None and hello.name not in self._allowed:
            # Refused after authentication; the peer sees a closed connection, nothing more.
            conn.close("not allowed")
            raise NotAllowed(f"node {self.node_name}: refused a link with node {hello.name!r}: not in allowed_nodes")
        peer = self._peer(hello.name)
        if peer.node_id != hello.node_id:
            conn.close("id mismatch")
            raise HandshakeError(f"node {hello.name!r} announced id {hello.node_id}, expected {peer.node_id}")
        if peer.creation is not None and peer.creation != hello.creation:
            log.info("node %s restarted (creation %s -> %s)", hello.name, peer.creation, hello.creation)
            old = peer.link
            if old is not None and old is not conn:
                old.close(NOCONNECTION)  # fires what crossed it (noconnection), NodeDown
        peer.creation = hello.creation
        peer.link = conn
        peer.up.set()
        log.info("node %s: link to %s up", self.node_name, hello.name)
        self._notify_nodes(NodeUp(hello.name))

    def _handle_inbound(self, sock: Any, address: Any) -> None:
        """StreamServer handler: handshake, then hold the socket for the link's life.

        An unauthenticated connection gets nothing but the handshake, within
        its deadline; past ``max_handshakes`` at once, or over the connection
        rate, it is closed before a byte is read.
        """
        if self._handshakes >= self._max_handshakes or not self._accept_rate.take():
            self.stats.refused_connections += 1
            if self._refusal_log.take():
                log.warning(
                    "node %s: closing a connection from %s: too many handshakes in progress (%d) or connections per second",
                    self.node_name,
                    address,
                    self._handshakes,
                )
            sock.close()
            return
        self._handshakes += 1
        try:
            conn = accept_handshake(
                sock,
                self._identity,
                self._cookie,
                config=self._config,
                decide=self._decide,
                handler=self._on_frame,
                on_closed=self._on_closed,
                address=address,
            )
        except HandshakeError:
            return  # logged by the connection module
        except Exception:  # noqa: BLE001 - a bad peer never takes the node down
            log.exception("inbound connection from %s failed", address)
            return
        finally:
            self._handshakes -= 1
        try:
            self._register(conn)
        except HandshakeError as exc:
            log.warning("%s", exc)
            return
        conn.start()
        # Even while this node's own dial is in flight: the peer's dial won
        # (or ours is stuck), so what is queued goes out on this link now.
        try:
            self._flush(self._peers[conn.peer_name])
        except NodeUnreachable:
            pass
        conn.wait_closed()

    def _on_closed(self, conn: Connection, reason: Any) -> None:
        peer = self._peers.get(conn.peer_name) if conn.peer is not None else None
        if peer is None or peer.link is not conn:
            return
        peer.link = None
        peer.conn = None
        peer.up = Event()
        peer.next_attempt = 0.0  # the next send tries again at once
        log.info("node %s: link to %s down (%s)", self.node_name, peer.name, reason)
        self.system.node_down(peer.node_id, NOCONNECTION, peer.name)
        for ref in list(peer.calls):
            self.system.fail_call(ref, NOCONNECTION)
            self._wake(ref, None)
        self._notify_nodes(NodeDown(peer.name, NOCONNECTION))

    def _wake(self, ref: Ref, value: Any) -> None:
        for table in (self._alive_waiters, self._spawn_waiters):
            waiter = table.pop(ref, None)
            if waiter is not None:
                self.system._hub.loop.run_callback(waiter.switch, value)

    # -- frames from peers ----------------------------------------------------------------

    def _on_frame(self, conn: Connection, msg: Any) -> None:
        """Runs in the link's reader greenlet for each control message.

        A payload or reason this node cannot decode (an unknown message type,
        bytes over a limit) is counted in ``stats.bad_payloads`` and re-raised:
        the link logs and drops that frame, and carries on.
        """
        cls = msg.__class__
        if cls is P.SendTerms:  # the hot path, kept inline: plain terms, never a call
            to = msg[1]
            if to.node == self.node_id and to.creation == self.creation:
                ctx = self._procs.get(to.id)
                if ctx is not None:
                    msgs = msg[2]
                    self.stats.received += len(msgs)
                    ctx._mailbox.deliver_all(msgs, msg[0])
            else:
                self.stats.dropped_stale += len(msg[2])
            return
        try:
            if cls is P.Send:
                to = msg.to
                if to.node == self.node_id and to.creation == self.creation:
                    ctx = self._procs.get(to.id)
                    if ctx is not None:
                        payload = self._codec.decode(msg.payload)
                        if payload.__class__ is tuple and len(payload) == 3 and payload[0] == _GEN_CALL:
                            payload = _as_gen_call(payload)
                        self.stats.received += 1
                        ctx._mailbox.deliver(payload, msg.sender)
                else:
                    self.stats.dropped_stale += 1
            else:
                self._on_control(conn, msg)
        except SerializationError:
            self.stats.bad_payloads += 1
            raise

    def _on_control(self, conn: Connection, msg: Any) -> None:
        """Every control message but ``Send`` (reader greenlet)."""
        cls = msg.__class__
        system = self.system
        if cls is P.RegSend:
            pid = system.whereis(msg.to_name)
            if pid is not None:
                payload = self._codec.decode(msg.payload)
                if payload.__class__ is tuple and len(payload) == 3 and payload[0] == _GEN_CALL:
                    payload = _as_gen_call(payload)
                self.stats.received += 1
                system.send(pid, payload, sender=msg.sender)
        elif cls is P.CallReply:
            ref = self._local_ref(msg.ref)
            if ref in system._calls:
                system.complete_call(ref, self._codec.decode(msg.payload))
        elif cls is P.AliveRequest:
            local = self._local_target(msg.pid)
            alive = local is not None and system.is_process_alive(local)
            conn.send(P.AliveReply(msg.ref, alive))
        elif cls is P.AliveReply:
            self._wake(self._local_ref(msg.ref), bool(msg.alive))
        elif cls is P.Link:
            local = self._local_target(msg.to)
            if local is None or not system.add_remote_link(local, msg.sender):
                conn.send(P.Exit(msg.to, msg.sender, self._wire_reason(NOPROC)))
        elif cls is P.Unlink:
            local = self._local_target(msg.to)
            if local is not None:
                system.remove_remote_link(local, msg.sender)
        elif cls is P.Exit or cls is P.Exit2:
            local = self._local_target(msg.to)
            if local is not None:
                system.remote_exit(msg.sender or SYSTEM_PID, local, self._codec.decode(msg.reason), cls is P.Exit)
        elif cls is P.Monitor:
            target = msg.to
            local = system.whereis(target) if isinstance(target, str) else self._local_target(target)
            if local is None or not system.add_remote_monitor(msg.sender, local, msg.ref):
                conn.send(P.Down(target, msg.sender, msg.ref, self._wire_reason(NOPROC)))
        elif cls is P.Demonitor:
            target = msg.to
            local = system.whereis(target) if isinstance(target, str) else self._local_target(target)
            if local is not None:
                system.remove_remote_monitor(local, msg.ref)
        elif cls is P.Down:
            ref = self._local_ref(msg.ref)
            reason = self._codec.decode(msg.reason)
            if ref in system._calls:
                system.fail_call(ref, reason)
            else:
                watcher = self._local_target(msg.to)
                pid = (
                    msg.sender
                    if isinstance(msg.sender, Pid)
                    else Pid._unchecked(conn.peer.node_id, 0, conn.peer.creation)
                )
                if watcher is not None:
                    system.remote_down(watcher, ref, pid, reason)
        elif cls is P.SpawnRequest:
            self._on_spawn_request(conn, msg)
        elif cls is P.SpawnReply:
            self._on_spawn_reply(msg)
        else:
            log.debug("ignoring %s from %s", cls.__name__, conn.peer_name)

    def _on_spawn_request(self, conn: Connection, msg: Any) -> None:
        try:
            pid = self._spawn_local(msg.factory, tuple(self._codec.decode(msg.args)))
        except Exception as exc:  # noqa: BLE001 - the error goes back to the caller
            conn.send(P.SpawnReply(msg.ref, msg.sender, f"{type(exc).__name__}: {exc}"))
            return
        # The child has not run yet: link and monitor before it can exit.
        if msg.link:
            self.system.add_remote_link(pid, msg.sender)
        if msg.monitor:
            self.system.add_remote_monitor(msg.sender, pid, msg.ref)
        conn.send(P.SpawnReply(msg.ref, msg.sender, self._glob_pid(pid)))
