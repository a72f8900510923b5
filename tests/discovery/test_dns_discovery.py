"""DnsDiscovery against a real dnsmasq started by the test, with records that change during it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from joerl.discovery import DnsDiscovery

pytestmark = [pytest.mark.discovery, pytest.mark.timeout(60)]

SERVICE = "app.cluster.test"


def strategy(dnsmasq: Any, query: str = SERVICE, **kw: Any) -> DnsDiscovery:
    return DnsDiscovery(query, "app", nameservers=["127.0.0.1"], port=dnsmasq.port, timeout=2.0, **kw)


def test_a_records_of_a_headless_service_become_nodes_and_follow_changes(dnsmasq: Any) -> None:
    dnsmasq.set_hosts([f"127.0.0.2 {SERVICE}", f"127.0.0.3 {SERVICE}", "127.0.0.9 other.cluster.test"])
    source = strategy(dnsmasq, kind="A")
    assert sorted(source.nodes()) == ["app@127.0.0.2", "app@127.0.0.3"]
    dnsmasq.set_hosts([f"127.0.0.3 {SERVICE}", f"127.0.0.4 {SERVICE}"])  # one pod gone, one new
    assert sorted(source.nodes()) == ["app@127.0.0.3", "app@127.0.0.4"]
    dnsmasq.set_hosts([])
    assert source.nodes() == []  # NXDOMAIN: a service with no pods has no nodes


def test_aaaa_records_and_both_families(dnsmasq: Any) -> None:
    dnsmasq.set_hosts([f"127.0.0.2 {SERVICE}", f"::1 {SERVICE}", f"fd00::5 {SERVICE}"])
    assert sorted(strategy(dnsmasq, kind="AAAA").nodes()) == ["app@::1", "app@fd00::5"]
    assert sorted(strategy(dnsmasq).nodes()) == ["app@127.0.0.2", "app@::1", "app@fd00::5"]


def test_srv_records_name_their_target_hosts(dnsmasq: Any) -> None:
    query = "_app._tcp.cluster.test"
    dnsmasq.restart([f"{query},h1.cluster.test,4370", f"{query},h2.cluster.test,4370,0,10"])
    source = strategy(dnsmasq, query, kind="SRV")
    assert sorted(source.nodes()) == ["app@h1.cluster.test", "app@h2.cluster.test"]
    dnsmasq.restart([f"{query},h2.cluster.test,4370", f"{query},h3.cluster.test,4370"])
    assert sorted(source.nodes()) == ["app@h2.cluster.test", "app@h3.cluster.test"]


def test_thousands_of_records_arrive_whole_for_the_loop_to_bound(dnsmasq: Any) -> None:
    # ~3000 A records: over UDP's size, so dnspython asks again over TCP.
    dnsmasq.set_hosts([f"127.{i // 250}.{i % 250}.1 {SERVICE}" for i in range(3000)])
    names = strategy(dnsmasq, kind="A").nodes()
    assert len(names) == 3000 and all(name.startswith("app@127.") for name in names)


def test_a_server_that_does_not_answer_is_a_source_that_is_down(dnsmasq: Any) -> None:
    dnsmasq.stop()
    source = DnsDiscovery(SERVICE, "app", nameservers=["127.0.0.1"], port=dnsmasq.port, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        source.nodes()
    assert time.monotonic() - started < 5
    assert "Timeout" in type(info.value).__name__ or "NoNameservers" in type(info.value).__name__


def test_bad_configuration_is_refused_before_any_question() -> None:
    with pytest.raises(ValueError, match="kind"):
        DnsDiscovery(SERVICE, "app", kind="MX")
    with pytest.raises(ValueError, match="basename"):
        DnsDiscovery(SERVICE, "app@host")


@pytest.mark.timeout(90)
def test_nodes_of_a_headless_service_follow_its_records(dnsmasq: Any) -> None:
    """Nodes ``app@127.0.0.N`` (one port mapper for all, keyed by full names), one of them
    following the service's A records as they change."""
    from joerl import DistributedSystem, NodeDown, NodeUp
    from joerl.testing import Probe, running_epmd, wait_until

    with running_epmd() as epmd:
        nodes: list[DistributedSystem] = []

        def node(n: int, **kw: Any) -> DistributedSystem:
            made = DistributedSystem(
                f"app@127.0.0.{n}", f"127.0.0.{n}:0", epmd, cookie="dns-test", start_epmd=False,
                global_names=False,  # (global's mesh would link .3 again through the others)
                **kw,
            )  # fmt: skip
            nodes.append(made)
            return made

        try:
            node(2), node(3), node(5)
            dnsmasq.set_hosts([f"127.0.0.{n} {SERVICE}" for n in (2, 3, 4)])
            watcher = node(4, discovery=strategy(dnsmasq, kind="A", interval=0.2))
            wait_until(lambda: watcher.nodes() == ["app@127.0.0.2", "app@127.0.0.3"], timeout=10, what="the mesh")
            with Probe(watcher) as probe:
                watcher.monitor_nodes(probe.pid)
                # A pod leaves the service (it still runs), another joins.
                dnsmasq.set_hosts([f"127.0.0.{n} {SERVICE}" for n in (2, 4, 5)])
                assert probe.receive(NodeDown, timeout=10).node == "app@127.0.0.3"
                assert probe.receive(NodeUp, timeout=10).node == "app@127.0.0.5"
            assert watcher.nodes() == ["app@127.0.0.2", "app@127.0.0.5"]
            # The DNS server goes away: the cluster stays as it is.
            dnsmasq.stop()
            loop = watcher.discovery
            assert loop is not None
            failures = loop.stats.source_failures
            wait_until(lambda: loop.stats.source_failures > failures, timeout=15, what="the failed question")
            assert watcher.nodes() == ["app@127.0.0.2", "app@127.0.0.5"]
        finally:
            for made in reversed(nodes):
                made.shutdown()


@pytest.mark.timeout(90)
def test_a_node_takes_at_most_max_nodes_of_thousands_of_records(dnsmasq: Any) -> None:
    from joerl import DistributedSystem
    from joerl.testing import running_epmd, wait_until

    dnsmasq.set_hosts([f"127.{i // 250}.{i % 250}.1 {SERVICE}" for i in range(3000)])
    with running_epmd() as epmd:
        node = DistributedSystem(
            "app@127.0.0.1", "127.0.0.1:0", epmd, cookie="dns-test", start_epmd=False, global_names=False,
            discovery=strategy(dnsmasq, kind="A", interval=60.0, max_nodes=20),
        )  # fmt: skip
        try:
            loop = node.discovery
            assert loop is not None
            wait_until(lambda: loop.stats.connect_failures >= 20, timeout=30, what="20 dials (none of them runs)")
            assert loop.stats.truncated == 1 and len(loop.listed) == 20 and loop.stats.polls == 1
            assert node.nodes() == []
        finally:
            node.shutdown()
