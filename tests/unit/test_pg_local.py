"""joerl.pg on one ActorSystem: join/leave (repeated memberships), reads, a dead
member leaving every group, subscriptions, bad input, and the module functions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from joerl import pg
from joerl.actor import ActorContext
from joerl.errors import CallError, NoProcError, StartError
from joerl.pg import PgEvent
from joerl.pid import Pid
from joerl.system import ActorSystem
from joerl.testing import Probe

pytestmark = pytest.mark.timeout(30)


def idle(ctx: ActorContext) -> None:
    ctx.receive()  # any message ends it


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    with ActorSystem("pg-test") as s:
        yield s


@pytest.fixture
def scope(system: ActorSystem) -> pg.Scope:
    return pg.start(system)


def spawn(system: ActorSystem) -> Pid:
    return system.spawn_fn(idle).pid


def test_join_leave_and_reads(system: ActorSystem, scope: pg.Scope) -> None:
    a, b = spawn(system), spawn(system)
    assert system.whereis("pg") == scope.pid
    scope.join("room", a)
    scope.join("room", [a, b])
    scope.join(("team", 1), b)
    assert sorted(scope.get_members("room")) == sorted([a, a, b])
    assert scope.get_local_members("room") == scope.get_members("room")
    assert set(scope.which_groups()) == {"room", ("team", 1)}
    assert set(scope.which_local_groups()) == {"room", ("team", 1)}
    assert scope.leave("room", a) is True  # one membership of a goes
    assert sorted(scope.get_members("room")) == sorted([a, b])
    assert scope.leave("room", [a, b]) is True
    assert scope.get_members("room") == []
    assert scope.leave("room", a) is False  # OTP's not_joined
    assert scope.which_groups() == [("team", 1)]
    assert scope.get_members("nobody") == []


def test_a_dead_member_leaves_every_group(system: ActorSystem, scope: pg.Scope) -> None:
    a, b = spawn(system), spawn(system)
    scope.join("x", [a, a, b])
    scope.join("y", a)
    with Probe(system) as probe:
        ref, members = scope.monitor_scope(probe.pid)
        assert sorted(members["x"]) == sorted([a, a, b]) and members["y"] == [a]
        system.send(a, "stop")
        events = [probe.receive(PgEvent), probe.receive(PgEvent)]
    assert {(e.kind, e.group, tuple(e.pids)) for e in events} == {("leave", "x", (a, a)), ("leave", "y", (a,))}
    assert all(e.ref == ref for e in events)
    assert scope.get_members("x") == [b]
    assert scope.which_groups() == ["x"]


def test_monitor_one_group_and_demonitor(system: ActorSystem, scope: pg.Scope) -> None:
    a, b = spawn(system), spawn(system)
    scope.join("g", a)
    with Probe(system) as probe:
        ref, members = scope.monitor("g", probe.pid)
        assert members == [a]
        scope.join("other", b)  # another group: not seen
        scope.join("g", [b, b])
        assert probe.receive(PgEvent) == PgEvent(ref, "join", "g", [b, b])
        scope.leave("g", a)
        assert probe.receive(PgEvent) == (ref, "leave", "g", [a])  # OTP's {Ref, leave, Group, Pids}
        assert scope.demonitor(ref) is True
        assert scope.demonitor(ref) is False
        scope.leave("g", b)
        assert probe.sync() == []


def test_a_dead_subscriber_is_forgotten(system: ActorSystem, scope: pg.Scope) -> None:
    probe = Probe(system)
    ref, _ = scope.monitor_scope(probe.pid)
    probe.stop()
    # The scope has handled the Down once a later call returns: the ref is gone.
    scope.join("g", spawn(system))
    assert scope.demonitor(ref) is False


def test_bad_input(system: ActorSystem, scope: pg.Scope) -> None:
    a = spawn(system)
    with pytest.raises(TypeError, match="hashable"):
        scope.join(["not", "hashable"], a)
    with pytest.raises(TypeError, match="expected a Pid"):
        scope.join("g", "not a pid")
    with pytest.raises(ValueError, match="another node"):
        scope.join("g", Pid(12345, 1, 1))
    dead = spawn(system)
    system.send(dead, "stop")
    assert system.join(dead, 5.0)
    with pytest.raises(NoProcError):
        scope.join("g", [a, dead])
    assert scope.get_members("g") == []  # nothing joined: all or none
    with pytest.raises(TypeError, match="local process"):
        scope.monitor_scope("nobody")
    with pytest.raises(StartError):
        pg.start(system)  # the scope's name is taken on this system
    with pytest.raises(TypeError, match="scope name"):
        pg.start(system, "")


def test_the_scope_drops_and_counts_bad_messages(system: ActorSystem, scope: pg.Scope) -> None:
    system.send(scope.pid, ("$pg_join", "peer", "g", ["not a pid"]))
    system.send(scope.pid, ("$pg_sync", 42))
    system.send(scope.pid, ("$gen_stop", "from afar"))
    system.send(scope.pid, "junk")
    a = spawn(system)
    scope.join("g", a)  # a call: every message sent before it has been handled
    assert scope.dropped == 4
    assert scope.get_members("g") == [a]


def test_scopes_are_independent(system: ActorSystem, scope: pg.Scope) -> None:
    other = pg.start(system, "other")
    a = spawn(system)
    scope.join("g", a)
    assert other.get_members("g") == []
    other.stop()
    other.stop()  # safe twice
    assert system.whereis("other") is None


def test_module_functions(system: ActorSystem, scope: pg.Scope) -> None:
    a = spawn(system)
    pg.join(system, "g", a)
    assert pg.get_members(system, "g") == [a]
    assert pg.leave(system, "g", a) is True
    assert pg.get_members(system, "g") == []
    with pytest.raises(CallError):
        pg.get_members(system, "g", scope="no_such_scope")


def test_a_process_joins_itself(system: ActorSystem, scope: pg.Scope) -> None:
    def member(ctx: ActorContext, report: Pid) -> None:
        pg.join(ctx.system, "workers", ctx)  # a call from inside an actor
        ctx.send(report, ("joined", scope.get_local_members("workers")))
        ctx.receive()

    with Probe(system) as probe:
        ref = system.spawn_fn(member, probe.pid)
        assert probe.receive("joined") == ("joined", [ref.pid])
