"""Errors of the local runtime and the behaviours on it (processes, calls, supervisors, tasks, pools, state machines)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ..message import format_reason
from ..pid import Pid
from ._root import JoerlError


class ActorError(JoerlError):
    """Something went wrong with an actor or with the system running it."""


class NoProcError(ActorError):
    """The process does not exist (never did, or is dead)."""

    def __init__(self, pid: Any) -> None:
        super().__init__(f"no process {pid}")
        self.pid = pid


class MailboxFull(ActorError):
    """A bounded mailbox is full and the send was asked not to wait."""

    def __init__(self, pid: Any) -> None:
        super().__init__(f"mailbox of {pid} is full")
        self.pid = pid


class NameTaken(ActorError):
    """A registered name is already in use."""

    def __init__(self, name: str, owner: Any = None) -> None:
        msg = f"name {name!r} is already registered"
        if owner is not None:
            msg += f" to {owner}"
        super().__init__(msg)
        self.name = name
        self.owner = owner


class NotRegistered(ActorError):
    """No process is registered under this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no process registered as {name!r}")
        self.name = name


class ReceiveTimeout(ActorError, TimeoutError):
    """``receive(timeout=...)`` found no matching message in time."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"no matching message within {timeout}s")
        self.timeout = timeout


class SystemShutdown(ActorError):
    """The actor system has been shut down; nothing can be spawned."""


class CallError(ActorError):
    """A GenServer call failed: the server was dead, or died during the call."""

    def __init__(self, server: Any, reason: Any) -> None:
        super().__init__(f"call to {server} failed: {reason!r}")
        self.server = server
        self.reason = reason


class CallTimeout(CallError, TimeoutError):
    """A GenServer call got no reply within its timeout."""

    def __init__(self, server: Any, timeout: float) -> None:
        ActorError.__init__(self, f"call to {server} timed out after {timeout}s")
        self.server = server
        self.reason = "timeout"
        self.timeout = timeout


class StartError(ActorError):
    """A process failed to start (a GenServer's ``init`` raised or stopped)."""

    def __init__(self, reason: Any) -> None:
        super().__init__(f"failed to start: {reason!r}")
        self.reason = reason


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


class TaskError(JoerlError):
    """A task ended without a result.

    Attributes:
        pid: the task's pid.
        reason: its exit reason: the exception it raised (a local task), an
            :class:`~joerl.message.ExceptionReason` (a task on another node),
            or a plain reason such as ``"killed"``.
        traceback: the formatted traceback of the crash, from the node where
            it ran (None when the task did not raise).
    """

    def __init__(self, pid: Pid | None, reason: Any, traceback: str | None = None) -> None:
        detail = f":\n{traceback}" if traceback else ""
        super().__init__(f"task {pid} exited with {format_reason(reason)}{detail}")
        self.pid = pid
        self.reason = reason
        self.traceback = traceback


class TaskTimeout(TaskError, TimeoutError):
    """:meth:`Task.await_` got no result within its timeout (the task keeps running)."""

    def __init__(self, pid: Pid | None, timeout: float | None) -> None:
        JoerlError.__init__(self, f"task {pid} gave no result within {timeout}s")
        self.pid = pid
        self.reason = "timeout"
        self.traceback = None
        self.timeout = timeout


class PoolError(JoerlError):
    """A pool could not lend a worker."""


class PoolTimeout(PoolError, TimeoutError):
    """A blocking checkout got no worker within its timeout."""

    def __init__(self, pool: Any, timeout: float | None) -> None:
        super().__init__(f"no worker of pool {pool} became free within {timeout}s (all out, overflow used)")
        self.pool = pool
        self.timeout = timeout


class PoolFull(PoolError):
    """A non-blocking checkout found every worker out and the overflow used."""

    def __init__(self, pool: Any) -> None:
        super().__init__(f"pool {pool} has no free worker and no overflow left")
        self.pool = pool


class MaxChildrenReached(SupervisorError):
    """``start_child``: a dynamic supervisor already runs its ``max_children``."""

    def __init__(self, max_children: int) -> None:
        super().__init__(f"the supervisor already has its maximum of {max_children} children")
        self.max_children = max_children


class TransitionError(JoerlError, ValueError):
    """A machine that declares its ``transitions`` took one it did not declare.

    The machine crashes with this as its exit reason. Fields: ``machine`` (the
    class name), ``old`` and ``new`` (the states).
    """

    def __init__(self, machine: str, old: Any, new: Any) -> None:
        super().__init__(f"{machine}: transition {old!r} -> {new!r} is not declared in {machine}.transitions")
        self.machine = machine
        self.old = old
        self.new = new
