"""The node (OTP's net_kernel): a :class:`DistributedSystem`, the user's API of distribution.

A :class:`DistributedSystem` is an :class:`~joerl.system.ActorSystem` that
other OS processes can reach. It listens for node links, registers its name
with the port mapper (starting one if none answers, as ``erl`` does), and
lets its system route every message, link, monitor and exit signal
addressed to a pid of another node over one authenticated link per peer,
dialled on first use. It only assembles the parts, each in its own module:

* :mod:`~joerl.node.peers`: the peer table (and who watches nodes);
* :mod:`~joerl.node.routing`: the runtime's :class:`~joerl._router.Router`
  (signals out, the pid mapping at the wire boundary, the codec);
* :mod:`~joerl.node.dispatch`: frames in, applied through the runtime's Inbound;
* :mod:`~joerl.node.links`: dialling, back-off, the handshake's decisions, admission;
* :mod:`~joerl.node.spawn`: remote spawn;
* :mod:`~joerl.node.global_names`: cluster-wide names, a service on this API.

Threading: like ActorSystem, a node lives in one thread (any greenlets).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from gevent.server import StreamServer

from ..discovery._loop import DiscoveryLoop
from ..discovery._strategy import Discovery
from ..errors import DistributionError, NodeUnreachable
from ..message import NOCONNECTION, NodeDown
from ..pid import Pid
from ..serialization import Limits, MessageRegistry, default_registry
from ..system import ActorSystem, check_max_mailbox
from . import protocol as P
from .admission import Admission
from .config import choose_creation, load_cookie, message_limits, node_id_of
from .connection import LinkConfig
from .dispatch import Dispatch
from .erl_node import ErlangConfig, ErlangSide, erlang_cookie
from .facade import SystemFacade
from .global_names import GlobalNames
from .introspection import Introspection
from .links import Links
from .locator import Locator
from .names import node_name as _node_name
from .peers import NodeWatchers, PeerTable
from .routing import Routing
from .serving import Serving
from .spawn import Spawner
from .stats import NodeStats, link_counters
from .tls import TlsConfig, tls_wrapper

__all__ = ["PROTOCOL_NAME", "DistributedSystem", "NodeStats"]

log = logging.getLogger("joerl.node")

PROTOCOL_NAME = "joerl-dist/1"


class DistributedSystem(SystemFacade, Serving):
    """A node: an actor system reachable from other nodes.

    Args:
        name: the node's name, ``name@host`` (see :mod:`joerl.node.names`); a
            name without ``@host`` gets this machine's short host name (its
            FQDN with ``long_names``). ``node_name`` holds the full name.
        listen_address: ``"host:port"`` to listen on (default every interface,
            as Erlang's nodes); port 0 picks a free one.
        epmd_address: one port mapper shared by the whole cluster (else
            ``$JOERL_EPMD_ADDRESS``); without either, the node registers with
            the port mapper of its own host (``127.0.0.1:$ERL_EPMD_PORT``,
            4369 by default) and finds ``b@hostB`` by asking hostB's.
        cookie: the shared secret; else ``$JOERL_COOKIE``, else ``~/.joerl.cookie``.
        start_epmd: start a port mapper (a detached ``joerl-epmd --daemon``)
            when none answers at ``epmd_address``.
        tick_time: seconds of silence after which a peer is declared down
            (Erlang's net_ticktime; at least 1).
        registry: the message types this node decodes (default: the process-wide one).
        limits: decoding limits for payloads from peers (default: the frame limit; see ``message_limits``).
        link_config: link settings (handshake deadline, frame and queue sizes, TLS hook).
        advertise_host: the host peers should dial, registered with the port
            mapper (behind NAT, in a container). Default: the listen host; on
            a wildcard address, the address peers reached the port mapper at
            (with a shared port mapper: the host part of the name).
        metadata: extra key/values published with the registration.
        global_names: run the cluster-wide name server (``global_register`` & co.).
        tls: certificates for mutual TLS on every link (see docs/distribution.md);
            a TLS node refuses plaintext peers.
        allowed_nodes: if given, only these node names may link with this one;
            any other is refused after authentication (it learns nothing).
        max_mailbox: the node-wide default ``max_mailbox`` of its processes
            (``ActorSystem(max_mailbox=...)``; see docs/processes.md).
        max_handshakes: unfinished inbound handshakes from all addresses at
            once; past it the oldest silent one is evicted (finished ones, the
            links, do not count).
        max_connections_per_second: inbound connections accepted per second
            from one source address while it has handshakes unfinished (in
            bursts of as many, or of ``max_handshakes_per_address`` if more);
            more are closed at once.
        max_handshakes_per_address: unfinished inbound handshakes from one
            source address at once; past it that address's oldest silent one
            is evicted.
        first_bytes_timeout: seconds an inbound connection may stay silent
            before it is closed (the whole handshake has ``handshake_timeout``).
        long_names: Erlang's long names: a name without ``@host`` gets this
            machine's FQDN rather than its short host name.
        portless: no port mapper: listen on the listen address's port and
            dial every peer at its host on that same port; with port 0, each
            node listens on a port derived from its name
            (:func:`~joerl.node.names.derived_port`) and is dialled there.
        discovery: a :class:`~joerl.discovery.Discovery` strategy, run by
            ``node.discovery`` from start to shutdown (docs/discovery.md).
        hidden: join hidden (as Erlang's observer): out of peers' ``nodes()``, connect-all, global sync.
        introspection: answer peers' read-only introspection queries (``node.introspection``).
        erlang: also be an Erlang node, ``True`` or an :class:`~joerl.node.erl_node.ErlangConfig`
            (docs/erlang.md); the cookie may then come from ``~/.erlang.cookie`` too.

    Raises:
        InvalidNodeName: ``name`` is not a valid node name (checked before any IO).
        ValueError: an admission setting is not positive.
        DistributionError: the name is taken, or the port mapper cannot be
            reached. A constructor that raises leaves nothing behind: no
            listener, registration, greenlet or open file.
    """

    def __init__(
        self,
        name: str,
        listen_address: str = "0.0.0.0:0",
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
        max_handshakes: int = 1024,
        max_connections_per_second: float = 200.0,
        max_handshakes_per_address: int = 128,
        first_bytes_timeout: float = 2.0,
        max_mailbox: int | None = None,
        long_names: bool = False,
        portless: bool = False,
        discovery: Discovery | None = None,
        hidden: bool = False,
        introspection: bool = True,
        erlang: bool | ErlangConfig = False,
    ) -> None:
        # Everything that can be checked is checked before any IO.
        name = _node_name(name, long_names=long_names)
        check_max_mailbox(max_mailbox)
        if not first_bytes_timeout > 0:
            raise ValueError(f"first_bytes_timeout must be positive, got {first_bytes_timeout!r}")
        admission = Admission(max_handshakes, max_handshakes_per_address, max_connections_per_second)
        self.node_name = name
        self.node_id = node_id_of(name)
        self.hidden = hidden
        self.stats = NodeStats()
        config = link_config or LinkConfig(tick_time=tick_time)
        if link_config is not None and tick_time != 60.0:
            config = replace(link_config, tick_time=tick_time)  # LinkConfig is frozen
        if tls is not None:
            if config.wrap_socket is not None:
                raise ValueError("give either tls= or link_config.wrap_socket, not both")
            config = replace(config, wrap_socket=tls_wrapper(tls))
        config, limits = message_limits(config, limits)  # one message-size limit, end to end
        cookie_bytes = erlang_cookie(cookie) if erlang else load_cookie(cookie)
        self.erlang = ErlangSide(erlang, name, cookie_bytes, config.tick_time, allowed_nodes)  # (inert unless asked)
        self._closed = False
        self.creation = 0
        self._locator = loc = Locator(name, listen_address, epmd_address, advertise_host, portless, epmd_timeout)
        self.epmd_address, self.advertise_host, self.listen_host = loc.epmd_address, loc.advertise_host, loc.listen_host
        meta = {"node_id": self.node_id, "protocol": PROTOCOL_NAME, **({"hidden": True} if hidden else {})}
        meta.update(metadata or {})
        # Bound now, accepting once the node is whole (after its registration).
        self._server = StreamServer((loc.listen_host, loc.listen_port), _refuse)
        try:
            self._server.init_socket()
            self.listen_port: int = self._server.server_port
            registered = self._locator.register(self.listen_port, start_epmd, meta, cookie_bytes)
            self._assemble(name, registered, registry, limits, max_mailbox)
            self._links = Links(
                identity=P.NodeIdentity(
                    name, self.node_id, self.creation, P.HIDDEN_FLAGS if hidden else P.DEFAULT_FLAGS
                ),
                cookie=cookie_bytes,
                config=config,
                peers=self._peers,
                watchers=self._watchers,
                routing=self._routing,
                stats=self.stats,
                handler=self._dispatch.on_frame,
                lookup=self._locator.lookup,
                epmd_host="127.0.0.1",
                allowed=None if allowed_nodes is None else [self._name_of(n) for n in allowed_nodes],
                admission=admission,
                first_bytes_timeout=first_bytes_timeout,
            )
            self._routing.outbox = self._links
            self.erlang.attach(self._routing, self.system, self._spawner, self._watchers, loc.lookup, self._links)
            self._server.set_handle(self._links.handle_inbound)
            self._server.start()
            #: Cluster-wide names (Erlang's ``global``); see docs/global_names.md.
            self.global_names: GlobalNames | None = GlobalNames(self) if global_names else None
            self.introspection = Introspection(self, self._peers, serve=introspection)  # (node_info & co.)
            self.discovery = DiscoveryLoop.run(self, discovery, cookie_bytes)  # (None without a strategy)
        except BaseException:
            self._undo()
            raise
        where = "none (portless)" if portless else self.epmd_address
        log.info("node %s (id %d, creation %d) on %s:%d, port mapper %s", name, self.node_id, self.creation, loc.listen_host, self.listen_port, where)  # fmt: skip

    def _assemble(
        self,
        name: str,
        registered_creation: int,
        registry: MessageRegistry | None,
        limits: Limits | None,
        max_mailbox: int | None,
    ) -> None:
        """Build the node's parts around its registration (``registered_creation``: the port mapper's)."""
        # The incarnation is fixed at first registration: pids handed out
        # stay valid even if the port mapper restarts and hands out another.
        self.creation = choose_creation(registered_creation)  # random: never the port mapper's
        self.system = ActorSystem(name, max_mailbox=max_mailbox)
        self._peers = PeerTable(name, self.node_id, self._locator.registered_names)
        self._routing = routing = Routing(
            self.system, self.node_id, self.creation, self._peers, self.stats, registry or default_registry(), limits,
            wrap=self.erlang.wrap,
        )  # fmt: skip
        self._watchers = NodeWatchers(routing.inbound)
        self._spawner = Spawner(self.system, routing, self.connect_to_node)
        self._dispatch = Dispatch(routing, self.system, self._spawner)

    def _undo(self) -> None:
        """A constructor that failed half way: undo what it did, in reverse."""
        self._closed = True
        self._server.close()
        links: Links | None = getattr(self, "_links", None)
        if links is not None:
            links.close()
        DiscoveryLoop.stop_of(getattr(self, "discovery", None))
        system: ActorSystem | None = getattr(self, "system", None)
        if system is not None:
            system.shutdown(1.0)
        self._locator.close()  # unregisters: the name is free again

    def _name_of(self, name: str) -> str:
        """A node name as given to the API -> the full name (a bare one gets this node's host)."""
        return _node_name(name, host=self._locator.own.host)

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
            DiscoveryLoop.stop_of(self.discovery)
            self.system.shutdown(timeout)
        finally:
            self.erlang.close()
            self._links.close()
            self._server.stop(timeout=1.0)
            self._locator.close()
            log.info("node %s shut down", self.node_name)

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` has run."""
        return self._closed

    @property
    def config(self) -> LinkConfig:
        """The link settings in use."""
        return self._links.config

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
        return self._locator.list_nodes()

    def link_stats(self) -> dict[str, dict[str, Any]]:
        """Each link's counters and queues now, by peer name (hidden peers too; see :mod:`joerl.metrics`)."""
        return {peer.name: link_counters(peer) for peer in self._peers if peer.link is not None}

    def nodes(self, kind: str = "visible") -> list[str]:
        """The names of the peers this node has a live link with: ``"visible"``
        ones (Erlang's ``nodes()``), ``"hidden"`` ones or all (``"connected"``)."""
        return sorted(self._peers.connected(kind) + self.erlang.nodes(kind))

    def disconnect_node(self, name: str) -> bool:
        """Close the link to ``name`` as if it broke (NodeDown, ``noconnection``); False if none."""
        return self._links.disconnect(name)

    def connect_to_node(self, name: str, timeout: float | None = None) -> bool:
        """Make sure a link to ``name`` is up (sends connect by themselves; this waits).

        Raises:
            NodeUnreachable: the node cannot be found or reached.
        """
        return self.erlang.connect(self._name_of(name), timeout, otherwise=self._links.connect_to_node)

    def node_of(self, pid: Pid) -> str | None:
        """The name of the node ``pid`` lives on (None if unknown)."""
        if pid.node == 0 or pid.node == self.node_id:
            return self.node_name
        return self._peers.name_of(pid.node) or self.erlang.name_of(pid.node)

    def global_pid(self, pid: Pid) -> Pid:
        """``pid`` as other nodes see it: ``<node_id.id.creation>`` for a local one."""
        return self._routing.glob_pid(pid)

    # -- node monitoring -----------------------------------------------------------

    def monitor_nodes(self, pid: Any, flag: bool = True) -> None:
        """``pid`` receives ``NodeUp(name)`` / ``NodeDown(name, reason)`` for every peer."""
        self._watchers.watch_all(self._pid(pid), flag)

    def monitor_node(self, pid: Any, name: str, flag: bool = True) -> None:
        """``pid`` receives ``NodeDown(name, reason)`` (and ``NodeUp``) for node ``name``.

        Like Erlang's ``monitor_node``, a node that is not linked is connected
        to; if that fails, ``NodeDown`` arrives at once.
        """
        pid, name = self._pid(pid), self._name_of(name)
        if self._watchers.watch(pid, name, flag) and flag:
            try:
                self.connect_to_node(name)
            except NodeUnreachable as exc:
                self.system.send(pid, NodeDown(name, exc.reason or NOCONNECTION))

    def _pid(self, dest: Any) -> Pid:
        if isinstance(dest, str):
            pid = self.system.whereis(dest)
            if pid is None:
                raise ValueError(f"no process is registered as {dest!r}")
            return pid
        pid = getattr(dest, "pid", dest)
        if not isinstance(pid, Pid):
            raise TypeError(f"expected a pid, a name, an ActorRef or a context, not {dest!r}")
        return pid

    # -- liveness -------------------------------------------------------------------

    def is_process_alive(self, pid: Pid, timeout: float = 5.0) -> bool:
        """True while ``pid`` runs: a real round trip to its node for a remote pid
        (False if the node cannot be reached within ``timeout``)."""
        if pid.node == 0:
            return self.system.is_process_alive(pid)
        return self.erlang.is_alive(pid, timeout, otherwise=self._routing.is_alive)

    # -- remote spawn ------------------------------------------------------------------

    def register_factory(self, name: str, factory: Callable[..., Any], *, function: bool = False) -> None:
        """Let peers spawn processes here by ``name``: no code travels, nothing is pickled.

        Args:
            name: what peers pass to :meth:`spawn_remote`.
            factory: ``factory(*args) -> Actor`` instance; or, with
                ``function=True``, a process body run as ``factory(ctx, *args)``.
        """
        self._spawner.register_factory(name, factory, function=function)

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
        return self._spawner.spawn_remote(self._name_of(node), name, args, link, monitor, caller, timeout)


def _refuse(sock: Any, _address: Any) -> None:
    sock.close()  # (never runs: the server accepts only once the node is whole)
