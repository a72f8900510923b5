"""Supervisor: strategies, restart types, intensity, shutdown of children and of
whole trees, and the dynamic child calls. Real actors throughout; tests wait on
Down callbacks, joins and recorded events, never on sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gevent.event import AsyncResult, Event

from joerl.actor import Actor, ActorContext
from joerl.errors import CallError, StartError
from joerl.gen_server import GenServer, Reply
from joerl.pid import Pid
from joerl.supervisor import (
    IGNORE,
    AlreadyPresent,
    AlreadyStarted,
    ChildInfo,
    ChildNotFound,
    ChildSpec,
    ChildStartError,
    StillRunning,
    Supervisor,
    SupervisorError,
    SupervisorRef,
    count_children,
    start_child,
    start_supervisor,
    which_children,
)
from joerl.system import ActorSystem
from joerl.testing import live_greenlets

WAIT = 5.0


# -- helpers -------------------------------------------------------------------


class Recorder:
    """A list of events that tests can wait on."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = Event()

    def add(self, kind: str, what: Any) -> None:
        self.events.append((kind, what))
        self._changed.set()

    def wait_len(self, n: int, timeout: float = WAIT) -> list[tuple[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < n:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {self.events} after {timeout}s, wanted {n} events"
            self._changed.wait(remaining)
        return list(self.events)

    def since(self, n: int) -> list[tuple[str, Any]]:
        return self.events[n:]


class Worker(Actor):
    """Records its start and stop; "crash" raises, "stop" ends it normally,
    ("exit", reason) ends it with reason; with trap=True it ignores shutdown."""

    def __init__(self, name: str, rec: Recorder, trap: bool = False) -> None:
        self.name = name
        self.rec = rec
        self.trap = trap

    def started(self, ctx: ActorContext) -> None:
        if self.trap:
            ctx.trap_exit(True)
        self.rec.add("start", self.name)

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if msg == "crash":
            raise RuntimeError(f"{self.name} crashed on purpose")
        if msg == "stop":
            ctx.stop()
        if isinstance(msg, tuple) and msg[0] == "exit":
            ctx.stop(msg[1])

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        self.rec.add("stop", self.name)


class RecordingSupervisor(Supervisor):
    """A Supervisor that records when it has stopped its children."""

    def __init__(self, name: str, rec: Recorder, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = name
        self.rec = rec

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        super().stopped(reason, ctx)
        self.rec.add("stop", self.name)


def worker(name: str, rec: Recorder, **kw: Any) -> ChildSpec:
    trap = kw.pop("trap", False)
    return ChildSpec.worker(name, Worker, name, rec, trap, **kw)


def watch(system: ActorSystem, pid: Pid | None) -> AsyncResult:
    """The exit reason of ``pid``, once it has ended."""
    assert pid is not None
    result = AsyncResult()
    system.monitor_callback(pid, lambda _ref, _pid, reason: result.set(reason))
    return result


def pids(sup: SupervisorRef) -> dict[Any, Pid | None]:
    return {info.id: info.pid for info in sup.which_children()}


def crash(system: ActorSystem, sup: SupervisorRef, id: Any, msg: Any = "crash") -> Any:
    """Make child ``id`` end and wait until its supervisor has handled the exit.

    The supervisor receives the child's Exit before the child's join returns,
    so a call made after the join is answered after the restart.
    """
    pid = pids(sup)[id]
    assert pid is not None
    reason = watch(system, pid)
    system.send(pid, msg)
    assert system.join(pid, WAIT)
    pids(sup)  # a round trip: the Exit has been handled
    return reason.get(timeout=WAIT)


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    before = set(map(id, live_greenlets()))
    s = ActorSystem()
    try:
        yield s
    finally:
        s.shutdown(WAIT)
        assert s.processes() == []
        assert [g for g in live_greenlets() if id(g) not in before] == []


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


# -- strategies ----------------------------------------------------------------


def test_one_for_one_restarts_only_the_crashed_child_with_a_new_pid(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor("one_for_one", [worker("a", rec), worker("b", rec)]))
    rec.wait_len(2)
    before = pids(sup)
    reason = crash(system, sup, "a")
    assert isinstance(reason, RuntimeError)
    rec.wait_len(4)
    after = pids(sup)
    assert after["a"] != before["a"] and after["a"] is not None
    assert system.is_process_alive(after["a"])
    assert after["b"] == before["b"]
    assert rec.since(2) == [("stop", "a"), ("start", "a")]


def test_rest_for_one_restarts_the_later_children_in_order(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor("rest_for_one", [worker(x, rec) for x in "abcd"]))
    rec.wait_len(4)
    before = pids(sup)
    crash(system, sup, "b")
    rec.wait_len(10)
    assert rec.since(4) == [
        ("stop", "b"),  # the crash
        ("stop", "d"),
        ("stop", "c"),  # the later ones, newest first
        ("start", "b"),
        ("start", "c"),
        ("start", "d"),  # restarted in start order
    ]
    after = pids(sup)
    assert after["a"] == before["a"]
    assert all(after[x] != before[x] for x in "bcd")
    assert [info.id for info in sup.which_children()] == list("abcd")


def test_one_for_all_restarts_every_child(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor("one_for_all", [worker(x, rec) for x in "abc"]))
    rec.wait_len(3)
    before = pids(sup)
    crash(system, sup, "b")
    rec.wait_len(9)
    assert rec.since(3) == [
        ("stop", "b"),
        ("stop", "c"),
        ("stop", "a"),
        ("start", "a"),
        ("start", "b"),
        ("start", "c"),
    ]
    after = pids(sup)
    assert all(after[x] != before[x] and system.is_process_alive(after[x]) for x in "abc")


def test_group_restart_drops_temporary_children_and_leaves_stopped_ones_stopped(
    system: ActorSystem, rec: Recorder
) -> None:
    sup = start_supervisor(
        system,
        Supervisor(
            "one_for_all",
            [
                worker("a", rec),
                worker("tmp", rec, restart="temporary"),
                worker("off", rec),
                worker("b", rec),
            ],
        ),
    )
    rec.wait_len(4)
    sup.terminate_child("off")
    crash(system, sup, "b")
    after = pids(sup)
    assert list(after) == ["a", "off", "b"]  # tmp is gone, off stays stopped
    assert after["off"] is None and after["a"] is not None and after["b"] is not None


# -- restart types -------------------------------------------------------------


@pytest.mark.parametrize("reason", ["normal", "shutdown", ("shutdown", "done")])
def test_transient_child_is_not_restarted_after_a_normal_exit(system: ActorSystem, rec: Recorder, reason: Any) -> None:
    sup = start_supervisor(system, Supervisor(children=[worker("t", rec, restart="transient")]))
    rec.wait_len(1)
    assert crash(system, sup, "t", ("exit", reason)) == reason
    assert sup.which_children() == [ChildInfo("t", None, "worker")]
    assert rec.events == [("start", "t"), ("stop", "t")]


def test_transient_child_is_restarted_after_an_abnormal_exit(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor(children=[worker("t", rec, restart="transient")]))
    rec.wait_len(1)
    old = pids(sup)["t"]
    crash(system, sup, "t", ("exit", "boom"))
    new = pids(sup)["t"]
    assert new is not None and new != old
    rec.wait_len(3)


@pytest.mark.parametrize("msg", ["crash", "stop"])
def test_temporary_child_is_never_restarted_and_is_removed(system: ActorSystem, rec: Recorder, msg: str) -> None:
    sup = start_supervisor(system, Supervisor(children=[worker("tmp", rec, restart="temporary"), worker("p", rec)]))
    rec.wait_len(2)
    crash(system, sup, "tmp", msg)
    assert [info.id for info in sup.which_children()] == ["p"]
    assert rec.since(2) == [("stop", "tmp")]


def test_a_start_that_forgot_to_link_is_supervised_anyway(system: ActorSystem, rec: Recorder) -> None:
    spec = ChildSpec("u", lambda ctx: ctx.spawn(Worker("u", rec)))
    sup = start_supervisor(system, Supervisor(children=[spec]))
    old = pids(sup)["u"]
    crash(system, sup, "u")
    assert pids(sup)["u"] not in (None, old)


def test_a_start_returning_ignore_starts_nothing(system: ActorSystem) -> None:
    sup = start_supervisor(system, Supervisor(children=[ChildSpec("i", lambda ctx: IGNORE)]))
    assert sup.which_children() == [ChildInfo("i", None, "worker")]
    assert sup.count_children() == {"specs": 1, "active": 0, "supervisors": 0, "workers": 1}


class Counter(GenServer):
    """A GenServer child: counts calls; init fails when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def init(self, args: Any) -> Any:
        if self.fail:
            raise ValueError("bad config")
        return 0

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "crash":
            raise RuntimeError("counter crashed")
        return Reply(state + 1, state + 1)


def test_a_gen_server_child_is_started_synchronously_and_restarted(system: ActorSystem) -> None:
    sup = start_supervisor(system, Supervisor(children=[ChildSpec.worker("count", Counter)]))
    old = pids(sup)["count"]
    assert system.call(old, "inc") == 1  # init has run
    with pytest.raises(CallError):
        system.call(old, "crash")
    assert system.join(old, WAIT)
    new = pids(sup)["count"]
    assert new not in (None, old)
    assert system.call(new, "inc") == 1  # a fresh server, fresh state


def test_a_gen_server_child_whose_init_fails_fails_the_start(system: ActorSystem) -> None:
    with pytest.raises(StartError) as failed:
        start_supervisor(system, Supervisor(children=[ChildSpec.worker("count", Counter, True)]))
    assert failed.value.reason[1][:2] == ("failed_to_start_child", "count")
    assert system.processes() == []


# -- intensity -----------------------------------------------------------------


def test_supervisor_gives_up_past_its_intensity_and_exits_with_shutdown(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor(children=[worker("a", rec), worker("b", rec)], intensity=2, period=60))
    rec.wait_len(2)
    sup_reason = watch(system, sup.pid)
    crash(system, sup, "b")
    crash(system, sup, "b")  # two restarts: allowed
    assert sup.is_alive()
    pid = pids(sup)["b"]
    system.send(pid, "crash")  # the third is one too many
    assert sup_reason.get(timeout=WAIT) == "shutdown"
    assert rec.events[-2:] == [("stop", "b"), ("stop", "a")]  # a was stopped before the supervisor ended
    assert system.processes() == []


def test_restarts_older_than_the_period_do_not_count(system: ActorSystem, rec: Recorder) -> None:
    now = [100.0]
    sup = start_supervisor(
        system, Supervisor(children=[worker("a", rec)], intensity=1, period=10, clock=lambda: now[0])
    )
    crash(system, sup, "a")
    now[0] += 10.5  # the first restart falls out of the window
    crash(system, sup, "a")
    assert sup.is_alive()
    now[0] += 1
    sup_reason = watch(system, sup.pid)
    system.send(pids(sup)["a"], "crash")
    assert sup_reason.get(timeout=WAIT) == "shutdown"


def test_intensity_zero_gives_up_at_the_first_exit(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor(children=[worker("a", rec)], intensity=0))
    sup_reason = watch(system, sup.pid)
    system.send(pids(sup)["a"], "crash")
    assert sup_reason.get(timeout=WAIT) == "shutdown"


def test_parent_restarts_a_child_supervisor_that_gave_up(system: ActorSystem, rec: Recorder) -> None:
    inner = lambda: RecordingSupervisor("inner", rec, children=[worker("w", rec)], intensity=1)  # noqa: E731
    outer = start_supervisor(system, Supervisor(children=[ChildSpec.supervisor("inner", inner), worker("x", rec)]))
    inner1 = SupervisorRef(system, pids(outer)["inner"])  # type: ignore[arg-type]
    x = pids(outer)["x"]
    inner_reason = watch(system, inner1.pid)
    crash(system, inner1, "w")  # one restart: fine
    w = pids(inner1)["w"]
    system.send(w, "crash")  # the second: inner gives up
    assert inner_reason.get(timeout=WAIT) == "shutdown"
    assert system.join(inner1.pid, WAIT)
    after = pids(outer)  # outer handled inner's exit before answering
    assert after["inner"] not in (None, inner1.pid)
    assert after["x"] == x  # one_for_one: the sibling is untouched
    inner2 = SupervisorRef(system, after["inner"])
    assert pids(inner2)["w"] not in (None, w)
    assert outer.is_alive()
    assert outer.which_children()[0].type == "supervisor"


def test_failed_restart_is_tried_again(system: ActorSystem, rec: Recorder) -> None:
    failures = [1]

    def start(ctx: ActorContext) -> Any:
        if rec.events and failures[0]:  # fail once, on the first restart
            failures[0] -= 1
            raise OSError("resource busy")
        return ctx.spawn_link(Worker("f", rec))

    sup = start_supervisor(system, Supervisor(children=[ChildSpec("f", start)], intensity=5))
    rec.wait_len(1)
    crash(system, sup, "f")
    rec.wait_len(3)  # started again after the retry
    assert rec.events[-1] == ("start", "f")
    assert pids(sup)["f"] is not None and failures == [0]


def test_restart_that_keeps_failing_ends_at_the_intensity(system: ActorSystem, rec: Recorder) -> None:
    def start(ctx: ActorContext) -> Any:
        if rec.events:
            raise OSError("always busy")
        return ctx.spawn_link(Worker("f", rec))

    sup = start_supervisor(system, Supervisor(children=[ChildSpec("f", start)], intensity=3))
    rec.wait_len(1)
    sup_reason = watch(system, sup.pid)
    system.send(pids(sup)["f"], "crash")
    assert sup_reason.get(timeout=WAIT) == "shutdown"


# -- stopping children ---------------------------------------------------------


def test_shutdown_timeout_kills_a_child_that_ignores_shutdown(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor(children=[worker("deaf", rec, trap=True, shutdown=0.2)]))
    rec.wait_len(1)
    reason = watch(system, pids(sup)["deaf"])
    t0 = time.monotonic()
    sup.terminate_child("deaf")
    elapsed = time.monotonic() - t0
    assert reason.get(timeout=WAIT) == "killed"
    assert 0.2 <= elapsed < 2.0
    assert rec.events == [("start", "deaf")]  # killed: its stopped hook never ran
    assert pids(sup) == {"deaf": None}


def test_shutdown_timeout_lets_a_cooperative_child_stop_cleanly(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor(children=[worker("w", rec, shutdown=5.0)]))
    rec.wait_len(1)
    reason = watch(system, pids(sup)["w"])
    sup.terminate_child("w")
    assert reason.get(timeout=WAIT) == "shutdown"
    assert rec.events == [("start", "w"), ("stop", "w")]


def test_brutal_kill_kills_at_once(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor(children=[worker("w", rec, shutdown="brutal_kill")]))
    rec.wait_len(1)
    reason = watch(system, pids(sup)["w"])
    sup.terminate_child("w")
    assert reason.get(timeout=WAIT) == "killed"
    assert rec.events == [("start", "w")]


def test_terminating_a_child_that_already_died_is_clean(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor(children=[worker("w", rec, restart="transient")]))
    rec.wait_len(1)
    pid = pids(sup)["w"]
    system.exit(pid, "kill")  # its Exit is queued at the supervisor...
    assert system.join(pid, WAIT)
    sup.terminate_child("w")  # ...and is consumed here, or was handled: either way no restart
    assert pids(sup) == {"w": None}


def test_terminating_a_child_supervisor_stops_its_subtree_first(system: ActorSystem, rec: Recorder) -> None:
    inner = lambda: RecordingSupervisor("inner", rec, children=[worker("i1", rec), worker("i2", rec)])  # noqa: E731
    sup = start_supervisor(system, Supervisor(children=[ChildSpec.supervisor("inner", inner), worker("w", rec)]))
    rec.wait_len(3)
    sup.terminate_child("inner")
    assert [e for e in rec.events if e[0] == "stop"] == [("stop", "i2"), ("stop", "i1"), ("stop", "inner")]
    assert sup.count_children() == {"specs": 2, "active": 1, "supervisors": 1, "workers": 1}


def test_one_for_all_copes_with_children_dying_together(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor("one_for_all", [worker("a", rec), worker("b", rec)]))
    before = pids(sup)
    for pid in before.values():
        system.exit(pid, "kill")
    for pid in before.values():
        assert system.join(pid, WAIT)
    after = pids(sup)
    assert all(after[x] not in (None, before[x]) and system.is_process_alive(after[x]) for x in "ab")
    assert sup.is_alive()


# -- dynamic children ----------------------------------------------------------


def test_dynamic_children(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor(children=[worker("a", rec)]))
    pid_b = sup.start_child(worker("b", rec))
    assert isinstance(pid_b, Pid) and system.is_process_alive(pid_b)
    assert [(i.id, i.pid) for i in sup.which_children()] == [("a", pids(sup)["a"]), ("b", pid_b)]
    with pytest.raises(AlreadyStarted) as started:
        sup.start_child(worker("b", rec))
    assert started.value.pid == pid_b

    with pytest.raises(StillRunning):
        sup.restart_child("b")
    with pytest.raises(StillRunning):
        sup.delete_child("b")

    sup.terminate_child("b")
    assert not system.is_process_alive(pid_b)
    assert pids(sup)["b"] is None
    with pytest.raises(AlreadyPresent):
        sup.start_child(worker("b", rec))

    new_b = sup.restart_child("b")
    assert new_b not in (None, pid_b) and system.is_process_alive(new_b)
    assert sup.count_children() == {"specs": 2, "active": 2, "supervisors": 0, "workers": 2}

    sup.terminate_child("b")
    sup.delete_child("b")
    assert [i.id for i in sup.which_children()] == ["a"]
    for call in (sup.terminate_child, sup.restart_child, sup.delete_child):
        with pytest.raises(ChildNotFound) as missing:
            call("b")
        assert missing.value.id == "b"


def test_dynamic_child_is_restarted_like_the_others(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor("rest_for_one", [worker("a", rec)]))
    sup.start_child(worker("b", rec))
    rec.wait_len(2)
    crash(system, sup, "a")
    rec.wait_len(6)
    assert rec.since(2) == [("stop", "a"), ("stop", "b"), ("start", "a"), ("start", "b")]


def test_terminating_a_temporary_child_forgets_it(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor())
    sup.start_child(worker("tmp", rec, restart="temporary"))
    sup.terminate_child("tmp")
    assert sup.which_children() == []


def test_start_child_failure_keeps_no_spec(system: ActorSystem) -> None:
    def bad(ctx: ActorContext) -> Any:
        raise ValueError("no config")

    sup = start_supervisor(system, Supervisor())
    with pytest.raises(ChildStartError) as failed:
        sup.start_child(ChildSpec("bad", bad))
    assert failed.value.id == "bad" and isinstance(failed.value.reason, ValueError)
    with pytest.raises(ChildStartError, match="expected a Pid"):
        sup.start_child(ChildSpec("none", lambda ctx: None))
    assert sup.which_children() == []
    assert sup.is_alive()


def test_calls_from_inside_an_actor_and_bad_requests(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, Supervisor())
    got = AsyncResult()

    def body(ctx: ActorContext) -> None:
        start_child(ctx, sup.pid, worker("w", rec))
        got.set(which_children(ctx, sup.pid))

    system.spawn_fn(body)
    assert [i.id for i in got.get(timeout=WAIT)] == ["w"]
    assert count_children(system, sup.pid)["active"] == 1
    assert system.call(sup.pid, "nonsense")[0] == "error"  # a bad request is refused...
    assert system.call(sup.pid, ("start_child",))[0] == "error"
    assert sup.is_alive()  # ...and does not kill the supervisor
    with pytest.raises(SupervisorError):  # ChildNotFound is one
        sup.delete_child(object())
    with pytest.raises(TypeError):
        sup.start_child("not a spec")  # type: ignore[arg-type]
    with pytest.raises(CallError):
        which_children(system, "nobody")


# -- starting and stopping supervisors -----------------------------------------


def test_a_failed_child_start_fails_the_supervisor_and_stops_the_started_ones(
    system: ActorSystem, rec: Recorder
) -> None:
    def bad(ctx: ActorContext) -> Any:
        raise ValueError("cannot open port")

    sup = Supervisor(children=[worker("a", rec), worker("b", rec), ChildSpec("bad", bad), worker("c", rec)])
    with pytest.raises(StartError) as failed:
        start_supervisor(system, sup)
    kind, (what, id, reason) = failed.value.reason
    assert (kind, what, id) == ("shutdown", "failed_to_start_child", "bad")
    assert isinstance(reason, ValueError)
    # the supervisor had stopped a and b, newest first, before it ended (b may
    # have been stopped before its started() ran: worker starts are asynchronous)
    assert [e for e in rec.events if e[0] == "stop"] == [("stop", "b"), ("stop", "a")]
    assert ("start", "c") not in rec.events
    assert system.processes() == []


def test_a_failed_nested_start_fails_the_parent(system: ActorSystem, rec: Recorder) -> None:
    def bad(ctx: ActorContext) -> Any:
        raise ValueError("nope")

    inner = lambda: Supervisor(children=[worker("w", rec), ChildSpec("bad", bad)])  # noqa: E731
    with pytest.raises(StartError) as failed:
        start_supervisor(system, Supervisor(children=[worker("x", rec), ChildSpec.supervisor("inner", inner)]))
    assert failed.value.reason[1][:2] == ("failed_to_start_child", "inner")
    assert system.processes() == []


def test_a_start_that_takes_too_long_fails_and_leaves_nothing(system: ActorSystem) -> None:
    never = Event()

    def slow(ctx: ActorContext) -> Any:
        never.wait()
        return IGNORE

    with pytest.raises(StartError, match="timeout"):
        start_supervisor(system, Supervisor(children=[ChildSpec("slow", slow)]), timeout=0.1)
    for pid in system.processes():  # the kill lands on the supervisor's next switch
        assert system.join(pid, WAIT)
    assert system.processes() == []


def test_exit_signal_from_the_parent_stops_the_tree_newest_first(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, RecordingSupervisor("sup", rec, children=[worker(x, rec) for x in "abc"]))
    rec.wait_len(3)
    reason = watch(system, sup.pid)
    system.exit(sup.pid, "shutdown")  # from plain code: the system is a top-level supervisor's parent
    assert reason.get(timeout=WAIT) == "shutdown"
    assert rec.since(3) == [("stop", "c"), ("stop", "b"), ("stop", "a"), ("stop", "sup")]


def test_stopping_a_supervisor_stops_its_children_first(system: ActorSystem, rec: Recorder) -> None:
    sup = start_supervisor(system, RecordingSupervisor("sup", rec, children=[worker(x, rec) for x in "ab"]))
    rec.wait_len(2)
    assert sup.stop()
    assert rec.since(2) == [("stop", "b"), ("stop", "a"), ("stop", "sup")]
    assert system.processes() == []


def test_system_shutdown_stops_a_nested_tree_in_order_and_leaves_nothing(rec: Recorder) -> None:
    before = set(map(id, live_greenlets()))
    system = ActorSystem()
    inner = lambda: RecordingSupervisor("inner", rec, "one_for_all", [worker("i1", rec), worker("i2", rec)])  # noqa: E731
    deep = lambda: RecordingSupervisor("deep", rec, children=[worker("d1", rec)])  # noqa: E731
    start_supervisor(
        system,
        RecordingSupervisor(
            "root",
            rec,
            children=[
                worker("w1", rec),
                ChildSpec.supervisor("inner", inner),
                worker("w2", rec),
                ChildSpec.supervisor("deep", deep),
                worker("w3", rec, trap=True, shutdown="brutal_kill"),
            ],
        ),
    )
    starts = rec.wait_len(6)
    assert starts == [("start", x) for x in ("w1", "i1", "i2", "w2", "d1", "w3")]  # nested starts are synchronous
    system.spawn_fn(lambda ctx: ctx.receive())  # a bystander, stopped after the tree
    system.shutdown(WAIT)
    assert rec.since(6) == [
        # w3 is brutally killed: no stop record
        ("stop", "d1"),
        ("stop", "deep"),
        ("stop", "w2"),
        ("stop", "i2"),
        ("stop", "i1"),
        ("stop", "inner"),
        ("stop", "w1"),
        ("stop", "root"),
    ]
    assert system.processes() == []
    assert [g for g in live_greenlets() if id(g) not in before] == []


# -- validation ----------------------------------------------------------------


def _start(ctx: ActorContext) -> Any:
    return None


@pytest.mark.parametrize(
    ("make", "error", "text"),
    [
        (lambda: ChildSpec("a", _start, restart="sometimes"), ValueError, "unknown restart type"),
        (lambda: ChildSpec("a", _start, shutdown=-1), ValueError, ">= 0"),
        (lambda: ChildSpec("a", _start, shutdown="soon"), TypeError, "shutdown must be"),
        (lambda: ChildSpec("a", _start, type="thread"), ValueError, "unknown child type"),
        (lambda: ChildSpec("a", "not callable"), TypeError, "start must be callable"),  # type: ignore[arg-type]
        (lambda: ChildSpec(["unhashable"], _start), TypeError, "hashable"),  # type: ignore[arg-type]
        (lambda: ChildSpec.worker("a", Worker("a", Recorder())), TypeError, "not an Actor instance"),  # type: ignore[arg-type]
        (lambda: Supervisor("one_for_some"), ValueError, "unknown supervisor strategy"),
        (lambda: Supervisor(intensity=-1), ValueError, "intensity"),
        (lambda: Supervisor(period=0), ValueError, "period"),
        (
            lambda: Supervisor(children=[ChildSpec("a", _start), ChildSpec("a", _start)]),
            ValueError,
            "duplicate child id 'a'",
        ),
        (lambda: Supervisor(children=["a"]), TypeError, "ChildSpec"),
    ],
)
def test_bad_arguments_get_clear_errors(make: Callable[[], Any], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        make()


def test_spec_defaults() -> None:
    assert ChildSpec("w", _start).shutdown == 5.0
    assert ChildSpec("s", _start, type="supervisor").shutdown is None
    assert ChildSpec("w", _start, shutdown="infinity").shutdown is None
    assert ChildSpec("w", _start, shutdown=0).shutdown == 0.0
    assert ChildSpec.supervisor("s", Supervisor).shutdown is None
    assert ChildSpec.worker("w", Worker, "w", None).restart == "permanent"


def test_a_supervisor_instance_runs_once(system: ActorSystem) -> None:
    sup = Supervisor()
    start_supervisor(system, sup)
    with pytest.raises(StartError):
        start_supervisor(system, sup)
