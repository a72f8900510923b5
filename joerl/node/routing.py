"""Routing: the node's :class:`~joerl._router.Router`, signals out to peers as protocol messages.

The runtime hands every signal for a pid of another node to :class:`Routing`,
which turns it into a protocol message for that node's peer and gives it to
the :class:`Outbox` (the links: dialled on first use, messages waiting in
order meanwhile). Remote calls, ``is_process_alive`` round trips and remote
spawns wait in the node's own :class:`~joerl._gen.Pending` table: every wait
is resolved with ``(True, value)`` by its answer or ``(False, reason)`` when
its server, its link or its dial is lost.

Pids at the boundary: locally a pid is ``<0.id.0>``; on the wire it is
``<node_id.id.creation>``. The codec's pid and ref hooks map them both ways,
so a pid inside any message names the same process wherever it arrives, and
a pid of a previous incarnation of this node never reaches a process of this one:
a link or monitor of such a pid (a restarted node handed its old pids by
peers or stored state) is answered ``noproc`` at once, as one of a process
that has ended; what is sent to it is dropped and counted.

Exit reasons cross as data (:meth:`Routing.wire_reason`,
:meth:`Routing.read_reason`): an exception becomes an
:class:`~joerl.message.ExceptionReason` at the far end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

import gevent
from gevent import get_hub, getcurrent

from .._gen import From, Pending
from .._router import Inbound, RemoteName, RemoteTarget, Router
from ..errors import LinkDown, MessageTooLarge, SerializationError
from ..message import NOCONNECTION, NOPROC, ExceptionReason
from ..pid import BOUNDED_MAILBOX, SYSTEM_PID, Pid, Ref
from ..serialization import Codec, Limits, MessageRegistry
from . import protocol as P
from .batching import NO_LANE, TERM_COST
from .calls import RemoteCalls
from .flow import FlowGate, NoFlow
from .messages import TERM_KEYS, TERM_SCALARS

if TYPE_CHECKING:
    from ..system import ActorSystem
    from .peers import Peer, PeerTable
    from .stats import NodeStats

__all__ = ["MAX_REASON_TEXT", "Outbox", "Routing", "is_message"]

log = logging.getLogger("joerl.node")

#: How an :class:`~joerl.message.ExceptionReason` crosses: ``(tag, type, message, traceback)``.
EXCEPTION_TAG: Final = "$joerl_exception"
#: The most characters of an exception's message or traceback that cross (the tail is kept).
MAX_REASON_TEXT: Final = 32768


def is_message(msg: Any) -> bool:
    """Is protocol message ``msg`` a message to a process (a ``Send`` or a ``RegSend``)?

    Those, and only those, are counted in ``node.stats``: ``sent`` once on a
    link, else ``dropped_*`` once.
    """
    cls = msg.__class__
    return cls is P.Send or cls is P.RegSend


class Outbox(Protocol):
    """Where protocol messages for a peer go (the links: :class:`~joerl.node.links.Links`)."""

    def enqueue(self, peer: Peer, msg: Any) -> None:
        """Send ``msg`` on ``peer``'s link, or queue it while the link comes up."""


class _Unwired:
    def enqueue(self, peer: Peer, msg: Any) -> None:
        raise RuntimeError("the node's links are not wired to its routing yet")


class Routing:
    """Implements :class:`joerl._router.Router` for one node (see the module docstring).

    Args:
        system: the node's actor system; this attaches itself as its router.
        node_id, creation: this node's id and incarnation (pids on the wire).
        peers: the node's peer table.
        stats: the node's counters.
        registry, limits: the message types and decoding limits of the codec.
    """

    def __init__(
        self,
        system: ActorSystem,
        node_id: int,
        creation: int,
        peers: PeerTable,
        stats: NodeStats,
        registry: MessageRegistry,
        limits: Limits | None,
        wrap: Callable[[Routing], Router] | None = None,  # the Router the system gets (Erlang: erl_routing.py)
    ) -> None:
        self._name = system.name
        self.node_id = node_id
        self.creation = creation
        self.peers = peers
        self.stats = stats
        #: Remote calls, is_process_alive round trips and remote spawns waiting for an answer.
        self.pending = Pending(node_id, creation)
        #: Set by the node once its links exist.
        self.outbox: Outbox = _Unwired()
        #: Called with a peer whose link or dial is lost, after its waits failed (remote spawn's bookkeeping).
        self.peer_lost_hooks: list[Callable[[Peer], None]] = []
        #: Flow control (``dispatch.py``, ``flow.py``): the bounded destinations
        #: (pids with ``BOUNDED_MAILBOX``) this node has sent to, ``{node_id: {pid id: Credit}}``.
        self.paced: dict[int, dict[int, Any]] = {}
        #: Set by the node's dispatch: waits for credit (:class:`FlowGate`).
        self.flow: FlowGate = NoFlow()
        self.codec = Codec(
            registry,
            encode_pid=self.glob_pid,
            decode_pid=self.local_pid,
            encode_ref=self.glob_ref,
            decode_ref=self.local_ref,
            limits=limits,
            tuple_types=(From, ExceptionReason),  # plain data: they arrive as tuples
        )
        self._hub = get_hub()
        self.make_ref = system.make_ref
        self.ref_id: Callable[[], int] = system.ref_ids.__next__  # a new ref's id, no Ref made
        self._by_id = peers.by_id
        self._glob_cache: dict[int, Pid] = {}
        self._unresolved: dict[int, list[Any]] = {}  # node id -> messages waiting for its name
        # route_send's lane: the open batch a burst joins (NO_LANE: none), its link's pack and maps flag.
        self._lane: Any = NO_LANE
        self._lane_pack: Callable[[Any], bytes] = bytes
        self._lane_maps = False
        self.inbound: Inbound = system.attach_router(self if wrap is None else wrap(self))
        #: Remote calls, both ends (``calls.py``).
        self.calls = RemoteCalls(self)
        # The Router's call and route_reply, bound straight to them (no hop per call).
        self.call = self.calls.call  # type: ignore[method-assign]
        self.route_reply = self.calls.reply  # type: ignore[method-assign]

    @property
    def node_name(self) -> str:
        return self._name

    # -- pids at the boundary ----------------------------------------------------

    def glob_pid(self, pid: Pid) -> Pid:
        """A pid as peers see it (``<node_id.id.creation>`` for a local one)."""
        if pid.node != 0:
            return pid
        g = self._glob_cache.get(pid.id)
        if g is None:
            if len(self._glob_cache) > 65536:
                self._glob_cache.clear()
            g = self._glob_cache[pid.id] = Pid._unchecked(self.node_id, pid.id, self.creation)
        return g

    def local_pid(self, pid: Pid) -> Pid:
        """A pid from the wire as the runtime sees it (ours become ``<0.id.0>``)."""
        if pid.node == self.node_id and pid.creation == self.creation:
            return Pid._unchecked(0, pid.id, 0)  # type: ignore[no-any-return]
        return pid  # another node's, or a stale one of ours (dropped when used)

    def glob_ref(self, ref: Ref) -> Ref:
        return ref if ref.node != 0 else Ref._unchecked(self.node_id, ref.id, self.creation)

    def local_ref(self, ref: Ref) -> Ref:
        if ref.node == self.node_id and ref.creation == self.creation:
            return Ref._unchecked(0, ref.id, 0)  # type: ignore[no-any-return]
        return ref

    def glob_opt(self, pid: Pid | None) -> Pid | None:
        """A sender as it crosses: None for plain code (``SYSTEM_PID``)."""
        return None if pid is None or pid == SYSTEM_PID else self.glob_pid(pid)

    def local_target(self, pid: Pid) -> Pid | None:
        """A pid addressed to us -> the local pid, or None if stale (another creation)."""
        if pid.node == self.node_id and pid.creation == self.creation:
            return Pid._unchecked(0, pid.id, 0)  # type: ignore[no-any-return]
        self.stats.dropped_stale += 1
        log.debug("dropping a message for %s: not a process of this incarnation", pid)
        return None

    def wire_reason(self, reason: Any) -> bytes:
        """An exit reason as it crosses: data, an exception as an :class:`~joerl.message.ExceptionReason`.

        Args:
            reason: the local reason (a string, any data, or the exception
                that ended the process).

        Returns:
            The encoded reason; one the codec cannot carry crosses as its ``repr``.
        """
        if isinstance(reason, BaseException):
            reason = ExceptionReason.from_exception(reason)
        if isinstance(reason, ExceptionReason):
            reason = (EXCEPTION_TAG, _tail(reason.type), _tail(reason.message), _tail(reason.traceback))
        try:
            return self.codec.encode(reason)
        except SerializationError:
            return self.codec.encode(repr(reason))

    def read_reason(self, data: bytes) -> Any:
        """An exit reason from the wire (the inverse of :meth:`wire_reason`).

        Args:
            data: the encoded reason.

        Returns:
            The reason; an exception's is an :class:`~joerl.message.ExceptionReason`.

        Raises:
            SerializationError: the bytes do not decode.
        """
        reason = self.codec.decode(data)
        if (
            reason.__class__ is tuple
            and len(reason) == 4
            and reason[0] == EXCEPTION_TAG
            and all(isinstance(part, str) for part in reason[1:])
        ):
            return ExceptionReason(reason[1], reason[2], reason[3])
        return reason

    # -- the Router --------------------------------------------------------------

    def route_send(self, sender: Pid | None, to: Pid, msg: Any) -> None:
        lane = self._lane
        if to is lane.to and sender is lane.key:
            # The lane: more of a burst from one process to one of another node
            # whose batch of plain terms is still open. The full path's checks
            # (peer, link up, creation, unbounded destination, sender as it
            # crosses) held when the lane was set and hold while the batch is
            # open (a link down clears its queue; a new link or creation, or
            # anything else queued on the link, closes the batch: room CLOSED).
            # OutboundBatcher.term's check and join, inlined for its commonest
            # shapes (tests/unit/test_node_lane.py checks they agree).
            cls = msg.__class__
            if cls is tuple:
                if len(msg) == 2:
                    a, b = msg
                    plain = a.__class__ in TERM_SCALARS and b.__class__ in TERM_SCALARS
                else:
                    plain = False
            elif cls is dict and len(msg) == 1 and self._lane_maps:
                for k in msg:
                    plain = k.__class__ in TERM_KEYS and msg[k].__class__ in TERM_SCALARS
            else:
                plain = False
            if plain:
                try:
                    body = self._lane_pack(msg)
                    room = lane.room - len(body) - TERM_COST
                except (OverflowError, UnicodeEncodeError):  # the full path packs it again, fails, resets
                    room = -1
                if room >= 0:
                    lane.append(body)  # (counted as the batch closes: on_joined)
                    lane.room = room
                    return
                self._lane = NO_LANE  # closed, or full: the full path opens the next batch
        key = sender
        peer = self._by_id.get(to.node)
        if peer is not None:
            conn = peer.conn
            if conn is not None:
                if sender is not None:
                    glob = self._glob_cache.get(sender.id) if sender.node == 0 else sender
                    sender = glob if glob is not None and sender.id else self.glob_opt(sender)
                if to.creation != peer.creation:
                    self.codec.encode(msg)  # NotSerializable all the same
                    self.stats.dropped_stale += 1
                    return
                if to.id & BOUNDED_MAILBOX:  # flow control: a bounded destination (its pid says so)
                    self.flow.admit(conn, to, None)
                self.stats.sent += 1
                try:
                    # A plain term (("ping", 7)) travels as itself, skipping the
                    # codec, and a burst of them to one process shares frames.
                    if conn.send_term(sender, to, msg):
                        out = conn.outbound
                        lane = out.open_terms()
                        # (The batch this message joined: not another sender's opened while it waited.)
                        if lane is not None and lane.to is to and lane.sender is sender and not to.id & BOUNDED_MAILBOX:
                            lane.key = key  # (more of this burst joins it above)
                            self._lane, self._lane_pack, self._lane_maps = lane, out.pack, out.maps
                            out.on_joined = self._count_joined
                    else:
                        conn.send_payload(sender, to, self.codec.encode(msg))
                except LinkDown:  # dropped while we waited for room: lost with the link
                    self.stats.sent -= 1  # (counted once: as dropped)
                    self.stats.dropped_unreachable += 1
                except MessageTooLarge:  # refused before anything was queued: the sender hears it
                    self.stats.sent -= 1
                    raise
                return
        send = P.Send(self.glob_opt(sender), to, self.codec.encode(msg))
        peer = self.flow.admit_unlinked(to) if to.id & BOUNDED_MAILBOX else None  # charged to the next link
        self.route(to.node, send)
        if peer is not None:
            self.flow.settle_unlinked(peer, to, send)

    def _count_joined(self, n: int) -> None:
        """``n`` messages that joined a batch through the lane: sent (counted as it closed)."""
        self.stats.sent += n

    def route_try_send(self, sender: Pid | None, to: Pid, msg: Any) -> bool:
        """:meth:`route_send` unless flow control holds ``to`` back: then False, nothing sent."""
        if to.id & BOUNDED_MAILBOX and not self.flow.may_send(to):
            return False
        self.route_send(sender, to, msg)
        return True

    def route_send_named(self, sender: Pid | None, name: str, node: str, msg: Any) -> None:
        payload = self.codec.encode(msg)
        self.outbox.enqueue(self.peers.peer(node), P.RegSend(self.glob_opt(sender), name, payload))

    def route_link(self, local: Pid, remote: Pid) -> None:
        self.route(remote.node, P.Link(self.glob_pid(local), remote))

    def route_unlink(self, local: Pid, remote: Pid) -> None:
        self.route(remote.node, P.Unlink(self.glob_pid(local), remote, 0))

    def route_link_exit(self, local: Pid, remote: Pid, reason: Any) -> None:
        self.route(remote.node, P.Exit(self.glob_pid(local), remote, self.wire_reason(reason)))

    def route_exit(self, sender: Pid, to: Pid, reason: Any) -> None:
        self.route(to.node, P.Exit2(self.glob_opt(sender), to, self.wire_reason(reason)))

    def route_monitor(self, watcher: Pid, target: RemoteTarget, ref: Ref) -> None:
        if isinstance(target, RemoteName):
            msg = P.Monitor(self.glob_pid(watcher), target.name, self.glob_ref(ref))
            self.outbox.enqueue(self.peers.peer(target.node), msg)
            return
        self.route(target.node, P.Monitor(self.glob_pid(watcher), target, self.glob_ref(ref)))

    def route_demonitor(self, watcher: Pid, target: RemoteTarget, ref: Ref) -> None:
        if isinstance(target, RemoteName):
            peer = self.peers.get(target.node)
            if peer is not None:
                self.outbox.enqueue(peer, P.Demonitor(self.glob_pid(watcher), target.name, self.glob_ref(ref)))
            return
        self.route(target.node, P.Demonitor(self.glob_pid(watcher), target, self.glob_ref(ref)))

    def route_down(self, watcher: Pid, ref: Ref, pid: Pid, reason: Any) -> None:
        self.route(watcher.node, P.Down(self.glob_pid(pid), watcher, ref, self.wire_reason(reason)))

    def route_reply(self, from_: From, value: Any) -> None:
        self.calls.reply(from_, value)

    def call(self, server: Pid | RemoteName, request: Any, timeout: float | None, caller: Pid | None) -> Any:
        """A GenServer call to a process of another node (:meth:`RemoteCalls.call <joerl.node.calls.RemoteCalls.call>`)."""
        return self.calls.call(server, request, timeout, caller)

    def is_alive(self, pid: Pid, timeout: float = 5.0) -> bool:
        """A round trip to ``pid``'s node; False if the node cannot be reached in time."""
        if pid.node == self.node_id:
            return False  # a pid of a previous incarnation of this node
        peer = self.peers.for_id(pid.node)
        if peer is None:
            return False
        result = self.request(peer, lambda gref: P.AliveRequest(gref, pid), timeout)
        return result is not None and result[0] and bool(result[1])

    # -- shared by the node's parts ---------------------------------------------------

    def request(self, peer: Peer, make: Any, timeout: float | None) -> Any:
        """Send ``make(wire_ref)`` to ``peer`` and wait for its answer under that ref.

        Returns ``(True, value)``, ``(False, reason)`` (the link or dial was
        lost) or None (no answer within ``timeout``).
        """
        ref = self.make_ref()
        waiter = self.pending.add(ref)
        peer.calls.add(ref)
        try:
            self.outbox.enqueue(peer, make(self.glob_ref(ref)))
            return self.pending.wait(waiter, ref, timeout)
        finally:
            self.pending.discard(ref)
            peer.calls.discard(ref)

    def route(self, node_id: int, msg: Any) -> None:
        """Queue a protocol message for node ``node_id`` (connecting if needed).

        A message for a pid of this very node's id (an earlier incarnation's:
        the runtime knows this one's as local pids) is not sent: a link or
        monitor is answered ``noproc`` at once, anything else is dropped and
        counted in ``stats.dropped_stale``.
        """
        if node_id == self.node_id or node_id == 0:
            self.stats.dropped_stale += is_message(msg)
            self.fail(msg, node_id, NOPROC)
            return
        peer = self._by_id.get(node_id)
        if peer is None:
            waiting = self._unresolved.get(node_id)
            if waiting is not None:
                waiting.append(msg)  # in order, behind those already waiting for the name
                return
            if getcurrent() is self._hub:
                # The hub (a timer) cannot ask the port mapper: one greenlet per
                # node id does, and routes everything queued for it meanwhile, in order.
                self._unresolved[node_id] = [msg]
                gevent.spawn(self._route_unresolved, node_id)
                return
            peer = self.peers.for_id(node_id)
            if peer is None:
                self._drop_unknown(node_id, [msg])
                return
        self.outbox.enqueue(peer, msg)

    def _route_unresolved(self, node_id: int) -> None:
        try:
            peer = self.peers.for_id(node_id)
        finally:
            msgs = self._unresolved.pop(node_id, [])
        if peer is None:
            self._drop_unknown(node_id, msgs)
            return
        for msg in msgs:
            self.outbox.enqueue(peer, msg)

    def _drop_unknown(self, node_id: int, msgs: list[Any]) -> None:
        self.stats.dropped_unknown_node += sum(map(is_message, msgs))
        log.warning("dropping %d message(s) for node id %d: no such node at the port mapper", len(msgs), node_id)
        for msg in msgs:
            self.fail_unreachable(msg, node_id)

    def fail_unreachable(self, msg: Any, node_id: int) -> None:
        """What the sender of ``msg`` learns when node ``node_id`` cannot be reached (``noconnection``)."""
        self.fail(msg, node_id, NOCONNECTION)

    def fail(self, msg: Any, node_id: int, reason: str) -> None:
        """Answer the sender of ``msg``, which cannot be delivered, as its target's node would.

        A ``Link`` gets an exit signal and a ``Monitor`` a ``Down`` (or its
        call fails), both with ``reason``; a waiting request fails with it.

        Args:
            msg: the protocol message that is not sent.
            node_id: the node it was for.
            reason: ``noconnection`` (the node cannot be reached) or
                ``noproc`` (the pid is of an earlier incarnation of this node).
        """
        cls = msg.__class__
        if cls is P.Link:
            # Later, from the hub: this may run inside the ActorSystem.link()
            # that sent the Link, before it has recorded the link (and in the
            # greenlet of the very process the exit signal is for).
            self._hub.loop.run_callback(self.inbound.exit, msg.to, self.local_pid(msg.sender), reason, True)
        elif cls is P.Monitor:
            ref = self.local_ref(msg.ref)
            if not self.pending.resolve(ref, (False, reason)):
                pid = msg.to if isinstance(msg.to, Pid) else Pid._unchecked(node_id, 0, 0)  # a (name, node) monitor
                self.inbound.down(self.local_pid(msg.sender), ref, pid, reason)
        elif cls is P.AliveRequest or cls is P.SpawnRequest:
            self.pending.resolve(self.local_ref(msg.ref), (False, reason))

    def fail_waiting(self, peer: Peer) -> None:
        """Every wait that ``peer`` would answer fails with ``noconnection`` (its link or dial is lost)."""
        for ref in list(peer.calls):
            self.pending.resolve(ref, (False, NOCONNECTION))
        self.calls.forget(peer)
        for hook in self.peer_lost_hooks:
            hook(peer)


def _tail(text: str) -> str:
    """``text``, or its last :data:`MAX_REASON_TEXT` characters behind a marker."""
    if len(text) <= MAX_REASON_TEXT:
        return text
    return "[...truncated]\n" + text[-MAX_REASON_TEXT:]


if TYPE_CHECKING:
    # mypy holds Routing to the seam's Protocol (tests/integration/test_node_semantics.py checks it at run time).
    _conforms: type[Router] = Routing
