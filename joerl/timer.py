"""Timers: send a message later, cancellably (Erlang's ``send_after``).

A timer is an event-loop timer, not a greenlet: thousands cost next to
nothing. It fires in the hub, where nothing may block, so its message is
queued like a signal (never held back by a full mailbox).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TimerRef:
    """A pending ``send_after``; ``cancel()`` it before it fires.

    Made by ``ActorSystem.send_after`` (and ``ActorContext.send_after``):
    ``loop`` is the event loop, ``timers`` the system's set of live timers
    (so that shutdown can cancel them) and ``fire(dest, msg, sender)`` the
    system's send from the hub.
    """

    __slots__ = ("_timers", "_fire_send", "_watcher", "_dest", "_msg", "_sender", "__weakref__")

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
        self._watcher: Any = loop.timer(delay)
        timers.add(self)
        self._watcher.start(self._fire)

    def _fire(self) -> None:
        self._close()
        self._fire_send(self._dest, self._msg, self._sender)

    def _close(self) -> None:
        watcher = self._watcher
        if watcher is not None:
            self._watcher = None
            watcher.close()
            self._timers.discard(self)

    @property
    def active(self) -> bool:
        """True until the timer has fired or been cancelled."""
        return self._watcher is not None

    def cancel(self) -> bool:
        """Cancel the timer; True if it had not fired yet."""
        was_active = self._watcher is not None
        self._close()
        return was_active
