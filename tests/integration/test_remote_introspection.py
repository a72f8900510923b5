"""Introspection across a node link, and hidden nodes, on real loopback nodes in one process.

A hidden node (as ``joerl ps`` and the observer join) asks a visible node for
its processes, one process, its node report and a GenServer's state through
the allow-listed service; anything else is refused. The hidden node stays
out of the visible nodes' ``nodes()``, of their ``monitor_nodes``
subscribers, of connect-all and of global-name sync, while a visible third
node joins all of those as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from joerl.actor import ActorContext
from joerl.errors import IntrospectionError
from joerl.gen_server import GenServer, Reply
from joerl.gen_server import start as start_server
from joerl.message import NodeUp
from joerl.node.introspection import QUERIES, SERVICE, NodeReport
from joerl.node.node import DistributedSystem
from joerl.testing import Probe, node_cluster, wait_until

COOKIE = "joerl-introspection-cookie"


class Store(GenServer):
    def init(self, args: Any) -> Any:
        return {"items": ["a", "b"]}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(len(state["items"]))


@pytest.fixture
def cluster() -> Iterator[tuple[DistributedSystem, DistributedSystem, DistributedSystem]]:
    """Visible nodes a and b, linked, and a hidden node h linked to a."""
    with node_cluster("a", "b", cookie=COOKIE) as (a, b):
        h = DistributedSystem(
            "h", "127.0.0.1:0", a.epmd_address, cookie=COOKIE, start_epmd=False, hidden=True, global_names=False
        )
        try:
            a.connect_to_node(b.node_name)
            h.connect_to_node(a.node_name)
            wait_until(lambda: a.nodes("hidden") == [h.node_name], what="the hidden link, seen from a")
            yield a, b, h
        finally:
            h.shutdown(2.0)


def test_a_hidden_node_is_left_out_of_nodes(cluster: Any) -> None:
    a, b, h = cluster
    assert a.nodes() == [b.node_name]
    assert a.nodes("hidden") == [h.node_name]
    assert a.nodes("connected") == sorted([b.node_name, h.node_name])
    assert h.nodes() == [] and h.nodes("hidden") == [a.node_name]  # every link of a hidden node is hidden
    assert h.hidden and not a.hidden
    with pytest.raises(ValueError, match="kind must be"):
        a.nodes("all")


def test_monitor_nodes_hears_of_visible_nodes_only(cluster: Any) -> None:
    a, b, h = cluster
    with Probe(a.system, timeout=5.0) as watcher, Probe(a.system, timeout=5.0) as by_name:
        a.monitor_nodes(watcher.pid)
        a.monitor_node(by_name.pid, "h2@" + h.node_name.partition("@")[2] if "@" in h.node_name else "h2")
        h2 = DistributedSystem(
            "h2", "127.0.0.1:0", a.epmd_address, cookie=COOKIE, start_epmd=False, hidden=True, global_names=False
        )
        try:
            h2.connect_to_node(a.node_name)
            assert by_name.receive(NodeUp) == NodeUp(h2.node_name)  # watched by name: told
            c = DistributedSystem("c", "127.0.0.1:0", a.epmd_address, cookie=COOKIE, start_epmd=False)
            try:
                c.connect_to_node(a.node_name)
                assert watcher.receive(NodeUp) == NodeUp(c.node_name)  # the first, and only, NodeUp
                watcher.expect_nothing(0.2, NodeUp)
            finally:
                c.shutdown(2.0)
        finally:
            h2.shutdown(2.0)
        a.monitor_nodes(watcher.pid, False)


def test_no_connect_all_and_no_global_sync_through_a_hidden_node(cluster: Any) -> None:
    a, b, h = cluster
    assert a.global_names is not None and b.global_names is not None
    ref = a.spawn_fn(lambda ctx: ctx.receive())
    assert a.global_register("service", ref.pid)
    wait_until(lambda: b.global_whereis("service") is not None, what="the name on b")
    # b learnt of a's peers through global sync: h is not among them, so b never dials it.
    assert h.node_name not in b.nodes("connected")
    assert h.global_names is None
    h2 = DistributedSystem("h2", "127.0.0.1:0", a.epmd_address, cookie=COOKIE, start_epmd=False, hidden=True)
    try:  # a hidden node that runs a name server still gets no names: nobody syncs with it
        h2.connect_to_node(a.node_name)
        assert h2.global_names is not None
        c = DistributedSystem("c", "127.0.0.1:0", a.epmd_address, cookie=COOKIE, start_epmd=False)
        try:  # a visible node that joins gets the name (global sync works as before)
            c.connect_to_node(a.node_name)
            wait_until(lambda: c.global_whereis("service") is not None, what="the name on c")
        finally:
            c.shutdown(2.0)
        assert h2.global_whereis("service") is None
        assert h2.node_name not in b.nodes("connected")
    finally:
        h2.shutdown(2.0)


def test_processes_of_another_node(cluster: Any) -> None:
    a, b, h = cluster

    def idle(ctx: ActorContext) -> None:
        ctx.receive(lambda m: m == "never")

    ref = a.spawn_fn(idle, name="idler")
    for i in range(3):
        ref.send(i)
    wait_until(lambda: (i := a.system.process_info(ref)) is not None and i.mailbox_len == 3)
    infos = {i.name: i for i in h.introspection.processes(a.node_name)}
    assert SERVICE in infos and "idler" in infos
    remote = infos["idler"]
    assert remote.mailbox_len == 3 and remote.status == "waiting"
    assert remote.pid == h.introspection.processes(a.node_name)[list(infos).index("idler")].pid
    assert remote.pid.node == a.node_id  # a's pid, as other nodes name it
    again = h.introspection.process_info(remote.pid)
    assert again is not None and again.name == "idler"
    assert h.introspection.messages(remote.pid) == ["0", "1", "2"]  # the reprs of what is queued
    ref.stop()
    assert h.introspection.process_info(remote.pid) is None


def test_node_info_of_another_node(cluster: Any) -> None:
    a, b, h = cluster
    report = h.introspection.node_info(a.node_name)
    assert isinstance(report, NodeReport)
    assert report.node == a.node_name and report.hidden is False
    peers = {p.name: p for p in report.peers}
    assert peers[b.node_name].state == "up" and not peers[b.node_name].hidden
    assert peers[h.node_name].hidden and peers[h.node_name].bytes_in > 0 and peers[h.node_name].frames_in > 0
    assert peers[h.node_name].silent_for is not None
    assert report.system.processes == len(a.system.processes())
    assert (SERVICE, a.global_pid(a.whereis(SERVICE))) in report.system.registered
    assert "received" in report.stats
    own = a.introspection.node_info()
    assert own.node == a.node_name and own.system.name == a.node_name
    assert a.introspection.node_info(a.node_name.partition("@")[0]).node == a.node_name  # a bare name of its own


def test_metrics_of_another_node(cluster: Any) -> None:
    a, b, h = cluster
    remote = h.introspection.metrics(a.node_name)
    assert remote["name"] == a.node_name and remote["processes_alive"] == len(a.system.processes())
    assert set(remote["peers"]) == {b.node_name, h.node_name} and remote["links_alive"] == 2
    assert a.introspection.metrics()["name"] == a.node_name


def test_state_of_a_remote_gen_server(cluster: Any) -> None:
    a, b, h = cluster
    server = start_server(a.system, Store(), name="store")
    pid = [i.pid for i in h.introspection.processes(a.node_name) if i.name == "store"][0]
    assert h.introspection.get_state(pid) == repr({"items": ["a", "b"]})
    assert a.introspection.get_state(server.pid) == repr({"items": ["a", "b"]})
    plain = [i.pid for i in h.introspection.processes(a.node_name) if i.name == SERVICE][0]
    assert h.introspection.get_state(plain)  # the service itself is a GenServer


def test_only_the_allow_listed_queries_are_answered(cluster: Any) -> None:
    a, b, h = cluster
    assert QUERIES == {"processes", "process_info", "node_info", "get_state", "metrics", "messages", "count_messages"}
    bad = [
        ("exit", a.whereis(SERVICE), "kill"),
        ("send",),
        "processes",
        (),
        ("process_info", "x"),
        ("count_messages", 1),
    ]
    for request in bad:
        with pytest.raises(IntrospectionError):
            h.introspection.query(a.node_name, request)  # type: ignore[arg-type]
    assert a.system.is_process_alive(a.whereis(SERVICE))


def test_a_node_without_the_service(cluster: Any) -> None:
    a, b, h = cluster
    quiet = DistributedSystem(
        "quiet", "127.0.0.1:0", a.epmd_address, cookie=COOKIE, start_epmd=False, introspection=False
    )
    try:
        assert quiet.introspection.service is None and quiet.whereis(SERVICE) is None
        assert quiet.introspection.processes()  # its own processes, still
        with pytest.raises(Exception, match="noproc|not registered|NotRegistered"):
            h.introspection.processes(quiet.node_name, timeout=2.0)
    finally:
        quiet.shutdown(2.0)


def test_a_node_counts_messages_when_asked(cluster: Any) -> None:
    a, b, h = cluster

    def sink_body(ctx: Any) -> None:
        while ctx.receive() != "end":
            pass

    sink = a.spawn_fn(sink_body, name="counted")
    sink.send("before")

    def seen() -> Any:
        return {i.name: i for i in h.introspection.processes(a.node_name)}["counted"]

    wait_until(lambda: seen().status == "waiting" and seen().mailbox_len == 0)
    assert seen().received is None and seen().sent is None  # off: not counted, and it says so
    assert h.introspection.metrics(a.node_name)["messages_received"] is None
    assert h.introspection.count_messages(a.node_name, True) is False  # it was off
    assert a.system.count_messages is True
    sink.send("one")
    sink.send("two")
    wait_until(lambda: seen().received == 2, what="two messages counted")
    assert h.introspection.metrics(a.node_name)["messages_received"] >= 2
    assert h.introspection.count_messages(a.node_name, False) is True
    assert seen().received is None
    sink.send("end")
    assert sink.wait(5) == "normal"
