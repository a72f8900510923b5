"""Timers: send a message later or repeatedly, run a function later, exit a process later.

Erlang's ``send_after`` and OTP's ``timer`` module (``send_interval``,
``apply_after``, ``exit_after``, ``kill_after``). A timer is an event-loop
timer, not a greenlet: thousands cost next to nothing. It fires in the hub,
where nothing may block, so its message is queued like a signal (never held
back by a full mailbox) and a function it applies runs in a new process.

A timer addressed to a local pid is bound to that process and cancelled
when it ends, as ``erlang:send_after/3``'s is; one addressed to a name is
not. A repeating timer to a name (or another node's process) is bound to
its ``sender`` instead, when that is a live local process, as OTP links an
interval timer to the process that set it. Every live timer is in its
system's set, and ``shutdown`` cancels them all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._stats import DROP_NOPROC, DROP_ROUTE_FAILED, DROP_TIMER_CANCELLED, DROP_UNREGISTERED
from ._via import check_via, is_via
from .actor import EXITING, ActorRef
from .errors import NotRegistered, SystemShutdown
from .message import KILL
from .pid import Pid

if TYPE_CHECKING:
    from ._router import Router
    from ._stats import RuntimeStats
    from .actor import ActorContext

__all__ = ["TimerRef", "Timers"]

log = logging.getLogger("joerl.timer")


class TimerRef:
    """A pending timer; ``cancel()`` it before it fires.

    Made by ``ActorSystem.send_after`` (and ``send_interval``,
    ``apply_after``, ``exit_after``, ``kill_after``, and their
    ``ActorContext`` forms): ``loop`` is the event loop, ``timers`` the
    system's set of live timers (so that shutdown can cancel them) and
    ``fire(dest, msg, sender)`` what runs in the hub when it fires.

    Args:
        loop: the gevent event loop.
        timers: the system's set of live timers.
        fire: called as ``fire(dest, msg, sender)`` in the hub.
        delay: seconds until the first firing (>= 0).
        dest: the first argument of ``fire``.
        msg: the second.
        sender: the third.
        interval: None to fire once; seconds (> 0) between firings of a
            repeating timer, which stays active until cancelled.

    Raises:
        ValueError: ``delay < 0`` or ``interval <= 0``.
    """

    __slots__ = ("_timers", "_fire_send", "_watcher", "_dest", "_msg", "_sender", "_owner", "_repeat", "__weakref__")

    def __init__(
        self,
        loop: Any,
        timers: set[TimerRef],
        fire: Callable[[Any, Any, Any], None],
        delay: float,
        dest: Any,
        msg: Any,
        sender: Any,
        *,
        interval: float | None = None,
    ) -> None:
        if interval is not None and not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        if not delay >= 0:
            raise ValueError(f"delay must be >= 0, got {delay}")
        self._timers = timers
        self._fire_send = fire
        self._dest = dest
        self._msg = msg
        self._sender = sender
        self._repeat = interval is not None
        self._owner: set[TimerRef] | None = None
        self._watcher: Any = loop.timer(delay, interval or 0.0)
        timers.add(self)
        self._watcher.start(self._fire)

    def __repr__(self) -> str:
        state = "active" if self._watcher is not None else "inactive"
        kind = "interval" if self._repeat else "once"
        return f"<TimerRef {kind} {state} {self._dest!r}>"

    def bind(self, ctx: ActorContext) -> None:
        """Tie the timer to the life of ``ctx``'s process (the runtime cancels it when that ends).

        Args:
            ctx: the context of a live local process.
        """
        if self._watcher is None:
            return
        owner = ctx._timers
        if owner is None:
            owner = ctx._timers = set()
        owner.add(self)
        self._owner = owner

    def _fire(self) -> None:
        if not self._repeat:
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
        """True until the timer has fired (a repeating one: until it is cancelled) or been cancelled."""
        return self._watcher is not None

    @property
    def repeating(self) -> bool:
        """True for a ``send_interval`` timer."""
        return self._repeat

    def cancel(self) -> bool:
        """Cancel the timer; True if it was still active (had not fired, or repeats)."""
        was_active = self._watcher is not None
        self._close()
        return was_active


class _Apply:
    """The body of an ``apply_after`` process: ``fn(*args)`` (its ctx is not passed)."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args

    def __call__(self, _ctx: ActorContext) -> None:
        self.fn(*self.args)

    def __repr__(self) -> str:
        return f"apply_after {getattr(self.fn, '__qualname__', self.fn)}{self.args!r}"


class Timers:
    """``send_after``, ``send_interval``, ``apply_after``, ``exit_after``, ``kill_after`` (a part of ActorSystem).

    They share the destinations of ``ActorSystem.send``, its send from the
    hub (``_send_from_hub``) and its counters.
    """

    _hub: Any
    _timers: set[TimerRef]
    _router: Router | None
    stats: RuntimeStats

    if TYPE_CHECKING:

        def _resolve(self, dest: Any) -> Pid: ...
        def _local(self, pid: Pid) -> ActorContext | None: ...
        def _send_from_hub(self, dest: Any, msg: Any, sender: Pid | None) -> None: ...
        def exit(self, pid: Any, reason: Any, *, sender: Pid | None = None) -> None: ...
        def spawn_fn(
            self, fn: Callable[..., Any], *args: Any, mailbox_size: int | None = None, name: str | None = None
        ) -> ActorRef: ...

    def send_after(self, delay: float, dest: Any, msg: Any, *, sender: Pid | None = None) -> TimerRef:
        """Send ``msg`` to ``dest`` after ``delay`` seconds; ``cancel()`` the result to stop it.

        Args:
            delay: seconds (>= 0).
            dest: anything :meth:`send` takes: a Pid, a registered name,
                ``(name, node)`` or an ActorRef. A name is resolved when the
                timer fires.
            msg: the message.
            sender: the sender the message carries.

        Returns:
            The timer. One addressed to a pid of this system is cancelled when
            that process ends, and is inactive from the start if it is gone
            already (as ``erlang:send_after/3``'s); its message is then
            counted as dropped (``stats``). Timers to names are not.

        Raises:
            TypeError: ``dest`` is no destination. ValueError: ``delay < 0``.
        """
        local = self._timer_target(dest)
        timer = TimerRef(self._hub.loop, self._timers, self._send_from_hub, delay, dest, msg, sender)
        if local is not None:
            self._bind_timer(timer, local)
        return timer

    def _timer_target(self, dest: Any) -> Pid | None:
        """The local pid a timer to ``dest`` dies with; None for a name or another node's pid.

        Raises:
            TypeError: ``dest`` is no destination.
        """
        cls = dest.__class__
        if cls is str or cls is tuple and len(dest) == 2 and dest[0].__class__ is str:
            return None  # a name: resolved when the timer fires
        if is_via(dest):
            check_via(dest)
            return None  # a via name: resolved when the timer fires
        if isinstance(dest, ActorRef):
            dest = dest.pid
        if not isinstance(dest, Pid):
            raise TypeError(f"cannot send to {dest!r}: expected a Pid, a name, (name, node) or an ActorRef")
        return dest if dest.node == 0 else None

    def send_interval(self, interval: float, dest: Any, msg: Any, *, sender: Pid | None = None) -> TimerRef:
        """Send ``msg`` to ``dest`` every ``interval`` seconds until the timer is cancelled.

        OTP's ``timer:send_interval/3``. The first message goes after one
        interval. The timer stops when its process ends: ``dest``'s when it
        is a local pid (an ActorRef's pid), else ``sender``'s when that is a
        live local process (``ctx.send_interval`` passes its own pid); a
        name is resolved at each firing (a firing nobody receives is dropped
        and counted, as :meth:`send_after`'s). Ticks a slow process has not
        taken yet queue up in its mailbox, as in Erlang.

        Args:
            interval: seconds between messages (> 0).
            dest: anything ``send`` takes: a Pid, a registered name,
                ``(name, node)``, ``("via", registry, name)`` or an ActorRef.
            msg: the message.
            sender: the sender the messages carry.

        Returns:
            The timer (``repeating``): ``cancel()`` stops it. Inactive from
            the start when the process it is bound to is gone already.

        Raises:
            TypeError: ``dest`` is no destination. ValueError: ``interval <= 0``.
        """
        local = self._timer_target(dest)
        timer = TimerRef(
            self._hub.loop, self._timers, self._send_from_hub, interval, dest, msg, sender, interval=interval
        )
        owner = local if local is not None else sender if sender is not None and sender.node == 0 else None
        if owner is not None:
            self._bind_timer(timer, owner)
        return timer

    def apply_after(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerRef:
        """Run ``fn(*args)`` in a new process after ``delay`` seconds (OTP's ``timer:apply_after``).

        The process is a plain one (as ``spawn_fn`` starts, not linked to
        anyone): an exception in ``fn`` ends it and is logged as every
        process crash is (logger ``joerl.actor``, with the traceback). A
        timer that fires while the system shuts down starts nothing and logs
        a warning.

        Args:
            delay: seconds (>= 0).
            fn: any callable; its return value is discarded.
            *args: its arguments.

        Returns:
            The timer; ``cancel()`` it before it fires to run nothing.

        Raises:
            TypeError: ``fn`` is not callable. ValueError: ``delay < 0``.
        """
        if not callable(fn):
            raise TypeError(f"apply_after needs a callable, got {fn!r}")
        return TimerRef(self._hub.loop, self._timers, self._apply_from_hub, delay, fn, args, None)

    def exit_after(self, delay: float, dest: Any, reason: Any, *, sender: Pid | None = None) -> TimerRef:
        """Send an exit signal with ``reason`` to ``dest`` after ``delay`` seconds (OTP's ``timer:exit_after``).

        When it fires, it does what :meth:`exit` does: ``"kill"`` cannot be
        trapped, a trapping process receives ``Exit(sender, reason)``, and
        ``"normal"`` ends only a process that is its own sender. A timer to a
        local pid is cancelled when that process ends first; a name (a via
        name included) is resolved when it fires (nobody holding it: counted
        as dropped, ``"unregistered"``).

        Args:
            delay: seconds (>= 0).
            dest: a Pid (of this node or another), a registered name,
                ``(name, this_node)``, ``("via", registry, name)`` or an ActorRef.
            reason: the exit reason.
            sender: the pid the signal comes from (None: the runtime's).

        Returns:
            The timer; ``cancel()`` it to send nothing.

        Raises:
            TypeError: ``dest`` is no process, or ``(name, other_node)``: an
                exit signal goes to a pid (Erlang's ``exit/2`` takes no
                remote name); resolve it first, or use a via name such as
                ``("via", node.global_names, name)``.
            ValueError: ``delay < 0``.
        """
        local = self._timer_target(dest)
        router = self._router
        if dest.__class__ is tuple and len(dest) == 2 and router is not None and dest[1] != router.node_name:
            raise TypeError(
                f"exit_after cannot reach {dest!r}: an exit signal goes to a pid, not to a name on another "
                "node (resolve it first, or use a via name such as ('via', node.global_names, name))"
            )
        timer = TimerRef(self._hub.loop, self._timers, self._exit_from_hub, delay, dest, reason, sender)
        if local is not None:
            self._bind_timer(timer, local)
        return timer

    def kill_after(self, delay: float, dest: Any, *, sender: Pid | None = None) -> TimerRef:
        """``exit_after(delay, dest, "kill")``: an untrappable kill after ``delay`` seconds.

        Args:
            delay: seconds (>= 0).
            dest: as :meth:`exit_after`.
            sender: as :meth:`exit_after`.

        Returns:
            The timer.

        Raises:
            TypeError, ValueError: as :meth:`exit_after`.
        """
        return self.exit_after(delay, dest, KILL, sender=sender)

    # -- in the hub ------------------------------------------------------------------

    def _bind_timer(self, timer: TimerRef, pid: Pid) -> None:
        """Bind ``timer`` to local process ``pid``; cancel it (counted) when that is gone already."""
        owner = self._local(pid)
        if owner is None or owner._state >= EXITING:
            timer.cancel()
            self.stats.drop(DROP_TIMER_CANCELLED)
        else:
            timer.bind(owner)

    def _apply_from_hub(self, fn: Callable[..., Any], args: tuple[Any, ...], _sender: Any) -> None:
        try:
            self.spawn_fn(_Apply(fn, args))
        except SystemShutdown:
            log.warning("apply_after %r not run: the actor system is shutting down", _Apply(fn, args))
        except Exception:  # noqa: BLE001 - the hub must not raise
            log.exception("apply_after %r could not start", _Apply(fn, args))

    def _exit_from_hub(self, dest: Any, reason: Any, sender: Pid | None) -> None:
        try:
            pid = self._resolve(dest)
        except NotRegistered:
            self.stats.drop(DROP_UNREGISTERED)
            return
        except Exception:  # noqa: BLE001 - a via registry failed; the hub must not raise
            self.stats.drop(DROP_ROUTE_FAILED)
            log.exception("exit_after could not resolve %r", dest)
            return
        if pid.node == 0 and self._local(pid) is None:
            self.stats.drop(DROP_NOPROC)
            return
        try:
            self.exit(pid, reason, sender=sender)
        except Exception:  # noqa: BLE001 - the hub must not raise
            self.stats.drop(DROP_ROUTE_FAILED)
            log.exception("exit_after could not signal %s", pid)
