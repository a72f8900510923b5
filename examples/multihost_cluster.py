"""The seed's cluster example across machines: nodes on several hosts find each
other through discovery.

Run one node on each host (the same cookie everywhere: ``$JOERL_COOKIE``,
else ``~/.joerl.cookie``; port 4369 and the nodes' ports open between the
hosts)::

    hostA$ python examples/multihost_cluster.py a --hosts hostA,hostB,hostC
    hostB$ python examples/multihost_cluster.py b --hosts hostA,hostB,hostC
    hostC$ python examples/multihost_cluster.py c --hosts hostA,hostB,hostC

Each node is ``NAME@its-host`` and registers with its own host's port mapper
(started if none runs, as ``erl`` does). With ``--hosts`` it finds the others
by reading the port mappers of those hosts (``EpmdDiscovery``); with
``--nodes a@hostA,b@hostB,...`` it dials that fixed list instead
(``StaticDiscovery``). Discovery links with every node it finds, again after a
node comes back; ``monitor_nodes`` reports each change at once.

Without ``--expect`` a node runs until Ctrl+C. With ``--expect N`` it stops by
itself once the cluster is complete: when it is linked with N-1 others it
tells each (``("complete", me)`` to their ``member`` process, addressed as
``(name, node)``) and leaves once all N-1 have told it the same, so no node
leaves before every node has seen the whole cluster (exit 1 if that takes
over ``--wait`` seconds). ``tests/multihost/test_example.py`` runs it on three
simulated hosts.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import gevent
from gevent.event import Event

import joerl
from joerl.actor import ActorContext
from joerl.discovery import Discovery, EpmdDiscovery, StaticDiscovery
from joerl.message import NodeDown, NodeUp
from joerl.node.node import DistributedSystem


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="joerl nodes on several hosts that find each other through discovery")
    ap.add_argument("name", help="this node's name (its host is added: NAME@this-host)")
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--hosts", help="comma-separated hosts whose port mappers list the cluster's nodes")
    which.add_argument("--nodes", help="comma-separated node names of the cluster (name@host,...)")
    ap.add_argument("--expect", type=int, default=0, metavar="N", help="exit once a cluster of N nodes is complete")
    ap.add_argument("--wait", type=float, default=60.0, help="with --expect: give up after S seconds (default 60)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between discovery rounds (default 1)")
    ap.add_argument("--tick", type=float, default=60.0, help="tick time in seconds (default 60)")
    args = ap.parse_args(argv)

    strategy: Discovery
    if args.hosts:
        strategy = EpmdDiscovery(args.hosts.split(","), interval=args.interval)
    else:
        strategy = StaticDiscovery(args.nodes.split(","), interval=args.interval)
    node = DistributedSystem(args.name, tick_time=args.tick, discovery=strategy)
    me = node.node_name
    complete_from: set[str] = set()  # nodes that have seen the whole cluster
    changed = Event()
    status = {"exit": 0}

    def member(ctx: ActorContext) -> None:
        """Hears node events and the other nodes' "complete"."""
        node.monitor_nodes(ctx.pid)
        while True:
            msg = ctx.receive()
            if isinstance(msg, NodeUp):
                print(f"[{me}] + {msg.node} joined; cluster: {sorted([me, *node.nodes()])}", flush=True)
            elif isinstance(msg, NodeDown):
                print(f"[{me}] - {msg.node} left ({msg.reason}); cluster: {sorted([me, *node.nodes()])}", flush=True)
            elif msg[0] == "complete":
                complete_from.add(msg[1])
            changed.set()

    def until_complete() -> None:
        """With --expect: tell each node once the cluster is complete; shut down when all told us."""
        told: set[str] = set()
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            linked = node.nodes()
            if len(linked) + 1 >= args.expect:
                for peer in linked:
                    if peer not in told:
                        told.add(peer)
                        node.system.send(("member", peer), ("complete", me))
            if len(told) >= args.expect - 1 and len(complete_from) >= args.expect - 1:
                print(f"[{me}] cluster complete: {sorted(told | {me})}; every node has seen it", flush=True)
                break
            changed.wait(max(0.0, deadline - time.monotonic()))
            changed.clear()
        else:
            print(f"[{me}] the cluster of {args.expect} was not complete within {args.wait}s", flush=True)
            status["exit"] = 1
        node.system.shutdown()

    def start(node: DistributedSystem) -> Callable[[], object] | None:
        print(f"[{me}] up on port {node.listen_port}; discovery: {strategy!r}", flush=True)
        node.spawn_fn(member, name="member")
        return gevent.spawn(until_complete).kill if args.expect else None

    joerl.run(start, node)  # until Ctrl+C or SIGTERM (or the cluster is complete); then a clean shutdown
    print(f"[{me}] leaving", flush=True)
    return status["exit"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
