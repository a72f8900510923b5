"""Supervisors: ChildSpec, the restart strategies, restart intensity, and the
calls that manage children at run time (OTP's ``supervisor``).

A :class:`Supervisor` is an actor that traps exits, starts its children in
order (each linked to it) and restarts them when they end, as their
:class:`ChildSpec` says:

* ``permanent`` children are always restarted; ``transient`` ones only after
  an abnormal exit (anything but ``normal``, ``shutdown``, ``("shutdown", x)``);
  ``temporary`` ones never, and their spec is dropped when they end.
* ``one_for_one`` restarts the child that ended; ``one_for_all`` stops the
  others (newest first) and restarts them all in start order; ``rest_for_one``
  does the same for the children started after it.
* More than ``intensity`` restarts within ``period`` seconds and the
  supervisor gives up: it stops every child (newest first) and exits with
  reason ``"shutdown"``, so that its own supervisor reacts.

A supervisor that is told to stop (an exit signal from its parent,
``system.stop``, ``ActorSystem.shutdown``) stops its children newest first,
each as its spec says (``"shutdown"`` then ``"kill"`` after a timeout, or
``"kill"`` at once), before it ends: a nested tree comes down leaves first.

Everything a supervisor does runs in its own greenlet. The module functions
(:func:`start_child`, :func:`which_children`, ...) are calls to it, made from
any greenlet with an :class:`~joerl.system.ActorSystem` (plain code) or an
:class:`~joerl.actor.ActorContext` (inside an actor).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Union

from .actor import Actor, ActorContext, ActorRef
from .errors import ActorError, CallError, CallTimeout, ReceiveTimeout, StartError
from .message import KILL, SHUTDOWN, Down, Exit, format_reason, is_normal
from .pid import Pid
from .system import SYSTEM_PID

if TYPE_CHECKING:
    from .system import ActorSystem

log = logging.getLogger(__name__)

PERMANENT = "permanent"
TRANSIENT = "transient"
TEMPORARY = "temporary"
ONE_FOR_ONE = "one_for_one"
ONE_FOR_ALL = "one_for_all"
REST_FOR_ONE = "rest_for_one"
BRUTAL_KILL = "brutal_kill"
INFINITY = "infinity"
WORKER = "worker"
SUPERVISOR = "supervisor"
#: What a ``ChildSpec.start`` returns to say "nothing to start" (OTP's ``ignore``).
IGNORE = "ignore"

RESTART_TYPES = (PERMANENT, TRANSIENT, TEMPORARY)
STRATEGIES = (ONE_FOR_ONE, ONE_FOR_ALL, REST_FOR_ONE)
CHILD_TYPES = (WORKER, SUPERVISOR)

Caller = Union["ActorSystem", ActorContext]


# -- errors ------------------------------------------------------------------


class SupervisorError(ActorError):
    """A supervisor refused a request about its children."""


class ChildNotFound(SupervisorError):
    """No child with this id."""

    def __init__(self, id: Hashable) -> None:
        super().__init__(f"no child with id {id!r}")
        self.id = id


class AlreadyStarted(SupervisorError):
    """``start_child``: a child with this id is running."""

    def __init__(self, id: Hashable, pid: Pid) -> None:
        super().__init__(f"child {id!r} is already started as {pid}")
        self.id = id
        self.pid = pid


class AlreadyPresent(SupervisorError):
    """``start_child``: a (stopped) child with this id exists: restart or delete it."""

    def __init__(self, id: Hashable) -> None:
        super().__init__(f"child {id!r} is already present (not running): use restart_child or delete_child")
        self.id = id


class StillRunning(SupervisorError):
    """``restart_child``/``delete_child``: the child runs; terminate it first."""

    def __init__(self, id: Hashable, pid: Pid) -> None:
        super().__init__(f"child {id!r} is running as {pid}: terminate_child it first")
        self.id = id
        self.pid = pid


class ChildStartError(SupervisorError):
    """A child's ``start`` raised, or returned something that is not a process."""

    def __init__(self, id: Hashable, reason: Any) -> None:
        super().__init__(f"child {id!r} failed to start: {format_reason(reason)}")
        self.id = id
        self.reason = reason


_ERRORS: dict[str, Callable[..., SupervisorError]] = {
    "not_found": ChildNotFound,
    "already_started": AlreadyStarted,
    "already_present": AlreadyPresent,
    "running": StillRunning,
    "start_failed": ChildStartError,
}


# -- child specs -------------------------------------------------------------


class _Default:
    def __repr__(self) -> str:
        return "<default>"


_DEFAULT: Any = _Default()


@dataclass(frozen=True)
class ChildSpec:
    """How a supervisor starts, restarts and stops one child.

    Args:
        id: names the child within its supervisor (any hashable value).
        start: ``start(ctx) -> Pid | ActorRef`` runs in the supervisor's
            greenlet and must spawn the child *linked* to it (typically
            ``lambda ctx: ctx.spawn_link(Worker())``); it may return
            :data:`IGNORE` to start nothing. An exception is a failed start.
        restart: ``"permanent"`` (always restarted), ``"transient"`` (only
            after an abnormal exit) or ``"temporary"`` (never; dropped when it ends).
        shutdown: ``"brutal_kill"``; seconds to wait after the ``"shutdown"``
            exit signal before killing; or None / ``"infinity"`` to wait for
            ever. Defaults to 5.0 for a worker, None for a supervisor.
        type: ``"worker"`` or ``"supervisor"``.

    Raises:
        ValueError, TypeError: a field is out of range or of the wrong kind.
    """

    id: Hashable
    start: Callable[[ActorContext], Any]
    restart: str = PERMANENT
    shutdown: float | str | None = _DEFAULT
    type: str = WORKER

    def __post_init__(self) -> None:
        try:
            hash(self.id)
        except TypeError:
            raise TypeError(f"child id must be hashable, got {self.id!r}") from None
        if not callable(self.start):
            raise TypeError(f"child {self.id!r}: start must be callable as start(ctx), got {self.start!r}")
        if self.restart not in RESTART_TYPES:
            raise ValueError(
                f"child {self.id!r}: unknown restart type {self.restart!r}; expected one of {RESTART_TYPES}"
            )
        if self.type not in CHILD_TYPES:
            raise ValueError(f"child {self.id!r}: unknown child type {self.type!r}; expected one of {CHILD_TYPES}")
        shutdown = self.shutdown
        if shutdown is _DEFAULT:
            shutdown = None if self.type == SUPERVISOR else 5.0
        elif shutdown == INFINITY:
            shutdown = None
        elif shutdown is not None and shutdown != BRUTAL_KILL:
            if isinstance(shutdown, bool) or not isinstance(shutdown, (int, float)):
                raise TypeError(
                    f"child {self.id!r}: shutdown must be seconds, 'brutal_kill', 'infinity' or None, got {shutdown!r}"
                )
            if math.isnan(shutdown) or shutdown < 0:
                raise ValueError(f"child {self.id!r}: shutdown timeout must be >= 0 seconds, got {shutdown!r}")
            shutdown = None if math.isinf(shutdown) else float(shutdown)
        object.__setattr__(self, "shutdown", shutdown)

    @classmethod
    def worker(
        cls,
        id: Hashable,
        factory: Callable[..., Actor],
        *args: Any,
        restart: str = PERMANENT,
        shutdown: float | str | None = 5.0,
        name: str | None = None,
        mailbox_size: int | None = None,
    ) -> ChildSpec:
        """A worker made by ``factory(*args)`` (an Actor class or a function
        returning a fresh Actor instance), spawned linked at each (re)start,
        registered as ``name`` if given. A GenServer is started with
        ``gen_server.start_link`` (``init(None)`` has run when the start
        returns; a failing ``init`` is a failed start)."""
        return cls(id, _SpawnActor(id, factory, args, name, mailbox_size, False), restart, shutdown, WORKER)

    @classmethod
    def worker_fn(
        cls,
        id: Hashable,
        fn: Callable[..., Any],
        *args: Any,
        restart: str = PERMANENT,
        shutdown: float | str | None = 5.0,
        name: str | None = None,
        mailbox_size: int | None = None,
    ) -> ChildSpec:
        """A worker process running ``fn(ctx, *args)`` (like ``spawn_fn``)."""
        if not callable(fn):
            raise TypeError(f"child {id!r}: fn must be callable as fn(ctx, *args), got {fn!r}")
        return cls(id, _SpawnFn(fn, args, name, mailbox_size), restart, shutdown, WORKER)

    @classmethod
    def supervisor(
        cls,
        id: Hashable,
        factory: Callable[..., Supervisor],
        *args: Any,
        restart: str = PERMANENT,
        shutdown: float | str | None = None,
        name: str | None = None,
    ) -> ChildSpec:
        """A nested supervisor made by ``factory(*args)`` (a fresh instance per
        start), started with :func:`start_link`: the start returns once its own
        children are started, and fails if they fail."""
        return cls(id, _SpawnActor(id, factory, args, name, None, True), restart, shutdown, SUPERVISOR)


class _SpawnActor:
    """``ChildSpec.start`` for ``worker``/``supervisor``: a fresh instance each time."""

    __slots__ = ("id", "factory", "args", "name", "mailbox_size", "is_sup")

    def __init__(
        self, id: Hashable, factory: Any, args: tuple[Any, ...], name: str | None, mailbox_size: int | None, is_sup: bool
    ) -> None:
        if isinstance(factory, Actor):
            raise TypeError(
                f"child {id!r}: pass the class or a factory, not an Actor instance: "
                "each restart needs a fresh actor (e.g. ChildSpec.worker(id, Worker, arg))"
            )
        if not callable(factory):
            raise TypeError(f"child {id!r}: factory must be callable, got {factory!r}")
        self.id, self.factory, self.args = id, factory, args
        self.name, self.mailbox_size, self.is_sup = name, mailbox_size, is_sup

    def __call__(self, ctx: ActorContext) -> ActorRef:
        actor = self.factory(*self.args)
        if self.is_sup:
            if not isinstance(actor, Supervisor):
                raise TypeError(f"child {self.id!r}: factory returned {actor!r}, not a Supervisor")
            return start_link(ctx, actor, name=self.name)
        if not isinstance(actor, Actor):
            raise TypeError(f"child {self.id!r}: factory returned {actor!r}, not an Actor instance")
        from . import gen_server  # here, not at the top: behaviours don't import each other at load

        if isinstance(actor, gen_server.GenServer):  # its init runs before the start returns
            return gen_server.start_link(ctx, actor, name=self.name, mailbox_size=self.mailbox_size)
        return ctx.spawn_link(actor, mailbox_size=self.mailbox_size, name=self.name)

    def __repr__(self) -> str:
        return f"<start {getattr(self.factory, '__qualname__', self.factory)}{self.args!r}>"


class _SpawnFn:
    """``ChildSpec.start`` for ``worker_fn``."""

    __slots__ = ("fn", "args", "name", "mailbox_size")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], name: str | None, mailbox_size: int | None
    ) -> None:
        self.fn, self.args, self.name, self.mailbox_size = fn, args, name, mailbox_size

    def __call__(self, ctx: ActorContext) -> ActorRef:
        return ctx.spawn_link(self.fn, *self.args, mailbox_size=self.mailbox_size, name=self.name)

    def __repr__(self) -> str:
        return f"<start fn {getattr(self.fn, '__qualname__', self.fn)}{self.args!r}>"


class ChildInfo(NamedTuple):
    """One row of :func:`which_children`."""

    id: Hashable
    pid: Pid | None  # None: not running
    type: str


# -- the supervisor ----------------------------------------------------------


class _Child:
    __slots__ = ("spec", "pid", "restarting")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.pid: Pid | None = None
        self.restarting = False  # meant to run, waiting for a (re)start


class _StartFailed(Exception):
    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


#: A call's answer: ``("ok", value)`` or ``("error", code, args)`` (see _ERRORS).
_Reply = tuple[Any, ...]

_TRY_AGAIN = "$joerl_sup_try_again"
_READY = "$joerl_sup_ready"


class Supervisor(Actor):
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
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown supervisor strategy {strategy!r}; expected one of {STRATEGIES}")
        if isinstance(intensity, bool) or not isinstance(intensity, int) or intensity < 0:
            raise ValueError(f"intensity must be an int >= 0, got {intensity!r}")
        if isinstance(period, bool) or not isinstance(period, (int, float)) or not period > 0:
            raise ValueError(f"period must be a number of seconds > 0, got {period!r}")
        specs = tuple(children)
        seen: set[Hashable] = set()
        for spec in specs:
            if not isinstance(spec, ChildSpec):
                raise TypeError(f"children must be ChildSpec instances, got {spec!r}")
            if spec.id in seen:
                raise ValueError(f"duplicate child id {spec.id!r}")
            seen.add(spec.id)
        self.strategy = strategy
        self.intensity = intensity
        self.period = float(period)
        self._specs = specs
        self._clock = clock
        self._children: dict[Hashable, _Child] = {}  # in start order
        self._by_pid: dict[Pid, _Child] = {}
        self._restarts: deque[float] = deque()
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
        self._parent = getattr(ctx, "_parent", None) or SYSTEM_PID
        for spec in self._specs:
            child = _Child(spec)
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
        elif cls is tuple and len(msg) == 3 and msg[0] == "$gen_call":
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

    def _start(self, ctx: ActorContext, child: _Child) -> Pid | None:
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

    def _shutdown_child(self, ctx: ActorContext, child: _Child) -> None:
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
                    ctx.pid, spec.id, pid, spec.shutdown,
                )
                ctx.exit(pid, KILL)
                _await_down(ctx, ref, None)
        self._by_pid.pop(pid, None)
        child.pid = None

    # -- restarts ------------------------------------------------------------------

    def _on_exit(self, ctx: ActorContext, pid: Pid, reason: Any) -> None:
        child = self._by_pid.pop(pid, None)
        if child is None:
            if pid == self._parent:
                ctx.stop(reason)  # the parent says stop: children go first, in stopped()
            log.debug("supervisor %s: ignoring exit of %s (%s)", ctx.pid, pid, format_reason(reason))
            return
        child.pid = None
        spec = child.spec
        if spec.restart == TEMPORARY or (spec.restart == TRANSIENT and is_normal(reason)):
            if spec.restart == TEMPORARY:
                del self._children[spec.id]
            log.debug(
                "supervisor %s: %s child %r (%s) ended with %s; not restarted",
                ctx.pid, spec.restart, spec.id, pid, format_reason(reason),
            )
            return
        log.info(
            "supervisor %s: child %r (%s) ended with %s; restarting (%s)",
            ctx.pid, spec.id, pid, format_reason(reason), self.strategy,
        )
        self._restart(ctx, child)

    def _restart(self, ctx: ActorContext, child: _Child) -> None:
        if not self._add_restart():
            log.error(
                "supervisor %s: reached maximum restart intensity (%d in %ss) restarting child %r; shutting down",
                ctx.pid, self.intensity, self.period, child.spec.id,
            )
            ctx.stop(SHUTDOWN)
        child.restarting = True
        if self.strategy == ONE_FOR_ONE:
            group = [child]
        else:
            ordered = list(self._children.values())
            first = 0 if self.strategy == ONE_FOR_ALL else ordered.index(child)
            group = [c for c in ordered[first:] if c is child or c.pid is not None or c.restarting]
            for c in reversed(group):
                if c.pid is not None:
                    self._shutdown_child(ctx, c)
            for c in group:
                if c.spec.restart == TEMPORARY:
                    del self._children[c.spec.id]
                else:
                    c.restarting = True
            group = [c for c in group if c.spec.restart != TEMPORARY]
        for c in group:
            try:
                self._start(ctx, c)
            except _StartFailed as failed:
                log.error(
                    "supervisor %s: child %r failed to restart: %s; trying again",
                    ctx.pid, c.spec.id, format_reason(failed.reason),
                )
                ctx.send(ctx.pid, (_TRY_AGAIN, c.spec.id))
                return

    def _add_restart(self) -> bool:
        """Count a restart; False once more than ``intensity`` fall within ``period``."""
        now = self._clock()
        restarts = self._restarts
        restarts.append(now)
        threshold = now - self.period
        while restarts and restarts[0] <= threshold:
            restarts.popleft()
        return len(restarts) <= self.intensity

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
        return ("ok", [ChildInfo(c.spec.id, c.pid, c.spec.type) for c in self._children.values()])

    def _call_count_children(self, ctx: ActorContext) -> _Reply:
        children = self._children.values()
        return ("ok", {
            "specs": len(children),
            "active": sum(1 for c in children if c.pid is not None),
            "supervisors": sum(1 for c in children if c.spec.type == SUPERVISOR),
            "workers": sum(1 for c in children if c.spec.type == WORKER),
        })

    def _call_start_child(self, ctx: ActorContext, spec: Any) -> _Reply:
        if not isinstance(spec, ChildSpec):
            return ("error", "unknown_request", (("start_child", spec),))
        existing = self._children.get(spec.id)
        if existing is not None:
            if existing.pid is not None:
                return ("error", "already_started", (spec.id, existing.pid))
            return ("error", "already_present", (spec.id,))
        child = self._children[spec.id] = _Child(spec)
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
    _READY: (Supervisor._call_ready, 0),
    "which_children": (Supervisor._call_which_children, 0),
    "count_children": (Supervisor._call_count_children, 0),
    "start_child": (Supervisor._call_start_child, 1),
    "terminate_child": (Supervisor._call_terminate_child, 1),
    "restart_child": (Supervisor._call_restart_child, 1),
    "delete_child": (Supervisor._call_delete_child, 1),
}


def _await_down(ctx: ActorContext, ref: Any, timeout: float | None) -> Any:
    return ctx.receive(lambda m: m.__class__ is Down and m.ref == ref, timeout).reason


# -- starting supervisors ------------------------------------------------------


def start_supervisor(
    system: ActorSystem, supervisor: Supervisor, *, name: str | None = None, timeout: float | None = None
) -> SupervisorRef:
    """Spawn ``supervisor`` (not linked) and wait until its children are started.

    Raises:
        StartError: a child failed to start (``reason`` says which), or the
            start took longer than ``timeout`` (the supervisor is killed).
    """
    if not isinstance(supervisor, Supervisor):
        raise TypeError(f"start_supervisor takes a Supervisor instance, got {supervisor!r}")
    pid = system.spawn(supervisor, name=name).pid
    _await_started(system, pid, None, timeout)
    return SupervisorRef(system, pid)


def start_link(
    ctx: ActorContext, supervisor: Supervisor, *, name: str | None = None, timeout: float | None = None
) -> SupervisorRef:
    """Spawn ``supervisor`` linked to the calling actor and wait until its
    children are started (what :meth:`ChildSpec.supervisor` uses).

    Raises:
        StartError: as :func:`start_supervisor`; the link is removed first.
    """
    if not isinstance(supervisor, Supervisor):
        raise TypeError(f"start_link takes a Supervisor instance, got {supervisor!r}")
    pid = ctx.spawn_link(supervisor, name=name).pid
    try:
        _await_started(ctx.system, pid, ctx.pid, timeout)
    except StartError:
        ctx.unlink(pid)
        if ctx.trapping_exits:
            try:
                ctx.receive(lambda m: m.__class__ is Exit and m.pid == pid, 0)
            except ReceiveTimeout:
                pass
        raise
    return SupervisorRef(ctx.system, pid)


def _await_started(system: ActorSystem, pid: Pid, caller: Pid | None, timeout: float | None) -> None:
    # started() runs before the first message: the reply means the children are up.
    try:
        system.call(pid, (_READY,), timeout, caller=caller)
    except CallTimeout:
        if caller is not None:
            system.unlink(caller, pid)
        system.exit(pid, KILL)
        raise StartError("timeout") from None
    except CallError as err:
        raise StartError(err.reason) from None


# -- calls ---------------------------------------------------------------------


def _call(via: Caller, sup: Any, request: tuple[Any, ...], timeout: float | None) -> Any:
    result = via.call(sup, request, timeout)  # an ActorContext passes its pid as the caller
    if result[0] == "ok":
        return result[1]
    make = _ERRORS.get(result[1])
    if make is None:
        raise SupervisorError(f"supervisor {sup} refused {request!r}: {result[1]} {result[2]!r}")
    raise make(*result[2])


def start_child(via: Caller, sup: Any, spec: ChildSpec, *, timeout: float | None = None) -> Pid | None:
    """Add ``spec`` to the running supervisor ``sup`` and start it (after the others).

    Args:
        via: the ActorSystem (plain code) or the calling actor's ActorContext.
        sup: the supervisor's Pid, name or ref.

    Returns:
        The child's pid (None if its start returned IGNORE).

    Raises:
        AlreadyStarted, AlreadyPresent: the id is taken.
        ChildStartError: the start failed; the spec is not kept.
        CallError: the supervisor is not running.
    """
    if not isinstance(spec, ChildSpec):
        raise TypeError(f"start_child takes a ChildSpec, got {spec!r}")
    return _call(via, sup, ("start_child", spec), timeout)  # type: ignore[no-any-return]


def terminate_child(via: Caller, sup: Any, id: Hashable, *, timeout: float | None = None) -> None:
    """Stop child ``id`` as its spec says; its spec stays (unless temporary).

    Raises:
        ChildNotFound: no such child.
    """
    _call(via, sup, ("terminate_child", id), timeout)


def restart_child(via: Caller, sup: Any, id: Hashable, *, timeout: float | None = None) -> Pid | None:
    """Start the stopped child ``id`` again; returns its new pid.

    Raises:
        ChildNotFound, StillRunning, ChildStartError.
    """
    return _call(via, sup, ("restart_child", id), timeout)  # type: ignore[no-any-return]


def delete_child(via: Caller, sup: Any, id: Hashable, *, timeout: float | None = None) -> None:
    """Forget the stopped child ``id``.

    Raises:
        ChildNotFound, StillRunning.
    """
    _call(via, sup, ("delete_child", id), timeout)


def which_children(via: Caller, sup: Any, *, timeout: float | None = None) -> list[ChildInfo]:
    """``[ChildInfo(id, pid_or_None, type), ...]`` in start order."""
    return _call(via, sup, ("which_children",), timeout)  # type: ignore[no-any-return]


def count_children(via: Caller, sup: Any, *, timeout: float | None = None) -> dict[str, int]:
    """``{"specs", "active", "supervisors", "workers"}`` counts."""
    return _call(via, sup, ("count_children",), timeout)  # type: ignore[no-any-return]


class SupervisorRef(ActorRef):
    """An ActorRef to a supervisor, with the child-management calls as methods."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<SupervisorRef {self.pid}>"

    def start_child(self, spec: ChildSpec, *, timeout: float | None = None) -> Pid | None:
        return start_child(self.system, self.pid, spec, timeout=timeout)

    def terminate_child(self, id: Hashable, *, timeout: float | None = None) -> None:
        terminate_child(self.system, self.pid, id, timeout=timeout)

    def restart_child(self, id: Hashable, *, timeout: float | None = None) -> Pid | None:
        return restart_child(self.system, self.pid, id, timeout=timeout)

    def delete_child(self, id: Hashable, *, timeout: float | None = None) -> None:
        delete_child(self.system, self.pid, id, timeout=timeout)

    def which_children(self, *, timeout: float | None = None) -> list[ChildInfo]:
        return which_children(self.system, self.pid, timeout=timeout)

    def count_children(self, *, timeout: float | None = None) -> dict[str, int]:
        return count_children(self.system, self.pid, timeout=timeout)

    def stop(self, reason: Any = SHUTDOWN, timeout: float | None = 5.0) -> bool:
        """Stop the supervisor (its children first, newest first); wait for it."""
        return self.system.stop(self.pid, reason, timeout)


__all__ = [
    "AlreadyPresent",
    "AlreadyStarted",
    "ChildInfo",
    "ChildNotFound",
    "ChildSpec",
    "ChildStartError",
    "IGNORE",
    "StillRunning",
    "Supervisor",
    "SupervisorError",
    "SupervisorRef",
    "count_children",
    "delete_child",
    "restart_child",
    "start_child",
    "start_link",
    "start_supervisor",
    "terminate_child",
    "which_children",
]
