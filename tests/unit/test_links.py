"""Links and exit signals, with Erlang's semantics: bidirectional, non-normal
reasons propagate, trapping turns signals into Exit messages, "kill" is
untrappable and becomes "killed" (which is trappable), spawn_link is atomic."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from gevent.event import Event

from joerl.actor import Actor, ActorContext, ActorRef
from joerl.errors import NoProcError
from joerl.message import KILL, KILLED, NOPROC, NORMAL, SHUTDOWN, Down, Exit
from joerl.pid import Pid
from joerl.system import SYSTEM_PID, ActorSystem


class Boom(Exception):
    pass


def idle(ctx: ActorContext) -> None:
    """A process that lives until it receives "quit"."""
    ctx.receive(match=lambda m: m == "quit")


def start_idle(system: ActorSystem) -> ActorRef:
    """Spawn an idle process and wait until it runs (blocked in receive)."""
    running = Event()

    def body(ctx: ActorContext) -> None:
        running.set()
        idle(ctx)

    ref = system.spawn_fn(body)
    assert running.wait(2.0)
    return ref


class Tracked(Actor):
    """An idle class actor that records the reason its stopped() hook got."""

    def __init__(self) -> None:
        self.stopped_with: list[Any] = []
        self.running = Event()

    def started(self, ctx: ActorContext) -> None:
        self.running.set()

    def stopped(self, reason: Any, ctx: ActorContext) -> None:
        self.stopped_with.append(reason)


def watch(system: ActorSystem, probe: Any, *refs: ActorRef) -> dict[Pid, Any]:
    """Monitor each of ``refs`` from ``probe``; return pid -> monitor ref."""
    return {r.pid: system.monitor(probe.pid, r.pid) for r in refs}


def downs(probe: Any, n: int) -> dict[Pid, Any]:
    """The next ``n`` Down messages at the probe, as pid -> reason."""
    out = {}
    for _ in range(n):
        msg = probe.receive()
        assert isinstance(msg, Down), msg
        out[msg.pid] = msg.reason
    return out


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("joerl") and r.levelno >= logging.ERROR]


# -- propagation ------------------------------------------------------------------


@pytest.mark.parametrize("running", [True, False], ids=["running", "not-yet-running"])
@pytest.mark.parametrize("who_dies", ["a", "b"])
def test_links_are_bidirectional(system: ActorSystem, probe: Any, who_dies: str, running: bool) -> None:
    if running:
        a, b = start_idle(system), start_idle(system)
    else:
        a, b = system.spawn_fn(idle), system.spawn_fn(idle)
    system.link(a.pid, b.pid)
    watch(system, probe, a, b)
    victim, other = (a, b) if who_dies == "a" else (b, a)
    system.exit(victim.pid, "boom")
    assert downs(probe, 2) == {victim.pid: "boom", other.pid: "boom"}


def test_crash_propagates_with_the_exception_as_reason(
    system: ActorSystem, probe: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="joerl")
    err = Boom("x")

    def crasher(ctx: ActorContext) -> None:
        ctx.receive()
        raise err

    a, b = start_idle(system), system.spawn_fn(crasher)
    system.link(a.pid, b.pid)
    watch(system, probe, a, b)
    b.send("go")
    reasons = downs(probe, 2)
    assert reasons[a.pid] is err and reasons[b.pid] is err
    assert len(error_records(caplog)) == 1  # only the crash is logged, not its propagation


def test_chain_a_b_c(system: ActorSystem, probe: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="joerl")
    err = Boom("c")
    built = Event()
    refs: dict[str, ActorRef] = {}

    def c_body(ctx: ActorContext) -> None:
        ctx.receive(match=lambda m: m == "crash")
        raise err

    def b_body(ctx: ActorContext) -> None:
        refs["c"] = ctx.spawn_link(c_body)
        built.set()
        idle(ctx)

    def a_body(ctx: ActorContext) -> None:
        refs["b"] = ctx.spawn_link(b_body)
        idle(ctx)

    refs["a"] = system.spawn_fn(a_body)
    assert built.wait(2.0)
    watch(system, probe, *refs.values())
    refs["c"].send("crash")
    reasons = downs(probe, 3)
    assert set(reasons) == {r.pid for r in refs.values()}
    assert all(reason is err for reason in reasons.values())
    assert len(error_records(caplog)) == 1


def test_trapping_middle_stops_the_chain(system: ActorSystem, probe: Any) -> None:
    a, c = start_idle(system), start_idle(system)
    got: list[Any] = []
    ready = Event()

    def b_body(ctx: ActorContext) -> None:
        ctx.trap_exit(True)
        ctx.link(a.pid)
        ctx.link(c.pid)
        ready.set()
        got.append(ctx.receive(timeout=2.0))
        idle(ctx)

    b = system.spawn_fn(b_body)
    assert ready.wait(2.0)
    watch(system, probe, c)
    system.exit(c.pid, "boom")
    assert downs(probe, 1) == {c.pid: "boom"}
    assert probe.sync() == [], "marker"
    assert a.is_alive() and b.is_alive()
    b.send("quit")
    assert b.join(2.0)
    assert got == [Exit(c.pid, "boom")]
    assert a.is_alive()  # b ended normally: a is not affected


def test_normal_exit_does_not_propagate(system: ActorSystem, trapping_probe: Any) -> None:
    a, b = start_idle(system), start_idle(system)
    system.link(a.pid, b.pid)
    system.link(trapping_probe.pid, b.pid)
    b.send("quit")
    assert trapping_probe.receive() == Exit(b.pid, NORMAL)  # trapping: told
    assert b.join(2.0)
    assert a.is_alive()  # not trapping: unaffected


@pytest.mark.parametrize("reason", [SHUTDOWN, ("shutdown", "x"), "other"])
def test_non_normal_reasons_kill_linked_processes(system: ActorSystem, probe: Any, reason: Any) -> None:
    actor = Tracked()
    a, b = system.spawn(actor), start_idle(system)
    assert actor.running.wait(2.0)
    system.link(a.pid, b.pid)
    watch(system, probe, a)
    system.stop(b.pid, reason)
    assert downs(probe, 1) == {a.pid: reason}
    assert actor.stopped_with == [reason]  # an exit signal runs the hook


def test_trapping_process_gets_exit_message(system: ActorSystem, trapping_probe: Any) -> None:
    b = system.spawn_fn(idle)
    system.link(trapping_probe.pid, b.pid)
    system.exit(b.pid, "boom")
    assert trapping_probe.receive_with_sender() == (Exit(b.pid, "boom"), b.pid)
    assert trapping_probe.ref.is_alive()


def test_trap_turned_off_again(system: ActorSystem, probe: Any) -> None:
    b = system.spawn_fn(idle)
    ready = Event()

    def body(ctx: ActorContext) -> None:
        ctx.trap_exit(True)
        ctx.link(b.pid)
        ctx.trap_exit(False)
        ready.set()
        idle(ctx)

    a = system.spawn_fn(body)
    assert ready.wait(2.0)
    watch(system, probe, a)
    system.exit(b.pid, "boom")
    assert downs(probe, 1) == {a.pid: "boom"}


# -- link and unlink ---------------------------------------------------------------


def test_link_to_dead_pid_raises_noproc_when_not_trapping(system: ActorSystem) -> None:
    dead = system.spawn_fn(lambda ctx: None)
    assert dead.join(2.0)
    got: list[Any] = []

    def body(ctx: ActorContext) -> None:
        with pytest.raises(NoProcError) as info:
            ctx.link(dead.pid)
        got.append(info.value.pid)
        with pytest.raises(NoProcError):
            ctx.link(Pid(0, 10**9))  # never existed

    a = system.spawn_fn(body)
    assert a.join(2.0)
    assert got == [dead.pid]
    with pytest.raises(NoProcError):
        system.link(dead.pid, a.pid)


def test_link_to_dead_pid_delivers_noproc_when_trapping(system: ActorSystem) -> None:
    dead = system.spawn_fn(lambda ctx: None)
    assert dead.join(2.0)
    got: list[Any] = []

    def body(ctx: ActorContext) -> None:
        ctx.trap_exit(True)
        ctx.link(dead.pid)
        got.append(ctx.receive(timeout=2.0))

    assert system.spawn_fn(body).join(2.0)
    assert got == [Exit(dead.pid, NOPROC)]


def test_link_to_self_is_a_no_op(system: ActorSystem, probe: Any) -> None:
    def body(ctx: ActorContext) -> None:
        ctx.link(ctx.pid)
        ctx.unlink(ctx.pid)
        ctx.send(probe.pid, "ok")

    system.spawn_fn(body)
    assert probe.receive() == "ok"


@pytest.mark.parametrize("from_side", ["a", "b"])
def test_unlink_takes_effect_at_once(system: ActorSystem, probe: Any, from_side: str) -> None:
    a, b = system.spawn_fn(idle), system.spawn_fn(idle)
    system.link(a.pid, b.pid)
    if from_side == "a":
        system.unlink(a.pid, b.pid)
    else:
        system.unlink(b.pid, a.pid)
    watch(system, probe, b)
    system.exit(b.pid, "boom")
    assert downs(probe, 1) == {b.pid: "boom"}
    assert a.is_alive()


def test_ctx_unlink_then_partner_crashes(system: ActorSystem, trapping_probe: Any) -> None:
    b = system.spawn_fn(idle)

    def body(ctx: ActorContext) -> None:
        ctx.link(b.pid)
        ctx.unlink(b.pid)
        ctx.send(trapping_probe.pid, "unlinked")
        idle(ctx)

    a = system.spawn_fn(body)
    assert trapping_probe.receive() == "unlinked"
    system.link(trapping_probe.pid, b.pid)
    system.exit(b.pid, "boom")
    assert trapping_probe.receive() == Exit(b.pid, "boom")
    assert a.is_alive()


def test_link_is_removed_when_partner_dies(system: ActorSystem, trapping_probe: Any) -> None:
    b = system.spawn_fn(idle)
    system.link(trapping_probe.pid, b.pid)
    b.send("quit")
    assert trapping_probe.receive() == Exit(b.pid, NORMAL)
    c = system.spawn_fn(idle)
    system.link(trapping_probe.pid, c.pid)
    system.exit(c.pid, "later")
    assert trapping_probe.receive() == Exit(c.pid, "later")  # nothing left over from b
    assert trapping_probe.pending() == []


# -- exit/2 --------------------------------------------------------------------------


def test_exit_from_plain_code(system: ActorSystem, probe: Any, trapping_probe: Any) -> None:
    a = system.spawn_fn(idle)
    watch(system, probe, a)
    system.exit(a.pid, "boom")
    assert downs(probe, 1) == {a.pid: "boom"}
    system.exit(trapping_probe.pid, "boom")
    assert trapping_probe.receive_with_sender() == (Exit(SYSTEM_PID, "boom"), SYSTEM_PID)
    system.exit(a.pid, "boom")  # dead: ignored
    system.exit(Pid(0, 10**9), "boom")


def test_exit_from_actor_names_the_sender(system: ActorSystem, trapping_probe: Any) -> None:
    def body(ctx: ActorContext) -> None:
        ctx.exit(trapping_probe.pid, "go away")

    a = system.spawn_fn(body)
    assert trapping_probe.receive() == Exit(a.pid, "go away")


def test_exit_normal_is_ignored_by_a_non_trapping_process(system: ActorSystem, trapping_probe: Any) -> None:
    a = system.spawn_fn(idle)
    system.exit(a.pid, NORMAL)
    system.exit(trapping_probe.pid, NORMAL)
    assert trapping_probe.receive() == Exit(SYSTEM_PID, NORMAL)  # a trapping one is told
    assert a.is_alive()
    a.send("quit")
    assert a.join(2.0)


def test_exit_self_normal_ends_the_process(system: ActorSystem, probe: Any) -> None:
    after: list[str] = []

    def body(ctx: ActorContext) -> None:
        ctx.exit(ctx.pid, NORMAL)
        after.append("survived")

    a = system.spawn_fn(body)
    watch(system, probe, a)
    assert downs(probe, 1) == {a.pid: NORMAL}
    assert after == []


def test_exit_self_normal_when_trapping_is_a_message(system: ActorSystem) -> None:
    got: list[Any] = []

    def body(ctx: ActorContext) -> None:
        ctx.trap_exit(True)
        ctx.exit(ctx.pid, NORMAL)
        got.append(ctx.receive(timeout=2.0))

    a = system.spawn_fn(body)
    assert a.join(2.0)
    assert got == [Exit(a.pid, NORMAL)]


# -- kill -----------------------------------------------------------------------------


@pytest.mark.parametrize("trapping", [False, True])
def test_kill_is_untrappable_and_skips_stopped(system: ActorSystem, probe: Any, trapping: bool) -> None:
    actor = Tracked()
    ref = system.spawn(actor)
    assert actor.running.wait(2.0)
    system.context_of(ref.pid).trap_exit(trapping)  # type: ignore[union-attr]
    watch(system, probe, ref)
    system.exit(ref.pid, KILL)
    assert downs(probe, 1) == {ref.pid: KILLED}
    assert actor.stopped_with == []


def test_kill_from_an_actor_and_kill_self(system: ActorSystem, probe: Any) -> None:
    target = system.spawn_fn(idle)

    def killer(ctx: ActorContext) -> None:
        ctx.trap_exit(True)
        ctx.exit(target.pid, KILL)
        ctx.receive(match=lambda m: m == "now")
        ctx.exit(ctx.pid, KILL)

    k = system.spawn_fn(killer)
    watch(system, probe, target, k)
    assert downs(probe, 1) == {target.pid: KILLED}
    k.send("now")
    assert downs(probe, 1) == {k.pid: KILLED}


def test_killed_propagates_over_links_as_trappable_killed(system: ActorSystem, probe: Any, trapping_probe: Any) -> None:
    victim = start_idle(system)
    linked_actor = Tracked()
    linked = system.spawn(linked_actor)
    assert linked_actor.running.wait(2.0)
    system.link(victim.pid, linked.pid)
    system.link(victim.pid, trapping_probe.pid)
    watch(system, probe, victim, linked)
    system.exit(victim.pid, KILL)
    assert trapping_probe.receive() == Exit(victim.pid, KILLED)  # trappable: the probe lives
    assert downs(probe, 2) == {victim.pid: KILLED, linked.pid: KILLED}
    assert linked_actor.stopped_with == [KILLED]  # a link exit, not a kill: the hook runs
    assert trapping_probe.ref.is_alive()


def test_link_exit_with_reason_kill_is_trappable(system: ActorSystem, trapping_probe: Any) -> None:
    # a process that *ends* with reason "kill" sends "kill" over its links; unlike
    # exit(pid, "kill") that signal is an ordinary one (as in Erlang)
    a = system.spawn_fn(lambda ctx: (ctx.receive(), ctx.stop(KILL)))
    system.link(a.pid, trapping_probe.pid)
    a.send("go")
    assert trapping_probe.receive() == Exit(a.pid, KILL)
    assert trapping_probe.ref.is_alive()


# -- spawn_link --------------------------------------------------------------------


def test_spawn_link_child_crash_in_started_kills_parent(
    system: ActorSystem, probe: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="joerl")
    err = Boom("child")

    class Fails(Actor):
        def started(self, ctx: ActorContext) -> None:
            raise err

    def parent(ctx: ActorContext) -> None:
        ctx.spawn_link(Fails())
        idle(ctx)

    p = system.spawn_fn(parent)
    watch(system, probe, p)
    assert downs(probe, 1) == {p.pid: err}
    assert len(error_records(caplog)) == 1


def test_spawn_link_is_atomic(system: ActorSystem) -> None:
    # the child dies before it ever runs: the link exists already, so the parent hears of it
    got: list[Any] = []

    def parent(ctx: ActorContext) -> None:
        ctx.trap_exit(True)
        child = ctx.spawn_link(idle)
        ctx.exit(child.pid, "early")
        got.append((child.pid, ctx.receive(timeout=2.0)))
        child2 = ctx.spawn_link(lambda c: None)
        got.append((child2.pid, ctx.receive(timeout=2.0)))

    assert system.spawn_fn(parent).join(2.0)
    (c1, m1), (c2, m2) = got
    assert m1 == Exit(c1, "early")
    assert m2 == Exit(c2, NORMAL)


def test_spawn_link_parent_death_kills_child(system: ActorSystem, probe: Any) -> None:
    children: list[ActorRef] = []
    ready = Event()

    def parent(ctx: ActorContext) -> None:
        children.append(ctx.spawn_link(idle))
        ready.set()
        idle(ctx)

    p = system.spawn_fn(parent)
    assert ready.wait(2.0)
    watch(system, probe, children[0])
    system.exit(p.pid, "parent died")
    assert downs(probe, 1) == {children[0].pid: "parent died"}


def test_kill_ends_a_process_stuck_in_stopped() -> None:
    release = Event()
    in_stopped = Event()

    class Hangs(Actor):
        def stopped(self, reason: Any, ctx: ActorContext) -> None:
            in_stopped.set()
            release.wait()

    system = ActorSystem()
    try:
        ref = system.spawn(Hangs())
        system.exit(ref.pid, "shutdown")
        assert in_stopped.wait(2.0)
        system.exit(ref.pid, KILL)
        assert ref.join(1.0), "the killed process is still there"
    finally:
        release.set()
        system.shutdown()


# -- noproc for a pid of an earlier incarnation of this node ------------------------


def _stale_pid(node: Any, local: Pid) -> Pid:
    """``local`` as a peer would name it had this node been started before (another creation)."""
    stale: Pid = Pid(node.node_id, local.id, (node.creation % 0xFFFFFFFF) + 1)
    return stale


def test_link_to_a_pid_of_an_earlier_incarnation_of_this_node() -> None:
    from joerl.testing import node_cluster

    with node_cluster("links_stale") as (node,):
        system = node.system
        live = start_idle(system)
        stale = _stale_pid(node, live.pid)  # the same id, another creation: not `live`
        got: list[Any] = []

        def not_trapping(ctx: ActorContext) -> None:
            with pytest.raises(NoProcError) as info:
                ctx.link(stale)
            got.append(info.value.pid)

        assert system.spawn_fn(not_trapping).join(2.0)
        assert got == [stale]

        def trapping(ctx: ActorContext) -> None:
            ctx.trap_exit(True)
            ctx.link(stale)
            got.append(ctx.receive(timeout=0))  # queued already: at once

        assert system.spawn_fn(trapping).join(2.0)
        assert got == [stale, Exit(stale, NOPROC)]
        live.send("quit")
        assert live.join(2.0)


def test_link_to_this_nodes_own_wire_pid_links_the_local_process() -> None:
    from joerl.testing import Probe, node_cluster

    with node_cluster("links_own") as (node,):
        system = node.system
        target = start_idle(system)
        trapping = Probe(system, trap_exit=True, timeout=2.0)
        system.link(trapping.pid, node.global_pid(target.pid))
        system.exit(target.pid, "boom")
        assert trapping.receive() == Exit(target.pid, "boom")
