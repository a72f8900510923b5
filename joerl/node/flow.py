"""Flow control across a link: the credit bookkeeping of both ends (sans-IO).

Wire layout: one control message, FLOW (op 17, ``messages.py``)::

    FLOW  dest: pid, kind: u8, n: u32
      kind 0 GRANT  receiver -> sender: n more messages to dest
      kind 1 (reserved: ACK in earlier drafts; ignored when received)
      kind 2 GONE   receiver -> sender: dest ended; forget its credit (n: 0)

``dest`` is always the bounded process, as the wire names it (its own node's
id and creation). The protocol, step by step (docs/distribution.md, "Flow
control"):

1. A bounded mailbox shows in its pid: the runtime gives a process spawned
   with ``mailbox_size`` an id with :data:`~joerl.pid.BOUNDED_MAILBOX` set
   (``joerl/pid.py``). A destination without the bit (an unbounded mailbox,
   the default) costs the sender one ``to.id & BOUNDED_MAILBOX`` test: no
   credit, no frame, no lookup.
2. Both ends know a bounded destination from the first message, so nothing
   goes uncharged: a sender starts every (link, bounded destination) with an
   implicit credit of :data:`DEFAULT_WINDOW` (no frame needed), charges each
   message one credit and, with none left, waits (its greenlet; ``try_send``
   raises ``MailboxFull``). The receiver counts every message from that link
   to that destination as charged.
3. The receiver never blocks its reader on the mailbox: what does not fit
   waits in the destination's queue (:class:`Inflow`), in arrival order, and
   moves into the mailbox as its reader frees slots. A message earns its
   credit back (``GRANT``) once it is in the mailbox, in batches of a quarter
   window (or at once when the queue empties). So one link's messages queued
   on the receiving node for one destination never exceed ``window``.
   A sender never holds more than ``window`` credit (a grant beyond it is
   capped), so a message that went uncharged (see below) cannot inflate it.
4. The destination ends: what its queue holds is dropped and counted as
   messages still queued for a process that ended; every link that sent to
   it gets ``GONE`` (and so does a link whose message finds it already
   gone), which releases that sender's waiters and forgets its credit. A
   link that goes down takes its credit with it at both ends (its queued
   messages stay queued: they arrived).

What credit does not cover: a send to a registered name (the sender does
not know the pid: queued with the rest, uncharged) and a send from the hub
(a timer's message: it cannot wait, so it overdraws the credit, as it goes
past a local bound).

:class:`Credit` is one (link, destination) at the sending end;
:class:`Inflow` is one bounded destination at the receiving end (with an
:class:`InLink` per link that sends to it). No gevent, no sockets: the node's
``dispatch.py`` moves the messages and the frames.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final, Protocol

from ..pid import Pid

__all__ = [
    "ACK",
    "DEFAULT_WINDOW",
    "GONE",
    "GRANT",
    "Credit",
    "FlowGate",
    "InLink",
    "Inflow",
    "NoFlow",
]

#: FLOW kinds (see the module docstring).
GRANT: Final = 0
#: Reserved (an earlier draft's acknowledgement of the first GRANT): valid on the wire, ignored.
ACK: Final = 1
GONE: Final = 2
#: The credit a sender starts with, for one bounded destination on one link
#: (both ends must agree: it is part of the protocol, never negotiated).
DEFAULT_WINDOW: Final = 64


class FlowGate(Protocol):
    """What the routing asks of flow control (``dispatch.FlowControl``) on the send path."""

    def admit(self, conn: Any, to: Pid, timeout: float | None) -> float | None:
        """Charge a message to bounded ``to`` on ``conn`` (None: the next link), waiting for credit.

        Returns:
            The seconds waited; None if ``timeout`` passed first (nothing charged).
        """

    def admit_unlinked(self, to: Pid) -> Any:
        """Charge a message to bounded ``to``, whose node has no link up, to the next link's credit.

        Returns:
            The peer the message is for (then :meth:`settle_unlinked` once it is
            routed), or None: nothing charged.
        """

    def settle_unlinked(self, peer: Any, to: Pid, msg: Any) -> None:
        """``msg``, charged by :meth:`admit` or :meth:`admit_unlinked`, was routed to ``peer``'s dial queue:
        the charge stays if it waits there, and goes back if it was dropped or sent at once."""

    def may_send(self, to: Pid) -> bool:
        """Whether a message to ``to`` may go now without waiting."""


class NoFlow:
    """The routing's flow control until the node's dispatch installs its own: every send is free."""

    def admit(self, conn: Any, to: Pid, timeout: float | None) -> float | None:
        """Nothing to wait for."""
        return 0.0

    def admit_unlinked(self, to: Pid) -> Any:
        """Nothing to charge."""
        return None

    def settle_unlinked(self, peer: Any, to: Pid, msg: Any) -> None:
        """Nothing was charged."""

    def may_send(self, to: Pid) -> bool:
        """Always."""
        return True


class Credit:
    """What one sender node may still send to one bounded destination on one link.

    Args:
        link: the link the credit is good on (compared with ``is``); None
            while the link comes up (the messages charged meanwhile wait in
            the dial's queue and go first on the next link, which this
            credit is then bound to).
        credit: the window: what may go before the first grant.

    Attributes:
        credit: messages that may go before the next grant (below 0 after
            sends from greenlets that cannot wait, the hub's); never above
            ``window``.
        window: the most credit this end may hold.
        waiters: greenlets waiting for credit (the IO side's business).
        gone: the destination ended or the link went down: stop waiting, send.
    """

    __slots__ = ("link", "credit", "window", "waiters", "gone")

    def __init__(self, link: Any, credit: int) -> None:
        self.link = link
        self.credit = credit
        self.window = credit
        self.waiters: deque[Any] = deque()
        self.gone = False

    def __repr__(self) -> str:
        return f"<Credit {self.credit} waiters={len(self.waiters)}{' gone' if self.gone else ''}>"

    def take(self) -> bool:
        """Charge one message; False (nothing charged) when no credit is left."""
        if self.credit > 0:
            self.credit -= 1
            return True
        return False

    def force(self) -> None:
        """Charge one message even without credit (a sender that cannot wait)."""
        self.credit -= 1

    def refund(self) -> None:
        """Give back the charge of a message that was not sent after all (dropped at once)."""
        if self.credit < self.window:
            self.credit += 1

    def grant(self, n: int) -> bool:
        """``n`` more credit, up to the window; True when some is available now (wake the waiters).

        The cap keeps a grant for messages this end did not charge (a
        timer's overdraft repaid twice, a send that raced a new link) from
        letting more than ``window`` messages be outstanding.
        """
        self.credit = min(self.credit + n, self.window)
        return self.credit > 0


class InLink:
    """One link's account with one bounded destination, at the receiving end.

    Attributes:
        link: the link (compared with ``is``).
        owed: credit earned back and not returned yet.
        dead: the link went down: nothing is returned any more.
    """

    __slots__ = ("link", "owed", "dead")

    def __init__(self, link: Any) -> None:
        self.link = link
        self.owed = 0
        self.dead = False


class Inflow:
    """The receiving end of one bounded destination: its queue and the links' accounts.

    The IO side feeds it what arrives (:meth:`arrive`, with the room the
    mailbox has), what the mailbox freed (:meth:`drain`), lost links and the
    destination's end; it answers with the ``(message, sender)`` pairs to put
    into the mailbox now and the grants to send, as ``(InLink, n)``.

    Args:
        window: the credit each sending link starts with (the senders' window).
        charged: whether senders charge their messages to this destination
            (its pid has :data:`~joerl.pid.BOUNDED_MAILBOX`); False for a
            bounded mailbox whose pid does not say so: its messages are
            queued all the same and earn nothing back.

    Raises:
        ValueError: ``window`` is not a positive int.

    Attributes:
        queue: ``(message, sender, InLink or None)`` waiting for room, in
            arrival order (None: an uncharged message).
        links: the accounts, by link.
        armed: the IO side waits for room in the mailbox (set and cleared by it).
        peak: the most messages the queue has held.
    """

    __slots__ = ("window", "charged", "queue", "links", "armed", "peak", "_batch")

    def __init__(self, window: int = DEFAULT_WINDOW, charged: bool = True) -> None:
        if type(window) is not int or window < 1:
            raise ValueError(f"the flow-control window must be a positive int, got {window!r}")
        self.window = window
        self.charged = charged
        self.queue: deque[tuple[Any, Any, InLink | None]] = deque()
        self.links: dict[Any, InLink] = {}
        self.armed = False
        self.peak = 0
        self._batch = max(1, window // 4)

    def __len__(self) -> int:
        return len(self.queue)

    def arrive(
        self, link: Any, msgs: tuple[Any, ...] | list[Any], sender: Any, room: int
    ) -> tuple[list[tuple[Any, Any]], list[tuple[InLink, int]]]:
        """Messages from ``link`` (``sender`` to this destination), the mailbox having ``room`` free slots.

        Args:
            link: the link they came on.
            msgs: the messages, in order.
            sender: their sender (a pid, or None).
            room: how many more the mailbox takes now.

        Returns:
            The pairs to put into the mailbox now (in order, before anything
            later), and the grants to send.
        """
        grants: list[tuple[InLink, int]] = []
        charged: InLink | None = None
        if self.charged:
            acct = self.links.get(link)
            if acct is None:
                acct = self.links[link] = InLink(link)
            charged = acct
        queue = self.queue
        now: list[tuple[Any, Any]] = []
        i = 0
        if not queue and room > 0:
            i = min(room, len(msgs))
            now = [(m, sender) for m in msgs[:i]]
            if charged is not None:
                charged.owed += i
        for m in msgs[i:]:
            queue.append((m, sender, charged))
        if len(queue) > self.peak:
            self.peak = len(queue)
        if charged is not None and charged.owed >= self._batch:
            grants.append((charged, charged.owed))
            charged.owed = 0
        return now, grants

    def arrive_uncharged(self, msg: Any, sender: Any, room: int) -> list[tuple[Any, Any]]:
        """One message that no credit covers (a send to a registered name): queued like the rest.

        Returns:
            The pairs to put into the mailbox now (empty: it was queued).
        """
        if not self.queue and room > 0:
            return [(msg, sender)]
        self.queue.append((msg, sender, None))
        if len(self.queue) > self.peak:
            self.peak = len(self.queue)
        return []

    def drain(self, room: int) -> tuple[list[tuple[Any, Any]], list[tuple[InLink, int]]]:
        """The mailbox has ``room`` free slots: what moves into it, and the credit that earns back."""
        queue = self.queue
        now: list[tuple[Any, Any]] = []
        earned: list[InLink] = []
        while queue and len(now) < room:
            msg, sender, acct = queue.popleft()
            now.append((msg, sender))
            if acct is not None and not acct.dead:
                if acct not in earned:  # (a handful of links: a list is quickest)
                    earned.append(acct)
                acct.owed += 1
        grants: list[tuple[InLink, int]] = []
        flush = not queue
        for acct in earned if not flush else self.links.values():
            if acct.owed and not acct.dead and (flush or acct.owed >= self._batch):
                grants.append((acct, acct.owed))
                acct.owed = 0
        return now, grants

    def forget(self, link: Any) -> None:
        """``link`` went down: its account goes (what it queued stays queued, uncharged)."""
        acct = self.links.pop(link, None)
        if acct is not None:
            acct.dead = True

    def close(self) -> tuple[int, list[InLink]]:
        """The destination ended: how many queued messages are dropped, and the links to tell (GONE)."""
        dropped = len(self.queue)
        self.queue.clear()
        told = [acct for acct in self.links.values() if not acct.dead]
        self.links.clear()
        return dropped, told
