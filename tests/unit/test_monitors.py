"""Monitors: exactly one Down(ref, pid, reason), "noproc" for a pid already
gone, demonitor (and flush) at once, one-way, runtime callbacks."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from gevent.event import Event

from joerl.actor import ActorContext, ActorRef
from joerl.message import KILL, KILLED, NOPROC, NORMAL, SHUTDOWN, Down
from joerl.pid import Pid, Ref
from joerl.system import ActorSystem


class Boom(Exception):
    pass


def start_idle(system: ActorSystem, name: str | None = None) -> ActorRef:
    """Spawn a process that runs until it receives "quit" (and wait until it runs)."""
    running = Event()

    def body(ctx: ActorContext) -> None:
        running.set()
        ctx.receive(match=lambda m: m == "quit")

    ref = system.spawn_fn(body, name=name)
    assert running.wait(2.0)
    return ref


def test_exactly_one_down(system: ActorSystem, probe: Any) -> None:
    target = start_idle(system)
    ref = system.monitor(probe.pid, target.pid)
    assert isinstance(ref, Ref)
    target.send("quit")
    assert probe.receive_with_sender() == (Down(ref, target.pid, NORMAL), target.pid)
    assert probe.sync() == [], "nothing else"


@pytest.mark.parametrize("how, reason", [("stop", SHUTDOWN), ("exit", "boom"), ("exit", KILL), ("crash", None)])
def test_down_carries_the_reason(
    system: ActorSystem, probe: Any, caplog: pytest.LogCaptureFixture, how: str, reason: Any
) -> None:
    caplog.set_level(logging.CRITICAL, logger="joerl")
    err = Boom()

    def body(ctx: ActorContext) -> None:
        ctx.receive()
        raise err

    target = system.spawn_fn(body)
    ref = system.monitor(probe.pid, target.pid)
    if how == "stop":
        system.stop(target.pid, reason)
    elif how == "exit":
        system.exit(target.pid, reason)
    else:
        target.send("crash")
    expected = {"stop": reason, "exit": KILLED if reason == KILL else reason, "crash": err}[how]
    down = probe.receive()
    assert down == Down(ref, target.pid, expected)
    if how == "crash":
        assert down.reason is err


def test_monitor_dead_pid_gives_noproc(system: ActorSystem, probe: Any) -> None:
    dead = system.spawn_fn(lambda ctx: None)
    assert dead.join(2.0)
    ref = system.monitor(probe.pid, dead.pid)
    assert probe.receive() == Down(ref, dead.pid, NOPROC)
    never = Pid(0, 10**9)
    ref2 = system.monitor(probe.pid, never)
    assert probe.receive() == Down(ref2, never, NOPROC)
    assert probe.sync() == [], "nothing else"


def test_monitor_from_an_actor(system: ActorSystem, probe: Any) -> None:
    target = start_idle(system)
    dead = system.spawn_fn(lambda ctx: None)
    assert dead.join(2.0)

    def watcher(ctx: ActorContext) -> None:
        r1 = ctx.monitor(target.pid)
        r2 = ctx.monitor(dead.pid)
        ctx.send(target.pid, "quit")
        got = [ctx.receive(timeout=2.0), ctx.receive(timeout=2.0)]
        ctx.send(probe.pid, (r1, r2, got))

    system.spawn_fn(watcher)
    r1, r2, got = probe.receive()
    assert r1 != r2
    assert sorted(got, key=lambda d: d.ref) == sorted(
        [Down(r1, target.pid, NORMAL), Down(r2, dead.pid, NOPROC)], key=lambda d: d.ref
    )


def test_two_monitors_two_downs(system: ActorSystem, probe: Any) -> None:
    target = start_idle(system)
    r1 = system.monitor(probe.pid, target.pid)
    r2 = system.monitor(probe.pid, target.pid)
    assert r1 != r2
    system.exit(target.pid, "boom")
    assert {probe.receive(), probe.receive()} == {Down(r1, target.pid, "boom"), Down(r2, target.pid, "boom")}
    assert probe.sync() == [], "nothing else"


def test_monitor_by_name(system: ActorSystem, probe: Any) -> None:
    target = start_idle(system, name="watched")
    ref = system.monitor(probe.pid, "watched")
    target.send("quit")
    assert probe.receive() == Down(ref, target.pid, NORMAL)


def test_demonitor_takes_effect_at_once(system: ActorSystem, probe: Any) -> None:
    target = start_idle(system)
    ref = system.monitor(probe.pid, target.pid)
    assert system.demonitor(probe.pid, ref) is True
    assert system.demonitor(probe.pid, ref) is False
    system.exit(target.pid, "boom")
    assert target.join(2.0)
    assert probe.sync() == [], "no Down"  # any Down would have been queued before this


def test_demonitor_after_down_returns_false(system: ActorSystem, probe: Any) -> None:
    target = start_idle(system)
    ref = system.monitor(probe.pid, target.pid)
    target.send("quit")
    assert probe.receive() == Down(ref, target.pid, NORMAL)
    assert system.demonitor(probe.pid, ref) is False


def test_demonitor_from_an_actor(system: ActorSystem, probe: Any) -> None:
    target = start_idle(system)

    def watcher(ctx: ActorContext) -> None:
        ref = ctx.monitor(target.pid)
        ctx.demonitor(ref)
        ctx.exit(target.pid, "boom")
        ctx.send(probe.pid, "demonitored")
        ctx.receive(match=lambda m: m == "check")
        ctx.send(probe.pid, ctx.mailbox_len)

    w = system.spawn_fn(watcher)
    assert probe.receive() == "demonitored"
    assert target.join(2.0)
    w.send("check")
    assert probe.receive() == 0


@pytest.mark.parametrize("flush", [True, False])
def test_demonitor_flush(system: ActorSystem, probe: Any, flush: bool) -> None:
    target = start_idle(system)
    gate = Event()

    def watcher(ctx: ActorContext) -> None:
        ref = ctx.monitor(target.pid)
        ctx.send(probe.pid, "monitoring")
        assert gate.wait(2.0)  # target dies meanwhile: its Down is queued
        ctx.demonitor(ref, flush=flush)
        ctx.send(probe.pid, [ctx.receive(timeout=0) for _ in range(ctx.mailbox_len)])

    system.spawn_fn(watcher)
    assert probe.receive() == "monitoring"
    system.exit(target.pid, "boom")
    assert target.join(2.0)
    gate.set()
    left = probe.receive()
    if flush:
        assert left == []
    else:
        assert len(left) == 1 and isinstance(left[0], Down) and left[0].reason == "boom"


def test_monitor_is_one_way(system: ActorSystem, probe: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="joerl")
    target = start_idle(system)

    def watcher(ctx: ActorContext) -> None:
        ctx.monitor(target.pid)
        ctx.receive(match=lambda m: m == "die")
        raise Boom()

    w = system.spawn_fn(watcher)
    w.send("die")
    assert w.join(2.0)
    assert target.is_alive()
    ref = system.monitor(probe.pid, target.pid)
    target.send("quit")  # the dead watcher's monitor is gone: nothing breaks
    assert probe.receive() == Down(ref, target.pid, NORMAL)


def test_monitor_callback(system: ActorSystem) -> None:
    target = start_idle(system)
    calls: list[tuple[Ref, Pid, Any]] = []
    ref = system.monitor_callback(target.pid, lambda *a: calls.append(a))
    cancelled = system.monitor_callback(target.pid, lambda *a: calls.append(("cancelled",) + a))  # type: ignore[arg-type]
    system.demonitor_callback(cancelled, target.pid)
    system.exit(target.pid, "boom")
    assert target.join(2.0)
    assert calls == [(ref, target.pid, "boom")]
    dead_ref = system.monitor_callback(target.pid, lambda *a: calls.append(a))
    assert calls[-1] == (dead_ref, target.pid, NOPROC)
    assert len(calls) == 2


# -- noproc at once: names nobody holds, earlier incarnations of this node ----------


def test_monitor_of_a_name_nobody_holds_gives_noproc_at_once(system: ActorSystem, probe: Any) -> None:
    ref = system.monitor(probe.pid, "nobody")  # no NotRegistered
    ref2 = system.monitor(probe.pid, ("nobody", "anynode"))  # (name, node) of a local system
    assert probe.receive() == Down(ref, "nobody", NOPROC)
    assert probe.receive() == Down(ref2, ("nobody", "anynode"), NOPROC)

    def watcher(ctx: ActorContext) -> None:
        ref = ctx.monitor("nobody")
        ctx.send(probe.pid, (ref, ctx.receive(timeout=0)))  # queued already: at once

    system.spawn_fn(watcher)
    ref3, down = probe.receive()
    assert down == Down(ref3, "nobody", NOPROC)


def test_monitor_of_a_name_freed_by_its_holder(system: ActorSystem, probe: Any) -> None:
    holder = start_idle(system, name="short-lived")
    holder.send("quit")
    assert holder.join(2.0)
    ref = system.monitor(probe.pid, "short-lived")
    assert probe.receive() == Down(ref, "short-lived", NOPROC)


def test_monitor_of_a_pid_of_an_earlier_incarnation_of_this_node() -> None:
    from joerl.testing import Probe, node_cluster

    with node_cluster("monitors_stale") as (node,):
        system = node.system
        live = start_idle(system)
        stale = Pid(node.node_id, live.pid.id, (node.creation % 0xFFFFFFFF) + 1)
        probe = Probe(system, timeout=2.0)

        def watcher(ctx: ActorContext) -> None:
            ref = ctx.monitor(stale)
            ctx.send(probe.pid, (ref, ctx.receive(timeout=0)))  # queued already: at once

        system.spawn_fn(watcher)
        ref, down = probe.receive()
        assert down == Down(ref, stale, NOPROC)
        # this incarnation's own wire form of a live pid is the local process
        ref2 = system.monitor(probe.pid, node.global_pid(live.pid))
        live.send("quit")
        assert probe.receive() == Down(ref2, live.pid, NORMAL)
