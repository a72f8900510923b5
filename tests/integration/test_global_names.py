"""Cluster-wide names (joerl.node.global_names) on real loopback nodes in one process.

Registration seen from every node, taken names, unregistration, a name freed
when its process dies, when its node shuts down and when its node's links go
down; concurrent registrations of one name from several nodes; partitions that
heal with the same name registered on both sides (never-connected nodes, a
three-node cluster where the loser is on the bigger side, and a link closed
and reopened); bad messages to a name server. Every wait is on a message or
a condition with a deadline; each test tears its nodes down and leaves no
greenlet behind.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent.event import Event
from test_node import no_leaks, remote  # noqa: F401 - a fixture

from joerl.errors import DistributionError, NoProcError, NotRegistered
from joerl.node.global_names import CONFLICT, SERVER_NAME, GlobalNames
from joerl.node.names import node_name as full
from joerl.node.node import DistributedSystem
from joerl.testing import Probe, node_cluster, wait_until

WAIT = 5.0
COOKIE = "joerl-global-test-cookie"


# -- helpers ------------------------------------------------------------------------------


def everywhere(names: list[GlobalNames], name: str) -> list[Any]:
    """Where each replica says ``name`` is, as (node name, pid id) or None."""
    out = []
    for g in names:
        pid = g.whereis(name)
        out.append(None if pid is None else (g.node.node_of(pid), pid.id))
    return out


def full_mesh(*nodes: DistributedSystem) -> None:
    for n in nodes:
        for m in nodes:
            if n is not m:
                n.connect_to_node(m.node_name)


def close_links(node: DistributedSystem) -> None:
    """Cut every link of ``node`` (as a network failure would), and wait until
    both ends have seen it."""
    peers = node.nodes()
    for name in peers:
        link = node._peers[name].link
        if link is not None:
            link.close("test")
    wait_until(lambda: node.nodes() == [], WAIT, what="links closed")


@pytest.fixture
def cluster(no_leaks: None) -> Iterator[list[DistributedSystem]]:
    """Three nodes a, b, c, not linked yet."""
    with node_cluster("a", "b", "c", cookie=COOKIE, global_names=False) as nodes:
        yield nodes


@pytest.fixture
def mesh(cluster: list[DistributedSystem]) -> tuple[list[DistributedSystem], list[GlobalNames]]:
    """a, b, c linked to each other, each with a name server."""
    full_mesh(*cluster)
    return cluster, [GlobalNames(n) for n in cluster]


# -- registration seen from every node ----------------------------------------------------


def test_register_on_a_whereis_and_send_from_b_and_c(mesh: Any) -> None:
    (a, b, c), (ga, gb, gc_) = mesh
    svc = Probe(a)
    assert ga.register("svc", svc.pid) is True
    # register returns once every linked node has the entry.
    assert ga.whereis("svc") == svc.pid
    assert gb.whereis("svc") == svc.gpid and gc_.whereis("svc") == svc.gpid
    assert [g.registered() for g in (ga, gb, gc_)] == [["svc"]] * 3

    assert gc_.send("svc", ("hello", 1)) == svc.gpid
    assert svc.receive() == ("hello", 1)
    gb.send("svc", "from b")
    assert svc.receive() == "from b"
    with pytest.raises(NotRegistered):
        gc_.send("nobody", "lost")


def test_a_taken_name_is_refused_from_any_node(mesh: Any) -> None:
    (a, b, c), (ga, gb, gc_) = mesh
    first, second, third = Probe(a), Probe(b), Probe(a)
    assert ga.register("svc", first.pid)
    assert gb.register("svc", second.pid) is False
    assert ga.register("svc", third.pid) is False
    assert gc_.register("svc", remote(b, second.pid)) is False
    assert everywhere([ga, gb, gc_], "svc") == [(full("a"), first.pid.id)] * 3
    # One process may hold several names (as the same name twice is refused).
    assert gb.register("other", remote(a, first.pid))
    assert ga.register("other", first.pid) is False
    assert everywhere([ga, gb, gc_], "other") == [(full("a"), first.pid.id)] * 3


def test_unregister_from_another_node_frees_it_everywhere(mesh: Any) -> None:
    (a, b, c), (ga, gb, gc_) = mesh
    old, new = Probe(a), Probe(c)
    assert ga.register("svc", old.pid)
    gb.unregister("svc")
    assert everywhere([ga, gb, gc_], "svc") == [None] * 3
    gb.unregister("svc")  # already free: nothing happens
    assert gc_.register("svc", new.pid)
    assert everywhere([ga, gb, gc_], "svc") == [(full("c"), new.pid.id)] * 3
    assert old.sync() == [], "nothing else"  # unregistering tells the process nothing


def test_a_name_is_freed_everywhere_when_its_process_dies(mesh: Any) -> None:
    (a, b, c), (ga, gb, gc_) = mesh
    svc, other = Probe(a), Probe(b)
    assert ga.register("svc", svc.pid) and gb.register("other", other.pid)
    svc.stop()
    wait_until(lambda: everywhere([ga, gb, gc_], "svc") == [None] * 3, WAIT, what="svc freed everywhere")
    assert everywhere([ga, gb, gc_], "other") == [(full("b"), other.pid.id)] * 3
    # ... and the name can be taken again.
    again = Probe(c)
    assert gb.register("svc", remote(c, again.pid))
    assert everywhere([ga, gb, gc_], "svc") == [(full("c"), again.pid.id)] * 3


def test_a_remote_pid_can_be_registered_and_its_death_frees_it(mesh: Any) -> None:
    (a, b, c), (ga, gb, gc_) = mesh
    svc = Probe(a)
    assert gc_.register("svc", svc.gpid)  # registered from c, lives on a
    assert ga.whereis("svc") == svc.pid
    ga.send("svc", "local")
    assert svc.receive() == "local"
    svc.stop()
    wait_until(lambda: everywhere([ga, gb, gc_], "svc") == [None] * 3, WAIT, what="svc freed")


def test_the_names_of_a_node_that_shuts_down_are_freed(mesh: Any) -> None:
    (a, b, c), (ga, gb, gc_) = mesh
    on_c, on_a = Probe(c), Probe(a)
    assert gc_.register("on_c", on_c.pid) and ga.register("on_a", on_a.pid)
    c.shutdown()
    wait_until(lambda: everywhere([ga, gb], "on_c") == [None, None], WAIT, what="on_c freed on a and b")
    assert everywhere([ga, gb], "on_a") == [(full("a"), on_a.pid.id)] * 2
    assert ga.registered() == gb.registered() == ["on_a"]


def test_the_names_of_a_node_whose_links_go_down_are_freed_and_come_back(mesh: Any) -> None:
    """No process dies: the node becomes unreachable (noconnection), then returns."""
    (a, b, c), (ga, gb, gc_) = mesh
    on_c = Probe(c)
    assert gc_.register("on_c", on_c.pid)
    close_links(c)
    wait_until(lambda: everywhere([ga, gb], "on_c") == [None, None], WAIT, what="on_c dropped on a and b")
    assert gc_.whereis("on_c") == on_c.pid, "c's own replica keeps its live process"
    # c comes back by linking to a only: the sync brings the name back to a, and
    # a's sync makes c link to b (transitive), which then learns it too.
    c.connect_to_node("a")
    wait_until(lambda: everywhere([ga, gb, gc_], "on_c") == [(full("c"), on_c.pid.id)] * 3, WAIT, what="on_c back")
    assert c.nodes() == [full("a"), full("b")]


def test_a_late_name_server_learns_the_names_of_its_linked_peers(cluster: list[DistributedSystem]) -> None:
    a, b, c = cluster
    full_mesh(a, b, c)
    ga = GlobalNames(a)
    svc = Probe(a)
    assert ga.register("svc", svc.pid)
    gb, gc_ = GlobalNames(b), GlobalNames(c)  # started after the links and the name
    wait_until(lambda: everywhere([gb, gc_], "svc") == [(full("a"), svc.pid.id)] * 2, WAIT, what="late servers synced")


# -- concurrency --------------------------------------------------------------------------


def test_concurrent_registrations_of_one_name_exactly_one_wins(mesh: Any) -> None:
    nodes, servers = mesh
    inboxes = [Probe(n) for n in nodes]
    rounds = 30
    shuffle = random.Random(7)
    for i in range(rounds):
        name = f"race{i}"
        go = Event()
        order = list(range(3))
        shuffle.shuffle(order)

        def contend(k: int) -> bool:
            go.wait()
            for _ in range(shuffle.randint(0, 3)):  # vary the interleaving
                gevent.sleep(0)
            return servers[k].register(name, inboxes[k].pid)

        racers = {k: gevent.spawn(contend, k) for k in order}
        go.set()
        gevent.joinall(list(racers.values()), timeout=WAIT, raise_error=True)
        results = {k: g.value for k, g in racers.items()}
        winners = [k for k, won in results.items() if won]
        assert len(winners) == 1, f"{name}: {results}"
        w = winners[0]
        assert everywhere(servers, name) == [(nodes[w].node_name, inboxes[w].pid.id)] * 3, name
    for inbox in inboxes:
        assert inbox.sync() == [], "no conflict messages"  # the losers were refused, not told
    print(f"\n{rounds} three-way races, {sum(s.retries for s in servers)} retries after an older claim")


# -- partitions that heal -----------------------------------------------------------------


def test_a_healed_partition_keeps_the_older_registration(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    ga, gb = GlobalNames(a), GlobalNames(b)
    older, newer = Probe(a), Probe(b)
    assert a.nodes() == [] and b.nodes() == []
    assert ga.register("svc", older.pid)  # first: the older stamp
    assert gb.register("svc", newer.pid)  # b cannot see a: it registers too
    a.connect_to_node("b")
    wait_until(lambda: everywhere([ga, gb], "svc") == [(full("a"), older.pid.id)] * 2, WAIT, what="one owner")
    # The loser is told, once, with the winner's pid as its node names it; it lives on.
    assert newer.receive() == (CONFLICT, "svc", older.gpid)
    assert newer.sync() == [], "told once"
    assert older.sync() == [], "the winner is told nothing"
    assert b.system.is_process_alive(newer.pid)
    assert ga.registered() == gb.registered() == ["svc"]


def test_a_healed_partition_where_the_loser_is_on_the_bigger_side(cluster: list[DistributedSystem]) -> None:
    """{a, c} against {b}: b registered first, so b's process keeps the name on a
    and c too; the transitive link a-b is made by the name servers."""
    a, b, c = cluster
    a.connect_to_node("c")
    ga, gb, gc_ = GlobalNames(a), GlobalNames(b), GlobalNames(c)
    lone, crowd = Probe(b), Probe(a)
    assert gb.register("svc", lone.pid)
    assert ga.register("svc", crowd.pid)
    assert everywhere([ga, gc_], "svc") == [(full("a"), crowd.pid.id)] * 2
    b.connect_to_node("c")  # heal through c only
    wait_until(
        lambda: everywhere([ga, gb, gc_], "svc") == [(full("b"), lone.pid.id)] * 3, WAIT, what="b's process everywhere"
    )
    assert crowd.receive() == (CONFLICT, "svc", lone.gpid)
    assert crowd.sync() == [], "told once"
    assert lone.sync() == [], "the winner is told nothing"
    wait_until(lambda: a.nodes() == [full("b"), full("c")], WAIT, what="a and b linked by the name servers")


def test_a_link_closed_and_reopened_with_a_name_registered_on_both_sides(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    ga, gb = GlobalNames(a), GlobalNames(b)
    kept = Probe(a)
    assert ga.register("kept", kept.pid)
    a.connect_to_node("b")
    wait_until(lambda: gb.whereis("kept") is not None, WAIT, what="b learns 'kept'")
    close_links(a)
    wait_until(lambda: b.nodes() == [] and gb.whereis("kept") is None, WAIT, what="b drops a's names")
    # Apart: both register "svc" (b first, so b's is older); neither asks the other.
    on_b, on_a = Probe(b), Probe(a)
    assert gb.register("svc", on_b.pid)
    assert ga.register("svc", on_a.pid)
    assert a.nodes() == [] and b.nodes() == [], "the name servers did not reconnect by themselves"
    a.connect_to_node("b")
    wait_until(lambda: everywhere([ga, gb], "svc") == [(full("b"), on_b.pid.id)] * 2, WAIT, what="one owner")
    assert on_a.receive() == (CONFLICT, "svc", on_b.gpid)
    assert on_a.sync() == [], "told once"
    assert everywhere([ga, gb], "kept") == [(full("a"), kept.pid.id)] * 2


# -- robustness and errors ----------------------------------------------------------------


def test_bad_messages_do_not_end_a_name_server(mesh: Any) -> None:
    (a, b, c), (ga, gb, gc_) = mesh
    server = gb.pid
    junk: list[Any] = [
        "text",
        (),
        ("commit",),
        ("commit", "x", "not a pid", (1, "a", 1)),
        ("commit", "x", Probe(a).gpid, "not a stamp"),
        ("unregister", 1, 2, 3),
        ("sync", "a", "not a list", [], False),
        ("sync", "a", [("x",)], [], False),
        ("abort",),
        ("nonsense", 1),
        ("$gen_call", "no from", ("claim",)),
        ("$gen_stop", "from another node"),
        {"a": 1},
    ]
    for msg in junk:
        a.system.send((SERVER_NAME, "b"), msg)
    assert a.system.call((SERVER_NAME, "b"), ("claim", "x"), WAIT) == ("error", "badarg")
    assert a.system.call((SERVER_NAME, "b"), ("local_begin", "x", Probe(a).gpid, None), WAIT) == ("error", "badarg")
    assert b.system.is_process_alive(server)
    svc = Probe(a)
    assert ga.register("svc", svc.pid)
    assert gb.whereis("svc") == svc.gpid and gb.registered() == ["svc"]


def test_argument_errors_and_close(mesh: Any) -> None:
    (a, b, c), (ga, gb, gc_) = mesh
    svc = Probe(a)
    with pytest.raises(TypeError):
        ga.register("", svc.pid)
    with pytest.raises(TypeError):
        ga.register("svc", "not a pid")
    dead = Probe(a)
    dead.stop()
    with pytest.raises(NoProcError):
        ga.register("svc", dead.pid)
    with pytest.raises(DistributionError):
        GlobalNames(a)  # one name server per node
    assert ga.register("svc", svc.pid)
    # Closing a's name service frees its processes' names everywhere.
    ga.close()
    ga.close()
    assert ga.closed and ga.registered() == []
    wait_until(lambda: everywhere([gb, gc_], "svc") == [None, None], WAIT, what="a's names freed")
    with pytest.raises(DistributionError):
        ga.register("svc", svc.pid)
    # The others carry on without it (a no longer answers claims).
    assert gb.register("svc", Probe(b).pid)


def test_a_linked_node_without_a_name_server_is_not_asked(cluster: list[DistributedSystem]) -> None:
    a, b, _ = cluster
    a.connect_to_node("b")
    ga = GlobalNames(a)  # b runs none
    svc = Probe(a)
    start = time.monotonic()
    assert ga.register("svc", svc.pid)
    assert time.monotonic() - start < 1.0, "b's missing server answers noproc at once"
    gb = GlobalNames(b)  # when it starts, it learns the names
    wait_until(lambda: gb.whereis("svc") == svc.gpid, WAIT, what="b learns svc")


def test_a_vanished_registrars_claim_blocks_only_until_it_expires_or_its_node_goes(
    cluster: list[DistributedSystem],
) -> None:
    a, b, c = cluster
    full_mesh(a, b, c)
    ga, gb = GlobalNames(a), GlobalNames(b, claim_ttl=0.3)  # c plays a registrar that vanishes
    somebody = Probe(c).gpid
    old_stamp = (1, c.node_name, 1)  # older than any real one
    assert c.system.call((SERVER_NAME, "b"), ("claim", "x", somebody, old_stamp), WAIT) == "ok"
    svc = Probe(a)
    start = time.monotonic()
    assert ga.register("x", svc.pid)
    assert time.monotonic() - start >= 0.25 and ga.retries > 0, "waited for the older claim to expire"
    assert gb.whereis("x") == svc.gpid

    assert c.system.call((SERVER_NAME, "b"), ("claim", "y", somebody, old_stamp), WAIT) == "ok"
    close_links(c)  # the registrar's node goes: b forgets its claims at once
    wait_until(lambda: "y" not in gb._server.claims, WAIT, what="b drops c's claim")
    assert ga.register("y", svc.pid, timeout=0.2)


def test_a_node_runs_its_name_server_by_default() -> None:
    with node_cluster("a", "b", cookie=COOKIE) as (a, b):

        def holder(ctx: Any) -> None:
            ctx.receive()

        pid = a.system.spawn_fn(holder).pid
        a.connect_to_node("b")
        assert wait_until(lambda: full("a") in b.nodes(), timeout=5)
        assert a.global_register("svc", pid)
        assert b.global_whereis("svc") == a.global_pid(pid)  # the same process, seen from b
        assert "svc" in b.global_registered()
        a.global_unregister("svc")
        assert wait_until(lambda: b.global_whereis("svc") is None, timeout=5)
