"""A machine's running timeouts: the event timeout, the state timeout and the
generic (named) ones, each at most once, with OTP's time-out zero queue.

A timeout is keyed by its event type (``"timeout"``, ``"state_timeout"``,
``("timeout", name)``). One with a time over zero is a ``send_after`` of a
:class:`Fired` message to the machine itself; one of time zero starts no timer
and waits in the zero queue, which the machine reads after its queue of
inserted and postponed events and before its mailbox (as OTP's ``t0q``).
Each start gets a fresh token: a timer that fired before it was cancelled
(its message already queued) or a zero entry that was cancelled is known by
its stale token and dropped, so a cancelled timeout never reaches a callback.
The content is read when the timeout fires, so ``update`` changes it in place.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from ..timer import TimerRef


class Fired(NamedTuple):
    """The message a timeout's timer sends to its machine."""

    kind: Any
    token: int


class Timeouts:
    """The running timeouts of one machine (used in its greenlet only).

    Args:
        start: ``start(seconds, msg)`` sends ``msg`` to the machine after
            ``seconds`` and returns the cancellable :class:`TimerRef`.
    """

    __slots__ = ("_start", "active", "zero", "_tokens", "stale")

    def __init__(self, start: Callable[[float, Any], TimerRef]) -> None:
        self._start = start
        #: kind -> [token, TimerRef or None (time zero), content]; read it, never write it.
        self.active: dict[Any, list[Any]] = {}
        #: The zero queue, (kind, token) pairs (stale ones included); read it, never write it.
        self.zero: deque[tuple[Any, int]] = deque()
        self._tokens = itertools.count(1)
        #: Timer messages dropped because their timeout was cancelled or restarted
        #: after the timer had fired.
        self.stale = 0

    def __contains__(self, kind: object) -> bool:
        return kind in self.active

    def __len__(self) -> int:
        return len(self.active)

    def kinds(self) -> list[Any]:
        """The event types of the running timeouts, oldest start first."""
        return list(self.active)

    def start(self, kind: Any, seconds: float, content: Any) -> None:
        """Start (or restart) the timeout ``kind``; 0 seconds queues it at once."""
        self.cancel(kind)
        token = next(self._tokens)
        if seconds == 0:
            self.zero.append((kind, token))
            timer = None
        else:
            timer = self._start(seconds, Fired(kind, token))
        self.active[kind] = [token, timer, content]

    def update(self, kind: Any, content: Any) -> None:
        """New content for the running timeout ``kind``; if none runs, queue its
        event at once (OTP: as if started with time 0)."""
        entry = self.active.get(kind)
        if entry is None:
            self.start(kind, 0, content)
        else:
            entry[2] = content

    def cancel(self, kind: Any) -> None:
        """Cancel the timeout ``kind`` if it runs (a queued zero entry goes stale)."""
        entry = self.active.pop(kind, None)
        if entry is not None and entry[1] is not None:
            entry[1].cancel()

    def cancel_all(self) -> None:
        """Cancel every timeout (the machine is ending)."""
        for entry in self.active.values():
            if entry[1] is not None:
                entry[1].cancel()
        self.active.clear()
        self.zero.clear()

    def fired(self, msg: Fired) -> tuple[Any, Any] | None:
        """The event ``(kind, content)`` of a timer message, or None if it is stale
        (then counted in :attr:`stale`)."""
        entry = self.active.get(msg.kind)
        if entry is None or entry[0] != msg.token:
            self.stale += 1
            return None
        del self.active[msg.kind]
        return msg.kind, entry[2]

    def next_zero(self) -> tuple[Any, Any] | None:
        """The next live time-zero event ``(kind, content)``, or None."""
        zero, active = self.zero, self.active
        while zero:
            kind, token = zero.popleft()
            entry = active.get(kind)
            if entry is not None and entry[0] == token:
                del active[kind]
                return kind, entry[2]
        return None

    @property
    def zero_pending(self) -> bool:
        """True if the zero queue may hold a live event."""
        return bool(self.zero)
