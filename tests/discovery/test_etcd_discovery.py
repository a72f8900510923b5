"""EtcdDiscovery against a real etcd started by the test: keys with leases, a watch, expiry, an outage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from joerl.discovery import EtcdDiscovery, Member
from joerl.discovery._etcd_gateway import EtcdGateway, prefix_end

pytestmark = [pytest.mark.discovery, pytest.mark.timeout(90)]

PREFIX = "/test/cluster/"


@pytest.fixture
def members(etcd: Any) -> Iterator[Any]:
    started: list[EtcdDiscovery] = []

    def member(name: str, **kw: Any) -> EtcdDiscovery:
        kw.setdefault("ttl", 5)
        kw.setdefault("timeout", 2.0)
        strategy = EtcdDiscovery(etcd.endpoint, PREFIX, **kw)
        strategy.start(Member(name, "127.0.0.1", 1, b"cookie"))
        started.append(strategy)
        return strategy

    yield member
    for strategy in started:
        strategy.stop()


def listed_after_changes(strategy: EtcdDiscovery, expected: list[str], timeout: float = 10.0) -> None:
    """Wait, woken by the strategy's watch (never polling), until it lists ``expected``: an event
    older than the one awaited may wake it first."""
    deadline = time.monotonic() + timeout
    while sorted(strategy.nodes()) != expected:
        left = deadline - time.monotonic()
        assert left > 0 and strategy.changed.wait(left), f"the watch did not fire: {strategy.nodes()}"
        strategy.changed.clear()


def test_prefix_end() -> None:
    assert prefix_end(b"/a/") == b"/a0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff") == b"\x00"


def test_each_node_registers_and_sees_the_others_through_the_watch(members: Any) -> None:
    a = members("a@h1")
    assert a.nodes() == ["a@h1"] and a.lease is not None
    a.changed.clear()
    b = members("b@h2")
    assert sorted(b.nodes()) == ["a@h1", "b@h2"]
    listed_after_changes(a, ["a@h1", "b@h2"])  # b's key arrived through a's watch


def test_a_node_that_stops_revokes_its_key(members: Any) -> None:
    a, b = members("a@h1"), members("b@h2")
    a.nodes(), b.nodes()
    a.changed.clear()
    b.stop()
    listed_after_changes(a, ["a@h1"])


def test_a_node_that_dies_disappears_when_its_lease_expires(members: Any) -> None:
    a = members("a@h1")
    dead = members("dead@h3", ttl=2)
    a.nodes(), dead.nodes()
    a.changed.clear()
    gevent.killall(dead._greenlets)  # it dies: no keep-alive, no revoke
    dead.lease = None
    listed_after_changes(a, ["a@h1"], timeout=15)  # the lease expired and etcd deleted the key


def test_the_lease_is_kept_alive(members: Any, etcd: Any) -> None:
    a = members("a@h1", ttl=2)
    a.nodes()
    lease = a.lease
    assert lease is not None
    gateway = EtcdGateway(etcd.endpoint)
    try:
        # A watch of the prefix sees no event for three lease lifetimes: the
        # key is refreshed every ttl/3 seconds, never deleted.
        events = gateway.watch(PREFIX.encode(), 0, idle_timeout=6.0)
        assert next(events) == 0  # the watch is open
        with pytest.raises(OSError):  # (a socket timeout: silent for 6 s)
            next(events)
        assert a.lease == lease and gateway.keepalive(lease) > 0
    finally:
        gateway.close()


def test_an_outage_raises_and_the_node_registers_again_after_it(members: Any, etcd: Any) -> None:
    a = members("a@h1", ttl=2)
    assert a.nodes() == ["a@h1"]
    etcd.stop()
    with pytest.raises(OSError):
        a.nodes()
    etcd.start()
    # Down long enough (or not) for the lease to have expired: either way the
    # key is back once the lease has been checked.
    names: list[str] = []
    for _ in range(40):
        names = a.nodes()
        if names == ["a@h1"] and a.lease is not None:
            break
        a.changed.wait(0.5)
        a.changed.clear()
    assert names == ["a@h1"]


def test_hostile_keys_come_back_as_text_for_the_loop_to_sift(members: Any, etcd: Any) -> None:
    gateway = EtcdGateway(etcd.endpoint)
    try:
        lease = gateway.grant(30)
        for key in (b"not a name", b"\xff\xfe", b"x" * 300):
            gateway.put(PREFIX.encode() + key, b"", lease)
        names = members("a@h1", max_nodes=2).nodes()
        assert len(names) == 3  # max_nodes + 1 read: the loop sees there were more
    finally:
        gateway.close()


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="ttl"):
        EtcdDiscovery(ttl=1)
    with pytest.raises(ValueError, match="prefix"):
        EtcdDiscovery(prefix="")


NODE = r"""
import sys
import gevent
from joerl import DistributedSystem
from joerl.discovery import EtcdDiscovery

name, epmd, endpoint = sys.argv[1:4]
strategy = EtcdDiscovery(endpoint, "/test/cluster/", ttl=2, interval=0.2, timeout=2.0)
node = DistributedSystem(name, "127.0.0.1:0", epmd, start_epmd=False, global_names=False, discovery=strategy)
print(f"READY node={node.node_name}", flush=True)
gevent.wait()
"""


@pytest.mark.timeout(90)
def test_a_node_killed_leaves_the_cluster_when_its_lease_expires(etcd: Any) -> None:
    """Real nodes: one in this process, one a child process killed with SIGKILL (it cannot revoke)."""
    import sys
    import time

    from joerl import DistributedSystem, NodeDown, NodeUp
    from joerl.testing import ChildProcess, Probe, running_epmd, wait_until

    with running_epmd() as epmd:
        strategy = EtcdDiscovery(etcd.endpoint, PREFIX, ttl=2, interval=0.2, timeout=2.0)
        a = DistributedSystem(
            "a@h.test", "127.0.0.1:0", epmd, cookie="etcd-test", start_epmd=False, global_names=False,
            tick_time=30.0, discovery=strategy,
        )  # fmt: skip
        try:
            with Probe(a) as probe:
                a.monitor_nodes(probe.pid)
                child = ChildProcess([sys.executable, "-c", NODE, "b@h.test", epmd, etcd.endpoint], cookie="etcd-test")
                with child:
                    child.wait_ready()
                    assert probe.receive(NodeUp, timeout=15) == NodeUp("b@h.test")
                    child.send_signal(9)
                    child.wait()
                    killed = time.monotonic()
                    assert probe.receive(NodeDown, timeout=15).node == "b@h.test"
                loop = a.discovery
                assert loop is not None
                # Its key stays until the lease (2 s, refreshed every 0.67 s) expires; then it is no longer listed.
                wait_until(lambda: loop.listed == [], timeout=20, interval=0.05, what="b's key gone")
                print(f"\nkilled node unlisted {time.monotonic() - killed:.2f}s after SIGKILL")
                # Meanwhile the dead node was dialled again, with back-off: a few times, not once a round.
                assert loop.stats.connect_failures <= 6, loop.stats
                assert strategy.nodes() == ["a@h.test"]
        finally:
            a.shutdown()
