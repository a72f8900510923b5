"""Dispatch: what arrives from peers, applied to the process table through the Inbound.

:meth:`Dispatch.on_frame` runs for every control message of a link, in its
reader greenlet, or in the hub for the messages it lists as ``hub_safe``
(``link_reader.py``). Messages for processes go straight into their mailboxes (the hot
path); links, monitors and exit signals go through the node's
:class:`~joerl._router.Inbound`; answers (call replies, ``Down`` of a call's
monitor, alive and spawn replies) resolve the waits in the routing's
:class:`~joerl._gen.Pending` table. A reply for a call that did not cross
nodes (its server handed its ``From`` to a process of another node, which
replied from there) resolves the runtime's own call through
``Inbound.reply``. A reply nobody waits for any more is counted in
``stats.extra["late_replies"]`` and dropped.

A message for a *bounded* mailbox never blocks the reader: it goes through
:class:`FlowControl`, the IO half of flow control (the bookkeeping is
``flow.py``'s, with the protocol): what does not fit waits in the
destination's queue on this node, credit goes back to the sending nodes as
the mailbox drains, and at the sending end a greenlet with no credit left
waits for more. A message for a process that is not alive any more is
dropped and counted in the system's ``stats`` (``noproc``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol

from gevent import get_hub, getcurrent
from gevent.hub import Waiter

from .._gen import CALL, as_call
from .._stats import DROP_EXITED, DROP_NOPROC
from ..errors import LinkDown, SerializationError
from ..message import NOPROC
from ..pid import BOUNDED_MAILBOX, SYSTEM_PID, Pid
from . import protocol as P
from .flow import DEFAULT_WINDOW, GONE, GRANT, Credit, Inflow, InLink

if TYPE_CHECKING:
    from ..mailbox import Mailbox
    from ..system import ActorSystem
    from .connection import Connection
    from .peers import Peer
    from .routing import Routing

__all__ = ["Dispatch", "FlowControl", "SpawnHandler"]

_TIMEOUT = object()

log = logging.getLogger("joerl.node")


class SpawnHandler(Protocol):
    """The remote-spawn service (:class:`~joerl.node.spawn.Spawner`)."""

    def on_request(self, conn: Connection, msg: Any) -> None: ...
    def on_reply(self, msg: Any) -> None: ...


class Dispatch:
    """Frames from peers (see the module docstring).

    Args:
        routing: the node's routing (pid mapping, codec, pending waits, Inbound).
        system: the node's actor system, for names and liveness (its public API).
        spawns: the remote-spawn service.
    """

    def __init__(self, routing: Routing, system: ActorSystem, spawns: SpawnHandler) -> None:
        self._routing = routing
        self._inbound = routing.inbound
        self._mailbox = routing.inbound.mailbox
        self._codec = routing.codec
        self._stats = routing.stats
        self._pending = routing.pending
        self._node_id = routing.node_id
        self._creation = routing.creation
        self._whereis = system.whereis
        self._is_alive = system.is_process_alive
        self._spawns = spawns
        self._drop = system.stats.drop
        #: Flow control for bounded mailboxes (both ends); installed as the routing's.
        self.flow = FlowControl(routing, system.stats.drop)
        self._arrive = self.flow.arrive

    def on_frame(self, conn: Connection, msg: Any) -> None:
        """One control message from ``conn``'s peer (its reader greenlet, or the hub: ``hub_safe``).

        A payload or reason this node cannot decode (an unknown message type,
        bytes over a limit) is counted in ``stats.bad_payloads`` and re-raised:
        the link logs and drops that frame, and carries on.
        """
        cls = msg.__class__
        if cls is P.SendTerms:  # the hot path, kept inline: plain terms, never a call
            to = msg[1]
            conn.messages_in += len(msg[2])  # (taken off the link: what the ACK counts)
            if to.node == self._node_id and to.creation == self._creation:
                mailbox = self._mailbox(to.id)
                msgs = msg[2]
                if mailbox is not None:
                    self._stats.received += len(msgs)
                    if mailbox.maxsize is None:
                        mailbox.deliver_all(msgs, msg[0])
                    else:
                        self._arrive(conn, to, mailbox, msgs, msg[0])
                else:
                    self._dead(conn, to, len(msgs))
            else:
                self._stats.dropped_stale += len(msg[2])
            return
        try:
            if cls is P.Send:
                to = msg.to
                conn.messages_in += 1
                if to.node == self._node_id and to.creation == self._creation:
                    mailbox = self._mailbox(to.id)
                    if mailbox is not None:
                        payload = self._codec.decode(msg.payload)
                        if payload.__class__ is tuple and len(payload) == 3 and payload[0] == CALL:
                            payload = as_call(payload)  # (checked inline: a call per message costs)
                        self._stats.received += 1
                        if mailbox.maxsize is None:
                            mailbox.deliver(payload, msg.sender)
                        else:
                            self._arrive(conn, to, mailbox, (payload,), msg.sender)
                    else:
                        self._dead(conn, to, 1)
                else:
                    self._stats.dropped_stale += 1
            else:
                self._on_control(conn, msg)
        except SerializationError:
            self._stats.bad_payloads += 1
            raise

    def _on_control(self, conn: Connection, msg: Any) -> None:
        """Every control message but ``Send`` and ``SendTerms``."""
        cls = msg.__class__
        inbound = self._inbound
        routing = self._routing
        if cls is P.Monitor:  # (a remote call's frames first)
            target = msg.to
            local = self._whereis(target) if isinstance(target, str) else routing.local_target(target)
            if local is None or not inbound.add_monitor(msg.sender, local, msg.ref):
                self._answer(conn, P.Down(target, msg.sender, msg.ref, routing.wire_reason(NOPROC)))
        elif cls is P.Demonitor:
            target = msg.to
            local = self._whereis(target) if isinstance(target, str) else routing.local_target(target)
            if local is not None:
                inbound.remove_monitor(local, msg.ref)
        elif cls is P.CallReply:
            ref = routing.local_ref(msg.ref)
            if ref in self._pending:
                self._pending.resolve(ref, (True, self._codec.decode(msg.payload)))
            elif ref.node != 0 or not inbound.reply(ref, self._codec.decode(msg.payload)):
                extra = self._stats.extra
                extra["late_replies"] = extra.get("late_replies", 0) + 1
        elif cls is P.RegSend:
            conn.messages_in += 1
            pid = self._whereis(msg.to_name)
            mailbox = self._mailbox(pid.id) if pid is not None else None
            if mailbox is not None:
                payload = as_call(self._codec.decode(msg.payload))
                self._stats.received += 1
                if mailbox.maxsize is None:
                    mailbox.deliver(payload, msg.sender)
                else:  # (a send to a name is never charged: no credit covers it)
                    self.flow.arrive_named(routing.glob_pid(pid), mailbox, payload, msg.sender)  # type: ignore[arg-type]
            else:
                self._drop(DROP_NOPROC)
        elif cls is P.Flow:
            self.flow.on_flow(conn, msg)
        elif cls is P.AliveRequest:
            local = routing.local_target(msg.pid)
            alive = local is not None and self._is_alive(local)
            self._answer(conn, P.AliveReply(msg.ref, alive))
        elif cls is P.AliveReply:
            self._pending.resolve(routing.local_ref(msg.ref), (True, bool(msg.alive)))
        elif cls is P.Link:
            local = routing.local_target(msg.to)
            if local is None or not inbound.add_link(local, msg.sender):
                self._answer(conn, P.Exit(msg.to, msg.sender, routing.wire_reason(NOPROC)))
        elif cls is P.Unlink:
            local = routing.local_target(msg.to)
            if local is not None:
                inbound.remove_link(local, msg.sender)
        elif cls is P.Exit or cls is P.Exit2:
            local = routing.local_target(msg.to)
            if local is not None:
                inbound.exit(msg.sender or SYSTEM_PID, local, routing.read_reason(msg.reason), cls is P.Exit)
        elif cls is P.Down:
            self._on_down(conn, msg)
        elif cls is P.SpawnRequest:
            self._spawns.on_request(conn, msg)
        elif cls is P.SpawnReply:
            self._spawns.on_reply(msg)
        else:
            log.debug("ignoring %s from %s", cls.__name__, conn.peer_name)

    def _on_down(self, conn: Connection, msg: Any) -> None:
        routing = self._routing
        ref = routing.local_ref(msg.ref)
        reason = routing.read_reason(msg.reason)
        if self._pending.resolve(ref, (False, reason)):
            return  # the server of a remote call ended: the call fails
        watcher = routing.local_target(msg.to)
        if watcher is not None:
            pid = (
                msg.sender if isinstance(msg.sender, Pid) else Pid._unchecked(conn.peer.node_id, 0, conn.peer.creation)
            )
            self._inbound.down(watcher, ref, pid, reason)

    def _dead(self, conn: Connection, to: Pid, n: int) -> None:
        """``n`` messages from ``conn`` for ``to``, a process of this incarnation that is not alive: dropped, counted."""
        self._drop(DROP_NOPROC, n)
        self.flow.dead(conn, to)

    @staticmethod
    def _answer(conn: Connection, msg: Any) -> None:
        try:
            conn.send(msg)
        except LinkDown:
            pass  # the link is going: its NodeDown tells the rest


#: What ``on_frame`` may take in the hub (``link_reader.py``): these only append to
#: a mailbox (never waiting: a bounded one goes through flow control), wake a
#: waiter (a call's, a sender's waiting for credit), update a process's monitors,
#: or answer on a link (which the hub never waits for). Links, exit signals,
#: spawns and the rest take the reader greenlet.
Dispatch.on_frame.hub_safe = frozenset(  # type: ignore[attr-defined]
    {P.Send, P.SendTerms, P.RegSend, P.CallReply, P.Monitor, P.Demonitor, P.Down, P.Flow}
)


class FlowControl:
    """Flow control's IO, both ends (the bookkeeping and protocol: ``flow.py``).

    Receiving end: :meth:`arrive` (the reader greenlet or the hub) puts what fits into a
    bounded mailbox and queues the rest in the destination's
    :class:`~joerl.node.flow.Inflow`, which waits for room with
    ``Mailbox.on_room`` (the hook runs in the hub); GRANT and GONE frames go
    out from the reader or the hub, which never wait on a link.

    Sending end: :meth:`admit` (the routing's send path, in the sending
    greenlet, for a pid with ``BOUNDED_MAILBOX``) charges a message to the
    destination's credit on the link, which starts at the window, and waits
    while there is none; the hub never waits (it overdraws, as a timer's
    message goes past a local bound). A message queued while the link comes
    up is charged to credit not yet bound to a link: the next link's, which
    carries it first. A GONE, or the loss of the link (or of the dial),
    releases every waiter.

    Args:
        routing: the node's routing; this installs itself as ``routing.flow``
            and shares ``routing.paced``.
        drop: ``drop(reason, n)``: count dropped messages (the system's stats).
        window: the credit each link starts with for each bounded destination
            (both ends of a link must use the same: the protocol's
            :data:`~joerl.node.flow.DEFAULT_WINDOW` unless a test says otherwise).
    """

    def __init__(self, routing: Routing, drop: Callable[[str, int], None], window: int = DEFAULT_WINDOW) -> None:
        self.window = window
        self._routing = routing
        self._paced: dict[int, dict[int, Credit]] = routing.paced
        self._drop = drop
        self._hub = get_hub()
        self._callback = self._hub.loop.run_callback
        #: Bounded destinations with remote senders: local id -> (its Inflow, its mailbox, its wire pid).
        self._inflows: dict[int, tuple[Inflow, Mailbox, Pid]] = {}
        routing.flow = self
        routing.peer_lost_hooks.append(self._peer_lost)

    def queued(self) -> int:
        """Messages waiting on this node for room in bounded mailboxes."""
        return sum(len(entry[0]) for entry in self._inflows.values())

    def peak(self, to: Pid) -> int:
        """The most messages this node's queue for bounded ``to`` (a pid of this node) has held; 0 if none."""
        entry = self._inflows.get(to.id)
        return entry[0].peak if entry is not None else 0

    # -- the receiving end ---------------------------------------------------------------

    def arrive(self, conn: Connection, to: Pid, mailbox: Mailbox, msgs: tuple[Any, ...], sender: Pid | None) -> None:
        """``msgs`` from ``sender`` on ``conn`` for the bounded mailbox of ``to`` (a wire pid); never waits."""
        inflow = self._inflow(to, mailbox)
        if inflow is None:
            return
        now, grants = inflow.arrive(conn, msgs, sender, mailbox.maxsize - len(mailbox))  # type: ignore[operator]
        self._settle(inflow, mailbox, to, now, grants)

    def arrive_named(self, to: Pid, mailbox: Mailbox, msg: Any, sender: Pid | None) -> None:
        """A message sent to a name: queued with the rest, never charged."""
        inflow = self._inflow(to, mailbox)
        if inflow is not None:
            now = inflow.arrive_uncharged(msg, sender, mailbox.maxsize - len(mailbox))  # type: ignore[operator]
            self._settle(inflow, mailbox, to, now, [])

    def dead(self, conn: Connection, to: Pid) -> None:
        """A message came on ``conn`` for ``to``, which is not alive: end its flow state, release the sender."""
        entry = self._inflows.get(to.id)
        if entry is not None:
            self._ended(to.id, entry[0], entry[2])
        if to.id & BOUNDED_MAILBOX:
            self._tell(conn, P.Flow(to, GONE, 0))  # (its sender charged it: forget that credit)

    def _inflow(self, to: Pid, mailbox: Mailbox) -> Inflow | None:
        entry = self._inflows.get(to.id)
        if entry is None:
            if mailbox.closed:
                return None
            inflow = Inflow(self.window, bool(to.id & BOUNDED_MAILBOX))
            self._inflows[to.id] = (inflow, mailbox, to)
            return inflow
        return entry[0]

    def _settle(
        self, inflow: Inflow, mailbox: Mailbox, to: Pid, now: list[tuple[Any, Any]], grants: list[tuple[InLink, int]]
    ) -> None:
        for pair in now:
            mailbox.put_signal(pair)  # (within the bound: Inflow counted the room)
        for acct, n in grants:
            self._tell(acct.link, P.Flow(to, GRANT, n))
        if inflow.queue and not inflow.armed:
            inflow.armed = True
            mailbox.on_room(lambda: self._room(to, inflow, mailbox))

    def _room(self, to: Pid, inflow: Inflow, mailbox: Mailbox) -> None:
        """The hub: a slot of ``mailbox`` freed, or it closed."""
        inflow.armed = False
        if mailbox.closed:
            self._ended(to.id, inflow, to)
            return
        now, grants = inflow.drain(mailbox.maxsize - len(mailbox))  # type: ignore[operator]
        self._settle(inflow, mailbox, to, now, grants)

    def _ended(self, local_id: int, inflow: Inflow, to: Pid) -> None:
        """The destination ended: count what waited for it, release its senders (GONE)."""
        self._inflows.pop(local_id, None)
        dropped, told = inflow.close()
        if dropped:
            self._drop(DROP_EXITED, dropped)
        for acct in told:
            self._tell(acct.link, P.Flow(to, GONE, 0))

    @staticmethod
    def _tell(conn: Any, msg: P.Flow) -> None:
        try:
            conn.send(msg)  # (from the reader or the hub: never waits)
        except LinkDown:
            pass  # the link is going: its credit goes with it

    # -- the sending end --------------------------------------------------------------------

    def on_flow(self, conn: Connection, msg: P.Flow) -> None:
        """A FLOW frame from ``conn``'s peer (its reader greenlet, or the hub)."""
        dest = msg.dest
        kind = msg.kind
        if kind != GRANT and kind != GONE:
            return  # (kind 1, reserved: nothing to do)
        if dest.node != conn.peer.node_id:
            log.debug("ignoring FLOW for %s from %s: not one of its processes", dest, conn.peer_name)
            return
        gates = self._paced.get(dest.node)
        credit = gates.get(dest.id) if gates is not None else None
        if credit is None or gates is None or (credit.link is not conn and credit.link is not None):
            return  # credit this end forgot (GONE, a lost link): nothing to do
        credit.link = conn  # (credit charged while the link came up is this link's)
        if kind == GRANT:
            if credit.grant(msg.n):
                self._wake(credit)
        else:  # GONE
            del gates[dest.id]
            if not gates:
                del self._paced[dest.node]
            self._release(credit)

    def admit(self, conn: Any, to: Pid, timeout: float | None) -> float | None:
        """Charge a message to ``to`` on ``conn``, waiting for credit (see :class:`~joerl.node.flow.FlowGate`)."""
        gates = self._paced.get(to.node)
        credit = gates.get(to.id) if gates is not None else None
        if credit is None or credit.link is not conn:
            credit = self._credit(conn, to, credit)
        if credit.take():
            return 0.0
        if getcurrent() is self._hub:
            credit.force()  # the hub cannot wait
            return 0.0
        start = monotonic()
        loop = self._hub.loop
        while True:
            waiter = Waiter(self._hub)
            credit.waiters.append(waiter)
            timer = None
            if timeout is not None:
                remaining = start + timeout - monotonic()
                timer = loop.timer(max(0.0, remaining))
                timer.start(waiter.switch, _TIMEOUT)
            try:
                result = waiter.get()
            finally:
                if timer is not None:
                    timer.close()
                try:
                    credit.waiters.remove(waiter)
                except ValueError:
                    pass
            if result is _TIMEOUT:
                return None
            if credit.gone or credit.take():
                return monotonic() - start

    def _credit(self, conn: Any, to: Pid, credit: Credit | None) -> Credit:
        """The credit for ``to`` on ``conn`` (None: the next link), when ``credit`` is not already it."""
        if credit is not None:
            old = credit.link
            if old is None and conn is not None:
                credit.link = conn  # charged while the link came up: this is the link
                return credit
            if old is not None and not old.closed and conn is None:
                return credit  # (the link came up as this send went to the dial's queue)
            self._release(credit)  # a link that went down: a fresh window on the new one
        gates = self._paced.get(to.node)
        if gates is None:
            gates = self._paced[to.node] = {}
        credit = gates[to.id] = Credit(conn, self.window)
        return credit

    def admit_unlinked(self, to: Pid) -> Peer | None:
        """Charge a message to ``to`` (no link up) to the next link's credit (see :class:`~joerl.node.flow.FlowGate`)."""
        routing = self._routing
        peer = routing.peers.by_id.get(to.node)
        if peer is None and to.node not in (0, routing.node_id) and getcurrent() is not self._hub:
            peer = routing.peers.for_id(to.node)  # (as routing.route would: the first message dials)
        if peer is not None:
            self.admit(None, to, None)
        return peer

    def settle_unlinked(self, peer: Peer, to: Pid, msg: Any) -> None:
        """Keep the charge of ``msg`` if it waits in ``peer``'s dial queue; else give it back."""
        pending = peer.pending
        if peer.conn is None and pending and pending[-1] is msg:
            return  # it goes first on the next link, charged to its credit
        gates = self._paced.get(to.node)
        credit = gates.get(to.id) if gates is not None else None
        if credit is not None:  # dropped at once, or sent on a link that came up meanwhile
            credit.refund()
            if credit.credit > 0 and credit.waiters:
                self._wake(credit)

    def may_send(self, to: Pid) -> bool:
        """Whether a message to ``to`` may go now without waiting."""
        gates = self._paced.get(to.node)
        credit = gates.get(to.id) if gates is not None else None
        if credit is None or credit.gone or credit.credit > 0:
            return True
        link = credit.link
        return link is not None and link.closed

    def _wake(self, credit: Credit) -> None:
        for waiter in credit.waiters:
            self._callback(waiter.switch, None)

    def _release(self, credit: Credit) -> None:
        credit.gone = True
        self._wake(credit)

    def _peer_lost(self, peer: Peer) -> None:
        """A link went down: its credit goes at both ends (what it queued here stays queued)."""
        gates = self._paced.get(peer.node_id)
        if gates:
            for dest_id, credit in list(gates.items()):
                link = credit.link
                # (credit not bound yet goes when the dial failed: its messages were dropped)
                if link.closed if link is not None else not peer.pending:
                    del gates[dest_id]
                    self._release(credit)
            if not gates:
                del self._paced[peer.node_id]
        for local_id, (inflow, mailbox, to) in list(self._inflows.items()):
            for link in [link for link in inflow.links if link.closed]:
                inflow.forget(link)
            if mailbox.closed:
                self._ended(local_id, inflow, to)
