"""via names: ``("via", registry, name)`` wherever a name is taken (send,
try_send, send_after, cast, call, monitor, link, exit, supervisors' child
names), resolved through a user's registry class; a via name nobody holds
behaves as a plain name nobody holds."""

from __future__ import annotations

from typing import Any

import pytest
from zope.interface import classImplements
from zope.interface.verify import verifyObject

from joerl import gen_server
from joerl._via import IViaRegistry, ViaRegistry, check_via, is_via
from joerl.actor import ActorContext
from joerl.errors import CallError, NameTaken, NotRegistered
from joerl.gen_server import GenServer, Reply
from joerl.message import Down, Exit
from joerl.pid import Pid
from joerl.supervisor import ChildSpec, Supervisor, start_supervisor
from joerl.system import ActorSystem
from joerl.testing import Probe, wait_until


class DictRegistry:
    """A user's via registry: a dict, with a log of what was asked of it."""

    def __init__(self) -> None:
        self.names: dict[Any, Pid] = {}
        self.log: list[tuple[str, Any]] = []

    def register_name(self, name: Any, pid: Pid) -> bool:
        self.log.append(("register", name))
        if name in self.names:
            return False
        self.names[name] = pid
        return True

    def unregister_name(self, name: Any) -> None:
        self.log.append(("unregister", name))
        self.names.pop(name, None)

    def whereis_name(self, name: Any) -> Pid | None:
        return self.names.get(name)


classImplements(DictRegistry, IViaRegistry)


class Echo(GenServer):
    def init(self, args: Any) -> Any:
        return None

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(("echo", request), state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        self.ctx.send(request[0], ("cast", request[1]))
        return state


@pytest.fixture
def reg() -> DictRegistry:
    return DictRegistry()


def test_the_contract_is_a_protocol_and_an_interface(reg: DictRegistry) -> None:
    assert isinstance(reg, ViaRegistry)
    assert verifyObject(IViaRegistry, reg)
    assert not isinstance(object(), ViaRegistry)
    assert is_via(("via", reg, "x")) and not is_via(("via", reg)) and not is_via(["via", reg, "x"])
    with pytest.raises(TypeError, match="lacks register_name, unregister_name, whereis_name"):
        check_via(("via", object(), "x"))


def test_every_send_entry_point_takes_a_via_name(system: ActorSystem, probe: Probe, reg: DictRegistry) -> None:
    reg.names[("svc", 1)] = probe.pid  # any value can be a via name's key
    via = ("via", reg, ("svc", 1))
    system.send(via, 1)
    system.try_send(via, 2)
    system.send_after(0, via, 3)

    def body(ctx: ActorContext) -> None:
        ctx.send(via, 4)
        ctx.send_after(0, via, 5)

    sender = system.spawn_fn(body)
    got = [probe.receive_with_sender() for _ in range(5)]
    assert sorted(m for m, _ in got) == [1, 2, 3, 4, 5]
    assert dict(got)[4] == sender.pid, "ctx.send carries the sender as with a plain name"


def test_cast_and_call_by_via_name(system: ActorSystem, probe: Probe, reg: DictRegistry) -> None:
    ref = gen_server.start(system, Echo())
    reg.names["echo"] = ref.pid
    via = ("via", reg, "echo")
    assert gen_server.call(via, "hi", system=system) == ("echo", "hi")
    assert system.call(via, 7) == ("echo", 7)
    gen_server.cast(system, via, (probe.pid, "c"))
    assert probe.receive() == ("cast", "c")


def test_a_via_name_nobody_holds_behaves_as_a_plain_one(system: ActorSystem, probe: Probe, reg: DictRegistry) -> None:
    via = ("via", reg, "nobody")
    with pytest.raises(NotRegistered) as err:
        system.send(via, "x")
    assert err.value.name == via
    with pytest.raises(NotRegistered):
        system.try_send(via, "x")
    with pytest.raises(CallError) as call_err:
        system.call(via, "x", 1.0)
    assert call_err.value.reason == "noproc"
    ref = system.monitor(probe.pid, via)
    assert probe.receive(Down) == Down(ref, via, "noproc")
    gen_server.cast(system, via, "dropped")  # a cast never fails: counted
    system.send_after(0, via, "dropped")
    system.send_after(0.03, probe.pid, "marker")
    assert probe.receive() == "marker"
    assert system.stats.dropped_by_reason == {"unregistered": 2}


def test_monitor_link_and_exit_by_via_name(system: ActorSystem, make_probe: Any, reg: DictRegistry) -> None:
    watcher = make_probe(trap_exit=True)
    target = system.spawn_fn(lambda ctx: ctx.receive())
    reg.names["t"] = target.pid
    via = ("via", reg, "t")
    mref = system.monitor(watcher.pid, via)
    system.link(watcher.pid, via)
    system.exit(via, "bye")
    assert watcher.receive(Down) == Down(mref, target.pid, "bye")
    assert watcher.receive(Exit) == Exit(target.pid, "bye")


def test_resolution_happens_at_each_send(system: ActorSystem, make_probe: Any, reg: DictRegistry) -> None:
    a, b = make_probe(), make_probe()
    via = ("via", reg, "moving")
    timer = system.send_after(0.05, via, "late")
    reg.names["moving"] = a.pid
    system.send(via, "first")
    reg.names["moving"] = b.pid
    assert a.receive() == "first"
    assert b.receive() == "late", "a timer's via name is resolved when it fires"
    assert not timer.active


def test_a_registry_that_misbehaves(system: ActorSystem, probe: Probe, reg: DictRegistry) -> None:
    reg.names["bad"] = "not a pid"  # type: ignore[assignment]
    with pytest.raises(TypeError, match="not a Pid"):
        system.send(("via", reg, "bad"), "x")
    with pytest.raises(TypeError, match="lacks"):
        system.send_after(0, ("via", object(), "x"), "x")
    system.send_after(0, ("via", reg, "bad"), "x")  # fails in the hub: logged and counted, never raised
    system.send_after(0.03, probe.pid, "marker")
    assert probe.receive() == "marker"
    assert system.stats.dropped_by_reason == {"route_failed": 1}


# -- supervisors' child names ---------------------------------------------------------


def Sup(children: list[ChildSpec]) -> Supervisor:  # noqa: N802 - reads as a class
    return Supervisor("one_for_one", children, intensity=5, period=5)


def test_a_child_registered_under_a_via_name(system: ActorSystem, probe: Probe, reg: DictRegistry) -> None:
    via = ("via", reg, "echo")
    sup = start_supervisor(system, Sup([ChildSpec.worker("echo", Echo, name=via)]))
    first = reg.names["echo"]
    assert [c.pid for c in sup.which_children()] == [first]
    assert system.call(via, 1) == ("echo", 1)
    system.exit(first, "crash")  # restarted: the name follows the new child
    second = _wait_for_new(reg, "echo", first)
    assert second != first
    assert reg.log == [("register", "echo"), ("unregister", "echo"), ("register", "echo")]
    assert system.call(via, 2) == ("echo", 2)
    system.stop(sup.pid)
    assert "echo" not in reg.names, "unregistered when the child ends"


def _wait_for_new(reg: DictRegistry, name: str, old: Pid) -> Any:
    return wait_until(lambda: reg.names.get(name) not in (None, old) and reg.names[name], timeout=5.0)


def test_a_worker_fn_child_under_a_via_name(system: ActorSystem, probe: Probe, reg: DictRegistry) -> None:
    def body(ctx: ActorContext) -> None:
        while True:
            ctx.send(probe.pid, ("got", ctx.receive()))

    via = ("via", reg, "fn")
    sup = start_supervisor(system, Sup([ChildSpec.worker_fn("fn", body, name=via)]))
    system.send(via, "hello")
    assert probe.receive() == ("got", "hello")
    system.stop(sup.pid)
    assert reg.names == {}


def test_a_via_name_taken_fails_the_start(system: ActorSystem, probe: Probe, reg: DictRegistry) -> None:
    reg.names["echo"] = probe.pid
    with pytest.raises(Exception) as err:
        start_supervisor(system, Sup([ChildSpec.worker("echo", Echo, name=("via", reg, "echo"))]))
    assert "echo" in str(err.value)
    assert reg.names == {"echo": probe.pid}, "the holder keeps its name"
    with pytest.raises(TypeError, match="lacks"):
        ChildSpec.worker("x", Echo, name=("via", object(), "x"))


def test_name_taken_error_names_the_holder(system: ActorSystem, probe: Probe, reg: DictRegistry) -> None:
    from joerl.supervisor._child import register_via

    reg.names["n"] = probe.pid

    def body(ctx: ActorContext) -> None:
        victim = ctx.spawn_link(lambda c: c.receive())
        try:
            register_via(ctx, ("via", reg, "n"), victim)
        except NameTaken as exc:
            ctx.send(probe.pid, ("taken", str(exc), system.join(victim.pid, 2.0)))

    system.spawn_fn(body)
    kind, text, victim_gone = probe.receive()
    assert kind == "taken" and str(probe.pid) in text and victim_gone
