"""The send budget: no loop of sends holds the hub for long (BEAM's reductions, for sends).

Delivering into a mailbox never switches greenlets, so a greenlet sending in a
tight loop would keep every other greenlet, timer and socket of its thread
waiting until it stops. The system counts sends down from ``send_budget``;
when the count runs out, the greenlet that sends yields to the hub for one
turn of its loop (every other ready greenlet, due timer and ready socket runs)
and the count starts again. The count is the system's, not a greenlet's (the hot path
stays a ``next()`` of an ``itertools.repeat``), so a yield lands on whichever greenlet sends the
``send_budget``-th message; yielding at a send is always allowed, as it is in
Erlang. Sends from the hub (timers, callbacks), from other OS threads and the
runtime's own signals (exits, ``Down``, which never go through ``send``) never
yield.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import repeat
from operator import length_hint
from typing import Any

from gevent import getcurrent
from gevent.hub import Waiter

from ._threads import get_ident

__all__ = ["DEFAULT_SEND_BUDGET", "BudgetedSends", "SendBudget"]

#: Sends between two yields of a sending greenlet (BEAM gives a process 4000 reductions).
DEFAULT_SEND_BUDGET = 4000

#: A round of the count is at most this many sends (``counted`` moves once a
#: round); a budget above it is spent in rounds.
_CHUNK = 256


class SendBudget:
    """What happens when a system's send count runs out.

    The system counts each send with ``next(ticks)``, ``ticks`` from
    :meth:`refill` (an ``itertools.repeat`` of a round's sends less one: a
    ``next()`` is cheaper than an attribute's decrement and test, ~70 machine
    instructions per send), and calls :meth:`spent` for the next ``ticks``
    when it raises ``StopIteration`` (at the round's last send); a budget
    above 256 is several such rounds.

    Args:
        hub: the hub of the system's thread.
        budget: sends between two yields; 0 or None: never yield.

    Raises:
        ValueError: ``budget`` is negative or not an int.
    """

    __slots__ = ("_hub", "_thread", "budget", "_chunk", "_rounds", "_left", "counted")

    def __init__(self, hub: Any, budget: int | None) -> None:
        self._hub = hub
        self._thread: int = hub.thread_ident
        self.budget = check_budget(budget)
        self._rounds = max(1, -(-self.budget // _CHUNK))
        self._chunk = -(-self.budget // self._rounds) if self.budget else _CHUNK
        self._left = self._rounds
        #: Sends counted down in the rounds that ran out (joerl.metrics reads it).
        self.counted = 0

    def refill(self) -> Iterator[None]:
        """The count to start from (the count for the first send, too)."""
        return repeat(None, self._chunk - 1)

    def sent(self, ticks: Iterator[None]) -> int:
        """Sends counted so far, ``ticks`` being the system's count (from :meth:`refill` or :meth:`spent`)."""
        return self.counted + self._chunk - 1 - length_hint(ticks)

    def spent(self) -> Iterator[None]:
        """A count ran out: at the end of the last round, yield to the hub when a
        user greenlet of the hub's thread sends. Returns the next count."""
        self.counted += self._chunk
        self._left -= 1
        if self._left <= 0:
            self._left = self._rounds
            if self.budget and get_ident() == self._thread and getcurrent() is not self._hub:
                self._yield_to_loop()
        return repeat(None, self._chunk - 1)

    def _yield_to_loop(self) -> None:
        # Not gevent.sleep(0): that only runs the ready greenlets' callbacks (for up
        # to a switch interval), not timers nor sockets. A timer of 0 fires after
        # the loop's next poll: every due timer and ready socket gets its turn first.
        waiter = Waiter(self._hub)
        timer = self._hub.loop.timer(0)
        timer.start(waiter.switch, None)
        try:
            waiter.get()
        finally:
            timer.close()


class BudgetedSends:
    """The ``send_budget`` setting of :class:`~joerl.system.ActorSystem` (a base of it).

    The system counts its sends in ``_ticks`` and asks ``_budget_rule``
    when the count runs out (``ActorSystem.send``).
    """

    _hub: Any
    _ticks: Iterator[None]
    _budget_rule: SendBudget
    _sends_before = 0  # counted under the budgets set before the current one

    @property
    def messages_sent(self) -> int:
        """Messages sent through ``send`` from this system's thread so far.

        Read off the send budget's count-down, so counting costs the send
        path nothing (sends from other OS threads and ``try_send`` are not
        counted; a send to a dead local pid is counted as dropped instead).
        """
        return self._sends_before + self._budget_rule.sent(self._ticks)

    @property
    def send_budget(self) -> int:
        """Sends from greenlets of this system's thread between two yields to the hub (0: never).

        Like BEAM's reductions: a loop of sends yields to the hub for one turn
        of its loop (timers and sockets included) every ``send_budget``
        sends. Sends from the hub (timers), from other OS threads and the
        runtime's exit and ``Down`` signals never yield. Set it to change it
        (a node's: ``node.system.send_budget``).
        """
        return self._budget_rule.budget

    @send_budget.setter
    def send_budget(self, budget: int | None) -> None:
        self._sends_before = self.messages_sent
        self._budget_rule = SendBudget(self._hub, budget)
        self._ticks = self._budget_rule.refill()


def check_budget(budget: int | None) -> int:
    """``budget`` as a count of sends (0: off).

    Raises:
        ValueError: not None nor an int >= 0.
    """
    if budget is None:
        return 0
    if budget.__class__ is not int or budget < 0:
        raise ValueError(f"send_budget must be an int >= 0 or None (0 and None: never yield), got {budget!r}")
    return budget
