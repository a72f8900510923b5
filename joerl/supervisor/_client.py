"""The caller's side of a supervisor: starting one (and waiting until its
children are started), the calls that manage its children at run time, and
SupervisorRef, which offers those calls as methods. These run in the
caller's greenlet, with an :class:`~joerl.system.ActorSystem` (plain code)
or an :class:`~joerl.actor.ActorContext` (inside an actor)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ..actor import ActorContext, ActorRef
from ..errors import SupervisorError
from ..message import SHUTDOWN
from ..pid import Pid
from ..system import ActorSystem
from ._child import ChildInfo, ChildSpec
from ._codes import BY_CODE
from ._dynamic import DynamicSupervisor
from ._server import Supervisor
from ._start import await_started, spawn_linked

Caller = ActorSystem | ActorContext


# -- starting supervisors ------------------------------------------------------


def start_supervisor(
    system: ActorSystem,
    supervisor: Supervisor | DynamicSupervisor,
    *,
    name: str | None = None,
    timeout: float | None = None,
) -> SupervisorRef:
    """Spawn ``supervisor`` (not linked) and wait until its children are started.

    Args:
        system: the system to start it in (a node's: ``node.system``).
        supervisor: a :class:`Supervisor` (its child specs) or a :class:`DynamicSupervisor`.
        name: register the supervisor under this name.
        timeout: seconds to wait for every child's start (None: no limit).

    Returns:
        A :class:`SupervisorRef`: the supervisor's pid, with the child-management calls.

    Raises:
        StartError: a child failed to start (``reason`` says which), or the
            start took longer than ``timeout`` (the supervisor is killed).
        TypeError: ``supervisor`` is not a Supervisor or DynamicSupervisor instance.

    Example::

        sup = start_supervisor(system, Supervisor("one_for_one", [ChildSpec.worker("db", Db)]), name="top")
        sup.which_children()
    """
    if not isinstance(supervisor, (Supervisor, DynamicSupervisor)):
        raise TypeError(f"start_supervisor takes a Supervisor instance, got {supervisor!r}")
    pid = system.spawn(supervisor, name=name).pid
    await_started(system, pid, None, timeout)
    return SupervisorRef(system, pid)


def start_link(
    ctx: ActorContext,
    supervisor: Supervisor | DynamicSupervisor,
    *,
    name: str | None = None,
    timeout: float | None = None,
) -> SupervisorRef:
    """Spawn ``supervisor`` linked to the calling actor and wait until its
    children are started (what :meth:`ChildSpec.supervisor` uses).

    Raises:
        StartError: as :func:`start_supervisor`; the link is removed first.
    """
    if not isinstance(supervisor, (Supervisor, DynamicSupervisor)):
        raise TypeError(f"start_link takes a Supervisor instance, got {supervisor!r}")
    return SupervisorRef(ctx.system, spawn_linked(ctx, supervisor, name, timeout))


# -- calls ---------------------------------------------------------------------


def call_supervisor(via: Caller, sup: Any, request: tuple[Any, ...], *, timeout: float | None = None) -> Any:
    """Make a call to a supervisor (its own calls, or a subclass's, such as a
    TaskSupervisor's) and turn an error reply into its exception.

    Args:
        via: the ActorSystem (plain code) or the calling actor's ActorContext.
        sup: the supervisor's Pid, name, ref, or ``(name, node)``.
        request: ``(call name, *args)``.
        timeout: seconds to wait (None: no limit).

    Returns:
        The value of an ``("ok", value)`` reply.

    Raises:
        SupervisorError: the supervisor refused (the subclass its code names).
        CallError: the supervisor is not running.
    """
    return _call(via, sup, request, timeout)


def _call(via: Caller, sup: Any, request: tuple[Any, ...], timeout: float | None) -> Any:
    result = via.call(sup, request, timeout)  # an ActorContext passes its pid as the caller
    if result[0] == "ok":
        return result[1]
    make = BY_CODE.get(result[1])
    if make is None:
        raise SupervisorError(f"supervisor {sup} refused {request!r}: {result[1]} {result[2]!r}")
    raise make(*result[2])


def start_child(
    via: Caller, sup: Any, spec: ChildSpec | tuple[Any, ...] | list[Any], *, timeout: float | None = None
) -> Pid | None:
    """Add ``spec`` to the running supervisor ``sup`` and start it (after the others).

    Args:
        via: the ActorSystem (plain code) or the calling actor's ActorContext.
        sup: the supervisor's Pid, name or ref.
        spec: a ChildSpec; or, for a :class:`DynamicSupervisor` with a
            template, the extra args (a tuple or list) its start gets.

    Returns:
        The child's pid (None if its start returned IGNORE).

    Raises:
        AlreadyStarted, AlreadyPresent: the id is taken.
        ChildStartError: the start failed; the spec is not kept.
        MaxChildrenReached: a dynamic supervisor runs its ``max_children``.
        SupervisorError: a spec where a dynamic supervisor's template wants
            args, or args where a spec is wanted.
        CallError: the supervisor is not running.
    """
    if isinstance(spec, list):
        spec = tuple(spec)
    if not isinstance(spec, (ChildSpec, tuple)):
        raise TypeError(f"start_child takes a ChildSpec (or a template's args as a tuple), got {spec!r}")
    return _call(via, sup, ("start_child", spec), timeout)  # type: ignore[no-any-return]


def terminate_child(via: Caller, sup: Any, id: Hashable, *, timeout: float | None = None) -> None:
    """Stop child ``id`` as its spec says; its spec stays (unless temporary).

    A :class:`DynamicSupervisor` names its children by pid: pass the pid;
    the child is stopped and forgotten.

    Raises:
        ChildNotFound: no such child.
    """
    _call(via, sup, ("terminate_child", id), timeout)


def restart_child(via: Caller, sup: Any, id: Hashable, *, timeout: float | None = None) -> Pid | None:
    """Start the stopped child ``id`` again; returns its new pid.

    Raises:
        ChildNotFound: no child ``id``.
        StillRunning: the child is running.
        ChildStartError: it failed to start.
    """
    return _call(via, sup, ("restart_child", id), timeout)  # type: ignore[no-any-return]


def delete_child(via: Caller, sup: Any, id: Hashable, *, timeout: float | None = None) -> None:
    """Forget the stopped child ``id``.

    Raises:
        ChildNotFound: no child ``id``.
        StillRunning: the child is running (terminate it first).
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

    def start_child(self, spec: ChildSpec | tuple[Any, ...] | list[Any], *, timeout: float | None = None) -> Pid | None:
        """See :func:`start_child`."""
        return start_child(self.system, self.pid, spec, timeout=timeout)

    def terminate_child(self, id: Hashable, *, timeout: float | None = None) -> None:
        """See :func:`terminate_child`."""
        terminate_child(self.system, self.pid, id, timeout=timeout)

    def restart_child(self, id: Hashable, *, timeout: float | None = None) -> Pid | None:
        """See :func:`restart_child`."""
        return restart_child(self.system, self.pid, id, timeout=timeout)

    def delete_child(self, id: Hashable, *, timeout: float | None = None) -> None:
        """See :func:`delete_child`."""
        delete_child(self.system, self.pid, id, timeout=timeout)

    def which_children(self, *, timeout: float | None = None) -> list[ChildInfo]:
        """See :func:`which_children`."""
        return which_children(self.system, self.pid, timeout=timeout)

    def count_children(self, *, timeout: float | None = None) -> dict[str, int]:
        """See :func:`count_children`."""
        return count_children(self.system, self.pid, timeout=timeout)

    def stop(self, reason: Any = SHUTDOWN, timeout: float | None = 5.0) -> bool:
        """Stop the supervisor (its children first, newest first); wait for it."""
        return self.system.stop(self.pid, reason, timeout)
