"""Tasks: async/await with timeouts, crashes with their tracebacks, links,
yield/yield_many/shutdown, the concurrent.futures bridge, the TaskSupervisor,
and tasks run by name on another node. Real processes; tests wait on events,
results and Down callbacks, never on sleeps."""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from typing import Any

import gevent
import pytest
from gevent.event import AsyncResult, Event

from joerl.actor import ActorContext
from joerl.message import ExceptionReason
from joerl.pid import Pid
from joerl.supervisor import MaxChildrenReached, SupervisorError, start_supervisor
from joerl.system import ActorSystem
from joerl.task import (
    Task,
    TaskError,
    TaskSupervisor,
    TaskTimeout,
    async_,
    async_nolink,
    supervisor_async,
    supervisor_async_nolink,
    to_future,
    yield_many,
)
from joerl.testing import node_cluster, wait_until

WAIT = 5.0


def add(a: int, b: int) -> int:
    return a + b


def boom(what: str) -> None:
    raise ValueError(f"boom: {what}")


def gated(gate: Event, value: Any) -> Any:
    assert gate.wait(30), "the test never opened the gate"
    return value


def watch(system: ActorSystem, pid: Pid) -> AsyncResult:
    result = AsyncResult()
    system.monitor_callback(pid, lambda _ref, _pid, reason: result.set(reason))
    return result


def test_await_returns_the_result(system: ActorSystem) -> None:
    task = async_nolink(system, add, 2, 3)
    assert task.await_(WAIT) == 5
    assert task.done() and task.await_(0) == 5  # the result stays
    assert Task.start(system, add, 1, 1).await_(WAIT) == 2
    assert async_(system, add, 4, 4).await_(WAIT) == 8  # from plain code: not linked


def test_await_times_out_and_the_task_keeps_running(system: ActorSystem) -> None:
    gate = Event()
    task = async_nolink(system, gated, gate, "late")
    with pytest.raises(TaskTimeout) as err:
        task.await_(0.05)
    assert isinstance(err.value, TimeoutError) and err.value.pid == task.pid
    assert system.is_process_alive(task.pid)
    gate.set()
    assert task.await_(WAIT) == "late"


def test_a_crash_reaches_the_awaiter_with_its_traceback(system: ActorSystem) -> None:
    task = async_nolink(system, boom, "here")
    with pytest.raises(TaskError) as err:
        task.await_(WAIT)
    assert isinstance(err.value.reason, ValueError)
    assert isinstance(err.value.__cause__, ValueError)
    assert err.value.traceback is not None
    assert "in boom" in err.value.traceback and "ValueError: boom: here" in err.value.traceback
    assert "boom: here" in str(err.value)


def test_async_from_an_actor_links_the_task_to_it(system: ActorSystem) -> None:
    crashed: AsyncResult = AsyncResult()

    def owner(ctx: ActorContext) -> None:
        task = async_(ctx, boom, "linked")
        crashed.set(task.pid)
        ctx.receive()  # the task's crash ends this process through the link

    ref = system.spawn_fn(owner)
    reason = watch(system, ref.pid)
    crashed.get(timeout=WAIT)
    assert isinstance(reason.get(timeout=WAIT), ValueError)


def test_the_owners_death_ends_a_linked_task(system: ActorSystem) -> None:
    gate = Event()
    got: AsyncResult = AsyncResult()

    def owner(ctx: ActorContext) -> None:
        got.set(async_(ctx, gated, gate, 1))
        ctx.receive()

    ref = system.spawn_fn(owner)
    task = got.get(timeout=WAIT)
    system.exit(ref.pid, "boom")
    with pytest.raises(TaskError) as err:
        task.await_(WAIT)
    assert err.value.reason == "boom" and err.value.traceback is None


def test_async_nolink_from_an_actor_does_not_link(system: ActorSystem) -> None:
    outcome: AsyncResult = AsyncResult()

    def owner(ctx: ActorContext) -> None:
        task = async_nolink(ctx, boom, "unlinked")
        try:
            task.await_(WAIT)
        except TaskError as err:
            outcome.set(type(err.reason).__name__)

    ref = system.spawn_fn(owner)
    reason = watch(system, ref.pid)
    assert outcome.get(timeout=WAIT) == "ValueError"
    assert reason.get(timeout=WAIT) == "normal"


def test_yield_and_yield_many(system: ActorSystem) -> None:
    gate = Event()
    slow = async_nolink(system, gated, gate, "slow")
    fast = async_nolink(system, add, 1, 2)
    bad = async_nolink(system, boom, "y")
    assert fast.yield_(WAIT) == ("ok", 3)
    status, reason = bad.yield_(WAIT)  # type: ignore[misc]
    assert status == "exit" and isinstance(reason, ValueError)
    assert slow.yield_(0.01) is None
    results = yield_many([slow, fast, bad], timeout=0.05)
    assert [t for t, _ in results] == [slow, fast, bad]
    assert results[0][1] is None and results[1][1] == ("ok", 3)
    gate.set()
    assert yield_many([slow], timeout=WAIT) == [(slow, ("ok", "slow"))]


def test_shutdown(system: ActorSystem) -> None:
    gate = Event()
    running = async_nolink(system, gated, gate, 1)
    assert running.shutdown(WAIT) is None
    assert not system.is_process_alive(running.pid)
    finished = async_nolink(system, add, 1, 1)
    assert finished.await_(WAIT) == 2
    assert finished.shutdown(WAIT) == ("ok", 2)


def test_shutdown_kills_a_task_that_ignores_it(system: ActorSystem) -> None:
    gate = Event()

    def trapping() -> None:
        # the task's own process traps exits (its ctx is not offered to fn,
        # so it traps through the system): it ignores "shutdown"
        ctx = system.context_of(task.pid)
        assert ctx is not None
        ctx.trap_exit(True)
        gate.set()
        gevent.sleep(60)

    task = async_nolink(system, trapping)
    assert gate.wait(WAIT)
    assert task.shutdown(0.1) is None
    assert not system.is_process_alive(task.pid)


def test_as_future_in_a_synchronous_script(system: ActorSystem) -> None:
    future = async_nolink(system, add, 20, 22).as_future()
    assert isinstance(future, concurrent.futures.Future)
    assert future.result(timeout=WAIT) == 42
    failed = to_future(async_nolink(system, boom, "future"))
    exc = failed.exception(timeout=WAIT)
    assert isinstance(exc, TaskError) and isinstance(exc.reason, ValueError)
    with pytest.raises(TaskError):
        failed.result(timeout=WAIT)
    gate = Event()
    pending = async_nolink(system, gated, gate, 1).as_future()
    with pytest.raises(concurrent.futures.TimeoutError):
        pending.result(timeout=0.01)
    assert not pending.cancel()
    gate.set()
    assert pending.result(timeout=WAIT) == 1
    unwatched_gate = Event()
    unwatched = async_nolink(system, gated, unwatched_gate, 2)
    settled = unwatched.as_future()
    unwatched_gate.set()
    assert unwatched.await_(WAIT) == 2
    wait_until(settled.done, WAIT, what="the future settled with nobody waiting on it")
    assert settled.result(0) == 2


def test_as_future_from_another_thread_and_done_callbacks(system: ActorSystem) -> None:
    gate = Event()
    task = async_nolink(system, gated, gate, "threaded")
    future = task.as_future()
    callbacks: list[Any] = []
    future.add_done_callback(lambda f: callbacks.append((f.result(), gevent.getcurrent())))
    out: queue.Queue[Any] = queue.Queue()
    thread = threading.Thread(target=lambda: out.put(future.result(timeout=30)))
    thread.start()
    gate.set()
    assert task.await_(WAIT) == "threaded"
    assert future.result(timeout=WAIT) == "threaded"
    thread.join(30)
    assert out.get_nowait() == "threaded"
    [(value, where)] = callbacks
    assert value == "threaded" and where is not gevent.get_hub()


def test_task_supervisor_runs_tasks_and_never_restarts_them(system: ActorSystem) -> None:
    sup = start_supervisor(system, TaskSupervisor(max_children=2), name="tasks")
    assert supervisor_async_nolink(system, "tasks", add, 1, 2).await_(WAIT) == 3
    bad = supervisor_async_nolink(system, sup, boom, "sup")
    with pytest.raises(TaskError) as err:
        bad.await_(WAIT)
    assert "boom: sup" in (err.value.traceback or "")
    gate = Event()
    a = supervisor_async_nolink(system, sup, gated, gate, "a")
    b = supervisor_async_nolink(system, sup, gated, gate, "b")
    assert {info.pid for info in sup.which_children()} == {a.pid, b.pid}
    with pytest.raises(MaxChildrenReached):
        supervisor_async_nolink(system, sup, add, 1, 1)
    gate.set()
    assert [a.await_(WAIT), b.await_(WAIT)] == ["a", "b"]
    sup.count_children()  # a round trip: the exits have been handled
    assert sup.which_children() == []


def test_supervised_tasks_stop_with_their_supervisor(system: ActorSystem) -> None:
    sup = start_supervisor(system, TaskSupervisor())
    task = supervisor_async_nolink(system, sup, gated, Event(), 1)
    assert sup.stop(timeout=WAIT)
    with pytest.raises(TaskError) as err:
        task.await_(WAIT)
    assert err.value.reason == "shutdown"


def test_supervisor_async_from_an_actor_links_the_task(system: ActorSystem) -> None:
    sup = start_supervisor(system, TaskSupervisor())
    started: AsyncResult = AsyncResult()

    def owner(ctx: ActorContext) -> None:
        started.set(supervisor_async(ctx, sup.pid, boom, "linked"))
        ctx.receive()

    ref = system.spawn_fn(owner)
    reason = watch(system, ref.pid)
    started.get(timeout=WAIT)
    assert isinstance(reason.get(timeout=WAIT), ValueError)
    assert system.is_process_alive(sup.pid)


def test_task_functions_by_name_and_bad_arguments(system: ActorSystem) -> None:
    sup = start_supervisor(system, TaskSupervisor({"add": add}))
    assert supervisor_async_nolink(system, sup, "add", 5, 6).await_(WAIT) == 11
    with pytest.raises(SupervisorError, match="no task function named 'nope'"):
        supervisor_async_nolink(system, sup, "nope")
    with pytest.raises(TypeError):
        async_nolink(system, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TaskSupervisor({1: add})  # type: ignore[dict-item]


@pytest.mark.timeout(60)
def test_a_task_on_another_node() -> None:
    with node_cluster("task_a", "task_b") as (a, b):
        start_supervisor(b.system, TaskSupervisor({"add": add, "boom": boom}), name="tasks")
        assert a.connect_to_node("task_b", timeout=10)
        task = supervisor_async_nolink(a.system, ("tasks", "task_b"), "add", 40, 2)
        assert task.pid.node != 0  # the task runs on task_b
        assert task.await_(10) == 42
        bad = supervisor_async_nolink(a.system, ("tasks", "task_b"), "boom", "remote")
        with pytest.raises(TaskError) as err:
            bad.await_(10)
        reason = err.value.reason
        assert isinstance(reason, ExceptionReason)
        assert reason.type == "ValueError" and reason.message == "boom: remote"
        assert err.value.traceback is not None and "in boom" in err.value.traceback
        with pytest.raises(SupervisorError, match="no task function"):
            supervisor_async_nolink(a.system, ("tasks", "task_b"), "missing")
