"""Links, remote spawn, calls and global names with a peer that is a real OS process.

The same features are tested with several nodes in one process in
``tests/integration`` (test_node_links.py, test_node_calls.py,
test_global_names.py); here the far end is a ``node_main.py host`` process,
so exit signals, spawn requests, calls and name tables cross a real process
boundary, and a node killed with SIGKILL is gone without a word. One host
node serves the tests that leave it alive; a test that kills its node starts
its own. The test's own node runs in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from _matchers import Raised
from gevent.event import AsyncResult
from test_nodes import COOKIE, ROOT, WAIT, epmd_argv, node_argv, start_child

from joerl import gen_server
from joerl.actor import ActorContext
from joerl.errors import CallError, CallTimeout
from joerl.gen_server import From, GenServer, NoReply
from joerl.message import NOCONNECTION, Down, Exit, NodeDown
from joerl.node.names import node_name as full
from joerl.node.node import DistributedSystem
from joerl.pid import Pid
from joerl.testing import ChildProcess, Probe, ProcessGroup, wait_until

STEP = 10.0  # the longest any single step may take (a shared, busy machine)
PROMPT = 3.0  # "at once": far below the call timeout, with slack for a busy machine
BOOM = Raised("RuntimeError", "boom")  # an exception crosses nodes as an ExceptionReason
HOST = "host"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def epmd() -> Iterator[str]:
    """A private port mapper process for this module's nodes; its address."""
    with start_child(epmd_argv()) as child:
        yield f"127.0.0.1:{child.wait_ready(STEP)['port']}"


@pytest.fixture(scope="module")
def here(epmd: str) -> Iterator[DistributedSystem]:
    """This test process as a node (default tick time: losses are seen by EOF, not ticks)."""
    node = DistributedSystem("tester", "127.0.0.1:0", epmd, cookie=COOKIE, start_epmd=False)
    try:
        yield node
    finally:
        node.shutdown()


@pytest.fixture(scope="module")
def host(epmd: str, here: DistributedSystem) -> Iterator[ChildProcess]:
    """The ``host`` node process the tests that leave it alive share."""
    with start_child(node_argv(HOST, epmd, "host", tick=60.0)) as child:
        child.wait_ready(STEP)
        yield child


@pytest.fixture
def start_host(epmd: str) -> Iterator[Callable[[str], ChildProcess]]:
    """``start_host(name)``: a ``host`` node process of this test's own (to kill)."""
    with ProcessGroup(cookie=COOKIE, cwd=ROOT, timeout=WAIT) as group:

        def start(name: str) -> ChildProcess:
            child = group.start(node_argv(name, epmd, "host", tick=60.0))
            child.wait_ready(STEP)
            return child

        yield start


def call_in_greenlet(node: DistributedSystem, server: Any, request: Any, timeout: float) -> AsyncResult:
    """``node`` calls ``server`` from a greenlet; the result holds (value or
    exception, seconds the call took)."""
    out: AsyncResult = AsyncResult()

    def run() -> None:
        t0 = time.monotonic()
        try:
            value: Any = node.system.call(server, request, timeout=timeout)
        except CallError as exc:
            value = exc
        out.set((value, time.monotonic() - t0))

    gevent.spawn(run)
    return out


# -- links ------------------------------------------------------------------------------------


def test_a_remote_exit_reaches_a_linked_trapping_process_here(here: DistributedSystem, host: ChildProcess) -> None:
    trapper = Probe(here, trap_exit=True, timeout=STEP)
    victim = here.spawn_remote(HOST, "worker")
    trapper.ctx.link(victim)
    # The Link frame goes out before this message on the same link.
    trapper.ctx.send(victim, ("die", ("custom", [1, 2])))
    assert trapper.receive(Exit) == Exit(victim, ("custom", [1, 2]))
    assert here.system.is_process_alive(trapper.pid)


def test_a_local_exit_reaches_a_linked_trapping_process_there(here: DistributedSystem, host: ChildProcess) -> None:
    report = Probe(here, timeout=STEP)
    local = Probe(here, timeout=STEP)
    there = here.spawn_remote(HOST, "linker", local.pid, report.pid)
    assert report.receive("linked") == ("linked", there)
    here.system.exit(local.pid, ("bad", "thing"))
    # The linker names it by its node-wide pid, which comes home as the local one.
    assert report.receive("exit") == ("exit", local.pid, ("bad", "thing"))


# -- remote spawn -------------------------------------------------------------------------------


def test_spawn_remote_linked_and_monitored_reports_the_death(here: DistributedSystem, host: ChildProcess) -> None:
    caller = Probe(here, trap_exit=True, timeout=STEP)
    pid, ref = here.spawn_remote(HOST, "worker", link=True, monitor=True, caller=caller.ctx)
    assert here.node_of(pid) == full(HOST)
    caller.ctx.send(pid, ("ping", 1))
    assert caller.receive("pong") == ("pong", 1)
    caller.ctx.send(pid, ("die", "raise"))
    assert caller.receive(Exit) == Exit(pid, BOOM)
    assert caller.receive(Down) == Down(ref, pid, BOOM)
    assert not here.is_process_alive(pid)


class Broker(GenServer):
    """Hands every call's ``From`` to ``helper`` and answers nothing itself."""

    def __init__(self, helper: Pid) -> None:
        self.helper = helper

    def handle_call(self, request: Any, from_: From, state: Any) -> NoReply:
        self.ctx.send(self.helper, ("answer", from_, request))
        return NoReply()


def test_a_local_call_is_answered_from_another_os_process(here: DistributedSystem, host: ChildProcess) -> None:
    """``From`` crosses into the host process as data; its reply resolves this node's local call."""
    helper = here.spawn_remote(HOST, "answerer")
    broker = gen_server.start(here.system, Broker(helper)).pid
    assert here.system.call(broker, "q", timeout=STEP) == ("answered", "q")
    assert Probe(here).ctx.call(broker, "r", timeout=STEP) == ("answered", "r")


def test_a_caller_killed_while_spawn_link_is_in_flight_takes_the_remote_child_down(
    here: DistributedSystem, host: ChildProcess
) -> None:
    report = Probe(here, timeout=STEP)
    in_flight_at_kill: list[int] = []

    def kill(pid: Pid) -> None:
        in_flight_at_kill.append(here._spawner.in_flight)
        here.system.exit(pid, "kill")

    def caller_body(ctx: ActorContext) -> None:
        gevent.spawn(kill, ctx.pid)  # runs as soon as the caller waits: right after the request left
        here.spawn_remote(HOST, "announced", report.pid, link=True, caller=ctx, timeout=STEP)

    caller = here.spawn_fn(caller_body).pid
    assert here.system.join(caller, STEP)
    assert in_flight_at_kill == [1], "killed while the spawn was in flight"
    child = report.receive("child")[1]
    assert here.node_of(child) == full(HOST)
    wait_until(lambda: not here.is_process_alive(child), STEP, what="the child to be taken down")
    wait_until(lambda: here._spawner.in_flight == 0, STEP, what="the spawn's bookkeeping to go")


# -- nodes killed with SIGKILL ----------------------------------------------------------------------


def test_a_call_whose_server_node_is_killed_fails_at_once_with_noconnection(
    here: DistributedSystem, start_host: Callable[[str], ChildProcess]
) -> None:
    node = start_host("victim_c")
    server = ("store", "victim_c")
    assert here.system.call(server, ("echo", 7), timeout=STEP) == 7
    out = call_in_greenlet(here, server, ("hold",), timeout=30.0)
    node.wait_line("HELD", STEP)
    t0 = time.monotonic()
    node.proc.kill()
    exc, seconds = out.get(timeout=STEP)
    failed_after = time.monotonic() - t0
    print(f"\na call whose server's node was killed -9 failed after {failed_after * 1000:.0f} ms")
    assert isinstance(exc, CallError) and not isinstance(exc, CallTimeout), exc
    assert exc.reason == NOCONNECTION
    assert failed_after < PROMPT and seconds < 30.0


def test_a_global_name_of_a_killed_node_disappears(
    here: DistributedSystem, start_host: Callable[[str], ChildProcess]
) -> None:
    node = start_host("victim_g")
    watch = Probe(here, timeout=STEP)
    holder = here.spawn_remote("victim_g", "worker")
    here.monitor_node(watch.pid, "victim_g")
    watch.ctx.send(holder, ("global_register", "the-holder"))
    assert watch.receive("registered") == ("registered", True)
    assert wait_until(lambda: here.global_whereis("the-holder"), STEP, what="the name seen here") == holder
    here.global_send("the-holder", ("ping", 2), sender=watch.pid)
    assert watch.receive("pong") == ("pong", 2)

    node.proc.kill()
    assert watch.receive(NodeDown) == NodeDown(full("victim_g"), NOCONNECTION)
    wait_until(lambda: here.global_whereis("the-holder") is None, STEP, what="the name gone")
    assert "the-holder" not in here.global_registered()
