"""The peer table: what a node knows of every other node, linked or not.

A :class:`Peer` is explicit state: ``idle`` (no link, may be dialled),
``dialing`` (a greenlet is connecting; messages wait in ``pending``, in
order), ``up`` (a link open for direct sends) or ``backing_off`` (the last
dial failed; sends fail at once until ``next_attempt``). :class:`PeerTable`
finds peers by name and by node id (a pid names its node by id only), refuses
two names with one id, and asks the port mapper for the name behind an
unknown id. It forgets peers that are gone (no link, no dial, nothing queued
or waiting on them, their back-off window passed) whenever it has doubled in
size since it last did (and holds at least ``SWEEP_FLOOR``), so that memory
stays bounded however many nodes come and go, at an amortized O(1) per peer. :class:`NodeWatchers` holds who gets ``NodeUp``/``NodeDown``.
Nothing here does IO but that one port-mapper query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from time import monotonic
from typing import TYPE_CHECKING, Any

from gevent import get_hub, getcurrent
from gevent.event import Event

from ..backoff import Backoff
from ..errors import DistributionError
from ..pid import Pid, Ref
from .config import node_id_of
from .hello import ACCEPT, Verdict
from .names import node_name

if TYPE_CHECKING:
    from .._router import Inbound
    from .connection import Connection

__all__ = ["IDLE", "DIALING", "UP", "BACKING_OFF", "SWEEP_FLOOR", "NodeWatchers", "Peer", "PeerTable"]

log = logging.getLogger("joerl.node")

#: The least table size at which unused peers are swept out.
SWEEP_FLOOR = 64
#: Names of nodes kept by id for :meth:`PeerTable.name_of` (the oldest go first).
MAX_NAMES = 1024

IDLE = "idle"
DIALING = "dialing"
UP = "up"
BACKING_OFF = "backing_off"


class Peer:
    """One other node: its link (if any), what waits for it, and its dialling state."""

    __slots__ = (
        "name",
        "node_id",
        "creation",
        "incarnation",
        "link",
        "conn",
        "pending",
        "pending_bytes",
        "connecting",
        "handshaking",
        "flushing",
        "up",
        "backoff",
        "next_attempt",
        "last_error",
        "calls",
        "hidden",
    )

    def __init__(self, name: str, node_id: int | None = None) -> None:
        self.name = name
        self.node_id = node_id_of(name) if node_id is None else node_id
        #: The creation of the incarnation last linked (None: never linked).
        self.creation: int | None = None
        #: The 64-bit incarnation id of the incarnation last linked (0: unknown).
        self.incarnation = 0
        #: The registered link (it may still be flushing ``pending``).
        self.link: Connection | None = None
        #: The link, once open for direct sends (``pending`` flushed).
        self.conn: Connection | None = None
        #: Protocol messages waiting for the link, in order, and roughly their size.
        self.pending: list[Any] = []
        self.pending_bytes = 0
        #: The greenlet dialling, if any; ``flushing``: one moves ``pending`` onto the link.
        self.connecting: Any = None
        #: Our dial's handshake is in progress (a crossing dial of the peer's must be arbitrated).
        self.handshaking = False
        self.flushing = False
        #: Set while a link is registered; replaced by a fresh Event when it goes.
        self.up = Event()
        self.backoff = Backoff()
        #: Monotonic time before which a send fails at once (after a failed dial).
        self.next_attempt = 0.0
        self.last_error = ""
        #: Refs of local waits (calls, is_process_alive, spawns) that this peer answers.
        self.calls: set[Ref] = set()
        #: The link is hidden (either side is a hidden node): left out of ``nodes()``.
        self.hidden = False

    def __repr__(self) -> str:
        return f"<Peer {self.name} id={self.node_id} {self.state(0.0)}>"

    def is_incarnation(self, creation: int, incarnation: int) -> bool:
        """Whether a HELLO's ``creation`` and ``incarnation`` id are those of
        the incarnation last linked.

        Two starts of a node may draw the same 32-bit creation; the 64-bit
        incarnation id tells them apart. An id of 0 (unknown) on either side
        leaves the creations to decide.

        Args:
            creation: the creation the HELLO announced.
            incarnation: the incarnation id it announced (0: not sent).

        Returns:
            False when never linked, or when either differs.
        """
        if self.creation is None or creation != self.creation:
            return False
        return not (incarnation and self.incarnation) or incarnation == self.incarnation

    def state(self, now: float) -> str:
        """``up``, ``dialing``, ``backing_off`` or ``idle`` at monotonic time ``now``."""
        if self.conn is not None:
            return UP
        if self.connecting is not None or self.link is not None:
            return DIALING
        if now < self.next_attempt:
            return BACKING_OFF
        return IDLE

    def link_lost(self) -> None:
        """The registered link went: back to ``idle``, the next send dials at once."""
        self.link = None
        self.conn = None
        self.up = Event()
        self.next_attempt = 0.0

    def unused(self, now: float) -> bool:
        """True when nothing needs this peer at ``now``: idle, nothing queued, nothing waiting."""
        return (
            self.link is None
            and self.connecting is None
            and not self.pending
            and not self.calls
            and not self.flushing
            and not self.handshaking
            and now >= self.next_attempt
        )

    def dial_failed(self, now: float, error: str) -> list[Any]:
        """A dial failed at ``now``: back off; returns the queued messages, now dropped."""
        self.next_attempt = now + self.backoff.delay()
        self.last_error = error
        lost, self.pending = self.pending, []
        self.pending_bytes = 0
        return lost


class Accepting(dict[str, int]):
    """Inbound handshakes let on by the node (ACCEPT, or DIALING: the tie-break
    decides), per peer name, until the link is registered or the handshake
    failed. The node's own dial to that name waits for that link: dialling
    then would bring a second link up beside it (both registered in turn, the
    first orphaned, never closed)."""

    def decided(self, name: str, verdict: Verdict, claimed: list[str]) -> Verdict:
        """``verdict`` on ``name``'s handshake; counted here (and in ``claimed``) if it lets it on."""
        if verdict is ACCEPT or verdict.status == "dialing":
            self[name] = self.get(name, 0) + 1
            claimed.append(name)
        return verdict

    def release(self, claimed: list[str]) -> None:
        """The handshakes of ``claimed`` ended (their link, if any, registered)."""
        for name in claimed:
            left = self.pop(name, 1) - 1
            if left > 0:
                self[name] = left

    def link_coming(self, peer: Peer, deadline: float) -> bool:
        """Whether ``peer`` has a link, or gets one by ``deadline`` from a
        handshake let on here (waited for): then a dial is not to be made."""
        delay = 0.01
        while not (peer.link is not None and not peer.link.closed):
            if not self.get(peer.name) or monotonic() >= deadline:
                return False
            peer.up.wait(min(delay, max(0.0, deadline - monotonic())))
            delay = min(delay * 2, 0.5)
        return True


class PeerTable:
    """Peers by name and by node id.

    Names are full (``alive@host``); a name without ``@host`` given to
    :meth:`peer` or :meth:`get` gets this node's host.

    Args:
        own_name: this node's full name (never a peer).
        own_id: this node's id (no peer may have it).
        list_names: the names registered at the port mapper (may block; never
            called from the hub).
    """

    def __init__(self, own_name: str, own_id: int, list_names: Callable[[], Iterable[str]]) -> None:
        self.own_name = own_name
        self._host = own_name.partition("@")[2]
        self.own_id = own_id
        self._list_names = list_names
        self._by_name: dict[str, Peer] = {}
        #: Peers by node id (read directly on the send hot path; never write to it).
        self.by_id: dict[int, Peer] = {}
        #: The names of nodes known lately, by id (forgotten peers' too), bounded.
        self._names: dict[int, str] = {}
        #: The table's size at which unused peers are next swept out (amortized O(1) per new peer).
        self._sweep_at = SWEEP_FLOOR
        self._hub = get_hub()

    def __getitem__(self, name: str) -> Peer:
        peer = self.get(name)
        if peer is None:
            raise KeyError(name)
        return peer

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[Peer]:
        return iter(list(self._by_name.values()))

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> Peer | None:
        """The peer named ``name``, if known."""
        peer = self._by_name.get(name)
        if peer is None and "@" not in name and self._host:
            try:
                return self._by_name.get(self.full_name(name))
            except ValueError:  # not a node name: no such peer
                return None
        return peer

    def full_name(self, name: str) -> str:
        """``name`` in full: one without ``@host`` gets this node's host.

        Raises:
            InvalidNodeName: not a valid node name.
        """
        return node_name(name, host=self._host or None)

    def peer(self, name: str) -> Peer:
        """The peer named ``name``, created on first use.

        A name whose id collides with a known peer's is recorded, but pids
        with that id keep naming the first one (logged once).

        Raises:
            DistributionError: ``name`` is this node's. InvalidNodeName: not a valid node name.
        """
        peer = self._by_name.get(name)
        if peer is None:
            name = self.full_name(name)
            if name == self.own_name:
                raise DistributionError(f"{name!r} is this node")
            peer = self._by_name.get(name)
            if peer is not None:
                return peer
            if len(self._by_name) >= self._sweep_at:
                self.sweep(monotonic())
                self._sweep_at = max(SWEEP_FLOOR, 2 * len(self._by_name))
            peer = self._by_name[name] = Peer(name)
            if len(self._names) >= MAX_NAMES:
                del self._names[next(iter(self._names))]
            self._names[peer.node_id] = name
            other = self.by_id.get(peer.node_id)
            if other is None and peer.node_id != self.own_id:
                self.by_id[peer.node_id] = peer
            else:
                log.error(
                    "node ids of %r and %r collide (%d): pids of %r cannot be routed",
                    other.name if other is not None else self.own_name,
                    name,
                    peer.node_id,
                    name,
                )
        return peer

    def forget(self, peer: Peer, now: float) -> bool:
        """Drop ``peer`` from the table if nothing needs it (:meth:`Peer.unused`).

        A send to that node later makes a new peer and dials it afresh, as
        for a node never seen.

        Returns:
            True if it was forgotten.
        """
        if self._by_name.get(peer.name) is not peer or not peer.unused(now):
            return False
        del self._by_name[peer.name]
        if self.by_id.get(peer.node_id) is peer:
            del self.by_id[peer.node_id]
        return True

    def sweep(self, now: float) -> int:
        """Forget every peer that nothing needs (see :meth:`forget`); how many went."""
        return sum(self.forget(peer, now) for peer in list(self._by_name.values()))

    def collision(self, name: str, node_id: int) -> str | None:
        """Why node ``name`` announcing ``node_id`` must be refused (another node has that id), or None."""
        if node_id == self.own_id and name != self.own_name:
            return f"node id {node_id} is this node's"
        other = self.by_id.get(node_id)
        if other is not None and other.name != name:
            return f"node id {node_id} is that of {other.name!r}"
        return None

    def for_id(self, node_id: int) -> Peer | None:
        """The peer with ``node_id``, asking the port mapper for names when unknown.

        Returns None when no registered name has that id, the port mapper
        cannot be asked, or this runs in the hub (which must not block).
        """
        peer = self.by_id.get(node_id)
        if peer is not None:
            return peer
        if getcurrent() is self._hub:
            return None
        try:
            for name in self._list_names():
                if name != self.own_name and node_id_of(name) == node_id:
                    return self.peer(name)
        except Exception as exc:  # noqa: BLE001 - an unreachable port mapper means "unknown"
            log.warning("cannot resolve node id %d at the port mapper: %s", node_id, exc)
        return None

    def name_of(self, node_id: int) -> str | None:
        """The name of the node with ``node_id``, if known lately (no port-mapper query)."""
        peer = self.by_id.get(node_id)
        return peer.name if peer is not None else self._names.get(node_id)

    def connected(self, kind: str = "visible") -> list[str]:
        """The names of the peers with a link open for sends, sorted.

        Args:
            kind: ``"visible"`` (Erlang's ``nodes()``), ``"hidden"`` (links
                of which either side is a hidden node) or ``"connected"`` (all).

        Raises:
            ValueError: another ``kind``.
        """
        if kind not in ("visible", "hidden", "connected"):
            raise ValueError(f"kind must be 'visible', 'hidden' or 'connected', not {kind!r}")
        return sorted(
            p.name
            for p in self._by_name.values()
            if p.conn is not None and (kind == "connected" or p.hidden == (kind == "hidden"))
        )


class NodeWatchers:
    """Processes that asked for ``NodeUp``/``NodeDown`` (monitor_nodes, monitor_node)."""

    def __init__(self, inbound: Inbound) -> None:
        self._inbound = inbound
        self._watchers: dict[Pid, set[str] | None] = {}  # pid -> node names (None: all)

    def watch_all(self, pid: Pid, flag: bool) -> None:
        """``pid`` hears of every node (``flag``), or of none any more."""
        if flag:
            self._watchers[pid] = None
        else:
            self._watchers.pop(pid, None)

    def watch(self, pid: Pid, name: str, flag: bool) -> bool:
        """``pid`` hears of node ``name``; False if it hears of every node already."""
        names = self._watchers.get(pid, set())
        if names is None:
            return False
        if flag:
            names.add(name)
            self._watchers[pid] = names
        else:
            names.discard(name)
        return True

    def notify(self, event: Any, hidden: bool = False) -> None:
        """Queue ``event`` (a NodeUp or NodeDown) for every process watching its node.

        The event of a ``hidden`` link goes only to those watching that node
        by name, as Erlang's ``monitor_nodes`` leaves hidden nodes out.
        """
        for pid, names in list(self._watchers.items()):
            wants = not hidden if names is None else event.node in names
            if wants and not self._inbound.signal(pid, event):
                self._watchers.pop(pid, None)
