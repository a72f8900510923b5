"""GenServer calls and casts with OTP's semantics: a process calling itself by
any path fails with ``calling_self`` at once; a call's timeout bounds the
whole call, the wait for room in a full bounded mailbox included, and a
request that found no room is never queued; a cast takes every destination a
send takes, and a cast to nothing is dropped and counted."""

from __future__ import annotations

import time
from typing import Any

import pytest
from gevent.event import AsyncResult, Event

from joerl import gen_server
from joerl.actor import ActorContext
from joerl.errors import CallError, CallTimeout
from joerl.gen_server import GenServer, GenServerRef, Reply, call, cast, start
from joerl.system import ActorSystem, From
from joerl.testing import wait_until

WAIT = 2.0
#: A call that hangs would wait this long: far past the test's own bounds.
LONG = 60.0


class Gate(GenServer):
    """Records requests; a call ("block",) holds the server until ``gate`` is set."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.gate = Event()
        self.blocked = Event()

    def handle_call(self, request: Any, from_: From, state: Any) -> Reply:
        self.seen.append(("call", request))
        if request == "block":
            self.blocked.set()
            self.gate.wait()
        return Reply(("ok", request))

    def handle_cast(self, request: Any, state: Any) -> Any:
        self.seen.append(("cast", request))
        if request == "block":
            self.blocked.set()
            self.gate.wait()
        return state

    def handle_info(self, msg: Any, state: Any) -> Any:
        self.seen.append(("info", msg))
        return state


# -- calling_self ----------------------------------------------------------------------


class SelfCaller(GenServer):
    """On ("try", path) calls itself by that path and replies with what happened."""

    def handle_call(self, request: Any, from_: From, state: Any) -> Reply:
        if request == "ping":
            return Reply("pong")
        ctx = self.ctx
        system = ctx.system
        paths = {
            "ctx.call(pid)": lambda: ctx.call(ctx.pid, "ping", LONG),
            "ctx.call(name)": lambda: ctx.call("self-caller", "ping", LONG),
            "ctx.call((name, node))": lambda: ctx.call(("self-caller", "anynode"), "ping", LONG),
            "system.call(caller=)": lambda: system.call(ctx.pid, "ping", LONG, caller=ctx.pid),
            "system.call(pid)": lambda: system.call(ctx.pid, "ping", LONG),
            "system.call(name)": lambda: system.call("self-caller", "ping", LONG),
            "gen_server.call(system=ctx)": lambda: call(ctx.pid, "ping", LONG, system=ctx),
            "gen_server.call(system=system)": lambda: call("self-caller", "ping", LONG, system=system),
            "gen_server.call(ref)": lambda: call(GenServerRef(system, ctx.pid), "ping", LONG),
            "GenServerRef.call": lambda: GenServerRef(system, ctx.pid).call("ping", LONG),
        }
        try:
            paths[request[1]]()
        except CallError as exc:
            return Reply(exc.reason)
        return Reply("returned")


PATHS = [
    "ctx.call(pid)",
    "ctx.call(name)",
    "ctx.call((name, node))",
    "system.call(caller=)",
    "system.call(pid)",
    "system.call(name)",
    "gen_server.call(system=ctx)",
    "gen_server.call(system=system)",
    "gen_server.call(ref)",
    "GenServerRef.call",
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", PATHS)
def test_calling_itself_by_any_path_fails_with_calling_self_at_once(system: ActorSystem, path: str) -> None:
    ref = start(system, SelfCaller(), name="self-caller")
    t0 = time.monotonic()
    assert ref.call(("try", path), timeout=LONG) == "calling_self"
    assert time.monotonic() - t0 < 10.0  # at once, not after the call's timeout of LONG
    assert ref.call("ping") == "pong"  # the server is fine


def test_a_function_process_calling_itself(system: ActorSystem) -> None:
    result = AsyncResult()

    def body(ctx: ActorContext) -> None:
        try:
            ctx.system.call(ctx.pid, "anything", LONG)
        except CallError as exc:
            result.set(exc.reason)

    system.spawn_fn(body)
    assert result.get(timeout=10.0) == "calling_self"


# -- the timeout bounds the whole call ------------------------------------------------------


def fill(system: ActorSystem, server: Gate, ref: GenServerRef) -> None:
    """Block ``server`` in a cast and fill its one-slot mailbox."""
    cast(system, ref, "block")
    assert server.blocked.wait(WAIT)
    ref.system.send(ref.pid, "filler")  # the one slot is taken now


def test_call_timeout_covers_waiting_for_room_in_a_full_mailbox(system: ActorSystem) -> None:
    server = Gate()
    ref = start(system, server, mailbox_size=1)
    fill(system, server, ref)
    t0 = time.monotonic()
    with pytest.raises(CallTimeout):
        ref.call("late", timeout=0.2)
    assert time.monotonic() - t0 < 5.0  # was: forever (the timeout only started once queued)
    server.gate.set()
    assert ref.call("after") == ("ok", "after")
    assert ("call", "late") not in server.seen  # given up: never queued
    assert server.seen == [("cast", "block"), ("info", "filler"), ("call", "after")]


def test_call_timeout_from_an_actor_with_a_full_mailbox(system: ActorSystem) -> None:
    server = Gate()
    ref = start(system, server, mailbox_size=1)
    fill(system, server, ref)
    result = AsyncResult()

    def client(ctx: ActorContext) -> None:
        try:
            ctx.call(ref, "late", timeout=0.2)
        except CallTimeout as exc:
            result.set(exc)

    system.spawn_fn(client)
    assert isinstance(result.get(timeout=5.0), CallTimeout)
    server.gate.set()
    assert ref.call("after") == ("ok", "after")
    assert ("call", "late") not in server.seen


def test_call_waits_for_room_within_its_timeout_and_then_succeeds(system: ActorSystem) -> None:
    server = Gate()
    ref = start(system, server, mailbox_size=1)
    fill(system, server, ref)
    result = AsyncResult()

    def client(ctx: ActorContext) -> None:
        result.set(ctx.call(ref, "queued", timeout=LONG))

    system.spawn_fn(client)
    server.gate.set()
    assert result.get(timeout=10.0) == ("ok", "queued")
    assert server.seen[-1] == ("call", "queued")


def test_call_without_timeout_waits_for_room(system: ActorSystem) -> None:
    server = Gate()
    ref = start(system, server, mailbox_size=1)
    fill(system, server, ref)
    result = AsyncResult()
    system.spawn_fn(lambda ctx: result.set(ctx.call(ref, "patient", timeout=None)))
    server.gate.set()
    assert result.get(timeout=10.0) == ("ok", "patient")


def test_server_dying_while_the_caller_waits_for_room(system: ActorSystem) -> None:
    server = Gate()
    ref = start(system, server, mailbox_size=1)
    fill(system, server, ref)
    result = AsyncResult()

    def client(ctx: ActorContext) -> None:
        try:
            ctx.call(ref, "never", timeout=LONG)
        except CallError as exc:
            result.set(exc.reason)

    system.spawn_fn(client)
    wait_until(lambda: ref.system.context_of(ref.pid)._mailbox._putters, timeout=5.0)  # the client waits for room
    system.exit(ref.pid, "boom")
    assert result.get(timeout=10.0) == "boom"


# -- casts -------------------------------------------------------------------------------------


def test_cast_takes_every_destination_send_takes(system: ActorSystem) -> None:
    server = Gate()
    ref = start(system, server, name="gate")
    cast(system, ref, 1)  # GenServerRef
    cast(system, ref.pid, 2)  # Pid
    cast(system, "gate", 3)  # name
    cast(system, ("gate", "anynode"), 4)  # (name, node) of a local system
    ref.cast(5)
    system.spawn_fn(lambda ctx: cast(ctx, "gate", 6))
    wait_until(lambda: len(server.seen) == 6, timeout=5.0)
    assert server.seen == [("cast", i) for i in range(1, 7)]
    with pytest.raises(TypeError, match="cannot send"):
        cast(system, 42, "x")
    assert system.stats.dropped == 0


def test_a_cast_to_nothing_is_dropped_and_counted(system: ActorSystem) -> None:
    ref = start(system, Gate())
    assert ref.stop()
    cast(system, "nobody", "x")  # never raises, as OTP's gen_server:cast
    cast(system, ("nobody", "anynode"), "x")
    cast(system, ref.pid, "x")
    ref.cast("x")
    gen_server.cast(system, ref, "x")
    assert system.stats.dropped_by_reason == {"unregistered": 2, "noproc": 3}
    assert system.stats.dropped == 5
