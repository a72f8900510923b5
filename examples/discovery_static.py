"""Three nodes that find each other from a fixed list: ``StaticDiscovery``.

Run it::

    python examples/discovery_static.py

Three nodes (``a``, ``b`` and ``c`` on host ``example``) start in this
process on loopback, with one port mapper of their own (shared, on a free
port: nothing touches port 4369). Each is given the same list of the three
names and connects to the others by itself. Then ``c`` stops: ``a`` sees it
go (``NodeDown``); ``c`` starts again and ``a``'s discovery loop links with
it again at its next round (``NodeUp``). The discovery loop's figures close.
"""

from __future__ import annotations

import sys

from joerl import DistributedSystem, NodeDown, NodeUp
from joerl.discovery import StaticDiscovery
from joerl.epmd import EpmdServer
from joerl.testing import Probe, wait_until

NAMES = ["a@example", "b@example", "c@example"]


def start(name: str, epmd: str) -> DistributedSystem:
    return DistributedSystem(
        name,
        "127.0.0.1:0",
        epmd,
        cookie="discovery-example",
        start_epmd=False,
        global_names=False,
        discovery=StaticDiscovery(NAMES, interval=0.2),
    )


def main() -> int:
    port_mapper = EpmdServer("127.0.0.1:0")
    port_mapper.start()
    epmd = f"127.0.0.1:{port_mapper.port}"
    nodes = {name: start(name, epmd) for name in NAMES}
    try:
        a = nodes["a@example"]
        for name, node in nodes.items():
            wait_until(lambda node=node: len(node.nodes()) == 2, timeout=10, what=f"{name}'s links")
            print(f"[{name}] linked with {node.nodes()}")
        with Probe(a) as probe:
            a.monitor_nodes(probe.pid)
            nodes.pop("c@example").shutdown()
            print(f"[a@example] {probe.receive(NodeDown, timeout=10)}")
            nodes["c@example"] = start("c@example", epmd)
            print(f"[a@example] {probe.receive(NodeUp, timeout=10)}")
        assert a.discovery is not None
        stats = a.discovery.stats
        print(f"[a@example] discovery: {stats.connects} connects, {stats.connect_failures} failures")
    finally:
        for node in nodes.values():
            node.shutdown()
        port_mapper.stop()
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
