"""The dynamic supervisor: children started at run time (OTP's
``simple_one_for_one``, Elixir's ``DynamicSupervisor``).

A :class:`DynamicSupervisor` starts with no children. Each ``start_child``
adds one: with a *template* (a ChildSpec whose start takes extra args) the
call gives the args, ``start_child(via, sup, (arg, ...))``; without one it
gives a whole ChildSpec, ``start_child(via, sup, spec)``. Children are named
by their pids (``terminate_child(via, sup, pid)``); each is restarted as its
spec's ``restart`` says, with the args it was started with, and restarts
count against ``intensity`` within ``period`` as for a static supervisor.
At most ``max_children`` run at once. When the supervisor stops, every child
is told to stop at the same time and each gets its own shutdown timeout, as
OTP's ``simple_one_for_one`` does. Everything here runs in the supervisor's
greenlet.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

from .. import sys_calls
from .._gen import is_call
from .._traced import Traced
from .._traced import handle_call as handle_traced_call
from ..actor import ActorContext, ActorRef, StopActor
from ..errors import ReceiveTimeout
from ..message import KILL, SHUTDOWN, Down, Exit, format_reason, is_normal
from ..pid import SYSTEM_PID, Pid
from ._child import (
    BRUTAL_KILL,
    IGNORE,
    TEMPORARY,
    TRANSIENT,
    ChildSpec,
    children_counts,
    children_info,
)
from ._intensity import RestartWindow, check_intensity
from ._start import READY, StartsReady

log = logging.getLogger("joerl.supervisor")

_TRY_AGAIN = "$joerl_dynsup_try_again"

#: A call's answer: ``("ok", value)`` or ``("error", code, args)`` (see ``_codes.BY_CODE``).
_Reply = tuple[Any, ...]


class _Dyn:
    """One dynamic child: its spec, the args it was started with, its pid."""

    __slots__ = ("key", "spec", "args", "pid")

    def __init__(self, key: int, spec: ChildSpec, args: tuple[Any, ...]) -> None:
        self.key, self.spec, self.args = key, spec, args
        self.pid: Pid | None = None  # None: waiting for a restart


class _Failed(Exception):
    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


class DynamicSupervisor(StartsReady):
    """A supervisor whose children are started at run time, one call each.

    Start it like any supervisor (:func:`~joerl.supervisor.start_supervisor`,
    :func:`~joerl.supervisor.start_link`, :meth:`ChildSpec.supervisor`); one
    process per instance.

    Args:
        template: the spec every child is started from, ``start(ctx, *args)``
            getting the args of each ``start_child`` (OTP's
            ``simple_one_for_one``); None to take a whole ChildSpec per
            ``start_child`` instead (Elixir's ``DynamicSupervisor``).
        max_children: at most this many children at once (running or waiting
            for a restart); None for no limit.
        intensity: restarts allowed within ``period`` seconds; one more and
            the supervisor stops its children and exits with ``"shutdown"``.
        period: the window, in seconds, that ``intensity`` counts over.
        clock: a monotonic clock in seconds (injectable for tests).

    Raises:
        ValueError, TypeError: a bad template, max_children, intensity or period.
    """

    _joerl_supervisor = True

    #: call name -> (handler, number of arguments); subclasses add their own.
    CALLS: ClassVar[dict[str, tuple[Callable[..., _Reply], int]]] = {}

    def __init__(
        self,
        template: ChildSpec | None = None,
        *,
        max_children: int | None = None,
        intensity: int = 3,
        period: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if template is not None and not isinstance(template, ChildSpec):
            raise TypeError(f"template must be a ChildSpec or None, got {template!r}")
        if max_children is not None and (
            isinstance(max_children, bool) or not isinstance(max_children, int) or max_children < 0
        ):
            raise ValueError(f"max_children must be an int >= 0 or None, got {max_children!r}")
        check_intensity(intensity, period)
        self.template = template
        self.max_children = max_children
        self.intensity = intensity
        self.period = float(period)
        self._children: dict[int, _Dyn] = {}  # in start order
        self._by_pid: dict[Pid, _Dyn] = {}
        self._keys = itertools.count(1)
        self._restarts = RestartWindow(clock)
        self._parent: Pid = SYSTEM_PID
        self._ran = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} children={len(self._children)}>"

    # -- hooks (the supervisor's greenlet) ---------------------------------------

    def started(self, ctx: ActorContext) -> None:
        """Trap exits; there are no children yet."""
        if self._ran:
            raise RuntimeError(f"{self!r} has run before: a DynamicSupervisor instance runs once")
        self._ran = True
        ctx.trap_exit(True)
        self._parent = ctx.parent or SYSTEM_PID

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        """Exits of children (restart), of the parent (stop), and the calls."""
        cls = msg.__class__
        if cls is Exit:
            self._on_exit(ctx, msg.pid, msg.reason)
        elif sys_calls.is_system(msg):
            sys_calls.handle(self, ctx, msg[1], msg[2][1], self._parent)  # get_state: which_children
        elif is_call(msg):
            if msg[2].__class__ is Traced:  # a call made under a trace context (joerl.otel)
                handle_traced_call(ctx, msg, self.handle_message)
                return
            ctx.system.reply(msg[1], self._on_call(ctx, msg[2]))
        elif cls is tuple and len(msg) == 2 and msg[0] == _TRY_AGAIN:
            child = self._children.get(msg[1])
            if child is not None and child.pid is None:
                self._restart(ctx, child)
        else:
            log.warning("supervisor %s: unexpected message %r", ctx.pid, msg)

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        """Stop every child at once; each gets its own shutdown timeout."""
        shutdown_all(ctx, [(c.pid, c.spec) for c in self._children.values() if c.pid is not None])
        self._children.clear()
        self._by_pid.clear()

    # -- children ------------------------------------------------------------------

    def _start(self, ctx: ActorContext, child: _Dyn) -> Pid | None:
        try:
            result = child.spec.start(ctx, *child.args)
        except Exception as exc:  # noqa: BLE001 - a failed start is data
            raise _Failed(exc) from exc
        if isinstance(result, ActorRef):
            result = result.pid
        if isinstance(result, str) and result == IGNORE:
            return None
        if not isinstance(result, Pid):
            raise _Failed(TypeError(f"start returned {result!r}: expected a Pid, an ActorRef or IGNORE"))
        ctx.link(result)  # a start that forgot to link still gets supervised
        child.pid = result
        self._by_pid[result] = child
        return result

    def _on_exit(self, ctx: ActorContext, pid: Pid, reason: Any) -> None:
        child = self._by_pid.pop(pid, None)
        if child is None:
            if pid == self._parent:
                raise StopActor(reason, report=False)  # the parent says stop: children go first, in stopped()
            return
        child.pid = None
        restart = child.spec.restart
        if restart == TEMPORARY or (restart == TRANSIENT and is_normal(reason)):
            del self._children[child.key]
            return
        log.info("supervisor %s: child %s ended with %s; restarting", ctx.pid, pid, format_reason(reason))
        self._restart(ctx, child)

    def _restart(self, ctx: ActorContext, child: _Dyn) -> None:
        if not self._restarts.add(self.intensity, self.period):
            log.error(
                "supervisor %s: reached maximum restart intensity (%d in %ss); giving up: shutting down",
                ctx.pid,
                self.intensity,
                self.period,
            )
            ctx.stop(SHUTDOWN)
        ctx.system.stats.restarts += 1
        try:
            if self._start(ctx, child) is None:
                del self._children[child.key]  # IGNORE on a restart: nothing to keep
        except _Failed as failed:
            log.error("supervisor %s: restart failed: %s; trying again", ctx.pid, format_reason(failed.reason))
            ctx.send(ctx.pid, (_TRY_AGAIN, child.key))

    # -- calls ---------------------------------------------------------------------

    def _on_call(self, ctx: ActorContext, request: Any) -> _Reply:
        if isinstance(request, tuple) and request and isinstance(request[0], str):
            entry = self.CALLS.get(request[0])
            if entry is not None and len(request) == entry[1] + 1:
                return entry[0](self, ctx, *request[1:])
        return ("error", "unknown_request", (request,))

    def _call_ready(self, ctx: ActorContext) -> _Reply:
        return ("ok", None)

    def _call_start_child(self, ctx: ActorContext, what: Any) -> _Reply:
        """``what``: the args for the template, or (without one) a ChildSpec."""
        if self.template is not None:
            if not isinstance(what, (tuple, list)):
                return (
                    "error",
                    "bad_request",
                    (f"this supervisor has a template: start_child takes args, not {what!r}",),
                )
            spec, args = self.template, tuple(what)
        elif isinstance(what, ChildSpec):
            spec, args = what, ()
        else:
            return (
                "error",
                "bad_request",
                (f"this supervisor has no template: start_child takes a ChildSpec, not {what!r}",),
            )
        if self.max_children is not None and len(self._children) >= self.max_children:
            return ("error", "max_children", (self.max_children,))
        child = _Dyn(next(self._keys), spec, args)
        try:
            pid = self._start(ctx, child)
        except _Failed as failed:
            return ("error", "start_failed", (spec.id, failed.reason))
        if pid is not None:
            self._children[child.key] = child
        return ("ok", pid)

    def _call_terminate_child(self, ctx: ActorContext, pid: Any) -> _Reply:
        child = self._by_pid.get(pid) if isinstance(pid, Pid) else None
        if child is None:
            return ("error", "not_found", (pid,))
        del self._by_pid[pid]
        del self._children[child.key]
        shutdown_all(ctx, [(pid, child.spec)])
        return ("ok", None)

    def _call_by_id(self, ctx: ActorContext, id: Any) -> _Reply:
        return ("error", "bad_request", ("a dynamic supervisor's children are named by pid: use terminate_child",))

    def _call_which_children(self, ctx: ActorContext) -> _Reply:
        return ("ok", children_info(self._children.values()))

    _joerl_sys_stats: Any = None  # sys_calls.statistics

    def _joerl_sys_state(self) -> Any:
        return children_info(self._children.values())

    def _call_count_children(self, ctx: ActorContext) -> _Reply:
        return ("ok", children_counts(self._children.values()))


DynamicSupervisor.CALLS.update(
    {
        READY: (DynamicSupervisor._call_ready, 0),
        "start_child": (DynamicSupervisor._call_start_child, 1),
        "terminate_child": (DynamicSupervisor._call_terminate_child, 1),
        "restart_child": (DynamicSupervisor._call_by_id, 1),
        "delete_child": (DynamicSupervisor._call_by_id, 1),
        "which_children": (DynamicSupervisor._call_which_children, 0),
        "count_children": (DynamicSupervisor._call_count_children, 0),
    }
)


def shutdown_all(ctx: ActorContext, children: list[tuple[Pid, ChildSpec]]) -> None:
    """Stop ``children`` of the calling supervisor all at once and wait until all are gone.

    Each is unlinked and monitored, then sent ``"shutdown"`` (or ``"kill"``
    for ``brutal_kill``); one that has not ended within its own spec's
    shutdown timeout (counted from now) is killed.

    Args:
        ctx: the supervisor's context (this runs in its greenlet).
        children: ``(pid, spec)`` of each running child.
    """
    now = time.monotonic()
    waiting: dict[Any, tuple[Pid, float | None]] = {}
    for pid, spec in children:
        ref = ctx.monitor(pid)
        ctx.unlink(pid)
        try:  # it may have ended already: its Exit is queued, take it
            ctx.receive(lambda m, pid=pid: m.__class__ is Exit and m.pid == pid, 0)  # type: ignore[misc]
        except ReceiveTimeout:
            pass
        if spec.shutdown == BRUTAL_KILL:
            ctx.exit(pid, KILL)
            deadline = None
        else:
            ctx.exit(pid, SHUTDOWN)
            deadline = None if spec.shutdown is None else now + spec.shutdown  # type: ignore[operator]
        waiting[ref] = (pid, deadline)
    while waiting:
        deadlines = [d for _, d in waiting.values() if d is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        try:
            down = ctx.receive(lambda m: m.__class__ is Down and m.ref in waiting, timeout)
        except ReceiveTimeout:
            now = time.monotonic()
            for ref, (pid, deadline) in list(waiting.items()):
                if deadline is not None and deadline <= now:
                    log.warning("supervisor %s: child %s did not stop in time; killing it", ctx.pid, pid)
                    ctx.exit(pid, KILL)
                    waiting[ref] = (pid, None)
            continue
        del waiting[down.ref]
