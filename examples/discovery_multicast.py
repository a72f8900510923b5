"""Nodes on one LAN that find each other by signed multicast beacons: ``MulticastDiscovery``.

Run one per machine of the LAN (each needs its own port mapper, started
by the node if none runs, and the same cookie)::

    python examples/discovery_multicast.py app --interface 192.168.1.10
    python examples/discovery_multicast.py app --interface 192.168.1.11

Each node sends a beacon with its name, signed with an HMAC of the cookie,
to the group 239.255.43.69, UDP port 45892 (TTL 1: it never leaves the LAN)
every second, and links with every node whose beacon it hears; beacons of
another cookie are refused and counted. It prints every node that joins or
leaves, and runs until Ctrl+C, or with ``--expect N`` exits 0 once it has
linked with N-1 others (1 if that takes over ``--wait`` seconds).

``tests/multihost/test_multicast_discovery.py`` runs it on three simulated
hosts.
"""

from __future__ import annotations

import argparse
import sys

from gevent.event import Event

from joerl import DistributedSystem, NodeUp
from joerl.actor import ActorContext
from joerl.discovery import MulticastDiscovery


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="a node that finds the others on its LAN by multicast")
    ap.add_argument("name", help="this node's name (without @host: this machine's host name)")
    ap.add_argument("--interface", required=True, help="the IPv4 address of the LAN interface")
    ap.add_argument("--group", default="239.255.43.69")
    ap.add_argument("--port", type=int, default=45892)
    ap.add_argument("--expect", type=int, default=0, help="exit once linked with N-1 others")
    ap.add_argument("--wait", type=float, default=60.0, help="with --expect: give up after S seconds")
    args = ap.parse_args(argv)
    strategy = MulticastDiscovery(args.group, args.port, interface=args.interface, beacon_interval=0.5, interval=1.0)
    complete = Event()
    seen: set[str] = set()  # every node linked with so far (one that left early counts)
    with DistributedSystem(args.name, f"{args.interface}:0", discovery=strategy, tick_time=10.0) as node:

        def events(ctx: ActorContext) -> None:
            node.monitor_nodes(ctx.pid)
            while True:
                event = ctx.receive()
                if isinstance(event, NodeUp):
                    seen.add(event.node)
                print(f"[{node.node_name}] {event}; linked with {node.nodes()}", flush=True)
                if args.expect and len(seen) >= args.expect - 1:
                    complete.set()

        node.spawn_fn(events)
        print(f"[{node.node_name}] beaconing on {args.group}:{args.port} from {args.interface}", flush=True)
        if not args.expect:
            node.serve_forever()
            return 0
        if not complete.wait(args.wait):
            print(f"[{node.node_name}] only {sorted(seen)} after {args.wait}s", flush=True)
            return 1
        print(f"[{node.node_name}] cluster complete: {sorted([node.node_name, *seen])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
