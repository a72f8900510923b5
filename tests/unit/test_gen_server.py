"""GenServer: every callback, the three call outcomes (reply, deferred reply,
stop), the ways a call fails (dead server, timeout with a dropped late reply,
the server dying mid-call, calling itself), start / start_link and their
failures, named servers, and the two examples run as subprocesses."""

from __future__ import annotations

import json
import logging
import os
import selectors
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent.event import AsyncResult, Event

from joerl.actor import ActorContext, ActorRef
from joerl.errors import CallError, CallTimeout, ReceiveTimeout, StartError
from joerl.gen_server import GenServer, GenServerRef, NoReply, Reply, Stop, call, cast, reply, start, start_link
from joerl.message import KILL, NOPROC, Down, Exit
from joerl.system import SYSTEM_PID, ActorSystem, From

WAIT = 2.0
ROOT = Path(__file__).resolve().parents[2]


class Boom(Exception):
    pass


class Store(GenServer):
    """A key-value server that records every callback in ``self.events``."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.terminated = Event()
        self.init_may_finish = Event()
        self.init_may_finish.set()

    def init(self, args: Any) -> Any:
        self.events.append(("init", args))
        self.init_may_finish.wait()
        if isinstance(args, BaseException):
            raise args
        if args == "stop":
            return Stop("init_said_no")
        if args == "ctx_stop":
            self.ctx.stop("bail")
        if args == "trap":
            self.ctx.trap_exit(True)
            return {}
        return dict(args or {})

    def handle_call(self, request: Any, from_: From, state: dict) -> Reply | NoReply | Stop:
        self.events.append(("call", request))
        op = request[0]
        if op == "get":
            return Reply(state.get(request[1]))
        if op == "put":
            return Reply("ok", {**state, request[1]: request[2]})
        if op == "state":
            return Reply(state, state)
        if op == "from":
            return Reply(from_)
        if op == "later_timer":  # deferred: a timer to self answers
            self.send_after(request[1], ("answer", from_, request[2]))
            return NoReply()
        if op == "later_greenlet":  # deferred: a plain greenlet answers
            system = self.ctx.system
            gevent.spawn(reply, system, from_, request[1])
            return NoReply(state)
        if op == "later_actor":  # deferred: another actor answers
            self.ctx.send(request[1], (from_, request[2]))
            return NoReply()
        if op == "hold":  # deferred until a ("release", value) cast
            return NoReply({**state, "held": from_})
        if op == "stop_reply":
            return Stop("done", {**state, "stopped": True}, reply="bye")
        if op == "stop":
            return Stop(request[1])
        if op == "ctx_stop":
            self.ctx.stop("quit")
        if op == "crash":
            raise Boom("in handle_call")
        if op == "die_later":  # no reply; crash on a timer while the caller waits
            self.send_after(0.01, "crash_now")
            return NoReply()
        if op == "call_self":
            try:
                self.ctx.call(self.ctx.pid, ("get", "x"))
            except CallError as exc:
                first = exc.reason
            try:
                GenServerRef(self.ctx.system, self.ctx.pid).call(("get", "x"))
            except CallError as exc:
                return Reply((first, exc.reason))
        if op == "bad_return":
            return 42  # type: ignore[return-value]
        raise AssertionError(f"unexpected call {request!r}")

    def handle_cast(self, request: Any, state: dict) -> Any:
        self.events.append(("cast", request))
        op = request[0]
        if op == "put":
            return {**state, request[1]: request[2]}
        if op == "release":
            self.reply(state["held"], request[1])
            self.events.append(("released", request[1]))
            return {k: v for k, v in state.items() if k != "held"}
        if op == "stop":
            return Stop(request[1], {**state, "by": "cast"})
        raise AssertionError(f"unexpected cast {request!r}")

    def handle_info(self, msg: Any, state: dict) -> Any:
        self.events.append(("info", msg))
        if isinstance(msg, tuple) and msg and msg[0] == "answer":
            self.reply(msg[1], msg[2])
            return state
        if msg == "crash_now":
            raise Boom("in handle_info")
        if msg == "stop_info":
            return Stop("info_stop")
        return {**state, "info": [*state.get("info", []), msg]}

    def terminate(self, reason: Any, state: Any) -> None:
        self.events.append(("terminate", reason, state))
        self.terminated.set()

    def terminations(self) -> list[Any]:
        return [e for e in self.events if e[0] == "terminate"]


def run_actor(system: ActorSystem, body: Any, *args: Any) -> Any:
    """Run ``body(ctx, *args)`` in a function actor and return what it returns
    (re-raising what it raises)."""
    result = AsyncResult()

    def wrapper(ctx: ActorContext) -> None:
        try:
            result.set(body(ctx, *args))
        except Exception as exc:  # noqa: BLE001 - handed to the test
            result.set_exception(exc)

    system.spawn_fn(wrapper)
    return result.get(timeout=WAIT * 2)


# -- start, init, call, cast, info ----------------------------------------------


def test_start_returns_after_init(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server, {"a": 1})
    assert server.events == [("init", {"a": 1})]  # init has run when start returns
    assert isinstance(ref, GenServerRef) and isinstance(ref, ActorRef)
    assert ref.pid in system.processes() and ref.is_alive()
    assert server.ctx.pid == ref.pid
    assert ref.call(("get", "a")) == 1


def test_default_init_state_is_args(system: ActorSystem) -> None:
    class Plain(GenServer):
        def handle_call(self, request: Any, from_: From, state: Any) -> Reply:
            return Reply(state)

    assert start(system, Plain(), [1, 2]).call("state") == [1, 2]


def test_reply_sets_or_keeps_state(system: ActorSystem) -> None:
    ref = start(system, Store())
    assert ref.call(("put", "k", 1)) == "ok"
    assert ref.call(("get", "k")) == 1  # Reply(value) keeps the state
    assert ref.call(("state",)) == {"k": 1}


def test_call_by_every_kind_of_address(system: ActorSystem) -> None:
    ref = start(system, Store(), {"x": 7}, name="store")
    assert system.whereis("store") == ref.pid
    assert call(ref, ("get", "x")) == 7
    assert call("store", ("get", "x"), system=system) == 7
    assert call(ref.pid, ("get", "x"), system=system) == 7
    assert call(ActorRef(system, ref.pid), ("get", "x")) == 7
    assert system.call("store", ("get", "x")) == 7
    with pytest.raises(TypeError, match="needs system="):
        call(ref.pid, ("get", "x"))


def test_call_from_plain_code_names_the_system_pid(system: ActorSystem) -> None:
    ref = start(system, Store())
    from_ = ref.call(("from",))
    assert isinstance(from_, From) and from_.pid == SYSTEM_PID


def test_call_from_an_actor(system: ActorSystem) -> None:
    ref = start(system, Store(), {"x": 1}, name="store")

    def client(ctx: ActorContext) -> Any:
        return (
            ctx.pid,
            ctx.call("store", ("get", "x")),
            call(ref.pid, ("from",), system=ctx).pid,
            ctx.call(ref, ("from",)).pid,
        )

    me, value, from_pid, from_pid2 = run_actor(system, client)
    assert value == 1
    assert from_pid == me and from_pid2 == me  # the caller is named in From


def test_cast_and_info(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server, name="store")
    ref.cast(("put", "a", 1))
    cast(system, "store", ("put", "b", 2))
    cast(system, ref.pid, ("put", "c", 3))
    cast(system, "nobody", ("put", "d", 4))  # a cast never fails
    system.send(ref.pid, "raw")  # anything else is info
    system.send(ref.pid, ("a", "tuple"))
    assert ref.call(("state",)) == {"a": 1, "b": 2, "c": 3, "info": ["raw", ("a", "tuple")]}
    assert [e[0] for e in server.events] == ["init", "cast", "cast", "cast", "info", "info", "call"]


def test_cast_from_an_actor(system: ActorSystem) -> None:
    ref = start(system, Store())
    run_actor(system, lambda ctx: cast(ctx, ref, ("put", "k", "v")))
    assert ref.call(("get", "k")) == "v"


def test_mailbox_size_is_passed_on(system: ActorSystem) -> None:
    ref = start(system, Store(), mailbox_size=3)
    ctx = system.context_of(ref.pid)
    assert ctx is not None and ctx._mailbox.maxsize == 3


def test_default_callbacks(system: ActorSystem, caplog: pytest.LogCaptureFixture) -> None:
    class Bare(GenServer):
        pass

    ref = start(system, Bare(), "s")
    with caplog.at_level(logging.WARNING, logger="joerl.gen_server"):
        ref.cast("what")
        ref.send("this")
        with pytest.raises(CallError) as info:
            ref.call("anything", timeout=30)
    unexpected = [r.getMessage() for r in caplog.records if r.name == "joerl.gen_server"]
    assert any("unexpected cast: 'what'" in m for m in unexpected)
    assert any("unexpected message: 'this'" in m for m in unexpected)
    assert isinstance(info.value.reason, NotImplementedError)
    assert "define handle_call" in str(info.value.reason)
    assert ref.join(WAIT)


# -- deferred replies ---------------------------------------------------------------


def test_deferred_reply_via_timer_to_self(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server)
    assert ref.call(("later_timer", 0.01, "tick")) == "tick"
    kind, (tag, _from, value) = server.events[-1]
    assert (kind, tag, value) == ("info", "answer", "tick")  # the timer went to handle_info


def test_deferred_reply_from_another_greenlet(system: ActorSystem) -> None:
    ref = start(system, Store())
    assert ref.call(("later_greenlet", "from a greenlet")) == "from a greenlet"


def test_deferred_reply_from_another_actor(system: ActorSystem) -> None:
    def worker(ctx: ActorContext) -> None:
        from_, value = ctx.receive()
        reply(ctx, from_, value.upper())

    helper = system.spawn_fn(worker)
    ref = start(system, Store())
    assert ref.call(("later_actor", helper.pid, "shout")) == "SHOUT"
    assert helper.join(WAIT)


def test_server_keeps_serving_while_a_reply_is_deferred(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server, {"x": 1})
    held = gevent.spawn(ref.call, ("hold",))
    gevent.sleep(0)  # the held call is sent first (callbacks run in order)
    assert ref.call(("get", "x")) == 1  # answered while the first call waits
    assert [e for e in server.events if e[0] == "call"] == [("call", ("hold",)), ("call", ("get", "x"))]
    ref.cast(("release", "now"))
    assert held.get(timeout=WAIT) == "now"


# -- stopping -----------------------------------------------------------------------


def test_stop_from_call_with_reply(system: ActorSystem, probe: Any) -> None:
    server = Store()
    ref = start(system, server, {"a": 1})
    mref = system.monitor(probe.pid, ref.pid)
    assert ref.call(("stop_reply",)) == "bye"
    # terminate ran before the reply was sent, with the state Stop gave
    assert server.terminations() == [("terminate", "done", {"a": 1, "stopped": True})]
    assert probe.receive() == Down(mref, ref.pid, "done")


def test_stop_from_call_without_reply_fails_the_call(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server)
    with pytest.raises(CallError) as info:
        ref.call(("stop", "enough"), timeout=30)
    assert info.value.reason == "enough"
    assert server.terminations() == [("terminate", "enough", {})]


def test_ctx_stop_in_handle_call_fails_the_call(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server)
    with pytest.raises(CallError) as info:
        ref.call(("ctx_stop",), timeout=30)
    assert info.value.reason == "quit"
    assert server.terminations() == [("terminate", "quit", {})]


def test_stop_from_cast_and_from_info(system: ActorSystem) -> None:
    a, b = Store(), Store()
    ref_a, ref_b = start(system, a, {"n": 1}), start(system, b)
    ref_a.cast(("stop", "cast_stop"))
    ref_b.send("stop_info")
    assert ref_a.join(WAIT) and ref_b.join(WAIT)
    assert a.terminations() == [("terminate", "cast_stop", {"n": 1, "by": "cast"})]
    assert b.terminations() == [("terminate", "info_stop", {})]


def test_ref_stop_runs_terminate_after_queued_messages(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server, name="store")
    for i in range(3):
        ref.cast(("put", i, i))
    assert ref.stop("bye") is True
    assert server.terminations() == [("terminate", "bye", {0: 0, 1: 1, 2: 2})]
    assert system.whereis("store") is None and not ref.is_alive()
    assert ref.stop() is True  # already gone


def test_terminate_on_shutdown(system: ActorSystem) -> None:
    server = Store()
    start(system, server, {"k": "v"})
    system.shutdown()
    assert server.terminations() == [("terminate", "shutdown", {"k": "v"})]


def test_terminate_on_system_stop_while_deferring(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server)
    waiting = gevent.spawn(ref.call, ("hold",), 30)
    gevent.sleep(0)
    system.stop(ref.pid, "gone")
    with pytest.raises(CallError) as info:  # the server died mid-call
        waiting.get(timeout=WAIT)
    assert info.value.reason == "gone"
    assert [e[:2] for e in server.terminations()] == [("terminate", "gone")]


def test_no_terminate_when_killed(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server)
    system.exit(ref.pid, KILL)
    assert ref.join(WAIT)
    assert server.terminations() == []


# -- failing calls ------------------------------------------------------------------


def test_crash_in_handle_call(system: ActorSystem, probe: Any) -> None:
    server = Store()
    ref = start(system, server, {"s": 1}, name="store")
    mref = system.monitor(probe.pid, ref.pid)
    t0 = time.monotonic()
    with pytest.raises(CallError) as info:
        ref.call(("crash",), timeout=30)
    assert time.monotonic() - t0 < WAIT  # at once, not at the timeout
    exc = info.value.reason
    assert isinstance(exc, Boom) and str(exc) == "in handle_call"
    assert info.value.server == ref.pid
    down = probe.receive()
    assert down == Down(mref, ref.pid, exc)  # the server died with it
    assert server.terminations() == [("terminate", exc, {"s": 1})]
    assert system.whereis("store") is None  # the name is free again
    start(system, Store(), name="store")


def test_bad_return_from_handle_call(system: ActorSystem) -> None:
    ref = start(system, Store())
    with pytest.raises(CallError) as info:
        ref.call(("bad_return",), timeout=30)
    assert isinstance(info.value.reason, TypeError)
    assert "Reply, NoReply or Stop" in str(info.value.reason)


def test_call_to_a_dead_server(system: ActorSystem) -> None:
    ref = start(system, Store(), name="store")
    assert ref.stop()
    for target in (ref, ref.pid, "store"):
        t0 = time.monotonic()
        with pytest.raises(CallError) as info:
            call(target, ("get", "x"), timeout=30, system=system)
        assert info.value.reason == NOPROC
        assert not isinstance(info.value, CallTimeout)
        assert time.monotonic() - t0 < WAIT


def test_server_dying_mid_call(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server)
    t0 = time.monotonic()
    with pytest.raises(CallError) as info:
        ref.call(("die_later",), timeout=30)
    assert time.monotonic() - t0 < WAIT
    assert isinstance(info.value.reason, Boom) and str(info.value.reason) == "in handle_info"
    assert not ref.is_alive()


def test_call_timeout_from_plain_code(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server, {"x": 1})
    with pytest.raises(CallTimeout) as info:
        ref.call(("hold",), timeout=0.05)
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, CallError)
    assert info.value.timeout == 0.05
    ref.cast(("release", "late"))
    assert ref.call(("get", "x")) == 1  # not the late reply
    assert ("released", "late") in server.events
    assert len(system._calls) == 0  # nothing left waiting


def test_call_timeout_late_reply_never_reaches_the_callers_mailbox(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server, {"x": 1})

    def client(ctx: ActorContext) -> Any:
        try:
            ctx.call(ref, ("hold",), timeout=0.05)
        except CallTimeout as exc:
            timed_out = exc
        cast(ctx, ref, ("release", "late"))
        # The server handles the release (replying late) before this call:
        after = ctx.call(ref, ("get", "x"))
        gevent.sleep(0)  # let anything scheduled for us run
        try:
            stray: Any = ctx.receive(timeout=0)
        except ReceiveTimeout:
            stray = None
        return timed_out, after, ctx._mailbox.messages(), stray

    timed_out, after, queued, stray = run_actor(system, client)
    assert isinstance(timed_out, CallTimeout)
    assert after == 1
    assert ("released", "late") in server.events
    assert queued == [] and stray is None


def test_calling_itself_fails_at_once(system: ActorSystem) -> None:
    ref = start(system, Store())
    assert ref.call(("call_self",), timeout=30) == ("calling_self", "calling_self")


def test_ref_stop_from_the_server_itself_fails(system: ActorSystem) -> None:
    class SelfStopper(GenServer):
        def handle_call(self, request: Any, from_: From, state: Any) -> Reply:
            try:
                GenServerRef(self.ctx.system, self.ctx.pid).stop()
            except CallError as exc:
                return Reply(exc.reason)
            return Reply("stopped?")

    assert start(system, SelfStopper()).call("stop yourself") == "calling_self"


# -- start failures -----------------------------------------------------------------


def test_init_raising_fails_start(system: ActorSystem) -> None:
    server = Store()
    error = Boom("init failed")
    with pytest.raises(StartError) as info:
        start(system, server, error, name="store")
    assert info.value.reason is error and info.value.__cause__ is error
    assert system.processes() == []  # nothing left behind
    assert system.whereis("store") is None
    assert server.terminations() == []  # terminate only runs after a good init


@pytest.mark.parametrize("args, reason", [("stop", "init_said_no"), ("ctx_stop", "bail")])
def test_init_stopping_fails_start(system: ActorSystem, args: str, reason: str) -> None:
    with pytest.raises(StartError) as info:
        start(system, Store(), args)
    assert info.value.reason == reason
    assert system.processes() == []


def test_init_overrunning_the_timeout(system: ActorSystem) -> None:
    server = Store()
    server.init_may_finish.clear()
    with pytest.raises(StartError) as info:
        start(system, server, timeout=0.05, name="slow")
    assert info.value.reason == "timeout"
    assert system.processes() == [] and system.whereis("slow") is None
    assert server.terminations() == []


def test_start_with_a_taken_name(system: ActorSystem) -> None:
    first = start(system, Store(), name="store")
    second = Store()
    with pytest.raises(StartError) as info:
        start(system, second, name="store")
    assert info.value.reason == ("already_started", first.pid)
    assert second.events == []
    assert system.processes() == [first.pid]


def test_start_argument_errors(system: ActorSystem) -> None:
    with pytest.raises(TypeError, match="instance, not the class"):
        start(system, Store)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a GenServer"):
        start(system, object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ActorContext"):
        start_link(system, Store())  # type: ignore[arg-type]
    server = Store()
    start(system, server)
    with pytest.raises(ValueError, match="already running"):
        start(system, server)


def test_instance_can_start_again_after_it_ended(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server, {"a": 1})
    ref.stop()
    ref2 = start(system, server, {"b": 2})
    assert ref2.pid != ref.pid and ref2.call(("state",)) == {"b": 2}


# -- start_link ---------------------------------------------------------------------


def test_start_link_links_to_the_caller(system: ActorSystem, probe: Any) -> None:
    linked = Event()

    def parent(ctx: ActorContext) -> None:
        ref = start_link(ctx, Store())
        probe.ref.send(ref)
        linked.wait()
        ctx.receive()  # until the server's crash kills us

    p = system.spawn_fn(parent)
    ref = probe.receive()
    parent_ctx, server_ctx = system.context_of(p.pid), system.context_of(ref.pid)
    assert parent_ctx is not None and server_ctx is not None
    assert parent_ctx._links is not None and ref.pid in parent_ctx._links
    assert server_ctx._links is not None and p.pid in server_ctx._links
    mref = system.monitor(probe.pid, p.pid)
    linked.set()
    with pytest.raises(CallError):
        ref.call(("crash",), timeout=30)
    down = probe.receive()
    assert down.ref == mref and isinstance(down.reason, Boom)  # the link took the parent down


@pytest.mark.parametrize("trapping", [False, True])
def test_start_link_failure_leaves_the_caller_alive(system: ActorSystem, trapping: bool) -> None:
    def parent(ctx: ActorContext) -> Any:
        ctx.trap_exit(trapping)
        outcomes = []
        for args, timeout in ((Boom("no"), 5.0), ("stop", 5.0)):
            with pytest.raises(StartError) as info:
                start_link(ctx, Store(), args, timeout=timeout)
            outcomes.append(info.value.reason)
        slow = Store()
        slow.init_may_finish.clear()
        with pytest.raises(StartError) as info:
            start_link(ctx, slow, timeout=0.05)
        outcomes.append(info.value.reason)
        gevent.sleep(0)
        return outcomes, ctx._mailbox.messages(), ctx._links, system.processes()

    outcomes, queued, links, procs = run_actor(system, parent)
    assert isinstance(outcomes[0], Boom) and outcomes[1:] == ["init_said_no", "timeout"]
    assert queued == []  # no Exit either: the link was gone before the child exited
    assert not links
    assert len(procs) == 1  # only the parent


def test_trapping_server_ends_when_its_parent_does(system: ActorSystem) -> None:
    server = Store()
    started = AsyncResult()

    def parent(ctx: ActorContext) -> None:
        started.set(start_link(ctx, server, "trap"))
        ctx.stop("bye")

    system.spawn_fn(parent)
    ref = started.get(timeout=WAIT)
    assert server.terminated.wait(WAIT)
    assert server.terminations() == [("terminate", "bye", {})]
    assert ref.join(WAIT)


def test_trapping_server_gets_other_exits_as_info(system: ActorSystem) -> None:
    server = Store()
    ref = start(system, server, "trap")
    other = system.spawn_fn(lambda ctx: ctx.receive())
    system.link(ref.pid, other.pid)
    system.exit(other.pid, "because")
    assert other.join(WAIT)
    state = ref.call(("state",))
    assert state["info"] == [Exit(other.pid, "because")]


# -- the examples -------------------------------------------------------------------


def _example(name: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / name), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _read_ready_port(proc: subprocess.Popen[str], timeout: float = 20.0) -> int:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise AssertionError("the example printed no READY line in time")
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"the example exited early: {proc.stderr.read() if proc.stderr else ''}")
            if line.startswith("READY port="):
                return int(line.split("=", 1)[1])
    finally:
        sel.close()


def test_wsgi_example_serves_real_http_requests() -> None:
    proc = _example("wsgi_server.py", "--port", "0", "--requests", "6")
    try:
        port = _read_ready_port(proc)
        base = f"http://127.0.0.1:{port}"

        def get(path: str) -> dict:
            with urllib.request.urlopen(base + path, timeout=10) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "application/json"
                return json.loads(resp.read())

        assert get("/hit/a") == {"key": "a", "hits": 1, "total": 1}
        assert get("/hit/a") == {"key": "a", "hits": 2, "total": 2}
        assert get("/hit/b") == {"key": "b", "hits": 1, "total": 3}
        # Two deferred replies at once: each request waits on its own call.
        with ThreadPoolExecutor(2) as pool:
            slow = list(pool.map(get, ["/slow?ms=100", "/slow?ms=50"]))
        assert slow == [{"waited_ms": 100}, {"waited_ms": 50}]
        assert get("/stats") == {"hits": {"a": 2, "b": 1}, "total": 6}
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "served 6 requests" in out


def test_counter_example_runs() -> None:
    proc = _example("gen_server_counter.py")
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "count is 3" in out and "StartError" in out and "CallTimeout" in out
