"""Multicast discovery across simulated hosts: beacons stay on the test network's own bridge
(every host's multicast route is its veth into the bridge namespace; TTL 1), never on this
machine's interfaces.

Each host runs its port mapper and one node whose only way to learn of the
others is :class:`~joerl.discovery.MulticastDiscovery`; a host with another
cookie sends beacons too, and is never listed (its beacons fail the HMAC).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from netns import Network

from joerl.testing import ChildProcess, wait_until

pytestmark = [pytest.mark.multihost, pytest.mark.timeout(120)]

#: A node on a host: discovery by multicast only; prints its node events, and
#: its view (``STATE``) when a line arrives on its standard input.
NODE = r"""
import json, sys
from joerl import DistributedSystem, NodeDown, NodeUp
from joerl.discovery import MulticastDiscovery
from joerl.testing import stdin_lines

name, ip = sys.argv[1], sys.argv[2]
strategy = MulticastDiscovery(interface=ip, beacon_interval=0.2, expire=1.5, interval=0.5)
node = DistributedSystem(name, ip + ":0", start_epmd=False, tick_time=4.0, global_names=False, discovery=strategy)

def events(ctx):
    node.monitor_nodes(ctx.pid)
    while True:
        msg = ctx.receive()
        kind = "UP" if isinstance(msg, NodeUp) else "DOWN" if isinstance(msg, NodeDown) else "OTHER"
        print(f"{kind} {msg.node}", flush=True)

node.spawn_fn(events)
print(f"READY node={node.node_name}", flush=True)
for _line in stdin_lines():
    state = {"nodes": node.nodes(), "listed": node.discovery.listed, "refused": dict(strategy.refused),
             "stats": vars(node.discovery.stats)}
    print("STATE " + json.dumps(state), flush=True)
node.shutdown()
"""


def start_node(host: Any, name: str, cookie: str | None = None) -> ChildProcess:
    host.start_epmd()
    argv = [sys.executable, "-c", NODE, f"{name}@{host.hostname}", host.ip]
    if cookie is not None:  # another cluster: same program, another cookie
        argv = ["env", f"JOERL_COOKIE={cookie}", *argv]
    child = host.start(argv)
    child.wait_ready()
    return child


def state(child: ChildProcess) -> dict[str, Any]:
    import json

    child.write_line("state")
    return dict(json.loads(child.wait_line("STATE ").split(" ", 1)[1]))


def test_nodes_on_three_hosts_find_each_other_and_ignore_a_stranger(make_net: Any) -> None:
    net: Network = make_net(4)
    alpha, beta, gamma, delta = net.hosts
    nodes = {h.hostname: start_node(h, "m") for h in (alpha, beta, gamma)}
    stranger = start_node(delta, "m", cookie="another-cluster")
    for hostname, child in nodes.items():
        ups = {f"UP m@{other}" for other in nodes if other != hostname}
        child.wait_line(lambda _line, child=child, ups=ups: ups <= set(child.lines), timeout=30)
    # The stranger beacons every 0.2 s too: alpha refuses them (another cookie's HMAC).
    view = wait_until(
        lambda: (v := state(nodes["alpha"]))["refused"].get("signature", 0) >= 1 and v,
        timeout=10,
        interval=0.2,
        what="a stranger's beacon refused",
    )
    assert view["nodes"] == ["m@beta", "m@gamma"]
    assert "m@delta" not in view["listed"] and view["stats"]["connect_failures"] == 0
    assert state(stranger)["nodes"] == []

    # A node that goes: its link drops, and its beacons stop (it leaves the list).
    nodes["beta"].close()
    nodes["alpha"].wait_line("DOWN m@beta", timeout=30)
    nodes["gamma"].wait_line("DOWN m@beta", timeout=30)
    assert state(nodes["alpha"])["nodes"] == ["m@gamma"]

    # It comes back (a new start): found again by its beacons.
    nodes["beta"] = start_node_again(beta)
    nodes["alpha"].wait_line("UP m@beta", timeout=30)


def start_node_again(host: Any) -> ChildProcess:
    argv = [sys.executable, "-c", NODE, f"m@{host.hostname}", host.ip]
    child = host.start(argv)
    child.wait_ready()
    return child


def test_the_multicast_example_on_three_hosts(net: Network) -> None:
    """``examples/discovery_multicast.py``, one per host: each exits 0 once it has met the two others."""
    from netns import ROOT

    children = []
    for host in net.hosts:
        host.start_epmd()  # (else the node would start a detached one)
        argv = [sys.executable, str(ROOT / "examples" / "discovery_multicast.py"), "app"]
        children.append(host.start([*argv, "--interface", host.ip, "--expect", "3", "--wait", "40"]))
    for host, child in zip(net.hosts, children, strict=True):
        line = child.wait_line(lambda text: "cluster complete" in text, timeout=60)
        assert line.endswith("['app@alpha', 'app@beta', 'app@gamma']"), line
        assert child.wait(timeout=30) == 0, host
