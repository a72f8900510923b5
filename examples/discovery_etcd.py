"""Nodes that register in etcd and watch each other: ``EtcdDiscovery``.

Run it against an etcd (``etcd`` from the ``etcd-server`` package listens on
``http://127.0.0.1:2379`` by default)::

    python examples/discovery_etcd.py --endpoint http://127.0.0.1:2379

Two nodes (``a@example`` and ``b@example``) start in this process on
loopback with a port mapper of their own. Each puts its key under the prefix
``/joerl-example/nodes/`` with a lease it keeps alive, and watches the
prefix: they link as soon as the second key appears. Then ``b`` shuts down:
it revokes its lease, its key goes at once, and ``a`` sees it leave. (A node
that dies without revoking leaves when its lease expires, ``ttl`` seconds
later.) Needs the ``etcd`` extra (geventhttpclient): ``pip install 'joerl[etcd]'``.
"""

from __future__ import annotations

import argparse
import sys

from joerl import DistributedSystem, NodeDown, NodeUp
from joerl.discovery import EtcdDiscovery
from joerl.epmd import EpmdServer
from joerl.testing import Probe


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="two nodes that find each other through etcd")
    ap.add_argument("--endpoint", default="http://127.0.0.1:2379", help="etcd's client URL")
    ap.add_argument("--prefix", default="/joerl-example/nodes/")
    args = ap.parse_args(argv)
    port_mapper = EpmdServer("127.0.0.1:0")
    port_mapper.start()
    epmd = f"127.0.0.1:{port_mapper.port}"

    def start(name: str) -> DistributedSystem:
        strategy = EtcdDiscovery(args.endpoint, args.prefix, ttl=5, interval=1.0)
        return DistributedSystem(
            name, "127.0.0.1:0", epmd, cookie="discovery-example", start_epmd=False, discovery=strategy
        )

    a = start("a@example")
    try:
        with Probe(a) as probe:
            a.monitor_nodes(probe.pid)
            b = start("b@example")
            print(f"[a@example] {probe.receive(NodeUp, timeout=10)} (its key appeared in etcd)")
            b.shutdown()
            print(f"[a@example] {probe.receive(NodeDown, timeout=10)} (b revoked its lease)")
            assert a.discovery is not None
            print(f"[a@example] etcd lists {a.discovery.strategy.nodes()}")
    finally:
        a.shutdown()
        port_mapper.stop()
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
