"""Processes: spawning, the body every process runs, and its teardown.

A process is a greenlet running :meth:`Processes._run` over an
:class:`~joerl.actor.ActorContext`: an :class:`~joerl.actor.Actor`'s hooks
and message loop, or a plain function. When it ends, for whatever reason,
:meth:`Processes._terminate` frees its name, fires its links and monitors
and closes its mailbox.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event

from ._signals import ExitSignal, Signals, add_link
from .actor import DEAD, EXITING, RUNNING, Actor, ActorContext, ActorRef, StopActor
from .errors import SystemShutdown
from .mailbox import Mailbox
from .message import KILLED, NORMAL
from .pid import Pid
from .registry import Registry

if TYPE_CHECKING:
    from .system import ActorSystem

log = logging.getLogger("joerl.actor")


class _FnActor:
    """Adapter that runs ``fn(ctx, *args)`` as a process body."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args

    def __repr__(self) -> str:
        return f"<fn {getattr(self.fn, '__qualname__', self.fn)!r}>"


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

    def spawn(self, actor: Any, *, mailbox_size: int | None = None, name: str | None = None) -> ActorRef:
        """Start ``actor`` (an :class:`Actor` instance) in a new process.

        Args:
            actor: the Actor instance that will run (one process per instance).
            mailbox_size: bound the mailbox (``send`` then waits while full).
            name: register the process under this name before it runs.

        Returns:
            An ActorRef for the new process.
        """
        return self._spawn(actor, (), mailbox_size, name, None, False)

    def spawn_fn(
        self, fn: Callable[..., Any], *args: Any, mailbox_size: int | None = None, name: str | None = None
    ) -> ActorRef:
        """Start ``fn(ctx, *args)`` in a new process; it ends when ``fn`` returns."""
        return self._spawn(fn, args, mailbox_size, name, None, False)

    def _spawn(
        self,
        actor: Any,
        args: tuple[Any, ...],
        mailbox_size: int | None,
        name: str | None,
        parent: Pid | None,
        link: bool,
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
        pid = Pid._unchecked(0, next(self._ids), 0)
        ctx = ActorContext(self._as_system(), pid, Mailbox(mailbox_size), parent)
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
        g = gevent.Greenlet(self._run, ctx)
        ctx._greenlet = g
        g.start()
        return ActorRef(self._as_system(), pid)

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
                    handle(msg, ctx)
        except StopActor as stop:
            reason = stop.reason
        except ExitSignal as sig:
            reason = sig.reason
            run_stopped = sig.run_stopped
        except gevent.GreenletExit:
            reason = KILLED
            run_stopped = False
        except BaseException as exc:  # noqa: BLE001 - a crash is an exit reason
            reason = exc
            crashed = True
            log.error("actor %s (%r) crashed", ctx.pid, body, exc_info=exc)
        ctx._state = EXITING
        if run_stopped and body.__class__ is not _FnActor:
            try:
                body.stopped(reason, ctx)
            except ExitSignal as sig:
                if not sig.run_stopped:
                    reason = KILLED  # killed while stopping
            except (StopActor, gevent.GreenletExit):
                pass
            except BaseException as exc:  # noqa: BLE001
                if not crashed:
                    reason = exc
                log.error("actor %s (%r) crashed in stopped()", ctx.pid, body, exc_info=exc)
        self._terminate(ctx, reason)

    def _terminate(self, ctx: ActorContext, reason: Any) -> None:
        """Tear down a process that has ended: names, links, monitors, waiters."""
        pid = ctx.pid
        ctx._state = DEAD
        self._procs.pop(pid.id, None)
        self._registry.drop_pid(pid)
        ctx._mailbox.close()
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
