"""Nodes named by DNS records: ``DnsDiscovery`` (a Kubernetes headless service, or SRV records).

Show what a DNS name lists, as node names::

    python examples/discovery_dns.py app.default.svc.cluster.local app
    python examples/discovery_dns.py _app._tcp.example.com app --kind SRV
    python examples/discovery_dns.py app.cluster.test app --nameserver 127.0.0.1 --port 5353

Run a node that follows the records (until Ctrl+C, or ``--for S`` seconds)::

    python examples/discovery_dns.py app.default.svc.cluster.local app --node "app@$POD_IP"

Each A/AAAA record's address ``ip`` becomes the node ``app@ip``; each SRV
record's target ``t`` becomes ``app@t``. The node connects to the nodes
listed and disconnects those that leave the records, printing ``NodeUp`` and
``NodeDown``. Needs the ``dns`` extra (dnspython): ``pip install 'joerl[dns]'``.
"""

from __future__ import annotations

import argparse
import sys

import gevent

from joerl import DistributedSystem
from joerl.actor import ActorContext
from joerl.discovery import DnsDiscovery


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="node names from DNS records")
    ap.add_argument("query", help="the DNS name to ask")
    ap.add_argument("basename", help="the node names' part before '@'")
    ap.add_argument("--kind", default="A+AAAA", choices=["A", "AAAA", "A+AAAA", "SRV"])
    ap.add_argument("--nameserver", action="append", help="a DNS server's address (default: the system's)")
    ap.add_argument("--port", type=int, default=53, help="the DNS servers' port (with --nameserver)")
    ap.add_argument("--node", help="run a node of this name that follows the records")
    ap.add_argument("--for", dest="seconds", type=float, default=0.0, help="with --node: stop after S seconds")
    args = ap.parse_args(argv)
    strategy = DnsDiscovery(
        args.query, args.basename, kind=args.kind, nameservers=args.nameserver, port=args.port, interval=2.0
    )
    print(f"{args.query} ({args.kind}) lists {sorted(strategy.nodes())}")
    if not args.node:
        return 0
    with DistributedSystem(args.node, "0.0.0.0:0", discovery=strategy) as node:

        def events(ctx: ActorContext) -> None:
            node.monitor_nodes(ctx.pid)
            while True:
                print(f"[{node.node_name}] {ctx.receive()}; linked with {node.nodes()}", flush=True)

        node.spawn_fn(events)
        if args.seconds:
            gevent.sleep(args.seconds)
        else:
            node.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
