"""Flow control's IO, both ends: :class:`FlowControl` (the bookkeeping and protocol are ``flow.py``'s).

The receiving end runs in a link's reader greenlet or the hub
(``dispatch.py`` hands it what arrives for a bounded mailbox); the sending
end in the sending greenlet (``routing.py``). Moved out of ``dispatch.py``
unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any

from gevent import get_hub, getcurrent
from gevent.hub import Waiter

from .._stats import DROP_EXITED
from ..errors import LinkDown
from ..pid import BOUNDED_MAILBOX, Pid
from . import protocol as P
from .flow import DEFAULT_WINDOW, GONE, GRANT, Credit, Inflow, InLink

if TYPE_CHECKING:
    from ..mailbox import Mailbox
    from .connection import Connection
    from .peers import Peer
    from .routing import Routing

__all__ = ["FlowControl"]

_TIMEOUT = object()

log = logging.getLogger("joerl.node")


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
