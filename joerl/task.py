"""Tasks: a function run as a process, its result awaited with a timeout
(Elixir's ``Task`` and ``Task.Supervisor``).

:func:`async_` runs ``fn(*args)`` in a new process, linked to the calling
actor (:func:`async_nolink`, :meth:`Task.start`: never linked);
:meth:`Task.await_`, :meth:`Task.yield_`, :func:`yield_many` and
:meth:`Task.shutdown` collect or end it; a crash reaches the awaiter as a
:class:`TaskError` carrying the task's traceback text. A
:class:`TaskSupervisor` runs tasks under a tree, on this node or (functions
it registered by name) on another one. :meth:`Task.as_future` bridges to
:class:`concurrent.futures.Future`. The result travels through a gevent
``AsyncResult`` (set by the task's greenlet, or by a small receiver process
for a task on another node), so plain code with no mailbox can await it too.
"""

from __future__ import annotations

import concurrent.futures
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import gevent
from gevent.event import AsyncResult

from .actor import ActorContext
from .errors import ReceiveTimeout, TaskError, TaskTimeout
from .message import KILL, KILLED, SHUTDOWN, Down, ExceptionReason
from .pid import Pid
from .supervisor import ChildSpec, DynamicSupervisor, call_supervisor, start_child
from .system import ActorSystem

__all__ = [
    "Task",
    "TaskError",
    "TaskSupervisor",
    "TaskTimeout",
    "async_",
    "async_nolink",
    "supervisor_async",
    "supervisor_async_nolink",
    "to_future",
    "yield_many",
]

#: A remote task's answer to its caller's receiver: ``(REPLY, tag, outcome)``.
REPLY = "$joerl_task_reply"
_TASK_PID = "$joerl_task_pid"
_REMOTE = "$joerl_task_remote"

Via = ActorSystem | ActorContext
_Reply = tuple[Any, ...]


class Task:
    """A running (or finished) task: await it, yield it, shut it down.

    Made by :func:`async_`, :func:`async_nolink`, :meth:`Task.start` and the
    ``supervisor_async`` functions, never directly.

    Attributes:
        pid: the task's process (on another node for a remote task).
        system: the system it was started from.
    """

    __slots__ = ("pid", "system", "_result", "_owner", "_future")

    def __init__(self, system: ActorSystem, pid: Pid, result: AsyncResult, owner: ActorContext | None) -> None:
        self.system = system
        self.pid = pid
        self._result = result
        self._owner = owner  # linked to this actor
        self._future: TaskFuture | None = None

    def __repr__(self) -> str:
        return f"<Task {self.pid} {'done' if self._result.ready() else 'running'}>"

    @classmethod
    def start(cls, via: Via, fn: Callable[..., Any], *args: Any) -> Task:
        """Run ``fn(*args)`` as an unlinked task (the same as :func:`async_nolink`).

        Args:
            via: the ActorSystem, or the calling actor's ActorContext.
            fn: the function; its return value is the task's result.
            *args: its arguments.

        Returns:
            The Task.
        """
        return async_nolink(via, fn, *args)

    def done(self) -> bool:
        """True once the task has a result or has ended without one."""
        return bool(self._result.ready())

    def await_(self, timeout: float | None = 5.0) -> Any:
        """Wait for the task's result.

        Args:
            timeout: seconds to wait; None waits for ever.

        Returns:
            What ``fn`` returned.

        Raises:
            TaskTimeout: no result within ``timeout`` (the task keeps running:
                :meth:`shutdown` it if it should not).
            TaskError: the task ended without a result; chained to the
                exception it raised when it ran on this node.
        """
        if not self._result.ready() and not self._result.wait(timeout):
            raise TaskTimeout(self.pid, timeout)
        return self._value()

    def _value(self) -> Any:
        outcome = self._result.value  # ready: never waits (safe in the hub)
        if outcome[0] == "ok":
            return outcome[1]
        err = TaskError(self.pid, outcome[1], outcome[2])
        if isinstance(outcome[1], BaseException):
            raise err from outcome[1]
        raise err

    def yield_(self, timeout: float | None = 0.0) -> tuple[str, Any] | None:
        """The outcome if the task ends within ``timeout``, else None (it keeps running).

        Returns:
            ``("ok", value)``, ``("exit", reason)`` or None.
        """
        if not self._result.wait(timeout):
            return None
        outcome = self._result.value
        return (outcome[0], outcome[1])

    def shutdown(self, timeout: float | None = 5.0) -> tuple[str, Any] | None:
        """Stop the task: unlink it, send it ``"shutdown"``, and kill it if it
        has not ended within ``timeout`` seconds.

        Returns:
            ``("ok", value)`` if it had finished, ``("exit", reason)`` if it
            had crashed, None if it was stopped here.
        """
        owner = self._owner
        if owner is not None:
            owner.unlink(self.pid)
        if not self._result.ready():
            self.system.exit(self.pid, SHUTDOWN)
            if not self._result.wait(timeout):
                self.system.exit(self.pid, KILL)
                self._result.wait(5.0)
        if not self._result.ready():
            return None
        outcome = self._result.value
        if outcome[0] == "exit" and outcome[1] in (SHUTDOWN, KILLED):
            return None
        return (outcome[0], outcome[1])

    def as_future(self) -> TaskFuture:
        """This task's result as a :class:`concurrent.futures.Future` (one per task)."""
        if self._future is None:
            self._future = TaskFuture(self)
        return self._future


class TaskFuture(concurrent.futures.Future):  # type: ignore[type-arg]
    """A :class:`concurrent.futures.Future` settled by a :class:`Task`.

    ``result()`` and ``exception()`` called from the thread the task runs in
    wait cooperatively (a plain ``future.result()`` there would block the
    thread and with it the task); from any other thread they block as usual.
    A crashed task's future holds a :class:`TaskError`. ``cancel()`` returns
    False (the task is running): use :meth:`Task.shutdown`.
    """

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.set_running_or_notify_cancel()
        self._task = task
        self._thread = threading.get_ident()
        self._callbacks = False
        self._settler: gevent.Greenlet | None = None
        if task._result.ready():
            self._settle()
        else:
            task._result.rawlink(self._on_result)

    def _on_result(self, _result: Any) -> None:
        # In the hub: with no done-callbacks, settling runs no user code; with
        # some, settle (and run them) in a greenlet of our own.
        if self._callbacks:
            self._settler = gevent.spawn(self._settle)
        else:
            self._settle()

    def add_done_callback(self, fn: Callable[[Any], object]) -> None:
        """As :meth:`concurrent.futures.Future.add_done_callback`; ``fn`` runs in a
        greenlet (never in gevent's hub) or at once if the future is done."""
        self._callbacks = True
        super().add_done_callback(fn)

    def _settle(self) -> None:
        settler = self._settler
        if settler is not None and settler is not gevent.getcurrent():
            settler.kill(block=False)  # not started yet: it will not run
        if self.done():
            return
        try:
            value = self._task._value()
        except TaskError as err:
            self.set_exception(err)
        else:
            self.set_result(value)

    def _wait_here(self, timeout: float | None) -> None:
        if threading.get_ident() == self._thread and not self.done():
            if self._task._result.wait(timeout):
                self._settle()

    def result(self, timeout: float | None = None) -> Any:
        """The task's result (see :meth:`concurrent.futures.Future.result`).

        Raises:
            TimeoutError: not done within ``timeout``.
            TaskError: the task crashed.
        """
        self._wait_here(timeout)
        return super().result(0 if threading.get_ident() == self._thread else timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's :class:`TaskError`, or None (see :meth:`concurrent.futures.Future.exception`)."""
        self._wait_here(timeout)
        return super().exception(0 if threading.get_ident() == self._thread else timeout)


def to_future(task: Task) -> TaskFuture:
    """``task.as_future()``: the task's result as a :class:`concurrent.futures.Future`."""
    return task.as_future()


# -- running tasks ---------------------------------------------------------------


def _body(
    ctx: ActorContext, result: AsyncResult, fn: Callable[..., Any], args: tuple[Any, ...], link: Pid | None
) -> None:
    """A local task's process: run ``fn`` and put its outcome in ``result``."""
    if link is not None:
        ctx.link(link)  # a supervised async_: linked to its caller before it runs
    try:
        value = fn(*args)
    except Exception as exc:
        result.set(("exit", exc, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))))
        raise
    except BaseException as exc:  # an exit signal, a stop: no result
        if not result.ready():
            result.set(("exit", getattr(exc, "reason", KILLED), None))
        raise
    result.set(("ok", value))


def _watch(system: ActorSystem, pid: Pid, result: AsyncResult) -> None:
    """Settle ``result`` from the task's Down if its body never could (killed before it ran)."""

    def on_down(_ref: Any, _pid: Pid, reason: Any) -> None:
        if not result.ready():
            result.set(("exit", reason, None))

    system.monitor_callback(pid, on_down)


def async_(via: Via, fn: Callable[..., Any], *args: Any) -> Task:
    """Run ``fn(*args)`` in a new process and return its :class:`Task`.

    Args:
        via: the calling actor's ActorContext (the task is linked to it), or
            the ActorSystem from plain code (not linked).
        fn: the function; its return value is the result.
        *args: its arguments.

    Returns:
        The Task; :meth:`Task.await_` its result.

    Raises:
        TypeError: ``fn`` is not callable.
    """
    return _spawn(via, fn, args, link=isinstance(via, ActorContext))


def async_nolink(via: Via, fn: Callable[..., Any], *args: Any) -> Task:
    """As :func:`async_`, never linked: a crash reaches the caller only through :meth:`Task.await_`."""
    return _spawn(via, fn, args, link=False)


def _spawn(via: Via, fn: Callable[..., Any], args: tuple[Any, ...], link: bool) -> Task:
    if not callable(fn):
        raise TypeError(f"a task runs a function, got {fn!r}")
    result = AsyncResult()
    if isinstance(via, ActorContext):
        ref = (via.spawn_link if link else via.spawn)(_body, result, fn, args, None)
        system = via.system
    else:
        ref = via.spawn_fn(_body, result, fn, args, None)
        system = via
    _watch(system, ref.pid, result)
    return Task(system, ref.pid, result, via if link else None)  # type: ignore[arg-type]


def yield_many(tasks: Iterable[Task], timeout: float | None = 5.0) -> list[tuple[Task, tuple[str, Any] | None]]:
    """Wait up to ``timeout`` seconds, in all, for several tasks.

    Returns:
        ``[(task, outcome), ...]`` in the order given: ``("ok", value)``,
        ``("exit", reason)``, or None for a task still running (it keeps running).
    """
    tasks = list(tasks)
    gevent.wait([t._result for t in tasks], timeout=timeout)
    return [(t, t.yield_(0)) for t in tasks]


# -- the task supervisor ----------------------------------------------------------


class TaskSupervisor(DynamicSupervisor):
    """A dynamic supervisor of tasks (Elixir's ``Task.Supervisor``).

    Its children are temporary: a task that crashes is not restarted. Start
    it like any supervisor (``start_supervisor(system, TaskSupervisor(), name="tasks")``).

    Args:
        functions: functions that callers, on this node or another, may run
            here by name (``supervisor_async(via, ("tasks", "b"), "resize", img)``);
            nothing else can be run from another node.
        max_children: at most this many tasks at once.
        shutdown: seconds each task gets to stop when the supervisor stops.

    Raises:
        TypeError: a function is not callable or its name not a str.
    """

    CALLS: ClassVar[dict[str, tuple[Callable[..., _Reply], int]]] = dict(DynamicSupervisor.CALLS)

    def __init__(
        self,
        functions: Mapping[str, Callable[..., Any]] | None = None,
        *,
        max_children: int | None = None,
        shutdown: float | str | None = 5.0,
    ) -> None:
        super().__init__(max_children=max_children, intensity=0, period=1.0)
        self.functions = dict(functions or {})
        for name, fn in self.functions.items():
            if not isinstance(name, str) or not callable(fn):
                raise TypeError(f"functions maps names (str) to callables, got {name!r}: {fn!r}")
        self.shutdown = shutdown
        ChildSpec("task", _body, "temporary", shutdown)  # checks shutdown now

    def spec(self, start: Callable[..., Any]) -> ChildSpec:
        """The ChildSpec of one task started by ``start(ctx)``."""
        return ChildSpec("task", start, "temporary", self.shutdown)

    def _call_start_child(self, ctx: ActorContext, what: Any) -> _Reply:
        spec = self.spec(what.start) if isinstance(what, ChildSpec) else what  # always temporary
        return super()._call_start_child(ctx, spec)

    def _call_remote(self, ctx: ActorContext, name: Any, args: Any, reply_to: Any, tag: Any) -> _Reply:
        fn = self.functions.get(name) if isinstance(name, str) else None
        if fn is None:
            return ("error", "bad_request", (f"no task function named {name!r} on this supervisor",))
        start = lambda c: c.spawn_link(_remote_body, fn, tuple(args), reply_to, tag)  # noqa: E731
        return self._call_start_child(ctx, self.spec(start))


TaskSupervisor.CALLS.update(
    {"start_child": (TaskSupervisor._call_start_child, 1), _REMOTE: (TaskSupervisor._call_remote, 4)}
)


def _remote_body(ctx: ActorContext, fn: Callable[..., Any], args: tuple[Any, ...], reply_to: Pid, tag: Any) -> None:
    """A task run by name: its outcome goes to the caller's receiver as a message."""
    try:
        value = fn(*args)
    except Exception as exc:
        ctx.send(reply_to, (REPLY, tag, ("exit", tuple(ExceptionReason.from_exception(exc)))))
        raise
    ctx.send(reply_to, (REPLY, tag, ("ok", value)))


def _receiver(ctx: ActorContext, result: AsyncResult, tag: Any) -> None:
    """Waits, on the caller's node, for a by-name task's reply or its Down."""
    pid = ctx.receive(lambda m: m.__class__ is tuple and len(m) == 2 and m[0] == _TASK_PID)[1]
    if pid is None:
        return  # the start failed
    ref = ctx.monitor(pid)

    def is_reply(m: Any) -> bool:
        return m.__class__ is tuple and len(m) == 3 and m[0] == REPLY and m[1] == tag

    msg = ctx.receive(lambda m: is_reply(m) or (m.__class__ is Down and m.ref == ref))
    if msg.__class__ is Down:
        try:  # a reply is sent before the task ends: look once more
            msg = ctx.receive(is_reply, 0)
        except ReceiveTimeout:
            tb = msg.reason.traceback if isinstance(msg.reason, ExceptionReason) else None
            return result.set(("exit", msg.reason, tb))  # type: ignore[no-any-return]
    ctx.demonitor(ref, flush=True)
    status, value = msg[2]
    if status == "ok":
        return result.set(("ok", value))  # type: ignore[no-any-return]
    reason = ExceptionReason(*value)
    result.set(("exit", reason, reason.traceback))


def supervisor_async(via: Via, sup: Any, fn: Callable[..., Any] | str, *args: Any, timeout: float | None = 5.0) -> Task:
    """Run a task under the TaskSupervisor ``sup``; linked to the calling actor
    when ``via`` is its ActorContext and ``fn`` a function.

    Args:
        via: the ActorSystem, or the calling actor's ActorContext.
        sup: the supervisor: a pid, name, ref, or ``(name, node)`` on another node.
        fn: a function (``sup`` on this node), or the name of one of the
            supervisor's ``functions`` (any node; never linked).
        *args: its arguments (across nodes they must be serializable).
        timeout: seconds the supervisor may take to start it.

    Returns:
        The Task.

    Raises:
        SupervisorError: no function of that name; ``MaxChildrenReached``.
        CallError: the supervisor is not running (or its node is unreachable).
    """
    return _supervised(via, sup, fn, args, isinstance(via, ActorContext), timeout)


def supervisor_async_nolink(
    via: Via, sup: Any, fn: Callable[..., Any] | str, *args: Any, timeout: float | None = 5.0
) -> Task:
    """As :func:`supervisor_async`, never linked to the caller."""
    return _supervised(via, sup, fn, args, False, timeout)


def _supervised(
    via: Via, sup: Any, fn: Callable[..., Any] | str, args: tuple[Any, ...], link: bool, timeout: float | None
) -> Task:
    system = via.system if isinstance(via, ActorContext) else via
    result = AsyncResult()
    if isinstance(fn, str):
        tag = system.make_ref()
        receiver = system.spawn_fn(_receiver, result, tag).pid
        try:
            pid = call_supervisor(via, sup, (_REMOTE, fn, args, receiver, tag), timeout=timeout)
        except BaseException:
            system.send(receiver, (_TASK_PID, None))
            raise
        assert pid is not None
        system.send(receiver, (_TASK_PID, pid))
        return Task(system, pid, result, None)
    if not callable(fn):
        raise TypeError(f"a task runs a function or a function's name, got {fn!r}")
    owner = via.pid if link and isinstance(via, ActorContext) else None
    spec = ChildSpec("task", lambda c: c.spawn_link(_body, result, fn, args, owner), "temporary")
    pid = start_child(via, sup, spec, timeout=timeout)
    assert pid is not None
    _watch(system, pid, result)
    return Task(system, pid, result, via if owner is not None else None)  # type: ignore[arg-type]
