"""Registered names: register / unregister / whereis / registered, send by
name, NameTaken, and names freed when their process dies."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from test_monitors import start_idle

from joerl.actor import ActorContext
from joerl.errors import NameTaken, NoProcError, NotRegistered
from joerl.message import KILL, Down
from joerl.pid import Pid
from joerl.registry import Registry
from joerl.system import ActorSystem

# -- the Registry on its own ------------------------------------------------------


def test_registry_two_way_map() -> None:
    reg = Registry()
    a, b = Pid(0, 1), Pid(0, 2)
    reg.register("b-name", b)
    reg.register("a-name", a)
    assert reg.whereis("a-name") == a and reg.name_of(a) == "a-name"
    assert reg.registered() == ["a-name", "b-name"]
    with pytest.raises(NameTaken) as info:
        reg.register("a-name", Pid(0, 3))
    assert info.value.name == "a-name" and info.value.owner == a
    with pytest.raises(ValueError, match="already registered"):
        reg.register("other", a)
    assert reg.unregister("a-name") == a
    assert reg.whereis("a-name") is None and reg.name_of(a) is None
    with pytest.raises(NotRegistered) as nr:
        reg.unregister("a-name")
    assert nr.value.name == "a-name"
    reg.drop_pid(b)
    reg.drop_pid(b)
    assert reg.registered() == []


@pytest.mark.parametrize("bad", ["", 1, None, b"name"])
def test_registry_rejects_bad_names(bad: Any) -> None:
    with pytest.raises(TypeError, match="non-empty str"):
        Registry().register(bad, Pid(0, 1))


# -- names in a system --------------------------------------------------------------


def test_spawn_with_name(system: ActorSystem, probe: Any) -> None:
    seen: list[Any] = []

    def body(ctx: ActorContext) -> None:
        seen.append(ctx.whereis("echo"))  # registered before the process runs
        while True:
            msg = ctx.receive()
            ctx.send(probe.pid, ("echo", msg))

    ref = system.spawn_fn(body, name="echo")
    assert system.whereis("echo") == ref.pid
    system.send("echo", 1)
    system.try_send("echo", 2)
    assert probe.receive() == ("echo", 1)
    assert probe.receive() == ("echo", 2)
    assert seen == [ref.pid]
    assert "echo" in system.registered()


def test_registered_is_sorted(system: ActorSystem) -> None:
    for name in ("zeta", "alpha", "mid"):
        start_idle(system, name=name)
    assert system.registered() == ["alpha", "mid", "zeta"]


def test_ctx_register_and_send_by_name_from_an_actor(system: ActorSystem, probe: Any) -> None:
    def server(ctx: ActorContext) -> None:
        ctx.register("server")
        ctx.send(probe.pid, "registered")
        msg = ctx.receive()
        ctx.send(ctx.sender, ("reply", msg))

    def client(ctx: ActorContext) -> None:
        ctx.send("server", "hello")
        ctx.send(probe.pid, ctx.receive(timeout=2.0))

    system.spawn_fn(server)
    assert probe.receive() == "registered"
    system.spawn_fn(client)
    assert probe.receive() == ("reply", "hello")


def test_system_register_and_unregister(system: ActorSystem) -> None:
    a = start_idle(system)
    system.register("a", a)  # an ActorRef works
    assert system.whereis("a") == a.pid
    system.unregister("a")
    assert system.whereis("a") is None and system.registered() == []
    assert a.is_alive()
    with pytest.raises(NotRegistered) as info:
        system.send("a", "msg")
    assert info.value.name == "a"
    with pytest.raises(NotRegistered):
        system.unregister("a")
    system.register("a", a.pid)
    assert system.whereis("a") == a.pid


def test_taken_name_raises(system: ActorSystem) -> None:
    a = start_idle(system, name="taken")
    b = start_idle(system)
    with pytest.raises(NameTaken) as info:
        system.register("taken", b.pid)
    assert info.value.name == "taken" and info.value.owner == a.pid
    before = system.processes()
    with pytest.raises(NameTaken):
        system.spawn_fn(lambda ctx: None, name="taken")
    assert system.processes() == before  # the refused spawn left nothing behind
    assert system.whereis("taken") == a.pid


def test_taken_name_inside_an_actor(system: ActorSystem, probe: Any) -> None:
    start_idle(system, name="taken")

    def body(ctx: ActorContext) -> None:
        try:
            ctx.register("taken")
        except NameTaken as exc:
            ctx.send(probe.pid, ("refused", exc.name))

    system.spawn_fn(body)
    assert probe.receive() == ("refused", "taken")


def test_one_name_per_process(system: ActorSystem) -> None:
    a = start_idle(system, name="first")
    with pytest.raises(ValueError):
        system.register("second", a.pid)
    assert system.registered() == ["first"]


def test_register_dead_process_raises(system: ActorSystem) -> None:
    dead = system.spawn_fn(lambda ctx: None)
    assert dead.join(2.0)
    with pytest.raises(NoProcError) as info:
        system.register("ghost", dead.pid)
    assert info.value.pid == dead.pid
    assert system.whereis("ghost") is None


@pytest.mark.parametrize("how", ["normal", "crash", "kill", "link"])
def test_name_freed_on_death(system: ActorSystem, probe: Any, caplog: pytest.LogCaptureFixture, how: str) -> None:
    caplog.set_level(logging.CRITICAL, logger="joerl")

    def body(ctx: ActorContext) -> None:
        if ctx.receive() == "crash":
            raise RuntimeError("crash")

    ref = system.spawn_fn(body, name="worker")
    mref = system.monitor(probe.pid, ref.pid)
    if how == "normal":
        ref.send("return")
    elif how == "crash":
        ref.send("crash")
    elif how == "kill":
        system.exit(ref.pid, KILL)
    else:
        other = start_idle(system)
        system.link(other.pid, ref.pid)
        system.exit(other.pid, "boom")
    down = probe.receive()
    assert isinstance(down, Down) and down.ref == mref
    # the name is free by the time the Down arrives
    assert system.whereis("worker") is None
    assert "worker" not in system.registered()
    with pytest.raises(NotRegistered):
        system.send("worker", "late")
    again = start_idle(system, name="worker")
    assert system.whereis("worker") == again.pid


def test_send_to_unknown_name_from_an_actor_raises_there(
    system: ActorSystem, probe: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="joerl")

    def body(ctx: ActorContext) -> None:
        ctx.send("nobody", "x")

    ref = system.spawn_fn(body)
    mref = system.monitor(probe.pid, ref.pid)
    down = probe.receive()
    assert down.ref == mref and isinstance(down.reason, NotRegistered)


def test_join_and_alive_by_name(system: ActorSystem) -> None:
    ref = start_idle(system, name="j")
    assert system.is_process_alive("j")
    system.send("j", "quit")
    assert ref.join(2.0)
    with pytest.raises(NotRegistered):
        system.is_process_alive("j")
