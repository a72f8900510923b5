"""Erlang distribution on a joerl node: its settings, its cookie, and the parts it assembles.

A :class:`~joerl.node.node.DistributedSystem` made with ``erlang=True`` (or
an :class:`ErlangConfig`) is also an Erlang node: Erlang and Elixir nodes
dial it on its one listening port (their first bytes tell them apart from
joerl's), and it dials the Erlang nodes its processes address. This module
builds that half of the node around joerl's own parts:

* :class:`~joerl.erlang.mapping.TermMap`: pids, refs, terms and reasons at the boundary;
* :class:`~joerl.node.erl_peers.ErlangLinks`: the links, their dials and handshakes;
* :class:`~joerl.node.erl_routing.ErlangRouting` behind the node's
  :class:`~joerl.node.erl_routing.NodeRouter`: signals out;
* :class:`~joerl.node.erl_dispatch.ErlangDispatch`: control messages in.

docs/erlang.md says how to connect, what maps to what, and what is not supported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..erlang import dflags
from ..erlang.control import DEFAULT_MAX_FRAME_SIZE
from ..erlang.mapping import TermMap
from ..erlang.records import Records
from ..errors import DistributionError
from ..message import NOCONNECTION, NodeDown, NodeUp
from .config import COOKIE_ENV, COOKIE_FILE, load_cookie, node_id_of
from .erl_dispatch import ErlangDispatch
from .erl_peers import ErlangLinks, ErlPeer
from .erl_routing import ErlangRouting, NodeRouter

if TYPE_CHECKING:
    from .._router import Router
    from ..pid import Pid
    from ..system import ActorSystem
    from .links import Links
    from .peers import NodeWatchers
    from .routing import Routing
    from .spawn import Spawner

__all__ = ["ERLANG_COOKIE_FILE", "ErlangConfig", "ErlangSide", "erlang_cookie"]

#: Erlang's own cookie file: the last place a node with Erlang distribution looks.
ERLANG_COOKIE_FILE = "~/.erlang.cookie"


@dataclass(frozen=True)
class ErlangConfig:
    """How a joerl node speaks Erlang's distribution protocol.

    Attributes:
        published: announce the node as a visible one (``DFLAG_PUBLISHED``):
            Erlang nodes then list it in ``nodes()`` and make it part of their
            fully connected cluster (``global``'s protocol included, which
            joerl does not speak). Default: hidden, listed in ``nodes(hidden)``.
        tick_time: Erlang's ``net_ticktime`` in seconds (default: the node's ``tick_time``).
        handshake_timeout: seconds a handshake may take (Erlang's ``net_setuptime``, 7).
        max_frame_size: the largest frame accepted from an Erlang node.
        records: message types that cross as Erlang records or Elixir structs
            (:class:`~joerl.erlang.records.Records`; default: none).
        none_atom: the atom that is Python's ``None`` both ways: ``"undefined"``
            (Erlang's convention), or ``"nil"`` for Elixir nodes.
    """

    published: bool = False
    tick_time: float | None = None
    handshake_timeout: float = 7.0
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    records: Records | None = None
    none_atom: str = "undefined"

    @property
    def flags(self) -> int:
        """The distribution flags offered: joerl's defaults, SEND_SENDER, and PUBLISHED if asked."""
        return dflags.DEFAULT_FLAGS | dflags.SEND_SENDER | (dflags.PUBLISHED if self.published else 0)


def erlang_cookie(cookie: str | bytes | None = None) -> bytes:
    """The cookie of a node with Erlang distribution on.

    As joerl finds its own (the argument, ``$JOERL_COOKIE``, ``~/.joerl.cookie``),
    with Erlang's ``~/.erlang.cookie`` as a further fallback when there is no
    ``~/.joerl.cookie``: then Erlang's is used (and must be as private).

    Raises:
        ValueError, CookieFileError: as :func:`~joerl.node.config.load_cookie`.
    """
    if cookie is None and not os.environ.get(COOKIE_ENV):
        ours = os.path.expanduser(COOKIE_FILE)
        theirs = os.path.expanduser(ERLANG_COOKIE_FILE)
        if not os.path.lexists(ours) and os.path.lexists(theirs):
            return load_cookie(None, theirs)
    return load_cookie(cookie)


class ErlangSide:
    """The Erlang half of one node (see the module docstring).

    Made before the node's routing (:meth:`wrap` gives the routing's system
    the :class:`NodeRouter`), completed by :meth:`attach` once the node's
    parts exist. Made with ``config=False`` it is inert: every method does
    nothing (the node then speaks joerl's protocol only).

    Args:
        config: the settings (``True`` means the defaults; ``False``: inert).
        name: the node's full name.
        cookie: the node's cookie.
        tick_time: the node's tick time (the default ``net_ticktime``).
        allowed: the node's ``allowed_nodes``: if given, the only Erlang nodes it links with.
    """

    def __init__(
        self,
        config: ErlangConfig | bool,
        name: str,
        cookie: bytes,
        tick_time: float,
        allowed: Iterable[str] | None = None,
    ) -> None:
        #: Erlang distribution is on.
        self.enabled = config is not False
        self.config = config if isinstance(config, ErlangConfig) else ErlangConfig()
        self.name = name
        self._cookie = cookie
        self._tick_time = self.config.tick_time or tick_time
        self._allowed = None if allowed is None else frozenset(allowed)
        self.router: NodeRouter | None = None
        self.routing: ErlangRouting | None = None
        self.links: ErlangLinks | None = None

    def wrap(self, routing: Routing) -> Router:
        """The Router the node's system gets: this side's and joerl's routing, by destination."""
        if not self.enabled:
            return routing
        self.router = NodeRouter(routing)
        return self.router

    def attach(
        self,
        routing: Routing,
        system: ActorSystem,
        spawner: Spawner,
        watchers: NodeWatchers,
        lookup: Callable[[str], Any],
        listener: Links,
    ) -> None:
        """Build the links, routing and dispatch once the node's parts exist; take Erlang diallers from ``listener``."""
        if not self.enabled:
            return
        terms = TermMap(
            self.name, routing.node_id, routing.creation, node_id_of, routing.peers.name_of, self.config.records
        )
        self.links = links = ErlangLinks(
            name=self.name,
            creation=routing.creation,
            cookie=self._cookie,
            flags=self.config.flags,
            tick_time=self._tick_time,
            handshake_timeout=self.config.handshake_timeout,
            max_frame_size=self.config.max_frame_size,
            allowed=self._allowed,
            none_atom=self.config.none_atom,
            lookup=lookup,
            learn=terms.learn,
            handler=lambda link, msg: dispatch.on_message(link, msg),
            on_up=lambda peer: watchers.notify(NodeUp(peer.name), hidden=not peer.visible),
            on_down=self._down,
            on_unreachable=lambda peer, msgs, why: erl.unreachable(peer, msgs, why),
        )
        erl = ErlangRouting(links, terms, routing.inbound, routing.pending, system.make_ref, routing.stats, lookup)
        dispatch = ErlangDispatch(erl, system, spawner)
        self.routing = erl
        self._watchers = watchers
        assert self.router is not None, "wrap() first"
        self.router.erl = erl
        self.router.local_send = lambda name, msg, sender: system.send(name, msg, sender=sender)
        listener.accept_other = self.accept

    def _down(self, peer: ErlPeer) -> None:
        assert self.routing is not None
        self.routing.lost(peer)
        self._watchers.notify(NodeDown(peer.name, NOCONNECTION), hidden=not peer.visible)

    # -- for the node ------------------------------------------------------------------------

    def accept(self, sock: Any, address: Any) -> bool:
        """The listener's hook: an Erlang dialler's handshake (False: not an Erlang node)."""
        return self.links.accept(sock, address) if self.links is not None else False

    def is_erlang(self, name: str) -> bool:
        """Is node ``name`` an Erlang node (one this node speaks Erlang's protocol with)?"""
        return self.routing is not None and self.routing.is_erlang(name)

    def connect(
        self, name: str, timeout: float | None = None, otherwise: Callable[[str, float | None], bool] | None = None
    ) -> bool:
        """Make sure a link to Erlang node ``name`` is up (``otherwise(name, timeout)`` if it is not an Erlang node).

        Raises:
            NodeUnreachable: it cannot be reached.
            DistributionError: not an Erlang node, and no ``otherwise``.
        """
        if otherwise is not None and not self.is_erlang(name):
            return otherwise(name, timeout)
        return self._on().links.connect(name, timeout)

    def is_alive(self, pid: Pid, timeout: float, otherwise: Callable[[Pid, float], bool]) -> bool:
        """``erlang:is_process_alive`` on the Erlang node of ``pid`` (else ``otherwise(pid, timeout)``)."""
        routing = self.routing
        if routing is None or not routing.owns(pid.node):
            return otherwise(pid, timeout)
        return routing.is_alive(pid, timeout)

    def name_of(self, node_id: int) -> str | None:
        """The name of the Erlang node with joerl id ``node_id`` (None: none met)."""
        atom = self.routing.terms.erlang.get(node_id) if self.routing is not None else None
        return atom.name if atom is not None else None

    def to_erlang(self, term: Any) -> Any:
        """``term`` as Erlang nodes see it: its pids and refs as ``ErlangPid`` and ``ErlangRef``."""
        return self._on().terms.to_erlang(term)

    def to_local(self, term: Any) -> Any:
        """``term`` from Erlang (``ErlangPid``, ``ErlangRef`` inside) as this node's runtime sees it."""
        return self._on().terms.to_local(term)

    def _on(self) -> ErlangRouting:
        if self.routing is None:
            raise DistributionError(f"node {self.name!r} was made without erlang=True: it speaks no Erlang")
        return self.routing

    def nodes(self, kind: str = "connected") -> list[str]:
        """The Erlang nodes with a link up: ``"visible"`` ones (both sides published), ``"hidden"`` ones, or all."""
        return self.links.connected(kind) if self.links is not None else []

    def close(self) -> None:
        """Close every Erlang link (node shutdown)."""
        if self.links is not None:
            self.links.close()
