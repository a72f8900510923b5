"""Where nodes are: a node's registration, and where to dial ``b@hostB`` (Erlang's ``erl_epmd``).

Three modes, chosen by the node's arguments (see docs/several-machines.md):

* **one port mapper per host** (the default, as Erlang): the node registers
  its alive name with the port mapper on its own host, at
  ``127.0.0.1:$ERL_EPMD_PORT`` (4369; started when none answers, listening on
  every interface so that other hosts can ask it). To reach ``b@hostB`` it
  resolves ``hostB`` (gevent's resolver: the hub never blocks), asks the port
  mapper at ``hostB:$ERL_EPMD_PORT`` where ``b`` listens, and dials that port
  at hostB's address, or at the address ``b`` advertised in its registration.
  A name whose host is this machine's own is looked up on loopback.
* **one shared port mapper** (``epmd_address=`` or ``$JOERL_EPMD_ADDRESS``):
  every node registers its full ``name@host`` there (remote registrations
  carry an HMAC with the cookie) and looks every other node up there.
* **portless** (``portless=True``): no port mapper at all; every node listens
  on one fixed port (the listen address's port) or, with port 0, on a port
  derived from its alive name (:func:`~joerl.node.names.derived_port`), and
  peers are dialled there directly (Erlang's ``-erl_epmd_port`` setups).

Resolutions of host names are cached for :data:`RESOLVE_TTL` seconds and
forgotten at once when the port mapper at that address does not answer;
where a node listens is asked afresh at every dial (a restarted node has
another port), as Erlang does. Lookups at one port mapper that overlap (a
node told to link to many others at once) share one listing: while a
lookup is waiting for its reply, the next ones wait for one ``ListNodes``
request instead of a connection each (a name the listing lacks is looked
up alone). In an 80-node mesh that is 80 requests instead of 6,320, which
a busy port mapper could not serve within the lookup timeout.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket as _stdsocket
from dataclasses import replace
from time import monotonic
from typing import Any

import gevent
from gevent import socket as gsocket
from gevent.event import AsyncResult

from .. import epmd as _epmd
from ..address import format_address, parse_address
from ..errors import DistributionError, EpmdError, NodeUnreachable
from .config import resolve_epmd_address
from .names import default_host, derived_port, is_ip_literal, parse_node_name

__all__ = ["EPMD_PORT_ENV", "RESOLVE_TTL", "Locator", "epmd_port"]

log = logging.getLogger("joerl.node")

EPMD_PORT_ENV = "ERL_EPMD_PORT"
#: Seconds a host name's address stays cached.
RESOLVE_TTL = 10.0
_WILDCARDS = ("", "0.0.0.0", "::")
#: The ``extra`` field of a joerl node's registration: Erlang's own epmd keeps no metadata,
#: so this is how a node tells a joerl node from an Erlang one there (``erl_routing.is_joerl_node``).
JOERL_EXTRA = b"joerl-dist/1"


def epmd_port() -> int:
    """The port mappers' port: ``$ERL_EPMD_PORT``, else 4369 (as Erlang's nodes and epmd read it)."""
    text = os.environ.get(EPMD_PORT_ENV, "").strip()
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else _epmd.DEFAULT_PORT


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _own_hosts() -> frozenset[str]:
    """The names this machine answers to in node names (no DNS query: ``getfqdn`` may stall)."""
    names = {default_host(False), _stdsocket.gethostname(), "localhost"}
    return frozenset(n for n in names if n)


class Locator:
    """A node's registration and its lookups of other nodes (see the module docstring).

    Args:
        name: this node's full name.
        listen_address: ``"host:port"`` the node listens on (portless with
            port 0: the port derived from its name).
        epmd_address: the shared port mapper; None: one port mapper per host
            (``$JOERL_EPMD_ADDRESS`` also selects the shared mode).
        advertise_host: the host peers should dial (None: the listen host; on
            a wildcard address, the port mapper's address, or when shared
            the host part of the name).
        portless: no port mapper (see the module docstring).
        timeout: seconds each port mapper request may take.

    Raises:
        ValueError: ``listen_address`` is not an address.
    """

    def __init__(
        self,
        name: str,
        listen_address: str,
        epmd_address: str | None,
        advertise_host: str | None,
        portless: bool,
        timeout: float,
    ) -> None:
        self.name = name
        self.own = parse_node_name(name)
        self.portless = portless
        self.listen_host, self.listen_port = listen_host, port = parse_address(listen_address, "0.0.0.0")
        #: Portless: the port every node listens on (None: each node's derived port).
        self.fixed_port = port or None
        if portless and not port:
            self.listen_port = derived_port(self.own.alive)
        self.shared = not portless and bool(epmd_address or os.environ.get("JOERL_EPMD_ADDRESS"))
        self.epmd_port = epmd_port()
        if self.shared:
            self.epmd_address = resolve_epmd_address(epmd_address)
        else:
            self.epmd_address = format_address("127.0.0.1", self.epmd_port)
        self.timeout = timeout
        self._own_hosts = _own_hosts() | {self.own.host}
        if advertise_host is None:
            advertise_host = listen_host if listen_host not in _WILDCARDS else ""
            if self.shared and not advertise_host:
                advertise_host = self.own.host
        #: The host registered for peers to dial ("": the address they reached the port mapper at).
        self.advertise_host = advertise_host
        self._resolved: dict[str, tuple[str, float]] = {}
        self.client: _epmd.EpmdClient | None = None
        self._asking: dict[str, int] = {}  # port mapper address -> lookups waiting for a reply
        self._listing: dict[str, AsyncResult] = {}  # port mapper address -> the listing under way

    @property
    def registered_name(self) -> str:
        """What the port mapper holds: the full name when shared, else the alive name."""
        return self.name if self.shared else self.own.alive

    # -- registration ----------------------------------------------------------

    def register(self, port: int, start_epmd: bool, metadata: dict[str, Any], cookie: bytes) -> int:
        """Register this node listening on ``port``; the creation the port mapper assigned (0: none).

        Raises:
            DistributionError: the name is taken, or the port mapper cannot be reached.
        """
        if self.portless:
            return 0
        address = self.epmd_address
        try:
            if start_epmd and not _epmd.ping(address, timeout=1.0):
                listen = address if self.shared else format_address("0.0.0.0", self.epmd_port)
                log.info("no port mapper at %s: starting one on %s", address, listen)
                _epmd.spawn_daemon(listen)
            self.client = _epmd.EpmdClient(address, timeout=self.timeout)
            proof = cookie if self.shared else None  # a shared port mapper on another host asks for the HMAC
            info = self.client.register(
                self.registered_name, self.advertise_host, port, metadata=metadata, extra=JOERL_EXTRA, cookie=proof
            )
        except _epmd.NameInUse as exc:
            raise DistributionError(f"node name {self.name!r} is already registered at {address}") from exc
        except EpmdError as exc:
            raise DistributionError(f"cannot register node {self.name!r} at port mapper {address}: {exc}") from exc
        return info.creation

    def close(self) -> None:
        """Unregister (the port mapper may be gone: that is fine)."""
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - the port mapper may be gone already
                log.debug("port mapper close failed", exc_info=True)

    # -- lookups ---------------------------------------------------------------

    def resolve(self, host: str) -> str:
        """An address of ``host`` (this machine's own names: loopback), cached for :data:`RESOLVE_TTL`.

        Raises:
            NodeUnreachable: the name does not resolve.
        """
        if host in self._own_hosts:
            return "127.0.0.1"
        if is_ip_literal(host):
            return host
        cached = self._resolved.get(host)
        if cached is not None and cached[1] > monotonic():
            return cached[0]
        try:
            infos = gsocket.getaddrinfo(host, None, 0, _stdsocket.SOCK_STREAM)
        except OSError as exc:
            raise NodeUnreachable(f"?@{host}", f"cannot resolve host {host!r}: {exc}") from None
        infos.sort(key=lambda info: info[0] != _stdsocket.AF_INET)  # IPv4 first: port mappers listen on 0.0.0.0
        address = str(infos[0][4][0])
        if len(self._resolved) > 1024:
            self._resolved.clear()
        self._resolved[host] = (address, monotonic() + RESOLVE_TTL)
        return address

    def lookup(self, name: str) -> _epmd.NodeInfo | None:
        """Where node ``name`` (a full name) listens: its record, ``host`` the address to dial.

        Returns:
            None when its port mapper does not know it.

        Raises:
            NodeUnreachable: its host does not resolve.
            EpmdError: its port mapper cannot be asked.
        """
        target = parse_node_name(name)
        if self.shared:
            client = self.client or _epmd.EpmdClient(self.epmd_address, timeout=self.timeout)
            info = self._ask(client, self.epmd_address, name)
            return None if info is None else replace(info, name=name, host=self.resolve(info.host))
        ip = self.resolve(target.host)
        if self.portless:
            port = self.listen_port_of(target.alive)
            return _epmd.NodeInfo(name, ip, port, kind="portless")
        try:
            where = format_address(ip, self.epmd_port)
            info = self._ask(_epmd.EpmdClient(where, timeout=self.timeout), where, target.alive)
        except EpmdError:
            self._resolved.pop(target.host, None)  # the address may be stale
            raise
        if info is None:
            return None
        host = info.host
        if not host or host in _WILDCARDS or (_is_loopback(host) and not _is_loopback(ip)):
            host = ip  # no advertised address that a remote peer can use: the port mapper's
        return replace(info, name=name, host=host)

    def listen_port_of(self, alive: str) -> int:
        """Portless: where node ``alive`` listens."""
        return self.fixed_port if self.fixed_port else derived_port(alive)

    def registered_names(self) -> list[str]:
        """The full names registered at this node's port mapper (may block: never from the hub)."""
        return [info.name for info in self.list_nodes()]

    def list_nodes(self) -> list[_epmd.NodeInfo]:
        """Every node this node's port mapper knows, by full name (portless: none)."""
        if self.client is None:
            return []
        nodes = self.client.list_nodes()
        if self.shared:
            return [n for n in nodes if "@" in n.name]
        return [replace(n, name=f"{n.name}@{self.own.host}") for n in nodes if "@" not in n.name]

    def _ask(self, client: _epmd.EpmdClient, key: str, name: str) -> _epmd.NodeInfo | None:
        """``client.lookup(name)``, or ``name``'s record in a listing of the port
        mapper at ``key`` when other lookups there are waiting (see the module docstring)."""
        listing = self._listing.get(key)
        if listing is None and self._asking.get(key, 0) > 0:
            listing = self._listing[key] = AsyncResult()
            gevent.spawn(self._list, client, key, listing)
        if listing is not None:
            info = listing.get().get(name)  # (set in every case, within the client's timeout)
            if info is not None:
                return info  # type: ignore[no-any-return]
        self._asking[key] = self._asking.get(key, 0) + 1
        try:
            return client.lookup(name)
        finally:
            self._asking[key] -= 1

    def _list(self, client: _epmd.EpmdClient, key: str, listing: AsyncResult) -> None:
        """Fetch the listing the waiting lookups share: joerl's records only (an
        Erlang daemon's listing has no host or metadata: those ask alone)."""
        nodes: dict[str, _epmd.NodeInfo] = {}
        try:
            nodes = {n.name: n for n in client.list_nodes() if n.kind == "joerl"}
        except EpmdError as exc:
            log.debug("listing the port mapper at %s failed (%s): each lookup asks alone", key, exc)
        except Exception:  # a bug must not leave the lookups waiting
            log.exception("listing the port mapper at %s failed", key)
        finally:
            del self._listing[key]
            listing.set(nodes)
