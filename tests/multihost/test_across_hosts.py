"""Three nodes on three simulated hosts find each other and talk as on one machine.

Each host (a network namespace with its own address and host name) runs its
own port mapper on port 4369 and one node, ``n1@alpha``, ``n2@beta``,
``n3@gamma``; the nodes find each other through discovery (a static list,
and the port mappers' listings), then send by pid and by ``(name, node)``,
call, spawn remotely, link and monitor across the hosts.
"""

from __future__ import annotations

import time

import pytest
from agent_client import start_nodes, wait_meshed
from netns import Network

pytestmark = [pytest.mark.multihost, pytest.mark.timeout(180)]


@pytest.mark.parametrize("discover", ["static", "epmd"])
def test_discovery_send_call_spawn_link_monitor(net: Network, discover: str) -> None:
    t0 = time.monotonic()
    n1, n2, n3 = nodes = start_nodes(net, discover=discover)
    assert [n.node for n in nodes] == ["n1@alpha", "n2@beta", "n3@gamma"]
    meshed = wait_meshed(nodes)
    print(f"\n[{discover}] 3 nodes up and meshed {time.monotonic() - t0:.2f}s after start ({meshed:.2f}s after READY)")
    for n in nodes:
        assert n.ok("nodes")["nodes"] == sorted(m.node for m in nodes if m is not n)

    # send by (name, node) and by pid, both ways across every pair
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.ok("ping", node=b.node)
                assert a.ok("ping", node=b.node, by="pid")["dest"].startswith("<")
    # calls, with a value that crosses as itself, and one that times out
    assert n1.ok("call", node=n3.node, value=[1, "two", {"three": 3.0}])["value"] == [1, "two", {"three": 3.0}]
    held = n2.request("call", node=n1.node, hold=True, timeout=0.5)
    assert held["ok"] is False and held["error"] == "CallTimeout" and held["elapsed"] >= 0.5, held
    # remote spawn
    assert n1.ok("spawn", node=n2.node)["node"] == n2.node
    assert n3.ok("spawn", node=n1.node)["node"] == n1.node
    # links and monitors: a remote process's end reaches both
    for a, b, reason in ((n1, n3, "boom"), (n2, n1, "normal")):
        ended = a.ok("link_die", node=b.node, reason=reason)
        assert (ended["exit"], ended["down"]) == (reason, reason), ended
    # nothing was dropped on the way
    for n in nodes:
        stats = n.ok("stats")
        assert stats["dropped_unreachable"] == 0 and stats["dropped_stale"] == 0, (n, stats)
