"""GenServer calls and remote spawn across nodes in one process (loopback sockets).

A call to a server of another node (by pid or by ``(name, node)``) returns its
reply; it fails at once when the server dies or its node is lost, and a reply
that comes after the timeout is dropped. ``spawn_remote`` starts a registered
factory on another node, optionally linked or monitored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
import pytest
from gevent.event import AsyncResult, Event
from test_node import BOOM, cluster, context, link, make_node, no_leaks, remote  # noqa: F401 - fixtures

from joerl import gen_server
from joerl.actor import Actor, ActorContext
from joerl.errors import CallError, CallTimeout, DistributionError, NodeUnreachable
from joerl.gen_server import GenServer, NoReply, Reply
from joerl.message import NOCONNECTION, NOPROC, Down, Exit
from joerl.node.names import node_name as full
from joerl.node.node import DistributedSystem
from joerl.pid import Pid
from joerl.system import From
from joerl.testing import Probe


class Store(GenServer):
    """A key/value server that can also crash, stall, or answer late."""

    def __init__(self) -> None:
        self.in_call = Event()
        self.held: AsyncResult = AsyncResult()

    def init(self, args: Any) -> Any:
        return {}

    def handle_call(self, request: Any, from_: From, state: Any) -> Any:
        op = request[0]
        if op == "put":
            state[request[1]] = request[2]
            return Reply("ok", state)
        if op == "get":
            return Reply(state.get(request[1]), state)
        if op == "whoami":
            self.seen_from = from_
            return Reply(from_.pid)
        if op == "crash":
            raise RuntimeError("boom")
        if op == "hold":  # answer later (or never)
            self.held.set(from_)
            self.in_call.set()
            return NoReply()
        raise ValueError(f"bad request {request!r}")

    def handle_cast(self, request: Any, state: Any) -> Any:
        if request == "release":  # answer the held call, then tell its caller
            from_ = self.held.get()
            self.reply(from_, "late")
            self.ctx.send(from_.pid, "after the late reply")
        return state


def start_store(node: DistributedSystem, name: str = "store") -> tuple[Store, Pid]:
    server = Store()
    ref = gen_server.start(node.system, server, name=name)
    return server, ref.pid


def call_in_greenlet(fn: Callable[[], Any]) -> tuple[gevent.Greenlet, AsyncResult]:
    """Run a blocking call in a greenlet; its outcome (value or exception) and duration in the result."""
    out: AsyncResult = AsyncResult()

    def run() -> None:
        t0 = time.monotonic()
        try:
            value: Any = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            value = exc
        out.set((value, time.monotonic() - t0))

    return gevent.spawn(run), out


# -- calls -----------------------------------------------------------------------------------------


def test_call_a_remote_server_by_pid_and_by_name(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    store, pid = start_store(b)
    server = remote(b, pid)
    assert a.system.call(server, ("put", "k", [1, {"x": 2}])) == "ok"
    assert a.system.call(("store", "b"), ("get", "k")) == [1, {"x": 2}]
    assert gen_server.call(("store", "b"), ("get", "missing"), system=a.system) is None
    # From an actor: the server gets a From with the caller's remote pid (the
    # same From as from a local caller), and the pid comes home as the caller's.
    caller = Probe(a)
    for dest in (server, ("store", "b")):
        assert caller.ctx.call(dest, ("whoami",)) == caller.pid
        seen = store.seen_from
        assert isinstance(seen, From) and seen.pid == caller.gpid
        assert seen.ref.node == a.node_id and seen.ref.creation == a.creation
    # Every call monitored the server for its duration only.
    assert a.is_process_alive(server)  # a round trip behind the last Demonitor
    assert not context(b, pid)._monitored_by
    assert not a.system._calls and not a._peers["b"].calls
    assert caller.pending() == [], "no reply or Down left in the caller's mailbox"


def test_call_to_a_dead_or_unknown_remote_server_fails_with_noproc(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    with pytest.raises(CallError) as info:
        a.system.call(Pid(b.node_id, 10_000, b.creation), ("get", "k"), timeout=5)
    assert info.value.reason == NOPROC
    with pytest.raises(CallError) as info:
        a.system.call(("nobody", "b"), ("get", "k"), timeout=5)
    assert info.value.reason == NOPROC


def test_a_server_that_crashes_mid_call_fails_the_call_at_once(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    _, pid = start_store(b)
    t0 = time.monotonic()
    with pytest.raises(CallError) as info:
        a.system.call(remote(b, pid), ("crash",), timeout=10)
    assert time.monotonic() - t0 < 2.0
    assert info.value.reason == BOOM
    assert not isinstance(info.value, CallTimeout)


@pytest.mark.parametrize("linked", [False, True], ids=["MONITOR and SEND", "CALL"])
@pytest.mark.parametrize("side", ["caller's side", "server's side"])
def test_a_node_lost_mid_call_fails_the_call_at_once_with_noconnection(
    cluster: list[DistributedSystem], side: str, linked: bool
) -> None:
    a, b, _ = cluster
    server, pid = start_store(b)
    caller = Probe(a)
    if linked:  # (a call on a link that is up goes as one CALL frame)
        assert a.connect_to_node("b")
    g, out = call_in_greenlet(lambda: caller.ctx.call(remote(b, pid), ("hold",), timeout=10))
    assert server.in_call.wait(5)
    (link(a, "b") if side == "caller's side" else link(b, "a")).close("test: node lost")
    exc, seconds = out.get(timeout=5)
    g.join(1)
    assert isinstance(exc, CallError) and not isinstance(exc, CallTimeout), exc
    assert exc.reason == NOCONNECTION
    assert seconds < 2.0, f"failed after {seconds:.2f}s: the timeout, not the loss"
    assert caller.pending() == []


def test_a_call_to_a_node_that_shuts_down_mid_call_fails_at_once(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    server, pid = start_store(b)
    g, out = call_in_greenlet(lambda: a.system.call(("store", "b"), ("hold",), timeout=10))
    assert server.in_call.wait(5)
    b.shutdown()
    exc, seconds = out.get(timeout=5)
    g.join(1)
    assert isinstance(exc, CallError) and not isinstance(exc, CallTimeout), exc
    assert exc.reason in ("shutdown", NOCONNECTION)  # the server ends first, then the link
    assert seconds < 2.0


def test_a_call_timeout_drops_the_late_reply(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    server, pid = start_store(b)
    caller = Probe(a)
    t0 = time.monotonic()
    with pytest.raises(CallTimeout):
        caller.ctx.call(remote(b, pid), ("hold",), timeout=0.3)
    assert time.monotonic() - t0 >= 0.3
    gen_server.cast(a.system, remote(b, pid), "release")
    # The marker follows the late reply on the same link: had the reply been
    # queued, it would come first.
    msg, sender = caller.receive_with_sender()
    assert (msg, sender) == ("after the late reply", remote(b, pid))
    assert caller.pending() == []
    # The server is fine and the caller can call again; no monitor is left behind.
    assert caller.ctx.call(remote(b, pid), ("get", "k")) is None
    assert a.is_process_alive(remote(b, pid))
    assert not context(b, pid)._monitored_by


def test_call_figures(cluster: list[DistributedSystem]) -> None:
    """Round trips per second: remote calls (by pid, by name) beside local calls, same run."""
    a, b, _ = cluster
    _, pid = start_store(b)
    _, local = start_store(a, name="local")
    caller = Probe(a)
    n = 1000
    rates = {}
    for label, dest in (("local", local), ("remote by pid", remote(b, pid)), ("remote by name", ("store", "b"))):
        caller.ctx.call(dest, ("get", "warm-up"))
        t0 = time.perf_counter()
        for i in range(n):
            caller.ctx.call(dest, ("get", i))
        rates[label] = n / (time.perf_counter() - t0)
    print("\ncalls from an actor, one process: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items()))


# -- remote spawn --------------------------------------------------------------------------------------


class Worker(Actor):
    """Answers ``("ping", n)`` with ``("pong", n, node)``; ``("die", reason)`` ends it."""

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if msg[0] == "ping":
            ctx.send(ctx.sender, ("pong", msg[1], self.node_name))
        elif msg[0] == "die":
            if msg[1] == "raise":
                raise RuntimeError("boom")
            ctx.stop(msg[1])


def adder(ctx: ActorContext, reply_to: Pid, x: int, y: int) -> None:
    ctx.send(reply_to, ("sum", x + y))


def test_spawn_remote_plain(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    b.register_factory("worker", lambda: Worker("b"))
    b.register_factory("adder", adder, function=True)
    inbox = Probe(a)
    pid = a.spawn_remote("b", "worker")
    assert isinstance(pid, Pid) and pid.node == b.node_id and pid.creation == b.creation
    inbox.ctx.send(pid, ("ping", 7))
    assert inbox.receive_with_sender() == (("pong", 7, "b"), pid)
    pid2 = a.spawn_remote("b", "adder", inbox.pid, 2, 3)
    assert inbox.receive_with_sender() == (("sum", 5), pid2)
    assert a.is_process_alive(pid) and pid2 != pid


@pytest.mark.parametrize("trap", [False, True])
def test_spawn_remote_linked(cluster: list[DistributedSystem], trap: bool) -> None:
    a, b, _ = cluster
    b.register_factory("worker", lambda: Worker("b"))
    caller = Probe(a, trap_exit=trap)
    watch = Probe(a)
    ref = watch.ctx.monitor(caller.pid)
    pid = a.spawn_remote("b", "worker", link=True, caller=caller.ctx)
    caller.ctx.send(pid, ("die", "raise"))
    if trap:
        assert caller.receive() == Exit(pid, BOOM)
        assert a.system.is_process_alive(caller.pid)
    else:
        assert watch.receive(Down) == Down(ref, caller.pid, BOOM)


def test_spawn_remote_link_goes_both_ways(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    b.register_factory("worker", lambda: Worker("b"))
    caller = Probe(a)
    pid = a.spawn_remote("b", "worker", link=True, caller=caller.pid)
    watch = Probe(b)
    ref = watch.ctx.monitor(Pid(0, pid.id, 0))
    a.system.exit(caller.pid, "went away")
    assert watch.receive(Down) == Down(ref, Pid(0, pid.id, 0), "went away")


def test_spawn_remote_monitored(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    b.register_factory("adder", adder, function=True)
    caller = Probe(a)
    # It runs and ends (normal) at once: the monitor is set before it can.
    pid, ref = a.spawn_remote("b", "adder", caller.pid, 1, 1, monitor=True, caller=caller.ctx)
    assert caller.receive("sum") == ("sum", 2)
    assert caller.receive(Down) == Down(ref, pid, "normal")
    assert caller.pending() == []


def test_spawn_remote_of_an_unknown_factory_is_a_clear_error(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    with pytest.raises(DistributionError, match="no factory 'nope' registered on node 'b@"):
        a.spawn_remote("b", "nope")
    b.register_factory("broken", lambda: 1 / 0)
    with pytest.raises(DistributionError, match="ZeroDivisionError"):
        a.spawn_remote("b", "broken")
    with pytest.raises(ValueError, match="caller"):
        a.spawn_remote("b", "nope", link=True)


def test_spawn_remote_on_an_unreachable_node_raises(cluster: list[DistributedSystem]) -> None:
    a = cluster[0]
    t0 = time.monotonic()
    with pytest.raises(NodeUnreachable) as info:
        a.spawn_remote("nosuchnode", "worker")
    assert info.value.node == full("nosuchnode")
    assert time.monotonic() - t0 < 2.0
