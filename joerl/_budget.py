"""The send budget: no loop of sends holds the hub for long (BEAM's reductions, for sends).

Delivering into a mailbox never switches greenlets, so a greenlet sending in a
tight loop would keep every other greenlet, timer and socket of its thread
waiting until it stops. The system counts sends down from ``send_budget``;
when the count runs out, the greenlet that sends yields to the hub once
(``gevent.sleep(0)``: every other ready greenlet and due event runs) and the
count starts again. The count is the system's, not a greenlet's (the hot path
stays a decrement), so a yield lands on whichever greenlet sends the
``send_budget``-th message; yielding at a send is always allowed, as it is in
Erlang. Sends from the hub (timers, callbacks), from other OS threads and the
runtime's own signals (exits, ``Down``, which never go through ``send``) never
yield.
"""

from __future__ import annotations

from typing import Any

from gevent import getcurrent, sleep

from ._threads import get_ident

__all__ = ["DEFAULT_SEND_BUDGET", "SendBudget"]

#: Sends between two yields of a sending greenlet (BEAM gives a process 4000 reductions).
DEFAULT_SEND_BUDGET = 4000

#: The count when the budget is off: a send never reaches the end of it in practice.
_UNLIMITED = 1 << 62


class SendBudget:
    """What happens when a system's send count runs out.

    Args:
        hub: the hub of the system's thread.
        budget: sends between two yields; 0 or None: never yield.

    Raises:
        ValueError: ``budget`` is negative or not an int.
    """

    __slots__ = ("_hub", "_thread", "budget")

    def __init__(self, hub: Any, budget: int | None) -> None:
        self._hub = hub
        self._thread: int = hub.thread_ident
        self.budget = check_budget(budget)

    def refill(self) -> int:
        """The count to start again from (the count for the first send, too)."""
        return self.budget or _UNLIMITED

    def spent(self) -> int:
        """The count ran out: yield to the hub when a user greenlet of the hub's thread sends; the new count."""
        if self.budget and getcurrent() is not self._hub and get_ident() == self._thread:
            sleep(0)
        return self.budget or _UNLIMITED


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
