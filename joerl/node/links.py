"""Links: dialling peers, the handshake's decisions, admission control, a link's up and down.

Each peer gets at most one link, dialled on first use by one greenlet while
what is sent waits in the peer's queue, in order (a full queue makes senders
wait for the dial, as a full link does). A failed dial drops the queue
(failing what it held with ``noconnection``) and backs the peer off. When a
link goes, every link and monitor across it fires with ``noconnection``,
every wait it would have answered fails, and watchers get ``NodeDown``.

Inbound connections are admitted per source address (:mod:`~joerl.node.admission`):
only unfinished handshakes count, each address has its own bound and rate,
and past the global bound the oldest silent handshake is evicted. An
unauthenticated connection gets nothing but the handshake: its first bytes
within ``first_bytes_timeout``, the whole of it within the handshake deadline.
"""

from __future__ import annotations

import logging
import os
import socket as _stdsocket
from collections.abc import Callable, Iterable
from time import monotonic
from typing import TYPE_CHECKING, Any

import gevent
from gevent import get_hub, getcurrent
from gevent.socket import wait_read

from ..errors import EpmdError, HandshakeError, LinkDown, MessageTooLarge, NodeUnreachable, NotAllowed
from ..message import NOCONNECTION, NodeDown, NodeUp
from ..ratelimit import TokenBucket
from . import protocol as P
from .admission import Admission
from .connection import Connection, LinkConfig
from .link_setup import accept_handshake, dial
from .names import full_name_problem
from .peers import UP, Accepting
from .routing import is_message

if TYPE_CHECKING:
    from ..epmd import NodeInfo
    from .peers import NodeWatchers, Peer, PeerTable
    from .routing import Routing
    from .stats import NodeStats

__all__ = ["Links"]

log = logging.getLogger("joerl.node")


class Links:
    """The links of one node (see the module docstring); the routing's :class:`~joerl.node.routing.Outbox`.

    Args:
        identity: this node's name, id and creation, as the handshake sends them.
        cookie: the shared secret.
        config: link settings.
        peers, watchers, routing, stats: the node's other parts.
        handler: runs for every control message from a peer (its reader greenlet).
        lookup: ``lookup(name)`` asks the port mapper where node ``name`` listens.
        epmd_host: the host to dial when the port mapper gives none.
        allowed: the only node names that may link with this node (None: any).
        admission: who may start a handshake (per source address).
        first_bytes_timeout: seconds an inbound connection may stay silent.
    """

    def __init__(
        self,
        *,
        identity: P.NodeIdentity,
        cookie: bytes,
        config: LinkConfig,
        peers: PeerTable,
        watchers: NodeWatchers,
        routing: Routing,
        stats: NodeStats,
        handler: Callable[[Connection, Any], None],
        lookup: Callable[[str], NodeInfo | None],
        epmd_host: str,
        allowed: Iterable[str] | None,
        admission: Admission,
        first_bytes_timeout: float,
    ) -> None:
        self._identity = identity
        self._name = identity.name
        self._cookie = cookie
        self.config = config
        self._peers = peers
        self._watchers = watchers
        self._routing = routing
        self._stats = stats
        self._handler = handler
        self._lookup = lookup
        self._epmd_host = epmd_host
        self._allowed = None if allowed is None else frozenset(allowed)
        self.admission = admission
        self._first_bytes_timeout = first_bytes_timeout
        self.accept_other: Callable[[Any, Any], bool] | None = None  # another protocol on this port (erl_peers.py)
        self._accepting = Accepting()  # inbound handshakes let on, until registered (see _dial)
        self._refusal_log = TokenBucket(0.1, 1.0)  # at most one such warning every 10 s
        self._unreachable: set[str] = set()  # names whose dial failure was logged (until they are reached)
        self._hub = get_hub()
        self.closed = False

    @property
    def handshakes(self) -> int:
        """Inbound handshakes in progress now (unfinished ones)."""
        return len(self.admission)

    def close(self) -> None:
        """Stop dialling; flush and close every link (node shutdown)."""
        self.closed = True
        for peer in self._peers:
            if peer.connecting is not None:
                peer.connecting.kill(block=False)
            link = peer.link
            if link is not None:
                link.flush(timeout=1.0)
                link.close("shutdown")

    # -- sending -------------------------------------------------------------------

    def enqueue(self, peer: Peer, msg: Any) -> None:
        """Send ``msg`` on ``peer``'s link, or queue it while the link comes up."""
        conn = peer.conn
        stats = self._stats
        if conn is not None:
            counted = is_message(msg)
            stats.sent += counted
            try:
                conn.send(msg)
            except LinkDown:
                # The link dropped while we waited for room: the message is lost
                # with it, as in Erlang; monitors and NodeDown tell the rest.
                stats.sent -= counted
                stats.dropped_unreachable += counted
            return
        if self.closed:
            return
        if self._peers.get(peer.name) is not peer:  # forgotten meanwhile (the node went): dial afresh
            peer = self._peers.peer(peer.name)
        if not peer.pending and peer.connecting is None and monotonic() < peer.next_attempt:
            stats.dropped_unreachable += is_message(msg)
            self._routing.fail_unreachable(msg, peer.node_id)
            return
        dialing = peer.connecting
        if (
            dialing is not None
            and peer.pending_bytes >= self.config.max_queue_bytes
            and getcurrent() is not self._hub
            and getcurrent() is not dialing
        ):
            # Backpressure while the link comes up, as on a full link queue:
            # wait for the dial to end (flushed, or failed and dropped).
            dialing.join(self.config.handshake_timeout + 1.0)
            self.enqueue(peer, msg)
            return
        peer.pending.append(msg)
        peer.pending_bytes += len(getattr(msg, "payload", b"")) + 32
        self.ensure_connecting(peer)

    def disconnect(self, name: str) -> bool:
        """Close the link to ``name`` (see ``DistributedSystem.disconnect_node``); False if none."""
        peer = self._peers.get(name)
        link = None if peer is None else peer.link
        if link is None or link.closed:
            return False
        link.close("disconnect")  # _on_closed: noconnection for what crossed it, NodeDown
        return True

    def connect_to_node(self, name: str, timeout: float | None = None) -> bool:
        """Make sure a link to ``name`` is up (see ``DistributedSystem.connect_to_node``)."""
        if name == self._name:
            return True
        peer = self._peers.peer(name)
        if peer.conn is not None:
            return True
        peer.next_attempt = 0.0
        self.ensure_connecting(peer)
        g = peer.connecting
        if g is not None:
            g.join(timeout if timeout is not None else self.config.handshake_timeout + 10)
        if peer.state(0.0) != UP:  # (what the dial did to it)
            raise NodeUnreachable(name, peer.last_error or "no link")
        return True

    def ensure_connecting(self, peer: Peer) -> None:
        if peer.connecting is None and peer.conn is None and not self.closed:
            peer.connecting = gevent.spawn(self._connect, peer)

    # -- dialling ------------------------------------------------------------------

    def _connect(self, peer: Peer) -> None:
        name = peer.name
        try:
            if peer.link is None:
                info = self._lookup(name)
                if info is None:
                    raise NodeUnreachable(name, "not registered at the port mapper")
                conn = self._dial(peer, (info.host or self._epmd_host, info.port))
                if conn is not None:
                    self._register(conn)  # raises NotAllowed for a name off the allow-list
                    conn.start()
            if peer.link is None and not peer.up.wait(self.config.handshake_timeout):
                raise NodeUnreachable(name, "the peer's own connection never came up")
            self._flush(peer)
            peer.backoff.reset()
            self._stats.connects += 1
        except (NodeUnreachable, HandshakeError, EpmdError, OSError) as exc:
            if peer.link is not None and not peer.link.closed:
                # The peer's own dial brought a link up meanwhile: ours is moot.
                log.debug("node %s: own dial to %s ended (%s); the peer's link is up", self._name, name, exc)
                try:
                    self._flush(peer)
                except NodeUnreachable:
                    pass
                return
            self._stats.connect_failures += 1
            error = exc.reason if isinstance(exc, NodeUnreachable) and exc.reason else str(exc)
            lost = peer.dial_failed(monotonic(), error)
            self._stats.dropped_unreachable += sum(map(is_message, lost))
            # Once per episode (until a link to it comes up), not at every retry.
            first = name not in self._unreachable
            self._unreachable.add(name)
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "cannot reach node %r: %s (%d queued messages dropped)%s",
                name, exc, len(lost), "; further failures until it is reached are logged at DEBUG" if first else "",
            )  # fmt: skip
            for msg in lost:
                self._routing.fail_unreachable(msg, peer.node_id)
            self._routing.fail_waiting(peer)
        finally:
            peer.connecting = None

    def _dial(self, peer: Peer, address: tuple[str, int]) -> Connection | None:
        """Dial ``peer``: the new link, or None when the peer's own link is the one to wait for.

        A peer that answers ``busy`` holds a link with us: either its own dial
        just brought one up (wait for it), or a link we no longer have and it
        has not yet seen drop (it was frozen, say). It refuses a second link
        until the first is closed, so that nothing arrives out of order: dial
        again, backing off, until the handshake timeout.
        """
        deadline = monotonic() + self.config.handshake_timeout
        delay = 0.01
        while True:
            if self._accepting.link_coming(peer, deadline):
                return None  # up, or coming from the peer's dial (a second link would orphan one)
            peer.handshaking = True
            try:
                return dial(
                    address,
                    self._identity,
                    self._cookie,
                    expected_peer=peer.name,
                    config=self.config,
                    decide=self._decide_outbound,
                    handler=self._handler,
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
                peer.handshaking = False

    def _flush(self, peer: Peer) -> None:
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
                    try:
                        if msg.__class__ is P.Send:  # (a burst to one process shares a frame)
                            conn.send_payload(*msg)
                        else:
                            conn.send(msg)
                    except MessageTooLarge as exc:  # the peer's limit, known only now: dropped, counted once
                        self._stats.dropped_too_large += 1
                        log.warning("dropped a message queued for node %s: %s", peer.name, exc)
                        continue
                    self._stats.sent += is_message(msg)
        except LinkDown as exc:  # what crossed it fires with noconnection (_on_closed)
            raise NodeUnreachable(peer.name, f"the link closed while it was opening: {exc}") from None
        finally:
            peer.flushing = False
        if peer.link is conn and not conn.closed:
            peer.conn = conn

    # -- the handshake's decisions ------------------------------------------------------

    def _decide_outbound(self, hello: Any) -> Any:
        """The handshake of a dial asks: is the node that answered acceptable?"""
        why = self._peers.collision(hello.name, hello.node_id)
        return P.ACCEPT if why is None else P.Verdict.refuse("id_collision", why)

    def _decide(self, hello: Any) -> Any:
        """The handshake of an inbound link asks: may this peer link with us?"""
        if self.closed:
            return P.Verdict.refuse("not_allowed", "node is shutting down")
        problem = full_name_problem(hello.name)
        if problem:
            return P.Verdict.refuse("not_allowed", f"node name {hello.name!r} {problem}")
        why = self._peers.collision(hello.name, hello.node_id)
        if why is not None:
            return P.Verdict.refuse("id_collision", why)
        peer = self._peers.get(hello.name)
        if peer is not None and peer.link is not None and not peer.link.closed:
            # A new incarnation (another creation, or the same creation drawn
            # again under another incarnation id) may replace the link (the old
            # one is dead even if TCP has not said so), but only once it has
            # proved the cookie: _register closes the old link then, never on
            # a mere HELLO.
            if peer.creation is None or peer.is_incarnation(hello.creation, hello.incarnation):
                return P.Verdict.refuse(P.STATUS_BUSY, "a link with that node is up")
        if peer is not None and peer.handshaking:
            return P.DIALING
        return P.ACCEPT

    def _register(self, conn: Connection) -> None:
        """A link is up (either direction): make it the peer's, announce NodeUp."""
        hello = conn.peer
        if self._allowed is not None and hello.name not in self._allowed:
            # Refused after authentication; the peer sees a closed connection, nothing more.
            conn.close("not allowed")
            raise NotAllowed(f"node {self._name}: refused a link with node {hello.name!r}: not in allowed_nodes")
        peer = self._peers.peer(hello.name)
        if peer.node_id != hello.node_id:
            conn.close("id mismatch")
            raise HandshakeError(f"node {hello.name!r} announced id {hello.node_id}, expected {peer.node_id}")
        if peer.creation is not None and not peer.is_incarnation(hello.creation, hello.incarnation):
            log.info(
                "node %s restarted (creation %s -> %s, incarnation %016x -> %016x)",
                hello.name, peer.creation, hello.creation, peer.incarnation, hello.incarnation,
            )  # fmt: skip
            old = peer.link
            if old is not None and old is not conn:
                old.close(NOCONNECTION)  # fires what crossed it (noconnection), NodeDown
        peer.creation = hello.creation
        peer.incarnation = hello.incarnation
        peer.hidden = not conn.flags & P.FLAG_PUBLISHED  # either side is a hidden node
        peer.link = conn
        peer.up.set()
        self._stats.links_up += 1
        self._unreachable.discard(hello.name)
        log.info("node %s: %slink to %s up", self._name, "hidden " if peer.hidden else "", hello.name)
        self._watchers.notify(NodeUp(hello.name), peer.hidden)

    def _on_closed(self, conn: Connection, reason: Any) -> None:
        self._stats.unconfirmed_at_link_down += conn.unconfirmed  # (any link, replaced ones too)
        peer = self._peers.get(conn.peer_name) if conn.peer is not None else None
        if peer is None or peer.link is not conn:
            return
        peer.link_lost()
        self._stats.links_down += 1
        self._stats.tick_timeouts += conn.stats.tick_timeouts
        log.info("node %s: link to %s down (%s)", self._name, peer.name, reason)
        self._routing.inbound.node_down(peer.node_id, peer.name, NOCONNECTION)
        self._routing.fail_waiting(peer)
        self._watchers.notify(NodeDown(peer.name, NOCONNECTION), peer.hidden)

    # -- inbound connections --------------------------------------------------------------

    def handle_inbound(self, sock: Any, address: Any) -> None:
        """StreamServer handler: handshake, then hold the socket for the link's life.

        An unauthenticated connection gets nothing but the handshake: its
        first bytes within ``first_bytes_timeout``, all of it within the
        handshake deadline. One from an address over its connection rate is
        closed before a byte is read; one evicted to make room for newer ones
        (see :mod:`~joerl.node.admission`) is closed where it stands.
        """
        host = str(address[0]) if isinstance(address, tuple) else str(address)
        ticket = self.admission.admit(host, _shutter(sock))
        if ticket is None:
            _refuse(self, host, "over its connection rate")
            sock.close()
            return
        claimed: list[str] = []
        try:
            try:
                wait_read(sock.fileno(), self._first_bytes_timeout)
            except TimeoutError:
                _refuse(self, host, f"silent for {self._first_bytes_timeout}s")
                return
            if ticket.evicted:
                _refuse(self, host, "evicted by newer connections")
                return
            self.admission.heard(ticket)
            if self.accept_other is not None and self.accept_other(sock, address):
                return  # an Erlang node: handshake done, its link runs in a greenlet of its own
            conn = accept_handshake(
                sock,
                self._identity,
                self._cookie,
                config=self.config,
                decide=lambda hello: self._accepting.decided(hello.name, self._decide(hello), claimed),
                handler=self._handler,
                on_closed=self._on_closed,
                address=address,
            )
        except HandshakeError:
            self._stats.handshakes_failed += 1
            return  # logged by the connection module
        except Exception:  # noqa: BLE001 - a bad peer never takes the node down
            log.exception("inbound connection from %s failed", address)
            return
        finally:
            self.admission.done(ticket)
            self._accepting.release(claimed)  # (no yield from here to _register: a dial sees the link next)
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


def _refuse(links: Links, host: str, why: str) -> None:
    """``links`` closed a connection unauthenticated: count it; one log line per 10 s at most."""
    links._stats.refused_connections += 1
    if links._refusal_log.take():
        log.warning(
            "node %s: closed a connection from %s unauthenticated (%s; %d refused in all, %d handshakes now)",
            links._name,
            host,
            why,
            links._stats.refused_connections,
            len(links.admission),
        )


def _shutter(sock: Any) -> Callable[[], None]:
    """What evicts the connection of ``sock``: shut its socket down, wherever it is read.

    The handshake may have wrapped the socket (TLS detaches the original
    object), so this acts on a duplicate of its file descriptor: the reader,
    whichever object it holds, sees the connection end.
    """
    fd = sock.fileno()

    def evict() -> None:
        try:
            dup = _stdsocket.socket(fileno=os.dup(fd))
        except OSError:
            return  # closed already
        try:
            dup.shutdown(_stdsocket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            dup.close()

    return evict
