"""joerl._watch: the one test the hot paths make, and what is done when it is true.

A process is watched while its messages are counted, while it is traced, or
once trace-context envelopes exist in this OS process; the counts and the
traces are exact whichever of those combine.
"""

from __future__ import annotations

from typing import Any

import pytest

from joerl import Actor, ActorContext, ActorSystem, GenServer, Reply, _traced, sys_calls, trace
from joerl._traced import Traced
from joerl.testing import Probe, wait_until
from joerl.trace import TraceStopped


@pytest.fixture
def no_envelopes(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a process where no Traced was ever made (another test may have made one)."""
    monkeypatch.setattr(_traced, "seen", False)


class Forward(Actor):
    """Sends what it gets to ``msg[0]``."""

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        ctx.send(msg[0], msg[1])


class Echo(GenServer):
    def init(self, arg: Any) -> Any:
        return None

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(request, state)


def watched(system: ActorSystem, ref: Any) -> tuple[bool, bool]:
    ctx = system.context_of(ref.pid)
    assert ctx is not None
    return ctx._watched, ctx._count_only


def counts(system: ActorSystem, ref: Any) -> tuple[int | None, int | None]:
    info = system.process_info(ref)
    assert info is not None
    return info.received, info.sent


def test_nothing_is_watched_by_default(system: ActorSystem, probe: Probe, no_envelopes: None) -> None:
    ref = system.spawn(Forward())
    ref.send((probe.pid, "x"))
    assert probe.receive() == "x"
    assert watched(system, ref) == (False, False)
    assert counts(system, ref) == (None, None)


def test_counts_of_an_actor_a_function_and_a_selective_receive(
    system: ActorSystem, probe: Probe, no_envelopes: None
) -> None:
    system.count_messages = True
    fwd = system.spawn(Forward())
    for i in range(3):
        fwd.send((probe.pid, i))
    assert [probe.receive() for _ in range(3)] == [0, 1, 2]
    assert watched(system, fwd) == (True, True) and counts(system, fwd) == (3, 3)

    def body(ctx: ActorContext) -> None:
        ctx.receive(lambda m: m == "second")  # selective: the first stays queued
        ctx.send(probe.pid, ctx.receive())
        ctx.call(echo.pid, "hello")  # a call is a message out
        ctx.receive(lambda m: m == "end")

    echo = system.spawn(Echo())
    fn = system.spawn_fn(body)
    fn.send("first")
    fn.send("second")
    assert probe.receive() == "first"
    wait_until(lambda: counts(system, fn) == (2, 2), what="two in, the send and the call out")
    fn.send("end")
    assert fn.wait(5) == "normal"


def test_counts_turn_on_and_off_for_live_processes(system: ActorSystem, probe: Probe, no_envelopes: None) -> None:
    fwd = system.spawn(Forward())
    fwd.send((probe.pid, 0))
    probe.receive()
    system.count_messages = True  # a live process: counted from now on, from zero
    fwd.send((probe.pid, 1))
    probe.receive()
    assert counts(system, fwd) == (1, 1)
    system.count_messages = False
    assert watched(system, fwd) == (False, False) and counts(system, fwd) == (None, None)
    assert ActorSystem.count_messages.__doc__  # documented


def test_statistics_counts_one_process(system: ActorSystem, no_envelopes: None) -> None:
    echo = system.spawn(Echo())
    other = system.spawn(Echo())
    sys_calls.statistics(echo.pid, True, system=system)
    for i in range(3):
        assert system.call(echo.pid, i) == i
    stats = sys_calls.statistics(echo.pid, "get", system=system)
    assert stats is not None and stats["messages_in"] == 4  # the three calls and the "get"
    assert counts(system, other) == (None, None)  # only that one
    sys_calls.statistics(echo.pid, False, system=system)
    assert watched(system, echo) == (False, False)


def test_a_trace_and_counts_together(system: ActorSystem, probe: Probe, no_envelopes: None) -> None:
    events: list[Any] = []
    system.count_messages = True
    fwd = system.spawn(Forward())
    tracer = trace.start(system, events.append, pids=[fwd])
    assert watched(system, fwd) == (True, False)  # counted and traced: the slow path does both
    fwd.send((probe.pid, "a"))
    assert probe.receive() == "a"
    assert counts(system, fwd) == (1, 1)
    assert [e.kind for e in events] == ["receive", "send"]
    tracer.stop()
    assert watched(system, fwd) == (True, True)  # counted only again: inline
    fwd.send((probe.pid, "b"))
    probe.receive()
    assert counts(system, fwd) == (2, 2)
    assert [e.__class__ for e in events[2:]] == [TraceStopped]  # nothing traced after the stop


def test_the_first_envelope_watches_every_process(system: ActorSystem, probe: Probe, no_envelopes: None) -> None:
    other = ActorSystem("other")
    try:
        fwd = system.spawn(Forward())
        elsewhere = other.spawn(Forward())
        assert watched(system, fwd) == (False, False) and watched(other, elsewhere) == (False, False)
        fwd.send(Traced((probe.pid, "inside"), {}))  # made here: from now on, everything is watched
        assert probe.receive() == "inside"  # unwrapped before the actor saw it
        assert watched(system, fwd) == (True, False) and watched(other, elsewhere) == (True, False)
        assert watched(system, system.spawn(Forward())) == (True, False)  # and those spawned later

        def take(ctx: ActorContext) -> None:
            ctx.send(probe.pid, ctx.receive())

        system.spawn_fn(take).send(Traced("plain", {}))
        assert probe.receive() == "plain"
    finally:
        other.shutdown()
