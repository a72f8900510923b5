"""Local introspection: ``process_info``, ``processes_info``, ``system_info`` and their plain-term forms."""

from __future__ import annotations

from typing import Any

import pytest

from joerl import sys_calls
from joerl.actor import Actor, ActorContext
from joerl.gen_server import GenServer, Reply
from joerl.introspect import (
    ProcessInfo,
    as_dict,
    behaviour_of,
    process_info,
    process_info_from,
    processes_info,
    queued_messages,
    system_info,
    system_info_from,
    top,
)
from joerl.supervisor import ChildSpec, Supervisor
from joerl.system import ActorSystem
from joerl.testing import Probe, wait_until


class Echo(Actor):
    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if isinstance(msg, tuple) and msg[0] == "echo":
            ctx.send(msg[1], msg[2])


class Counter(GenServer):
    def init(self, args: Any) -> Any:
        return {"count": 41}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        state["count"] += 1
        return Reply(state["count"])


def test_a_process_is_described(system: ActorSystem, probe: Probe) -> None:
    system.count_messages = True
    ref = system.spawn(Echo(), name="echo")
    for i in range(3):
        ref.send(("echo", probe.pid, i))
    assert [probe.receive() for _ in range(3)] == [0, 1, 2]
    info = system.process_info(ref)
    assert info is not None
    assert info.pid == ref.pid and info.name == "echo"
    assert info.actor == f"{__name__}.Echo" and info.behaviour is None
    assert info.status == "waiting" and info.mailbox_len == 0
    assert info.received == 3 and info.sent == 3
    assert info.trap_exit is False and info.parent is None and info.supervisor is False
    assert info.memory > 0
    assert process_info(system, "echo") == info  # by name too
    assert system.process_info(ref.pid) == info


def test_counts_and_mailbox_of_a_function_process(system: ActorSystem) -> None:
    system.count_messages = True

    def body(ctx: ActorContext) -> None:
        ctx.receive(lambda m: m == "go")  # leaves the others queued
        ctx.receive()

    ref = system.spawn_fn(body)
    for m in ("a", "b", "c"):
        ref.send(m)
    wait_until(lambda: (i := system.process_info(ref)) is not None and i.status == "waiting" and i.mailbox_len == 3)
    info = system.process_info(ref)
    assert info is not None and info.actor.endswith("body") and info.received == 0
    assert queued_messages(system, ref.pid) == ["'a'", "'b'", "'c'"]
    assert queued_messages(system, ref.pid, limit=1) == ["'a'"]
    ref.send("go")
    wait_until(lambda: (i := system.process_info(ref)) is None or i.received == 2)


def test_links_monitors_trap_exit_and_parent(system: ActorSystem, trapping_probe: Probe) -> None:
    def parent(ctx: ActorContext) -> None:
        ctx.trap_exit(True)
        child = ctx.spawn_link(lambda c: c.receive())
        ctx.monitor(trapping_probe.pid)
        ctx.send(trapping_probe.pid, ("child", child.pid))
        ctx.receive()

    p = system.spawn_fn(parent)
    _, child = trapping_probe.receive()
    watched_by = system.monitor(trapping_probe.pid, p)
    info = system.process_info(p)
    assert info is not None
    assert info.links == (child,) and info.trap_exit is True
    assert info.monitors == (trapping_probe.pid,)
    assert info.monitored_by == (trapping_probe.pid,)
    child_info = system.process_info(child)
    assert child_info is not None and child_info.parent == p.pid and child_info.links == (p.pid,)
    system.demonitor(trapping_probe.pid, watched_by)


def test_a_dead_process_has_no_info(system: ActorSystem) -> None:
    ref = system.spawn_fn(lambda ctx: None)
    assert ref.join(2.0)
    assert system.process_info(ref) is None
    assert system.process_info("nobody") is None
    with pytest.raises(TypeError, match="process_info takes"):
        system.process_info(3.5)


def test_behaviours_and_supervisors_are_named(system: ActorSystem) -> None:
    sup = Supervisor("one_for_one", [ChildSpec.worker("counter", Counter)])
    sup_ref = system.spawn(sup, name="sup")
    wait_until(lambda: len(processes_info(system)) == 2)
    infos = {i.name or "child": i for i in processes_info(system)}
    assert infos["sup"].behaviour == "supervisor" and infos["sup"].supervisor
    child = infos["child"]
    assert child.behaviour == "gen_server" and child.parent == sup_ref.pid
    assert sys_calls.get_state(child.pid, system=system) == {"count": 41}
    assert behaviour_of(Echo()) is None


def test_system_info(system: ActorSystem, probe: Probe) -> None:
    system.count_messages = True
    ref = system.spawn(Echo(), name="echo")
    ref.send(("echo", probe.pid, 1))
    probe.receive()
    system.send(system.spawn_fn(lambda ctx: None).pid, "lost?")  # to a process that may be gone
    info = system_info(system)
    assert info.name == "test" and info.processes == len(system.processes())
    assert ("echo", ref.pid) in info.registered
    assert info.received is not None and info.received >= 1 and info.sent is not None and info.sent >= 1
    assert info.dropped == system.stats.dropped
    assert info.spawned == system.stats.spawned >= 3 and info.restarts == 0 and info.crashed == 0


def test_plain_terms_round_trip(system: ActorSystem) -> None:
    ref = system.spawn(Echo(), name="echo")
    info = system.process_info(ref)
    assert info is not None
    terms = as_dict(info)
    assert terms["pid"] == ref.pid and isinstance(terms["links"], list)
    assert process_info_from(terms) == info
    sinfo = system_info(system)
    assert system_info_from(as_dict(sinfo)) == sinfo
    with pytest.raises(ValueError, match="not a process_info map"):
        process_info_from({"pid": ref.pid})
    with pytest.raises(ValueError, match="not a process_info map"):
        process_info_from({**terms, "pid": "not a pid"})


def test_top_sorts_largest_first(system: ActorSystem) -> None:
    def idle(ctx: ActorContext) -> None:
        ctx.receive(lambda m: m == "never")

    busy = system.spawn_fn(idle)
    quiet = system.spawn_fn(idle)
    for _ in range(5):
        busy.send("x")
    quiet.send("x")
    wait_until(lambda: sum(i.mailbox_len for i in processes_info(system)) == 6)
    ranked = top(processes_info(system), "mailbox_len", limit=1)
    assert [i.pid for i in ranked] == [busy.pid]
    assert [i.pid for i in top(processes_info(system), "pid")] == [busy.pid, quiet.pid]
    with pytest.raises(ValueError, match="cannot sort by"):
        top([], "colour")


def test_the_status_of_the_asking_process_is_running(system: ActorSystem, probe: Probe) -> None:
    def me(ctx: ActorContext) -> None:
        info = ctx.system.process_info(ctx.pid)
        ctx.send(probe.pid, info.status if info else None)

    system.spawn_fn(me)
    assert probe.receive() == "running"


def test_info_is_a_frozen_dataclass(system: ActorSystem) -> None:
    info = system.process_info(system.spawn(Echo()))
    assert isinstance(info, ProcessInfo)
    with pytest.raises(AttributeError):
        info.name = "x"  # type: ignore[misc]
