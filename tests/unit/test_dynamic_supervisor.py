"""DynamicSupervisor: children started at run time from a template with args
or from whole specs, max_children, terminate by pid, restart types and
intensity, and the parallel shutdown of all children. Real processes; tests
wait on Down callbacks, joins and events, never on sleeps."""

from __future__ import annotations

from typing import Any

import gevent
import pytest
from gevent.event import AsyncResult, Event

from joerl.actor import Actor, ActorContext
from joerl.errors import CallError, StartError
from joerl.message import Exit
from joerl.pid import Pid
from joerl.supervisor import (
    IGNORE,
    ChildInfo,
    ChildNotFound,
    ChildSpec,
    ChildStartError,
    DynamicSupervisor,
    MaxChildrenReached,
    Supervisor,
    SupervisorError,
    SupervisorRef,
    start_child,
    start_supervisor,
    terminate_child,
)
from joerl.system import ActorSystem

WAIT = 5.0


class Worker(Actor):
    """Records (name, its pid) on start; "crash" raises, "stop" ends normally."""

    def __init__(self, started: list[tuple[str, Pid]], name: str) -> None:
        self.started_list = started
        self.name = name

    def started(self, ctx: ActorContext) -> None:
        self.started_list.append((self.name, ctx.pid))

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if msg == "crash":
            raise RuntimeError(f"{self.name} crashed on purpose")
        if msg == "stop":
            ctx.stop()


def watch(system: ActorSystem, pid: Pid | None) -> AsyncResult:
    """The exit reason of ``pid``, once it has ended."""
    assert pid is not None
    result = AsyncResult()
    system.monitor_callback(pid, lambda _ref, _pid, reason: result.set(reason))
    return result


def end(system: ActorSystem, sup: SupervisorRef, pid: Pid, msg: str) -> Any:
    """Make child ``pid`` end; return its reason once the supervisor has handled the exit."""
    reason = watch(system, pid)
    system.send(pid, msg)
    assert system.join(pid, WAIT)
    sup.count_children()  # a round trip: the Exit has been handled
    return reason.get(timeout=WAIT)


def template_sup(system: ActorSystem, restart: str = "permanent", **kw: Any) -> tuple[SupervisorRef, list[Any]]:
    started: list[tuple[str, Pid]] = []
    spec = ChildSpec.worker("worker", Worker, started, restart=restart)
    return start_supervisor(system, DynamicSupervisor(spec, **kw)), started


def test_template_children_get_the_args_of_start_child(system: ActorSystem) -> None:
    sup, started = template_sup(system)
    a = sup.start_child(("a",))
    b = start_child(system, sup.pid, ["b"])
    assert started == [("a", a), ("b", b)]
    assert sup.which_children() == [ChildInfo("worker", a, "worker"), ChildInfo("worker", b, "worker")]
    assert sup.count_children() == {"specs": 2, "active": 2, "supervisors": 0, "workers": 2}
    assert system.is_process_alive(a) and system.is_process_alive(b)


def test_without_a_template_start_child_takes_whole_specs(system: ActorSystem) -> None:
    started: list[tuple[str, Pid]] = []
    sup = start_supervisor(system, DynamicSupervisor())
    a = sup.start_child(ChildSpec.worker("x", Worker, started, "x"))
    b = sup.start_child(ChildSpec.worker_fn("y", lambda ctx: ctx.receive()))
    assert started == [("x", a)]
    assert [(i.id, i.pid) for i in sup.which_children()] == [("x", a), ("y", b)]
    with pytest.raises(SupervisorError, match="takes a ChildSpec"):
        sup.start_child(("args",))


def test_a_template_supervisor_refuses_a_spec_and_the_static_calls(system: ActorSystem) -> None:
    sup, _ = template_sup(system)
    with pytest.raises(SupervisorError, match="takes args"):
        sup.start_child(ChildSpec.worker_fn("z", lambda ctx: None))
    with pytest.raises(SupervisorError, match="named by pid"):
        sup.restart_child("worker")
    with pytest.raises(SupervisorError, match="named by pid"):
        sup.delete_child("worker")
    with pytest.raises(TypeError):
        sup.start_child("a")  # type: ignore[arg-type]


def test_a_static_supervisor_refuses_args_clearly(system: ActorSystem) -> None:
    sup = start_supervisor(system, Supervisor())
    with pytest.raises(SupervisorError, match="DynamicSupervisor"):
        sup.start_child(("a",))


def test_max_children(system: ActorSystem) -> None:
    sup, _ = template_sup(system, max_children=2)
    a = sup.start_child(("a",))
    sup.start_child(("b",))
    with pytest.raises(MaxChildrenReached) as err:
        sup.start_child(("c",))
    assert err.value.max_children == 2 and "maximum of 2" in str(err.value)
    assert sup.count_children()["active"] == 2
    assert a is not None
    sup.terminate_child(a)
    assert sup.start_child(("c",)) is not None


def test_terminate_child_by_pid(system: ActorSystem) -> None:
    sup, _ = template_sup(system)
    a = sup.start_child(("a",))
    b = sup.start_child(("b",))
    reason = watch(system, a)
    terminate_child(system, sup.pid, a)
    assert reason.get(timeout=WAIT) == "shutdown"
    assert [i.pid for i in sup.which_children()] == [b]  # forgotten, not restarted
    with pytest.raises(ChildNotFound):
        sup.terminate_child(a)
    with pytest.raises(ChildNotFound):
        sup.terminate_child("not a pid")


def test_permanent_child_restarts_with_its_args(system: ActorSystem) -> None:
    sup, started = template_sup(system)
    a = sup.start_child(("a",))
    assert a is not None
    assert isinstance(end(system, sup, a, "crash"), RuntimeError)
    [(name, new)] = [s for s in started if s[1] != a]
    assert name == "a" and new != a
    assert [i.pid for i in sup.which_children()] == [new]
    assert end(system, sup, new, "stop") == "normal"  # permanent: restarted after a normal exit too
    assert len(started) == 3 and started[-1][0] == "a"


def test_transient_child_restarts_only_after_a_crash(system: ActorSystem) -> None:
    sup, started = template_sup(system, restart="transient")
    a = sup.start_child(("a",))
    assert a is not None
    end(system, sup, a, "crash")
    assert len(started) == 2
    new = started[-1][1]
    assert end(system, sup, new, "stop") == "normal"
    assert sup.which_children() == [] and len(started) == 2


def test_temporary_child_is_never_restarted(system: ActorSystem) -> None:
    sup, started = template_sup(system, restart="temporary")
    a = sup.start_child(("a",))
    assert a is not None
    end(system, sup, a, "crash")
    assert sup.which_children() == [] and len(started) == 1


def test_restart_intensity_stops_the_supervisor_and_its_children(system: ActorSystem) -> None:
    sup, started = template_sup(system, intensity=2, period=60.0)
    a = sup.start_child(("a",))
    other = sup.start_child(("other",))
    gone = watch(system, sup.pid)
    other_gone = watch(system, other)
    pid = a
    for _ in range(2):
        assert pid is not None
        end(system, sup, pid, "crash")
        pid = started[-1][1]
    system.send(pid, "crash")  # the third restart within the period: too many
    assert gone.get(timeout=WAIT) == "shutdown"
    assert other_gone.get(timeout=WAIT) == "shutdown"


def test_ignore_and_failed_starts_leave_no_child(system: ActorSystem) -> None:
    def start(ctx: ActorContext, what: str) -> Any:
        if what == "ignore":
            return IGNORE
        if what == "fail":
            raise ValueError("no")
        return ctx.spawn_link(lambda c: c.receive())

    sup = start_supervisor(system, DynamicSupervisor(ChildSpec("t", start)))
    assert sup.start_child(("ignore",)) is None
    with pytest.raises(ChildStartError) as err:
        sup.start_child(("fail",))
    assert isinstance(err.value.reason, ValueError)
    assert sup.count_children()["specs"] == 0
    assert sup.start_child(("ok",)) is not None


class Slow(Actor):
    """Traps exits; on "shutdown" it records it and stops only once ``all_told`` is set
    (or, when ``stubborn``, never)."""

    def __init__(self, told: list[Pid], n: int, all_told: Event, stubborn: bool = False) -> None:
        self.told, self.n, self.all_told, self.stubborn = told, n, all_told, stubborn

    def started(self, ctx: ActorContext) -> None:
        ctx.trap_exit(True)

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if isinstance(msg, Exit) and msg.reason == "shutdown":
            self.told.append(ctx.pid)
            if len(self.told) == self.n:
                self.all_told.set()
            if self.stubborn:
                gevent.sleep(60)  # ignores the shutdown: must be killed
            assert self.all_told.wait(60), "children were stopped one at a time"
            ctx.stop("shutdown")


def test_shutdown_stops_all_children_in_parallel(system: ActorSystem) -> None:
    told: list[Pid] = []
    all_told = Event()
    n = 4
    spec = ChildSpec.worker("slow", Slow, told, n, all_told, shutdown=120.0)
    sup = start_supervisor(system, DynamicSupervisor(spec))
    children = [sup.start_child(()) for _ in range(n)]
    reasons = [watch(system, pid) for pid in children]
    # A one-at-a-time shutdown would wait on the first child, which waits for
    # the others to be told: only a parallel shutdown ends.
    assert sup.stop(timeout=30.0)
    assert [r.get(timeout=WAIT) for r in reasons] == ["shutdown"] * n
    assert set(told) == set(children)


def test_each_child_gets_its_own_shutdown_timeout(system: ActorSystem) -> None:
    told: list[Pid] = []
    all_told = Event()
    all_told.set()
    sup = start_supervisor(system, DynamicSupervisor())
    polite = sup.start_child(ChildSpec.worker("p", Slow, told, 2, all_told, shutdown=60.0))
    stubborn = sup.start_child(ChildSpec.worker("s", Slow, told, 2, all_told, True, shutdown=0.2))
    brutal = sup.start_child(ChildSpec.worker("b", Slow, told, 2, all_told, shutdown="brutal_kill"))
    reasons = {pid: watch(system, pid) for pid in (polite, stubborn, brutal)}
    assert sup.stop(timeout=30.0)
    assert reasons[polite].get(timeout=WAIT) == "shutdown"
    assert reasons[stubborn].get(timeout=WAIT) == "killed"
    assert reasons[brutal].get(timeout=WAIT) == "killed"


def test_nested_under_a_static_supervisor(system: ActorSystem) -> None:
    started: list[tuple[str, Pid]] = []
    pool_spec = ChildSpec.worker("w", Worker, started)
    top = start_supervisor(
        system, Supervisor(children=[ChildSpec.supervisor("pool", lambda: DynamicSupervisor(pool_spec))])
    )
    [info] = top.which_children()
    assert info.type == "supervisor" and info.pid is not None
    child = start_child(system, info.pid, ("nested",))
    assert started == [("nested", child)]
    reason = watch(system, child)
    assert top.stop(timeout=WAIT)
    assert reason.get(timeout=WAIT) == "shutdown"


def test_bad_arguments(system: ActorSystem) -> None:
    with pytest.raises(TypeError):
        DynamicSupervisor("not a spec")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DynamicSupervisor(max_children=-1)
    with pytest.raises(ValueError):
        DynamicSupervisor(intensity=-1)
    sup = DynamicSupervisor()
    start_supervisor(system, sup).stop()
    with pytest.raises(StartError):
        start_supervisor(system, sup)  # one process per instance


def test_calls_to_a_dead_dynamic_supervisor(system: ActorSystem) -> None:
    sup, _ = template_sup(system)
    assert sup.stop()
    with pytest.raises(CallError):
        sup.start_child(("a",))
