"""Timers: send_after fires once, in delay order, cancel() prevents it, a name
is resolved when the timer fires, shutdown cancels what is pending;
send_interval repeats until cancelled or its process ends; apply_after runs a
function in a new process; exit_after / kill_after send exit signals."""

from __future__ import annotations

import time
from typing import Any

import pytest

from joerl.actor import ActorContext
from joerl.message import Down, Exit
from joerl.pid import SYSTEM_PID
from joerl.system import ActorSystem
from joerl.timer import TimerRef


def test_send_after_fires_once(system: ActorSystem, probe: Any) -> None:
    t0 = time.monotonic()
    timer = system.send_after(0.05, probe.pid, "tick")
    assert isinstance(timer, TimerRef) and timer.active
    assert probe.receive() == "tick"
    assert time.monotonic() - t0 >= 0.04
    assert not timer.active
    assert timer.cancel() is False  # already fired
    assert probe.sync() == [], "only once"


def test_timers_fire_in_delay_order(system: ActorSystem, probe: Any) -> None:
    system.send_after(0.06, probe.pid, 3)
    system.send_after(0.0, probe.pid, 1)
    system.send_after(0.03, probe.pid, 2)
    assert [probe.receive(), probe.receive(), probe.receive()] == [1, 2, 3]


def test_cancel_prevents_the_message(system: ActorSystem, probe: Any) -> None:
    cancelled = system.send_after(0.01, probe.pid, "cancelled")
    system.send_after(0.05, probe.pid, "marker")
    assert cancelled.cancel() is True
    assert not cancelled.active
    assert cancelled.cancel() is False
    assert probe.receive() == "marker"  # fires after the cancelled one would have
    assert probe.pending() == []


def test_timer_to_a_name_resolves_when_it_fires(system: ActorSystem, probe: Any) -> None:
    system.send_after(0.03, "late-comer", "hello")  # nobody holds the name yet

    def body(ctx: ActorContext) -> None:
        ctx.send(probe.pid, ("got", ctx.receive(timeout=2.0)))

    system.spawn_fn(body, name="late-comer")
    assert probe.receive() == ("got", "hello")


def test_timer_to_a_vanished_name_or_dead_pid_is_dropped(system: ActorSystem, probe: Any) -> None:
    dead = system.spawn_fn(lambda ctx: None)
    assert dead.join(2.0)
    system.send_after(0, "nobody", "dropped")
    system.send_after(0, dead.pid, "dropped")
    system.send_after(0.03, probe.pid, "marker")
    assert probe.receive() == "marker"
    assert probe.pending() == []


def test_ctx_send_after_names_the_sender(system: ActorSystem, probe: Any) -> None:
    def body(ctx: ActorContext) -> None:
        ctx.send_after(0.01, probe.pid, "from actor")
        ctx.send_after(0.01, ctx.pid, "to self")
        ctx.send(probe.pid, ("self got", ctx.receive(timeout=2.0), ctx.sender))

    ref = system.spawn_fn(body)
    got = {probe.receive_with_sender(), probe.receive_with_sender()}
    assert got == {("from actor", ref.pid), (("self got", "to self", ref.pid), ref.pid)}


def test_plain_send_after_has_no_sender(system: ActorSystem, probe: Any) -> None:
    system.send_after(0, probe.pid, "x")
    assert probe.receive_with_sender() == ("x", None)


def test_timer_of_a_dead_actor_still_fires_for_others(system: ActorSystem, probe: Any) -> None:
    # a timer is not owned by the process that set it (as erlang:send_after/3 to another pid)
    ref = system.spawn_fn(lambda ctx: ctx.send_after(0.02, probe.pid, "after death"))
    assert ref.join(2.0)
    assert probe.receive() == "after death"


def test_negative_delay_raises(system: ActorSystem, probe: Any) -> None:
    with pytest.raises(ValueError, match="delay"):
        system.send_after(-1, probe.pid, "x")


def test_shutdown_cancels_pending_timers() -> None:
    system = ActorSystem()
    ref = system.spawn_fn(lambda ctx: ctx.receive())
    timers = [system.send_after(60, ref.pid, i) for i in range(100)]
    assert all(t.active for t in timers)
    system.shutdown()
    assert not any(t.active for t in timers)
    assert system._timers == set()


def test_many_timers_are_cheap(system: ActorSystem) -> None:
    got: list[int] = []

    def body(ctx: ActorContext) -> None:
        for i in range(2000):
            ctx.send_after(0.01, ctx.pid, i)
        for _ in range(2000):
            got.append(ctx.receive(timeout=2.0))

    assert system.spawn_fn(body).join(5.0)
    assert sorted(got) == list(range(2000))


# -- a timer to a pid dies with its process; destinations; counted drops ------------


def test_timer_to_a_pid_is_cancelled_when_that_process_exits(system: ActorSystem, probe: Any) -> None:
    target = system.spawn_fn(lambda ctx: ctx.receive())
    by_pid = system.send_after(60, target.pid, "never")
    by_ref = system.send_after(60, target, "never")  # an ActorRef is its pid
    assert by_pid.active and by_ref.active
    target.send("go")
    assert target.join(2.0)
    assert not by_pid.active and not by_ref.active
    assert by_pid.cancel() is False and by_ref.cancel() is False
    assert system.stats.dropped_by_reason["timer_cancelled"] == 2
    assert system._timers == set()


def test_timer_to_self_is_cancelled_when_the_process_exits(system: ActorSystem, probe: Any) -> None:
    def body(ctx: ActorContext) -> None:
        ctx.send(probe.pid, ctx.send_after(60, ctx.pid, "tick"))
        ctx.receive(match=lambda m: m == "quit")

    ref = system.spawn_fn(body)
    timer = probe.receive()
    assert timer.active
    ref.send("quit")
    assert ref.join(2.0)
    assert not timer.active and timer.cancel() is False


def test_timer_to_a_dead_pid_is_inactive_from_the_start(system: ActorSystem) -> None:
    dead = system.spawn_fn(lambda ctx: None)
    assert dead.join(2.0)
    timer = system.send_after(0, dead.pid, "x")
    assert not timer.active and timer.cancel() is False
    assert system.stats.dropped_by_reason == {"timer_cancelled": 1}


def test_timer_to_a_name_outlives_the_holder(system: ActorSystem, probe: Any) -> None:
    holder = system.spawn_fn(lambda ctx: ctx.receive(), name="svc")
    timer = system.send_after(0.05, "svc", "for whoever holds svc")
    holder.send("go")
    assert holder.join(2.0)
    assert timer.active  # timers to names are not cancelled
    system.register("svc", probe.pid)
    assert probe.receive() == "for whoever holds svc"


def test_send_after_takes_every_destination_send_takes(system: ActorSystem, probe: Any) -> None:
    system.register("p", probe.pid)
    system.send_after(0, probe.pid, 1)
    system.send_after(0.01, probe.ref, 2)
    system.send_after(0.02, "p", 3)
    system.send_after(0.03, ("p", "anynode"), 4)  # (name, node) of a local system

    def body(ctx: ActorContext) -> None:
        ctx.send_after(0.04, "p", 5)
        ctx.send_after(0.05, ("p", "anynode"), 6)

    system.spawn_fn(body)
    assert [probe.receive() for _ in range(6)] == [1, 2, 3, 4, 5, 6]
    for bad in (42, None, ("p",), object()):
        with pytest.raises(TypeError, match="cannot send"):
            system.send_after(0, bad, "x")


def test_timer_drops_are_counted(system: ActorSystem, probe: Any) -> None:
    system.send_after(0, "nobody", "dropped")
    system.send_after(0, ("nobody", "anynode"), "dropped")
    system.send_after(0.03, probe.pid, "marker")
    assert probe.receive() == "marker"
    assert system.stats.dropped_by_reason == {"unregistered": 2}
    assert system.stats.dropped == 2


# -- send_interval ----------------------------------------------------------------------


def test_send_interval_repeats_until_cancelled(system: ActorSystem, probe: Any) -> None:
    timer = system.send_interval(0.01, probe.pid, "tick")
    assert timer.active and timer.repeating
    assert [probe.receive() for _ in range(5)] == ["tick"] * 5
    assert timer.active, "still repeating"
    assert timer.cancel() is True
    assert not timer.active and timer.cancel() is False
    probe.sync()  # ticks already queued before the cancel
    system.send_after(0.05, probe.pid, "marker")
    assert probe.receive() == "marker"
    assert probe.pending() == [], "no tick after the cancel"
    assert system._timers == set()


def test_send_interval_to_a_pid_stops_when_that_process_exits(system: ActorSystem, probe: Any) -> None:
    def body(ctx: ActorContext) -> None:
        for _ in range(3):
            ctx.send(probe.pid, ctx.receive())

    target = system.spawn_fn(body)
    timer = system.send_interval(0.01, target.pid, "tick")
    assert [probe.receive() for _ in range(3)] == ["tick"] * 3
    assert target.join(2.0)
    assert not timer.active and system._timers == set()


def test_ctx_send_interval_to_a_name_stops_with_the_process_that_set_it(system: ActorSystem, probe: Any) -> None:
    system.register("sink", probe.pid)

    def body(ctx: ActorContext) -> None:
        ctx.send(probe.pid, ctx.send_interval(0.01, "sink", "tick"))
        ctx.receive(match=lambda m: m == "quit")

    setter = system.spawn_fn(body)
    timer = probe.receive(TimerRef)
    assert probe.receive_with_sender() == ("tick", setter.pid)
    assert timer.active
    setter.send("quit")
    assert setter.join(2.0)
    assert not timer.active, "bound to the process that set it, as OTP links it"


def test_send_interval_to_a_name_resolves_at_each_tick(system: ActorSystem, make_probe: Any) -> None:
    a, b = make_probe(), make_probe()
    system.register("who", a.pid)
    timer = system.send_interval(0.01, "who", "tick")
    assert a.receive() == "tick"
    system.unregister("who")
    system.register("who", b.pid)
    assert b.receive() == "tick"
    timer.cancel()


def test_send_interval_bad_arguments(system: ActorSystem, probe: Any) -> None:
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="interval"):
            system.send_interval(bad, probe.pid, "x")
    with pytest.raises(TypeError, match="cannot send"):
        system.send_interval(0.1, 42, "x")
    assert system._timers == set()


def test_send_interval_to_a_dead_pid_is_inactive_from_the_start(system: ActorSystem) -> None:
    dead = system.spawn_fn(lambda ctx: None)
    assert dead.join(2.0)
    timer = system.send_interval(0.01, dead.pid, "x")
    assert not timer.active
    assert system.stats.dropped_by_reason == {"timer_cancelled": 1}


def test_shutdown_cancels_interval_timers() -> None:
    system = ActorSystem()
    ref = system.spawn_fn(lambda ctx: ctx.receive())
    timer = system.send_interval(60, "anyone", "x")  # a name: bound to nobody
    bound = system.send_interval(60, ref.pid, "x")
    system.shutdown()
    assert not timer.active and not bound.active and system._timers == set()


# -- apply_after --------------------------------------------------------------------------


def test_apply_after_runs_the_function_in_a_new_process(system: ActorSystem, probe: Any) -> None:
    from gevent import getcurrent

    def report(tag: str, n: int) -> None:
        system.send(probe.pid, (tag, n, getcurrent() is not main))

    main = getcurrent()
    timer = system.apply_after(0.01, report, "ran", 7)
    assert timer.active
    assert probe.receive() == ("ran", 7, True)
    assert not timer.active


def test_apply_after_cancelled_runs_nothing(system: ActorSystem, probe: Any) -> None:
    timer = system.apply_after(0.01, system.send, probe.pid, "never")
    assert timer.cancel() is True
    system.send_after(0.05, probe.pid, "marker")
    assert probe.receive() == "marker"
    assert probe.pending() == []


def test_apply_after_logs_an_exception(system: ActorSystem, probe: Any, caplog: Any) -> None:
    def boom() -> None:
        system.send(probe.pid, "about to fail")
        raise RuntimeError("boom in apply_after")

    system.apply_after(0, boom)
    assert probe.receive() == "about to fail"
    from joerl.testing import wait_until

    wait_until(lambda: "boom in apply_after" in caplog.text, timeout=5.0)
    assert "apply_after" in caplog.text and "boom" in caplog.text


def test_apply_after_from_ctx_and_bad_arguments(system: ActorSystem, probe: Any) -> None:
    system.spawn_fn(lambda ctx: ctx.apply_after(0, system.send, probe.pid, "from ctx"))
    assert probe.receive() == "from ctx"
    with pytest.raises(TypeError, match="callable"):
        system.apply_after(0, "not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="delay"):
        system.apply_after(-1, print)


# -- exit_after / kill_after ----------------------------------------------------------


def test_exit_after_sends_an_exit_signal(system: ActorSystem, make_probe: Any) -> None:
    trapping = make_probe(trap_exit=True)
    watcher = make_probe()
    victim = system.spawn_fn(lambda ctx: ctx.receive())
    ref = system.monitor(watcher.pid, victim.pid)
    system.exit_after(0.01, victim.pid, "timeout")
    system.exit_after(0.01, trapping.pid, "timeout")
    assert watcher.receive() == Down(ref, victim.pid, "timeout")
    assert trapping.receive(Exit) == Exit(SYSTEM_PID, "timeout")


def test_exit_after_by_name_and_cancel(system: ActorSystem, make_probe: Any) -> None:
    watcher = make_probe()
    victim = system.spawn_fn(lambda ctx: ctx.receive(), name="victim")
    ref = system.monitor(watcher.pid, victim.pid)
    spared = system.exit_after(0.01, "victim", "first")
    assert spared.cancel()
    system.exit_after(0.02, ("victim", "anynode"), "second")
    assert watcher.receive() == Down(ref, victim.pid, "second")


def test_exit_after_to_a_process_that_ended_first_is_cancelled(system: ActorSystem, probe: Any) -> None:
    victim = system.spawn_fn(lambda ctx: ctx.receive())
    timer = system.exit_after(60, victim.pid, "late")
    victim.send("go")
    assert victim.join(2.0)
    assert not timer.active
    system.exit_after(0, "nobody", "x")
    system.send_after(0.03, probe.pid, "marker")
    assert probe.receive() == "marker"
    assert system.stats.dropped_by_reason == {"timer_cancelled": 1, "unregistered": 1}


def test_kill_after_cannot_be_trapped(system: ActorSystem, make_probe: Any) -> None:
    watcher = make_probe()

    def body(ctx: ActorContext) -> None:
        ctx.trap_exit(True)
        while True:
            ctx.receive()

    victim = system.spawn_fn(body)
    ref = system.monitor(watcher.pid, victim.pid)
    system.kill_after(0.01, victim.pid)
    assert watcher.receive() == Down(ref, victim.pid, "killed")


def test_ctx_exit_after_exits_self(system: ActorSystem, make_probe: Any) -> None:
    watcher = make_probe()

    def body(ctx: ActorContext) -> None:
        ctx.exit_after(0.01, "normal")  # from itself: ends it, as exit(self(), normal)
        ctx.receive()

    me = system.spawn_fn(body)
    ref = system.monitor(watcher.pid, me.pid)
    assert watcher.receive() == Down(ref, me.pid, "normal")


def test_ctx_exit_after_when_trapping_delivers_exit_from_self(system: ActorSystem, probe: Any) -> None:
    def body(ctx: ActorContext) -> None:
        ctx.trap_exit(True)
        ctx.exit_after(0.01, "wake up")
        ctx.send(probe.pid, ctx.receive(Exit))

    me = system.spawn_fn(body)
    assert probe.receive() == Exit(me.pid, "wake up")


def test_ctx_exit_after_and_kill_after_to_another(system: ActorSystem, make_probe: Any) -> None:
    trapping, watcher = make_probe(trap_exit=True), make_probe()
    victim = system.spawn_fn(lambda ctx: ctx.receive())
    ref = system.monitor(watcher.pid, victim.pid)

    def body(ctx: ActorContext) -> None:
        ctx.exit_after(0.01, trapping.pid, "from setter")
        ctx.kill_after(0.01, victim.pid)
        ctx.receive()

    setter = system.spawn_fn(body)
    assert trapping.receive(Exit) == Exit(setter.pid, "from setter")
    assert watcher.receive() == Down(ref, victim.pid, "killed")
    with pytest.raises(TypeError, match="exit_after"):
        ActorContext.exit_after(system.context_of(setter.pid), 0.1)  # type: ignore[arg-type, call-overload]


def test_ctx_kill_after_kills_self(system: ActorSystem, make_probe: Any) -> None:
    watcher = make_probe()

    def body(ctx: ActorContext) -> None:
        ctx.trap_exit(True)
        ctx.kill_after(0.01)
        while True:
            ctx.receive()

    me = system.spawn_fn(body)
    ref = system.monitor(watcher.pid, me.pid)
    assert watcher.receive() == Down(ref, me.pid, "killed")


def test_exit_after_refuses_a_name_on_another_node(system: ActorSystem) -> None:
    class FakeRouter:
        node_name = "here@host"

    system._router = FakeRouter()  # type: ignore[assignment]
    try:
        with pytest.raises(TypeError, match="not to a name on another node"):
            system.exit_after(0.1, ("svc", "there@host"), "x")
    finally:
        system._router = None
    assert system._timers == set()
