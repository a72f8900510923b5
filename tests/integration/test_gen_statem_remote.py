"""GenStatem across nodes: a machine on node b called from node a (by pid and
by ``(name, node)``, through ``system.call``, ``gen_statem.call``,
``gen_server.call`` and from an actor), a remote call postponed and answered
from a later state, casts, and a call failing when the machine stops.

Two real nodes in this process on loopback sockets (joerl.testing.node_cluster).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from joerl import gen_server, gen_statem
from joerl.errors import CallError
from joerl.gen_statem import GenStatem, KeepState, NextState, Postpone, Reply, StateTimeout, Stop
from joerl.node.node import DistributedSystem
from joerl.pid import Pid
from joerl.system import From
from joerl.testing import Probe, live_greenlets, node_cluster, wait_until

WAIT = 10.0


class Door(GenStatem):
    """A code lock: "wait" calls are postponed while locked and answered once open."""

    state_enter = True

    def __init__(self) -> None:
        self.froms: list[From] = []
        self.casts: list[Any] = []

    def init(self, code: Any) -> Any:
        return ("locked", code)

    def locked(self, event_type: Any, content: Any, code: Any) -> Any:
        if event_type == "enter":
            return KeepState()
        if event_type == "cast":
            self.casts.append(content)
            return KeepState()
        from_ = event_type[1]
        self.froms.append(from_)
        if content == "wait":
            return KeepState(actions=[Postpone()])
        if content == "stop":
            return Stop("asked to")
        if content == code:
            return NextState("open", actions=[Reply(from_, "open")])
        return KeepState(actions=[Reply(from_, "wrong")])

    def open(self, event_type: Any, content: Any, code: Any) -> Any:
        if event_type == "enter":
            return KeepState(actions=[StateTimeout(0.2, "lock")])
        if event_type == "state_timeout":
            return NextState("locked")
        self.froms.append(event_type[1])
        return KeepState(actions=[Reply(event_type[1], ("it is open", content))])


@pytest.fixture
def pair() -> Iterator[tuple[DistributedSystem, DistributedSystem]]:
    gevent.get_hub()
    before = live_greenlets()
    with node_cluster("a", "b", cookie="gen-statem-remote", global_names=False) as (a, b):
        assert a.connect_to_node("b", timeout=WAIT)
        yield a, b
    wait_until(lambda: not (live_greenlets() - before), timeout=WAIT, what="the test's greenlets to end")


def start_door(b: DistributedSystem) -> tuple[Door, Pid]:
    door = Door()
    ref = gen_statem.start(b.system, door, "1234", name="door")
    return door, Pid(b.node_id, ref.pid.id, b.creation)  # how node a names it


def test_a_machine_on_another_node_answers_every_call_path(pair: Any) -> None:
    a, b = pair
    door, remote = start_door(b)
    assert a.system.call(remote, "0000", timeout=WAIT) == "wrong"
    assert gen_statem.call(("door", "b"), "1111", WAIT, system=a.system) == "wrong"
    assert gen_server.call(("door", "b"), "1234", WAIT, system=a.system) == "open"
    caller = Probe(a, timeout=WAIT)
    assert caller.ctx.call(("door", "b"), "again", WAIT) == ("it is open", "again")
    assert all(isinstance(f, From) for f in door.froms)  # From again after the wire
    assert door.froms[-1].pid == caller.gpid  # the caller, as node b names it
    assert caller.pending() == []


def test_a_remote_call_postponed_while_locked_is_answered_once_open(pair: Any) -> None:
    a, b = pair
    door, remote = start_door(b)
    waiting = gevent.spawn(a.system.call, remote, "wait", WAIT)
    wait_until(lambda: len(door.froms) == 1, WAIT, what="the wait call to arrive")
    assert not waiting.ready()
    assert a.system.call(remote, "1234", timeout=WAIT) == "open"
    assert waiting.get(timeout=WAIT) == ("it is open", "wait")


def test_casts_from_another_node(pair: Any) -> None:
    a, b = pair
    door, remote = start_door(b)
    gen_statem.cast(a.system, ("door", "b"), "knock")
    gen_statem.cast(a.system, remote, "knock again")
    wait_until(lambda: door.casts == ["knock", "knock again"], WAIT, what="the casts")


def test_a_remote_call_fails_when_the_machine_stops_without_replying(pair: Any) -> None:
    a, b = pair
    _door, remote = start_door(b)
    with pytest.raises(CallError) as info:
        a.system.call(remote, "stop", timeout=WAIT)
    assert info.value.reason == "asked to"
