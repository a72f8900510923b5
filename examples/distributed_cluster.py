"""A cluster that assembles itself through the port mapper: the
Rust joerl's (https://crates.io/crates/joerl, "the seed")
``distributed_cluster``, in Python.

Run in three terminals (any order)::

    python examples/distributed_cluster.py node_a 5001
    python examples/distributed_cluster.py node_b 5002
    python examples/distributed_cluster.py node_c 5003

Each node listens on its port (0: any free one), registers with the port
mapper, and every ``--interval`` seconds asks the port mapper who else is
registered (joerl nodes only: their registration says ``protocol:
joerl-dist/1``). It links with every node it has not met, and prints the
cluster whenever it changes. It watches the others with ``monitor_nodes``,
so a node that leaves or dies is reported at once (``NodeDown``) and one
that comes back is met again.

Without ``--expect`` a node runs until Ctrl+C. With ``--expect N`` it stops
by itself once the cluster is complete: when it is linked with N-1 others it
tells each of them (``("complete", me)`` to their ``member`` process) and
exits 0 once all N-1 have told it the same, so no node leaves before every
node has seen the whole cluster (exit 1 if that takes over ``--wait``
seconds).

Options: ``--epmd HOST:PORT``, the port mapper (default
``$JOERL_EPMD_ADDRESS``, else ``127.0.0.1:4369``, where one is started if
none answers); ``--tick S``, the tick time (how soon a silent node is
declared down; default 60, as Erlang). All nodes need the same cookie:
``$JOERL_COOKIE``, else ``~/.joerl.cookie``.
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
from joerl.errors import NodeUnreachable
from joerl.message import NodeDown, NodeUp
from joerl.node.node import PROTOCOL_NAME, DistributedSystem


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="joerl nodes that find each other through the port mapper")
    ap.add_argument("name", help="this node's name, e.g. node_a")
    ap.add_argument("port", type=int, help="listen port (0: any free port)")
    ap.add_argument(
        "--epmd", default=None, metavar="HOST:PORT", help="port mapper (default $JOERL_EPMD_ADDRESS or 127.0.0.1:4369)"
    )
    ap.add_argument("--expect", type=int, default=0, metavar="N", help="exit once a cluster of N nodes is complete")
    ap.add_argument("--wait", type=float, default=60.0, help="with --expect: give up after S seconds (default 60)")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between port-mapper polls (default 0.5)")
    ap.add_argument("--tick", type=float, default=60.0, help="tick time in seconds (default 60)")
    args = ap.parse_args(argv)
    tag = args.name
    node = DistributedSystem(tag, f"127.0.0.1:{args.port}", args.epmd, tick_time=args.tick)
    me = node.node_name  # name@host: the name peers know this node by
    complete_from: set[str] = set()  # nodes that have seen the whole cluster
    wake = Event()
    status = {"exit": 0}

    def member(ctx: ActorContext) -> None:
        """Hears node events and the other nodes' "complete"."""
        node.monitor_nodes(ctx.pid)
        while True:
            msg = ctx.receive()
            if isinstance(msg, NodeUp):
                print(f"[{tag}] + {msg.node} joined; linked with {node.nodes()}")
            elif isinstance(msg, NodeDown):
                print(f"[{tag}] - {msg.node} left ({msg.reason}); linked with {node.nodes()}")
            elif msg[0] == "complete":
                complete_from.add(msg[1])
                wake.set()

    def assemble() -> None:
        """Polls the port mapper and links with the nodes it lists; with --expect,
        shuts the node down once the cluster is complete (which ends joerl.run's wait)."""
        told: set[str] = set()  # nodes we told that we have
        deadline = time.monotonic() + args.wait
        shown: tuple[str, ...] = ()
        while True:
            listed = [i for i in node.list_nodes() if i.metadata.get("protocol") == PROTOCOL_NAME]
            for info in listed:
                if info.name != me and info.name not in node.nodes():
                    try:
                        node.connect_to_node(info.name, timeout=5)
                    except NodeUnreachable as exc:
                        print(f"[{tag}] cannot reach {info.name}: {exc}")
            linked = node.nodes()
            cluster = tuple(sorted([me, *linked]))
            if cluster != shown:
                shown = cluster
                where = ", ".join(f"{i.name} at {i.host}:{i.port}" for i in sorted(listed, key=lambda i: i.name))
                print(f"[{tag}] cluster: {list(cluster)} (port mapper: {where})")
            if args.expect and len(cluster) >= args.expect:
                for peer in linked:
                    if peer not in told:
                        told.add(peer)
                        node.system.send(("member", peer), ("complete", me))
            # (checked apart: a node may leave once it has heard from everyone)
            if args.expect and len(told) >= args.expect - 1 and len(complete_from) >= args.expect - 1:
                print(f"[{tag}] cluster complete: {sorted(told | {me})}; every node has seen it")
                break
            if args.expect and time.monotonic() > deadline:
                print(f"[{tag}] the cluster of {args.expect} was not complete within {args.wait}s")
                status["exit"] = 1
                break
            wake.wait(args.interval)
            wake.clear()
        node.system.shutdown()

    def start(node: DistributedSystem) -> Callable[[], object]:
        print(f"[{tag}] up on port {node.listen_port} (port mapper {node.epmd_address}); looking for peers")
        node.spawn_fn(member, name="member")
        return gevent.spawn(assemble).kill  # joerl.run calls it before the shutdown

    joerl.run(start, node)  # until Ctrl+C or SIGTERM, or until assemble() is done; then a clean shutdown
    print(f"[{tag}] leaving")
    return status["exit"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
