"""joerl.metrics.snapshot: the counters and gauges of a runtime, read from what it counts anyway."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from joerl import ActorContext, ActorSystem, ChildSpec, Supervisor, start_supervisor
from joerl.metrics import COUNTERS, GAUGES, Sampler, snapshot
from joerl.testing import wait_until


@pytest.fixture
def system() -> Any:
    with ActorSystem() as s:
        yield s


def test_a_fresh_system_reports_every_runtime_key(system: ActorSystem) -> None:
    snap = snapshot(system)
    assert snap["name"] == "local"
    for key in ("processes_spawned", "processes_exited", "processes_crashed", "restarts", "messages_sent"):
        assert snap[key] == 0, key
    assert snap["messages_dropped"] == {} and snap["processes_alive"] == 0
    runtime_keys = set(COUNTERS) - {k for k in COUNTERS if k.startswith("node_") or k not in snap}
    assert runtime_keys <= set(snap) and {"processes_alive", "mailbox_max", "mailbox_high_water"} <= set(GAUGES)


def test_processes_and_messages_are_counted(system: ActorSystem, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="joerl")
    assert snapshot(system)["messages_received"] is None  # not counted: the default
    system.count_messages = True
    got: list[Any] = []

    def sink(ctx: ActorContext) -> None:
        for _ in range(5):
            got.append(ctx.receive())

    ref = system.spawn_fn(sink)
    for i in range(5):
        system.send(ref.pid, i)
    assert ref.wait(5) == "normal"
    system.spawn_fn(lambda ctx: 1 / 0).wait(5)
    system.send(ref.pid, "to the dead")
    snap = snapshot(system)
    assert snap["processes_spawned"] == 2 and snap["processes_exited"] == 2 and snap["processes_crashed"] == 1
    assert snap["messages_sent"] == 5  # the send to the dead pid is a drop, not a send
    assert snap["messages_received"] == 5
    assert snap["messages_dropped"] == {"noproc": 1}


def test_messages_sent_counts_across_budget_rounds_and_budget_changes(system: ActorSystem) -> None:
    sink = system.spawn_fn(lambda ctx: ctx.receive(lambda m: m == "never"))
    for i in range(1000):
        system.send(sink.pid, i)
    assert snapshot(system)["messages_sent"] == 1000
    system.send_budget = 10
    for i in range(25):
        system.send(sink.pid, i)
    assert system.messages_sent == 1025


def test_mailbox_gauges_and_the_sampled_high_water_mark(system: ActorSystem) -> None:
    ref = system.spawn_fn(lambda ctx: ctx.receive(lambda m: m == "go"))
    for i in range(7):
        ref.send(i)
    snap = snapshot(system)
    assert snap["mailbox_messages"] == 7 and snap["mailbox_max"] == 7 and snap["mailbox_high_water"] == 7
    ref.send("go")
    ref.wait(5)
    snap = snapshot(system)
    assert snap["mailbox_max"] == 0 and snap["mailbox_high_water"] == 7


def test_restarts_are_counted(system: ActorSystem, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="joerl")
    started: list[Any] = []

    def start(ctx: ActorContext) -> Any:
        ref = ctx.spawn_link(lambda c: c.receive())
        started.append(ref)
        return ref

    start_supervisor(system, Supervisor("one_for_one", [ChildSpec("w", start)], intensity=5, period=60))
    wait_until(lambda: len(started) == 1, timeout=5)
    system.exit(started[0].pid, "kill")
    wait_until(lambda: len(started) == 2, timeout=5)
    assert snapshot(system)["restarts"] == 1


def test_the_sampler_sees_a_burst_between_scrapes(system: ActorSystem) -> None:
    ref = system.spawn_fn(lambda ctx: ctx.receive(lambda m: m == "go"))
    sampler = Sampler(system, interval=0.01)
    try:
        for i in range(50):
            ref.send(i)
        wait_until(lambda: sampler.last["mailbox_max"] == 50, timeout=5)
        ref.send("go")
        ref.wait(5)
        snap = snapshot(system)
        assert snap["mailbox_high_water"] >= 50 and snap["mailbox_max"] == 0
    finally:
        sampler.stop()
    with pytest.raises(ValueError):
        Sampler(system, interval=0)


def test_snapshot_refuses_what_is_no_system() -> None:
    with pytest.raises(TypeError, match="expected an ActorSystem"):
        snapshot("local")  # type: ignore[arg-type]
