"""One child of a supervisor: its ChildSpec (checked when it is made), the
start callables behind the spec's shorthands, the supervisor's record of it
while the supervisor runs (:class:`Child`), and the row that reports it
(:class:`ChildInfo`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import gen_server, gen_statem
from .._via import ViaName, check_via, is_via
from ..actor import Actor, ActorContext, ActorRef
from ..errors import NameTaken
from ..message import KILL
from ..pid import Pid
from ._start import StartsReady, spawn_linked

PERMANENT = "permanent"
TRANSIENT = "transient"
TEMPORARY = "temporary"
BRUTAL_KILL = "brutal_kill"
INFINITY = "infinity"
WORKER = "worker"
SUPERVISOR = "supervisor"
#: What a ``ChildSpec.start`` returns to say "nothing to start" (OTP's ``ignore``).
IGNORE = "ignore"

RESTART_TYPES = (PERMANENT, TRANSIENT, TEMPORARY)
CHILD_TYPES = (WORKER, SUPERVISOR)


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
            As the template of a :class:`~joerl.supervisor.DynamicSupervisor`
            it is called ``start(ctx, *args)`` with the args of ``start_child``
            (the shorthands below append them to their own ``*args``).
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
    start: Callable[..., Any]
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
        name: str | ViaName | None = None,
        mailbox_size: int | None = None,
    ) -> ChildSpec:
        """A worker made by ``factory(*args)`` (an Actor class or a function
        returning a fresh Actor instance), spawned linked at each (re)start,
        registered as ``name`` if given (a str, or a via name
        ``("via", registry, name)``: registered through the registry once the
        child has started, unregistered when it ends). A GenServer is started with
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
        name: str | ViaName | None = None,
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
        factory: Callable[..., StartsReady],
        *args: Any,
        restart: str = PERMANENT,
        shutdown: float | str | None = None,
        name: str | ViaName | None = None,
    ) -> ChildSpec:
        """A nested supervisor made by ``factory(*args)`` (a fresh instance per
        start), started with :func:`start_link`: the start returns once its own
        children are started, and fails if they fail."""
        return cls(id, _SpawnActor(id, factory, args, name, None, True), restart, shutdown, SUPERVISOR)


def check_specs(children: Any) -> tuple[ChildSpec, ...]:
    """A supervisor's initial children as a tuple, in start order.

    Raises:
        TypeError: one is not a ChildSpec.
        ValueError: two share an id.
    """
    specs = tuple(children)
    seen: set[Hashable] = set()
    for spec in specs:
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"children must be ChildSpec instances, got {spec!r}")
        if spec.id in seen:
            raise ValueError(f"duplicate child id {spec.id!r}")
        seen.add(spec.id)
    return specs


class _SpawnActor:
    """``ChildSpec.start`` for ``worker``/``supervisor``: a fresh instance each time."""

    __slots__ = ("id", "factory", "args", "name", "mailbox_size", "is_sup")

    def __init__(
        self,
        id: Hashable,
        factory: Any,
        args: tuple[Any, ...],
        name: str | ViaName | None,
        mailbox_size: int | None,
        is_sup: bool,
    ) -> None:
        if isinstance(factory, Actor):
            raise TypeError(
                f"child {id!r}: pass the class or a factory, not an Actor instance: "
                "each restart needs a fresh actor (e.g. ChildSpec.worker(id, Worker, arg))"
            )
        if not callable(factory):
            raise TypeError(f"child {id!r}: factory must be callable, got {factory!r}")
        if is_via(name):
            check_via(name)
        self.id, self.factory, self.args = id, factory, args
        self.name, self.mailbox_size, self.is_sup = name, mailbox_size, is_sup

    def __call__(self, ctx: ActorContext, *extra: Any) -> ActorRef | Pid:
        name = self.name
        return register_via(ctx, name, self._start(ctx, None if is_via(name) else name, extra))  # type: ignore[arg-type]

    def _start(self, ctx: ActorContext, name: str | None, extra: tuple[Any, ...]) -> ActorRef | Pid:
        actor = self.factory(*self.args, *extra)  # extra: a dynamic supervisor's start_child args
        if self.is_sup:
            if not isinstance(actor, StartsReady):
                raise TypeError(f"child {self.id!r}: factory returned {actor!r}, not a Supervisor")
            return spawn_linked(ctx, actor, name, None)
        if not isinstance(actor, Actor):
            raise TypeError(f"child {self.id!r}: factory returned {actor!r}, not an Actor instance")
        if isinstance(actor, gen_server.GenServer):  # its init runs before the start returns
            return gen_server.start_link(ctx, actor, name=name, mailbox_size=self.mailbox_size)
        if isinstance(actor, gen_statem.GenStatem):  # so does a state machine's
            return gen_statem.start_link(ctx, actor, name=name, mailbox_size=self.mailbox_size)
        return ctx.spawn_link(actor, mailbox_size=self.mailbox_size, name=name)

    def __repr__(self) -> str:
        return f"<start {getattr(self.factory, '__qualname__', self.factory)}{self.args!r}>"


class _SpawnFn:
    """``ChildSpec.start`` for ``worker_fn``."""

    __slots__ = ("fn", "args", "name", "mailbox_size")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], name: str | ViaName | None, mailbox_size: int | None
    ) -> None:
        if is_via(name):
            check_via(name)
        self.fn, self.args, self.name, self.mailbox_size = fn, args, name, mailbox_size

    def __call__(self, ctx: ActorContext, *extra: Any) -> ActorRef:
        name = self.name
        local = None if is_via(name) else name
        ref = ctx.spawn_link(self.fn, *self.args, *extra, mailbox_size=self.mailbox_size, name=local)  # type: ignore[arg-type]
        register_via(ctx, name, ref)
        return ref

    def __repr__(self) -> str:
        return f"<start fn {getattr(self.fn, '__qualname__', self.fn)}{self.args!r}>"


def register_via(ctx: ActorContext, name: Any, started: ActorRef | Pid) -> ActorRef | Pid:
    """Register a child that has just started under its via name (a str name: registered already).

    A name the registry refuses (or a registry that raises) fails the start:
    the child is unlinked and killed first.

    Args:
        ctx: the supervisor's context.
        name: the child's name as its spec gives it.
        started: what the start returned.

    Returns:
        ``started``.

    Raises:
        NameTaken: the registry holds the name for another process.
    """
    if not is_via(name):
        return started
    pid = started.pid if isinstance(started, ActorRef) else started
    _, registry, key = name
    try:
        registered = registry.register_name(key, pid)
    except BaseException:
        _abandon(ctx, pid)
        raise
    if not registered:
        _abandon(ctx, pid)
        raise NameTaken(name, registry.whereis_name(key))
    return started


def _abandon(ctx: ActorContext, pid: Pid) -> None:
    ctx.unlink(pid)
    ctx.exit(pid, KILL)


def release_via(spec: ChildSpec, pid: Pid) -> None:
    """Unregister the via name of a child that has ended, if it still holds it.

    Runs in the supervisor's greenlet before any restart, so that the new
    child finds the name free. A registry that raises is logged, never fatal.

    Args:
        spec: the child's spec.
        pid: the pid of the child that ended.
    """
    name: Any = getattr(spec.start, "name", None)
    if not is_via(name):
        return
    _, registry, key = name
    try:
        if registry.whereis_name(key) == pid:
            registry.unregister_name(key)
    except Exception:  # noqa: BLE001 - the supervisor carries on
        logging.getLogger("joerl.supervisor").exception("could not unregister %r of child %r", name, spec.id)


class Child:
    """A running supervisor's record of one child (in its greenlet only)."""

    __slots__ = ("spec", "pid", "restarting")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.pid: Pid | None = None
        self.restarting = False  # meant to run, waiting for a (re)start


class ChildInfo(NamedTuple):
    """One row of :func:`which_children`."""

    id: Hashable
    pid: Pid | None  # None: not running
    type: str


def children_info(children: Iterable[Any]) -> list[ChildInfo]:
    """The ``which_children`` answer for children with ``spec`` and ``pid`` (either kind of supervisor)."""
    return [ChildInfo(c.spec.id, c.pid, c.spec.type) for c in children]


def children_counts(children: Collection[Any]) -> dict[str, int]:
    """The ``count_children`` answer (OTP's specs, active, supervisors, workers)."""
    return {
        "specs": len(children),
        "active": sum(1 for c in children if c.pid is not None),
        "supervisors": sum(1 for c in children if c.spec.type == SUPERVISOR),
        "workers": sum(1 for c in children if c.spec.type == WORKER),
    }
