"""Global names as a via registry, on a real pair of loopback nodes in one process.

``("via", node.global_names, name)`` wherever a name is taken: send, call,
cast, monitor and the timers from the other node; a name nobody holds;
a supervisor's child registered globally through its via name, re-registered
for its successor when it is restarted and freed when it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from joerl import gen_server
from joerl.errors import CallError, NotRegistered
from joerl.gen_server import GenServer, Reply
from joerl.message import Down
from joerl.node.names import node_name as full
from joerl.node.node import DistributedSystem
from joerl.supervisor import ChildSpec, Supervisor, start_supervisor
from joerl.testing import Probe, live_greenlets, node_cluster, wait_until

WAIT = 5.0


class Echo(GenServer):
    def init(self, args: Any) -> Any:
        return None

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(("echo", request), state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        to, msg = request
        self.ctx.send(to, ("cast", msg))
        return state


@pytest.fixture
def pair() -> Iterator[tuple[DistributedSystem, DistributedSystem]]:
    gevent.get_hub()
    before = live_greenlets()
    with node_cluster("via_a", "via_b", cookie="joerl-via-test") as (a, b):
        assert a.connect_to_node("via_b")
        wait_until(lambda: full("via_a") in b.nodes(), WAIT, what="b sees a")
        yield a, b
    wait_until(lambda: not (live_greenlets() - before), timeout=WAIT, what="the test's greenlets to end")


def test_global_names_satisfy_the_via_contract(pair: Any) -> None:
    from joerl._via import ViaRegistry

    a, b = pair
    assert isinstance(a.global_names, ViaRegistry)


def test_send_call_cast_and_monitor_through_a_global_via_name(pair: Any) -> None:
    a, b = pair
    svc = Probe(a, timeout=WAIT)
    assert a.global_names.register_name("svc", svc.pid) is True
    via_b = ("via", b.global_names, "svc")
    b.system.send(via_b, ("hello", 1))
    assert svc.receive() == ("hello", 1)
    b.system.send_after(0, via_b, "timer")
    assert svc.receive() == "timer"

    echo = gen_server.start(a.system, Echo())
    assert a.global_names.register_name("echo", echo.pid)
    echo_b = ("via", b.global_names, "echo")
    assert gen_server.call(echo_b, "hi", system=b.system) == ("echo", "hi")
    watcher = Probe(b, timeout=WAIT)
    gen_server.cast(b.system, echo_b, (watcher.gpid, "c"))
    assert watcher.receive() == ("cast", "c")

    ref = b.system.monitor(watcher.pid, echo_b)
    assert b.system.call(echo_b, "sync") == ("echo", "sync")  # after the monitor, on the same link: it is set up
    a.system.exit(echo.pid, "bye")
    down = watcher.receive(Down)
    assert down.ref == ref and down.reason == "bye" and down.pid.id == echo.pid.id
    wait_until(lambda: b.global_names.whereis_name("echo") is None, WAIT, what="the name freed on b")


def test_a_global_via_name_nobody_holds(pair: Any) -> None:
    a, b = pair
    via = ("via", b.global_names, "nobody")
    with pytest.raises(NotRegistered):
        b.system.send(via, "x")
    with pytest.raises(CallError) as err:
        b.system.call(via, "x", 2.0)
    assert err.value.reason == "noproc"
    watcher = Probe(b, timeout=WAIT)
    ref = b.system.monitor(watcher.pid, via)
    assert watcher.receive(Down) == Down(ref, via, "noproc")


def test_timers_through_a_global_via_name_reach_the_other_node(pair: Any) -> None:
    a, b = pair
    svc, watcher = Probe(a, timeout=WAIT), Probe(a, timeout=WAIT)
    assert a.global_names.register_name("svc", svc.pid)
    via_b = ("via", b.global_names, "svc")
    ticks = b.system.send_interval(0.01, via_b, "tick")
    assert [svc.receive() for _ in range(3)] == ["tick"] * 3
    ticks.cancel()
    ref = a.system.monitor(watcher.pid, svc.pid)
    b.system.exit_after(0.01, via_b, "timed out")  # resolved to a's pid on b, then exit/2 across the link
    assert watcher.receive(Down) == Down(ref, svc.pid, "timed out")


def test_a_supervisor_child_registered_globally_through_via(pair: Any) -> None:
    a, b = pair
    via_a = ("via", a.global_names, "echo")
    via_b = ("via", b.global_names, "echo")
    sup = start_supervisor(a.system, Supervisor("one_for_one", [ChildSpec.worker("echo", Echo, name=via_a)]))
    first = a.global_names.whereis_name("echo")
    assert first is not None and first.node == 0
    wait_until(lambda: b.global_names.whereis_name("echo") is not None, WAIT, what="b has the name")
    assert b.system.call(via_b, 1) == ("echo", 1)

    a.system.exit(first, "crash")  # the supervisor frees the name, restarts, registers the successor
    second = wait_until(
        lambda: (p := a.global_names.whereis_name("echo")) is not None and p != first and p, WAIT, what="successor"
    )
    wait_until(
        lambda: (p := b.global_names.whereis_name("echo")) is not None and p.id == second.id, WAIT, what="b follows"
    )
    assert b.system.call(via_b, 2) == ("echo", 2)

    sup.stop()
    wait_until(lambda: b.global_names.whereis_name("echo") is None, WAIT, what="the name freed everywhere")
    assert a.global_names.whereis_name("echo") is None
