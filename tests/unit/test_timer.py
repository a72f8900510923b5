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
