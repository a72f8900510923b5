"""joerl.trace: sends, receives, calls and exits of chosen processes, to a callback or a tracer process, bounded."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from joerl import Actor, ActorContext, ActorSystem, GenServer, Reply, gen_server, trace
from joerl.testing import Probe, wait_until
from joerl.trace import TraceEvent, TraceStopped


class Echo(GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(request, state)


class Session(Actor):
    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if msg == "stop":
            ctx.stop()


@pytest.fixture
def system() -> Any:
    with ActorSystem() as s:
        yield s


def kinds(events: list[Any]) -> list[tuple[str, Any]]:
    return [(e.kind, e.data) for e in events if isinstance(e, TraceEvent)]


def test_a_callback_sees_receives_sends_and_the_exit(system: ActorSystem) -> None:
    seen: list[Any] = []
    sink = system.spawn_fn(lambda ctx: ctx.receive(lambda m: m == "never"))

    def relay(ctx: ActorContext) -> None:
        msg = ctx.receive()
        ctx.send(sink.pid, ("relayed", msg))

    ref = system.spawn_fn(relay)
    tracer = trace.start(system, seen.append, pids=[ref])
    assert tracer.traced == [ref.pid]
    ref.send("hello")
    assert ref.wait(5) == "normal"
    assert kinds(seen) == [("receive", "hello"), ("send", (sink.pid, ("relayed", "hello"))), ("exit", "normal")]
    assert all(e.pid == ref.pid for e in seen if isinstance(e, TraceEvent))
    tracer.stop()
    assert seen[-1] == TraceStopped("stopped", 3) and tracer.stopped == "stopped"


def test_calls_both_ways(system: ActorSystem) -> None:
    seen: list[Any] = []
    server = gen_server.start(system, Echo(), name="echo")
    done: list[Any] = []

    def client(ctx: ActorContext) -> None:
        done.append(ctx.call("echo", "ping"))

    trace.start(system, seen.append, name="echo", events=["call"])
    assert server.call("direct") == "direct"
    system.spawn_fn(client)
    wait_until(lambda: done == ["ping"], timeout=5)
    assert kinds(seen) == [("call", "direct"), ("call", "ping")]


def test_a_pattern_on_the_class_and_new_processes(system: ActorSystem) -> None:
    seen: list[Any] = []
    old = system.spawn(Session())
    other = system.spawn_fn(lambda ctx: ctx.receive())
    tracer = trace.start(system, seen.append, actor="*Session", events=["exit"], new=True)
    fresh = system.spawn(Session())
    assert set(tracer.traced) == {old.pid, fresh.pid}
    for ref in (old, fresh):
        ref.send("stop")
        ref.wait(5)
    other.send("x")
    other.wait(5)
    assert sorted(e.pid for e in seen if isinstance(e, TraceEvent)) == sorted([old.pid, fresh.pid])
    tracer.stop()
    by_class = trace.start(system, seen.append, actor=Session)
    assert by_class.traced == []
    by_class.stop()


def test_to_a_tracer_process(system: ActorSystem) -> None:
    probe = Probe(system)
    ref = system.spawn_fn(lambda ctx: ctx.receive())
    trace.start(system, probe.pid, pids=[ref.pid], limit=10)
    ref.send("m")
    first = probe.receive(timeout=5)
    assert isinstance(first, TraceEvent) and (first.kind, first.data) == ("receive", "m")
    assert probe.receive(timeout=5).kind == "exit"


def test_the_limit_switches_tracing_off_and_says_so(system: ActorSystem, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="joerl.trace")
    seen: list[Any] = []
    ref = system.spawn_fn(lambda ctx: [ctx.receive() for _ in range(100)])
    tracer = trace.start(system, seen.append, pids=[ref], limit=5, events=["receive"])
    for i in range(100):
        ref.send(i)
    ref.wait(5)
    assert [e.data for e in seen[:5]] == [0, 1, 2, 3, 4]
    assert seen[5:] == [TraceStopped("limit", 5)]
    assert tracer.stopped == "limit" and system.context_of(ref.pid) is None
    assert "tracing switched itself off after 5 events (limit" in caplog.text
    again = trace.start(system, seen.append, name="*")  # the system is free for another trace
    again.stop()


def test_the_rate_limit(system: ActorSystem) -> None:
    seen: list[Any] = []
    ref = system.spawn_fn(lambda ctx: [ctx.receive() for _ in range(1000)])
    tracer = trace.start(system, seen.append, pids=[ref], limit=1_000_000, rate=10.0, events=["receive"])
    for i in range(1000):
        ref.send(i)
    ref.wait(5)
    assert tracer.stopped == "rate" and 10 <= tracer.events <= 12
    assert seen[-1] == TraceStopped("rate", tracer.events)


def test_a_failing_callback_stops_the_trace_not_the_process(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="joerl")

    def bad(event: Any) -> None:
        raise RuntimeError("oops")

    ref = system.spawn_fn(lambda ctx: (ctx.receive(), ctx.receive()))
    tracer = trace.start(system, bad, pids=[ref])
    ref.send(1)
    ref.send(2)
    assert ref.wait(5) == "normal" and tracer.stopped == "callback_failed"


def test_bad_arguments(system: ActorSystem) -> None:
    with pytest.raises(ValueError, match="name the processes"):
        trace.start(system, print)
    with pytest.raises(ValueError, match="events"):
        trace.start(system, print, name="*", events=["everything"])
    with pytest.raises(ValueError, match="limit"):
        trace.start(system, print, name="*", limit=0)
    with pytest.raises(TypeError):
        trace.start(system, "nobody", name="*")
    running = trace.start(system, print, name="*")
    with pytest.raises(RuntimeError, match="stop it first"):
        trace.start(system, print, name="*")
    running.stop()
