"""Timers: send a message later, cancellably (Erlang's ``send_after``).

A timer is an event-loop timer, not a greenlet: thousands cost next to
nothing. It fires in the hub, where nothing may block, so its message is
queued like a signal (never held back by a full mailbox). A timer addressed
to a pid is bound to that process and cancelled when it ends, as
``erlang:send_after/3``'s is; one addressed to a name is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .actor import ActorContext


class TimerRef:
    """A pending ``send_after``; ``cancel()`` it before it fires.

    Made by ``ActorSystem.send_after`` (and ``ActorContext.send_after``):
    ``loop`` is the event loop, ``timers`` the system's set of live timers
    (so that shutdown can cancel them) and ``fire(dest, msg, sender)`` the
    system's send from the hub.
    """

    __slots__ = ("_timers", "_fire_send", "_watcher", "_dest", "_msg", "_sender", "_owner", "__weakref__")

    def __init__(
        self,
        loop: Any,
        timers: set[TimerRef],
        fire: Callable[[Any, Any, Any], None],
        delay: float,
        dest: Any,
        msg: Any,
        sender: Any,
    ) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay}")
        self._timers = timers
        self._fire_send = fire
        self._dest = dest
        self._msg = msg
        self._sender = sender
        self._owner: set[TimerRef] | None = None
        self._watcher: Any = loop.timer(delay)
        timers.add(self)
        self._watcher.start(self._fire)

    def bind(self, ctx: ActorContext) -> None:
        """Tie the timer to the life of ``ctx``'s process (the runtime cancels it when that ends).

        Args:
            ctx: the context of the live local process the timer is addressed to.
        """
        if self._watcher is None:
            return
        owner = ctx._timers
        if owner is None:
            owner = ctx._timers = set()
        owner.add(self)
        self._owner = owner

    def _fire(self) -> None:
        self._close()
        self._fire_send(self._dest, self._msg, self._sender)

    def _close(self) -> None:
        watcher = self._watcher
        if watcher is not None:
            self._watcher = None
            watcher.close()
            self._timers.discard(self)
            owner = self._owner
            if owner is not None:
                self._owner = None
                owner.discard(self)

    @property
    def active(self) -> bool:
        """True until the timer has fired or been cancelled."""
        return self._watcher is not None

    def cancel(self) -> bool:
        """Cancel the timer; True if it had not fired yet."""
        was_active = self._watcher is not None
        self._close()
        return was_active
