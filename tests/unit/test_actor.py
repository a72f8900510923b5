"""Actors as classes and as functions, the ActorContext they act through,
ActorRef handles, and crashes in every hook (logged once, with traceback)."""

from __future__ import annotations

import logging
from typing import Any

import gevent
import pytest
from gevent.event import Event

from joerl.actor import Actor, ActorContext, ActorRef
from joerl.errors import NoProcError, ReceiveTimeout, SystemShutdown
from joerl.message import Down
from joerl.pid import Pid
from joerl.system import ActorSystem


class Boom(Exception):
    pass


class Recorder(Actor):
    """Records every hook call; fails in the hook named ``fail_in``."""

    def __init__(self, fail_in: str | None = None) -> None:
        self.events: list[Any] = []
        self.greenlets: set[Any] = set()
        self.fail_in = fail_in
        self.error: Boom | None = None
        self.got_message = Event()

    def _fail(self, hook: str) -> None:
        if self.fail_in == hook:
            self.error = Boom(hook)
            raise self.error

    def started(self, ctx: ActorContext) -> None:
        self.greenlets.add(gevent.getcurrent())
        self.events.append(("started", ctx.pid, ctx.system))
        self._fail("started")

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        self.greenlets.add(gevent.getcurrent())
        self.events.append(("msg", msg, ctx.sender))
        self.got_message.set()
        if msg == "crash":
            self._fail("handle_message")
        elif isinstance(msg, tuple) and msg[0] == "stop":
            ctx.stop(msg[1])

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        self.greenlets.add(gevent.getcurrent())
        self.events.append(("stopped", reason))
        self._fail("stopped")


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("joerl") and r.levelno >= logging.ERROR]


# -- class actors -------------------------------------------------------------------


def test_class_actor_lifecycle(system: ActorSystem, probe: Any) -> None:
    actor = Recorder()
    ref = system.spawn(actor)
    assert isinstance(ref, ActorRef) and isinstance(ref.pid, Pid)
    mref = system.monitor(probe.pid, ref.pid)
    for i in range(3):
        ref.send(i)
    ref.send(("stop", "done"))
    assert probe.receive() == Down(mref, ref.pid, "done")
    assert actor.events == [
        ("started", ref.pid, system),
        ("msg", 0, None),
        ("msg", 1, None),
        ("msg", 2, None),
        ("msg", ("stop", "done"), None),
        ("stopped", "done"),
    ]
    # every hook ran in the actor's own greenlet, not the test's
    assert len(actor.greenlets) == 1 and gevent.getcurrent() not in actor.greenlets
    assert not ref.is_alive()


def test_default_hooks_do_nothing(system: ActorSystem) -> None:
    ref = system.spawn(Actor())
    ref.send("ignored")
    assert ref.is_alive()
    assert ref.stop() is True
    assert not ref.is_alive()


def test_stop_in_started(system: ActorSystem, probe: Any) -> None:
    class StopsAtOnce(Recorder):
        def started(self, ctx: ActorContext) -> None:
            super().started(ctx)
            ctx.stop("early")

    actor = StopsAtOnce()
    ref = system.spawn(actor)
    mref = system.monitor(probe.pid, ref.pid)
    assert probe.receive() == Down(mref, ref.pid, "early")
    assert [e[0] for e in actor.events] == ["started", "stopped"]
    assert actor.events[-1] == ("stopped", "early")


def test_system_stop_ends_a_busy_actor_and_runs_stopped(system: ActorSystem, probe: Any) -> None:
    never = Event()

    class Busy(Recorder):
        def handle_message(self, msg: Any, ctx: ActorContext) -> None:
            super().handle_message(msg, ctx)
            never.wait()

    actor = Busy()
    ref = system.spawn(actor)
    mref = system.monitor(probe.pid, ref.pid)
    ref.send("work")
    assert actor.got_message.wait(2.0)
    assert ref.stop("enough") is True
    assert probe.receive() == Down(mref, ref.pid, "enough")
    assert actor.events[-1] == ("stopped", "enough")
    assert ref.stop() is True  # already dead: nothing to do
    assert system.stop(ref.pid) is True


def test_spawn_rejects_bad_arguments(system: ActorSystem) -> None:
    with pytest.raises(TypeError, match="instance"):
        system.spawn(Recorder)
    with pytest.raises(TypeError, match="cannot spawn"):
        system.spawn(42)
    with pytest.raises(TypeError, match="arguments"):
        system.spawn_fn(Recorder(), 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mailbox_size"):
        system.spawn(Recorder(), mailbox_size=0)
    assert system.processes() == []


def test_spawn_after_shutdown_raises() -> None:
    system = ActorSystem()
    system.shutdown()
    with pytest.raises(SystemShutdown):
        system.spawn(Actor())
    with pytest.raises(SystemShutdown):
        system.spawn_fn(lambda ctx: None)


# -- function actors ----------------------------------------------------------------


def test_function_actor_gets_args_and_receives(system: ActorSystem, probe: Any) -> None:
    def echo(ctx: ActorContext, reply_to: Pid, prefix: str) -> None:
        while True:
            msg = ctx.receive()
            if msg == "quit":
                return
            ctx.send(reply_to, f"{prefix}{msg}")

    ref = system.spawn_fn(echo, probe.pid, "echo:")
    mref = system.monitor(probe.pid, ref.pid)
    ref.send("a")
    ref.send("b")
    assert probe.receive() == "echo:a"
    assert probe.receive() == "echo:b"
    ref.send("quit")
    assert probe.receive() == Down(mref, ref.pid, "normal")


def test_function_actor_context(system: ActorSystem) -> None:
    seen: dict[str, Any] = {}

    def body(ctx: ActorContext) -> None:
        seen["pid"], seen["system"], seen["greenlet"] = ctx.pid, ctx.system, gevent.getcurrent()
        seen["alive"] = ctx.system.is_process_alive(ctx.pid)

    ref = system.spawn_fn(body)
    assert ref.join(2.0)
    assert seen["pid"] == ref.pid and seen["system"] is system and seen["alive"] is True
    assert seen["greenlet"] is not gevent.getcurrent()


def test_function_actor_stop(system: ActorSystem, probe: Any) -> None:
    ref = system.spawn_fn(lambda ctx: ctx.stop(("shutdown", "bye")))
    mref = system.monitor(probe.pid, ref.pid)
    assert probe.receive() == Down(mref, ref.pid, ("shutdown", "bye"))


def test_stop_a_function_actor_blocked_in_receive(system: ActorSystem, probe: Any) -> None:
    waiting = Event()

    def body(ctx: ActorContext) -> None:
        waiting.set()
        ctx.receive()

    ref = system.spawn_fn(body)
    mref = system.monitor(probe.pid, ref.pid)
    assert waiting.wait(2.0)
    assert system.stop(ref.pid, "halt") is True
    assert probe.receive() == Down(mref, ref.pid, "halt")


# -- receive -------------------------------------------------------------------------


def run_body(system: ActorSystem, body: Any, *messages: Any) -> list[Any]:
    """Queue ``messages``, then run ``body(ctx, out)`` in a process; return ``out``."""
    out: list[Any] = []
    gate = Event()

    def wrapper(ctx: ActorContext) -> None:
        assert gate.wait(2.0)
        body(ctx, out)

    ref = system.spawn_fn(wrapper)
    for msg in messages:
        ref.send(msg)
    gate.set()
    assert ref.join(5.0)
    return out


def test_selective_receive_keeps_unmatched_in_order(system: ActorSystem) -> None:
    def body(ctx: ActorContext, out: list[Any]) -> None:
        out.append(ctx.receive(match=int))
        out.append(ctx.receive(match=lambda m: m == "c"))
        out.append(ctx.receive(match=(bytes, float)))
        while True:
            try:
                out.append(ctx.receive(timeout=0))
            except ReceiveTimeout:
                return

    out = run_body(system, body, "a", "b", 1, "c", 2.5, "d", b"x", 3)
    assert out == [1, "c", 2.5, "a", "b", "d", b"x", 3]


def test_selective_receive_waits_for_a_match(system: ActorSystem) -> None:
    got: list[Any] = []
    asked = Event()

    def body(ctx: ActorContext) -> None:
        asked.set()
        got.append(ctx.receive(match=lambda m: m == "wanted", timeout=2.0))
        got.append(ctx.receive(timeout=0))

    ref = system.spawn_fn(body)
    assert asked.wait(2.0)
    ref.send("other")
    ref.send("wanted")
    assert ref.join(2.0)
    assert got == ["wanted", "other"]


def test_receive_timeout(system: ActorSystem) -> None:
    def body(ctx: ActorContext, out: list[Any]) -> None:
        with pytest.raises(ReceiveTimeout) as info:
            ctx.receive(match=str, timeout=0.05)  # 7 is queued but does not match
        out.append(info.value.timeout)
        with pytest.raises(ReceiveTimeout):
            ctx.receive(match=str, timeout=0)
        out.append(ctx.receive(timeout=0))
        with pytest.raises(ReceiveTimeout):
            ctx.receive(timeout=0.05)  # empty now

    assert run_body(system, body, 7) == [0.05, 7]


def test_receive_timeout_zero_on_empty_mailbox(system: ActorSystem) -> None:
    def body(ctx: ActorContext, out: list[Any]) -> None:
        for match in (None, int):
            try:
                ctx.receive(match=match, timeout=0)
            except ReceiveTimeout:
                out.append("timeout")

    assert run_body(system, body) == ["timeout", "timeout"]


def test_receive_inside_handle_message(system: ActorSystem, probe: Any) -> None:
    class Pairing(Actor):
        def handle_message(self, msg: Any, ctx: ActorContext) -> None:
            if msg == "first":
                second = ctx.receive(match=lambda m: m == "second", timeout=2.0)
                ctx.send(probe.pid, ("pair", msg, second))
            else:
                ctx.send(probe.pid, ("single", msg))

    ref = system.spawn(Pairing())
    for m in ("first", "other", "second", "after"):
        ref.send(m)
    assert probe.receive() == ("pair", "first", "second")
    assert probe.receive() == ("single", "other")
    assert probe.receive() == ("single", "after")


# -- sender ---------------------------------------------------------------------------


def test_sender_is_known_for_actor_sends_and_none_for_plain_code(system: ActorSystem, probe: Any) -> None:
    def sender(ctx: ActorContext) -> None:
        ctx.send(probe.pid, "from actor")

    ref = system.spawn_fn(sender)
    assert probe.receive_with_sender() == ("from actor", ref.pid)
    system.send(probe.pid, "from plain code")
    assert probe.receive_with_sender() == ("from plain code", None)
    probe.ref.send("via ActorRef")
    assert probe.receive_with_sender() == ("via ActorRef", None)
    system.send(probe.pid, "explicit", sender=ref.pid)
    assert probe.receive_with_sender() == ("explicit", ref.pid)


def test_sender_in_class_actor(system: ActorSystem) -> None:
    actor = Recorder()
    target = system.spawn(actor)

    def body(ctx: ActorContext) -> None:
        ctx.send(target.pid, "hello")

    src = system.spawn_fn(body)
    assert actor.got_message.wait(2.0)
    assert actor.events[-1] == ("msg", "hello", src.pid)


def test_reply_to_sender(system: ActorSystem, probe: Any) -> None:
    class Echo(Actor):
        def handle_message(self, msg: Any, ctx: ActorContext) -> None:
            ctx.send(ctx.sender, ("echo", msg))

    echo = system.spawn(Echo())
    system.send(echo.pid, "hi", sender=probe.pid)
    assert probe.receive_with_sender() == (("echo", "hi"), echo.pid)


# -- crashes ---------------------------------------------------------------------------


@pytest.mark.parametrize("hook", ["started", "handle_message", "stopped"])
def test_crash_in_hook(system: ActorSystem, probe: Any, caplog: pytest.LogCaptureFixture, hook: str) -> None:
    caplog.set_level(logging.ERROR, logger="joerl")
    actor = Recorder(fail_in=hook)
    ref = system.spawn(actor)
    mref = system.monitor(probe.pid, ref.pid)
    if hook == "handle_message":
        ref.send("crash")
    elif hook == "stopped":
        ref.send(("stop", "normal"))
    down = probe.receive()
    assert isinstance(down, Down) and down.ref == mref and down.pid == ref.pid
    assert down.reason is actor.error and isinstance(down.reason, Boom)
    assert not ref.is_alive()
    records = error_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].name == "joerl.actor"
    assert records[0].exc_info is not None and records[0].exc_info[1] is actor.error
    assert str(ref.pid) in records[0].getMessage()
    # stopped() runs after a crash in started()/handle_message() and gets the exception
    assert actor.events[-1] == ("stopped", actor.error if hook != "stopped" else "normal")


def test_crash_in_started_skips_messages(system: ActorSystem, probe: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="joerl")
    actor = Recorder(fail_in="started")
    ref = system.spawn(actor)
    ref.send("never handled")
    mref = system.monitor(probe.pid, ref.pid)
    assert probe.receive().reason is actor.error
    assert [e[0] for e in actor.events] == ["started", "stopped"]
    assert mref is not None


def test_crash_in_function_actor(system: ActorSystem, probe: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="joerl")
    err = Boom("fn")

    def body(ctx: ActorContext) -> None:
        ctx.receive()
        raise err

    ref = system.spawn_fn(body)
    mref = system.monitor(probe.pid, ref.pid)
    ref.send("go")
    assert probe.receive() == Down(mref, ref.pid, err)
    records = error_records(caplog)
    assert len(records) == 1 and records[0].exc_info[1] is err  # type: ignore[index]


def test_normal_ends_log_nothing(system: ActorSystem, probe: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="joerl")
    a = system.spawn(Recorder())
    b = system.spawn_fn(lambda ctx: None)
    c = system.spawn_fn(lambda ctx: ctx.receive())
    system.monitor(probe.pid, a.pid)
    a.send(("stop", "normal"))
    assert b.join(2.0)
    assert system.stop(c.pid, "shutdown")
    probe.receive()
    assert error_records(caplog) == []


# -- the context's own operations --------------------------------------------------


def test_trap_exit_returns_previous_setting(system: ActorSystem) -> None:
    got: list[Any] = []

    def body(ctx: ActorContext) -> None:
        got.append(ctx.trapping_exits)
        got.append(ctx.trap_exit(True))
        got.append(ctx.trap_exit(True))
        got.append(ctx.trapping_exits)
        got.append(ctx.trap_exit(False))
        got.append(ctx.trapping_exits)

    assert system.spawn_fn(body).join(2.0)
    assert got == [False, False, True, True, True, False]


def test_mailbox_len(system: ActorSystem) -> None:
    got: list[int] = []
    gate = Event()

    def body(ctx: ActorContext) -> None:
        assert gate.wait(2.0)
        got.append(ctx.mailbox_len)
        ctx.receive()
        got.append(ctx.mailbox_len)

    ref = system.spawn_fn(body)
    ref.send(1)
    ref.send(2)
    gate.set()
    assert ref.join(2.0)
    assert got == [2, 1]


def test_ctx_spawn_is_not_linked(system: ActorSystem, probe: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="joerl")
    children: list[ActorRef] = []

    def parent(ctx: ActorContext) -> None:
        children.append(ctx.spawn(Recorder(fail_in="started")))
        children.append(ctx.spawn(lambda c, x: c.send(probe.pid, ("child", x)), 5))
        ctx.receive()

    p = system.spawn_fn(parent)
    assert probe.receive() == ("child", 5)
    assert children[0].join(2.0)
    assert p.is_alive()


def test_actor_ref(system: ActorSystem) -> None:
    ref = system.spawn_fn(lambda ctx: ctx.receive())
    same = ActorRef(system, ref.pid)
    assert ref == same and hash(ref) == hash(same) and ref != "x"
    assert str(ref.pid) in repr(ref)
    assert ref.is_alive()
    assert ref.join(0.01) is False
    ref.try_send("go")
    assert ref.join(2.0) is True
    assert not ref.is_alive()
    ref.send("dropped")  # a dead process: dropped silently
    ref.try_send("dropped")


def test_stop_unknown_pid(system: ActorSystem) -> None:
    assert system.stop(Pid(0, 999_999)) is True
    assert system.join(Pid(0, 999_999), 0) is True
    with pytest.raises(NoProcError):
        system.register("ghost", Pid(0, 999_999))


@pytest.mark.parametrize("how", ["stop", "shutdown"])
def test_stopped_never_runs_without_started(caplog: pytest.LogCaptureFixture, how: str) -> None:
    caplog.set_level(logging.CRITICAL, logger="joerl")
    actor = Recorder()
    system = ActorSystem()
    try:
        ref = system.spawn(actor)
        if how == "stop":
            assert ref.stop("early") is True
        else:
            system.shutdown()
        hooks = [e[0] for e in actor.events]
        assert hooks in ([], ["started", "stopped"])
    finally:
        system.shutdown()
