"""send_after: timers fire once, in delay order, cancel() prevents them, a
name is resolved when the timer fires, shutdown cancels what is pending."""

from __future__ import annotations

import time
from typing import Any

import pytest

from joerl.actor import ActorContext
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
