"""The Supervisor process: it starts its children, restarts them as their specs
and its strategy say, stops them newest first, and answers the calls that
manage them (sent by :mod:`joerl.supervisor._client`). Everything here runs in
the supervisor's own greenlet."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

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
    Child,
    ChildSpec,
    check_specs,
    children_counts,
    children_info,
    release_via,
)
from ._intensity import RestartWindow, check_intensity
from ._start import READY, StartsReady
from ._strategy import ONE_FOR_ONE, check_strategy, restart_group

log = logging.getLogger("joerl.supervisor")  # the logger docs/supervisor.md names

_TRY_AGAIN = "$joerl_sup_try_again"

#: A call's answer: ``("ok", value)`` or ``("error", code, args)`` (see ``_codes.BY_CODE``).
_Reply = tuple[Any, ...]


class _StartFailed(Exception):
    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


class Supervisor(StartsReady):
    """An actor that starts children and keeps them running.

    One process per instance: to nest supervisors, give
    :meth:`ChildSpec.supervisor` a factory so that each restart runs a new one.

    Args:
        strategy: ``"one_for_one"``, ``"one_for_all"`` or ``"rest_for_one"``.
        children: the initial ChildSpecs, started in this order.
        intensity: how many restarts are allowed within ``period`` seconds;
            one more and the supervisor stops its children and exits with
            ``"shutdown"``.
        period: the window, in seconds, that ``intensity`` counts over.
        clock: a monotonic clock in seconds (injectable for tests).

    Raises:
        ValueError, TypeError: bad strategy, intensity, period, or children.
    """

    _joerl_supervisor = True

    def __init__(
        self,
        strategy: str = ONE_FOR_ONE,
        children: Any = (),
        intensity: int = 3,
        period: float = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_strategy(strategy)
        check_intensity(intensity, period)
        self._specs = check_specs(children)
        self.strategy = strategy
        self.intensity = intensity
        self.period = float(period)
        self._children: dict[Hashable, Child] = {}  # in start order
        self._by_pid: dict[Pid, Child] = {}
        self._restarts = RestartWindow(clock)
        self._parent: Pid = SYSTEM_PID
        self._ran = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.strategy} children={len(self._children) or len(self._specs)}>"

    # -- hooks (all run in the supervisor's greenlet) ----------------------------

    def started(self, ctx: ActorContext) -> None:
        """Trap exits and start the children in order; a failed start stops the
        ones already started and ends the supervisor with
        ``("shutdown", ("failed_to_start_child", id, reason))``."""
        if self._ran:
            raise RuntimeError(
                f"{self!r} has run before: a Supervisor instance runs once "
                "(give ChildSpec.supervisor a factory, not an instance)"
            )
        self._ran = True
        ctx.trap_exit(True)
        self._parent = ctx.parent or SYSTEM_PID
        for spec in self._specs:
            child = Child(spec)
            self._children[spec.id] = child
            try:
                self._start(ctx, child)
            except _StartFailed as failed:
                log.error("supervisor %s: child %r failed to start: %s", ctx.pid, spec.id, format_reason(failed.reason))
                ctx.stop((SHUTDOWN, ("failed_to_start_child", spec.id, failed.reason)))

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
            if child is not None and child.restarting and child.pid is None:
                self._restart(ctx, child)
        else:
            log.warning("supervisor %s: unexpected message %r", ctx.pid, msg)

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        """Stop every running child, newest first, before the supervisor ends."""
        for child in reversed(list(self._children.values())):
            if child.pid is not None:
                try:
                    self._shutdown_child(ctx, child)
                except Exception:  # noqa: BLE001 - keep stopping the others
                    log.exception("supervisor %s: could not stop child %r", ctx.pid, child.spec.id)

    # -- starting and stopping children ----------------------------------------

    def _start(self, ctx: ActorContext, child: Child) -> Pid | None:
        spec = child.spec
        try:
            result = spec.start(ctx)
        except Exception as exc:  # noqa: BLE001 - a failed start is data
            raise _StartFailed(exc) from exc
        if isinstance(result, ActorRef):
            pid = result.pid
        elif isinstance(result, Pid):
            pid = result
        elif isinstance(result, str) and result == IGNORE:
            child.restarting = False
            return None
        else:
            raise _StartFailed(
                TypeError(f"start of child {spec.id!r} returned {result!r}: expected a Pid, an ActorRef or IGNORE")
            )
        ctx.link(pid)  # a start that forgot to link still gets supervised
        child.pid = pid
        child.restarting = False
        self._by_pid[pid] = child
        return pid

    def _shutdown_child(self, ctx: ActorContext, child: Child) -> None:
        """Stop one running child as its spec says and wait until it is gone."""
        pid = child.pid
        assert pid is not None
        spec = child.spec
        ref = ctx.monitor(pid)
        ctx.unlink(pid)
        try:  # it may have ended already: its Exit is queued, take it
            early: Any = ctx.receive(lambda m: m.__class__ is Exit and m.pid == pid, 0)
        except ReceiveTimeout:
            early = None
        if early is not None:
            _await_down(ctx, ref, None)
            if not is_normal(early.reason):
                log.warning(
                    "supervisor %s: child %r (%s) had ended with %s", ctx.pid, spec.id, pid, format_reason(early.reason)
                )
        elif spec.shutdown == BRUTAL_KILL:
            ctx.exit(pid, KILL)
            _await_down(ctx, ref, None)
        else:
            ctx.exit(pid, SHUTDOWN)
            try:
                _await_down(ctx, ref, spec.shutdown)  # type: ignore[arg-type]
            except ReceiveTimeout:
                log.warning(
                    "supervisor %s: child %r (%s) did not stop within %ss; killing it",
                    ctx.pid,
                    spec.id,
                    pid,
                    spec.shutdown,
                )
                ctx.exit(pid, KILL)
                _await_down(ctx, ref, None)
        self._by_pid.pop(pid, None)
        child.pid = None
        release_via(spec, pid)

    # -- restarts ------------------------------------------------------------------

    def _on_exit(self, ctx: ActorContext, pid: Pid, reason: Any) -> None:
        child = self._by_pid.pop(pid, None)
        if child is None:
            if pid == self._parent:
                raise StopActor(reason, report=False)  # the parent says stop: children go first, in stopped()
            log.debug("supervisor %s: ignoring exit of %s (%s)", ctx.pid, pid, format_reason(reason))
            return
        child.pid = None
        spec = child.spec
        release_via(spec, pid)
        if spec.restart == TEMPORARY or (spec.restart == TRANSIENT and is_normal(reason)):
            if spec.restart == TEMPORARY:
                del self._children[spec.id]
            log.debug(
                "supervisor %s: %s child %r (%s) ended with %s; not restarted",
                ctx.pid,
                spec.restart,
                spec.id,
                pid,
                format_reason(reason),
            )
            return
        log.info(
            "supervisor %s: child %r (%s) ended with %s; restarting (%s)",
            ctx.pid,
            spec.id,
            pid,
            format_reason(reason),
            self.strategy,
        )
        self._restart(ctx, child)

    def _restart(self, ctx: ActorContext, child: Child) -> None:
        """Restart ``child`` (not running, not temporary) with the children its
        strategy groups with it: the running ones stop first, newest first,
        then all start in start order; temporary ones are dropped instead."""
        if not self._restarts.add(self.intensity, self.period):
            log.error(
                "supervisor %s: reached maximum restart intensity (%d in %ss) restarting child %r; giving up: shutting down",
                ctx.pid,
                self.intensity,
                self.period,
                child.spec.id,
            )
            ctx.stop(SHUTDOWN)
        ctx.system.stats.restarts += 1
        group = restart_group(self.strategy, list(self._children.values()), child)
        for c in reversed(group):
            if c.pid is not None:
                self._shutdown_child(ctx, c)
        for c in group:
            if c.spec.restart == TEMPORARY:
                del self._children[c.spec.id]
            else:
                c.restarting = True
        for c in group:
            if c.spec.restart == TEMPORARY:
                continue
            try:
                self._start(ctx, c)
            except _StartFailed as failed:
                log.error(
                    "supervisor %s: child %r failed to restart: %s; trying again",
                    ctx.pid,
                    c.spec.id,
                    format_reason(failed.reason),
                )
                ctx.send(ctx.pid, (_TRY_AGAIN, c.spec.id))
                return

    # -- calls ---------------------------------------------------------------------

    def _on_call(self, ctx: ActorContext, request: Any) -> _Reply:
        """Answer one call with ``("ok", value)`` or ``("error", code, args)``;
        a malformed request gets an error, never a crash."""
        if isinstance(request, tuple) and request and isinstance(request[0], str):
            entry = _CALLS.get(request[0])
            if entry is not None and len(request) == entry[1] + 1:
                return entry[0](self, ctx, *request[1:])
        return ("error", "unknown_request", (request,))

    def _call_ready(self, ctx: ActorContext) -> _Reply:
        return ("ok", None)

    def _call_which_children(self, ctx: ActorContext) -> _Reply:
        return ("ok", children_info(self._children.values()))

    _joerl_sys_stats: Any = None  # sys_calls.statistics

    def _joerl_sys_state(self) -> Any:
        return children_info(self._children.values())

    def _call_count_children(self, ctx: ActorContext) -> _Reply:
        return ("ok", children_counts(self._children.values()))

    def _call_start_child(self, ctx: ActorContext, spec: Any) -> _Reply:
        if not isinstance(spec, ChildSpec):
            return (
                "error",
                "bad_request",
                (f"start_child takes a ChildSpec (args are for a DynamicSupervisor), not {spec!r}",),
            )
        existing = self._children.get(spec.id)
        if existing is not None:
            if existing.pid is not None:
                return ("error", "already_started", (spec.id, existing.pid))
            return ("error", "already_present", (spec.id,))
        child = self._children[spec.id] = Child(spec)
        try:
            pid = self._start(ctx, child)
        except _StartFailed as failed:
            del self._children[spec.id]
            return ("error", "start_failed", (spec.id, failed.reason))
        if pid is None and spec.restart == TEMPORARY:
            del self._children[spec.id]
        return ("ok", pid)

    def _call_terminate_child(self, ctx: ActorContext, id: Any) -> _Reply:
        child = self._children.get(id)
        if child is None:
            return ("error", "not_found", (id,))
        if child.pid is not None:
            self._shutdown_child(ctx, child)
        child.restarting = False
        if child.spec.restart == TEMPORARY:
            del self._children[id]
        return ("ok", None)

    def _call_restart_child(self, ctx: ActorContext, id: Any) -> _Reply:
        child = self._children.get(id)
        if child is None:
            return ("error", "not_found", (id,))
        if child.pid is not None:
            return ("error", "running", (id, child.pid))
        try:
            return ("ok", self._start(ctx, child))
        except _StartFailed as failed:
            return ("error", "start_failed", (id, failed.reason))

    def _call_delete_child(self, ctx: ActorContext, id: Any) -> _Reply:
        child = self._children.get(id)
        if child is None:
            return ("error", "not_found", (id,))
        if child.pid is not None:
            return ("error", "running", (id, child.pid))
        del self._children[id]
        return ("ok", None)


#: call name -> (handler, number of arguments)
_CALLS: dict[str, tuple[Callable[..., _Reply], int]] = {
    READY: (Supervisor._call_ready, 0),
    "which_children": (Supervisor._call_which_children, 0),
    "count_children": (Supervisor._call_count_children, 0),
    "start_child": (Supervisor._call_start_child, 1),
    "terminate_child": (Supervisor._call_terminate_child, 1),
    "restart_child": (Supervisor._call_restart_child, 1),
    "delete_child": (Supervisor._call_delete_child, 1),
}


def _await_down(ctx: ActorContext, ref: Any, timeout: float | None) -> Any:
    return ctx.receive(lambda m: m.__class__ is Down and m.ref == ref, timeout).reason
