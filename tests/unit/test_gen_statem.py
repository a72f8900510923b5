"""GenStatem: both callback modes, state enter calls, the three kinds of
timeout with OTP's cancellation rules (and update, cancel, infinity, time
zero), postpone and inserted events in OTP's order, calls answered by Reply
actions (now or from a later state), casts, info, Stop / StopAndReply,
start / start_link and their failures, a supervised machine restarted after
a crash, declared transitions (checked and drawn as Mermaid).

Every wait is on an event the machine records (a queue) or a message, with a
deadline; a timeout that must *not* fire is checked against a later timeout
that must, so no test sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from gevent.event import AsyncResult, Event
from gevent.queue import Empty, Queue

from joerl import gen_server, gen_statem
from joerl.errors import CallError, StartError
from joerl.gen_statem import (
    HANDLE_EVENT_FUNCTION,
    KEEP_STATE_AND_DATA,
    EventTimeout,
    GenericTimeout,
    GenStatem,
    GenStatemRef,
    KeepState,
    NextEvent,
    NextState,
    Postpone,
    RepeatState,
    Reply,
    StateTimeout,
    Stop,
    StopAndReply,
    TransitionError,
)
from joerl.pid import Pid
from joerl.supervisor import ChildSpec, Supervisor, start_supervisor
from joerl.system import ActorSystem
from joerl.testing import Probe, wait_until

WAIT = 5.0
Script = Callable[[Any, Any, Any, Any], Any]


def kind(event_type: Any) -> Any:
    """An event type as recorded: ``"call"`` for ``("call", from_)``."""
    return "call" if isinstance(event_type, tuple) and event_type[0] == "call" else event_type


class Scripted(GenStatem):
    """A handle_event machine driven by a test's script; records every event
    as ``(state, kind, content)`` in ``events`` and in the ``seen`` queue."""

    callback_mode = HANDLE_EVENT_FUNCTION

    def __init__(self, script: Script, init: Any = ("idle", None)) -> None:
        self.script = script
        self.init_result = init
        self.events: list[tuple[Any, Any, Any]] = []
        self.seen: Queue = Queue()
        self.terminated: AsyncResult = AsyncResult()

    def init(self, args: Any) -> Any:
        if isinstance(self.init_result, BaseException):
            raise self.init_result
        return self.init_result

    def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        record = (state, kind(event_type), content)
        self.events.append(record)
        self.seen.put(record)
        return self.script(event_type, content, state, data)

    def terminate(self, reason: Any, state: Any, data: Any) -> None:
        self.terminated.set((reason, state, data))

    def next(self) -> tuple[Any, Any, Any]:
        try:
            return self.seen.get(timeout=WAIT)  # type: ignore[no-any-return]
        except Empty:
            raise AssertionError(f"no event within {WAIT}s; so far {self.events}") from None

    def until(self, content: Any) -> list[tuple[Any, Any, Any]]:
        """The events up to and including the first with ``content``."""
        got = []
        while True:
            event = self.next()
            got.append(event)
            if event[2] == content:
                return got


class Entering(Scripted):
    state_enter = True


def keep(*actions: Any) -> KeepState:
    return KeepState(actions=list(actions))


@pytest.fixture
def run(system: ActorSystem) -> Iterator[Callable[..., tuple[Scripted, GenStatemRef]]]:
    """``run(script, init=..., cls=Scripted)`` starts a scripted machine."""

    def start(
        script: Script, init: Any = ("idle", None), cls: type[Scripted] = Scripted
    ) -> tuple[Scripted, GenStatemRef]:
        machine = cls(script, init)
        return machine, gen_statem.start(system, machine)

    yield start


def down_reason(system: ActorSystem, pid: Pid) -> AsyncResult:
    result = AsyncResult()
    system.monitor_callback(pid, lambda _ref, _pid, reason: result.set(reason))
    return result


# -- the two callback modes -------------------------------------------------------


class Lock(GenStatem):
    """OTP's code lock in state functions mode, with a state enter call."""

    state_enter = True
    transitions = {("locked", "button"): ["locked", "open"], ("open", "state_timeout"): "locked"}
    initial_state = "locked"

    def __init__(self, open_for: float = 0.05) -> None:
        self.open_for = open_for
        self.log: list[Any] = []
        self.relocked = Event()

    def init(self, code: Any) -> Any:
        return ("locked", {"code": code, "tries": 0})

    def locked(self, event_type: Any, content: Any, data: dict[str, Any]) -> Any:
        self.log.append(("locked", kind(event_type), content))
        if event_type == "enter":
            if content == "open":
                self.relocked.set()
            return KEEP_STATE_AND_DATA
        if kind(event_type) == "call":
            data = {**data, "tries": data["tries"] + 1}
            if content == data["code"]:
                return NextState("open", data, [Reply(event_type[1], "open")])
            return KeepState(data, Reply(event_type[1], "wrong"))
        return KeepState()

    def open(self, event_type: Any, content: Any, data: dict[str, Any]) -> Any:
        self.log.append(("open", kind(event_type), content))
        if event_type == "enter":
            return KeepState(actions=[StateTimeout(self.open_for, "lock")])
        if event_type == "state_timeout":
            return NextState("locked")
        return KeepState(actions=[Reply(event_type[1], "already open")])


def test_state_functions_mode_calls_the_method_named_after_the_state(system: ActorSystem) -> None:
    lock = Lock()
    ref = gen_statem.start(system, lock, "1234")
    assert ref.call("0000") == "wrong"
    assert ref.call("1234") == "open"
    assert lock.relocked.wait(WAIT)
    assert lock.log == [
        ("locked", "enter", "locked"),  # the initial enter call: old state = itself
        ("locked", "call", "0000"),
        ("locked", "call", "1234"),
        ("open", "enter", "locked"),
        ("open", "state_timeout", "lock"),
        ("locked", "enter", "open"),
    ]


def test_handle_event_mode_takes_any_state_value(run: Any) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if kind(et) == "call":
            return NextState((state[0] + 1, "floor"), data + [content], Reply(et[1], (state, data)))
        return KeepState()

    _, ref = run(script, init=((0, "floor"), []))
    assert ref.call("up") == ((0, "floor"), [])
    assert ref.call("up") == ((1, "floor"), ["up"])


def test_a_state_without_a_state_function_fails_the_start_or_crashes(system: ActorSystem) -> None:
    class Bad(GenStatem):
        def __init__(self, state: Any) -> None:
            self.state0 = state

        def init(self, args: Any) -> Any:
            return (self.state0, None)

        def idle(self, et: Any, content: Any, data: Any) -> Any:
            return NextState(content)

    for state, error in (("nowhere", TypeError), (("a", 1), ValueError), ("terminate", ValueError)):
        with pytest.raises(StartError) as info:
            gen_statem.start(system, Bad(state))
        assert isinstance(info.value.reason, error), info.value.reason
    ref = gen_statem.start(system, Bad("idle"))
    reason = down_reason(system, ref.pid)
    ref.cast("missing")
    assert isinstance(reason.get(timeout=WAIT), TypeError)


def test_a_bad_callback_mode_fails_the_start(system: ActorSystem) -> None:
    class Odd(Lock):
        callback_mode = "state_function"  # a typo

    with pytest.raises(StartError) as info:
        gen_statem.start(system, Odd(), "1")
    assert "callback_mode" in str(info.value.reason)


# -- state enter calls ---------------------------------------------------------------


def test_enter_calls_follow_state_changes_and_repeat_state_only(run: Any) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if et == "enter":
            return KEEP_STATE_AND_DATA
        return {"keep": KeepState(), "same": NextState(state), "repeat": RepeatState(), "b": NextState("b")}[content]

    machine, ref = run(script, init=("a", None), cls=Entering)
    for msg in ("keep", "same", "repeat", "b"):
        ref.cast(msg)
    assert machine.until("b") == [
        ("a", "enter", "a"),
        ("a", "cast", "keep"),
        ("a", "cast", "same"),
        ("a", "cast", "repeat"),
        ("a", "enter", "a"),
        ("a", "cast", "b"),
    ]
    assert machine.next() == ("b", "enter", "a")


def test_an_enter_call_may_reply_and_set_timeouts_but_not_change_state(run: Any, system: ActorSystem) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if et == "enter":
            if state == "b":
                return KeepState("entered", [Reply(data, "from enter"), StateTimeout(0, "st")])
            if state == "c":
                return NextState("a")
            return KEEP_STATE_AND_DATA
        if kind(et) == "call":
            return NextState(content, et[1])
        return KeepState()

    machine, ref = run(script, init=("a", None), cls=Entering)
    assert ref.call("b") == "from enter"
    assert machine.until("st")[-1] == ("b", "state_timeout", "st")
    reason = down_reason(system, ref.pid)
    with pytest.raises(CallError):
        ref.call("c")
    assert "cannot change the state" in str(reason.get(timeout=WAIT))


@pytest.mark.parametrize("action", [Postpone(), NextEvent("internal", 1)])
def test_an_enter_call_may_not_postpone_or_insert_events(run: Any, system: ActorSystem, action: Any) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if et == "enter" and state == "b":
            return keep(action)
        return NextState("b") if content == "go" else KeepState()

    _, ref = run(script, init=("a", None), cls=Entering)
    reason = down_reason(system, ref.pid)
    ref.cast("go")
    assert isinstance(reason.get(timeout=WAIT), TypeError)


# -- postpone and inserted events ----------------------------------------------------


def test_postponed_events_are_retried_after_a_state_change_oldest_first(run: Any) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if state == "closed":
            if content == "open":
                return NextState("open", actions=[NextEvent("internal", "inserted")])
            if content == "stay":
                return NextState("closed")  # the same state: not a change, nothing retried
            return keep(Postpone())
        return KeepState()

    machine, ref = run(script, init=("closed", None))
    for msg in ("a", "b", "stay", "open", "c"):
        ref.cast(msg)
    assert machine.until("c") == [
        ("closed", "cast", "a"),
        ("closed", "cast", "b"),
        ("closed", "cast", "stay"),
        ("closed", "cast", "open"),
        ("open", "internal", "inserted"),  # inserted events first,
        ("open", "cast", "a"),  # then the postponed ones, in order,
        ("open", "cast", "b"),
        ("open", "cast", "c"),  # then the mailbox
    ]


def test_an_event_postponed_again_keeps_its_place(run: Any) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if content in ("a", "b") and state != 3:
            return keep(Postpone())
        if content == "next":
            return NextState(state + 1)
        return KeepState()

    machine, ref = run(script, init=(1, None))
    for msg in ("a", "b", "next", "next", "end"):
        ref.cast(msg)
    seen = [(s, c) for s, _, c in machine.until("end")]
    assert seen == [(1, "a"), (1, "b"), (1, "next"), (2, "a"), (2, "b"), (2, "next"), (3, "a"), (3, "b"), (3, "end")]


def test_inserted_events_run_before_queued_ones_in_order(run: Any) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "go":
            return keep(NextEvent("internal", 1), NextEvent("cast", 2), NextEvent("info", 3))
        if content == 1:
            return keep(NextEvent("internal", "1a"))  # before 2: inserted before what is queued
        return KeepState()

    machine, ref = run(script)
    ref.cast("go")
    ref.cast("after")
    assert [(k, c) for _, k, c in machine.until("after")] == [
        ("cast", "go"),
        ("internal", 1),
        ("internal", "1a"),
        ("cast", 2),
        ("info", 3),
        ("cast", "after"),
    ]


def test_init_actions_run_before_the_first_message(run: Any) -> None:
    machine, ref = run(lambda *a: KeepState(), init=("idle", None, [NextEvent("internal", "boot")]))
    ref.cast("first")
    assert [c for _, _, c in machine.until("first")] == ["boot", "first"]


def test_a_bad_next_event_type_crashes_the_machine(run: Any, system: ActorSystem) -> None:
    _, ref = run(lambda et, c, s, d: keep(NextEvent("enter", 1)) if c == "go" else KeepState())
    reason = down_reason(system, ref.pid)
    ref.cast("go")
    assert isinstance(reason.get(timeout=WAIT), ValueError)


# -- the event timeout ---------------------------------------------------------------


def arm(*actions: Any) -> Script:
    """A script: ``"arm"`` takes ``actions``; ``"move"`` goes to state ``"b"``; anything else keeps."""

    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "arm":
            return keep(*actions)
        if content == "move":
            return NextState("b")
        if content == "same":
            return NextState(state)
        if content == "repeat":
            return RepeatState()
        return KeepState()

    return script


def test_the_event_timeout_fires_when_no_event_comes(run: Any) -> None:
    machine, ref = run(arm(EventTimeout(0.05, "idle")))
    ref.cast("arm")
    assert machine.until("idle")[-1] == ("idle", "timeout", "idle")


def test_any_event_cancels_the_event_timeout(run: Any) -> None:
    machine, ref = run(arm(EventTimeout(0.2, "idle"), GenericTimeout("probe", 0.6, "probe")))
    ref.cast("arm")
    ref.cast("poke")  # queued before the timer can fire: it cancels it
    assert machine.until("probe")[-1] == ("idle", ("timeout", "probe"), "probe")
    assert [e for e in machine.events if e[1] == "timeout"] == []
    assert machine.running_timeouts() == [] and machine.dropped_timeouts == 0


def test_an_event_timeout_is_not_started_behind_queued_events(run: Any) -> None:
    machine, ref = run(arm(NextEvent("internal", "x"), EventTimeout(0, "never")))
    ref.cast("arm")
    ref.cast("after")
    assert [c for _, _, c in machine.until("after")] == ["arm", "x", "after"]


def test_a_zero_timeout_comes_before_messages_not_yet_received(run: Any) -> None:
    gate = Event()

    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "block":
            gate.wait(WAIT)
            return keep(EventTimeout(0, "zero"))
        return KeepState()

    machine, ref = run(script)
    ref.cast("block")
    assert machine.next()[2] == "block"  # the callback is running (and blocked)
    ref.cast("b")  # in the mailbox, not yet received
    gate.set()
    assert machine.next() == ("idle", "timeout", "zero")
    assert machine.next() == ("idle", "cast", "b")


def test_update_of_a_stopped_event_timeout_fires_at_once(run: Any) -> None:
    machine, ref = run(arm(EventTimeout("update", "now")))
    ref.cast("arm")
    assert machine.until("now")[-1] == ("idle", "timeout", "now")


# -- the state timeout ---------------------------------------------------------------


def test_the_state_timeout_fires_in_its_state_and_events_do_not_cancel_it(run: Any) -> None:
    machine, ref = run(arm(StateTimeout(0.1, "st")))
    for msg in ("arm", "poke", "same", "repeat"):  # none of these changes the state
        ref.cast(msg)
    assert [c for _, _, c in machine.until("st")] == ["arm", "poke", "same", "repeat", "st"]


def test_a_state_change_cancels_the_state_timeout(run: Any) -> None:
    machine, ref = run(arm(StateTimeout(0.2, "st"), GenericTimeout("probe", 0.6, "probe")))
    ref.cast("arm")
    ref.cast("move")
    assert machine.until("probe")[-1] == ("b", ("timeout", "probe"), "probe")
    assert [e for e in machine.events if e[1] == "state_timeout"] == []


def test_a_state_change_cancels_a_queued_zero_state_timeout(run: Any) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "arm":  # the zero timeout waits behind the inserted event...
            return keep(StateTimeout(0, "st"), NextEvent("internal", "leave"))
        if content == "leave":  # ...which changes the state: the timeout must not reach "b"
            return NextState("b")
        return KeepState()

    machine, ref = run(script)
    ref.cast("arm")
    ref.cast("after")
    assert [(s, c) for s, _, c in machine.until("after")] == [("idle", "arm"), ("idle", "leave"), ("b", "after")]


def test_a_new_state_timeout_replaces_the_running_one(run: Any) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "arm":
            return keep(StateTimeout(0.05, "first"))
        if content == "again":
            return keep(StateTimeout(0.15, "second"))
        return KeepState()

    machine, ref = run(script)
    ref.cast("arm")
    ref.cast("again")
    assert [c for _, _, c in machine.until("second")] == ["arm", "again", "second"]


def test_a_timer_that_fired_before_its_cancel_is_dropped_and_counted(run: Any, system: ActorSystem) -> None:
    gate = Event()

    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "arm":
            return keep(StateTimeout(0.01, "st"))
        if content == "block":
            gate.wait(WAIT)
            return keep(StateTimeout("cancel"))
        return KeepState()

    machine, ref = run(script)
    ref.cast("arm")
    ref.cast("block")
    assert machine.until("block")
    ctx = system.context_of(ref.pid)
    assert ctx is not None
    wait_until(lambda: ctx.mailbox_len == 1, WAIT, what="the state timeout's timer to fire")
    gate.set()
    ref.cast("after")
    assert [c for _, _, c in machine.until("after")] == ["after"]
    assert machine.dropped_timeouts == 1
    assert "st" not in [c for _, _, c in machine.events]


# -- generic timeouts ----------------------------------------------------------------


def test_generic_timeouts_run_side_by_side_and_survive_state_changes(run: Any) -> None:
    machine, ref = run(arm(GenericTimeout("slow", 0.2, "S"), GenericTimeout("fast", 0.05, "F")))
    ref.cast("arm")
    ref.cast("move")
    assert machine.until("S")[-2:] == [("b", ("timeout", "fast"), "F"), ("b", ("timeout", "slow"), "S")]


def test_generic_timeout_cancel_update_and_infinity(run: Any) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "arm":
            return keep(
                GenericTimeout("c", 0.1, "cancelled"),
                GenericTimeout("i", 0.1, "infinite"),
                GenericTimeout("u", 0.1, "old"),
                GenericTimeout("probe", 0.5, "probe"),
            )
        if content == "change":
            return keep(
                GenericTimeout("c", "cancel"), GenericTimeout("i", "infinity"), GenericTimeout("u", "update", "new")
            )
        return KeepState()

    machine, ref = run(script)
    ref.cast("arm")
    ref.cast("change")
    assert [c for _, _, c in machine.until("probe")] == ["arm", "change", "new", "probe"]


@pytest.mark.parametrize("bad", [-1, float("nan"), True, "soon"])
def test_a_bad_timeout_time_crashes_with_a_clear_error(run: Any, system: ActorSystem, bad: Any) -> None:
    _, ref = run(arm(StateTimeout(bad, "x")))
    reason = down_reason(system, ref.pid)
    ref.cast("arm")
    err = reason.get(timeout=WAIT)
    assert isinstance(err, ValueError) and "seconds" in str(err)


# -- calls, casts, info ----------------------------------------------------------------


def test_calls_reach_a_machine_through_every_call_path(run: Any, system: ActorSystem, probe: Probe) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if kind(et) == "call":
            return keep(Reply(et[1], (content, et[1].pid)))
        return KeepState()

    machine = Scripted(script)
    ref = gen_statem.start(system, machine, name="machine")
    caller = probe.pid
    assert ref.call(1)[0] == 1
    assert system.call(ref.pid, 2)[0] == 2
    assert system.call("machine", 3)[0] == 3
    assert gen_server.call("machine", 4, system=system)[0] == 4
    assert gen_statem.call(ref, 5)[0] == 5
    assert gen_statem.call("machine", 6, system=probe.ctx) == (6, caller)  # the caller named in From
    assert probe.ctx.call(ref, 7) == (7, caller)
    assert probe.pending() == []


def test_a_call_answered_from_a_later_state(run: Any) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if kind(et) == "call" and state == "idle":
            return NextState("busy", et[1])  # keep the From, answer later
        if content == "done":
            return NextState("idle", None, [Reply(data, "result")])
        return KeepState()

    machine, ref = run(script)
    call = gevent.spawn(ref.call, "job")
    assert machine.next() == ("idle", "call", "job")
    ref.cast("done")
    assert call.get(timeout=WAIT) == "result"


def test_reply_from_outside_a_transition(run: Any, system: ActorSystem) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if kind(et) == "call":
            gevent.spawn(gen_statem.reply, system, et[1], "from a greenlet")
        return KeepState()

    _, ref = run(script)
    assert ref.call("x") == "from a greenlet"


def test_casts_and_info(run: Any, system: ActorSystem, probe: Probe) -> None:
    machine, ref = run(lambda *a: KeepState())
    ref.cast("c1")
    gen_statem.cast(system, ref.pid, "c2")
    gen_statem.cast(probe.ctx, ref, "c3")
    gen_statem.cast(system, "nobody", "dropped")  # never fails
    system.send(ref.pid, ("plain", 1))
    assert [(k, c) for _, k, c in machine.until(("plain", 1))] == [
        ("cast", "c1"),
        ("cast", "c2"),
        ("cast", "c3"),
        ("info", ("plain", 1)),
    ]


def test_a_machine_calling_itself_gets_calling_self(system: ActorSystem) -> None:
    holder: AsyncResult = AsyncResult()

    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        try:
            holder.get().call("me")
        except CallError as err:
            return keep(Reply(et[1], err.reason))
        return KeepState()

    machine = Scripted(script)
    ref = gen_statem.start(system, machine)
    holder.set(ref)
    assert ref.call("go") == "calling_self"


# -- stopping --------------------------------------------------------------------------


def test_stop_runs_terminate_with_the_reason_state_and_data(run: Any, system: ActorSystem) -> None:
    machine, ref = run(lambda et, c, s, d: Stop("bye", "last data") if c == "stop" else KeepState())
    reason = down_reason(system, ref.pid)
    ref.cast("stop")
    assert reason.get(timeout=WAIT) == "bye"
    assert machine.terminated.get(timeout=WAIT) == ("bye", "idle", "last data")


def test_stop_and_reply_answers_then_stops(run: Any, system: ActorSystem) -> None:
    def script(et: Any, content: Any, state: Any, data: Any) -> Any:
        if content == "first":
            return KeepState(et[1])
        return StopAndReply("done", [Reply(data, "one"), Reply(et[1], "two")], "final")

    machine, ref = run(script)
    first = gevent.spawn(ref.call, "first")
    assert machine.next()[2] == "first"
    reason = down_reason(system, ref.pid)
    assert ref.call("second") == "two"
    assert first.get(timeout=WAIT) == "one"
    assert reason.get(timeout=WAIT) == "done"
    assert machine.terminated.get(timeout=WAIT) == ("done", "idle", "final")


def test_a_call_left_unanswered_by_a_stop_fails_with_the_reason(run: Any) -> None:
    _, ref = run(lambda *a: Stop("gone"))
    with pytest.raises(CallError) as info:
        ref.call("x")
    assert info.value.reason == "gone"


def test_ref_stop_and_a_crash_both_run_terminate(run: Any, system: ActorSystem) -> None:
    machine, ref = run(lambda *a: KeepState())
    assert ref.stop("enough")
    assert machine.terminated.get(timeout=WAIT)[0] == "enough"

    def crash(*a: Any) -> Any:
        raise RuntimeError("boom")

    machine, ref = run(crash)
    reason = down_reason(system, ref.pid)
    ref.cast("x")
    err = reason.get(timeout=WAIT)
    assert isinstance(err, RuntimeError)
    assert machine.terminated.get(timeout=WAIT)[0] is err


def test_returning_something_else_crashes_with_a_clear_error(run: Any, system: ActorSystem) -> None:
    _, ref = run(lambda *a: None)
    reason = down_reason(system, ref.pid)
    ref.cast("x")
    err = reason.get(timeout=WAIT)
    assert isinstance(err, TypeError) and "must return NextState" in str(err) and "None" in str(err)


# -- starting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("init", "reason"),
    [
        (RuntimeError("no"), RuntimeError),
        (Stop("refused"), "refused"),
        ("not a tuple", TypeError),
        (KeepState(), TypeError),
        (("idle", None, [Postpone()]), TypeError),
    ],
)
def test_a_failed_init_fails_the_start_and_leaves_nothing(system: ActorSystem, init: Any, reason: Any) -> None:
    with pytest.raises(StartError) as info:
        gen_statem.start(system, Scripted(lambda *a: KeepState(), init))
    got = info.value.reason
    assert got == reason if isinstance(reason, str) else isinstance(got, reason)
    wait_until(lambda: system.processes() == [], WAIT)


def test_start_checks_its_arguments_and_names(system: ActorSystem) -> None:
    with pytest.raises(TypeError):
        gen_statem.start(system, Scripted)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        gen_statem.start(system, object())  # type: ignore[arg-type]
    machine = Scripted(lambda *a: KeepState())
    ref = gen_statem.start(system, machine, name="one")
    with pytest.raises(ValueError):
        gen_statem.start(system, machine)
    with pytest.raises(StartError) as info:
        gen_statem.start(system, Scripted(lambda *a: KeepState()), name="one")
    assert info.value.reason == ("already_started", ref.pid)


def test_start_link_links_and_a_trapping_machine_ends_with_its_parent(system: ActorSystem) -> None:
    class Trapping(Scripted):
        def init(self, args: Any) -> Any:
            self.ctx.trap_exit(True)
            return ("idle", None)

    parent = Probe(system, timeout=WAIT)
    machine = Trapping(lambda *a: KeepState())
    ref = gen_statem.start_link(parent.ctx, machine)
    system.send(ref.pid, "hello")
    assert machine.next()[2] == "hello"
    parent.stop("going")
    assert machine.terminated.get(timeout=WAIT)[0] == "going"
    with pytest.raises(TypeError):
        gen_statem.start_link(system, Scripted(lambda *a: KeepState()))  # type: ignore[arg-type]


def test_a_failed_start_link_leaves_the_caller_alive(system: ActorSystem) -> None:
    parent = Probe(system, trap_exit=False, timeout=WAIT)
    with pytest.raises(StartError):
        gen_statem.start_link(parent.ctx, Scripted(lambda *a: KeepState(), RuntimeError("no")))
    assert system.is_process_alive(parent.pid)


# -- supervised ----------------------------------------------------------------------------


class Counter(GenStatem):
    """Counts calls; crashes on "crash"."""

    def init(self, args: Any) -> Any:
        return ("counting", 0)

    def counting(self, et: Any, content: Any, data: int) -> Any:
        if content == "crash":
            raise RuntimeError("counter crashed")
        return KeepState(data + 1, Reply(et[1], data + 1))


def test_a_supervised_machine_is_restarted_after_a_crash(system: ActorSystem) -> None:
    spec = ChildSpec("counter", lambda ctx: gen_statem.start_link(ctx, Counter(), name="counter"))
    sup = start_supervisor(system, Supervisor(children=[spec]))
    old = system.whereis("counter")
    assert old is not None
    assert system.call("counter", "inc") == 1
    assert system.call("counter", "inc") == 2
    with pytest.raises(CallError):
        system.call("counter", "crash")
    assert system.join(old, WAIT)
    new = wait_until(lambda: system.whereis("counter"), WAIT, what="the restart")
    assert new != old
    assert system.call("counter", "inc") == 1  # a fresh machine: init ran again
    assert [c.pid for c in sup.which_children()] == [new]


def test_a_machine_as_a_worker_child_starts_synchronously(system: ActorSystem) -> None:
    # ChildSpec.worker with a GenStatem class: init runs before the start returns,
    # so a failing init fails the supervisor's start instead of crashing later.
    sup = start_supervisor(system, Supervisor(children=[ChildSpec.worker("counter", Counter, name="counter")]))
    assert system.call("counter", "inc") == 1
    assert [c.id for c in sup.which_children()] == ["counter"]

    class Broken(Counter):
        def init(self, args: Any) -> Any:
            raise RuntimeError("no start")

    with pytest.raises(StartError):
        start_supervisor(system, Supervisor(children=[ChildSpec.worker("broken", Broken)]))


# -- declared transitions ---------------------------------------------------------------------


def test_to_mermaid_draws_the_declared_transitions() -> None:
    assert Lock.to_mermaid() == (
        "stateDiagram-v2\n"
        "    [*] --> locked\n"
        "    locked --> locked : button\n"
        "    locked --> open : button\n"
        "    open --> locked : state_timeout\n"
    )
    assert Lock.declared_states() == ["locked", "open"]


def test_to_mermaid_names_states_mermaid_cannot_take() -> None:
    class Odd(GenStatem):
        callback_mode = HANDLE_EVENT_FUNCTION
        initial_state = ("floor", 0)
        transitions = {
            (("floor", 0), "up; fast"): "end",
            ("end", 'say "hi"\nnow'): ("floor", 0),
            ("end", ""): "two words",
        }

    assert Odd.to_mermaid() == (
        "stateDiagram-v2\n"
        "    state \"('floor', 0)\" as s1\n"
        '    state "end" as s2\n'
        '    state "two words" as s3\n'
        "    [*] --> s1\n"
        "    s1 --> s2 : up#59; fast\n"
        "    s2 --> s1 : say #quot;hi#quot; now\n"
        "    s2 --> s3\n"
    )


def test_malformed_transitions_are_refused() -> None:
    class NoTable(GenStatem):
        pass

    class BadKey(GenStatem):
        transitions = {"locked": "open"}

    class Unhashable(GenStatem):
        transitions = {("a", "x"): [["b"]]}

    for cls in (NoTable, BadKey, Unhashable):
        with pytest.raises(TypeError):
            cls.to_mermaid()


def test_an_undeclared_transition_crashes_the_machine(system: ActorSystem) -> None:
    class Strict(Lock):
        def locked(self, event_type: Any, content: Any, data: Any) -> Any:
            if content == "jump":
                return NextState("nowhere")
            return super().locked(event_type, content, data)

        def nowhere(self, event_type: Any, content: Any, data: Any) -> Any:
            return KeepState(actions=[Reply(event_type[1], "here")]) if kind(event_type) == "call" else KeepState()

    ref = gen_statem.start(system, Strict(), "1")
    reason = down_reason(system, ref.pid)
    ref.cast("jump")
    err = reason.get(timeout=WAIT)
    assert isinstance(err, TransitionError) and (err.old, err.new) == ("locked", "nowhere")

    class Loose(Strict):
        check_transitions = False

    ref = gen_statem.start(system, Loose(), "1")
    ref.cast("jump")
    assert ref.call("x") == "here"


def test_an_undeclared_initial_state_fails_the_start(system: ActorSystem) -> None:
    class Elsewhere(Lock):
        def init(self, code: Any) -> Any:
            return ("ajar", None)

        def ajar(self, *a: Any) -> Any:
            return KeepState()

    with pytest.raises(StartError) as info:
        gen_statem.start(system, Elsewhere())
    assert "not a state of" in str(info.value.reason)


def test_the_default_init_starts_in_the_initial_state(system: ActorSystem) -> None:
    lock = Lock()
    lock.init = GenStatem.init.__get__(lock)  # type: ignore[method-assign]
    ref = gen_statem.start(system, lock, {"code": "7", "tries": 0})
    assert ref.call("7") == "open"
    with pytest.raises(StartError):
        gen_statem.start(system, type("NoInit", (GenStatem,), {})())
