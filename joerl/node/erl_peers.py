"""The Erlang nodes a joerl node links with: dialling, accepting on the node's one port, up and down.

The sibling of :mod:`~joerl.node.links` for Erlang's distribution protocol.
Each Erlang node gets at most one :class:`~joerl.node.erl_link.ErlangLink`,
dialled on first use (found at the node's port mapper under the alive part
of its name) while what is sent waits in order in its :class:`ErlPeer`.
An inbound connection is told apart from a joerl dialler by its first bytes
(:func:`joerl.erlang.handshake.detect_protocol`, peeked, never consumed).

Handshake decisions, as Erlang makes them: a dialler we are dialling too is
answered by the names' order (``nok``: our dial survives;
``ok_simultaneous``: theirs does, ours then hears ``nok`` and waits for it);
one we hold a link with hears ``alive`` and, if it goes on, replaces the old
link. A wrong cookie is refused both ways and logged once per peer and
interval. When a link goes, ``on_down(peer)`` fires what crossed it with
``noconnection``; a dial that fails hands what waited to ``on_unreachable``.
"""

from __future__ import annotations

import logging
import socket as _stdsocket
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any

import gevent
from gevent import socket as gsocket
from gevent.event import Event

from ..erlang import dflags
from ..erlang.control import encode_frame
from ..erlang.handshake import ERLANG, ErlangHandshake, Role, detect_protocol
from ..errors import (
    AuthenticationError,
    EpmdError,
    HandshakeError,
    LinkDown,
    NodeUnreachable,
    SimultaneousConnect,
)
from .erl_link import ErlangLink, run_handshake
from .link_setup import FailureLog

if TYPE_CHECKING:
    from ..epmd import NodeInfo

__all__ = ["ErlPeer", "ErlangLinks"]

log = logging.getLogger("joerl.node")

_KINDS = {True: "visible", False: "hidden"}
#: Seconds a node that could not be reached is not dialled again (what is sent meanwhile fails at once).
RETRY_AFTER = 1.0


class ErlPeer:
    """One Erlang node: its link (or its dial), and what waits for it."""

    def __init__(self, name: str, node_id: int) -> None:
        self.name = name
        self.node_id = node_id
        self.link: ErlangLink | None = None
        #: The link carries direct sends (what waited for the dial went first).
        self.ready = False
        self.creation: int | None = None
        #: Both sides announced themselves published: a visible link (Erlang's ``nodes()``), else a hidden one.
        self.visible = False
        self.dialing: gevent.Greenlet | None = None
        self.pending: list[tuple[Any, bytes]] = []
        self.up = Event()
        self.retry_at = 0.0
        #: Why the last dial failed.
        self.last_error = ""
        #: Calls waiting for this node's answers (failed with noconnection when it goes).
        self.calls: set[Any] = set()

    def __repr__(self) -> str:
        return f"<ErlPeer {self.name} {'up' if self.ready else 'down'}>"


class ErlangLinks:
    """The Erlang links of one node (see the module docstring).

    Args:
        name: our full node name, ``"py@host"``.
        creation: our creation.
        cookie: the shared secret.
        flags: the distribution flags we offer.
        tick_time: Erlang's ``net_ticktime`` (seconds).
        handshake_timeout: seconds a handshake (connect included) may take.
        max_frame_size: the largest frame accepted from a peer.
        allowed: if given, the only node names this node links with (``allowed_nodes``).
        none_atom: the atom that is Python's ``None`` (``"undefined"``; ``"nil"`` for Elixir).
        lookup: ``lookup(name)``: where node ``name`` listens (the node's Locator: the port mapper of its host).
        learn: ``learn(name)``: the joerl node id of an Erlang node's name (recorded as Erlang's).
        handler: ``handler(link, message)`` for every control message.
        on_up, on_down: ``f(peer)`` when a link comes up, or goes.
        on_unreachable: ``f(peer, messages, reason)`` for what waited on a dial that failed.
    """

    def __init__(
        self,
        *,
        name: str,
        creation: int,
        cookie: bytes,
        flags: int,
        tick_time: float,
        handshake_timeout: float,
        max_frame_size: int,
        allowed: frozenset[str] | None,
        none_atom: str,
        lookup: Callable[[str], NodeInfo | None],
        learn: Callable[[str], int],
        handler: Callable[[ErlangLink, Any], None],
        on_up: Callable[[ErlPeer], None],
        on_down: Callable[[ErlPeer], None],
        on_unreachable: Callable[[ErlPeer, list[Any], str], None],
    ) -> None:
        self.name = name
        self._creation = creation
        self._cookie = cookie
        self.flags = flags
        self.tick_time = tick_time
        self.handshake_timeout = handshake_timeout
        self._max_frame = max_frame_size
        self._allowed = allowed
        self.none_atom = none_atom
        self._lookup = lookup
        self._learn = learn
        self._handler = handler
        self._on_up = on_up
        self._on_down = on_down
        self._on_unreachable = on_unreachable
        self.peers: dict[str, ErlPeer] = {}
        self.by_id: dict[int, ErlPeer] = {}
        self._failures = FailureLog()
        self.closed = False

    def peer(self, name: str) -> ErlPeer:
        """The peer named ``name`` (made on first use)."""
        peer = self.peers.get(name)
        if peer is None:
            peer = self.peers[name] = ErlPeer(name, self._learn(name))
            self.by_id[peer.node_id] = peer
        return peer

    def connected(self, kind: str = "connected") -> list[str]:
        """The Erlang nodes with a link up: ``"visible"`` (both sides published), ``"hidden"`` or ``"connected"``."""
        return [p.name for p in self.peers.values() if p.ready and kind in ("connected", _KINDS[p.visible])]

    def close(self) -> None:
        """Stop dialling, close every link (node shutdown)."""
        self.closed = True
        for peer in list(self.peers.values()):
            if peer.dialing is not None:
                peer.dialing.kill(block=False)
            if peer.link is not None:
                peer.link.flush(timeout=1.0)  # (the exit signals of the processes that just stopped)
                peer.link.close("shutdown")

    # -- sending --------------------------------------------------------------------------

    def send(self, peer: ErlPeer, msg: Any) -> bool:
        """Send control message ``msg`` to ``peer``, or queue it while the link comes up.

        Returns:
            False if it was dropped: the link went while writing it, or the
            node could not be reached a moment ago (the sender then learns
            what Erlang says: ``noconnection``).

        Raises:
            TermEncodeError: ``msg`` has no Erlang form.
        """
        data = encode_frame(msg, self.none_atom)
        link = peer.link
        if peer.ready and link is not None:
            try:
                link.send_bytes(data)
                return True
            except LinkDown:
                return False
        if self.closed:
            return False
        if peer.dialing is None and monotonic() < peer.retry_at:
            self._on_unreachable(peer, [msg], "not reachable (retrying shortly)")
            return False
        peer.pending.append((msg, data))
        self._ensure_dialing(peer)
        return True

    def connect(self, name: str, timeout: float | None = None) -> bool:
        """Make sure a link to Erlang node ``name`` is up.

        Raises:
            NodeUnreachable: it cannot be reached.
        """
        peer = self.peer(name)
        if peer.ready and peer.link is not None:
            return True
        peer.retry_at = 0.0
        self._ensure_dialing(peer)
        g = peer.dialing
        if g is not None:
            g.join(timeout if timeout is not None else self.handshake_timeout + 5)
        if peer.ready:  # (what the dial did to it)
            return True
        raise NodeUnreachable(name, peer.last_error or "no link with that Erlang node")

    def _ensure_dialing(self, peer: ErlPeer) -> None:
        if peer.dialing is None and not peer.ready and not self.closed:
            peer.dialing = gevent.spawn(self._dial, peer)

    def _flush(self, peer: ErlPeer) -> None:
        link = peer.link
        if link is None:
            return
        try:
            while peer.pending:
                batch, peer.pending = peer.pending, []
                link.send_bytes(b"".join(data for _, data in batch))
        except LinkDown:
            return
        peer.ready = not link.closed

    # -- dialling -----------------------------------------------------------------------------

    def _dial(self, peer: ErlPeer) -> None:
        name = peer.name
        try:
            if peer.link is None:
                self._dial_once(peer)
            if peer.link is None and not peer.up.wait(self.handshake_timeout):
                raise NodeUnreachable(name, "the peer's own connection never came up")
            self._flush(peer)
        except (NodeUnreachable, HandshakeError, EpmdError, OSError) as exc:
            if peer.link is not None and not peer.link.closed:
                self._flush(peer)  # the peer's own dial brought a link up meanwhile
                return
            lost, peer.pending = peer.pending, []
            peer.retry_at = monotonic() + RETRY_AFTER
            peer.last_error = exc.reason if isinstance(exc, NodeUnreachable) and exc.reason else str(exc)
            self._log_failure(name, exc)
            self._on_unreachable(peer, [msg for msg, _ in lost], str(exc))
        finally:
            peer.dialing = None

    def _dial_once(self, peer: ErlPeer) -> None:
        name = peer.name
        if self._allowed is not None and name not in self._allowed:
            raise NodeUnreachable(name, "not in allowed_nodes")
        host = name.partition("@")[2]
        info = self._lookup(name)
        if info is None:
            raise NodeUnreachable(name, "not registered at the port mapper")
        if peer.link is not None and not peer.link.closed:
            return  # its own dial brought a link up meanwhile (the lookup yields): that one stays
        try:
            sock = gsocket.create_connection((info.host or host, info.port), timeout=self.handshake_timeout)
        except OSError as exc:
            raise NodeUnreachable(name, f"cannot connect to {info.host or host}:{info.port}: {exc}") from None
        hs = ErlangHandshake(
            Role.INITIATOR, self.name, self._cookie, self._creation, flags=self.flags, expected_peer=name
        )
        try:
            connected = run_handshake(sock, hs, self.handshake_timeout)
        except SimultaneousConnect:
            sock.close()  # its own dial survives: wait for it (see _dial)
            return
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        link = self._new_link(sock, connected)
        self._register(link)
        link.start()

    def _log_failure(self, who: str, exc: BaseException) -> None:
        left_out = self._failures.allow(who)
        if left_out is None:
            return
        more = f" ({left_out} more not logged)" if left_out else ""
        if isinstance(exc, AuthenticationError):
            log.warning("node %s refused the link with Erlang node %s: %s%s", self.name, who, exc, more)
        else:
            log.warning("node %s: no link with Erlang node %s: %s%s", self.name, who, exc, more)

    # -- accepting --------------------------------------------------------------------------------

    def accept(self, sock: Any, address: Any) -> bool:
        """The node's listener: take ``sock`` if an Erlang node dialled, run its handshake.

        Returns:
            False if the dialler is not an Erlang node (nothing was read);
            True once its handshake is done: the link runs on a duplicate of
            the socket in a greenlet of its own (the listener closes ``sock``).

        Raises:
            HandshakeError: the handshake failed (logged here, once per interval).
        """
        try:
            first = sock.recv(3, _stdsocket.MSG_PEEK)
        except OSError:
            return False
        if detect_protocol(first) != ERLANG:
            return False
        hs = ErlangHandshake(Role.ACCEPTOR, self.name, self._cookie, self._creation, flags=self.flags)
        try:
            connected = run_handshake(sock, hs, self.handshake_timeout, self._decide)
        except SimultaneousConnect:
            raise
        except HandshakeError as exc:
            who = hs.peer.name if hs.peer else str(address[0] if isinstance(address, tuple) else address)
            self._log_failure(who, exc)
            raise
        link = self._new_link(sock.dup(), connected)
        link.sock.settimeout(None)
        self._register(link)
        link.start()
        self._flush(self.peer(link.peer_name))  # (no yield since _register: nothing overtakes the queue)
        return True

    def _decide(self, name: str) -> str:
        if self.closed or (self._allowed is not None and name not in self._allowed):
            return "refuse"  # (not_allowed, before the cookie is checked, as Erlang's net_kernel:allow/1)
        peer = self.peers.get(name)
        if peer is None:
            return "ok"
        if peer.link is not None and not peer.link.closed:
            return "connected"
        return "dialing" if peer.dialing is not None else "ok"

    # -- a link's up and down ---------------------------------------------------------------------

    def _new_link(self, sock: Any, connected: Any) -> ErlangLink:
        try:
            sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)  # as Erlang's dist sockets
        except OSError:  # pragma: no cover - not TCP
            pass
        return ErlangLink(
            sock,
            connected,
            tick_time=self.tick_time,
            handler=self._handler,
            on_closed=self._closed,
            max_frame_size=self._max_frame,
            none_atom=self.none_atom,
        )

    def _register(self, link: ErlangLink) -> None:
        peer = self.peer(link.peer_name)
        old = peer.link
        if old is not None and old is not link and not old.closed:
            old.close("replaced by a new connection")  # (its on_down ran: what crossed it fired)
        peer.link = link
        peer.creation = link.peer_creation
        peer.visible = bool(link.flags & dflags.PUBLISHED)
        peer.retry_at = 0.0
        peer.up.set()
        log.info("node %s: link to Erlang node %s up", self.name, peer.name)
        self._on_up(peer)

    def _closed(self, link: ErlangLink, reason: str) -> None:
        peer = self.peers.get(link.peer_name)
        if peer is None or peer.link is not link:
            return
        peer.link = None
        peer.ready = False
        peer.up.clear()
        self._on_down(peer)
