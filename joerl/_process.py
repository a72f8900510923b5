"""Processes: spawning, the body every process runs, its teardown, and the system's shutdown.

A process is a greenlet running :meth:`Processes._run` over an
:class:`~joerl.actor.ActorContext`: an :class:`~joerl.actor.Actor`'s hooks
and message loop, or a plain function. When it ends, for whatever reason,
:meth:`Processes._terminate` frees its name, fires its links and monitors
and closes its mailbox.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import gevent
from gevent import getcurrent
from gevent.event import Event

from . import _watch
from ._crash import crash_report
from ._signals import ExitSignal, Signals, add_link
from ._stats import DROP_EXITED, DROP_TIMER_CANCELLED, RuntimeStats
from .actor import DEAD, EXITING, RUNNING, Actor, ActorContext, ActorRef, StopActor, context_class
from .errors import SystemShutdown
from .mailbox import LimitedMailbox, Mailbox
from .message import KILLED, NORMAL, SHUTDOWN, format_reason, is_normal
from .pid import BOUNDED_MAILBOX, Pid
from .registry import Registry

if TYPE_CHECKING:
    from ._gen import Pending
    from .system import ActorSystem
    from .timer import TimerRef

log = logging.getLogger("joerl.actor")


def check_max_mailbox(limit: int | None) -> int | None:
    """``limit`` if it is a valid ``max_mailbox`` (an int >= 1, or None).

    Raises:
        ValueError: it is not.
    """
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ValueError(f"max_mailbox must be a positive int or None, got {limit!r}")
    return limit


class _FnActor:
    """Adapter that runs ``fn(ctx, *args)`` as a process body."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args

    def __repr__(self) -> str:
        return f"<fn {getattr(self.fn, '__qualname__', self.fn)!r}>"


def _bounded_loop(ctx: ActorContext, handle: Callable[[Any, ActorContext], Any]) -> None:
    """An Actor's message loop (see ``Processes._run``) on a bounded mailbox: each
    message taken may let in a writer waiting for room. Never returns."""
    mailbox = ctx._mailbox
    q = mailbox._q
    while True:
        if q:
            msg = q.popleft()
            if msg.__class__ is tuple:  # queueing rule: inline copy of mailbox._pair()
                msg, ctx.sender = msg
            else:
                ctx.sender = None
            if mailbox._putters:
                mailbox._release_putter()
        else:
            msg, ctx.sender = mailbox.get()
        if ctx._watched:  # counted, traced, or a Traced may come: joerl._watch
            if ctx._count_only:
                ctx._received += 1.0  # (a float: see ActorContext)
            else:
                _watch.handle(ctx, msg, handle)
                continue
        handle(msg, ctx)


class Processes(Signals):
    """Spawning and the life of a process (a part of ActorSystem)."""

    def _as_system(self) -> ActorSystem:
        return self  # type: ignore[return-value]  # Processes is only ever a part of ActorSystem

    name: str
    _ids: itertools.count[int]
    _registry: Registry
    _empty: Event
    _closing: bool
    _closed: bool
    _stopped: Event
    _timers: set[TimerRef]
    _calls: Pending
    stats: RuntimeStats
    max_mailbox: int | None

    def spawn(
        self,
        actor: Any,
        *,
        mailbox_size: int | None = None,
        name: str | None = None,
        max_mailbox: int | None = None,
    ) -> ActorRef:
        """Start ``actor`` (an :class:`Actor` instance) in a new process.

        Args:
            actor: the Actor instance that will run (one process per instance).
            mailbox_size: bound the mailbox (``send`` then waits while full).
            name: register the process under this name before it runs.
            max_mailbox: kill the process (reason ``("max_mailbox", N)``, its
                ``stopped`` hook does not run) once its mailbox holds more than
                this many messages, as Erlang's ``max_heap_size``; None: the
                system's :attr:`max_mailbox` (None by default: no limit).

        Returns:
            An ActorRef for the new process.

        Raises:
            ValueError: ``mailbox_size`` or ``max_mailbox`` is not a positive int.
        """
        return self._spawn(actor, (), mailbox_size, name, None, False, max_mailbox)

    def spawn_fn(
        self,
        fn: Callable[..., Any],
        *args: Any,
        mailbox_size: int | None = None,
        name: str | None = None,
        max_mailbox: int | None = None,
    ) -> ActorRef:
        """Start ``fn(ctx, *args)`` in a new process; it ends when ``fn`` returns (options as :meth:`spawn`)."""
        return self._spawn(fn, args, mailbox_size, name, None, False, max_mailbox)

    def _spawn(
        self,
        actor: Any,
        args: tuple[Any, ...],
        mailbox_size: int | None,
        name: str | None,
        parent: Pid | None,
        link: bool,
        max_mailbox: int | None = None,
    ) -> ActorRef:
        if self._closed or self._closing and parent is None:
            raise SystemShutdown(f"actor system {self.name!r} is shut down")
        if isinstance(actor, type) and issubclass(actor, Actor):
            raise TypeError(f"spawn takes an Actor instance, not the class {actor.__name__}: spawn({actor.__name__}())")
        body: Any
        if isinstance(actor, Actor):
            if args:
                raise TypeError("arguments are only for spawning functions; give them to the Actor's constructor")
            body = actor
        elif callable(actor):
            body = _FnActor(actor, args)
        else:
            raise TypeError(f"cannot spawn {actor!r}: expected an Actor instance or a function")
        pid = Pid._unchecked(0, next(self._ids) if mailbox_size is None else next(self._ids) | BOUNDED_MAILBOX, 0)
        limit = max_mailbox if max_mailbox is not None else self.max_mailbox
        if limit is None:
            mailbox = Mailbox(mailbox_size)
        else:
            mailbox = LimitedMailbox(mailbox_size, limit, lambda: self._overflow(pid, limit))
        ctx = context_class(mailbox)(self._as_system(), pid, mailbox, parent)
        ctx._actor = body
        ctx._supervisor = bool(getattr(body, "_joerl_supervisor", False))
        self._procs[pid.id] = ctx
        self._empty.clear()
        if name is not None:
            try:
                self._registry.register(name, pid)
            except BaseException:
                del self._procs[pid.id]
                if not self._procs:
                    self._empty.set()
                raise
        if link and parent is not None:
            pctx = self._local(parent)
            if pctx is not None:
                add_link(pctx, pid)
                add_link(ctx, parent)
        _watch.started(self._as_system(), ctx)
        tracer = self._tracer
        if tracer is not None and tracer.new:
            tracer.attach(ctx)
        g = gevent.Greenlet(self._run, ctx)
        ctx._greenlet = g
        g.start()
        self.stats.spawned += 1
        return ActorRef(self._as_system(), pid)

    def _overflow(self, pid: Pid, limit: int) -> None:
        """``pid``'s mailbox holds more than ``limit`` messages: kill it (``max_mailbox``)."""
        ctx = self._local(pid)
        if ctx is not None:
            log.error("process %s killed: its mailbox holds more than %d messages (max_mailbox)", pid, limit)
            self._end(ctx, ("max_mailbox", limit), run_stopped=False)

    # -- the process body ------------------------------------------------------

    def _run(self, ctx: ActorContext) -> None:
        body = ctx._actor
        reason: Any = NORMAL
        run_stopped = True
        crashed = False
        try:
            ctx._state = RUNNING
            pending = ctx._pending_exit
            if pending is not None:
                # Ended before it first ran: a kill runs no hook at all; any
                # other exit runs started() so that stopped() never runs alone.
                if pending.run_stopped and body.__class__ is not _FnActor:
                    body.started(ctx)
                raise pending
            if body.__class__ is _FnActor:
                body.fn(ctx, *body.args)
            else:
                body.started(ctx)
                handle = body.handle_message
                mailbox = ctx._mailbox
                q = mailbox._q
                if mailbox._maxsize is not None:
                    _bounded_loop(ctx, handle)
                wait = mailbox._wait
                while True:
                    # An unbounded mailbox: no writer ever waits for room in it.
                    while not q:
                        wait(None)
                    msg = q.popleft()
                    if msg.__class__ is tuple:  # queueing rule: inline copy of mailbox._pair()
                        msg, ctx.sender = msg
                    else:
                        ctx.sender = None
                    if ctx._watched:  # counted, traced, or a Traced may come: joerl._watch
                        if ctx._count_only:
                            ctx._received += 1.0  # (a float: see ActorContext)
                        else:
                            _watch.handle(ctx, msg, handle)
                            continue
                    handle(msg, ctx)
        except StopActor as stop:
            reason = stop.reason
            crashed = stop.report and not is_normal(reason)
        except ExitSignal as sig:
            reason = sig.reason
            run_stopped = sig.run_stopped
        except gevent.GreenletExit:
            reason = KILLED
            run_stopped = False
        except BaseException as exc:  # noqa: BLE001 - a crash is an exit reason
            reason = exc
            crashed = True
        ctx._state = EXITING
        note = ""
        if run_stopped and body.__class__ is not _FnActor:
            try:
                body.stopped(reason, ctx)
            except ExitSignal as sig:
                if not sig.run_stopped:
                    reason = KILLED  # killed while stopping
            except (StopActor, gevent.GreenletExit):
                pass
            except BaseException as exc:  # noqa: BLE001
                if crashed:
                    note = f" (and stopped() raised {format_reason(exc)})"
                else:
                    reason, crashed = exc, True
        if crashed:
            self.stats.crashed += 1
            crash_report(log, ctx.pid, self._registry.name_of(ctx.pid), body, reason, note)
        self._terminate(ctx, reason)

    def _terminate(self, ctx: ActorContext, reason: Any) -> None:
        """Tear down a process that has ended: names, timers, links, monitors, waiters.

        What was still queued for it is dropped (and counted), and so are the
        timers addressed to it (cancelled, as Erlang's are).
        """
        pid = ctx.pid
        ctx._exit_reason = reason
        if ctx._trace is not None:
            ctx._trace.on_exit(ctx, reason)
            ctx._trace = None
        ctx._state = DEAD
        if self._procs.pop(pid.id, None) is not None:
            stats = self.stats
            stats.exited += 1
            stats.ended_received += int(ctx._received)
        self._registry.drop_pid(pid)
        mailbox = ctx._mailbox
        if mailbox._q:
            self.stats.drop(DROP_EXITED, len(mailbox._q))
        mailbox.close()
        timers, ctx._timers = ctx._timers, None
        if timers:
            cancelled = sum(1 for timer in list(timers) if timer.cancel())
            if cancelled:
                self.stats.drop(DROP_TIMER_CANCELLED, cancelled)
        links, ctx._links = ctx._links, None
        monitors, ctx._monitors = ctx._monitors, None
        watchers, ctx._monitored_by = ctx._monitored_by, None
        if monitors:
            for ref, target in monitors.items():
                self._drop_monitor(pid, ref, target)
        if links:
            for other in links:
                if other.node == 0:
                    octx = self._local(other)
                    if octx is not None and octx._links is not None:
                        octx._links.discard(pid)
                    self._exit_signal(other, pid, reason, True)
                elif self._router is not None:
                    self._router.route_link_exit(pid, other, reason)
        if watchers:
            for ref, watcher in watchers.items():
                self._deliver_down(watcher, ref, pid, reason)
        done = ctx._done
        if done is not None:
            done.set()
        ctx._actor = None
        if not self._procs:
            self._empty.set()

    # -- shutdown (ActorSystem.shutdown) ---------------------------------------

    #: Set when a shutdown that has started is over (None: none started).
    _shutdown_done: Event | None = None
    #: The running trace (joerl.trace), if any.
    _tracer: Any = None
    #: Whether every process counts its messages (joerl._watch.count_messages).
    _count_messages = False

    @property
    def count_messages(self) -> bool:
        """Whether every process counts its messages in and out (see the constructor).

        Set it to turn counts on or off for the live processes and those
        spawned later; counts start at zero. Must be set in the system's thread.
        """
        return self._count_messages

    @count_messages.setter
    def count_messages(self, on: bool) -> None:
        _watch.count_messages(self._as_system(), on)

    #: OpenTelemetry instrumentation (joerl.otel.instrument), if any.
    _otel: Any = None

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every process and return when all are gone.

        Top-level supervisors go first (they stop their children in order),
        then every other process, newest first, each with reason
        ``"shutdown"``; what is still alive after ``timeout`` is killed.
        Pending timers are cancelled. Safe to call twice: a second call waits
        for the first to end.

        Called from inside a process (a "stop" handler calling
        ``ctx.system.shutdown()``), the shutdown runs in a greenlet of its
        own and stops the calling process too, like every other: the call
        does not return, the process ends with ``"shutdown"`` (its
        ``stopped`` hook runs). From a process that is ending already (its
        ``stopped`` hook), it starts the shutdown and returns at once.

        Args:
            timeout: seconds the processes get to stop before they are killed.
        """
        if self._closed:
            return
        current = getcurrent()
        ctx = next((c for c in self._procs.values() if c._greenlet is current), None)
        done = self._shutdown_done
        if done is None:
            done = self._shutdown_done = Event()
            if ctx is None:
                self._shutdown(timeout, done)
                return
            gevent.spawn(self._shutdown, timeout, done)
        if ctx is None or ctx._state < EXITING:
            done.wait()  # a process waiting here is stopped by the shutdown, as every other is

    def _shutdown(self, timeout: float, done: Event) -> None:
        self._closing = True
        try:
            deadline = self._hub.loop.now() + timeout
            roots = [c for c in self._procs.values() if c._supervisor and not self._is_supervised(c)]
            self._stop_all(roots, deadline)
            self._stop_all(reversed(list(self._procs.values())), deadline)
            for ctx in list(self._procs.values()):
                self._end(ctx, KILLED, run_stopped=False)
            self._empty.wait(max(1.0, timeout))
            for ctx in list(self._procs.values()):  # never started or wedged in the hub
                g = ctx._greenlet
                if g is not None:
                    g.kill(block=False)
                self._terminate(ctx, KILLED)
        finally:
            for timer in list(self._timers):
                timer.cancel()
            for ref in self._calls.refs():
                self._calls.resolve(ref, (False, SHUTDOWN))
            self._closed = True
            done.set()
            self._stopped.set()

    def _is_supervised(self, ctx: ActorContext) -> bool:
        parent = self._local(ctx._parent) if ctx._parent is not None else None
        return parent is not None and parent._supervisor

    def _stop_all(self, ctxs: Iterable[ActorContext], deadline: float) -> None:
        # Never runs in a process's greenlet (shutdown() hands such a call to one of its own).
        ctxs = [c for c in ctxs if c._state < EXITING]
        for ctx in ctxs:
            self._end(ctx, SHUTDOWN)
        for ctx in ctxs:
            remaining = deadline - self._hub.loop.now()
            if remaining <= 0:
                return
            if ctx.pid.id in self._procs:
                self.join(ctx.pid, remaining)

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` has ended."""
        return self._closed
