"""joerl.pg across three nodes in one process: joins and leaves propagate, a dead
member leaves everywhere, a node's members go with its link (or its scope
process), and a node restarted under the same name syncs again."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from joerl import pg
from joerl.actor import ActorContext
from joerl.node.node import DistributedSystem
from joerl.pg import PgEvent
from joerl.pid import Pid
from joerl.testing import Probe, running_epmd, wait_until

pytestmark = pytest.mark.timeout(60)

COOKIE = "pg-test-cookie"
WAIT = 15.0  # generous: the machine is shared


def idle(ctx: ActorContext) -> None:
    ctx.receive()


def start_node(name: str, epmd: str) -> DistributedSystem:
    return DistributedSystem(name, "127.0.0.1:0", epmd, cookie=COOKIE, start_epmd=False, global_names=False)


@pytest.fixture
def epmd() -> Iterator[str]:
    with running_epmd() as address:
        yield address


@pytest.fixture
def cluster(epmd: str) -> Iterator[list[DistributedSystem]]:
    nodes = [start_node(name, epmd) for name in ("a", "b", "c")]
    try:
        for i, node in enumerate(nodes):
            for other in nodes[i + 1 :]:
                node.connect_to_node(other.node_name)
        yield nodes
    finally:
        for node in reversed(nodes):
            node.shutdown()


def gpid(node: DistributedSystem, pid: Pid) -> Pid:
    return node.global_pid(pid)


def members_everywhere(scopes: list[pg.Scope], group: str, expected: list[Pid]) -> None:
    """Wait until every scope's replica holds ``expected`` (global pids) for ``group``."""

    def seen(scope: pg.Scope) -> list[Pid]:
        node_of = scope_nodes[id(scope)]
        return sorted(gpid(node_of, p) for p in scope.get_members(group))

    want = sorted(expected)
    for scope in scopes:
        holds = functools.partial(lambda s: seen(s) == want, scope)
        wait_until(holds, timeout=WAIT, what=f"{scope.name} on {scope.system.name}: {want}")


scope_nodes: dict[int, DistributedSystem] = {}


def start_scope(node: DistributedSystem, name: str = "pg") -> pg.Scope:
    scope = pg.start(node, name)
    scope_nodes[id(scope)] = node
    return scope


def test_joins_and_leaves_propagate(cluster: list[DistributedSystem]) -> None:
    scopes = [start_scope(n) for n in cluster]
    pids = [n.spawn_fn(idle).pid for n in cluster]
    for scope, pid in zip(scopes, pids, strict=True):
        scope.join("room", pid)
    scopes[0].join("room", pids[0])  # a second membership of the same process
    everyone = [gpid(n, p) for n, p in zip(cluster, pids, strict=True)]
    members_everywhere(scopes, "room", everyone + [everyone[0]])
    for scope, pid in zip(scopes, pids, strict=True):
        assert scope.get_local_members("room") in ([pid], [pid, pid])
    assert all(s.which_groups() == ["room"] for s in scopes)

    scopes[0].leave("room", pids[0])
    scopes[1].leave("room", pids[1])
    members_everywhere(scopes, "room", [everyone[0], everyone[2]])
    assert all(s.dropped == 0 for s in scopes)


def test_a_dead_member_leaves_on_every_node(cluster: list[DistributedSystem]) -> None:
    scopes = [start_scope(n) for n in cluster]
    a, b, _ = cluster
    doomed = b.spawn_fn(idle)
    scopes[1].join("g", [doomed.pid, doomed.pid])
    scopes[1].join("h", doomed.pid)
    members_everywhere(scopes, "g", [gpid(b, doomed.pid)] * 2)
    with Probe(a) as probe:
        ref, _ = scopes[0].monitor("g", probe.pid)
        doomed.send("stop")
        event = probe.receive(PgEvent, timeout=WAIT)
    assert event.ref == ref and event.kind == "leave" and event.pids == [gpid(b, doomed.pid)] * 2
    members_everywhere(scopes, "g", [])
    members_everywhere(scopes, "h", [])
    assert all(s.which_groups() == [] for s in scopes)


def test_monitor_scope_sees_remote_joins(cluster: list[DistributedSystem]) -> None:
    scopes = [start_scope(n) for n in cluster]
    a, _, c = cluster
    with Probe(a) as probe:
        ref, now = scopes[0].monitor_scope(probe.pid)
        assert now == {}
        pid = c.spawn_fn(idle).pid
        scopes[2].join("chat", pid)
        assert probe.receive(PgEvent, timeout=WAIT) == PgEvent(ref, "join", "chat", [gpid(c, pid)])
        scopes[2].leave("chat", pid)
        assert probe.receive(PgEvent, timeout=WAIT) == PgEvent(ref, "leave", "chat", [gpid(c, pid)])


def test_a_scope_started_late_gets_the_members(cluster: list[DistributedSystem]) -> None:
    a, b, c = cluster
    sa, sb = start_scope(a), start_scope(b)
    pa, pb = a.spawn_fn(idle).pid, b.spawn_fn(idle).pid
    sa.join("g", pa)
    sb.join("g", pb)
    sc = start_scope(c)  # its links are up already: it asks each peer for a sync
    members_everywhere([sa, sb, sc], "g", [gpid(a, pa), gpid(b, pb)])


def test_a_stopped_scope_takes_its_members_along(cluster: list[DistributedSystem]) -> None:
    scopes = [start_scope(n) for n in cluster]
    a, b, c = cluster
    pa, pb = a.spawn_fn(idle).pid, b.spawn_fn(idle).pid
    scopes[0].join("g", pa)
    scopes[1].join("g", pb)
    members_everywhere(scopes, "g", [gpid(a, pa), gpid(b, pb)])
    scopes[1].stop()  # b's node stays up; its scope process ends
    members_everywhere([scopes[0], scopes[2]], "g", [gpid(a, pa)])
    assert b.nodes() and c.node_name in b.nodes()


def test_other_scopes_are_separate(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    sa, sb = start_scope(a, "chat"), start_scope(b, "chat")
    other = start_scope(b, "other")
    pa = a.spawn_fn(idle).pid
    sa.join("g", pa)
    members_everywhere([sa, sb], "g", [gpid(a, pa)])
    assert other.get_members("g") == []


def test_node_down_and_a_restart_under_the_same_name(epmd: str, cluster: list[DistributedSystem]) -> None:
    a, b, c = cluster
    sa, sb, sc = start_scope(a), start_scope(b), start_scope(c)
    pa, pc = a.spawn_fn(idle).pid, c.spawn_fn(idle).pid
    sa.join("g", pa)
    sc.join("g", pc)
    old_c = gpid(c, pc)
    members_everywhere([sa, sb, sc], "g", [gpid(a, pa), old_c])

    with Probe(a) as probe:
        ref, _ = sa.monitor("g", probe.pid)
        c.shutdown()  # its link goes: a and b drop c's members
        assert probe.receive(PgEvent, timeout=WAIT) == PgEvent(ref, "leave", "g", [old_c])
    members_everywhere([sa, sb], "g", [gpid(a, pa)])

    c2 = start_node("c", epmd)  # the same name, a new incarnation
    cluster[2] = c2  # the fixture shuts it down
    sc2 = start_scope(c2)
    pc2 = c2.spawn_fn(idle).pid
    sc2.join("g", pc2)
    c2.connect_to_node("a")
    c2.connect_to_node("b")
    new_c = gpid(c2, pc2)
    assert new_c != old_c
    members_everywhere([sa, sb, sc2], "g", [gpid(a, pa), new_c])
    assert sorted(sc2.get_members("g")) == sorted([pc2, gpid(a, pa)])  # its own pid is local there
    assert all(s.dropped == 0 for s in (sa, sb, sc2))
