"""Nodes found through port mappers' listings: ``EpmdDiscovery`` (Erlang's ``net_adm:world``).

Run it::

    python examples/discovery_epmd.py

A port mapper runs in this process on a free loopback port (standing for
the port mappers of the hosts a real cluster lists, ``EpmdDiscovery(["host1",
"host2"])``). Node ``a@example`` starts with ``EpmdDiscovery`` on it and is
alone; then ``b@example`` and ``c@example`` register there without any
discovery of their own, and ``a`` finds and links with each at its next
round. When ``b`` leaves the port mapper (it shuts down), it leaves the
cluster.
"""

from __future__ import annotations

import sys

from joerl import DistributedSystem, NodeDown, NodeUp
from joerl.discovery import EpmdDiscovery
from joerl.epmd import EpmdServer
from joerl.testing import Probe


def main() -> int:
    port_mapper = EpmdServer("127.0.0.1:0")
    port_mapper.start()
    epmd = f"127.0.0.1:{port_mapper.port}"
    options = {"cookie": "discovery-example", "start_epmd": False, "global_names": False}
    a = DistributedSystem("a@example", "127.0.0.1:0", epmd, discovery=EpmdDiscovery([epmd], interval=0.2), **options)
    others: list[DistributedSystem] = []
    try:
        with Probe(a) as probe:
            a.monitor_nodes(probe.pid)
            print(f"[a@example] alone: {a.nodes()}")
            for name in ("b@example", "c@example"):
                others.append(DistributedSystem(name, "127.0.0.1:0", epmd, **options))
                print(f"[a@example] {probe.receive(NodeUp, timeout=10)}")
            print(f"[a@example] linked with {a.nodes()}")
            others.pop(0).shutdown()
            print(f"[a@example] {probe.receive(NodeDown, timeout=10)}")
            print(f"[a@example] linked with {a.nodes()}")
    finally:
        for node in (*others, a):
            node.shutdown()
        port_mapper.stop()
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
